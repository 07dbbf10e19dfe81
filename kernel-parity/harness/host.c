/*
 * The host both implementations run on: a refcounted page pool whose
 * functions are the mm_ops callbacks of either (their types line up with
 * both struct kvm_pgtable_mm_ops), and the event log.
 *
 * Each side has its own pool, so "pages in use" compares like with like and
 * both sides can be handed the same physical addresses. Physical addresses
 * differ from virtual ones (a missing conversion shows up as a wrong
 * address); guest physical addresses outside the pool map to themselves,
 * as through a linear map, and are never dereferenced: guest memory exists
 * only as numbers in descriptors and cache-maintenance calls.
 *
 * Freed pages are poisoned, so a walker still reading one finds garbage.
 * Misuse (a free of a free page, a reference taken on one, an address
 * outside the pool) is counted in pool->errors; the driver reports it.
 */
#include "kp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct kp_side *kp_cur;

void kp_enter(struct kp_side *s)
{
	kp_cur = s;
}

static void pool_error(struct kp_pool *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->errors++) {
		va_start(ap, fmt);
		vsnprintf(p->first_error, sizeof(p->first_error), fmt, ap);
		va_end(ap);
	}
}

#define POOL_ALIGN (64ull << 10)

void kp_pool_init(struct kp_pool *p, size_t npages)
{
	size_t bytes = npages * KP_PAGE_SIZE + POOL_ALIGN;
	unsigned char *raw;

	memset(p, 0, sizeof(*p));
	/* Reserved lazily: only pages a table really uses are ever touched. */
	raw = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) {
		perror("kernel-parity: mmap pool");
		exit(2);
	}
	p->mem = (unsigned char *)(((uintptr_t)raw + POOL_ALIGN - 1) & ~(uintptr_t)(POOL_ALIGN - 1));
	p->npages = npages;
	p->refs = calloc(npages, sizeof(*p->refs));
	if (!p->refs) {
		perror("kernel-parity: pool refs");
		exit(2);
	}
	p->phys_base = KP_POOL_PHYS_BASE;
	p->limit = npages;
}

void kp_pool_fini(struct kp_pool *p)
{
	free(p->refs);
	free(p->deferred);
	p->refs = NULL;
	p->deferred = NULL;
}

static long page_index(const struct kp_pool *p, const void *addr)
{
	const unsigned char *a = addr;

	if (!p->mem || a < p->mem || a >= p->mem + p->npages * KP_PAGE_SIZE)
		return -1;
	return (long)((size_t)(a - p->mem) / KP_PAGE_SIZE);
}

bool kp_pool_owns(const struct kp_pool *p, const void *addr)
{
	return page_index(p, addr) >= 0;
}

bool kp_pool_owns_phys(const struct kp_pool *p, uint64_t phys)
{
	return phys >= p->phys_base && phys < p->phys_base + p->npages * KP_PAGE_SIZE;
}

int kp_pool_refcount(const struct kp_pool *p, const void *addr)
{
	long i = page_index(p, addr);

	return i < 0 ? -1 : p->refs[i];
}

/* n free pages in a row aligned to n pages (n a power of two), lowest first:
 * deterministic, so two runs of one implementation allocate alike. */
static void *pool_alloc(struct kp_pool *p, size_t n)
{
	size_t i, j;

	if (p->in_use + n > p->limit)
		return NULL;
	for (i = 0; i + n <= p->npages; i += n) {
		for (j = 0; j < n && !p->refs[i + j]; j++)
			;
		if (j < n)
			continue;
		for (j = 0; j < n; j++) {
			p->refs[i + j] = 1;
			memset(p->mem + (i + j) * KP_PAGE_SIZE, 0, KP_PAGE_SIZE);
		}
		p->in_use += n;
		return p->mem + i * KP_PAGE_SIZE;
	}
	return NULL;
}

static void pool_release(struct kp_pool *p, long i)
{
	memset(p->mem + (size_t)i * KP_PAGE_SIZE, 0xa5, KP_PAGE_SIZE);
	p->refs[i] = 0;
	p->in_use--;
}

void *kp_zalloc_page(void *arg)
{
	struct kp_mc *mc = arg;
	void *page;

	if (!mc && kp_cur->pool.null_mc_allocates)
		return pool_alloc(&kp_cur->pool, 1);
	if (!mc || mc->nobjs <= 0)
		return NULL;
	page = pool_alloc(&kp_cur->pool, 1);
	if (page)
		mc->nobjs--;
	return page;
}

void *kp_zalloc_pages_exact(size_t size)
{
	size_t n = size / KP_PAGE_SIZE;

	if (!n || size % KP_PAGE_SIZE || (n & (n - 1)))
		return NULL;
	return pool_alloc(&kp_cur->pool, n);
}

void kp_free_pages_exact(void *addr, size_t size)
{
	struct kp_pool *p = &kp_cur->pool;
	long i = page_index(p, addr), k;

	if (i < 0 || size % KP_PAGE_SIZE) {
		pool_error(p, "free_pages_exact(%p, %zu): not pool pages", addr, size);
		return;
	}
	for (k = i; k < i + (long)(size / KP_PAGE_SIZE); k++) {
		if (k >= (long)p->npages || !p->refs[k]) {
			pool_error(p, "free_pages_exact: page %ld is free", k);
			continue;
		}
		/* A root page's count is 1 + the entries it holds, as any table
		 * page's: freed with entries left, something leaked. */
		if (p->refs[k] != 1)
			pool_error(p, "free_pages_exact: page %ld still has count %d", k,
				   p->refs[k]);
		pool_release(p, k);
	}
}

void kp_free_unlinked_table(void *addr, int8_t level)
{
	struct kp_pool *p = &kp_cur->pool;

	if (p->ndeferred == p->deferred_cap) {
		p->deferred_cap = p->deferred_cap ? 2 * p->deferred_cap : 16;
		p->deferred = realloc(p->deferred, p->deferred_cap * sizeof(*p->deferred));
		if (!p->deferred) {
			perror("kernel-parity: deferred");
			exit(2);
		}
	}
	p->deferred[p->ndeferred].table = addr;
	p->deferred[p->ndeferred].level = level;
	p->ndeferred++;
}

void kp_quiesce(struct kp_side *s)
{
	struct kp_side *prev = kp_cur;
	size_t i;

	kp_enter(s);
	/* A table freed now may defer more (it does not in either library,
	 * but loop until nothing is left rather than assume). */
	while (s->pool.ndeferred) {
		size_t n = s->pool.ndeferred;
		struct kp_deferred *d = malloc(n * sizeof(*d));

		if (!d) {
			perror("kernel-parity: quiesce");
			exit(2);
		}
		memcpy(d, s->pool.deferred, n * sizeof(*d));
		s->pool.ndeferred = 0;
		for (i = 0; i < n; i++) {
			if (!kp_pool_owns(&s->pool, d[i].table))
				pool_error(&s->pool, "free_unlinked_table(%p): not a pool page",
					   d[i].table);
			else
				s->impl->free_unlinked(s->st, d[i].table, d[i].level);
		}
		free(d);
	}
	kp_enter(prev);
}

void kp_get_page(void *addr)
{
	struct kp_pool *p = &kp_cur->pool;
	long i = page_index(p, addr);

	if (i < 0 || !p->refs[i]) {
		pool_error(p, "get_page(%p): %s", addr, i < 0 ? "not a pool page" : "page is free");
		return;
	}
	p->refs[i]++;
}

void kp_put_page(void *addr)
{
	struct kp_pool *p = &kp_cur->pool;
	long i = page_index(p, addr);

	if (i < 0 || !p->refs[i]) {
		pool_error(p, "put_page(%p): %s", addr, i < 0 ? "not a pool page" : "page is free");
		return;
	}
	if (--p->refs[i] == 0)
		pool_release(p, i);
}

int kp_page_count(void *addr)
{
	struct kp_pool *p = &kp_cur->pool;
	long i = page_index(p, addr);

	if (i < 0) {
		pool_error(p, "page_count(%p): not a pool page", addr);
		return 0;
	}
	return p->refs[i];
}

void *kp_phys_to_virt(uint64_t phys)
{
	struct kp_pool *p = &kp_cur->pool;

	if (kp_pool_owns_phys(p, phys))
		return p->mem + (phys - p->phys_base);
	return (void *)(uintptr_t)phys;
}

uint64_t kp_virt_to_phys(void *addr)
{
	struct kp_pool *p = &kp_cur->pool;
	long i = page_index(p, addr);

	if (i < 0)
		return (uint64_t)(uintptr_t)addr;
	return p->phys_base + (uint64_t)((unsigned char *)addr - p->mem);
}

void kp_dcache_clean_inval_poc(void *addr, size_t size)
{
	kp_cur->pool.cmo++;
	kp_log_event(KP_EV_DCACHE, kp_virt_to_phys(addr), size);
}

void kp_icache_inval_pou(void *addr, size_t size)
{
	kp_cur->pool.cmo++;
	kp_log_event(KP_EV_ICACHE, kp_virt_to_phys(addr), size);
}

/* ---- event log ---- */

void kp_log_event(uint32_t kind, uint64_t a, uint64_t b)
{
	kp_log_event_level(kind, a, b, KP_LEVEL_UNKNOWN);
}

void kp_log_event_level(uint32_t kind, uint64_t a, uint64_t b, int8_t entry_level)
{
	struct kp_log *l;

	if (!kp_cur)
		return;
	l = &kp_cur->log;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->ev = realloc(l->ev, l->cap * sizeof(*l->ev));
		if (!l->ev) {
			perror("kernel-parity: log");
			exit(2);
		}
	}
	l->ev[l->n].kind = kind;
	l->ev[l->n].a = a;
	l->ev[l->n].b = b;
	l->ev[l->n].entry_level = entry_level;
	l->n++;
}

#include "kp_shim.h"

void kp_log_vmid_range(uint64_t addr, uint64_t size)
{
	/* The largest range one TLBI covers, in pages: (31 + 1) << (5 * 3 + 1). */
	const uint64_t max_pages = 32ull << 16;
	uint64_t pages = size >> KP_PAGE_SHIFT;

	if (!kp_caps.tlb_range) {
		kp_log_event(KP_EV_TLBI_VMID, 0, 0);
		return;
	}
	while (pages > 0) {
		uint64_t n = pages < max_pages ? pages : max_pages;

		kp_log_event(KP_EV_TLBI_RANGE, addr, n << KP_PAGE_SHIFT);
		addr += n << KP_PAGE_SHIFT;
		pages -= n;
	}
}

const char *kp_ev_name(uint32_t kind)
{
	switch (kind) {
	case KP_EV_TLBI_IPA:
		return "tlbi-ipa";
	case KP_EV_TLBI_IPA_NSH:
		return "tlbi-ipa-nsh";
	case KP_EV_TLBI_RANGE:
		return "tlbi-range";
	case KP_EV_TLBI_VMID:
		return "tlbi-vmid";
	case KP_EV_TLBI_HYP:
		return "tlbi-hyp";
	case KP_EV_DCACHE:
		return "dcache";
	case KP_EV_ICACHE:
		return "icache";
	case KP_EV_FORCE_PTE:
		return "force_pte_cb";
	default:
		return "?";
	}
}

/*
 * The stage-2 table's mm_ops: table pages from a static pool (layout.ld's
 * .pool) with a reference count each, the vCPUs' memory caches filled from
 * it, identity phys<->virt, real cache maintenance, and the grace period
 * of grace.c for unlinked subtrees.
 *
 * A pool page is free, in a memory cache (taken, count 0), or a table page
 * (count >= 1). zalloc_page takes pages only from the memory cache it is
 * given, as KVM's stage-2 mm_ops do; the root comes from
 * zalloc_pages_exact.
 */
#include "arch.h"
#include "hv.h"

#define POOL_PAGES ((int)(HV_POOL_SIZE / PAGE))

static spinlock_t pool_lock;
static uint64_t taken[POOL_PAGES / 64];
static atomic_uint refs[POOL_PAGES];
static _Atomic uint64_t in_use, peak;

static uint64_t pool_base(void) { return (uint64_t)(uintptr_t)__pool_start; }

static int index_of(void *addr)
{
	uint64_t off = (uint64_t)(uintptr_t)addr - pool_base();

	if (off / PAGE >= (uint64_t)POOL_PAGES)
		hv_panic("mm_ops: %p is not a stage-2 pool page", addr);
	return (int)(off / PAGE);
}

bool pool_contains(uint64_t pa)
{
	return pa - pool_base() < (uint64_t)POOL_PAGES * PAGE && pa % PAGE == 0;
}

int pool_refcount(uint64_t pa)
{
	return (int)atomic_load(&refs[index_of((void *)(uintptr_t)pa)]);
}

static bool is_taken(int i) { return taken[i / 64] & (1ull << (i % 64)); }

/* n free pages aligned to n pages, zeroed, count still 0. */
static void *take(int n)
{
	spin_lock(&pool_lock);
	for (int start = 0; start + n <= POOL_PAGES;) {
		int busy = -1;
		for (int i = start + n - 1; i >= start; i--)
			if (is_taken(i)) {
				busy = i;
				break;
			}
		if (busy >= 0) {
			start = (busy + 1 + n - 1) / n * n;
			continue;
		}
		for (int i = start; i < start + n; i++)
			taken[i / 64] |= 1ull << (i % 64);
		spin_unlock(&pool_lock);
		uint64_t *p = (uint64_t *)(uintptr_t)(pool_base() + (uint64_t)start * PAGE);
		for (size_t w = 0; w < (size_t)n * PAGE / 8; w++)
			p[w] = 0;
		uint64_t now = atomic_fetch_add(&in_use, (uint64_t)n) + (uint64_t)n;
		for (uint64_t old = atomic_load(&peak); old < now && !atomic_compare_exchange_weak(&peak, &old, now);)
			;
		atomic_fetch_add_explicit(&stats.pages_allocated, (uint64_t)n, memory_order_relaxed);
		return p;
	}
	spin_unlock(&pool_lock);
	return NULL;
}

static void release(int i)
{
	spin_lock(&pool_lock);
	if (!is_taken(i))
		hv_panic("pool page %d freed twice", i);
	taken[i / 64] &= ~(1ull << (i % 64));
	spin_unlock(&pool_lock);
	atomic_fetch_sub(&in_use, 1);
	COUNT(pages_freed);
}

void pool_usage(uint64_t *now, uint64_t *max)
{
	*now = atomic_load(&in_use);
	*max = atomic_load(&peak);
}

int pool_table_pages(void)
{
	int n = 0;

	for (int i = 0; i < POOL_PAGES; i++)
		n += atomic_load(&refs[i]) != 0;
	return n;
}

/* kvm_mmu_topup_memory_cache: nothing to do with at least `min` pages in
 * it, else fill it up. */
int memcache_topup(struct kvm_mmu_memory_cache *mc, int min)
{
	if (mc->nobjs >= min)
		return 0;
	COUNT(topups);
	while (mc->nobjs < MEMCACHE_CAPACITY) {
		void *p = take(1);
		if (!p)
			return mc->nobjs >= min ? 0 : -PGW_ENOMEM;
		mc->objects[mc->nobjs++] = p;
	}
	return 0;
}

static void *zalloc_page(void *arg)
{
	struct kvm_mmu_memory_cache *mc = arg;

	if (!mc || mc->nobjs == 0)
		return NULL;
	void *p = mc->objects[--mc->nobjs];
	atomic_store_explicit(&refs[index_of(p)], 1, memory_order_release);
	return p;
}

static void *zalloc_pages_exact(size_t size)
{
	int n = (int)((size + PAGE - 1) / PAGE);
	void *p = take(n);

	if (p)
		for (int i = 0; i < n; i++)
			atomic_store_explicit(&refs[index_of(p) + i], 1, memory_order_release);
	return p;
}

static void free_pages_exact(void *addr, size_t size)
{
	int first = index_of(addr);

	for (int i = first; i < first + (int)((size + PAGE - 1) / PAGE); i++) {
		atomic_store(&refs[i], 0);
		release(i);
	}
}

static void free_unlinked_table(void *addr, int8_t level)
{
	COUNT(deferred_frees);
	grace_defer_free(addr, level);
}

static void get_page(void *addr)
{
	unsigned prev = atomic_fetch_add_explicit(&refs[index_of(addr)], 1, memory_order_relaxed);

	/* 513 references at most (512 entries and the table's own). */
	if (prev == 0 || prev > 1024)
		hv_panic("get_page(%p): count was %u", addr, prev);
}

static void put_page(void *addr)
{
	int i = index_of(addr);
	unsigned prev = atomic_fetch_sub_explicit(&refs[i], 1, memory_order_acq_rel);

	if (prev == 0)
		hv_panic("put_page on free pool page %d", i);
	if (prev == 1)
		release(i);
}

static int page_count(void *addr)
{
	return (int)atomic_load_explicit(&refs[index_of(addr)], memory_order_acquire);
}

/* Everything the hypervisor touches is identity-mapped at EL2: its pool,
 * and guest RAM for cache maintenance by address. */
static void *phys_to_virt(uint64_t phys) { return (void *)(uintptr_t)phys; }
static uint64_t virt_to_phys(void *addr) { return (uint64_t)(uintptr_t)addr; }

static void dcache(void *addr, size_t size)
{
	COUNT(dcache_ops);
	dcache_clean_inval_poc((uint64_t)(uintptr_t)addr, size);
}

static void icache(void *addr, size_t size)
{
	COUNT(icache_ops);
	icache_inval_pou((uint64_t)(uintptr_t)addr, size);
}

struct kvm_pgtable_mm_ops stage2_mm_ops = {
	.zalloc_page = zalloc_page,
	.zalloc_pages_exact = zalloc_pages_exact,
	.free_pages_exact = free_pages_exact,
	.free_unlinked_table = free_unlinked_table,
	.get_page = get_page,
	.put_page = put_page,
	.page_count = page_count,
	.phys_to_virt = phys_to_virt,
	.virt_to_phys = virt_to_phys,
	.dcache_clean_inval_poc = dcache,
	.icache_inval_pou = icache,
};

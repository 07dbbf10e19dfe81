#include "host.h"

#include "check.h"

#include <string.h>

static _Alignas(4096) unsigned char pool_mem[POOL_PAGES][PAGE_SIZE];
static int pool_refs[POOL_PAGES];
static struct pool_stats stats;
static long budget = -1;

#define MAX_DEFERRED 64
static struct {
	void *table;
	int8_t level;
} deferred[MAX_DEFERRED];
static int ndeferred;

static long page_index(const void *addr)
{
	const unsigned char *p = addr;
	const unsigned char *base = &pool_mem[0][0];

	if (p < base || p >= base + sizeof(pool_mem))
		return -1;
	return (long)((size_t)(p - base) / PAGE_SIZE);
}

static int take_budget(long pages)
{
	if (budget < 0)
		return 1;
	if (budget < pages)
		return 0;
	budget -= pages;
	return 1;
}

/* n free pages in a row, aligned to n pages (n a power of two). */
static void *pool_alloc(long n)
{
	long i, j;

	if (!take_budget(n))
		return NULL;
	for (i = 0; i + n <= POOL_PAGES; i += n) {
		for (j = 0; j < n && !pool_refs[i + j]; j++)
			;
		if (j < n)
			continue;
		for (j = 0; j < n; j++) {
			pool_refs[i + j] = 1;
			memset(pool_mem[i + j], 0, PAGE_SIZE);
		}
		stats.in_use += (unsigned long)n;
		return pool_mem[i];
	}
	return NULL;
}

static void pool_release(long idx)
{
	/* Poison, so that a walker reading a freed page finds garbage. */
	memset(pool_mem[idx], 0xa5, PAGE_SIZE);
	stats.in_use--;
}

static void *host_zalloc_page(void *arg)
{
	struct kvm_mmu_memory_cache *mc = arg;

	if (mc) {
		if (mc->nobjs <= 0)
			return NULL;
		mc->nobjs--;
	}
	return pool_alloc(1);
}

static void *host_zalloc_pages_exact(size_t size)
{
	long n = (long)(size / PAGE_SIZE), p2 = 1;

	while (p2 < n)
		p2 <<= 1;
	if (p2 != n || size % PAGE_SIZE)
		return NULL;
	return pool_alloc(n);
}

static void host_free_pages_exact(void *addr, size_t size)
{
	long idx = page_index(addr), i;

	if (idx < 0) {
		stats.bad_frees++;
		return;
	}
	for (i = idx; i < idx + (long)(size / PAGE_SIZE); i++) {
		if (!pool_refs[i]) {
			stats.double_frees++;
			continue;
		}
		pool_refs[i] = 0;
		pool_release(i);
	}
}

static void host_free_unlinked_table(void *addr, int8_t level)
{
	/* Other walkers may still be reading it: wait for the grace period. */
	stats.deferred++;
	if (ndeferred == MAX_DEFERRED) {
		stats.bad_frees++;
		return;
	}
	deferred[ndeferred].table = addr;
	deferred[ndeferred].level = level;
	ndeferred++;
}

static void host_get_page(void *addr)
{
	long idx = page_index(addr);

	stats.last_get_page = addr;
	if (idx < 0 || !pool_refs[idx]) {
		stats.bad_frees++;
		return;
	}
	pool_refs[idx]++;
}

static void host_put_page(void *addr)
{
	long idx = page_index(addr);

	stats.last_put_page = addr;
	if (idx < 0) {
		stats.bad_frees++;
		return;
	}
	if (!pool_refs[idx]) {
		stats.double_frees++;
		return;
	}
	if (--pool_refs[idx] == 0)
		pool_release(idx);
}

static int host_page_count(void *addr)
{
	long idx = page_index(addr);

	return idx < 0 ? 0 : pool_refs[idx];
}

/* Table pages live in the pool; guest memory is never touched, so any other
 * physical address maps to itself, as through a linear map. */
static void *host_phys_to_virt(uint64_t phys)
{
	if (phys >= POOL_PHYS_BASE && phys < POOL_PHYS_BASE + sizeof(pool_mem))
		return &pool_mem[0][0] + (phys - POOL_PHYS_BASE);
	return (void *)(uintptr_t)phys;
}

static uint64_t host_virt_to_phys(void *addr)
{
	long idx = page_index(addr);

	if (idx < 0)
		return (uint64_t)(uintptr_t)addr;
	return POOL_PHYS_BASE + (uint64_t)((unsigned char *)addr - &pool_mem[0][0]);
}

static void host_dcache_clean_inval_poc(void *addr, size_t size)
{
	(void)addr;
	(void)size;
	stats.dcache++;
}

static void host_icache_inval_pou(void *addr, size_t size)
{
	(void)addr;
	(void)size;
	stats.icache++;
}

struct kvm_pgtable_mm_ops host_mm_ops = {
	.zalloc_page = host_zalloc_page,
	.zalloc_pages_exact = host_zalloc_pages_exact,
	.free_pages_exact = host_free_pages_exact,
	.free_unlinked_table = host_free_unlinked_table,
	.get_page = host_get_page,
	.put_page = host_put_page,
	.page_count = host_page_count,
	.phys_to_virt = host_phys_to_virt,
	.virt_to_phys = host_virt_to_phys,
	.dcache_clean_inval_poc = host_dcache_clean_inval_poc,
	.icache_inval_pou = host_icache_inval_pou,
};

void pool_reset(void)
{
	memset(pool_refs, 0, sizeof(pool_refs));
	memset(&stats, 0, sizeof(stats));
	budget = -1;
	ndeferred = 0;
}

struct pool_stats pool_stats(void)
{
	return stats;
}

void pool_set_budget(long pages)
{
	budget = pages;
}

void pool_quiesce(void)
{
	int i;

	for (i = 0; i < ndeferred; i++)
		kvm_pgtable_stage2_free_unlinked(&host_mm_ops, deferred[i].table,
						 deferred[i].level);
	ndeferred = 0;
}

int pool_page_count(uint64_t phys)
{
	return host_page_count(host_phys_to_virt(phys));
}

static void tlbi_log(struct vm *vm, enum tlbi_kind kind, uint64_t addr, int level, uint64_t size)
{
	if (vm->tlbi_n < TLBI_LOG) {
		struct tlbi *t = &vm->tlbi[vm->tlbi_n];

		t->kind = kind;
		t->addr = addr;
		t->level = level;
		t->size = size;
	}
	vm->tlbi_n++;
}

void tlbi_clear(struct vm *vm)
{
	vm->tlbi_n = 0;
	memset(vm->tlbi, 0, sizeof(vm->tlbi));
}

static void vm_tlb_flush_vmid_ipa(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	struct vm *vm = container_of(mmu, struct vm, mmu);

	vm->tlbi_ipa++;
	vm->last_tlbi_ipa = ipa;
	vm->last_tlbi_level = level;
	tlbi_log(vm, TLBI_IPA, ipa, level, 0);
}

static void vm_tlb_flush_vmid_ipa_nsh(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	struct vm *vm = container_of(mmu, struct vm, mmu);

	vm->tlbi_ipa_nsh++;
	tlbi_log(vm, TLBI_IPA_NSH, ipa, level, 0);
}

static void vm_tlb_flush_vmid_range(struct kvm_s2_mmu *mmu, uint64_t addr, uint64_t size)
{
	struct vm *vm = container_of(mmu, struct vm, mmu);

	vm->tlbi_range++;
	tlbi_log(vm, TLBI_RANGE, addr, 0, size);
}

static void vm_tlb_flush_vmid(struct kvm_s2_mmu *mmu)
{
	struct vm *vm = container_of(mmu, struct vm, mmu);

	vm->tlbi_vmid++;
	tlbi_log(vm, TLBI_VMID, 0, 0, 0);
}

void vm_set_tlb_callbacks(struct vm *vm)
{
	vm->mmu.tlb_flush_vmid_ipa = vm_tlb_flush_vmid_ipa;
	vm->mmu.tlb_flush_vmid_range = vm_tlb_flush_vmid_range;
	vm->mmu.tlb_flush_vmid = vm_tlb_flush_vmid;
	vm->mmu.tlb_flush_vmid_ipa_nsh = vm_tlb_flush_vmid_ipa_nsh;
}

int vm_init(struct vm *vm, uint64_t vtcr)
{
	memset(vm, 0, sizeof(*vm));
	vm->mmu.vtcr = vtcr;
	vm_set_tlb_callbacks(vm);
	return kvm_pgtable_stage2_init(&vm->pgt, &vm->mmu, &host_mm_ops);
}

struct kvm_mmu_memory_cache *vm_mc(struct vm *vm)
{
	vm->mc.nobjs = 4 * POOL_PAGES;
	return &vm->mc;
}

static int fingerprint_visit(const struct kvm_pgtable_visit_ctx *ctx,
			     enum kvm_pgtable_walk_flags visit)
{
	struct table_print *p = ctx->arg;

	(void)visit;
	if (ctx->old) {
		p->entries++;
		p->hash = p->hash * 1000003u ^ ctx->addr ^ (ctx->old << 1) ^ (uint64_t)ctx->level;
	}
	return 0;
}

struct table_print table_fingerprint(struct kvm_pgtable *pgt)
{
	struct table_print p = { 0, 0 };
	struct kvm_pgtable_walker w = {
		.cb = fingerprint_visit,
		.arg = &p,
		.flags = KVM_PGTABLE_WALK_LEAF | KVM_PGTABLE_WALK_TABLE_PRE,
	};

	CHECK_EQ(kvm_pgtable_walk(pgt, 0, 1ull << 40, &w), 0);
	return p;
}

int table_print_eq(struct table_print a, struct table_print b)
{
	return a.entries == b.entries && a.hash == b.hash;
}

/*
 * The benchmark's operations, written once and compiled twice:
 *
 * - with -DBENCH_SIDE_LINUX against the kernel's <asm/kvm_pgtable.h> (the
 *   shims in kernel-parity/shim, -include linux_pgtable_rename.h): every
 *   kvm_* call below becomes a call into Linux 6.12's pgtable.c;
 * - with -DBENCH_SIDE_PGWALK against include/pgwalk.h: the same calls go
 *   to libpgwalk.a, and the typed pgw_* rows are defined too (the
 *   fault-path ones on a table bound once per row, pgw_bind_stage2, as a
 *   VM's fault path would keep it).
 *
 * The two differ only where the C surfaces do (the MMU structure: the
 * kernel reaches its TLB invalidations through the shim's hypervisor-call
 * stubs, pgwalk through struct kvm_s2_mmu callbacks doing the same
 * counting; the memory cache a split takes), each marked below. Both use
 * host.c's pool through the same mm_ops functions.
 */
#include "bench.h"

#ifdef BENCH_SIDE_LINUX
#include <asm/kvm_pgtable.h>
#define SIDE bench_linux
#define SIDE_NAME "linux"
#else
#include "pgwalk.h"
#define SIDE bench_pgwalk
#define SIDE_NAME "pgwalk"
/* The memory cache is the host's type (pgwalk.h leaves it opaque). */
struct kvm_mmu_memory_cache {
	int nobjs;
};
#endif
#include "kp_shim.h"

#include <stdlib.h>

_Static_assert(sizeof(struct kvm_mmu_memory_cache) == sizeof(struct bench_mc),
	       "both sides' memory cache is the host's");

/* Enough for any row: the pool runs out first. */
#define MC_FULL (1 << 30)
#define PROT_RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)

/* A last-level table of the walk row's range, for its floor. */
struct leaf_table {
	kvm_pte_t *entries;
	uint64_t ipa;
};

struct table {
	struct kvm_pgtable pgt;
	struct kvm_s2_mmu mmu;
	struct kvm_mmu_memory_cache mc;
	/* The last-level tables found by floor_prepare. */
	struct leaf_table *leaves;
	size_t nleaves;
#ifdef BENCH_SIDE_PGWALK
	/* The pgw_* fault-path rows' binding of pgt. */
	struct pgw_bound_stage2 bound;
#endif
};

static struct kvm_pgtable_mm_ops mm_ops;

/* No walker runs concurrently: an unlinked table may go at once. */
static void free_unlinked_table(void *addr, int8_t level)
{
	kvm_pgtable_stage2_free_unlinked(&mm_ops, addr, level);
}

static struct kvm_pgtable_mm_ops mm_ops = {
	.zalloc_page = bench_zalloc_page,
	.zalloc_pages_exact = bench_zalloc_pages_exact,
	.free_pages_exact = bench_free_pages_exact,
	.free_unlinked_table = free_unlinked_table,
	.get_page = bench_get_page,
	.put_page = bench_put_page,
	.page_count = bench_page_count,
	.phys_to_virt = bench_phys_to_virt,
	.virt_to_phys = bench_virt_to_phys,
	.dcache_clean_inval_poc = bench_dcache_clean_inval_poc,
	.icache_inval_pou = bench_icache_inval_pou,
};

#ifdef BENCH_SIDE_PGWALK
/* What kernel-parity/shim's hypervisor-call stubs do for the kernel: count
 * the invalidation, call the hook if one is set (none is, here). */
static inline void record(struct kvm_s2_mmu *mmu, enum kp_tlbi_kind kind, uint64_t a, uint64_t b)
{
	kp_tlbi_count[kind]++;
	if (kp_tlbi_hook)
		kp_tlbi_hook(mmu, kind, a, b);
}

static void tlb_ipa(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	record(mmu, KP_TLBI_IPA, ipa, (uint64_t)(int64_t)level);
}

static void tlb_ipa_nsh(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	record(mmu, KP_TLBI_IPA_NSH, ipa, (uint64_t)(int64_t)level);
}

static void tlb_range(struct kvm_s2_mmu *mmu, uint64_t addr, uint64_t size)
{
	/* The kernel without FEAT_TLBIRANGE (kp_caps.tlb_range is false)
	 * turns a range into a whole-VMID invalidation. */
	(void)addr;
	(void)size;
	record(mmu, KP_TLBI_VMID, 0, 0);
}

static void tlb_vmid(struct kvm_s2_mmu *mmu)
{
	record(mmu, KP_TLBI_VMID, 0, 0);
}
#endif

static void *create(void)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->mmu.vtcr = BENCH_VTCR;
#ifdef BENCH_SIDE_LINUX
	/* KVM points the MMU at its table before using it. */
	t->mmu.pgt = &t->pgt;
#else
	t->mmu.tlb_flush_vmid_ipa = tlb_ipa;
	t->mmu.tlb_flush_vmid_ipa_nsh = tlb_ipa_nsh;
	t->mmu.tlb_flush_vmid_range = tlb_range;
	t->mmu.tlb_flush_vmid = tlb_vmid;
#endif
	if (__kvm_pgtable_stage2_init(&t->pgt, &t->mmu, &mm_ops, 0, NULL)) {
		free(t);
		return NULL;
	}
	return t;
}

static void destroy(void *p)
{
	struct table *t = p;

	kvm_pgtable_stage2_destroy(&t->pgt);
	free(t->leaves);
	free(t);
}

static int map(void *p, uint64_t ipa, uint64_t pages, uint64_t pa)
{
	struct table *t = p;

	t->mc.nobjs = MC_FULL;
	return kvm_pgtable_stage2_map(&t->pgt, ipa, pages * BENCH_PAGE, pa, PROT_RW, &t->mc, 0);
}

static int count_valid(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	(void)visit;
	*(uint64_t *)ctx->arg += ctx->old & 1;
	return 0;
}

static int walk(void *p, uint64_t ipa, uint64_t pages, uint64_t *valid)
{
	struct table *t = p;
	struct kvm_pgtable_walker w = {
		.cb = count_valid,
		.arg = valid,
		.flags = KVM_PGTABLE_WALK_LEAF,
	};

	*valid = 0;
	return kvm_pgtable_walk(&t->pgt, ipa, pages * BENCH_PAGE, &w);
}

/* Records each last-level table the walk reaches (its TABLE_PRE visit at
 * level 2). */
static int collect_leaf_tables(const struct kvm_pgtable_visit_ctx *ctx,
			       enum kvm_pgtable_walk_flags visit)
{
	struct table *t = ctx->arg;
	struct leaf_table *l;

	(void)visit;
	if (ctx->level != KVM_PGTABLE_LAST_LEVEL - 1)
		return 0;
	l = realloc(t->leaves, (t->nleaves + 1) * sizeof(*l));
	if (!l)
		return -1;
	t->leaves = l;
	l[t->nleaves].entries = ctx->mm_ops->phys_to_virt(ctx->old & KVM_PTE_ADDR_MASK);
	l[t->nleaves].ipa = ctx->addr;
	t->nleaves++;
	return 0;
}

static int floor_prepare(void *p, uint64_t ipa, uint64_t pages)
{
	struct table *t = p;
	struct kvm_pgtable_walker w = {
		.cb = collect_leaf_tables,
		.arg = t,
		.flags = KVM_PGTABLE_WALK_TABLE_PRE,
	};

	return kvm_pgtable_walk(&t->pgt, ipa, pages * BENCH_PAGE, &w);
}

/* Reached through memory, so that the loop below calls it indirectly, as a
 * walker calls its caller's visitor. */
static int (*volatile floor_visitor)(const struct kvm_pgtable_visit_ctx *,
				     enum kvm_pgtable_walk_flags) = count_valid;

/*
 * The walk row without a walk: its visitor called on its entries by a
 * plain loop over the tables floor_prepare found, with the context a
 * walker must give it (the walker's fields set once, the entry's four per
 * entry): what the per-entry call costs by itself.
 */
static int walk_floor(void *p, uint64_t ipa, uint64_t pages, uint64_t *valid)
{
	struct table *t = p;
	int (*cb)(const struct kvm_pgtable_visit_ctx *, enum kvm_pgtable_walk_flags) =
		floor_visitor;
	uint64_t end = ipa + pages * BENCH_PAGE;
	struct kvm_pgtable_visit_ctx c = {
		.arg = valid,
		.mm_ops = &mm_ops,
		.start = ipa,
		.end = end,
		.flags = KVM_PGTABLE_WALK_LEAF,
	};
	size_t k;

	*valid = 0;
	for (k = 0; k < t->nleaves; k++) {
		uint64_t base = t->leaves[k].ipa;
		uint64_t first = base < ipa ? (ipa - base) / BENCH_PAGE : 0;
		uint64_t last = (end - base) / BENCH_PAGE;
		/* Locals, kept in registers across the calls (the visitor may
		 * write any memory it can reach). */
		kvm_pte_t *e = t->leaves[k].entries + first;
		kvm_pte_t *stop = t->leaves[k].entries + (last > 512 ? 512 : last);
		uint64_t addr = base + first * BENCH_PAGE;

		for (; e < stop; e++, addr += BENCH_PAGE) {
			int ret;

			c.ptep = e;
			c.old = __atomic_load_n(e, __ATOMIC_RELAXED);
			c.addr = addr;
			c.level = KVM_PGTABLE_LAST_LEVEL;
			ret = cb(&c, KVM_PGTABLE_WALK_LEAF);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int wrprotect(void *p, uint64_t ipa, uint64_t pages)
{
	return kvm_pgtable_stage2_wrprotect(&((struct table *)p)->pgt, ipa, pages * BENCH_PAGE);
}

static int fault_in(void *p, uint64_t ipa, uint64_t pages, uint64_t pa)
{
	struct table *t = p;
	uint64_t i;
	int ret;

	t->mc.nobjs = MC_FULL;
	for (i = 0; i < pages; i++) {
		ret = kvm_pgtable_stage2_map(&t->pgt, ipa + i * BENCH_PAGE, BENCH_PAGE,
					     pa + i * BENCH_PAGE, PROT_RW, &t->mc,
					     KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT);
		if (ret)
			return ret;
	}
	return 0;
}

static int relax(void *p, uint64_t ipa, uint64_t pages)
{
	struct table *t = p;
	uint64_t i;
	int ret;

	for (i = 0; i < pages; i++) {
		ret = kvm_pgtable_stage2_relax_perms(&t->pgt, ipa + i * BENCH_PAGE, PROT_RW);
		if (ret)
			return ret;
	}
	return 0;
}

static int unmap(void *p, uint64_t ipa, uint64_t pages)
{
	return kvm_pgtable_stage2_unmap(&((struct table *)p)->pgt, ipa, pages * BENCH_PAGE);
}

static int mkyoung(void *p, uint64_t ipa, uint64_t pages)
{
	struct table *t = p;
	uint64_t i;

	for (i = 0; i < pages; i++)
		/* The old entry: zero only when there was no valid leaf. */
		if (!kvm_pgtable_stage2_mkyoung(&t->pgt, ipa + i * BENCH_PAGE))
			return -1;
	return 0;
}

static int test_clear_young(void *p, uint64_t ipa, uint64_t pages, bool *young)
{
	*young = kvm_pgtable_stage2_test_clear_young(&((struct table *)p)->pgt, ipa,
						     pages * BENCH_PAGE, true);
	return 0;
}

static int split(void *p, uint64_t ipa, uint64_t pages)
{
	struct table *t = p;
#ifdef BENCH_SIDE_LINUX
	/* The kernel finds the MMU from the cache (container_of): it must be
	 * the MMU's split cache. */
	struct kvm_mmu_memory_cache *mc = &t->mmu.split_page_cache;
#else
	struct kvm_mmu_memory_cache *mc = &t->mc;
#endif

	mc->nobjs = MC_FULL;
	return kvm_pgtable_stage2_split(&t->pgt, ipa, pages * BENCH_PAGE, mc);
}

static int set_owner(void *p, uint64_t ipa, uint64_t pages)
{
	struct table *t = p;

	t->mc.nobjs = MC_FULL;
	return kvm_pgtable_stage2_set_owner(&t->pgt, ipa, pages * BENCH_PAGE, &t->mc, 1);
}

#ifdef BENCH_SIDE_PGWALK
static int count_valid_typed(struct pgw_visit *v)
{
	*(uint64_t *)v->arg += v->old & 1;
	return 0;
}

static int pgw_walk_rows(void *p, uint64_t ipa, uint64_t pages, uint64_t *valid)
{
	struct table *t = p;
	struct pgw_walker w = {
		.cb = count_valid_typed,
		.arg = valid,
		.flags = KVM_PGTABLE_WALK_LEAF,
		.capability = PGW_EXCLUSIVE,
	};
	struct pgw_walk_result res;

	*valid = 0;
	return pgw_walk(&t->pgt, ipa, pages * BENCH_PAGE, &w, &res);
}

static int count_valid_run(const struct pgw_leaf_run *run)
{
	uint64_t *valid = run->arg, n = 0, i;

	for (i = 0; i < run->count; i++)
		n += run->ptes[i] & 1;
	*valid += n;
	return 0;
}

static int pgw_leaf_runs(void *p, uint64_t ipa, uint64_t pages, uint64_t *valid)
{
	struct table *t = p;

	*valid = 0;
	return pgw_walk_leaf_runs(&t->pgt, ipa, pages * BENCH_PAGE, count_valid_run, valid);
}

static int pgw_fault_in(void *p, uint64_t ipa, uint64_t pages, uint64_t pa)
{
	struct table *t = p;
	pgw_fault_outcome outcome;
	uint64_t i;
	int ret;

	t->mc.nobjs = MC_FULL;
	ret = pgw_bind_stage2(&t->pgt, &t->bound);
	if (ret)
		return ret;
	for (i = 0; i < pages; i++) {
		ret = pgw_bound_fault_map(&t->bound, ipa + i * BENCH_PAGE, BENCH_PAGE,
					  pa + i * BENCH_PAGE, PROT_RW, &t->mc, 0, &outcome);
		if (ret)
			return ret;
		if (outcome != PGW_FAULT_FIXED)
			return -1;
	}
	return 0;
}

static int pgw_relax(void *p, uint64_t ipa, uint64_t pages)
{
	struct table *t = p;
	pgw_fault_outcome outcome;
	uint64_t i;
	int ret;

	ret = pgw_bind_stage2(&t->pgt, &t->bound);
	if (ret)
		return ret;
	for (i = 0; i < pages; i++) {
		ret = pgw_bound_fault_relax_perms(&t->bound, ipa + i * BENCH_PAGE, PROT_RW,
						  &outcome);
		if (ret)
			return ret;
		if (outcome != PGW_FAULT_FIXED)
			return -1;
	}
	return 0;
}

static int pgw_mkyoung(void *p, uint64_t ipa, uint64_t pages)
{
	struct table *t = p;
	pgw_fault_outcome outcome;
	uint64_t i;
	int ret;

	ret = pgw_bind_stage2(&t->pgt, &t->bound);
	if (ret)
		return ret;
	for (i = 0; i < pages; i++) {
		ret = pgw_bound_fault_mkyoung(&t->bound, ipa + i * BENCH_PAGE, &outcome);
		if (ret)
			return ret;
		if (outcome != PGW_FAULT_FIXED)
			return -1;
	}
	return 0;
}

static int pgw_test_clear_young(void *p, uint64_t ipa, uint64_t pages, bool *young)
{
	return pgw_stage2_test_clear_young(&((struct table *)p)->pgt, ipa, pages * BENCH_PAGE,
					   true, young);
}
#endif

const struct bench_side SIDE = {
	.name = SIDE_NAME,
	.create = create,
	.destroy = destroy,
	.map = map,
	.walk = walk,
	.wrprotect = wrprotect,
	.fault_in = fault_in,
	.relax = relax,
	.unmap = unmap,
	.mkyoung = mkyoung,
	.test_clear_young = test_clear_young,
	.split = split,
	.set_owner = set_owner,
	.floor_prepare = floor_prepare,
	.walk_floor = walk_floor,
#ifdef BENCH_SIDE_PGWALK
	.pgw_walk = pgw_walk_rows,
	.pgw_fault_in = pgw_fault_in,
	.pgw_relax = pgw_relax,
	.pgw_mkyoung = pgw_mkyoung,
	.pgw_test_clear_young = pgw_test_clear_young,
	.pgw_leaf_runs = pgw_leaf_runs,
#endif
};

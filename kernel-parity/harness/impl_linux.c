/*
 * The Linux 6.12 implementation behind the neutral interface: the kernel's
 * own pgtable.c, compiled with the shims and its global symbols renamed
 * (build.sh prefixes them with linux_ and generates the header of #defines
 * this file is compiled with, -include linux_pgtable_rename.h).
 *
 * This file sees the kernel's structures (through <asm/kvm_pgtable.h>) and
 * the harness's plain types (kp.h), nothing of pgwalk's.
 */
#include <asm/kvm_pgtable.h>
#include <asm/stage2_pgtable.h>

#include "kp.h"

struct linux_state {
	struct kvm_pgtable pgt;
	struct kvm_s2_mmu mmu;
	kp_force_pte_fn force_pte;
	bool hyp;
};

static struct kvm_pgtable_mm_ops linux_mm_ops = {
	.zalloc_page = kp_zalloc_page,
	.zalloc_pages_exact = kp_zalloc_pages_exact,
	.free_pages_exact = kp_free_pages_exact,
	.free_unlinked_table = kp_free_unlinked_table,
	.get_page = kp_get_page,
	.put_page = kp_put_page,
	.page_count = kp_page_count,
	.phys_to_virt = kp_phys_to_virt,
	.virt_to_phys = kp_virt_to_phys,
	.dcache_clean_inval_poc = kp_dcache_clean_inval_poc,
	.icache_inval_pou = kp_icache_inval_pou,
};

/* A hyp allocator without page_count (kvm_pgtable_hyp_unmap then does
 * nothing); filled from linux_mm_ops by the first hyp init. */
static struct kvm_pgtable_mm_ops linux_hyp_mm_ops_no_count;

_Static_assert(sizeof(struct kvm_mmu_memory_cache) == sizeof(struct kp_mc) &&
		       __builtin_offsetof(struct kvm_mmu_memory_cache, nobjs) ==
			       __builtin_offsetof(struct kp_mc, nobjs),
	       "the shim's memory cache must be the harness's");

static void linux_tlbi(void *mmu, enum kp_tlbi_kind kind, uint64_t a, uint64_t b)
{
	(void)mmu;
	/* enum kp_tlbi_kind and the log's TLBI kinds share their values. */
	kp_log_event((uint32_t)kind, a, b);
}

static bool linux_force_pte(u64 addr, u64 end, enum kvm_pgtable_prot prot)
{
	struct linux_state *st = kp_cur->st;

	kp_log_event(KP_EV_FORCE_PTE, addr, end);
	return st->force_pte(addr, end, (uint64_t)prot);
}

static int l_init(void *p, uint64_t vtcr, uint32_t s2_flags, kp_force_pte_fn cb)
{
	struct linux_state *st = p;

	kp_tlbi_hook = linux_tlbi;
	st->mmu.vtcr = vtcr;
	/* KVM points the MMU at its table before using it (map reads it). */
	st->mmu.pgt = &st->pgt;
	st->force_pte = cb;
	return __kvm_pgtable_stage2_init(&st->pgt, &st->mmu, &linux_mm_ops,
					 (enum kvm_pgtable_stage2_flags)s2_flags,
					 cb ? linux_force_pte : NULL);
}

static void l_destroy(void *p)
{
	struct linux_state *st = p;

	if (st->pgt.pgd && st->hyp)
		kvm_pgtable_hyp_destroy(&st->pgt);
	else if (st->pgt.pgd)
		kvm_pgtable_stage2_destroy(&st->pgt);
}

static int l_hyp_init(void *p, unsigned va_bits, bool page_count)
{
	struct linux_state *st = p;

	kp_tlbi_hook = linux_tlbi;
	st->hyp = true;
	linux_hyp_mm_ops_no_count = linux_mm_ops;
	linux_hyp_mm_ops_no_count.page_count = NULL;
	return kvm_pgtable_hyp_init(&st->pgt, va_bits,
				    page_count ? &linux_mm_ops : &linux_hyp_mm_ops_no_count);
}

static int l_hyp_map(void *p, uint64_t addr, uint64_t size, uint64_t phys, uint64_t prot)
{
	return kvm_pgtable_hyp_map(&((struct linux_state *)p)->pgt, addr, size, phys,
				   (enum kvm_pgtable_prot)prot);
}

static uint64_t l_hyp_unmap(void *p, uint64_t addr, uint64_t size)
{
	return kvm_pgtable_hyp_unmap(&((struct linux_state *)p)->pgt, addr, size);
}

static uint64_t l_hyp_pte_prot(uint64_t pte)
{
	return (uint64_t)kvm_pgtable_hyp_pte_prot(pte);
}

static size_t l_pgd_size(uint64_t vtcr)
{
	return kvm_pgtable_stage2_pgd_size(vtcr);
}

static void l_geometry(void *p, void **pgd, int *start_level, unsigned *ia_bits)
{
	struct linux_state *st = p;

	*pgd = (void *)st->pgt.pgd;
	*start_level = st->pgt.start_level;
	*ia_bits = st->pgt.ia_bits;
}

static int l_map(void *p, uint64_t addr, uint64_t size, uint64_t phys, uint64_t prot,
		 struct kp_mc *mc, uint32_t flags)
{
	struct linux_state *st = p;

	return kvm_pgtable_stage2_map(&st->pgt, addr, size, phys, (enum kvm_pgtable_prot)prot,
				      mc, (enum kvm_pgtable_walk_flags)flags);
}

static int l_set_owner(void *p, uint64_t addr, uint64_t size, struct kp_mc *mc, uint8_t owner)
{
	struct linux_state *st = p;

	return kvm_pgtable_stage2_set_owner(&st->pgt, addr, size, mc, owner);
}

static int l_unmap(void *p, uint64_t addr, uint64_t size)
{
	return kvm_pgtable_stage2_unmap(&((struct linux_state *)p)->pgt, addr, size);
}

static int l_wrprotect(void *p, uint64_t addr, uint64_t size)
{
	return kvm_pgtable_stage2_wrprotect(&((struct linux_state *)p)->pgt, addr, size);
}

static uint64_t l_mkyoung(void *p, uint64_t addr, bool *have_pte)
{
	*have_pte = true;
	return kvm_pgtable_stage2_mkyoung(&((struct linux_state *)p)->pgt, addr);
}

static bool l_test_clear_young(void *p, uint64_t addr, uint64_t size, bool mkold)
{
	return kvm_pgtable_stage2_test_clear_young(&((struct linux_state *)p)->pgt, addr, size,
						   mkold);
}

static int l_relax_perms(void *p, uint64_t addr, uint64_t prot)
{
	return kvm_pgtable_stage2_relax_perms(&((struct linux_state *)p)->pgt, addr,
					      (enum kvm_pgtable_prot)prot);
}

static int l_flush(void *p, uint64_t addr, uint64_t size)
{
	return kvm_pgtable_stage2_flush(&((struct linux_state *)p)->pgt, addr, size);
}

/*
 * split finds its MMU as container_of(mc, struct kvm_s2_mmu,
 * split_page_cache): the cache it is given must be the one in the MMU. The
 * harness's cache is copied in and the count left copied back out.
 */
static int l_split(void *p, uint64_t addr, uint64_t size, struct kp_mc *mc)
{
	struct linux_state *st = p;
	int ret;

	st->mmu.split_page_cache.nobjs = mc ? mc->nobjs : 0;
	ret = kvm_pgtable_stage2_split(&st->pgt, addr, size, &st->mmu.split_page_cache);
	if (mc)
		mc->nobjs = st->mmu.split_page_cache.nobjs;
	return ret;
}

static void *l_create_unlinked(void *p, uint64_t phys, int8_t level, uint64_t prot,
			       struct kp_mc *mc, bool force_pte)
{
	return kvm_pgtable_stage2_create_unlinked(&((struct linux_state *)p)->pgt, phys, level,
						  (enum kvm_pgtable_prot)prot, mc, force_pte);
}

static void l_free_unlinked(void *p, void *table, int8_t level)
{
	(void)p;
	kvm_pgtable_stage2_free_unlinked(&linux_mm_ops, table, level);
}

static int l_get_leaf(void *p, uint64_t addr, uint64_t *pte, int8_t *level)
{
	kvm_pte_t v = 0;
	s8 l = 0;
	int ret = kvm_pgtable_get_leaf(&((struct linux_state *)p)->pgt, addr, &v, &l);

	*pte = v;
	*level = l;
	return ret;
}

static int linux_visitor(const struct kvm_pgtable_visit_ctx *ctx,
			 enum kvm_pgtable_walk_flags visit)
{
	struct kp_script *s = ctx->arg;

	return kp_visit(s, ctx->ptep, ctx->old, ctx->start, ctx->addr, ctx->end, ctx->level,
			(uint32_t)ctx->flags, (uint32_t)visit,
			ctx->mm_ops == &linux_mm_ops || ctx->mm_ops == &linux_hyp_mm_ops_no_count);
}

static int l_walk(void *p, uint64_t addr, uint64_t size, struct kp_script *s)
{
	struct kvm_pgtable_walker walker = {
		.cb = linux_visitor,
		.arg = s,
		.flags = (enum kvm_pgtable_walk_flags)s->flags,
	};

	return kvm_pgtable_walk(&((struct linux_state *)p)->pgt, addr, size, &walker);
}

static uint64_t l_pte_prot(uint64_t pte, bool *have)
{
	*have = true;
	return (uint64_t)kvm_pgtable_stage2_pte_prot(pte);
}

static uint64_t l_get_vtcr(uint64_t mmfr0, uint64_t mmfr1, uint32_t phys_shift)
{
	return kvm_get_vtcr(mmfr0, mmfr1, phys_shift);
}

#define OFF(type, field) { "offsetof(" #type "." #field ")", __builtin_offsetof(type, field) }
#define VAL(name) { #name, (long long)(name) }

static const struct kp_fact linux_facts[] = {
	VAL(KVM_PGTABLE_PROT_X),
	VAL(KVM_PGTABLE_PROT_W),
	VAL(KVM_PGTABLE_PROT_R),
	VAL(KVM_PGTABLE_PROT_DEVICE),
	VAL(KVM_PGTABLE_PROT_NORMAL_NC),
	VAL(KVM_PGTABLE_PROT_SW0),
	VAL(KVM_PGTABLE_PROT_SW1),
	VAL(KVM_PGTABLE_PROT_SW2),
	VAL(KVM_PGTABLE_PROT_SW3),
	VAL(KVM_PGTABLE_PROT_RW),
	VAL(KVM_PGTABLE_PROT_RWX),
	VAL(KVM_PGTABLE_WALK_LEAF),
	VAL(KVM_PGTABLE_WALK_TABLE_PRE),
	VAL(KVM_PGTABLE_WALK_TABLE_POST),
	VAL(KVM_PGTABLE_WALK_SHARED),
	VAL(KVM_PGTABLE_WALK_HANDLE_FAULT),
	VAL(KVM_PGTABLE_WALK_SKIP_BBM_TLBI),
	VAL(KVM_PGTABLE_WALK_SKIP_CMO),
	VAL(KVM_PGTABLE_S2_NOFWB),
	VAL(KVM_PGTABLE_S2_IDMAP),
	VAL(KVM_PGTABLE_FIRST_LEVEL),
	VAL(KVM_PGTABLE_LAST_LEVEL),
	VAL(KVM_PGTABLE_MIN_BLOCK_LEVEL),
	VAL(KVM_PTE_VALID),
	VAL(KVM_PHYS_INVALID),
	VAL(KVM_MAX_OWNER_ID),
	VAL(KVM_INVALID_PTE_OWNER_MASK),
	VAL(KVM_INVALID_PTE_LOCKED),
	VAL(KVM_PTE_ADDR_MASK),
	VAL(KVM_PTE_LEAF_ATTR_LO),
	VAL(KVM_PTE_LEAF_ATTR_HI),
	VAL(KVM_PTE_LEAF_ATTR_HI_SW),
	VAL(KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR),
	VAL(KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R),
	VAL(KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W),
	VAL(KVM_PTE_LEAF_ATTR_LO_S2_SH),
	VAL(KVM_PTE_LEAF_ATTR_LO_S2_AF),
	VAL(KVM_PTE_LEAF_ATTR_HI_S2_XN),
	{ "sizeof(struct kvm_pgtable)", sizeof(struct kvm_pgtable) },
	OFF(struct kvm_pgtable, ia_bits),
	OFF(struct kvm_pgtable, start_level),
	OFF(struct kvm_pgtable, pgd),
	OFF(struct kvm_pgtable, mm_ops),
	OFF(struct kvm_pgtable, mmu),
	OFF(struct kvm_pgtable, flags),
	OFF(struct kvm_pgtable, force_pte_cb),
	{ "sizeof(struct kvm_pgtable_visit_ctx)", sizeof(struct kvm_pgtable_visit_ctx) },
	OFF(struct kvm_pgtable_visit_ctx, ptep),
	OFF(struct kvm_pgtable_visit_ctx, old),
	OFF(struct kvm_pgtable_visit_ctx, arg),
	OFF(struct kvm_pgtable_visit_ctx, mm_ops),
	OFF(struct kvm_pgtable_visit_ctx, start),
	OFF(struct kvm_pgtable_visit_ctx, addr),
	OFF(struct kvm_pgtable_visit_ctx, end),
	OFF(struct kvm_pgtable_visit_ctx, level),
	OFF(struct kvm_pgtable_visit_ctx, flags),
	{ "sizeof(struct kvm_pgtable_walker)", sizeof(struct kvm_pgtable_walker) },
	OFF(struct kvm_pgtable_walker, cb),
	OFF(struct kvm_pgtable_walker, arg),
	OFF(struct kvm_pgtable_walker, flags),
	{ "sizeof(struct kvm_pgtable_mm_ops)", sizeof(struct kvm_pgtable_mm_ops) },
	OFF(struct kvm_pgtable_mm_ops, zalloc_page),
	OFF(struct kvm_pgtable_mm_ops, zalloc_pages_exact),
	OFF(struct kvm_pgtable_mm_ops, free_pages_exact),
	OFF(struct kvm_pgtable_mm_ops, free_unlinked_table),
	OFF(struct kvm_pgtable_mm_ops, get_page),
	OFF(struct kvm_pgtable_mm_ops, put_page),
	OFF(struct kvm_pgtable_mm_ops, page_count),
	OFF(struct kvm_pgtable_mm_ops, phys_to_virt),
	OFF(struct kvm_pgtable_mm_ops, virt_to_phys),
	OFF(struct kvm_pgtable_mm_ops, dcache_clean_inval_poc),
	OFF(struct kvm_pgtable_mm_ops, icache_inval_pou),
	{ "sizeof(kvm_pte_t)", sizeof(kvm_pte_t) },
	{ "sizeof(enum kvm_pgtable_prot)", sizeof(enum kvm_pgtable_prot) },
	{ "sizeof(enum kvm_pgtable_walk_flags)", sizeof(enum kvm_pgtable_walk_flags) },
};

static const struct kp_fact *l_facts(size_t *n)
{
	*n = sizeof(linux_facts) / sizeof(linux_facts[0]);
	return linux_facts;
}

const struct kp_impl kp_linux_impl = {
	.name = "linux",
	.state_size = sizeof(struct linux_state),
	.init = l_init,
	.destroy = l_destroy,
	.pgd_size = l_pgd_size,
	.geometry = l_geometry,
	.map = l_map,
	.set_owner = l_set_owner,
	.unmap = l_unmap,
	.wrprotect = l_wrprotect,
	.mkyoung = l_mkyoung,
	.test_clear_young = l_test_clear_young,
	.relax_perms = l_relax_perms,
	.flush = l_flush,
	.split = l_split,
	.create_unlinked = l_create_unlinked,
	.free_unlinked = l_free_unlinked,
	.get_leaf = l_get_leaf,
	.walk = l_walk,
	.pte_prot = l_pte_prot,
	.facts = l_facts,
	.get_vtcr = l_get_vtcr,
	.hyp_init = l_hyp_init,
	.hyp_map = l_hyp_map,
	.hyp_unmap = l_hyp_unmap,
	.hyp_pte_prot = l_hyp_pte_prot,
};

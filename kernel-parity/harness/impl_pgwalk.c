/*
 * pgwalk's kvm_pgtable_* layer behind the neutral interface. This file
 * sees include/pgwalk.h and the harness's plain types (kp.h), nothing of
 * the kernel's headers.
 *
 * The neutral interface speaks Linux 6.12: prot values, and the 6.12
 * prototypes of mkyoung and relax_perms. Where pgwalk's header differs,
 * this file converts, in two clearly bounded places:
 *
 * - the PROT TRANSLATION table below (delete it when pgwalk.h adopts
 *   6.12's prot values; kp_pgwalk_translates_prot() then says false and
 *   the driver also generates prot bit 5 as an unknown bit);
 * - mkyoung/relax_perms: the prototype the header declares is detected at
 *   compile time, and the 6.12 one is used when it is there.
 */
#include "pgwalk.h"

#include "kp.h"
#include "kp_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The harness's memory cache (kp.h), completing pgwalk's opaque type. */
struct kvm_mmu_memory_cache {
	int nobjs;
};

struct pgwalk_state {
	struct kvm_pgtable pgt;
	struct kvm_s2_mmu mmu;
	kp_force_pte_fn force_pte;
	bool hyp;
};

/* ==== PROT TRANSLATION (Linux 6.12 value -> the value pgwalk.h defines) ====
 * One row per 6.12 bit. Bits 6.12 does not define pass through unchanged.
 * Remove this table once include/pgwalk.h defines the 6.12 values. */
static const struct {
	uint64_t linux612;
	uint64_t pgwalk;
} prot_table[] = {
	{ KP_PROT_X, KVM_PGTABLE_PROT_X },
	{ KP_PROT_W, KVM_PGTABLE_PROT_W },
	{ KP_PROT_R, KVM_PGTABLE_PROT_R },
	{ KP_PROT_DEVICE, KVM_PGTABLE_PROT_DEVICE },
	{ KP_PROT_NORMAL_NC, KVM_PGTABLE_PROT_NORMAL_NC },
	{ KP_PROT_SW0, KVM_PGTABLE_PROT_SW0 },
	{ KP_PROT_SW1, KVM_PGTABLE_PROT_SW1 },
	{ KP_PROT_SW2, KVM_PGTABLE_PROT_SW2 },
	{ KP_PROT_SW3, KVM_PGTABLE_PROT_SW3 },
};
#define PROT_ROWS (sizeof(prot_table) / sizeof(prot_table[0]))
/* ==== end of PROT TRANSLATION ==== */

bool kp_pgwalk_raw_prot;

bool kp_pgwalk_translates_prot(void)
{
	size_t i;

	if (kp_pgwalk_raw_prot)
		return false;
	for (i = 0; i < PROT_ROWS; i++)
		if (prot_table[i].linux612 != prot_table[i].pgwalk)
			return true;
	return false;
}

static uint64_t to_pgwalk(uint64_t prot)
{
	uint64_t out = prot & ~KP_PROT_KNOWN;
	size_t i;

	if (kp_pgwalk_raw_prot)
		return prot;
	for (i = 0; i < PROT_ROWS; i++)
		if (prot & prot_table[i].linux612)
			out |= prot_table[i].pgwalk;
	return out;
}

static uint64_t from_pgwalk(uint64_t prot)
{
	uint64_t known = 0, out;
	size_t i;

	if (kp_pgwalk_raw_prot)
		return prot;
	for (i = 0; i < PROT_ROWS; i++)
		known |= prot_table[i].pgwalk;
	out = prot & ~known;
	for (i = 0; i < PROT_ROWS; i++)
		if ((prot & prot_table[i].pgwalk) == prot_table[i].pgwalk)
			out |= prot_table[i].linux612;
	return out;
}

static struct kvm_pgtable_mm_ops pgwalk_mm_ops = {
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

/* The hypervisor's TLB hooks, logged as the kernel's hypervisor calls. */
static void tlb_ipa(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	(void)mmu;
	kp_log_event(KP_EV_TLBI_IPA, ipa, (uint64_t)(int64_t)level);
}

static void tlb_ipa_nsh(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	(void)mmu;
	kp_log_event(KP_EV_TLBI_IPA_NSH, ipa, (uint64_t)(int64_t)level);
}

static void tlb_range(struct kvm_s2_mmu *mmu, uint64_t addr, uint64_t size)
{
	(void)mmu;
	kp_log_vmid_range(addr, size);
}

static void tlb_vmid(struct kvm_s2_mmu *mmu)
{
	(void)mmu;
	kp_log_event(KP_EV_TLBI_VMID, 0, 0);
}

/* A hyp allocator without page_count; filled by the first hyp init. */
static struct kvm_pgtable_mm_ops pgwalk_hyp_mm_ops_no_count;

/*
 * The EL2 TLB maintenance the kernel issues inline, logged as the shim logs
 * the kernel's __tlbi_level: tlbi vale2is (a leaf) with its level, tlbi
 * vae2is (a table entry removed) with TLBI_TTL_UNKNOWN, which is what the
 * kernel passes for it. The barriers (publish: dsb ishst; isb) are not
 * logged, as the shim's dsb/isb are not.
 */
static void hyp_flush_va(void *arg, uint64_t va, int8_t level)
{
	(void)arg;
	kp_log_event(KP_EV_TLBI_HYP, va, (uint64_t)(int64_t)level);
}

static void hyp_flush_va_walks(void *arg, uint64_t va, int8_t level)
{
	(void)arg;
	kp_log_event_level(KP_EV_TLBI_HYP, va, (uint64_t)(int64_t)0x7fffffff, level);
}

static void hyp_publish(void *arg)
{
	(void)arg;
}

static const struct pgw_hyp_tlb_ops hyp_tlb_ops = {
	.flush_va = hyp_flush_va,
	.flush_va_walks = hyp_flush_va_walks,
	.publish = hyp_publish,
};

static bool pgwalk_force_pte(uint64_t addr, uint64_t end, uint64_t prot)
{
	struct pgwalk_state *st = kp_cur->st;

	kp_log_event(KP_EV_FORCE_PTE, addr, end);
	return st->force_pte(addr, end, from_pgwalk(prot));
}

static int p_init(void *p, uint64_t vtcr, uint32_t s2_flags, kp_force_pte_fn cb)
{
	struct pgwalk_state *st = p;

	st->mmu.vtcr = vtcr;
	st->mmu.tlb_flush_vmid_ipa = tlb_ipa;
	st->mmu.tlb_flush_vmid_range = tlb_range;
	st->mmu.tlb_flush_vmid = tlb_vmid;
	st->mmu.tlb_flush_vmid_ipa_nsh = tlb_ipa_nsh;
	st->force_pte = cb;
	return __kvm_pgtable_stage2_init(&st->pgt, &st->mmu, &pgwalk_mm_ops, s2_flags,
					 cb ? pgwalk_force_pte : NULL);
}

static void p_destroy(void *p)
{
	struct pgwalk_state *st = p;

	if (st->pgt.pgd && st->hyp)
		kvm_pgtable_hyp_destroy(&st->pgt);
	else if (st->pgt.pgd)
		kvm_pgtable_stage2_destroy(&st->pgt);
}

/*
 * kvm_pgtable_hyp_init takes its format from the mm_ops: a 4K kernel's
 * (4 KiB pages, no LPA2) unless an earlier initialisation bound them to
 * another. For the other kernels the harness names the format with
 * pgw_hyp_init, the one call pgwalk adds for that: the kernel's hyp tables
 * use its PAGE_SIZE and its system-wide LPA2, which one library serving
 * every granule cannot know.
 */
static int p_hyp_init(void *p, unsigned va_bits, bool page_count)
{
	struct pgwalk_state *st = p;
	struct kvm_pgtable_mm_ops *ops = &pgwalk_mm_ops;

	st->hyp = true;
	if (pgw_hyp_set_tlb_ops(&hyp_tlb_ops))
		return -1001;
	if (!page_count) {
		pgwalk_hyp_mm_ops_no_count = pgwalk_mm_ops;
		pgwalk_hyp_mm_ops_no_count.page_count = NULL;
		ops = &pgwalk_hyp_mm_ops_no_count;
	}
	if (KP_PAGE_SHIFT == 12 && !kp_caps.lpa2)
		return kvm_pgtable_hyp_init(&st->pgt, va_bits, ops);
	return pgw_hyp_init(&st->pgt, va_bits, KP_PAGE_SHIFT, kp_caps.lpa2, ops);
}

static int p_hyp_map(void *p, uint64_t addr, uint64_t size, uint64_t phys, uint64_t prot)
{
	return kvm_pgtable_hyp_map(&((struct pgwalk_state *)p)->pgt, addr, size, phys,
				   to_pgwalk(prot));
}

static uint64_t p_hyp_unmap(void *p, uint64_t addr, uint64_t size)
{
	return kvm_pgtable_hyp_unmap(&((struct pgwalk_state *)p)->pgt, addr, size);
}

static uint64_t p_hyp_pte_prot(uint64_t pte)
{
	return from_pgwalk(kvm_pgtable_hyp_pte_prot(pte));
}

static size_t p_pgd_size(uint64_t vtcr)
{
	return kvm_pgtable_stage2_pgd_size(vtcr);
}

static void p_geometry(void *p, void **pgd, int *start_level, unsigned *ia_bits)
{
	struct pgwalk_state *st = p;

	*pgd = st->pgt.pgd;
	*start_level = st->pgt.start_level;
	*ia_bits = st->pgt.ia_bits;
}

static int p_map(void *p, uint64_t addr, uint64_t size, uint64_t phys, uint64_t prot,
		 struct kp_mc *mc, uint32_t flags)
{
	struct pgwalk_state *st = p;

	return kvm_pgtable_stage2_map(&st->pgt, addr, size, phys, to_pgwalk(prot), mc, flags);
}

static int p_set_owner(void *p, uint64_t addr, uint64_t size, struct kp_mc *mc, uint8_t owner)
{
	struct pgwalk_state *st = p;

	return kvm_pgtable_stage2_set_owner(&st->pgt, addr, size, mc, owner);
}

static int p_unmap(void *p, uint64_t addr, uint64_t size)
{
	return kvm_pgtable_stage2_unmap(&((struct pgwalk_state *)p)->pgt, addr, size);
}

static int p_wrprotect(void *p, uint64_t addr, uint64_t size)
{
	return kvm_pgtable_stage2_wrprotect(&((struct pgwalk_state *)p)->pgt, addr, size);
}

#define SIG(fn, type) __builtin_types_compatible_p(__typeof__(fn), type)
typedef kvm_pte_t mkyoung_612(struct kvm_pgtable *, uint64_t);
typedef void mkyoung_616(struct kvm_pgtable *, uint64_t, uint32_t);
typedef int relax_612(struct kvm_pgtable *, uint64_t, uint64_t);
typedef int relax_616(struct kvm_pgtable *, uint64_t, uint64_t, uint32_t);
_Static_assert(SIG(kvm_pgtable_stage2_mkyoung, mkyoung_612) ||
		       SIG(kvm_pgtable_stage2_mkyoung, mkyoung_616),
	       "kvm_pgtable_stage2_mkyoung has a prototype this adapter does not know");
_Static_assert(SIG(kvm_pgtable_stage2_relax_perms, relax_612) ||
		       SIG(kvm_pgtable_stage2_relax_perms, relax_616),
	       "kvm_pgtable_stage2_relax_perms has a prototype this adapter does not know");
/* Calls through the type the header really declares (the other branch is
 * never taken: the condition is a compile-time constant). The pointer is
 * laundered so that the compiler does not warn about the dead branch. */
static void (*launder(void (*f)(void)))(void)
{
	__asm__("" : "+r"(f));
	return f;
}
#define AS(type, fn) ((type *)launder((void (*)(void))(fn)))

static uint64_t p_mkyoung(void *p, uint64_t addr, bool *have_pte)
{
	struct kvm_pgtable *pgt = &((struct pgwalk_state *)p)->pgt;

	if (SIG(kvm_pgtable_stage2_mkyoung, mkyoung_612)) {
		*have_pte = true;
		return AS(mkyoung_612, kvm_pgtable_stage2_mkyoung)(pgt, addr);
	}
	/* 6.12's mkyoung always walks as the fault path. */
	AS(mkyoung_616, kvm_pgtable_stage2_mkyoung)(pgt, addr,
						    KVM_PGTABLE_WALK_SHARED |
							    KVM_PGTABLE_WALK_HANDLE_FAULT);
	*have_pte = false;
	return 0;
}

static bool p_test_clear_young(void *p, uint64_t addr, uint64_t size, bool mkold)
{
	return kvm_pgtable_stage2_test_clear_young(&((struct pgwalk_state *)p)->pgt, addr, size,
						   mkold);
}

static int p_relax_perms(void *p, uint64_t addr, uint64_t prot)
{
	struct kvm_pgtable *pgt = &((struct pgwalk_state *)p)->pgt;

	if (SIG(kvm_pgtable_stage2_relax_perms, relax_612))
		return AS(relax_612, kvm_pgtable_stage2_relax_perms)(pgt, addr, to_pgwalk(prot));
	/* 6.12's relax_perms always walks as the fault path. */
	return AS(relax_616, kvm_pgtable_stage2_relax_perms)(pgt, addr, to_pgwalk(prot),
							     KVM_PGTABLE_WALK_SHARED |
								     KVM_PGTABLE_WALK_HANDLE_FAULT);
}

static int p_flush(void *p, uint64_t addr, uint64_t size)
{
	return kvm_pgtable_stage2_flush(&((struct pgwalk_state *)p)->pgt, addr, size);
}

static int p_split(void *p, uint64_t addr, uint64_t size, struct kp_mc *mc)
{
	return kvm_pgtable_stage2_split(&((struct pgwalk_state *)p)->pgt, addr, size,
					(struct kvm_mmu_memory_cache *)mc);
}

static void *p_create_unlinked(void *p, uint64_t phys, int8_t level, uint64_t prot,
			       struct kp_mc *mc, bool force_pte)
{
	return kvm_pgtable_stage2_create_unlinked(&((struct pgwalk_state *)p)->pgt, phys, level,
						  to_pgwalk(prot), mc, force_pte);
}

static void p_free_unlinked(void *p, void *table, int8_t level)
{
	(void)p;
	kvm_pgtable_stage2_free_unlinked(&pgwalk_mm_ops, table, level);
}

static int p_get_leaf(void *p, uint64_t addr, uint64_t *pte, int8_t *level)
{
	kvm_pte_t v = 0;
	int8_t l = 0;
	int ret = kvm_pgtable_get_leaf(&((struct pgwalk_state *)p)->pgt, addr, &v, &l);

	*pte = v;
	*level = l;
	return ret;
}

static int pgwalk_visitor(const struct kvm_pgtable_visit_ctx *ctx, kvm_pgtable_walk_flags visit)
{
	struct kp_script *s = ctx->arg;

	return kp_visit(s, ctx->ptep, ctx->old, ctx->start, ctx->addr, ctx->end, ctx->level,
			ctx->flags, (uint32_t)visit,
			ctx->mm_ops == &pgwalk_mm_ops || ctx->mm_ops == &pgwalk_hyp_mm_ops_no_count);
}

static int p_walk(void *p, uint64_t addr, uint64_t size, struct kp_script *s)
{
	struct kvm_pgtable_walker walker = {
		.cb = pgwalk_visitor,
		.arg = s,
		.flags = s->flags,
	};

	return kvm_pgtable_walk(&((struct pgwalk_state *)p)->pgt, addr, size, &walker);
}

/* Whether libpgwalk.a defines a symbol (pgwalk_symbols.c, generated by
 * build.sh from nm), and a weak reference to the one 6.12 function the
 * driver calls that pgwalk.h may not declare (api_weak.c). */
bool kp_pgwalk_defines(const char *name);
uint64_t (*kp_pgwalk_pte_prot_fn(void))(uint64_t);

static uint64_t p_pte_prot(uint64_t pte, bool *have)
{
	uint64_t (*f)(uint64_t) = kp_pgwalk_pte_prot_fn();

	*have = f != NULL;
	return f ? from_pgwalk(f(pte)) : 0;
}

#define OFF(type, field) { "offsetof(" #type "." #field ")", offsetof(type, field) }
#define VAL(name) { #name, (long long)(name) }
/* A constant 6.12's header defines and pgwalk.h may not. */
#define OPT(name) { #name, kp_missing_##name }
#define KP_MISSING (-0x7fffffffffffffffll)

#ifdef KVM_PGTABLE_FIRST_LEVEL
#define kp_missing_KVM_PGTABLE_FIRST_LEVEL ((long long)KVM_PGTABLE_FIRST_LEVEL)
#else
#define kp_missing_KVM_PGTABLE_FIRST_LEVEL KP_MISSING
#endif
#ifdef KVM_PGTABLE_LAST_LEVEL
#define kp_missing_KVM_PGTABLE_LAST_LEVEL ((long long)KVM_PGTABLE_LAST_LEVEL)
#else
#define kp_missing_KVM_PGTABLE_LAST_LEVEL KP_MISSING
#endif
#ifdef KVM_PGTABLE_MIN_BLOCK_LEVEL
#define kp_missing_KVM_PGTABLE_MIN_BLOCK_LEVEL ((long long)KVM_PGTABLE_MIN_BLOCK_LEVEL)
#else
#define kp_missing_KVM_PGTABLE_MIN_BLOCK_LEVEL KP_MISSING
#endif
#ifdef KVM_PTE_VALID
#define kp_missing_KVM_PTE_VALID ((long long)KVM_PTE_VALID)
#else
#define kp_missing_KVM_PTE_VALID KP_MISSING
#endif
#ifdef KVM_PHYS_INVALID
#define kp_missing_KVM_PHYS_INVALID ((long long)KVM_PHYS_INVALID)
#else
#define kp_missing_KVM_PHYS_INVALID KP_MISSING
#endif
#ifdef KVM_MAX_OWNER_ID
#define kp_missing_KVM_MAX_OWNER_ID ((long long)KVM_MAX_OWNER_ID)
#else
#define kp_missing_KVM_MAX_OWNER_ID KP_MISSING
#endif
#ifdef KVM_INVALID_PTE_OWNER_MASK
#define kp_missing_KVM_INVALID_PTE_OWNER_MASK ((long long)KVM_INVALID_PTE_OWNER_MASK)
#else
#define kp_missing_KVM_INVALID_PTE_OWNER_MASK KP_MISSING
#endif
#ifdef KVM_INVALID_PTE_LOCKED
#define kp_missing_KVM_INVALID_PTE_LOCKED ((long long)KVM_INVALID_PTE_LOCKED)
#else
#define kp_missing_KVM_INVALID_PTE_LOCKED KP_MISSING
#endif
#ifdef KVM_PTE_ADDR_MASK
#define kp_missing_KVM_PTE_ADDR_MASK ((long long)KVM_PTE_ADDR_MASK)
#else
#define kp_missing_KVM_PTE_ADDR_MASK KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_LO
#define kp_missing_KVM_PTE_LEAF_ATTR_LO ((long long)KVM_PTE_LEAF_ATTR_LO)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_LO KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_HI
#define kp_missing_KVM_PTE_LEAF_ATTR_HI ((long long)KVM_PTE_LEAF_ATTR_HI)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_HI KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_HI_SW
#define kp_missing_KVM_PTE_LEAF_ATTR_HI_SW ((long long)KVM_PTE_LEAF_ATTR_HI_SW)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_HI_SW KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR ((long long)KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R ((long long)KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W ((long long)KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_LO_S2_SH
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_SH ((long long)KVM_PTE_LEAF_ATTR_LO_S2_SH)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_SH KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_LO_S2_AF
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_AF ((long long)KVM_PTE_LEAF_ATTR_LO_S2_AF)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_LO_S2_AF KP_MISSING
#endif
#ifdef KVM_PTE_LEAF_ATTR_HI_S2_XN
#define kp_missing_KVM_PTE_LEAF_ATTR_HI_S2_XN ((long long)KVM_PTE_LEAF_ATTR_HI_S2_XN)
#else
#define kp_missing_KVM_PTE_LEAF_ATTR_HI_S2_XN KP_MISSING
#endif

static const struct kp_fact pgwalk_facts[] = {
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
	OPT(KVM_PGTABLE_FIRST_LEVEL),
	OPT(KVM_PGTABLE_LAST_LEVEL),
	OPT(KVM_PGTABLE_MIN_BLOCK_LEVEL),
	OPT(KVM_PTE_VALID),
	OPT(KVM_PHYS_INVALID),
	OPT(KVM_MAX_OWNER_ID),
	OPT(KVM_INVALID_PTE_OWNER_MASK),
	OPT(KVM_INVALID_PTE_LOCKED),
	OPT(KVM_PTE_ADDR_MASK),
	OPT(KVM_PTE_LEAF_ATTR_LO),
	OPT(KVM_PTE_LEAF_ATTR_HI),
	OPT(KVM_PTE_LEAF_ATTR_HI_SW),
	OPT(KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR),
	OPT(KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R),
	OPT(KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W),
	OPT(KVM_PTE_LEAF_ATTR_LO_S2_SH),
	OPT(KVM_PTE_LEAF_ATTR_LO_S2_AF),
	OPT(KVM_PTE_LEAF_ATTR_HI_S2_XN),
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
	/* 6.12: an enum holding 64-bit values; pgwalk: uint64_t parameters. */
	{ "sizeof(enum kvm_pgtable_prot)", sizeof(uint64_t) },
	{ "sizeof(enum kvm_pgtable_walk_flags)", sizeof(kvm_pgtable_walk_flags) },
	{ "prototype kvm_pgtable_stage2_mkyoung (6.12: kvm_pte_t (pgt, addr))",
	  SIG(kvm_pgtable_stage2_mkyoung, mkyoung_612) },
	{ "prototype kvm_pgtable_stage2_relax_perms (6.12: int (pgt, addr, prot))",
	  SIG(kvm_pgtable_stage2_relax_perms, relax_612) },
};

/* Facts computed at run time: which 6.12 functions exist at all. */
static const char *const api_612[] = {
	"kvm_pgtable_hyp_init",
	"kvm_pgtable_hyp_destroy",
	"kvm_pgtable_hyp_map",
	"kvm_pgtable_hyp_unmap",
	"kvm_get_vtcr",
	"kvm_pgtable_stage2_pgd_size",
	"__kvm_pgtable_stage2_init",
	"kvm_pgtable_stage2_destroy",
	"kvm_pgtable_stage2_free_unlinked",
	"kvm_pgtable_stage2_create_unlinked",
	"kvm_pgtable_stage2_map",
	"kvm_pgtable_stage2_set_owner",
	"kvm_pgtable_stage2_unmap",
	"kvm_pgtable_stage2_wrprotect",
	"kvm_pgtable_stage2_mkyoung",
	"kvm_pgtable_stage2_test_clear_young",
	"kvm_pgtable_stage2_relax_perms",
	"kvm_pgtable_stage2_flush",
	"kvm_pgtable_stage2_split",
	"kvm_pgtable_walk",
	"kvm_pgtable_get_leaf",
	"kvm_pgtable_stage2_pte_prot",
	"kvm_pgtable_hyp_pte_prot",
	"kvm_tlb_flush_vmid_range",
};
#define API_612 (sizeof(api_612) / sizeof(api_612[0]))

static struct kp_fact all_facts[sizeof(pgwalk_facts) / sizeof(pgwalk_facts[0]) + API_612];
static char fact_names[API_612][80];

static const struct kp_fact *p_facts(size_t *n)
{
	size_t k = sizeof(pgwalk_facts) / sizeof(pgwalk_facts[0]), i;

	memcpy(all_facts, pgwalk_facts, sizeof(pgwalk_facts));
	for (i = 0; i < API_612; i++) {
		snprintf(fact_names[i], sizeof(fact_names[i]), "function %s", api_612[i]);
		all_facts[k + i].name = fact_names[i];
		all_facts[k + i].value = kp_pgwalk_defines(api_612[i]);
	}
	*n = k + API_612;
	return all_facts;
}

/* kvm_get_vtcr as the kernel under test computes it: this page size, and
 * LPA2 as the run's capabilities say. */
static uint64_t p_get_vtcr(uint64_t mmfr0, uint64_t mmfr1, uint32_t phys_shift)
{
	return pgw_get_vtcr(mmfr0, mmfr1, phys_shift, KP_PAGE_SHIFT, kp_caps.lpa2);
}

const struct kp_impl kp_pgwalk_impl = {
	.name = "pgwalk",
	.state_size = sizeof(struct pgwalk_state),
	.init = p_init,
	.destroy = p_destroy,
	.pgd_size = p_pgd_size,
	.geometry = p_geometry,
	.map = p_map,
	.set_owner = p_set_owner,
	.unmap = p_unmap,
	.wrprotect = p_wrprotect,
	.mkyoung = p_mkyoung,
	.test_clear_young = p_test_clear_young,
	.relax_perms = p_relax_perms,
	.flush = p_flush,
	.split = p_split,
	.create_unlinked = p_create_unlinked,
	.free_unlinked = p_free_unlinked,
	.get_leaf = p_get_leaf,
	.walk = p_walk,
	.pte_prot = p_pte_prot,
	.facts = p_facts,
	.get_vtcr = p_get_vtcr,
	.hyp_init = p_hyp_init,
	.hyp_map = p_hyp_map,
	.hyp_unmap = p_hyp_unmap,
	.hyp_pte_prot = p_hyp_pte_prot,
};

/*
 * Every granule through the C APIs: 16 KiB, 64 KiB with 52-bit output
 * addresses, and LPA2 with 4 KiB (from level -1) and 16 KiB (from level
 * 0). Each format has its own struct kvm_pgtable_mm_ops over a pool of
 * pages of its granule; each is initialised from a VTCR_EL2 value, sized
 * with kvm_pgtable_stage2_pgd_size, mapped with blocks and pages, walked,
 * write-protected, faulted into, split, given an unlinked table to free,
 * unmapped and destroyed, and every page must come back. Maps take their
 * table pages from a memory cache, as Linux 6.12's callers pass one.
 */
#include <string.h>

#include "check.h"
#include "pgwalk.h"

#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)
#define VALID 1ull

/* --- A pool of pages of the granule under test. ------------------------- */

#define POOL_BYTES (8u << 20)
#define MAX_SLOTS (POOL_BYTES / 4096)
/* Physical addresses differ from virtual ones, so that a missing
 * conversion shows; for the formats with 52-bit addresses the table pages
 * themselves lie above 2^50, so that table descriptors hold address bits
 * in 15:12 (64 KiB) or 9:8 (LPA2). */
static uint64_t phys_base;

static _Alignas(65536) unsigned char pool_mem[POOL_BYTES];
static int refs[MAX_SLOTS];
static size_t page_size;
static long in_use;
static long bad_frees;

#define MAX_DEFERRED 64
static struct {
	void *table;
	int8_t level;
} deferred[MAX_DEFERRED];
static int ndeferred;
static struct kvm_pgtable_mm_ops *current_ops;

static long slots(void) { return (long)(POOL_BYTES / page_size); }

static long slot_of(const void *p)
{
	const unsigned char *c = p;

	if (c < pool_mem || c >= pool_mem + POOL_BYTES)
		return -1;
	return (long)((size_t)(c - pool_mem) / page_size);
}

/* n free pages in a row, aligned to n pages. */
static void *alloc_pages(long n)
{
	for (long i = 0; i + n <= slots(); i += n) {
		long j = 0;

		while (j < n && !refs[i + j])
			j++;
		if (j < n)
			continue;
		for (j = 0; j < n; j++)
			refs[i + j] = 1;
		memset(pool_mem + (size_t)i * page_size, 0, (size_t)n * page_size);
		in_use += n;
		return pool_mem + (size_t)i * page_size;
	}
	return NULL;
}

static void release(long i)
{
	memset(pool_mem + (size_t)i * page_size, 0xa5, page_size);
	in_use--;
}

/* The kernel's memory cache: here, how many pages it may still hand out. */
struct kvm_mmu_memory_cache {
	int nobjs;
};

static void *zalloc_page(void *arg)
{
	struct kvm_mmu_memory_cache *mc = arg;

	if (mc) {
		if (mc->nobjs <= 0)
			return NULL;
		mc->nobjs--;
	}
	return alloc_pages(1);
}

static void *zalloc_pages_exact(size_t size)
{
	long n = (long)(size / page_size), p2 = 1;

	while (p2 < n)
		p2 <<= 1;
	return p2 == n && size % page_size == 0 ? alloc_pages(n) : NULL;
}

static void free_pages_exact(void *p, size_t size)
{
	long idx = slot_of(p);

	if (idx < 0) {
		bad_frees++;
		return;
	}
	for (long i = idx; i < idx + (long)(size / page_size); i++) {
		refs[i] = 0;
		release(i);
	}
}

static void free_unlinked_table(void *p, int8_t level)
{
	if (ndeferred == MAX_DEFERRED) {
		bad_frees++;
		return;
	}
	deferred[ndeferred].table = p;
	deferred[ndeferred].level = level;
	ndeferred++;
}

static void quiesce(void)
{
	for (int i = 0; i < ndeferred; i++)
		kvm_pgtable_stage2_free_unlinked(current_ops, deferred[i].table, deferred[i].level);
	ndeferred = 0;
}

static void get_page(void *p)
{
	long i = slot_of(p);

	if (i >= 0)
		refs[i]++;
}

static void put_page(void *p)
{
	long i = slot_of(p);

	if (i < 0 || refs[i] == 0) {
		bad_frees++;
		return;
	}
	if (--refs[i] == 0)
		release(i);
}

static int page_count(void *p)
{
	long i = slot_of(p);

	return i < 0 ? 0 : refs[i];
}

static void *phys_to_virt(uint64_t pa) { return pool_mem + (pa - phys_base); }
static uint64_t virt_to_phys(void *va) { return phys_base + (uint64_t)((unsigned char *)va - pool_mem); }

#define OPS                                                                    \
	{                                                                      \
		.zalloc_page = zalloc_page,                                    \
		.zalloc_pages_exact = zalloc_pages_exact,                      \
		.free_pages_exact = free_pages_exact,                          \
		.free_unlinked_table = free_unlinked_table,                    \
		.get_page = get_page,                                          \
		.put_page = put_page,                                          \
		.page_count = page_count,                                      \
		.phys_to_virt = phys_to_virt,                                  \
		.virt_to_phys = virt_to_phys,                                  \
	}

/* One mm_ops per format: the first initialisation binds it. */
static struct kvm_pgtable_mm_ops ops_16k = OPS, ops_64k = OPS, ops_4k_lpa2 = OPS,
				 ops_16k_lpa2 = OPS, ops_never_used = OPS;

static void tlbi_ipa(struct kvm_s2_mmu *m, uint64_t a, int l) { (void)m; (void)a; (void)l; }
static void tlbi_range(struct kvm_s2_mmu *m, uint64_t a, uint64_t s) { (void)m; (void)a; (void)s; }
static void tlbi_vmid(struct kvm_s2_mmu *m) { (void)m; }

/* --- VTCR_EL2. ----------------------------------------------------------- */

#define TG0_4K (0ull << 14)
#define TG0_64K (1ull << 14)
#define TG0_16K (2ull << 14)
#define DS (1ull << 32)
#define SL2 (1ull << 33)
#define WALK_ATTRS ((1ull << 31) | (3ull << 12) | (1ull << 10) | (1ull << 8))

static uint64_t vtcr(unsigned ia, unsigned sl0, uint64_t tg0, unsigned ps)
{
	return WALK_ATTRS | (64 - ia) | (uint64_t)sl0 << 6 | tg0 | (uint64_t)ps << 16;
}

/* --- One format, end to end. --------------------------------------------- */

struct format {
	const char *name;
	struct kvm_pgtable_mm_ops *ops;
	size_t page;
	uint64_t vtcr;
	size_t pgd_size;
	int8_t start_level;
	uint64_t block;    /* the level-2 block */
	uint64_t pa_top;   /* added to output addresses: above 48 bits when possible */
	int lpa2;          /* shareability in VTCR_EL2, OA[51:50] in bits 9:8 */
};

static int count_leaves(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags v)
{
	(void)v;
	if (ctx->old & VALID)
		++*(int *)ctx->arg;
	return 0;
}

/* The output address a descriptor of `f` holds. */
static uint64_t oa(const struct format *f, uint64_t pte)
{
	uint64_t low = pte & (0xffffffffffffull & ~((uint64_t)f->page - 1));

	if (f->lpa2)
		return (pte & (0x3ffffffffffffull & ~((uint64_t)f->page - 1))) | (pte >> 8 & 3) << 50;
	if (f->page == 65536)
		return low | (pte >> 12 & 0xf) << 48;
	return low;
}

static void one_format(const struct format *f)
{
	struct kvm_s2_mmu mmu;
	struct kvm_pgtable pgt;
	kvm_pte_t pte = 0;
	int8_t level = 99;
	int leaves = 0;
	pgw_fault_outcome outcome = 0;
	kvm_pte_t *unlinked = NULL;
	uint64_t ipa = 4 * f->block;
	uint64_t pa = f->pa_top + 8 * f->block;
	struct kvm_mmu_memory_cache mc = { .nobjs = 1024 };

	printf("test_granules: %s\n", f->name);
	page_size = f->page;
	phys_base = f->pa_top + 0x40000000ull;
	current_ops = f->ops;
	memset(&mmu, 0, sizeof(mmu));
	mmu.vtcr = f->vtcr;
	mmu.tlb_flush_vmid_ipa = tlbi_ipa;
	mmu.tlb_flush_vmid_range = tlbi_range;
	mmu.tlb_flush_vmid = tlbi_vmid;

	CHECK_EQ(kvm_pgtable_stage2_pgd_size(f->vtcr), f->pgd_size);
	CHECK_EQ(kvm_pgtable_stage2_init(&pgt, &mmu, f->ops), 0);
	CHECK_EQ(pgt.start_level, f->start_level);
	CHECK_EQ(in_use, (long)(f->pgd_size / f->page));

	/* A block and the page after it: one level-2 leaf, one level-3. */
	CHECK_EQ(kvm_pgtable_stage2_map(&pgt, ipa, f->block + f->page, pa, RW, &mc, 0), 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt, ipa + f->page, &pte, &level), 0);
	CHECK_EQ(level, 2);
	CHECK_EQ(oa(f, pte), pa);
	CHECK_EQ(pte >> 8 & 3, f->lpa2 ? (pa >> 50 & 3) : 3);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt, ipa + f->block, &pte, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(oa(f, pte), pa + f->block);

	struct kvm_pgtable_walker w = { .cb = count_leaves, .arg = &leaves,
					.flags = KVM_PGTABLE_WALK_LEAF };
	CHECK_EQ(kvm_pgtable_walk(&pgt, ipa, 2 * f->block, &w), 0);
	CHECK_EQ(leaves, 2);

	CHECK_EQ(kvm_pgtable_stage2_wrprotect(&pgt, ipa, f->block), 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt, ipa, &pte, NULL), 0);
	CHECK_EQ(pte >> 7 & 1, 0);
	CHECK_EQ(oa(f, pte), pa);

	/* The fault path: a page of the next block's range. */
	CHECK_EQ(pgw_stage2_fault_map(&pgt, ipa + 2 * f->block, f->page, pa + 2 * f->block, RW,
				      &mc, 0, &outcome),
		 0);
	CHECK_EQ(outcome, PGW_FAULT_FIXED);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt, ipa + 2 * f->block, &pte, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(oa(f, pte), pa + 2 * f->block);

	/* A block fault over that page's table: the table goes to the grace
	 * period, and kvm_pgtable_stage2_free_unlinked frees it in this
	 * format. */
	CHECK_EQ(pgw_stage2_fault_map(&pgt, ipa + 2 * f->block, f->block, pa + 2 * f->block, RW,
				      &mc, 0, &outcome),
		 0);
	CHECK_EQ(outcome, PGW_FAULT_FIXED);
	CHECK_EQ(ndeferred, 1);
	quiesce();

	/* Split the first block into pages, then an unlinked table of this
	 * format, freed as the kernel's callers free one. */
	CHECK_EQ(kvm_pgtable_stage2_split(&pgt, ipa, f->block, &mc), 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt, ipa + 3 * f->page, &pte, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(oa(f, pte), pa + 3 * f->page);
	long before = in_use;
	CHECK_EQ(pgw_stage2_create_unlinked(&pgt, pa, 2, RW, &mc, 0, &unlinked), 0);
	CHECK(unlinked != NULL);
	CHECK_EQ(in_use, before + 1);
	/* A level-3 table: its last entry the block's last page. */
	CHECK_EQ(oa(f, unlinked[f->page / 8 - 1]), pa + f->block - f->page);
	kvm_pgtable_stage2_free_unlinked(f->ops, unlinked, 2);
	CHECK_EQ(in_use, before);
	if (f->page == 4096) {
		/* A subtree: 1 GiB in pages, 513 table pages above 2^50. */
		CHECK_EQ(pgw_stage2_create_unlinked(&pgt, f->pa_top, 1, RW, &mc, 1, &unlinked), 0);
		CHECK_EQ(in_use, before + 513);
		CHECK_EQ(unlinked[0] >> 8 & 3, f->lpa2 ? 3 : 0);
		kvm_pgtable_stage2_free_unlinked(f->ops, unlinked, 1);
		CHECK_EQ(in_use, before);
	}

	CHECK_EQ(kvm_pgtable_stage2_unmap(&pgt, ipa, 3 * f->block), 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt, ipa, &pte, NULL), 0);
	CHECK_EQ(pte & VALID, 0);
	kvm_pgtable_stage2_destroy(&pgt);
	quiesce();
	CHECK_EQ(in_use, 0);
	CHECK_EQ(bad_frees, 0);
}

/* --- EL2 stage-1 tables of the format. ----------------------------------- */

static void hyp_flush(void *arg, uint64_t va, int8_t level) { (void)arg; (void)va; (void)level; }
static void hyp_publish(void *arg) { (void)arg; }

static const struct pgw_hyp_tlb_ops hyp_tlb = {
	.flush_va = hyp_flush,
	.flush_va_walks = hyp_flush,
	.publish = hyp_publish,
};

/* A hyp table in the format `f`'s mm_ops is bound to (by the stage-2 table
 * above, so kvm_pgtable_hyp_init takes it without being told), with a
 * block and a page at the highest VA the format's 52 bits or 48 bits
 * reach, mapped to output addresses above 2^48 where the format has them. */
static void one_hyp_format(const struct format *f, unsigned va_bits, int8_t start_level)
{
	struct kvm_pgtable pgt;
	kvm_pte_t pte = 0;
	int8_t level = 99;
	uint64_t va = (1ull << va_bits) - 2 * f->block;
	uint64_t pa = f->pa_top + 8 * f->block;

	page_size = f->page;
	phys_base = f->pa_top + 0x40000000ull;
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, va_bits, f->ops), 0);
	CHECK_EQ(pgt.start_level, start_level);
	CHECK_EQ(pgt.ia_bits, va_bits);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, va, f->block + f->page, pa, KVM_PGTABLE_PROT_R), 0);
	CHECK_EQ(pgw_hyp_get_leaf(&pgt, va + f->page, &pte, &level), 0);
	CHECK_EQ(level, 2);
	CHECK_EQ(oa(f, pte), pa);
	CHECK_EQ(kvm_pgtable_hyp_pte_prot(pte), KVM_PGTABLE_PROT_R);
	/* Inner shareable in the descriptor, or (LPA2) in TCR_EL2.SH0. */
	CHECK_EQ(pte >> 8 & 3, f->lpa2 ? (pa >> 50 & 3) : 3);
	CHECK_EQ(pgw_hyp_get_leaf(&pgt, va + f->block, &pte, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(oa(f, pte), pa + f->block);
	/* Rounded to the format's page, as the kernel rounds to PAGE_SIZE. */
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, va + 1, f->block + 1), f->block + f->page);
	CHECK_EQ(pgw_hyp_get_leaf(&pgt, va, &pte, NULL), 0);
	CHECK_EQ(pte & VALID, 0);
	kvm_pgtable_hyp_destroy(&pgt);
	CHECK(pgt.pgd == NULL);
	CHECK_EQ(in_use, 0);
	CHECK_EQ(bad_frees, 0);
}

/* The same with the format named (pgw_hyp_init), on an mm_ops no table
 * used yet; a named format other than the one an mm_ops is bound to is
 * refused, as stage 2 refuses it. */
static void hyp_named_formats(void)
{
	static struct kvm_pgtable_mm_ops ops_hyp_64k = OPS;
	struct kvm_pgtable pgt;
	kvm_pte_t pte = 0;
	int8_t level = 99;

	page_size = 65536;
	phys_base = 0x40000000ull;
	memset(&pgt, 0, sizeof(pgt));
	CHECK_EQ(pgw_hyp_init(&pgt, 42, 15, false, &ops_hyp_64k), -PGW_EINVAL);
	CHECK_EQ(pgw_hyp_init(&pgt, 42, 16, true, &ops_hyp_64k), -PGW_EINVAL);
	/* 42 bits with 64 KiB pages: Linux's two-level hypervisor table. */
	CHECK_EQ(pgw_hyp_init(&pgt, 42, 16, false, &ops_hyp_64k), 0);
	CHECK_EQ(pgt.start_level, 2);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, 0x20000000, 0x10000, 0x30000000,
				     KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_X),
		 0);
	CHECK_EQ(pgw_hyp_get_leaf(&pgt, 0x2000ffff, &pte, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(oa(&(struct format){ .page = 65536 }, pte), 0x30000000);
	kvm_pgtable_hyp_destroy(&pgt);
	/* Bound now: another format is refused, the same one taken. */
	CHECK_EQ(pgw_hyp_init(&pgt, 42, 12, false, &ops_hyp_64k), -PGW_EINVAL);
	CHECK(pgt.pgd == NULL);
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 42, &ops_hyp_64k), 0);
	CHECK_EQ(pgt.start_level, 2);
	kvm_pgtable_hyp_destroy(&pgt);
	CHECK_EQ(in_use, 0);
	/* Beyond 48 bits only with 64 KiB pages or LPA2. */
	CHECK_EQ(pgw_hyp_init(&pgt, 49, 14, false, &ops_never_used), -PGW_EINVAL);
	CHECK_EQ(in_use, 0);
}

/* --- kvm_get_vtcr for every kernel page size. ---------------------------- */

/* Values worked out from 6.12's kvm_get_vtcr (the kernel-parity harness
 * compares pgw_get_vtcr with the kernel's own for every IPA size and page
 * size it builds). */
static void vtcr_for_every_granule(void)
{
	/* PARange 52 bits, 16-bit VMIDs. */
	uint64_t mmfr0 = 6, mmfr1 = 2 << 4;
	uint64_t base = WALK_ATTRS | (1ull << 19);

	/* 4 KiB without LPA2: kvm_get_vtcr itself; PS capped at 48 bits. */
	CHECK_EQ(pgw_get_vtcr(mmfr0, mmfr1, 40, 12, false), kvm_get_vtcr(mmfr0, mmfr1, 40));
	CHECK_EQ(kvm_get_vtcr(mmfr0, mmfr1, 40), base | vtcr(40, 1, TG0_4K, 5));
	/* 16 KiB: 40 bits from level 2 (16 concatenated pages), SL0 = 1. */
	CHECK_EQ(pgw_get_vtcr(mmfr0, mmfr1, 40, 14, false), base | vtcr(40, 1, TG0_16K, 5));
	/* 64 KiB, 52-bit PAs: 52 bits from level 1, SL0 = 2, PS 52 bits. */
	CHECK_EQ(pgw_get_vtcr(mmfr0, mmfr1, 52, 16, false), base | vtcr(52, 2, TG0_64K, 6));
	/* LPA2: DS, PS 52; 4 KiB keeps level 0 with 16 pages, never SL2. */
	CHECK_EQ(pgw_get_vtcr(mmfr0, mmfr1, 52, 12, true), base | vtcr(52, 2, TG0_4K, 6) | DS);
	CHECK_EQ(pgw_get_vtcr(mmfr0, mmfr1, 52, 14, true), base | vtcr(52, 3, TG0_16K, 6) | DS);
	/* No such kernel. */
	CHECK_EQ(pgw_get_vtcr(mmfr0, mmfr1, 40, 13, false), 0);
	CHECK_EQ(pgw_get_vtcr(mmfr0, mmfr1, 40, 16, true), 0);
	/* Each value makes a table of that format. */
	CHECK_EQ(kvm_pgtable_stage2_pgd_size(pgw_get_vtcr(mmfr0, mmfr1, 40, 14, false)),
		 16 * 16384);
	CHECK_EQ(kvm_pgtable_stage2_pgd_size(pgw_get_vtcr(mmfr0, mmfr1, 52, 12, true)), 16 * 4096);
}

int main(void)
{
	const struct format formats[] = {
		/* 40-bit IPA from level 2: a 16-page root of 16 KiB. */
		{ "16 KiB", &ops_16k, 16384, vtcr(40, 1, TG0_16K, 2), 16 * 16384, 2,
		  32ull << 20, 0, 0 },
		/* 52-bit IPA and PA from level 1 (1024 entries): PA[51:48] in
		 * bits 15:12. */
		{ "64 KiB, 52-bit PA", &ops_64k, 65536, vtcr(52, 2, TG0_64K, 6), 65536, 1,
		  512ull << 20, 0xc000000000000ull, 0 },
		/* LPA2, 52 bits from level -1 (SL2): a 16-entry root. */
		{ "4 KiB, LPA2", &ops_4k_lpa2, 4096, vtcr(52, 0, TG0_4K, 6) | DS | SL2, 4096, -1,
		  2ull << 20, 0xc000000000000ull, 1 },
		/* LPA2, 52 bits from level 0 (SL0 = 3): 32 entries. */
		{ "16 KiB, LPA2", &ops_16k_lpa2, 16384, vtcr(52, 3, TG0_16K, 6) | DS, 16384, 0,
		  32ull << 20, 0x4000000000000ull, 1 },
	};
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		one_format(&formats[i]);

	CHECK_EQ(pgw_hyp_set_tlb_ops(&hyp_tlb), 0);
	/* 16 KiB at 47 bits from level 1; 64 KiB at 52 bits from level 1
	 * (FEAT_LVA); LPA2 at 52 bits from level -1 (4 KiB) and 0 (16 KiB). */
	one_hyp_format(&formats[0], 47, 1);
	one_hyp_format(&formats[1], 52, 1);
	one_hyp_format(&formats[2], 52, -1);
	one_hyp_format(&formats[3], 52, 0);
	hyp_named_formats();
	vtcr_for_every_granule();

	/* An mm_ops serves one format: the 16 KiB one refuses 64 KiB. */
	{
		struct kvm_s2_mmu mmu;
		struct kvm_pgtable pgt;

		memset(&mmu, 0, sizeof(mmu));
		memset(&pgt, 0, sizeof(pgt));
		mmu.vtcr = formats[1].vtcr;
		mmu.tlb_flush_vmid_ipa = tlbi_ipa;
		mmu.tlb_flush_vmid_range = tlbi_range;
		mmu.tlb_flush_vmid = tlbi_vmid;
		page_size = 65536;
		CHECK_EQ(kvm_pgtable_stage2_init(&pgt, &mmu, &ops_16k), -PGW_EINVAL);
		CHECK(pgt.pgd == NULL);
		CHECK_EQ(in_use, 0);
	}

	/* A 64 KiB table has no level 0 and no level -1 to free below; an
	 * mm_ops no initialisation used frees nothing. */
	page_size = 65536;
	phys_base = 0x40000000ull;
	{
		void *p = alloc_pages(1);

		kvm_pgtable_stage2_free_unlinked(&ops_64k, p, 0);
		kvm_pgtable_stage2_free_unlinked(&ops_64k, p, -1);
		kvm_pgtable_stage2_free_unlinked(&ops_never_used, p, 1);
		CHECK_EQ(in_use, 1);
		CHECK_EQ(page_count(p), 1);
		put_page(p);
		CHECK_EQ(in_use, 0);
	}
	/* Refused VTCR_EL2 values: 64 KiB with LPA2, level -1 without it. */
	CHECK_EQ(kvm_pgtable_stage2_pgd_size(vtcr(48, 2, TG0_64K, 5) | DS), 0);
	CHECK_EQ(kvm_pgtable_stage2_pgd_size(vtcr(52, 0, TG0_4K, 6) | SL2), 0);
	CHECK_EQ(kvm_pgtable_stage2_pgd_size(vtcr(52, 2, TG0_4K, 6)), 0);
	return test_summary("test_granules");
}

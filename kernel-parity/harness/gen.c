/*
 * Seeded generation of operation sequences, and the geometries they run on.
 *
 * A sequence depends only on its seed, never on results, so any subset of
 * its operations is itself a valid sequence (the shrinker relies on that).
 * Addresses concentrate in a 4 GiB window with four "hot" 2 MiB regions, so
 * that operations overlap: remaps, unmaps cutting blocks, splits of what an
 * earlier map built.
 */
#include "driver.h"

#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

uint64_t kp_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

bool rng_pct(struct rng *r, unsigned pct)
{
	return rng_below(r, 100) < pct;
}

/* ---- geometries ---- */

static unsigned ps_code(unsigned bits)
{
	switch (bits) {
	case 32:
		return 0;
	case 36:
		return 1;
	case 40:
		return 2;
	case 42:
		return 3;
	case 44:
		return 4;
	case 48:
		return 5;
	default:
		return 6;
	}
}

/*
 * VTCR_EL2 for a stage-2 table: T0SZ = 64 - input bits (5:0); SL0 (7:6) the
 * start level, counted down from 2 with 4K pages and from 3 with 16K/64K;
 * IRGN0 = ORGN0 = write-back write-allocate (01 in 9:8 and 11:10); SH0 =
 * inner shareable (11 in 13:12); TG0 (15:14) = 00 for 4K, 10 for 16K, 01
 * for 64K; PS (18:16) the output size; bit 31 RES1; with LPA2, DS (bit 32),
 * as kvm_get_vtcr() sets it when kvm_lpa2_is_enabled().
 */
bool kp_gen_lpa2;

uint64_t kp_vtcr_for(unsigned ia_bits, int start_level, unsigned ps_bits)
{
	unsigned sl0_base = KP_PAGE_SHIFT == 12 ? 2 : 3;
	uint64_t tg0 = KP_PAGE_SHIFT == 12 ? 0 : KP_PAGE_SHIFT == 14 ? 2 : 1;

	return (uint64_t)(64 - ia_bits) | (uint64_t)(sl0_base - start_level) << 6 | 1ull << 8 |
	       1ull << 10 | 3ull << 12 | tg0 << 14 | (uint64_t)ps_code(ps_bits) << 16 | 1ull << 31 |
	       (uint64_t)kp_gen_lpa2 << 32;
}

/* Input sizes per granule: with 4K, 40 bits (a two-page root at level 1),
 * 48 bits (level 0), 39 bits (level 1, one page). 64K pages also run
 * 52 bits (a 1024-entry root at level 1, the kernel built for 52-bit
 * PAs), and LPA2 adds 52 bits to 4K and 16K (level 0: a 16-page root with
 * 4K, KVM never starting at level -1; 32 entries with 16K). */
#if KP_PAGE_SHIFT == 12
static const unsigned ia_list[] = { 40, 48, 39, 52 };
#define NGEO_NO_LPA2 3
#elif KP_PAGE_SHIFT == 14
static const unsigned ia_list[] = { 40, 48, 36, 52 };
#define NGEO_NO_LPA2 3
#else
static const unsigned ia_list[] = { 40, 48, 42, 52 };
#define NGEO_NO_LPA2 4
#endif
#define NGEO NELEM(ia_list)

struct geometry kp_geometries_rw[NGEO];
const struct geometry *const kp_geometries_p = kp_geometries_rw;
size_t kp_ngeometries;
static char geo_names[NGEO][48];

void kp_geometries_init(void)
{
	size_t i;

	kp_ngeometries = kp_gen_lpa2 ? NGEO : NGEO_NO_LPA2;
	for (i = 0; i < kp_ngeometries; i++) {
		struct geometry *g = &kp_geometries_rw[i];
		unsigned ia = ia_list[i];
		/* KVM's choice: the fewest levels (at least two) that
		 * concatenating up to 16 root tables allows. */
		int levels = (int)((ia - 4) - 4) / (KP_PAGE_SHIFT - 3);
		int root_bits;

		if (levels < 2)
			levels = 2;
		g->ia_bits = ia;
		g->start_level = 4 - levels;
		g->ps_bits = ia <= 40 ? 40 : ia <= 48 ? 48 : 52;
		g->vtcr = kp_vtcr_for(ia, g->start_level, g->ps_bits);
		root_bits = (int)ia - KP_LEVEL_SHIFT(g->start_level);
		g->pgd_pages = root_bits > (KP_PAGE_SHIFT - 3)
				       ? (size_t)1 << (root_bits - (KP_PAGE_SHIFT - 3))
				       : 1;
		snprintf(geo_names[i], sizeof(geo_names[i]), "ipa%u-L%d-%zupg%s", ia,
			 g->start_level, g->pgd_pages, kp_gen_lpa2 ? "-lpa2" : "");
		g->name = geo_names[i];
	}
}

/* ---- force_pte_cb ---- */

int kp_force_pte_mode;

/* The table's force_pte_cb, the same function for both sides: mode 1 forces
 * pages for ranges starting in an odd 2 MiB region, mode 2 always, mode 3
 * when the mapping carries SW0. */
bool kp_force_pte_cb(uint64_t addr, uint64_t end, uint64_t prot)
{
	(void)end;
	switch (kp_force_pte_mode) {
	case 1:
		return (addr >> 21) & 1;
	case 2:
		return true;
	case 3:
		return prot & KP_PROT_SW0;
	default:
		return false;
	}
}

/* ---- sequences ---- */

/*
 * Half the sequences are "clean": every input is one a careful caller
 * passes (page-aligned, inside the IPA and PA sizes, known prot bits, a
 * valid walker kind, owner 0 or 1). Invalid input disagrees early and
 * often, and would otherwise hide the disagreements that need a few
 * operations to set up (remaps, blocks cut, splits).
 */
static bool clean;

#define SZ_2M (2ull << 20)
#define SZ_1G (1ull << 30)
#define PG KP_PAGE_SIZE
#define BLK2 KP_GRANULE(2)
#define BLK1 KP_GRANULE(1)
/* The largest size generated: a 1 GiB block with 4K pages; with 16K/64K
 * (no level-1 blocks without LPA2, and 64 GiB / 4 TiB entries) two level-2
 * blocks, so that page mappings of it stay small. */
#define BIG (KP_PAGE_SHIFT == 12 ? BLK1 : 2 * BLK2)

static uint64_t gen_addr(struct rng *r, const struct seq_cfg *c)
{
	uint64_t ia = 1ull << c->geo->ia_bits;
	unsigned k = (unsigned)rng_below(r, 100);

	if (k < 40)
		return c->hot[rng_below(r, 4)] + rng_below(r, BLK2 / PG) * PG;
	if (k < 60)
		return c->window + rng_below(r, c->window_size / BLK2) * BLK2;
	if (k < 68)
		return c->window + rng_below(r, c->window_size / BIG) * BIG;
	if (k < 80)
		return c->window + rng_below(r, c->window_size / PG) * PG;
	if (k < 86 && !clean)
		return c->hot[rng_below(r, 4)] + rng_below(r, 2 * BLK2) + 1;
	if (k < 91 && !clean)
		return ia - (1 + rng_below(r, 4)) * PG;
	if (k < 94 && !clean)
		return ia + rng_below(r, 4) * PG;
	if (k < 94)
		return c->hot[rng_below(r, 4)];
	if (k < 97)
		return c->window;
	return 0;
}

static uint64_t gen_size(struct rng *r, bool for_map)
{
	unsigned k = (unsigned)rng_below(r, 100);

	if (k < 35)
		return (1 + rng_below(r, 16)) * PG;
	if (k < 55)
		return (1 + rng_below(r, 3)) * BLK2;
	if (k < 62)
		return BIG;
	if (k < 72)
		return BLK2 + (rng_pct(r, 50) ? 1 : -1) * (int64_t)((1 + rng_below(r, 4)) * PG);
	if (k < 78 && !clean)
		return 1 + rng_below(r, 3 * PG);
	if (k < 81 && !clean)
		return 0;
	if (k < 81)
		return PG;
	if (k < 92)
		return (1 + rng_below(r, BLK2 / PG)) * PG;
	if (k < 97 || for_map)
		return BIG + BLK2;
	return 4 * BIG;
}

/* Bits 6.12 does not define. While pgwalk's header gives bit 5 a meaning,
 * the prot translation cannot pass it through, so it is left out. */
static uint64_t gen_unknown_bit(struct rng *r)
{
	static const unsigned bits[] = { 5, 6, 7, 9, 10, 11, 20, 40, 50, 53, 54, 59, 62, 63 };
	unsigned b;

	do
		b = bits[rng_below(r, NELEM(bits))];
	while (b == 5 && kp_pgwalk_translates_prot());
	return 1ull << b;
}

static uint64_t gen_prot(struct rng *r)
{
	uint64_t prot = 0;
	unsigned k;

	if (rng_pct(r, 85))
		prot |= KP_PROT_R;
	if (rng_pct(r, 55))
		prot |= KP_PROT_W;
	if (rng_pct(r, 40))
		prot |= KP_PROT_X;
	k = (unsigned)rng_below(r, 100);
	if (k < 12)
		prot |= KP_PROT_DEVICE;
	else if (k < 20)
		prot |= KP_PROT_NORMAL_NC;
	else if (k < 23 && !clean)
		prot |= KP_PROT_DEVICE | KP_PROT_NORMAL_NC;
	if (clean && (prot & (KP_PROT_DEVICE | KP_PROT_NORMAL_NC)))
		prot &= ~KP_PROT_X;
	if (rng_pct(r, 20))
		prot |= rng_below(r, 16) << 55;
	if (rng_pct(r, 5) && !clean)
		prot |= gen_unknown_bit(r);
	return prot;
}

static int gen_mc(struct rng *r, int levels)
{
	unsigned k = (unsigned)rng_below(r, 100);

	if (k < 55)
		return 10000;
	if (k < 65)
		return -1;
	if (k < 75)
		return 0;
	if (k < 85)
		return levels - 1; /* kvm_mmu_cache_min_pages() */
	return 1 + (int)rng_below(r, 20);
}

static uint64_t gen_phys(struct rng *r, const struct seq_cfg *c, uint64_t addr, uint64_t size)
{
	unsigned k = (unsigned)rng_below(r, 100);
	uint64_t offset = (addr - c->window) & ((1ull << 38) - 1);

	/* A large range with a misaligned output address is 2^18 pages per
	 * GiB: keep those rare. */
	if (size >= BIG && k >= 60 && k < 90 && rng_pct(r, 80))
		k = 0;
	if (k < 60)
		return c->phys_base + offset;
	if (k < 75)
		return c->phys_base + offset + (1 + rng_below(r, 4)) * PG;
	if (k < 83)
		return rng_below(r, 1ull << (39 - KP_PAGE_SHIFT)) * PG;
	if (k < 90)
		return rng_below(r, (1ull << 39) / BLK2) * BLK2;
	if (clean)
		return c->phys_base + offset;
	if (k < 94)
		return c->phys_base + offset + 1 + rng_below(r, PG - 1);
	if (k < 98)
		return (1ull << 40) + rng_below(r, 1ull << 30) * PG;
	return (1ull << 48) + rng_below(r, 1024) * BIG;
}

static void gen_walk(struct rng *r, struct op *op)
{
	static const int rates[] = { 0, 0, 0, 64, 64, 8, 8, 8, 2, 1 };
	uint32_t visit = 0, kind;
	unsigned k;

	if (rng_pct(r, 95)) {
		while (!visit) {
			if (rng_pct(r, 60))
				visit |= KP_WALK_LEAF;
			if (rng_pct(r, 40))
				visit |= KP_WALK_TABLE_PRE;
			if (rng_pct(r, 40))
				visit |= KP_WALK_TABLE_POST;
		}
	}
	k = (unsigned)rng_below(r, 100);
	kind = k < 40 ? 0 : k < 70 ? KP_WALK_SHARED : k < 95 ? KP_WALK_SHARED | KP_WALK_HANDLE_FAULT
							 : KP_WALK_HANDLE_FAULT;
	if (clean && kind == KP_WALK_HANDLE_FAULT)
		kind = KP_WALK_SHARED | KP_WALK_HANDLE_FAULT;
	op->flags = visit | kind;
	if (rng_pct(r, 5))
		op->flags |= KP_WALK_SKIP_BBM_TLBI;
	if (rng_pct(r, 5))
		op->flags |= KP_WALK_SKIP_CMO;
	op->wseed = rng_next(r);
	op->rate = rates[rng_below(r, NELEM(rates))];
	k = (unsigned)rng_below(r, 100);
	op->code_set = k < 25 ? 0 : k < 50 ? 1 : k < 60 ? 2 : k < 65 ? 3 : k < 70 ? 4 : 5;
	op->write_rate = rng_pct(r, 40) ? 4 : 0;
}

static void gen_op(struct rng *r, const struct seq_cfg *c, struct op *op)
{
	int levels = 4 - c->geo->start_level;
	unsigned k = (unsigned)rng_below(r, 1000);

	memset(op, 0, sizeof(*op));
	op->mc = -1;
	op->addr = gen_addr(r, c);
	op->size = gen_size(r, false);
	if (k < 300) {
		op->kind = OP_MAP;
		op->size = gen_size(r, true);
		op->phys = gen_phys(r, c, op->addr, op->size);
		op->prot = gen_prot(r);
		op->mc = gen_mc(r, levels);
		k = (unsigned)rng_below(r, 100);
		if (k < 55)
			op->flags = 0;
		else if (k < 85)
			op->flags = KP_WALK_SHARED | KP_WALK_HANDLE_FAULT;
		else if (k < 90)
			op->flags = KP_WALK_SKIP_CMO;
		else if (k < 93 || clean)
			op->flags = KP_WALK_SKIP_BBM_TLBI;
		else if (k < 96)
			op->flags = KP_WALK_SHARED;
		else if (k < 98)
			op->flags = KP_WALK_HANDLE_FAULT;
		else
			op->flags = 1u << 7;
	} else if (k < 400) {
		op->kind = OP_UNMAP;
	} else if (k < 460) {
		op->kind = OP_SET_OWNER;
		k = (unsigned)rng_below(r, 100);
		op->owner = k < 30 ? 0 : k < 90 || clean ? 1 : 2;
		op->mc = gen_mc(r, levels);
	} else if (k < 520) {
		op->kind = OP_WRPROTECT;
	} else if (k < 570) {
		op->kind = OP_MKYOUNG;
	} else if (k < 620) {
		op->kind = OP_TEST_CLEAR_YOUNG;
		op->mkold = rng_pct(r, 50);
	} else if (k < 690) {
		op->kind = OP_RELAX_PERMS;
		op->prot = 0;
		if (rng_pct(r, 50))
			op->prot |= KP_PROT_R;
		if (rng_pct(r, 60))
			op->prot |= KP_PROT_W;
		if (rng_pct(r, 40))
			op->prot |= KP_PROT_X;
		k = (unsigned)rng_below(r, 100);
		if (k < 8)
			op->prot |= KP_PROT_SW1;
		else if (k < 15)
			op->prot |= rng_pct(r, 50) ? KP_PROT_DEVICE : KP_PROT_NORMAL_NC;
		else if (k < 20 && !clean)
			op->prot |= gen_unknown_bit(r);
		if (clean)
			op->prot &= KP_PROT_R | KP_PROT_W | KP_PROT_X;
	} else if (k < 720) {
		op->kind = OP_FLUSH;
	} else if (k < 790) {
		op->kind = OP_SPLIT;
		k = (unsigned)rng_below(r, 100);
		op->mc = k < 40 ? 10000 : k < 60 ? 1 : k < 75 ? 0 : k < 90 ? (int)KP_PTRS + 1
									   : 2 + (int)rng_below(r, 9);
	} else if (k < 830) {
		op->kind = OP_CREATE_UNLINKED;
		k = (unsigned)rng_below(r, 100);
		op->level = k < 50 ? 2 : k < 85 || clean ? 1 : k < 92 ? 0 : 3;
		/* With 16K/64K a level-1 entry spans 64 GiB / 4 TiB: a table
		 * for it down to pages would be gigabytes. */
		if (KP_PAGE_SHIFT != 12 && op->level < 2)
			op->level = 2;
		op->force_pte = op->level != 0 && rng_pct(r, 40);
		op->phys = (c->phys_base & ~(KP_GRANULE(op->level) - 1)) +
			   rng_below(r, op->level ? 64 : 2) * KP_GRANULE(op->level);
		if (rng_pct(r, 15) && !clean)
			op->phys += PG * (1 + rng_below(r, 8));
		op->prot = gen_prot(r);
		op->mc = rng_pct(r, 85) ? 10000 : (int)rng_below(r, 3);
		op->slot = (int)rng_below(r, KP_SLOTS);
	} else if (k < 850) {
		op->kind = OP_FREE_UNLINKED;
		op->slot = (int)rng_below(r, KP_SLOTS);
	} else if (k < 960) {
		op->kind = OP_WALK;
		gen_walk(r, op);
	} else if (k < 985) {
		op->kind = OP_GET_LEAF;
	} else {
		op->kind = OP_PTE_PROT;
		op->phys = rng_next(r);
		if (rng_pct(r, 80))
			op->phys |= KP_PTE_VALID;
	}
	if (clean && op->addr + op->size > (1ull << c->geo->ia_bits))
		op->size = (1ull << c->geo->ia_bits) - op->addr;
	if (clean && !op->size)
		op->size = PG;
}

/* ---- hyp (EL2 stage-1) sequences ---- */

unsigned kp_gen_hyp_pct = 20;

int kp_hyp_start_level(unsigned va_bits)
{
	/* ARM64_HW_PGTABLE_LEVELS(va) = (va - 4) / (PAGE_SHIFT - 3), in the
	 * kernel's int arithmetic (va_bits is u32 there: below 4 it wraps
	 * to a huge count, a start level far below -1). */
	if (va_bits < 4)
		return -100;
	return KP_LAST_LEVEL + 1 - (int)((va_bits - 4) / (KP_PAGE_SHIFT - 3));
}

unsigned kp_hyp_max_va_bits(void)
{
	return kp_gen_lpa2 || KP_PAGE_SHIFT == 16 ? 52 : 48;
}

/*
 * VA sizes per granule: the usual ones (a hypervisor's 48 or 39 bits, and
 * smaller ones starting at lower levels; 52 with LPA2 or 64K pages), and,
 * in unclean sequences, sizes 6.12 takes and pgwalk does not (a start at
 * level 3, or at -1 or 0 beyond the format's VA size) or neither takes.
 * Not the sizes whose start level puts the shift of 6.12's root index
 * (kvm_pgd_page_idx: kvm_granule_shift(start_level - 1)) at 64 or more,
 * 16K pages from level -1 and 64K from level 0: the kernel's walker then
 * indexes far out of its root page (a crash, for input no TCR_EL2 can
 * describe and pgwalk refuses).
 */
#if KP_PAGE_SHIFT == 12
static const unsigned hyp_va_clean[] = { 48, 39, 32, 30, 25 };
static const unsigned hyp_va_unclean[] = { 24, 21, 13, 12, 52, 57, 58 };
#elif KP_PAGE_SHIFT == 14
static const unsigned hyp_va_clean[] = { 48, 47, 40, 36, 30 };
static const unsigned hyp_va_unclean[] = { 25, 24, 14, 52, 58 };
#else
static const unsigned hyp_va_clean[] = { 48, 52, 42, 36, 29 };
static const unsigned hyp_va_unclean[] = { 25, 24, 16, 53, 55 };
#endif

/* Every prot, including those hyp_set_prot_attr refuses (no R, W with X,
 * X on DEVICE). NORMAL_NC (which 6.12's hyp tables ignore) and bits 6.12
 * does not define only in unclean sequences: a careful caller of the
 * kernel's hyp_map passes neither. */
static uint64_t gen_hyp_prot(struct rng *r)
{
	uint64_t prot = 0;
	unsigned k;

	if (rng_pct(r, 88))
		prot |= KP_PROT_R;
	if (rng_pct(r, 50))
		prot |= KP_PROT_W;
	if (rng_pct(r, 35))
		prot |= KP_PROT_X;
	/* Text is mapped R|X: keep W with X (refused) to a third of them. */
	if ((prot & KP_PROT_X) && rng_pct(r, 65))
		prot &= ~KP_PROT_W;
	k = (unsigned)rng_below(r, 100);
	if (k < 14)
		prot |= KP_PROT_DEVICE;
	else if (k < 20 && !clean)
		prot |= KP_PROT_NORMAL_NC;
	else if (k < 22 && !clean)
		prot |= KP_PROT_DEVICE | KP_PROT_NORMAL_NC;
	if (rng_pct(r, 20))
		prot |= rng_below(r, 16) << 55;
	if (rng_pct(r, 6) && !clean)
		prot |= gen_unknown_bit(r);
	return prot;
}

/* Whether [addr, addr + size), as 6.12 rounds it, meets the range of an
 * earlier map of the sequence (whatever that map returned). */
static bool meets_earlier_map(const struct seq_cfg *c, int i, uint64_t addr, uint64_t size)
{
	uint64_t start = addr & ~(PG - 1), end = (start + size + PG - 1) & ~(PG - 1);
	int j;

	for (j = 0; j < i; j++) {
		const struct op *e = &c->ops[j];
		uint64_t es = e->addr & ~(PG - 1), ee = (es + e->size + PG - 1) & ~(PG - 1);

		if (e->kind == OP_HYP_MAP && start < ee && es < end)
			return true;
	}
	return false;
}

static void gen_hyp_op(struct rng *r, struct seq_cfg *c, int i, struct op *op)
{
	unsigned k = (unsigned)rng_below(r, 1000);
	const struct op *earlier = NULL;
	int j;

	memset(op, 0, sizeof(*op));
	op->mc = -1;
	op->addr = gen_addr(r, c);
	op->size = gen_size(r, false);
	/* An earlier map, to remap or unmap what it mapped. */
	for (j = i ? (int)rng_below(r, (uint64_t)i) : 0; j < i; j++)
		if (c->ops[j].kind == OP_HYP_MAP) {
			earlier = &c->ops[j];
			break;
		}
	if (k < 380) {
		op->kind = OP_HYP_MAP;
		op->size = gen_size(r, true);
		op->phys = gen_phys(r, c, op->addr, op->size);
		op->prot = gen_hyp_prot(r);
		/*
		 * A map over part of an earlier one, or over it with other
		 * attributes, is what 6.12's hyp_map mishandles and pgwalk
		 * refuses (deviations.txt): the sequence stops there. Clean
		 * sequences keep new maps clear of earlier ones, so that they
		 * run long; unclean ones overlap freely.
		 */
		for (j = 0; clean && j < 8 && meets_earlier_map(c, i, op->addr, op->size); j++) {
			op->addr = gen_addr(r, c);
			op->size = gen_size(r, true);
			op->phys = gen_phys(r, c, op->addr, op->size);
		}
		if (clean && meets_earlier_map(c, i, op->addr, op->size))
			op->kind = OP_GET_LEAF;
		/* Remaps: the same range with the same prot (a no-op), with
		 * other software bits (6.12 updates them in place) or, in
		 * unclean sequences, with another prot or output. */
		if (earlier && rng_pct(r, 25)) {
			op->kind = OP_HYP_MAP;
			op->addr = earlier->addr;
			op->size = earlier->size;
			op->phys = earlier->phys;
			k = (unsigned)rng_below(r, 100);
			if (k < 40 || (clean && k >= 70))
				op->prot = earlier->prot;
			else if (k < 70)
				op->prot = (earlier->prot & ~KP_PROT_SW) | rng_below(r, 16) << 55;
			else if (k < 85)
				op->phys += KP_PAGE_SIZE * (1 + rng_below(r, 4));
		}
	} else if (k < 600) {
		op->kind = OP_HYP_UNMAP;
		if (earlier && rng_pct(r, 30)) {
			op->addr = earlier->addr;
			op->size = earlier->size;
			/* Part of it: a block cut, or its tail. */
			if (rng_pct(r, 40))
				op->addr += (op->size / 2) & ~(KP_PAGE_SIZE - 1);
		}
	} else if (k < 760) {
		op->kind = OP_WALK;
		gen_walk(r, op);
	} else if (k < 860) {
		op->kind = OP_GET_LEAF;
	} else {
		op->kind = OP_HYP_PTE_PROT;
		op->raw_pte = rng_pct(r, 30);
		op->phys = rng_next(r);
		if (rng_pct(r, 80))
			op->phys |= KP_PTE_VALID;
	}
	if (clean && op->addr + op->size > (1ull << c->geo->ia_bits))
		op->size = (1ull << c->geo->ia_bits) - op->addr;
	if (clean && !op->size)
		op->size = PG;
}

static void gen_hyp_sequence(struct seq_cfg *c, struct rng *r, int max_ops)
{
	struct geometry *g = &c->hyp_geo;
	uint64_t ia;
	int i;

	c->hyp = true;
	clean = c->clean = rng_pct(r, 50);
	if (!clean && rng_pct(r, 15))
		c->va_bits = hyp_va_unclean[rng_below(r, NELEM(hyp_va_unclean))];
	else if (kp_hyp_max_va_bits() == 52 && rng_pct(r, 25))
		c->va_bits = 52;
	else
		c->va_bits = hyp_va_clean[rng_below(r, NELEM(hyp_va_clean))];
	c->hyp_page_count = !rng_pct(r, 8);
	/* Some run out of pages: a map that fails half-way. */
	if (rng_pct(r, 10))
		c->hyp_pool_limit = 2 + rng_below(r, 12);
	g->ia_bits = c->va_bits;
	g->start_level = kp_hyp_start_level(c->va_bits);
	g->ps_bits = kp_hyp_max_va_bits();
	g->vtcr = 0;
	g->pgd_pages = 1;
	snprintf(c->hyp_name, sizeof(c->hyp_name), "hyp-va%u-L%d%s%s%s", c->va_bits,
		 g->start_level, kp_gen_lpa2 ? "-lpa2" : "", c->hyp_page_count ? "" : "-nocount",
		 c->hyp_pool_limit ? "-lowmem" : "");
	g->name = c->hyp_name;
	c->geo = g;
	c->tlb_range = rng_pct(r, 50);
	ia = 1ull << g->ia_bits;
	c->window_size = 4 * BIG < ia / 2 ? 4 * BIG : ia / 2;
	if (rng_pct(r, 10))
		c->window = ia - c->window_size;
	else
		c->window = rng_below(r, (ia - c->window_size) / BIG + 1) * BIG;
	for (i = 0; i < 4; i++)
		c->hot[i] = c->window + rng_below(r, c->window_size / BLK2) * BLK2;
	c->phys_base = rng_below(r, 256) * (1ull << 30);
	if (g->ps_bits == 52 && rng_pct(r, 50))
		c->phys_base += (1 + rng_below(r, 1ull << 12)) << 39;
	if (max_ops > KP_MAX_OPS)
		max_ops = KP_MAX_OPS;
	c->nops = 1 + (int)rng_below(r, (uint64_t)max_ops);
	for (i = 0; i < c->nops; i++)
		gen_hyp_op(r, c, i, &c->ops[i]);
}

void gen_sequence(struct seq_cfg *c, uint64_t seed, int index, int max_ops)
{
	struct rng r = { kp_mix64(seed ^ kp_mix64((uint64_t)index)) | 1 };
	/* Drawn apart from r, so that the stage-2 sequences are those of a
	 * run without hyp sequences. */
	bool hyp = kp_mix64(seed ^ kp_mix64((uint64_t)index ^ 0x687970ull)) % 100 < kp_gen_hyp_pct;
	uint64_t ia;
	int i;

	memset(c, 0, sizeof(*c));
	c->seed = seed;
	c->index = index;
	if (hyp) {
		gen_hyp_sequence(c, &r, max_ops);
		return;
	}
	clean = c->clean = rng_pct(&r, 50);
	c->geo = &kp_geometries_p[rng_below(&r, kp_ngeometries)];
	ia = 1ull << c->geo->ia_bits;
	c->s2_flags = rng_pct(&r, 25) ? KP_S2_NOFWB : 0;
	c->force_pte_mode = rng_pct(&r, 12) ? 1 + (int)rng_below(&r, 3) : 0;
	c->tlb_range = rng_pct(&r, 50);
	c->window_size = 4 * BIG < ia / 2 ? 4 * BIG : ia / 2;
	if (rng_pct(&r, 10))
		c->window = ia - c->window_size;
	else
		c->window = rng_below(&r, (ia - c->window_size) / BIG + 1) * BIG;
	for (i = 0; i < 4; i++)
		c->hot[i] = c->window + rng_below(&r, c->window_size / BLK2) * BLK2;
	c->phys_base = rng_below(&r, 256) * (1ull << 30);
	/* With 52-bit PAs, half the sequences map above 2^48, where the
	 * descriptors hold the top address bits elsewhere (15:12 with 64K,
	 * 9:8 with LPA2). */
	if (c->geo->ps_bits == 52 && rng_pct(&r, 50))
		c->phys_base += (1 + rng_below(&r, 1ull << 12)) << 39;
	if (max_ops > KP_MAX_OPS)
		max_ops = KP_MAX_OPS;
	c->nops = 1 + (int)rng_below(&r, (uint64_t)max_ops);
	for (i = 0; i < c->nops; i++)
		gen_op(&r, c, &c->ops[i]);
}

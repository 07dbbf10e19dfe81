/*
 * The end of a run: what the guest touched, the final check of the
 * stage-2 table, and the statistics.
 *
 * The check runs with the table's write lock held, after the grace queue
 * is drained, with nothing but the C API: kvm_pgtable_walk visits every
 * table entry (before its children) and every leaf. Structure: every table
 * page is a pool page whose reference count is 1 plus its non-zero
 * entries (the root's pages each), no child table is empty, no locked
 * marker is left, a page only at level 3. Content: nothing annotated,
 * every leaf an identity map of guest RAM (Normal write-back) or of a
 * device page (Device-nGnRE, never executable), nothing of the
 * hypervisor's, every page the guest faulted on mapped so
 * (kvm_pgtable_get_leaf) or dropped with a block that a page map cut, and
 * the pool's table pages exactly the table's.
 * Then the table is destroyed, and every one of them must be back.
 */
#include "arch.h"
#include "hv.h"

#define RAM_WORDS ((int)(GUEST_RAM_SIZE / PAGE / 64))
#define DEVICE_SLOTS 128
#define MEMATTR(pte) (((pte) >> 2) & 0xf)
#define MEMATTR_NORMAL_WB 0xf
#define MEMATTR_DEVICE_nGnRE 0x1

static _Atomic uint64_t touched_ram[RAM_WORDS];
static _Atomic uint64_t touched_device[DEVICE_SLOTS];
static _Atomic uint64_t cut_blocks[(GUEST_RAM_SIZE / BLOCK + 63) / 64];
static atomic_int device_used;
static atomic_bool stopping;

void check_touched_ram(uint64_t ipa)
{
	uint64_t page = (ipa - GUEST_RAM_BASE) / PAGE;

	atomic_fetch_or_explicit(&touched_ram[page / 64], 1ull << (page % 64), memory_order_relaxed);
}

void check_touched_device(uint64_t ipa)
{
	int slot = atomic_fetch_add(&device_used, 1);

	if (slot < DEVICE_SLOTS)
		atomic_store(&touched_device[slot], (ipa & ~(PAGE - 1)) | 1);
}

void check_block_cut(uint64_t ipa)
{
	uint64_t block = (ipa - GUEST_RAM_BASE) / BLOCK;

	atomic_fetch_or_explicit(&cut_blocks[block / 64], 1ull << (block % 64), memory_order_relaxed);
}

static bool in_cut_block(uint64_t ipa)
{
	uint64_t block = (ipa - GUEST_RAM_BASE) / BLOCK;

	return atomic_load(&cut_blocks[block / 64]) & (1ull << (block % 64));
}

bool check_stopping(void)
{
	return atomic_load(&stopping);
}

struct findings {
	int problems;
	uint64_t tables, blocks, pages, device_pages;
};

static void problem(struct findings *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct findings *f, const char *fmt, ...)
{
	va_list ap;

	if (++f->problems > 12)
		return;
	hv_printf("pgwalk-hv-c: table check: ");
	va_start(ap, fmt);
	hv_vprintf(fmt, ap);
	va_end(ap);
	hv_printf("\n");
}

static uint64_t entry_size(int8_t level)
{
	return 1ull << (12 + 9 * (KVM_PGTABLE_LAST_LEVEL - level));
}

/* The non-zero entries of a table page, and whether the page's count is
 * one more. */
static void check_table_page(struct findings *f, uint64_t pa, uint64_t ipa, int8_t level, bool root)
{
	const uint64_t *e = (const uint64_t *)(uintptr_t)pa;
	int used = 0;

	for (int i = 0; i < 512; i++)
		used += e[i] != 0;
	int refs = pool_refcount(pa);
	if (refs != used + 1)
		problem(f, "table page %#lx (level %d, IPA %#lx): count %d, %d entries", pa, level, ipa, refs, used);
	if (!root && used == 0)
		problem(f, "empty table page %#lx (level %d, IPA %#lx) still linked", pa, level, ipa);
}

static int visit(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	struct findings *f = ctx->arg;
	kvm_pte_t d = ctx->old;
	uint64_t ipa = ctx->addr, size = entry_size(ctx->level);
	uint64_t pa = d & KVM_PTE_ADDR_MASK;
	const char *name = NULL;

	if (visit == KVM_PGTABLE_WALK_TABLE_PRE) {
		f->tables++;
		if (!pool_contains(pa)) {
			problem(f, "table entry at %#lx (level %d) points outside the pool: %#lx", ipa, ctx->level, d);
			/* Not followed: stop here. */
			return -PGW_EINVAL;
		}
		check_table_page(f, pa, ipa, (int8_t)(ctx->level + 1), false);
		return 0;
	}
	if (!(d & KVM_PTE_VALID)) {
		if (d & KVM_INVALID_PTE_LOCKED)
			problem(f, "locked marker left at %#lx (level %d): %#lx", ipa, ctx->level, d);
		else if (d)
			problem(f, "annotated entry at %#lx (level %d): %#lx; this hypervisor annotates none", ipa,
				ctx->level, d);
		return 0;
	}
	bool page_desc = d & 2;
	if ((ctx->level == KVM_PGTABLE_LAST_LEVEL) != page_desc || ctx->level < 2)
		problem(f, "leaf %#lx at level %d: %#lx", ipa, ctx->level, d);
	if (pa != ipa)
		problem(f, "%#lx maps %#lx, not itself", ipa, pa);
	if (ipa < HV_BASE + HV_SIZE && ipa + size > HV_BASE)
		problem(f, "%#lx maps the hypervisor's memory", ipa);
	switch (memmap_lookup(ipa, &name)) {
	case REGION_RAM:
		if (!memmap_is_ram(ipa, size) || MEMATTR(d) != MEMATTR_NORMAL_WB)
			problem(f, "RAM leaf %#lx (level %d): %#lx", ipa, ctx->level, d);
		if (ctx->level == 2)
			f->blocks++;
		else
			f->pages++;
		break;
	case REGION_DEVICE:
		if (ctx->level != 3 || MEMATTR(d) != MEMATTR_DEVICE_nGnRE || !(d & KVM_PTE_LEAF_ATTR_HI_S2_XN))
			problem(f, "%s page %#lx (level %d): %#lx", name, ipa, ctx->level, d);
		f->device_pages++;
		break;
	default:
		problem(f, "leaf %#lx (level %d) where the memory map has nothing: %#lx", ipa, ctx->level, d);
	}
	return 0;
}

/* Every page the guest faulted on is mapped as RAM, or, inside a block a
 * page map cut, not mapped at all (6.12 dropped the rest of the block;
 * the guest did not touch the page again). */
static void check_touched(struct findings *f, int *ram_pages, int *device_pages, int *dropped)
{
	for (int w = 0; w < RAM_WORDS; w++)
		for (uint64_t bits = atomic_load(&touched_ram[w]); bits; bits &= bits - 1) {
			uint64_t ipa = GUEST_RAM_BASE + ((uint64_t)w * 64 + (uint64_t)__builtin_ctzll(bits)) * PAGE;
			kvm_pte_t d = 0;
			int8_t level = 0;
			int r = kvm_pgtable_get_leaf(&stage2, ipa, &d, &level);
			(*ram_pages)++;
			if (!r && d == 0 && in_cut_block(ipa)) {
				(*dropped)++;
				continue;
			}
			if (r || !(d & KVM_PTE_VALID) || !(kvm_pgtable_stage2_pte_prot(d) & KVM_PGTABLE_PROT_R) ||
			    (d & KVM_PTE_ADDR_MASK) != (ipa & ~(entry_size(level) - 1)) || MEMATTR(d) != MEMATTR_NORMAL_WB)
				problem(f, "touched RAM page %#lx not mapped as RAM: %#lx at level %d (%s)", ipa, d, level,
					errno_str(r));
		}
	int n = atomic_load(&device_used);
	*device_pages = n < DEVICE_SLOTS ? n : DEVICE_SLOTS;
	for (int i = 0; i < *device_pages; i++) {
		uint64_t ipa = atomic_load(&touched_device[i]) & ~1ull;
		kvm_pte_t d = 0;
		int r = kvm_pgtable_get_leaf(&stage2, ipa, &d, NULL);
		if (r || !(d & KVM_PTE_VALID) || (d & KVM_PTE_ADDR_MASK) != ipa || MEMATTR(d) != MEMATTR_DEVICE_nGnRE)
			problem(f, "touched device page %#lx not mapped as a device: %#lx (%s)", ipa, d, errno_str(r));
	}
}

bool check_finish(void)
{
	struct findings f = { 0 };
	int ram_pages = 0, device_pages = 0, dropped = 0;
	uint64_t elapsed = ticks_to_ms(counter() - atomic_load(&stats.start));

	atomic_store(&stopping, true);
	write_lock(&mmu_lock);
	grace_drain();

	size_t root_pages = kvm_pgtable_stage2_pgd_size(stage2_mmu.vtcr) / PAGE;
	for (size_t i = 0; i < root_pages; i++)
		check_table_page(&f, stage2_mmu.pgd_phys + i * PAGE, 0, stage2.start_level, true);
	struct kvm_pgtable_walker walker = {
		.cb = visit, .arg = &f, .flags = KVM_PGTABLE_WALK_LEAF | KVM_PGTABLE_WALK_TABLE_PRE,
	};
	int r = kvm_pgtable_walk(&stage2, 0, 1ull << stage2.ia_bits, &walker);
	if (r)
		problem(&f, "the walk returned %s", errno_str(r));
	check_touched(&f, &ram_pages, &device_pages, &dropped);

	uint64_t in_use, peak;
	pool_usage(&in_use, &peak);
	int with_count = pool_table_pages();
	if ((uint64_t)with_count != root_pages + f.tables)
		problem(&f, "pool: %d pages with a count, the table has %lu", with_count, root_pages + f.tables);
	if (f.problems == 0) {
		/* Every table page goes back through put_page and
		 * free_pages_exact; what stays taken is the memory caches'. */
		kvm_pgtable_stage2_destroy(&stage2);
		if (pool_table_pages() != 0 || stage2.pgd)
			problem(&f, "after kvm_pgtable_stage2_destroy %d pool pages still have a count",
				pool_table_pages());
	}
	/* The lock stays held: the machine powers off next, and another vCPU
	 * still running must not fault into a destroyed table meanwhile. */

	stats_print(elapsed);
	hv_printf("pgwalk-hv-c: final table: %lu RAM blocks (2 MiB), %lu RAM pages (4 KiB), %lu device pages, %lu table pages (pool peak %lu)\n",
		  f.blocks, f.pages, f.device_pages, root_pages + f.tables, peak);
	uint64_t counts[16];
	int rounds = dirty_counted(counts, 16), with_writes = 0;
	for (int i = 0; i < rounds; i++) {
		with_writes += counts[i] > 0;
		hv_printf("pgwalk-hv-c: dirty round %d: %lu pages\n", i + 1, counts[i]);
	}
	hv_printf("pgwalk-hv-c: dirty rounds: %d counted, %d with writes\n", rounds, with_writes);
	int ran = 0;
	for (int i = 0; i < MAX_CPUS; i++)
		ran += atomic_load(&vcpu_get((uint64_t)i)->boots) > 0;
	hv_printf("pgwalk-hv-c: vCPUs that ran the guest: %d\n", ran);
	if (f.problems) {
		hv_printf("pgwalk-hv-c: TABLE CHECK FAILED: %d problems\n", f.problems);
		return false;
	}
	hv_printf("pgwalk-hv-c: TABLE CHECK PASSED (%lu tables, %d touched RAM pages (%d of them dropped with a cut block), %d device pages checked; destroyed, every table page back in the pool)\n",
		  f.tables, ram_pages, dropped, device_pages);
	return true;
}

/*
 * The hypervisor's own EL2 stage-1 translation, built as KVM builds its
 * hyp tables: kvm_pgtable_hyp_init and kvm_pgtable_hyp_map over a small
 * static pool of its own (the stage-2 pool's accounting stays the
 * guest's), with the EL2 TLB maintenance registered through
 * pgw_hyp_set_tlb_ops. An identity map, 4 KiB granule, 32-bit VA (start
 * at level 1), PS 40 bits: code read-only and executable, data never
 * executable, guest RAM mapped for cache maintenance by address, the UART
 * as Device. CPU 0 builds it with the MMU off; every CPU turns its MMU on
 * with it.
 */
#include "arch.h"
#include "hv.h"

#define TABLE_PAGES 16
#define VA_BITS 32
/* Linux's MT_* indices: 0 Normal WB, 2 Normal NC, 4 Device-nGnRE. */
#define HYP_MAIR 0x000000040044ffffull

static _Alignas(4096) uint64_t pages[TABLE_PAGES][512];
/* Plain loads and stores, never read-modify-write: the table changes on
 * one CPU, and with the MMU off memory is Device-nGnRnE, where exclusive
 * accesses are not guaranteed to work. */
static volatile uint32_t refs[TABLE_PAGES];
static struct kvm_pgtable hyp;
static uint64_t ttbr0, tcr;

static int page_index(void *addr)
{
	uint64_t off = (uint64_t)(uintptr_t)addr - (uint64_t)(uintptr_t)pages;

	if (off / PAGE >= TABLE_PAGES)
		hv_panic("el2_mmu: %p is not an EL2 table page", addr);
	return (int)(off / PAGE);
}

static void *zalloc(void *mc)
{
	(void)mc;
	for (int i = 0; i < TABLE_PAGES; i++)
		if (refs[i] == 0) {
			for (int w = 0; w < 512; w++)
				pages[i][w] = 0;
			refs[i] = 1;
			return pages[i];
		}
	return NULL;
}

static void get(void *addr) { refs[page_index(addr)] = refs[page_index(addr)] + 1; }
static void put(void *addr)
{
	int i = page_index(addr);

	if (refs[i] == 0)
		hv_panic("el2_mmu: put_page on free page %p", addr);
	refs[i] = refs[i] - 1;
}
static int count(void *addr) { return (int)refs[page_index(addr)]; }
static void *p2v(uint64_t pa) { return (void *)(uintptr_t)pa; }
static uint64_t v2p(void *va) { return (uint64_t)(uintptr_t)va; }

/* What a hyp table uses of its mm_ops (pKVM's hyp allocators give no
 * more). */
static struct kvm_pgtable_mm_ops hyp_mm_ops = {
	.zalloc_page = zalloc,
	.get_page = get,
	.put_page = put,
	.page_count = count,
	.phys_to_virt = p2v,
	.virt_to_phys = v2p,
};

static void flush_va(void *arg, uint64_t va, int8_t level) { (void)arg; (void)level; tlbi_el2_va(va); }
static void flush_va_walks(void *arg, uint64_t va, int8_t level) { (void)arg; (void)level; tlbi_el2_va_walks(va); }
static void publish(void *arg) { (void)arg; publish_tables(); }

static const struct pgw_hyp_tlb_ops hyp_tlb = {
	.flush_va = flush_va, .flush_va_walks = flush_va_walks, .publish = publish,
};

#define CODE (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_X)
#define RO KVM_PGTABLE_PROT_R
#define RW KVM_PGTABLE_PROT_RW
#define DEV (KVM_PGTABLE_PROT_RW | KVM_PGTABLE_PROT_DEVICE)

static void map(uint64_t va, uint64_t size, uint64_t prot)
{
	int r = kvm_pgtable_hyp_map(&hyp, va, size, va, prot);

	if (r)
		hv_panic("el2_mmu: mapping %#lx+%#lx: %s", va, size, errno_str(r));
}

/* Reads back, through the library's own lookup, what an address maps to:
 * itself, with the protection asked for (pgw_hyp_get_leaf, and
 * kvm_pgtable_hyp_pte_prot, which reports no memory type). */
static void expect(uint64_t va, uint64_t prot)
{
	kvm_pte_t pte = 0;
	int8_t level = 0;
	int r = pgw_hyp_get_leaf(&hyp, va, &pte, &level);
	uint64_t size = 1ull << (12 + 9 * (3 - level));
	uint64_t pa = (pte & KVM_PTE_ADDR_MASK & ~(size - 1)) | (va & (size - 1));
	uint64_t want = prot & ~KVM_PGTABLE_PROT_DEVICE;

	if (r || !(pte & KVM_PTE_VALID) || pa != va || kvm_pgtable_hyp_pte_prot(pte) != want)
		hv_panic("el2_mmu: %#lx maps %#lx at level %d (%s)", va, pte, level, errno_str(r));
}

void el2_mmu_build(void)
{
	uint64_t hv = HV_BASE, text_end = (uint64_t)(uintptr_t)__text_end;
	uint64_t rodata_end = (uint64_t)(uintptr_t)__rodata_end;
	uint64_t rw_end = ((uint64_t)(uintptr_t)__hv_end + PAGE - 1) & ~(PAGE - 1);
	int r = pgw_hyp_set_tlb_ops(&hyp_tlb);

	if (!r)
		r = kvm_pgtable_hyp_init(&hyp, VA_BITS, &hyp_mm_ops);
	if (r)
		hv_panic("el2_mmu: kvm_pgtable_hyp_init: %s", errno_str(r));
	map(hv, text_end - hv, CODE);
	map(text_end, rodata_end - text_end, RO);
	map(rodata_end, rw_end - rodata_end, RW);
	map(GUEST_RAM_BASE, GUEST_RAM_SIZE, RW);
	map(UART_BASE, PAGE, DEV);
	expect(hv, CODE);
	expect(text_end, RO);
	expect(rodata_end, RW);
	expect((uint64_t)(uintptr_t)__pool_start, RW);
	expect(GUEST_RAM_END - PAGE, RW);
	expect(UART_BASE, DEV);

	ttbr0 = v2p(hyp.pgd);
	/* TCR_EL2: RES1 bits 31 and 23, T0SZ, inner and outer write-back
	 * walks, inner shareable, TG0 4 KiB, PS 40 bits. */
	tcr = 1ull << 31 | 1ull << 23 | (64 - VA_BITS) | 1ull << 8 | 1ull << 10 | 3ull << 12 | 2ull << 16;
}

int el2_mmu_table_pages(void)
{
	int n = 0;

	for (int i = 0; i < TABLE_PAGES; i++)
		n += refs[i] != 0;
	return n;
}

void el2_mmu_enable(void)
{
	write_sysreg(mair_el2, HYP_MAIR);
	write_sysreg(tcr_el2, tcr);
	write_sysreg(ttbr0_el2, ttbr0);
	isb();
	tlbi_el2_local();
	/* SCTLR_EL2: M, C, SA, I on; A and WXN off; RES1 bits 4, 5, 11, 16,
	 * 18, 22, 23, 28, 29. The map is the identity on everything the
	 * hypervisor uses, so no address changes under it. */
	uint64_t res1 = 1ull << 4 | 1ull << 5 | 1ull << 11 | 1ull << 16 | 1ull << 18 |
			1ull << 22 | 1ull << 23 | 1ull << 28 | 1ull << 29;
	uint64_t sctlr = (read_sysreg(sctlr_el2) & ~(1ull << 1 | 1ull << 19 | 1ull << 25)) |
			 res1 | 1 | 1ull << 2 | 1ull << 3 | 1ull << 12;
	write_sysreg(sctlr_el2, sctlr);
	isb();
}

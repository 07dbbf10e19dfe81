/*
 * Every kvm_pgtable_* operation through the kernel-compatible API, each
 * checked against what Linux 6.12's pgtable.c does with the same calls:
 * return codes, the leaves left behind (raw bits), table pages in use, cache
 * maintenance and the TLB invalidations asked of the hypervisor, in order.
 * The pool is checked for leaks at the end.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "host.h"

#define GUEST_PA 0x100000000ull
#define R KVM_PGTABLE_PROT_R
#define W KVM_PGTABLE_PROT_W
#define X KVM_PGTABLE_PROT_X
#define RW (R | W)
#define RWX (RW | X)
#define SZ_2M (2ull << 20)
#define SZ_1G (1ull << 30)
#define SHARED KVM_PGTABLE_WALK_SHARED
#define HANDLE_FAULT KVM_PGTABLE_WALK_HANDLE_FAULT
#define FAULT (SHARED | HANDLE_FAULT)

#define S2_AP_W (1ull << 7)
#define S2_AF (1ull << 10)
#define S2_XN_FIELD (3ull << 53)
#define SW0 KVM_PGTABLE_PROT_SW0

/* Linux 6.12's leaves for Normal write-back memory, inner shareable,
 * young: the attribute bits below the output address. */
#define BLOCK_RWX 0x7fdull
#define PAGE_RWX 0x7ffull
#define XN (1ull << 54)

/* Where each part of the test works, in the 40-bit IPA space. */
#define MAIN_IPA SZ_1G          /* 1 GiB block, 2 MiB block at 2 GiB, page */
#define CMO_IPA (4 * SZ_1G)     /* SKIP_CMO and device pages */
#define NOMC_IPA (5 * SZ_1G)    /* maps without a memory cache */
#define BLOCKS_IPA (3 * SZ_1G)  /* maps and annotations inside blocks */
#define ROUND_IPA (8 * SZ_1G)   /* unaligned input */
#define OWNER_IPA (9 * SZ_1G)   /* annotations */
#define PROT_IPA (10 * SZ_1G)   /* every prot */
#define HOLE_IPA (11 * SZ_1G)   /* never mapped */

static kvm_pte_t leaf(struct vm *vm, uint64_t ipa, int8_t *level)
{
	kvm_pte_t pte = ~0ull;

	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, ipa, &pte, level), 0);
	return pte;
}

static int8_t level_of(struct vm *vm, uint64_t ipa)
{
	int8_t level = -2;

	leaf(vm, ipa, &level);
	return level;
}

static uint64_t oa(kvm_pte_t pte)
{
	return pte & KVM_PTE_ADDR_MASK;
}

static unsigned long in_use(void)
{
	return pool_stats().in_use;
}

/* The n-th TLB callback call since the last tlbi_clear is this one. */
static void check_tlbi(struct vm *vm, unsigned n, enum tlbi_kind kind, uint64_t addr,
		       long long level_or_size, int line)
{
	const struct tlbi *t = &vm->tlbi[n];
	int ok = n < vm->tlbi_n && t->kind == kind && t->addr == addr &&
		 (kind == TLBI_RANGE ? (long long)t->size : t->level) == level_or_size;

	check_record(ok, __FILE__, line, "TLB invalidation", n < vm->tlbi_n ? (long long)t->addr : -1,
		     (long long)addr);
	if (!ok)
		fprintf(stderr, "  call %u of %u: kind %d addr 0x%llx level %d size 0x%llx\n", n,
			vm->tlbi_n, t->kind, (unsigned long long)t->addr, t->level,
			(unsigned long long)t->size);
}

#define CHECK_TLBI(vm, n, kind, addr, l) check_tlbi((vm), (n), (kind), (addr), (l), __LINE__)
#define CHECK_TLBIS(vm, count) CHECK_EQ((vm)->tlbi_n, (count))

static void init_and_geometry(struct vm *vm)
{
	CHECK_EQ(kvm_pgtable_stage2_pgd_size(VTCR_IPA40), 2 * PAGE_SIZE);
	CHECK_EQ(vm_init(vm, VTCR_IPA40), 0);
	CHECK_EQ(vm->pgt.ia_bits, 40);
	CHECK_EQ(vm->pgt.start_level, 1);
	CHECK(vm->pgt.pgd != NULL);
	CHECK(vm->pgt.mm_ops == &host_mm_ops);
	CHECK(vm->pgt.mmu == &vm->mmu);
	CHECK_EQ(vm->pgt.flags, 0);
	CHECK(vm->pgt.force_pte_cb == NULL);
	CHECK(vm->mmu.pgt == &vm->pgt);
	CHECK_EQ(vm->mmu.pgd_phys & (2 * PAGE_SIZE - 1), 0);
	CHECK(vm->mmu.pgd_phys >= POOL_PHYS_BASE);
	CHECK_EQ(in_use(), 2);
}

static void map_and_lookup(struct vm *vm)
{
	int8_t level = -1;
	kvm_pte_t pte;
	unsigned long dcache = pool_stats().dcache, icache = pool_stats().icache;

	/* 1 GiB + 2 MiB + 4 KiB: a 1 GiB block, a 2 MiB block and a page, with
	 * a level-2 and a level-3 table. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, MAIN_IPA, SZ_1G + SZ_2M + PAGE_SIZE, GUEST_PA,
					RWX, vm_mc(vm), 0), 0);
	CHECK_EQ(in_use(), 4);
	pte = leaf(vm, MAIN_IPA + 12345, &level);
	CHECK_EQ(level, 1);
	CHECK_EQ(pte, GUEST_PA | BLOCK_RWX);
	pte = leaf(vm, 2 * SZ_1G, &level);
	CHECK_EQ(level, 2);
	CHECK_EQ(pte, (GUEST_PA + SZ_1G) | BLOCK_RWX);
	pte = leaf(vm, 2 * SZ_1G + SZ_2M, &level);
	CHECK_EQ(level, 3);
	CHECK_EQ(pte, (GUEST_PA + SZ_1G + SZ_2M) | PAGE_RWX);
	/* Cacheable and executable: cleaned and invalidated before use. */
	CHECK_EQ(pool_stats().dcache - dcache, 3);
	CHECK_EQ(pool_stats().icache - icache, 3);
	/* Nothing was there before: nothing to invalidate. */
	CHECK_TLBIS(vm, 0);

	/* Unmapped: the invalid entry where translation stops. */
	pte = leaf(vm, HOLE_IPA, &level);
	CHECK_EQ(pte, 0);
	CHECK_EQ(level, 1);
	/* Both out-pointers are optional. */
	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, MAIN_IPA, NULL, NULL), 0);

	/* SKIP_CMO: no cache maintenance. Device memory is never cleaned. */
	dcache = pool_stats().dcache;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, CMO_IPA, PAGE_SIZE, GUEST_PA, RW, vm_mc(vm),
					KVM_PGTABLE_WALK_SKIP_CMO), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, CMO_IPA + PAGE_SIZE, PAGE_SIZE, 0x9000000,
					RW | KVM_PGTABLE_PROT_DEVICE, vm_mc(vm), 0), 0);
	CHECK_EQ(pool_stats().dcache, dcache);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, CMO_IPA, SZ_1G), 0);
	CHECK_EQ(in_use(), 4);
	tlbi_clear(vm);
}

/* No memory cache: Linux 6.12 maps what needs no new table page, and
 * answers -ENOMEM where it needs one, without asking zalloc_page. */
static void without_a_cache(struct vm *vm)
{
	struct kvm_mmu_memory_cache one = { .nobjs = 1 };
	int8_t level;

	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, NOMC_IPA + SZ_1G, PAGE_SIZE, GUEST_PA, RW, NULL, 0),
		 -PGW_ENOMEM);
	CHECK_EQ(in_use(), 4);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, NOMC_IPA, SZ_1G, GUEST_PA, RW, NULL, 0), 0);
	CHECK_EQ(leaf(vm, NOMC_IPA, &level), GUEST_PA | BLOCK_RWX | XN);
	CHECK_EQ(level, 1);
	CHECK_EQ(in_use(), 4);

	/* One page in the cache, two tables needed: the first stays linked,
	 * empty (counted, not leaked), and the map fails. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, NOMC_IPA + SZ_1G, PAGE_SIZE, GUEST_PA, RW, &one, 0),
		 -PGW_ENOMEM);
	CHECK_EQ(one.nobjs, 0);
	CHECK_EQ(in_use(), 5);
	CHECK_EQ(leaf(vm, NOMC_IPA + SZ_1G, &level), 0);
	CHECK_EQ(level, 2);
	/* An unmap of the range frees it, invalidating by IPA without a level. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, NOMC_IPA + SZ_1G, PAGE_SIZE), 0);
	CHECK_EQ(in_use(), 4);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA, NOMC_IPA + SZ_1G, TLBI_TTL_UNKNOWN);
	/* The 1 GiB block goes, by IPA and level. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, NOMC_IPA, SZ_1G), 0);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA, NOMC_IPA, 1);
	tlbi_clear(vm);
}

/* A map over a valid leaf that differs only in permissions leaves it as it
 * is: the vCPU faults again and goes through relax_perms. */
static void remaps(struct vm *vm)
{
	const uint64_t page = 2 * SZ_1G + SZ_2M, pa = GUEST_PA + SZ_1G + SZ_2M;
	const kvm_pte_t before = leaf(vm, page, NULL);

	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, pa, R, vm_mc(vm), 0), 0);
	CHECK_EQ(leaf(vm, page, NULL), before); /* still writable and executable */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, pa, R, vm_mc(vm), FAULT),
		 -PGW_EAGAIN);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, pa, R, vm_mc(vm), HANDLE_FAULT),
		 -PGW_EAGAIN);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, pa, R, vm_mc(vm), SHARED), 0);
	/* The same mapping again: the fault path finds nothing to do. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, pa, RWX, vm_mc(vm), FAULT),
		 -PGW_EAGAIN);
	CHECK_EQ(leaf(vm, page, NULL), before);
	/* Only a software bit differs: stored in place, no break. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, pa, RWX | SW0, vm_mc(vm), 0), 0);
	CHECK_EQ(leaf(vm, page, NULL), before | SW0);
	/* Prot bits 6.12 does not define are dropped (PGW_PROT_PX and _UX, the
	 * typed API's own, among them). */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, pa,
					RWX | SW0 | PGW_PROT_PX | PGW_PROT_UX | (1ull << 40) |
						(1ull << 63),
					vm_mc(vm), 0), 0);
	CHECK_EQ(leaf(vm, page, NULL), before | SW0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, pa, RWX, vm_mc(vm), 0), 0);
	CHECK_EQ(leaf(vm, page, NULL), before);
	CHECK_TLBIS(vm, 0);
	CHECK_EQ(in_use(), 4);
}

static void attributes(struct vm *vm)
{
	const uint64_t page = 2 * SZ_1G + SZ_2M;
	const uint64_t size = SZ_1G + SZ_2M + PAGE_SIZE;
	kvm_pte_t pte;

	/* wrprotect leaves the TLB to its caller, who invalidates the range. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_wrprotect(&vm->pgt, MAIN_IPA, size), 0);
	CHECK_EQ(leaf(vm, page, NULL) & S2_AP_W, 0);
	CHECK_EQ(leaf(vm, MAIN_IPA, NULL) & S2_AP_W, 0);
	CHECK_EQ(leaf(vm, 2 * SZ_1G, NULL) & S2_AP_W, 0);
	CHECK_TLBIS(vm, 0);
	kvm_tlb_flush_vmid_range(&vm->mmu, MAIN_IPA, size);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_RANGE, MAIN_IPA, size);

	/* relax_perms invalidates the address it was given on this CPU only,
	 * with the leaf's level; also when the leaf allowed as much already. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, page, W), 0);
	CHECK(leaf(vm, page, NULL) & S2_AP_W);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, page + 0x123, W), 0);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, MAIN_IPA + 5, W), 0);
	CHECK(leaf(vm, MAIN_IPA, NULL) & S2_AP_W);
	CHECK_TLBIS(vm, 3);
	CHECK_TLBI(vm, 0, TLBI_IPA_NSH, page, 3);
	CHECK_TLBI(vm, 1, TLBI_IPA_NSH, page + 0x123, 3);
	CHECK_TLBI(vm, 2, TLBI_IPA_NSH, MAIN_IPA + 5, 1);
	/* No valid leaf: -EAGAIN (resume the guest), and the address is
	 * invalidated at whatever level maps it. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, HOLE_IPA + 0x40, W), -PGW_EAGAIN);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA_NSH, HOLE_IPA + 0x40, TLBI_TTL_UNKNOWN);
	/* Software bits are refused; other bits but R, W and X are ignored. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, 2 * SZ_1G, SW0), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, 1ull << 40, W), -PGW_ERANGE);
	CHECK_TLBIS(vm, 0);
	pte = leaf(vm, 2 * SZ_1G, NULL);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, 2 * SZ_1G,
						KVM_PGTABLE_PROT_DEVICE | (1ull << 40)), 0);
	CHECK_EQ(leaf(vm, 2 * SZ_1G, NULL), pte);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA_NSH, 2 * SZ_1G, 2);
	/* Without tlb_flush_vmid_ipa_nsh, the broadcast callback does it. */
	vm->mmu.tlb_flush_vmid_ipa_nsh = NULL;
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, 2 * SZ_1G + 8, W), 0);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, HOLE_IPA, W), -PGW_EAGAIN);
	CHECK(leaf(vm, 2 * SZ_1G, NULL) & S2_AP_W);
	CHECK_TLBIS(vm, 2);
	CHECK_TLBI(vm, 0, TLBI_IPA, 2 * SZ_1G + 8, 2);
	CHECK_TLBI(vm, 1, TLBI_IPA, HOLE_IPA, TLBI_TTL_UNKNOWN);
	vm_set_tlb_callbacks(vm);

	/* Aging: young after map, old after test_clear_young; mkyoung returns
	 * the leaf as it was and makes it young again. */
	tlbi_clear(vm);
	pte = leaf(vm, page, NULL);
	CHECK(pte & S2_AF);
	CHECK_EQ(kvm_pgtable_stage2_mkyoung(&vm->pgt, page), pte);
	CHECK(kvm_pgtable_stage2_test_clear_young(&vm->pgt, page, PAGE_SIZE, false));
	CHECK_EQ(leaf(vm, page, NULL), pte);
	CHECK(kvm_pgtable_stage2_test_clear_young(&vm->pgt, page, PAGE_SIZE, true));
	CHECK_EQ(leaf(vm, page, NULL), pte & ~S2_AF);
	CHECK(!kvm_pgtable_stage2_test_clear_young(&vm->pgt, page, PAGE_SIZE, true));
	CHECK_EQ(kvm_pgtable_stage2_mkyoung(&vm->pgt, page + 77), pte & ~S2_AF);
	CHECK_EQ(leaf(vm, page, NULL), pte);
	/* No leaf, or beyond the IPA size: 0. */
	CHECK_EQ(kvm_pgtable_stage2_mkyoung(&vm->pgt, HOLE_IPA), 0);
	CHECK_EQ(kvm_pgtable_stage2_mkyoung(&vm->pgt, 1ull << 40), 0);
	CHECK(!kvm_pgtable_stage2_test_clear_young(&vm->pgt, 1ull << 40, PAGE_SIZE, true));
	/* A young entry left in the TLB only delays the next aging. */
	CHECK_TLBIS(vm, 0);

	/* Flush cleans every cacheable leaf in the range. */
	{
		unsigned long dcache = pool_stats().dcache;

		CHECK_EQ(kvm_pgtable_stage2_flush(&vm->pgt, MAIN_IPA, size), 0);
		CHECK_EQ(pool_stats().dcache - dcache, 3);
	}
	CHECK_EQ(in_use(), 4);
}

/* kvm_pgtable_stage2_pte_prot: R and W from S2AP, X unless XN[1] (bit 54),
 * software bits as they are; an invalid entry grants only its software
 * bits. */
static void pte_prot(struct vm *vm)
{
	uint64_t p;
	unsigned i;

	for (p = 0; p <= RWX; p++) {
		uint64_t ipa = PROT_IPA + p * PAGE_SIZE;

		CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, ipa, PAGE_SIZE, GUEST_PA, p, vm_mc(vm), 0), 0);
		CHECK_EQ(kvm_pgtable_stage2_pte_prot(leaf(vm, ipa, NULL)), p);
	}
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, PROT_IPA + 8 * PAGE_SIZE, PAGE_SIZE, GUEST_PA,
					R | KVM_PGTABLE_PROT_SW1 | KVM_PGTABLE_PROT_SW3, vm_mc(vm),
					0), 0);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(leaf(vm, PROT_IPA + 8 * PAGE_SIZE, NULL)),
		 R | KVM_PGTABLE_PROT_SW1 | KVM_PGTABLE_PROT_SW3);
	/* Device memory is no protection bit. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, PROT_IPA + 9 * PAGE_SIZE, PAGE_SIZE, 0x9000000,
					RW | KVM_PGTABLE_PROT_DEVICE, vm_mc(vm), 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(leaf(vm, PROT_IPA + 9 * PAGE_SIZE, NULL)), RW);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(leaf(vm, MAIN_IPA, NULL)), RWX);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, PROT_IPA, SZ_2M), 0);

	/* Entries of no table. */
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(0), 0);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(KVM_PGTABLE_PROT_SW1 | (1ull << 2)),
		 KVM_PGTABLE_PROT_SW1);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(KVM_INVALID_PTE_LOCKED), 0);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(KVM_PTE_VALID), X);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(KVM_PTE_VALID | XN | KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R), R);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(KVM_PTE_VALID | S2_XN_FIELD), 0);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(KVM_PTE_VALID | (1ull << 53)), X);
	for (i = 0; i < 4; i++) {
		uint64_t sw = KVM_PGTABLE_PROT_SW0 << i;

		CHECK_EQ(kvm_pgtable_stage2_pte_prot(KVM_PTE_VALID | XN | sw | (1ull << 59)), sw);
	}
	CHECK_EQ(in_use(), 4);
}

/*
 * kvm_get_vtcr for the 4 KiB granule, values worked out from 6.12's code:
 * RES1 (bit 31), SH0 inner shareable, IRGN0/ORGN0 write-back, PS from
 * ID_AA64MMFR0_EL1.PARange capped at 48 bits (no LPA2), T0SZ = 64 - IPA
 * bits, SL0 for the fewest levels (at least two) a root of up to 16
 * concatenated tables allows, VS from ID_AA64MMFR1_EL1.VMIDBits. Bit 21
 * (HA) is left out of the comparison: 6.12 sets it when built with
 * CONFIG_ARM64_HW_AFDBM and the CPU lacks the AC03_CPU_38 erratum, which
 * no argument says.
 */
static void vtcr_values(void)
{
	static const struct {
		uint64_t mmfr0, mmfr1;
		uint32_t ipa_bits;
		uint64_t vtcr;
	} cases[] = {
		{ 5, 2 << 4, 40, 0x800d3558 },     /* 48-bit PA, 16-bit VMIDs */
		{ 5, 0, 40, 0x80053558 },          /* 8-bit VMIDs */
		{ 2, 0, 40, 0x80023558 },          /* 40-bit PA: VTCR_IPA40 */
		{ 5, 2 << 4, 48, 0x800d3590 },     /* four levels from level 0 */
		{ 6, 2 << 4, 48, 0x800d3590 },     /* 52-bit PA capped at 48 */
		{ 0xf, 0, 44, 0x80053594 },        /* a reserved PARange, capped */
		{ 1, 1 << 4, 36, 0x8001355c },     /* VMIDBits 1: 8 bits */
		{ 5, 0, 39, 0x80053559 },
		{ 5, 0, 32, 0x80053520 },          /* two levels */
		{ 0, 0, 32, 0x80003520 },
		{ 5, 2 << 4, 52, 0x800d358c },
		{ 5, 3 << 4, 40, 0x80053558 },     /* a reserved VMIDBits: 8 bits */
		{ 0x125, 0x1020, 40, 0x800d3558 }, /* other fields ignored */
	};
	const uint64_t ha = 1ull << 21;
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = kvm_get_vtcr(cases[i].mmfr0, cases[i].mmfr1, cases[i].ipa_bits);

		check_record((v & ~ha) == cases[i].vtcr, __FILE__, __LINE__, "kvm_get_vtcr",
			     (long long)v, (long long)cases[i].vtcr);
	}
	/* A VTCR_EL2 from kvm_get_vtcr makes a table of that geometry. */
	{
		struct vm vm;

		CHECK_EQ(kvm_pgtable_stage2_pgd_size(kvm_get_vtcr(5, 2 << 4, 40)), 2 * PAGE_SIZE);
		CHECK_EQ(vm_init(&vm, kvm_get_vtcr(5, 2 << 4, 48)), 0);
		CHECK_EQ(vm.pgt.ia_bits, 48);
		CHECK_EQ(vm.pgt.start_level, 0);
		kvm_pgtable_stage2_destroy(&vm.pgt);
	}
}

/* kvm_tlb_flush_vmid_range: the range, as it is, to the MMU's callback. */
static void flush_vmid_range(struct vm *vm)
{
	tlbi_clear(vm);
	kvm_tlb_flush_vmid_range(&vm->mmu, MAIN_IPA + 0x10, 0x1234);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_RANGE, MAIN_IPA + 0x10, 0x1234);
	kvm_tlb_flush_vmid_range(NULL, MAIN_IPA, PAGE_SIZE);
	vm->mmu.tlb_flush_vmid_range = NULL;
	kvm_tlb_flush_vmid_range(&vm->mmu, MAIN_IPA, PAGE_SIZE);
	CHECK_TLBIS(vm, 1);
	vm_set_tlb_callbacks(vm);
	tlbi_clear(vm);
}

static void unmap_split(struct vm *vm)
{
	struct kvm_mmu_memory_cache mc = { .nobjs = 1 };
	unsigned long dcache = pool_stats().dcache;
	int8_t level;

	/* An unmap that cuts a block removes the block whole (the rest is
	 * faulted back in), invalidated by the walk's address and the block's
	 * level, cleaned to the point of coherency. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, 2 * SZ_1G + PAGE_SIZE, PAGE_SIZE), 0);
	CHECK_EQ(leaf(vm, 2 * SZ_1G, &level), 0);
	CHECK_EQ(level, 2);
	CHECK_EQ(leaf(vm, 2 * SZ_1G + 2 * PAGE_SIZE, NULL), 0);
	CHECK(leaf(vm, 2 * SZ_1G + SZ_2M, NULL) & KVM_PTE_VALID);
	CHECK_EQ(pool_stats().dcache - dcache, 1);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA, 2 * SZ_1G + PAGE_SIZE, 2);
	/* The same for the 1 GiB block, from an unaligned address. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, MAIN_IPA + 3 * SZ_2M / 2 + 8, PAGE_SIZE + 1), 0);
	CHECK_EQ(leaf(vm, MAIN_IPA, &level), 0);
	CHECK_EQ(level, 1);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA, MAIN_IPA + 3 * SZ_2M / 2, 1);
	CHECK_EQ(in_use(), 4);

	/* Split a 2 MiB block into pages, then unmap one page of it. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, 2 * SZ_1G, SZ_2M, GUEST_PA + SZ_1G, RW, vm_mc(vm),
					0), 0);
	CHECK_EQ(level_of(vm, 2 * SZ_1G), 2);
	CHECK_EQ(kvm_pgtable_stage2_split(&vm->pgt, 2 * SZ_1G, SZ_2M, &mc), 0);
	CHECK_EQ(mc.nobjs, 0);
	CHECK_EQ(in_use(), 5);
	CHECK_EQ(oa(leaf(vm, 2 * SZ_1G + 5 * PAGE_SIZE, &level)), GUEST_PA + SZ_1G + 5 * PAGE_SIZE);
	CHECK_EQ(level, 3);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, 2 * SZ_1G, PAGE_SIZE), 0);
	CHECK_EQ(leaf(vm, 2 * SZ_1G, &level), 0);
	CHECK_EQ(level, 3);
	CHECK(leaf(vm, 2 * SZ_1G + PAGE_SIZE, NULL) & KVM_PTE_VALID);

	/* Unmapping everything left frees every table page below the root;
	 * a freed table is invalidated by IPA without a level. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, MAIN_IPA, 4 * SZ_1G), 0);
	CHECK_EQ(in_use(), 2);
	CHECK_TLBIS(vm, 511 + 1 + 1 + 1 + 1);
	CHECK_TLBI(vm, 0, TLBI_IPA, 2 * SZ_1G + PAGE_SIZE, 3);
	CHECK_EQ(vm->tlbi[TLBI_LOG - 1].level, 3);
	/* One page from a fresh pair of tables: the page, then each table. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, MAIN_IPA, PAGE_SIZE, GUEST_PA, RW, vm_mc(vm), 0), 0);
	CHECK_EQ(in_use(), 4);
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, MAIN_IPA, PAGE_SIZE), 0);
	CHECK_EQ(in_use(), 2);
	CHECK_TLBIS(vm, 3);
	CHECK_TLBI(vm, 0, TLBI_IPA, MAIN_IPA, 3);
	CHECK_TLBI(vm, 1, TLBI_IPA, MAIN_IPA, TLBI_TTL_UNKNOWN);
	CHECK_TLBI(vm, 2, TLBI_IPA, MAIN_IPA, TLBI_TTL_UNKNOWN);
	tlbi_clear(vm);
}

/* A map into part of a block replaces the block with a table holding only
 * what the map installs: the rest is unmapped, to be faulted back in. */
static void inside_blocks(struct vm *vm)
{
	const uint64_t blk = BLOCKS_IPA, blk2 = BLOCKS_IPA + SZ_2M;
	unsigned long pages = in_use();
	int8_t level;

	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, blk, SZ_2M, GUEST_PA, RW, vm_mc(vm), 0), 0);
	CHECK_EQ(in_use(), pages + 1);
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, blk + 2 * PAGE_SIZE, PAGE_SIZE, 0x200000000ull, RW,
					vm_mc(vm), 0), 0);
	CHECK_EQ(in_use(), pages + 2);
	CHECK_EQ(leaf(vm, blk + 2 * PAGE_SIZE, &level), 0x200000000ull | PAGE_RWX | XN);
	CHECK_EQ(level, 3);
	CHECK_EQ(leaf(vm, blk, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(leaf(vm, blk + 3 * PAGE_SIZE, NULL), 0);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA, blk + 2 * PAGE_SIZE, 2);

	/* Without a memory cache for the new table: -ENOMEM, the block kept
	 * (even for a map of what it already maps). */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, blk2, SZ_2M, GUEST_PA + SZ_2M, RW, vm_mc(vm), 0), 0);
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, blk2 + 1, PAGE_SIZE, GUEST_PA + SZ_2M + 4, RW, NULL,
					0), -PGW_ENOMEM);
	CHECK_EQ(leaf(vm, blk2, &level), (GUEST_PA + SZ_2M) | BLOCK_RWX | XN);
	CHECK_EQ(level, 2);
	CHECK_TLBIS(vm, 0);

	/* set_owner inside a block: the same, page by page. */
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, blk2 + PAGE_SIZE, PAGE_SIZE, vm_mc(vm), 1),
		 0);
	CHECK_EQ(leaf(vm, blk2 + PAGE_SIZE, &level), 1ull << 2);
	CHECK_EQ(level, 3);
	CHECK_EQ(leaf(vm, blk2, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA, blk2 + PAGE_SIZE, 2);
	CHECK_EQ(in_use(), pages + 3);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, blk, 2 * SZ_2M), 0);
	CHECK_EQ(in_use(), pages);
	tlbi_clear(vm);
}

/* Linux 6.12 reads addresses and sizes as kvm_pgtable_walk does: from addr
 * aligned down, to that plus size aligned up; phys is aligned down. */
static void kernel_rounding(struct vm *vm)
{
	const uint64_t r = ROUND_IPA;
	unsigned long pages = in_use();
	int8_t level;

	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, r + 0x123, PAGE_SIZE, GUEST_PA + 0x456, RW,
					vm_mc(vm), 0), 0);
	CHECK_EQ(leaf(vm, r, &level), GUEST_PA | PAGE_RWX | XN);
	CHECK_EQ(level, 3);
	CHECK_EQ(leaf(vm, r + PAGE_SIZE, NULL), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, r + 0x10123, PAGE_SIZE + 1, GUEST_PA + 0x10000, RW,
					vm_mc(vm), 0), 0);
	CHECK_EQ(leaf(vm, r + 0x10000, NULL), (GUEST_PA + 0x10000) | PAGE_RWX | XN);
	CHECK_EQ(leaf(vm, r + 0x11000, NULL), (GUEST_PA + 0x11000) | PAGE_RWX | XN);
	CHECK_EQ(leaf(vm, r + 0x12000, NULL), 0);
	/* Empty ranges do nothing, successfully. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, r + 0x20000, 0, GUEST_PA, RW, vm_mc(vm), 0), 0);
	CHECK_EQ(leaf(vm, r + 0x20000, NULL), 0);
	CHECK_EQ(kvm_pgtable_stage2_wrprotect(&vm->pgt, r, 0), 0);
	CHECK(leaf(vm, r, NULL) & S2_AP_W);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, r, 0, vm_mc(vm), 1), 0);
	CHECK_EQ(kvm_pgtable_stage2_flush(&vm->pgt, r, 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_split(&vm->pgt, r, 0, vm_mc(vm)), 0);
	/* A size that wraps around the address space ends where it starts:
	 * nothing is unmapped. */
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, r, UINT64_MAX), 0);
	CHECK(leaf(vm, r, NULL) & KVM_PTE_VALID);
	/* Two bytes across a page boundary: only the first page. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, r + 0x10fff, 2), 0);
	CHECK_EQ(leaf(vm, r + 0x10000, NULL), 0);
	CHECK(leaf(vm, r + 0x11000, NULL) & KVM_PTE_VALID);
	CHECK_TLBIS(vm, 1);
	CHECK_TLBI(vm, 0, TLBI_IPA, r + 0x10000, 3);
	CHECK_EQ(in_use(), pages + 2);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, r, SZ_1G), 0);
	CHECK_EQ(in_use(), pages);
	tlbi_clear(vm);
}

static void owner_annotations(struct vm *vm)
{
	const uint64_t o = OWNER_IPA;
	unsigned long pages = in_use();
	int8_t level;

	/* Owner ids above KVM_MAX_OWNER_ID (1) are refused. */
	CHECK_EQ(KVM_MAX_OWNER_ID, 1);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, o, PAGE_SIZE, vm_mc(vm), 2), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, o, PAGE_SIZE, vm_mc(vm), 255), -PGW_EINVAL);
	CHECK_EQ(in_use(), pages);

	/* Owner 1, page by page: invalid entries carrying the id in bits 9:2,
	 * in tables built for them. */
	tlbi_clear(vm);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, o + PAGE_SIZE, 4 * PAGE_SIZE, vm_mc(vm), 1),
		 0);
	CHECK_EQ(in_use(), pages + 2);
	CHECK_EQ(leaf(vm, o + PAGE_SIZE, &level), 1ull << 2);
	CHECK_EQ(level, 3);
	CHECK_EQ(leaf(vm, o + 4 * PAGE_SIZE, NULL), 1ull << 2);
	CHECK_EQ(leaf(vm, o, NULL), 0);
	CHECK_EQ(leaf(vm, o + 5 * PAGE_SIZE, NULL), 0);
	/* Owner 0 writes zero entries; the tables stay linked. */
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, o + PAGE_SIZE, 4 * PAGE_SIZE, vm_mc(vm), 0),
		 0);
	CHECK_EQ(leaf(vm, o + PAGE_SIZE, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(in_use(), pages + 2);
	/* The tables are there: no memory cache needed to annotate again. */
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, o + PAGE_SIZE, PAGE_SIZE, NULL, 1), 0);
	CHECK_EQ(leaf(vm, o + PAGE_SIZE, NULL), 1ull << 2);
	CHECK_TLBIS(vm, 0);
	/* An unmap of the range removes annotations and frees the tables. */
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, o, SZ_1G), 0);
	CHECK_EQ(in_use(), pages);
	CHECK_TLBIS(vm, 2);
	CHECK_TLBI(vm, 0, TLBI_IPA, o, TLBI_TTL_UNKNOWN);
	CHECK_TLBI(vm, 1, TLBI_IPA, o, TLBI_TTL_UNKNOWN);
	/* Owner 0 over nothing still builds the tables, of zero entries. */
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, o, PAGE_SIZE, vm_mc(vm), 0), 0);
	CHECK_EQ(in_use(), pages + 2);
	CHECK_EQ(leaf(vm, o, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, o, SZ_1G), 0);
	CHECK_EQ(in_use(), pages);
	tlbi_clear(vm);
}

static void fault_path(struct vm *vm)
{
	struct kvm_mmu_memory_cache mc = { .nobjs = 4 };
	unsigned long deferred;

	/* First fault installs; the same fault again finds it there. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, PAGE_SIZE, GUEST_PA, RW, &mc, FAULT), 0);
	CHECK_EQ(oa(leaf(vm, SZ_1G, NULL)), GUEST_PA);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, PAGE_SIZE, GUEST_PA, RW, &mc, FAULT),
		 -PGW_EAGAIN);
	/* A block fault over the page table: the table is unlinked and handed
	 * to free_unlinked_table for the grace period. */
	deferred = pool_stats().deferred;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, SZ_2M, GUEST_PA, RW, &mc, FAULT), 0);
	CHECK_EQ(pool_stats().deferred, deferred + 1);
	CHECK_EQ(level_of(vm, SZ_1G), 2);
	pool_quiesce();
	/* SHARED without HANDLE_FAULT: compare-and-swap updates, and a leaf
	 * needing no update is passed over (0). */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, SZ_2M, GUEST_PA, RW, &mc, SHARED), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G + SZ_2M, PAGE_SIZE, GUEST_PA, RW, &mc, SHARED),
		 0);
	CHECK_EQ(oa(leaf(vm, SZ_1G + SZ_2M, NULL)), GUEST_PA);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, SZ_1G, SZ_1G), 0);
	CHECK_EQ(in_use(), 2);
}

static void unlinked_tables(struct vm *vm)
{
	struct kvm_mmu_memory_cache mc = { .nobjs = 1000 }, one = { .nobjs = 1 };
	kvm_pte_t *table;
	unsigned long before = in_use();

	/* A level-1 entry's worth (1 GiB) as 2 MiB blocks: one page, which
	 * zalloc_page gives even without a memory cache. */
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 1, RW, NULL, false);
	CHECK((uintptr_t)table < (uintptr_t)-4095);
	CHECK_EQ(in_use(), before + 1);
	CHECK_EQ(table[3], (GUEST_PA + 3 * SZ_2M) | BLOCK_RWX | XN);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, table, 1);
	CHECK_EQ(in_use(), before);

	/* force_pte: pages all the way down (1 + 512 pages for 1 GiB), every
	 * table below the first from the memory cache. */
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 1, RW, &mc, true);
	CHECK((uintptr_t)table < (uintptr_t)-4095);
	CHECK_EQ(in_use(), before + 513);
	CHECK_EQ(mc.nobjs, 1000 - 513);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, table, 1);
	CHECK_EQ(in_use(), before);
	/* ...which has to exist: without one (or with too few pages), -ENOMEM
	 * and nothing leaked. */
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 1, RW, NULL, true);
	CHECK_EQ((intptr_t)table, -PGW_ENOMEM);
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 1, RW, &one, true);
	CHECK_EQ((intptr_t)table, -PGW_ENOMEM);
	CHECK_EQ(in_use(), before);

	/* Prot bits 6.12 does not define are dropped. */
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 2,
						   RW | PGW_PROT_PX | (1ull << 40), NULL, false);
	CHECK((uintptr_t)table < (uintptr_t)-4095);
	CHECK_EQ(table[1], (GUEST_PA + PAGE_SIZE) | PAGE_RWX | XN);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, table, 2);

	/* Errors come back as ERR_PTR(-errno). */
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA + PAGE_SIZE, 1, RW, NULL,
						   false);
	CHECK_EQ((intptr_t)table, -PGW_EINVAL);
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 2,
						   KVM_PGTABLE_PROT_DEVICE | X, NULL, false);
	CHECK_EQ((intptr_t)table, -PGW_EINVAL);
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 3, RW, NULL, false);
	CHECK_EQ((intptr_t)table, -PGW_EINVAL);
	CHECK_EQ(in_use(), before);
}

static struct {
	unsigned calls;
	uint64_t addr, end, prot;
	int answer;
} force;

static bool force_pte_cb(uint64_t addr, uint64_t end, uint64_t prot)
{
	force.calls++;
	force.addr = addr;
	force.end = end;
	force.prot = prot;
	return force.answer;
}

static void forced_pages(void)
{
	struct vm vm;
	const uint64_t odd = RW | (1ull << 40);

	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	/* Re-initialise with a force_pte callback (destroying the first). */
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK_EQ(__kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &host_mm_ops, KVM_PGTABLE_S2_NOFWB,
					   force_pte_cb), 0);
	CHECK_EQ(vm.pgt.flags, KVM_PGTABLE_S2_NOFWB);
	CHECK(vm.pgt.force_pte_cb == force_pte_cb);
	/* Asked once per map, with the call's own arguments. */
	force.answer = 1;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, SZ_1G + 0x10, SZ_2M, GUEST_PA, odd, vm_mc(&vm), 0),
		 0);
	CHECK_EQ(force.calls, 1);
	CHECK_EQ(force.addr, SZ_1G + 0x10);
	CHECK_EQ(force.end, SZ_1G + 0x10 + SZ_2M);
	CHECK_EQ(force.prot, odd);
	CHECK_EQ(level_of(&vm, SZ_1G), 3);
	CHECK_EQ(level_of(&vm, SZ_1G + SZ_2M - PAGE_SIZE), 3);
	CHECK_EQ(leaf(&vm, SZ_1G + SZ_2M, NULL), 0);
	force.answer = 0;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, 2 * SZ_1G, SZ_2M, GUEST_PA, RW, vm_mc(&vm), 0), 0);
	CHECK_EQ(force.calls, 2);
	CHECK_EQ(level_of(&vm, 2 * SZ_1G), 2);
	/* Annotations are page by page anyway: not asked. */
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm.pgt, 3 * SZ_1G, PAGE_SIZE, vm_mc(&vm), 1), 0);
	CHECK_EQ(force.calls, 2);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	/* Destroying twice does nothing the second time. */
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), -PGW_EINVAL);
}

/* KVM_PGTABLE_S2_IDMAP (pKVM's host table): a map's IPA must be its
 * physical address, compared as given, before anything else is looked at. */
static void identity_map(void)
{
	struct vm vm;
	const uint64_t a = 0x40000000;
	unsigned long pages;

	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK_EQ(__kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &host_mm_ops, KVM_PGTABLE_S2_IDMAP,
					   NULL), 0);
	CHECK_EQ(vm.pgt.flags, KVM_PGTABLE_S2_IDMAP);
	pages = in_use();
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, a, PAGE_SIZE, a + PAGE_SIZE, RW, vm_mc(&vm), 0),
		 -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, a + 0x10, PAGE_SIZE, a, RW, vm_mc(&vm), 0),
		 -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, a, 0, a + PAGE_SIZE, RW, vm_mc(&vm), 0),
		 -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, 1ull << 41, PAGE_SIZE, a, RW, vm_mc(&vm), 0),
		 -PGW_EINVAL);
	CHECK_EQ(in_use(), pages);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, a, PAGE_SIZE, a, RW, vm_mc(&vm), 0), 0);
	CHECK_EQ(leaf(&vm, a, NULL), a | PAGE_RWX | XN);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, a + 0x2010, PAGE_SIZE, a + 0x2010, RW, vm_mc(&vm), 0),
		 0);
	CHECK_EQ(leaf(&vm, a + 0x2000, NULL), (a + 0x2000) | PAGE_RWX | XN);
	/* Annotations have no physical address to compare. */
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm.pgt, a + 0x4000, PAGE_SIZE, vm_mc(&vm), 1), 0);
	CHECK_EQ(leaf(&vm, a + 0x4000, NULL), 1ull << 2);
	kvm_pgtable_stage2_destroy(&vm.pgt);

	/* Flag bits 6.12 does not define are kept, and change nothing. */
	CHECK_EQ(__kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &host_mm_ops, 1u << 5, NULL), 0);
	CHECK_EQ(vm.pgt.flags, 1u << 5);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, a, PAGE_SIZE, a + PAGE_SIZE, RW, vm_mc(&vm), 0), 0);
	kvm_pgtable_stage2_destroy(&vm.pgt);
}

int main(void)
{
	struct vm vm;

	pool_reset();
	init_and_geometry(&vm);
	map_and_lookup(&vm);
	without_a_cache(&vm);
	remaps(&vm);
	attributes(&vm);
	pte_prot(&vm);
	vtcr_values();
	flush_vmid_range(&vm);
	unmap_split(&vm);
	inside_blocks(&vm);
	kernel_rounding(&vm);
	owner_annotations(&vm);
	fault_path(&vm);
	unlinked_tables(&vm);

	/* Destroy with mappings in place: everything goes back to the pool,
	 * without TLB invalidation (the VMID retires with the table). */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, SZ_1G, 4 * SZ_2M + 3 * PAGE_SIZE, GUEST_PA, RW,
					vm_mc(&vm), 0), 0);
	tlbi_clear(&vm);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK(vm.pgt.pgd == NULL);
	CHECK_TLBIS(&vm, 0);
	pool_quiesce();
	CHECK_EQ(in_use(), 0);

	forced_pages();
	identity_map();
	pool_quiesce();
	CHECK_EQ(in_use(), 0);
	CHECK_EQ(pool_stats().double_frees, 0);
	CHECK_EQ(pool_stats().bad_frees, 0);
	return test_summary("test_compat");
}

/*
 * Every call sees what C changed since the last one. The library keeps the
 * view of a table a thread's last call built, for the next call on the same
 * table; these tests change each field of struct kvm_pgtable (and the MMU's
 * VTCR_EL2) between calls that would otherwise reuse it, alternate tables,
 * and call into another table from inside a call, and check that each call
 * acts on what the structures hold at the time.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "host.h"

#define IPA 0x40000000ull
#define PA_A 0x100000000ull
#define PA_B 0x200000000ull
#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)
#define SZ_2M (2ull << 20)
#define OA_MASK 0x0000fffffffff000ull

/* The output address and level of the leaf at `addr`, 0 if none. */
static uint64_t leaf_oa(struct kvm_pgtable *pgt, uint64_t addr, int8_t *level)
{
	kvm_pte_t pte = 0;

	CHECK_EQ(kvm_pgtable_get_leaf(pgt, addr, &pte, level), 0);
	return (pte & 1) ? (pte & OA_MASK) : 0;
}

/* Two tables, one thread, calls alternating: each call acts on its own. */
static void alternating_tables(struct vm *a, struct vm *b)
{
	int8_t level;

	for (int i = 0; i < 4; i++) {
		CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
		CHECK_EQ(leaf_oa(&b->pgt, IPA, &level), PA_B);
	}
	/* relax_perms invalidates through the MMU of the table it changed. */
	unsigned long nsh_a = a->tlbi_ipa_nsh + a->tlbi_ipa, nsh_b = b->tlbi_ipa_nsh + b->tlbi_ipa;
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&a->pgt, IPA, KVM_PGTABLE_PROT_X), 0);
	CHECK_EQ(a->tlbi_ipa_nsh + a->tlbi_ipa, nsh_a + 1);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&b->pgt, IPA, KVM_PGTABLE_PROT_X), 0);
	CHECK_EQ(b->tlbi_ipa_nsh + b->tlbi_ipa, nsh_b + 1);
	CHECK_EQ(a->tlbi_ipa_nsh + a->tlbi_ipa, nsh_a + 1);
}

/* A copy of a's structure pointed at b's root reads b's table; the next
 * call on a itself reads a's again. */
static void root_changed(struct vm *a, struct vm *b)
{
	struct kvm_pgtable copy = a->pgt;
	int8_t level;

	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	copy.pgd = b->pgt.pgd;
	CHECK_EQ(leaf_oa(&copy, IPA, &level), PA_B);
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	/* The same structure, its root swapped in place and back. */
	kvm_pte_t *pgd = a->pgt.pgd;
	a->pgt.pgd = b->pgt.pgd;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_B);
	a->pgt.pgd = pgd;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
}

/* The geometry fields and VTCR_EL2, changed after a call: refused until
 * they agree again. */
static void geometry_changed(struct vm *a)
{
	int8_t level;

	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	a->pgt.ia_bits = 39;
	CHECK_EQ(kvm_pgtable_get_leaf(&a->pgt, IPA, NULL, NULL), -PGW_EINVAL);
	a->pgt.ia_bits = 40;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	a->pgt.start_level = 2;
	CHECK_EQ(kvm_pgtable_get_leaf(&a->pgt, IPA, NULL, NULL), -PGW_EINVAL);
	a->pgt.start_level = 1;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	a->mmu.vtcr = 0x80023559ull; /* 39-bit IPA */
	CHECK_EQ(kvm_pgtable_get_leaf(&a->pgt, IPA, NULL, NULL), -PGW_EINVAL);
	a->mmu.vtcr = VTCR_IPA40;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
}

/* The callbacks: a new mm_ops or MMU is the one called from then on. */
static unsigned long counted;
static void *counting_phys_to_virt(uint64_t phys)
{
	counted++;
	return host_mm_ops.phys_to_virt(phys);
}

static void callbacks_changed(struct vm *a, struct vm *b)
{
	struct kvm_pgtable_mm_ops ops = host_mm_ops;
	int8_t level;

	ops.phys_to_virt = counting_phys_to_virt;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	counted = 0;
	a->pgt.mm_ops = &ops;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	CHECK(counted > 0);
	a->pgt.mm_ops = &host_mm_ops;
	counted = 0;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	CHECK_EQ(counted, 0);

	/* The same mm_ops, its phys_to_virt changed in place between calls
	 * (the one callback a call reads once, at its start): the next call
	 * uses the new one, and the one after the old one again. */
	ops.phys_to_virt = host_mm_ops.phys_to_virt;
	a->pgt.mm_ops = &ops;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	ops.phys_to_virt = counting_phys_to_virt;
	counted = 0;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	CHECK(counted > 0);
	ops.phys_to_virt = host_mm_ops.phys_to_virt;
	counted = 0;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	CHECK_EQ(counted, 0);
	a->pgt.mm_ops = &host_mm_ops;

	/* Pointed at b's MMU (same VTCR_EL2), a's invalidations go to b's
	 * callbacks; pointed back, to a's. */
	unsigned long ta = a->tlbi_ipa_nsh + a->tlbi_ipa, tb = b->tlbi_ipa_nsh + b->tlbi_ipa;
	a->pgt.mmu = &b->mmu;
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&a->pgt, IPA, KVM_PGTABLE_PROT_W), 0);
	CHECK_EQ(b->tlbi_ipa_nsh + b->tlbi_ipa, tb + 1);
	CHECK_EQ(a->tlbi_ipa_nsh + a->tlbi_ipa, ta);
	a->pgt.mmu = &a->mmu;
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&a->pgt, IPA, KVM_PGTABLE_PROT_R), 0);
	CHECK_EQ(a->tlbi_ipa_nsh + a->tlbi_ipa, ta + 1);
	CHECK_EQ(b->tlbi_ipa_nsh + b->tlbi_ipa, tb + 1);
}

/* A one-page call starts from pgd, as the kernel's walker does: it converts
 * each table below the root (here a level-2 and a level-3 one), never the
 * root itself. */
static uint64_t converted[8];
static void *recording_phys_to_virt(uint64_t phys)
{
	if (counted < 8)
		converted[counted] = phys;
	counted++;
	return host_mm_ops.phys_to_virt(phys);
}

static void root_not_converted(struct vm *a)
{
	struct kvm_pgtable_mm_ops ops = host_mm_ops;
	uint64_t root = a->mmu.pgd_phys, root_end = root + 2 * PAGE_SIZE;
	int8_t level;

	ops.phys_to_virt = recording_phys_to_virt;
	a->pgt.mm_ops = &ops;
	for (int call = 0; call < 3; call++) {
		counted = 0;
		if (call == 0)
			CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
		else if (call == 1)
			CHECK_EQ(kvm_pgtable_stage2_relax_perms(&a->pgt, IPA, KVM_PGTABLE_PROT_R), 0);
		else
			CHECK(kvm_pgtable_stage2_mkyoung(&a->pgt, IPA) & 1);
		CHECK_EQ(counted, 2);
		for (unsigned long i = 0; i < counted && i < 8; i++)
			CHECK(converted[i] < root || converted[i] >= root_end);
	}
	a->pgt.mm_ops = &host_mm_ops;
}

/* flags and force_pte_cb, set after a call, rule the next one. */
static bool force_all(uint64_t addr, uint64_t end, uint64_t prot)
{
	(void)addr;
	(void)end;
	(void)prot;
	return true;
}

static void flags_changed(struct vm *a)
{
	int8_t level;
	uint64_t ipa = IPA + 0x10000000ull;

	CHECK_EQ(kvm_pgtable_stage2_map(&a->pgt, ipa, SZ_2M, PA_A, RW, vm_mc(a), 0), 0);
	CHECK_EQ(leaf_oa(&a->pgt, ipa, &level), PA_A);
	CHECK_EQ(level, 2);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&a->pgt, ipa, SZ_2M), 0);

	a->pgt.force_pte_cb = force_all;
	CHECK_EQ(kvm_pgtable_stage2_map(&a->pgt, ipa, SZ_2M, PA_A, RW, vm_mc(a), 0), 0);
	CHECK_EQ(leaf_oa(&a->pgt, ipa, &level), PA_A);
	CHECK_EQ(level, 3);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&a->pgt, ipa, SZ_2M), 0);
	a->pgt.force_pte_cb = NULL;

	a->pgt.flags = KVM_PGTABLE_S2_IDMAP;
	CHECK_EQ(kvm_pgtable_stage2_map(&a->pgt, ipa, PAGE_SIZE, PA_A, RW, vm_mc(a), 0),
		 -PGW_EINVAL);
	a->pgt.flags = 0;
	CHECK_EQ(kvm_pgtable_stage2_map(&a->pgt, ipa, PAGE_SIZE, PA_A, RW, vm_mc(a), 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&a->pgt, ipa, PAGE_SIZE), 0);

	/* Changed while only calls that do not read them run (a lookup, the
	 * fault path's relax_perms and mkyoung): the next map still reads
	 * what the structure holds. */
	a->pgt.flags = KVM_PGTABLE_S2_IDMAP;
	a->pgt.force_pte_cb = force_all;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&a->pgt, IPA, KVM_PGTABLE_PROT_R), 0);
	CHECK(kvm_pgtable_stage2_mkyoung(&a->pgt, IPA) & 1);
	CHECK_EQ(kvm_pgtable_stage2_map(&a->pgt, ipa, PAGE_SIZE, PA_A, RW, vm_mc(a), 0),
		 -PGW_EINVAL);
	a->pgt.flags = 0;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	pgw_fault_outcome o;
	CHECK_EQ(pgw_stage2_fault_map(&a->pgt, ipa, SZ_2M, PA_A, RW, vm_mc(a), 0, &o), 0);
	CHECK_EQ(leaf_oa(&a->pgt, ipa, &level), PA_A);
	CHECK_EQ(level, 3); /* force_pte_cb, read by the fault path's map */
	a->pgt.force_pte_cb = NULL;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&a->pgt, ipa, SZ_2M), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&a->pgt, ipa, SZ_2M, PA_A, RW, vm_mc(a), 0), 0);
	CHECK_EQ(leaf_oa(&a->pgt, ipa, &level), PA_A);
	CHECK_EQ(level, 2);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&a->pgt, ipa, SZ_2M), 0);
}

/* A call on b from inside a call on a (a's TLB callback): it gets b's
 * answer, and both tables answer right afterwards. */
static struct vm *inner_vm;
static uint64_t inner_oa;
static void (*a_nsh)(struct kvm_s2_mmu *, uint64_t, int);
static void nested_nsh(struct kvm_s2_mmu *mmu, uint64_t addr, int level)
{
	int8_t l;

	inner_oa = leaf_oa(&inner_vm->pgt, IPA, &l);
	a_nsh(mmu, addr, level);
}

static void nested_call(struct vm *a, struct vm *b)
{
	int8_t level;

	inner_vm = b;
	inner_oa = 0;
	a_nsh = a->mmu.tlb_flush_vmid_ipa_nsh;
	a->mmu.tlb_flush_vmid_ipa_nsh = nested_nsh;
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&a->pgt, IPA, KVM_PGTABLE_PROT_W), 0);
	CHECK_EQ(inner_oa, PA_B);
	a->mmu.tlb_flush_vmid_ipa_nsh = a_nsh;
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	CHECK_EQ(leaf_oa(&b->pgt, IPA, &level), PA_B);
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
}

/* Destroyed and initialised again (the pool hands the same root back): the
 * new, empty table is what the next call reads. */
static void recreated(struct vm *a)
{
	int8_t level;

	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
	kvm_pte_t *old = a->pgt.pgd;
	kvm_pgtable_stage2_destroy(&a->pgt);
	CHECK_EQ(vm_init(a, VTCR_IPA40), 0);
	if (a->pgt.pgd != old)
		fprintf(stderr, "test_view_cache: note: the root moved\n");
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&a->pgt, IPA, PAGE_SIZE, PA_A, RW, vm_mc(a), 0), 0);
	CHECK_EQ(leaf_oa(&a->pgt, IPA, &level), PA_A);
}

int main(void)
{
	struct vm a, b;

	pool_reset();
	CHECK_EQ(vm_init(&a, VTCR_IPA40), 0);
	CHECK_EQ(vm_init(&b, VTCR_IPA40), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&a.pgt, IPA, PAGE_SIZE, PA_A, KVM_PGTABLE_PROT_R,
					vm_mc(&a), 0),
		 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&b.pgt, IPA, PAGE_SIZE, PA_B, KVM_PGTABLE_PROT_R,
					vm_mc(&b), 0),
		 0);

	alternating_tables(&a, &b);
	root_changed(&a, &b);
	geometry_changed(&a);
	callbacks_changed(&a, &b);
	root_not_converted(&a);
	flags_changed(&a);
	nested_call(&a, &b);
	recreated(&a);

	kvm_pgtable_stage2_destroy(&a.pgt);
	kvm_pgtable_stage2_destroy(&b.pgt);
	pool_quiesce();
	CHECK_EQ(pool_stats().in_use, 0);
	CHECK_EQ(pool_stats().double_frees, 0);
	return test_summary("test_view_cache");
}

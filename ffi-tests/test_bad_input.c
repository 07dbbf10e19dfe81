/*
 * Bad input never reaches undefined behaviour: each gets a defined result --
 * Linux 6.12's where the kernel defines one (its errno, or its reading of
 * the input: rounded, bits dropped), a negative errno of pgwalk's where the
 * kernel would crash -- and the table is left as it was, without leaking a
 * page.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "host.h"

#define GUEST_PA 0x100000000ull
#define IPA 0x40000000ull
#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)
#define SZ_2M (2ull << 20)

static void same(struct vm *vm, struct table_print before, unsigned long pages, int line)
{
	struct table_print now = table_fingerprint(&vm->pgt);

	check_record(table_print_eq(now, before), __FILE__, line,
		     "table unchanged", (long long)now.entries, (long long)before.entries);
	check_record(pool_stats().in_use == pages, __FILE__, line, "no page leaked",
		     (long long)pool_stats().in_use, (long long)pages);
}

#define SAME(vm, before, pages) same(vm, before, pages, __LINE__)

static void null_pointers(struct vm *vm)
{
	kvm_pte_t pte;
	int8_t level;
	bool b;
	pgw_fault_outcome o;
	kvm_pte_t *t;

	CHECK_EQ(kvm_pgtable_stage2_init(NULL, &vm->mmu, &host_mm_ops), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_init(&vm->pgt, NULL, &host_mm_ops), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_init(&vm->pgt, &vm->mmu, NULL), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_map(NULL, IPA, PAGE_SIZE, GUEST_PA, RW, NULL, 0), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_unmap(NULL, IPA, PAGE_SIZE), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_wrprotect(NULL, IPA, PAGE_SIZE), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(NULL, IPA, RW), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_flush(NULL, IPA, PAGE_SIZE), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_split(NULL, IPA, PAGE_SIZE, NULL), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(NULL, IPA, PAGE_SIZE, NULL, 1), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_get_leaf(NULL, IPA, &pte, &level), -PGW_EFAULT);
	CHECK(!kvm_pgtable_stage2_test_clear_young(NULL, IPA, PAGE_SIZE, true));
	CHECK_EQ(kvm_pgtable_stage2_mkyoung(NULL, IPA), 0);
	kvm_pgtable_stage2_destroy(NULL);
	kvm_pgtable_stage2_free_unlinked(NULL, NULL, 1);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, NULL, 1);
	CHECK_EQ(pgw_stage2_mkyoung(NULL, IPA, &b), -PGW_EFAULT);
	CHECK_EQ(pgw_stage2_test_clear_young(NULL, IPA, PAGE_SIZE, true, &b), -PGW_EFAULT);
	CHECK_EQ(pgw_stage2_fault_map(NULL, IPA, PAGE_SIZE, GUEST_PA, RW, NULL, 0, &o), -PGW_EFAULT);
	CHECK_EQ(pgw_stage2_fault_relax_perms(NULL, IPA, RW, &o), -PGW_EFAULT);
	CHECK_EQ(pgw_stage2_fault_relax_perms(&vm->pgt, IPA, RW, NULL), -PGW_EFAULT);
	CHECK_EQ(pgw_stage2_fault_mkyoung(NULL, IPA, &o), -PGW_EFAULT);
	CHECK_EQ(pgw_stage2_fault_mkyoung(&vm->pgt, IPA, NULL), -PGW_EFAULT);
	CHECK_EQ(pgw_stage2_create_unlinked(NULL, GUEST_PA, 2, RW, NULL, false, &t), -PGW_EFAULT);
	CHECK_EQ((intptr_t)kvm_pgtable_stage2_create_unlinked(NULL, GUEST_PA, 2, RW, NULL, false),
		 -PGW_EFAULT);
}

static void bad_ranges(struct vm *vm)
{
	/* Beyond the IPA size, across its end, wrapping around the top: every
	 * operation refuses with -ERANGE. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, 1ull << 40, PAGE_SIZE, GUEST_PA, RW, vm_mc(vm), 0),
		 -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, (1ull << 40) - PAGE_SIZE, 2 * PAGE_SIZE, GUEST_PA,
					RW, vm_mc(vm), 0), -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, UINT64_MAX & ~(PAGE_SIZE - 1), PAGE_SIZE * 2,
					GUEST_PA, RW, vm_mc(vm), 0), -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, 1ull << 41, PAGE_SIZE), -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_wrprotect(&vm->pgt, UINT64_MAX - PAGE_SIZE + 1, PAGE_SIZE),
		 -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_flush(&vm->pgt, 1ull << 40, PAGE_SIZE), -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_split(&vm->pgt, 1ull << 40, SZ_2M, vm_mc(vm)), -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, 1ull << 40, PAGE_SIZE, vm_mc(vm), 1),
		 -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, 1ull << 40, RW), -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, 1ull << 40, NULL, NULL), -PGW_ERANGE);
	CHECK_EQ(kvm_pgtable_stage2_mkyoung(&vm->pgt, 1ull << 40), 0);
	/* An output address beyond VTCR_EL2.PS (40 bits here): -ERANGE, a
	 * deliberate deviation (kernel-parity/deviations.txt): 6.12 maps it,
	 * and the MMU would fault on every access. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, IPA + SZ_2M + PAGE_SIZE, PAGE_SIZE, 1ull << 40, RW,
					vm_mc(vm), 0), -PGW_ERANGE);

	/* Empty ranges, and sizes wrapping around to where they start: 6.12
	 * does nothing, successfully (the block stays writable). */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, IPA, 0, GUEST_PA, RW, vm_mc(vm), 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, IPA, 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, IPA + PAGE_SIZE, UINT64_MAX), 0);
	CHECK_EQ(kvm_pgtable_stage2_wrprotect(&vm->pgt, IPA, 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_flush(&vm->pgt, IPA, 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_split(&vm->pgt, IPA, 0, vm_mc(vm)), 0);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, IPA, 0, vm_mc(vm), 1), 0);
	CHECK(!kvm_pgtable_stage2_test_clear_young(&vm->pgt, IPA, 0, true));

	/* Unaligned input is rounded, not refused (the typed API refuses it,
	 * test_typed.c): inside the 2 MiB block, a map of part of it needs a
	 * table, and without a memory cache 6.12 answers -ENOMEM, block kept.
	 * So does set_owner, which goes page by page. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, IPA + 1, PAGE_SIZE, GUEST_PA, RW, NULL, 0),
		 -PGW_ENOMEM);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, IPA, PAGE_SIZE + 8, GUEST_PA + 4, RW, NULL, 0),
		 -PGW_ENOMEM);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, IPA, PAGE_SIZE - 1, NULL, 1), -PGW_ENOMEM);
	/* Over the page, a map of what it maps already: nothing to do. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, IPA + SZ_2M + 0x10, 0x10, GUEST_PA + 0x20, RW, NULL,
					0), 0);
}

static void bad_bits(struct vm *vm)
{
	const uint64_t page = IPA + SZ_2M;
	pgw_fault_outcome o;

	/* Prot bits 6.12 does not define are dropped: a map of what the page
	 * maps already, with them, finds nothing to do. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, GUEST_PA, RW | (1ull << 6), NULL,
					0), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, GUEST_PA, RW | (1ull << 63), NULL,
					0), 0);
	/* Contradictory or impossible prots. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, GUEST_PA,
					KVM_PGTABLE_PROT_DEVICE | KVM_PGTABLE_PROT_NORMAL_NC, NULL,
					0), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, GUEST_PA,
					KVM_PGTABLE_PROT_DEVICE | KVM_PGTABLE_PROT_X, NULL, 0),
		 -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, GUEST_PA,
					KVM_PGTABLE_PROT_NORMAL_NC | KVM_PGTABLE_PROT_X, NULL, 0),
		 -PGW_EINVAL);
	/* relax_perms refuses software bits and ignores the rest but R, W, X. */
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, IPA, KVM_PGTABLE_PROT_SW0), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, IPA, 1ull << 40), 0);
	/* Walk flag bits 6.12 does not define are ignored; HANDLE_FAULT alone
	 * is a walker that stops where the fault path would. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, GUEST_PA, RW, NULL, 1u << 7), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, page, PAGE_SIZE, GUEST_PA, RW, NULL,
					KVM_PGTABLE_WALK_HANDLE_FAULT), -PGW_EAGAIN);
	/* The typed API refuses what the kernel's drops. */
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, IPA, PAGE_SIZE, GUEST_PA, 1ull << 62, NULL, 0, &o),
		 -PGW_EINVAL);
	/* Levels outside -1..=3: the kernel shifts by them; pgwalk refuses. */
	CHECK_EQ((intptr_t)kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, -7, RW, NULL,
							      false), -PGW_EINVAL);
	CHECK_EQ((intptr_t)kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 127, RW, NULL,
							      false), -PGW_EINVAL);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, vm->pgt.pgd, 9);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, vm->pgt.pgd, -128);
}

static void out_of_memory(struct vm *vm)
{
	struct kvm_mmu_memory_cache empty = { .nobjs = 0 }, one = { .nobjs = 1 };
	struct table_print before = table_fingerprint(&vm->pgt);
	unsigned long pages = pool_stats().in_use;
	pgw_fault_outcome o = 0;
	kvm_pte_t *t;

	/* The cache is empty: zalloc_page returns NULL at once. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, 0x80000000, PAGE_SIZE, GUEST_PA, RW, &empty, 0),
		 -PGW_ENOMEM);
	SAME(vm, before, pages);
	/* No cache at all: the same, without asking zalloc_page. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, 0x80000000, PAGE_SIZE, GUEST_PA, RW, NULL, 0),
		 -PGW_ENOMEM);
	SAME(vm, before, pages);
	/* The first table comes, the second does not: as in 6.12, the first
	 * stays linked, empty (counted, not leaked), until an unmap of the
	 * range frees it. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, 0x80000000, PAGE_SIZE, GUEST_PA, RW, &one, 0),
		 -PGW_ENOMEM);
	CHECK_EQ(one.nobjs, 0);
	CHECK_EQ(pool_stats().in_use, pages + 1);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, 0x80000000, PAGE_SIZE), 0);
	SAME(vm, before, pages);
	CHECK_EQ(kvm_pgtable_stage2_split(&vm->pgt, IPA, SZ_2M, &one), -PGW_ENOMEM);
	SAME(vm, before, pages);
	pool_set_budget(3);
	CHECK_EQ(pgw_stage2_create_unlinked(&vm->pgt, GUEST_PA, 1, RW, NULL, true, &t),
		 -PGW_ENOMEM);
	pool_set_budget(-1);
	SAME(vm, before, pages);

	/* The fault path cannot take back a table other walkers may already
	 * have seen: the empty level-2 table stays linked (counted, not
	 * leaked), and the vCPU's next fault, with a refilled cache, uses it. */
	one.nobjs = 1;
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, 0x80000000, PAGE_SIZE, GUEST_PA, RW, &one, 0, &o),
		 -PGW_ENOMEM);
	CHECK_EQ(o, 0);
	CHECK_EQ(pool_stats().in_use, pages + 1);
	one.nobjs = 1;
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, 0x80000000, PAGE_SIZE, GUEST_PA, RW, &one, 0, &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(one.nobjs, 0);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, 0x80000000, PAGE_SIZE), 0);
	SAME(vm, before, pages);
}

static void bad_setup(void)
{
	struct vm vm;
	struct kvm_pgtable_mm_ops ops = host_mm_ops;
	unsigned long pages = pool_stats().in_use;

	/* VTCR_EL2 values the architecture refuses: reserved TG0, LPA2 with
	 * 64 KiB, SL2 without LPA2, PS = 0b111, a 16 KiB start at level 0
	 * without LPA2. */
	CHECK_EQ(kvm_pgtable_stage2_pgd_size(VTCR_IPA40 | (3ull << 14)), 0);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40 | (3ull << 14)), -PGW_EINVAL);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40 | (1ull << 14) | (1ull << 32)), -PGW_EINVAL);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40 | (1ull << 33)), -PGW_EINVAL);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40 | (7ull << 16)), -PGW_EINVAL);
	CHECK_EQ(vm_init(&vm, (VTCR_IPA40 & ~0x700ffull) | 16 | (3ull << 6) | (2ull << 14) |
				      (5ull << 16)),
		 -PGW_EINVAL);
	CHECK(vm.pgt.pgd == NULL);
	CHECK_EQ(pool_stats().in_use, pages);
	/* host_mm_ops serves 4 KiB tables without LPA2 (its pages are 4 KiB):
	 * legal VTCR_EL2 values of another format are refused with it. */
	CHECK_EQ(vm_init(&vm, VTCR_IPA40 | (2ull << 14)), -PGW_EINVAL);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40 | (1ull << 32)), -PGW_EINVAL);
	CHECK(vm.pgt.pgd == NULL);
	CHECK_EQ(pool_stats().in_use, pages);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	kvm_pgtable_stage2_destroy(&vm.pgt);

	/* A missing memory callback: refused by the operations that may call
	 * it, before they change anything (where the kernel would call through
	 * NULL); initialisation, which does not, works (test_mm_ops_subsets
	 * goes through every operation). */
	ops.zalloc_pages_exact = NULL;
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &ops), -PGW_EINVAL);
	CHECK(vm.pgt.pgd == NULL);
	ops = host_mm_ops;
	ops.put_page = NULL;
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &ops), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA, PAGE_SIZE, GUEST_PA, RW, vm_mc(&vm), 0),
		 -PGW_EINVAL);
	CHECK_EQ(pool_stats().in_use, pages + 2); /* the root, nothing more */
	ops = host_mm_ops;
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK_EQ(pool_stats().in_use, pages);
	/* A missing TLB callback: no table. */
	ops.dcache_clean_inval_poc = NULL; /* optional, as in the kernel */
	ops.icache_inval_pou = NULL;
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &ops), 0);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	vm.mmu.tlb_flush_vmid = NULL;
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &host_mm_ops), -PGW_EINVAL);
	CHECK_EQ(pool_stats().in_use, pages);
	/* tlb_flush_vmid_ipa_nsh is optional. */
	vm_set_tlb_callbacks(&vm);
	vm.mmu.tlb_flush_vmid_ipa_nsh = NULL;
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &host_mm_ops), 0);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK_EQ(pool_stats().in_use, pages);

	/* zalloc_pages_exact failing: no root, nothing leaked. */
	pool_set_budget(1);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), -PGW_ENOMEM);
	pool_set_budget(-1);
	CHECK_EQ(pool_stats().in_use, pages);
}

static void changed_after_init(void)
{
	struct vm vm;
	uint64_t vtcr;
	struct table_print before;
	unsigned long pages;

	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA, SZ_2M, GUEST_PA, RW, vm_mc(&vm), 0), 0);
	before = table_fingerprint(&vm.pgt);
	pages = pool_stats().in_use;

	/* TLB callbacks cleared after init: each call refuses when its
	 * operation may need one that is gone, and only then. Without the
	 * range and VMID invalidations, lookups and the fault path's
	 * permission and access-flag changes go on; map does not. */
	vm.mmu.tlb_flush_vmid_range = NULL;
	vm.mmu.tlb_flush_vmid = NULL;
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), 0);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm.pgt, IPA, KVM_PGTABLE_PROT_X), 0);
	CHECK(kvm_pgtable_stage2_mkyoung(&vm.pgt, IPA) & 1);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA + 4 * SZ_2M, PAGE_SIZE, GUEST_PA, RW, vm_mc(&vm), 0),
		 -PGW_EINVAL);
	/* relax_perms invalidates on this CPU, or broadcast without a local
	 * callback; it needs the broadcast one either way: without it, it
	 * refuses and changes nothing. */
	vm.mmu.tlb_flush_vmid_ipa_nsh = NULL;
	unsigned long ipa_calls = vm.tlbi_ipa;
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm.pgt, IPA, KVM_PGTABLE_PROT_R), 0);
	CHECK_EQ(vm.tlbi_ipa, ipa_calls + 1);
	vm.mmu.tlb_flush_vmid_ipa = NULL;
	before = table_fingerprint(&vm.pgt);
	CHECK_EQ(pgw_stage2_wrprotect(&vm.pgt, IPA, SZ_2M), 0);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm.pgt, IPA, KVM_PGTABLE_PROT_W), -PGW_EINVAL);
	pgw_fault_outcome o;
	CHECK_EQ(pgw_stage2_fault_relax_perms(&vm.pgt, IPA, KVM_PGTABLE_PROT_W, &o), -PGW_EINVAL);
	CHECK(!table_print_eq(table_fingerprint(&vm.pgt), before)); /* wrprotect did its part */
	before = table_fingerprint(&vm.pgt);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm.pgt, IPA, KVM_PGTABLE_PROT_W), -PGW_EINVAL);
	CHECK(table_print_eq(table_fingerprint(&vm.pgt), before));
	vm_init(&vm, VTCR_IPA40); /* leaks the table, as below */
	pool_quiesce();
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA, SZ_2M, GUEST_PA, RW, vm_mc(&vm), 0), 0);
	before = table_fingerprint(&vm.pgt);
	pages = pool_stats().in_use;

	/* A TLB callback every operation but those above needs, cleared after
	 * init: those calls refuse, nothing is skipped silently. */
	vm.mmu.tlb_flush_vmid_ipa = NULL;
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm.pgt, IPA, SZ_2M), -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), -PGW_EINVAL);
	vm_init(&vm, VTCR_IPA40); /* restores the callbacks... */
	pool_quiesce();
	CHECK_EQ(pool_stats().in_use, pages + 2); /* ...and leaked the first table: */
	CHECK(before.entries > 0);                /* the caller's mistake, documented */
	kvm_pgtable_stage2_destroy(&vm.pgt);
	(void)vtcr;
}

/* A host whose phys_to_virt breaks its contract: the panic it causes inside
 * the library is caught at the boundary. */
static void *broken_phys_to_virt(uint64_t phys)
{
	(void)phys;
	return NULL;
}

/* virt_to_phys of the page holding the address. */
static uint64_t page_virt_to_phys(void *addr)
{
	return host_mm_ops.virt_to_phys((void *)((uintptr_t)addr & ~(uintptr_t)(PAGE_SIZE - 1)));
}

static void broken_host(void)
{
	struct vm vm;
	struct kvm_pgtable_mm_ops ops = host_mm_ops;
	unsigned long pages = pool_stats().in_use;

	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	/* A page mapped, so that a lookup converts the tables below the root
	 * (a walk starts from pgd itself). */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA, PAGE_SIZE, GUEST_PA, RW, vm_mc(&vm), 0), 0);
	vm.pgt.mm_ops = &ops;
	ops.phys_to_virt = broken_phys_to_virt;
	fprintf(stderr, "test_bad_input: a panic message from a broken host is expected next\n");
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), -PGW_ENOTRECOVERABLE);
	ops.phys_to_virt = host_mm_ops.phys_to_virt;
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), 0);
	/* A pgd that is no page's address (not even 8-byte aligned), which a
	 * sloppy virt_to_phys still takes to the root: refused, not read. */
	kvm_pte_t *pgd = vm.pgt.pgd;
	ops.virt_to_phys = page_virt_to_phys;
	vm.pgt.pgd = (kvm_pte_t *)(void *)((char *)pgd + 4);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm.pgt, IPA, KVM_PGTABLE_PROT_R), -PGW_EINVAL);
	vm.pgt.pgd = pgd;
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), 0);
	ops.virt_to_phys = host_mm_ops.virt_to_phys;
	/* A VTCR_EL2 changed under the table no longer matches it. */
	vm.mmu.vtcr = 0x80023559; /* 39-bit IPA */
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), -PGW_EINVAL);
	vm.mmu.vtcr = VTCR_IPA40;
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), 0);
	CHECK_EQ(pool_stats().in_use, pages);
}

/* A callback cleared while a call is using it (the documentation forbids
 * it: the callbacks are read as they are used, not copied at the start of
 * the call): the call ends with -PGW_ENOTRECOVERABLE instead of calling
 * through NULL. */
static struct kvm_pgtable_mm_ops *clearing;
static void *zalloc_then_clear(void *mc)
{
	clearing->get_page = NULL;
	return host_mm_ops.zalloc_page(mc);
}

static void cleared_during_a_call(void)
{
	struct vm vm;
	struct kvm_pgtable_mm_ops ops = host_mm_ops;

	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	vm.pgt.mm_ops = &ops;
	clearing = &ops;
	ops.zalloc_page = zalloc_then_clear;
	fprintf(stderr, "test_bad_input: a panic message for a cleared callback is expected next\n");
	/* The first table the map links needs get_page on its parent. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA, PAGE_SIZE, GUEST_PA, RW, vm_mc(&vm), 0),
		 -PGW_ENOTRECOVERABLE);
	CHECK(ops.get_page == NULL);
	ops = host_mm_ops;
	kvm_pgtable_stage2_destroy(&vm.pgt);
}

int main(void)
{
	struct vm vm;
	struct table_print before;
	unsigned long pages;

	pool_reset();
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA, SZ_2M, GUEST_PA, RW, vm_mc(&vm), 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA + SZ_2M, PAGE_SIZE, GUEST_PA, RW, vm_mc(&vm), 0),
		 0);
	before = table_fingerprint(&vm.pgt);
	pages = pool_stats().in_use;

	null_pointers(&vm);
	SAME(&vm, before, pages);
	bad_ranges(&vm);
	SAME(&vm, before, pages);
	bad_bits(&vm);
	SAME(&vm, before, pages);
	out_of_memory(&vm);
	SAME(&vm, before, pages);

	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK_EQ(pool_stats().in_use, 0);
	bad_setup();
	broken_host();
	changed_after_init();
	cleared_during_a_call();
	pool_quiesce();
	CHECK_EQ(pool_stats().double_frees, 0);
	CHECK_EQ(pool_stats().bad_frees, 0);
	return test_summary("test_bad_input");
}

/*
 * Every kvm_pgtable_* operation through the kernel-compatible API, with the
 * pool checked for leaks at the end.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "host.h"

#define GUEST_PA 0x100000000ull
#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)
#define RWX (RW | KVM_PGTABLE_PROT_X)
#define SZ_2M (2ull << 20)
#define SZ_1G (1ull << 30)
#define FAULT (KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT)

#define S2_AP_W (1ull << 7)
#define S2_AF (1ull << 10)
#define S2_XN (3ull << 53)

static kvm_pte_t leaf(struct vm *vm, uint64_t ipa, int8_t *level)
{
	kvm_pte_t pte = ~0ull;

	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, ipa, &pte, level), 0);
	return pte;
}

static uint64_t oa(kvm_pte_t pte)
{
	return pte & 0x0000fffffffff000ull;
}

static void init_and_geometry(struct vm *vm)
{
	CHECK_EQ(kvm_pgtable_stage2_pgd_size(VTCR_IPA40), 2 * PAGE_SIZE);
	CHECK_EQ(vm_init(vm, VTCR_IPA40), 0);
	CHECK_EQ(vm->pgt.ia_bits, 40);
	CHECK_EQ(vm->pgt.start_level, 1);
	CHECK(vm->pgt.pgd != NULL);
	CHECK(vm->pgt.mm_ops == &host_mm_ops);
	CHECK(vm->pgt.mmu == &vm->mmu);
	CHECK(vm->mmu.pgt == &vm->pgt);
	CHECK_EQ(vm->mmu.pgd_phys & (2 * PAGE_SIZE - 1), 0);
	CHECK(vm->mmu.pgd_phys >= POOL_PHYS_BASE);
	CHECK_EQ(pool_stats().in_use, 2);
}

static void map_and_lookup(struct vm *vm)
{
	int8_t level = -1;
	kvm_pte_t pte;
	unsigned long dcache = pool_stats().dcache, icache = pool_stats().icache;

	/* 1 GiB + 2 MiB + 4 KiB: a 1 GiB block, a 2 MiB block and a page. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, SZ_1G + SZ_2M + PAGE_SIZE, GUEST_PA,
					RWX, NULL, 0), 0);
	pte = leaf(vm, SZ_1G + 12345, &level);
	CHECK_EQ(level, 1);
	CHECK_EQ(oa(pte), GUEST_PA);
	pte = leaf(vm, 2 * SZ_1G, &level);
	CHECK_EQ(level, 2);
	CHECK_EQ(oa(pte), GUEST_PA + SZ_1G);
	pte = leaf(vm, 2 * SZ_1G + SZ_2M, &level);
	CHECK_EQ(level, 3);
	CHECK_EQ(oa(pte), GUEST_PA + SZ_1G + SZ_2M);
	CHECK(pte & S2_AP_W);
	CHECK(pte & S2_AF);
	CHECK_EQ(pte & S2_XN, 0);
	/* Cacheable and executable: cleaned and invalidated before use. */
	CHECK_EQ(pool_stats().dcache - dcache, 3);
	CHECK_EQ(pool_stats().icache - icache, 3);

	/* Unmapped: the invalid entry where translation stops. */
	pte = leaf(vm, 8 * SZ_1G, &level);
	CHECK_EQ(pte, 0);
	CHECK_EQ(level, 1);
	/* Both out-pointers are optional. */
	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, SZ_1G, NULL, NULL), 0);

	/* SKIP_CMO: no cache maintenance. Device memory is never cleaned. */
	dcache = pool_stats().dcache;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, 4 * SZ_1G, PAGE_SIZE, GUEST_PA, RW, NULL,
					KVM_PGTABLE_WALK_SKIP_CMO), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, 4 * SZ_1G + PAGE_SIZE, PAGE_SIZE, 0x9000000,
					RW | KVM_PGTABLE_PROT_DEVICE, NULL, 0), 0);
	CHECK_EQ(pool_stats().dcache, dcache);
}

static void attributes(struct vm *vm)
{
	uint64_t page = 2 * SZ_1G + SZ_2M;
	unsigned long range = vm->tlbi_range, ipa = vm->tlbi_ipa;
	kvm_pte_t pte;

	CHECK_EQ(kvm_pgtable_stage2_wrprotect(&vm->pgt, SZ_1G, SZ_1G + SZ_2M + PAGE_SIZE), 0);
	CHECK_EQ(leaf(vm, page, NULL) & S2_AP_W, 0);
	CHECK_EQ(leaf(vm, SZ_1G, NULL) & S2_AP_W, 0);
	/* The stale writable TLB entries are invalidated through the MMU. */
	CHECK(vm->tlbi_range > range);

	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, page, KVM_PGTABLE_PROT_W, 0), 0);
	CHECK(leaf(vm, page, NULL) & S2_AP_W);
	CHECK_EQ(vm->tlbi_ipa, ipa + 1);
	CHECK_EQ(vm->last_tlbi_ipa, page);
	CHECK_EQ(vm->last_tlbi_level, 3);
	/* The fault path: a leaf that is not there resumes the guest. */
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, 8 * SZ_1G, KVM_PGTABLE_PROT_W, FAULT),
		 -EAGAIN);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, SZ_1G, KVM_PGTABLE_PROT_W, FAULT), 0);
	CHECK(leaf(vm, SZ_1G, NULL) & S2_AP_W);

	/* Aging: young after map, old after test_clear_young, young again. */
	CHECK(kvm_pgtable_stage2_test_clear_young(&vm->pgt, page, PAGE_SIZE, false));
	CHECK(leaf(vm, page, NULL) & S2_AF);
	CHECK(kvm_pgtable_stage2_test_clear_young(&vm->pgt, page, PAGE_SIZE, true));
	CHECK_EQ(leaf(vm, page, NULL) & S2_AF, 0);
	CHECK(!kvm_pgtable_stage2_test_clear_young(&vm->pgt, page, PAGE_SIZE, true));
	kvm_pgtable_stage2_mkyoung(&vm->pgt, page, 0);
	CHECK(leaf(vm, page, NULL) & S2_AF);
	CHECK(kvm_pgtable_stage2_test_clear_young(&vm->pgt, page, PAGE_SIZE, true));
	kvm_pgtable_stage2_mkyoung(&vm->pgt, page, FAULT);
	pte = leaf(vm, page, NULL);
	CHECK(pte & S2_AF);

	/* Flush cleans every cacheable leaf in the range. */
	{
		unsigned long dcache = pool_stats().dcache;

		CHECK_EQ(kvm_pgtable_stage2_flush(&vm->pgt, SZ_1G, SZ_1G + SZ_2M + PAGE_SIZE), 0);
		CHECK_EQ(pool_stats().dcache - dcache, 3);
	}
}

static void split_and_unmap(struct vm *vm)
{
	struct kvm_mmu_memory_cache mc = { .nobjs = 1 };
	int8_t level;
	unsigned long before = pool_stats().in_use;

	/* Unmapping part of a block is refused before anything changes. */
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, 2 * SZ_1G, PAGE_SIZE), -PGW_EINVAL);
	leaf(vm, 2 * SZ_1G, &level);
	CHECK_EQ(level, 2);

	/* Split the 2 MiB block into pages, then unmap one page of it. */
	CHECK_EQ(kvm_pgtable_stage2_split(&vm->pgt, 2 * SZ_1G, SZ_2M, &mc), 0);
	CHECK_EQ(mc.nobjs, 0);
	CHECK_EQ(pool_stats().in_use, before + 1);
	CHECK_EQ(oa(leaf(vm, 2 * SZ_1G + 5 * PAGE_SIZE, &level)), GUEST_PA + SZ_1G + 5 * PAGE_SIZE);
	CHECK_EQ(level, 3);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, 2 * SZ_1G, PAGE_SIZE), 0);
	CHECK_EQ(leaf(vm, 2 * SZ_1G, &level), 0);
	CHECK(leaf(vm, 2 * SZ_1G + PAGE_SIZE, NULL) & 1);

	/* Unmapping everything left frees every table page below the root. */
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, SZ_1G, 4 * SZ_1G), 0);
	CHECK_EQ(pool_stats().in_use, 2);
}

static void owner_annotations(struct vm *vm)
{
	kvm_pte_t pte;
	int8_t level;

	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, SZ_1G, 4 * PAGE_SIZE, NULL, 3), 0);
	pte = leaf(vm, SZ_1G + PAGE_SIZE, &level);
	CHECK_EQ(pte & 1, 0);
	CHECK(pte != 0);
	CHECK_EQ(level, 3);
	/* Owner 0 is the table's own: the annotation goes, and so do the tables. */
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, SZ_1G, 4 * PAGE_SIZE, NULL, 0), 0);
	CHECK_EQ(leaf(vm, SZ_1G + PAGE_SIZE, NULL), 0);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, SZ_1G, SZ_1G), 0);
	CHECK_EQ(pool_stats().in_use, 2);
}

static void fault_path(struct vm *vm)
{
	struct kvm_mmu_memory_cache mc = { .nobjs = 4 };
	unsigned long deferred;

	/* First fault installs; the same fault again finds it there. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, PAGE_SIZE, GUEST_PA, RW, &mc, FAULT), 0);
	CHECK_EQ(oa(leaf(vm, SZ_1G, NULL)), GUEST_PA);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, PAGE_SIZE, GUEST_PA, RW, &mc, FAULT),
		 -EAGAIN);
	/* A block fault over the page table: the table is unlinked and handed
	 * to free_unlinked_table for the grace period. */
	deferred = pool_stats().deferred;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, SZ_2M, GUEST_PA, RW, &mc, FAULT), 0);
	CHECK_EQ(pool_stats().deferred, deferred + 1);
	pool_quiesce();
	/* SHARED without HANDLE_FAULT: no such map. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SZ_1G, PAGE_SIZE, GUEST_PA, RW, &mc,
					KVM_PGTABLE_WALK_SHARED), -PGW_EOPNOTSUPP);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, SZ_1G, SZ_1G), 0);
	CHECK_EQ(pool_stats().in_use, 2);
}

static void unlinked_tables(struct vm *vm)
{
	kvm_pte_t *table;
	unsigned long before = pool_stats().in_use;

	/* A level-1 entry's worth (1 GiB) as 2 MiB blocks: one page. */
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 1, RW, NULL, false);
	CHECK((uintptr_t)table < (uintptr_t)-4095);
	CHECK_EQ(pool_stats().in_use, before + 1);
	CHECK_EQ(oa(table[3]), GUEST_PA + 3 * SZ_2M);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, table, 1);
	CHECK_EQ(pool_stats().in_use, before);

	/* force_pte: pages all the way down (1 + 512 pages for 1 GiB). */
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 1, RW, NULL, true);
	CHECK((uintptr_t)table < (uintptr_t)-4095);
	CHECK_EQ(pool_stats().in_use, before + 513);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, table, 1);
	CHECK_EQ(pool_stats().in_use, before);

	/* Errors come back as ERR_PTR(-errno). */
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA + PAGE_SIZE, 1, RW, NULL,
						   false);
	CHECK_EQ((intptr_t)table, -PGW_EINVAL);
	table = kvm_pgtable_stage2_create_unlinked(&vm->pgt, GUEST_PA, 3, RW, NULL, false);
	CHECK_EQ((intptr_t)table, -PGW_EINVAL);
	CHECK_EQ(pool_stats().in_use, before);
}

static int force_all;
static bool force_pte_cb(uint64_t addr, uint64_t end, uint64_t prot)
{
	(void)addr;
	(void)end;
	(void)prot;
	return force_all;
}

static void forced_pages(void)
{
	struct vm vm;
	int8_t level;

	memset(&vm, 0, sizeof(vm));
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	/* Re-initialise with a force_pte callback (destroying the first). */
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK_EQ(__kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &host_mm_ops, KVM_PGTABLE_S2_NOFWB,
					   force_pte_cb), 0);
	force_all = 1;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, SZ_1G, SZ_2M, GUEST_PA, RW, NULL, 0), 0);
	leaf(&vm, SZ_1G + SZ_2M - PAGE_SIZE, &level);
	CHECK_EQ(level, 3);
	force_all = 0;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, 2 * SZ_1G, SZ_2M, GUEST_PA, RW, NULL, 0), 0);
	leaf(&vm, 2 * SZ_1G, &level);
	CHECK_EQ(level, 2);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	/* Destroying twice does nothing the second time. */
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), -PGW_EINVAL);
}

int main(void)
{
	struct vm vm;

	pool_reset();
	init_and_geometry(&vm);
	map_and_lookup(&vm);
	attributes(&vm);
	split_and_unmap(&vm);
	owner_annotations(&vm);
	fault_path(&vm);
	unlinked_tables(&vm);

	/* Destroy with mappings in place: everything goes back to the pool. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, SZ_1G, 4 * SZ_2M + 3 * PAGE_SIZE, GUEST_PA, RW,
					NULL, 0), 0);
	CHECK_EQ(vm.tlbi_vmid, 0);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	CHECK(vm.pgt.pgd == NULL);
	pool_quiesce();
	CHECK_EQ(pool_stats().in_use, 0);

	forced_pages();
	pool_quiesce();
	CHECK_EQ(pool_stats().in_use, 0);
	CHECK_EQ(pool_stats().double_frees, 0);
	CHECK_EQ(pool_stats().bad_frees, 0);
	return test_summary("test_compat");
}

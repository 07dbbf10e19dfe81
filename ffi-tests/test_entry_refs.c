/*
 * The reference count of a table page is taken and dropped for one of its
 * entries, and the host's get_page and put_page are given that entry's
 * address, as Linux 6.12's walker gives them ctx->ptep: a host written
 * for the kernel may find the page from any address in it, and one that
 * looks at the address sees the same one either way.
 */
#include <stdio.h>

#include "check.h"
#include "host.h"

#define IPA 0x40000000ull
#define PA 0x100000000ull
#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)

struct find {
	uint64_t addr;
	kvm_pte_t *ptep;
};

static int find_entry(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	struct find *f = ctx->arg;

	(void)visit;
	if (ctx->addr == f->addr && ctx->level == 3)
		f->ptep = ctx->ptep;
	return 0;
}

/* The address of the last-level entry for `addr`. */
static kvm_pte_t *entry_of(struct kvm_pgtable *pgt, uint64_t addr)
{
	struct find f = { .addr = addr, .ptep = NULL };
	struct kvm_pgtable_walker w = {
		.cb = find_entry,
		.arg = &f,
		.flags = KVM_PGTABLE_WALK_LEAF,
	};

	CHECK_EQ(kvm_pgtable_walk(pgt, addr, PAGE_SIZE, &w), 0);
	CHECK(f.ptep != NULL);
	return f.ptep;
}

static void no_flush(void *arg, uint64_t va, int8_t level)
{
	(void)arg;
	(void)va;
	(void)level;
}

static void no_publish(void *arg) { (void)arg; }

static const struct pgw_hyp_tlb_ops hyp_tlb = {
	.flush_va = no_flush,
	.flush_va_walks = no_flush,
	.publish = no_publish,
};

/* The hyp walker counts its entries the same way. */
static void hyp_tables(void)
{
	struct kvm_pgtable hyp;
	uint64_t va = IPA + 5 * PAGE_SIZE;

	CHECK_EQ(pgw_hyp_set_tlb_ops(&hyp_tlb), 0);
	CHECK_EQ(kvm_pgtable_hyp_init(&hyp, 39, &host_mm_ops), 0);
	CHECK_EQ(kvm_pgtable_hyp_map(&hyp, va, 2 * PAGE_SIZE, PA, KVM_PGTABLE_PROT_R), 0);
	kvm_pte_t *six = entry_of(&hyp, va + PAGE_SIZE);
	CHECK(pool_stats().last_get_page == (void *)six);
	CHECK_EQ(kvm_pgtable_hyp_unmap(&hyp, va + PAGE_SIZE, PAGE_SIZE), PAGE_SIZE);
	CHECK(pool_stats().last_put_page == (void *)six);
	kvm_pgtable_hyp_destroy(&hyp);
}

int main(void)
{
	struct vm vm;
	pgw_fault_outcome outcome;

	pool_reset();
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);

	/* Entry 5 of a last-level table (not its first, whose address is the
	 * page's). */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA + 5 * PAGE_SIZE, PAGE_SIZE, PA, RW,
					vm_mc(&vm), 0),
		 0);
	CHECK(pool_stats().last_get_page == (void *)entry_of(&vm.pgt, IPA + 5 * PAGE_SIZE));

	/* The fault path, through the kvm_* call and the typed one. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA + 6 * PAGE_SIZE, PAGE_SIZE, PA + PAGE_SIZE,
					RW, vm_mc(&vm),
					KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT),
		 0);
	CHECK(pool_stats().last_get_page == (void *)entry_of(&vm.pgt, IPA + 6 * PAGE_SIZE));
	CHECK_EQ(pgw_stage2_fault_map(&vm.pgt, IPA + 7 * PAGE_SIZE, PAGE_SIZE, PA + 2 * PAGE_SIZE,
				      RW, vm_mc(&vm), 0, &outcome),
		 0);
	CHECK_EQ(outcome, PGW_FAULT_FIXED);
	CHECK(pool_stats().last_get_page == (void *)entry_of(&vm.pgt, IPA + 7 * PAGE_SIZE));

	/* An unmap that leaves the table linked drops the reference of the
	 * entry it cleared, by that entry's address. */
	kvm_pte_t *six = entry_of(&vm.pgt, IPA + 6 * PAGE_SIZE);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm.pgt, IPA + 6 * PAGE_SIZE, PAGE_SIZE), 0);
	CHECK(pool_stats().last_put_page == (void *)six);
	CHECK_EQ(*six, 0);

	kvm_pgtable_stage2_destroy(&vm.pgt);
	hyp_tables();
	pool_quiesce();
	struct pool_stats s = pool_stats();
	CHECK_EQ(s.in_use, 0);
	CHECK_EQ(s.double_frees, 0);
	CHECK_EQ(s.bad_frees, 0);
	return test_summary("test_entry_refs");
}

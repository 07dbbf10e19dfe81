/*
 * pgw_set_panic_hook and pgw_set_reentry_slot in the hosted library: both
 * are accepted (0) and neither is ever called, because the hosted build
 * catches panics at the boundary (-PGW_ENOTRECOVERABLE) and keeps the
 * re-entry slot in a thread-local of its own. The freestanding build calls
 * them; hypervisors/c tests that on QEMU (panic_test.c, and the C
 * hypervisor's re-entry self-test).
 */
#include <stdint.h>

#include "check.h"
#include "host.h"

#define IPA 0x40000000ull

static int hook_calls, slot_calls;
static void *shared_slot;

static void hook(const struct pgw_panic_info *info)
{
	(void)info;
	hook_calls++;
}

/* One slot for every thread: what a hosted build must not rely on. */
static void **slot(void)
{
	slot_calls++;
	return &shared_slot;
}

static void *broken_phys_to_virt(uint64_t phys)
{
	(void)phys;
	return NULL;
}

struct probe {
	struct kvm_pgtable *pgt;
	int inner;
};

static int reenter(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	struct probe *p = ctx->arg;

	(void)visit;
	p->inner = kvm_pgtable_get_leaf(p->pgt, ctx->addr, NULL, NULL);
	return 0;
}

int main(void)
{
	struct vm vm;
	struct kvm_pgtable_mm_ops ops = host_mm_ops;

	pool_reset();
	CHECK_EQ(pgw_set_panic_hook(hook), 0);
	CHECK_EQ(pgw_set_reentry_slot(slot), 0);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	/* A page mapped, so that a lookup converts the tables below the root
	 * (a walk starts from pgd itself). */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA, 4096, 0x100000000ull, KVM_PGTABLE_PROT_R,
					vm_mc(&vm), 0),
		 0);

	/* A panic is still caught and returned; the hook is not called. */
	vm.pgt.mm_ops = &ops;
	ops.phys_to_virt = broken_phys_to_virt;
	fprintf(stderr, "test_hooks: a panic message from a broken host is expected next\n");
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), -PGW_ENOTRECOVERABLE);
	CHECK_EQ(hook_calls, 0);
	ops.phys_to_virt = host_mm_ops.phys_to_virt;

	/* Re-entry is still refused, through the thread-local: the
	 * registered slot is never asked for. */
	struct probe probe = { .pgt = &vm.pgt, .inner = 1 };
	struct kvm_pgtable_walker walker = { .cb = reenter, .arg = &probe, .flags = KVM_PGTABLE_WALK_LEAF };
	CHECK_EQ(kvm_pgtable_walk(&vm.pgt, IPA, 4096, &walker), 0);
	CHECK_EQ(probe.inner, -PGW_EDEADLK);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), 0);
	CHECK_EQ(slot_calls, 0);
	CHECK(shared_slot == NULL);

	/* Withdrawing both is accepted too. */
	CHECK_EQ(pgw_set_panic_hook(NULL), 0);
	CHECK_EQ(pgw_set_reentry_slot(NULL), 0);
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), 0);
	CHECK_EQ(pool_stats().in_use, 0);
	return test_summary("test_hooks");
}

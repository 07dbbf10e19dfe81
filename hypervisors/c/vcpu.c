/* vCPUs: one per physical CPU, their power state as the guest's PSCI
 * calls see it, and how each enters the guest. */
#include "arch.h"
#include "hv.h"

static struct kvm_mmu_memory_cache memcaches[MAX_CPUS];
static struct vcpu vcpus[MAX_CPUS];
/* Each CPU's slot for pgwalk's re-entry check (pgw_set_reentry_slot). */
static void *reentry_slots[MAX_CPUS];

int cpu_index(void)
{
	uint64_t i = read_sysreg(tpidr_el2);

	return i < (uint64_t)MAX_CPUS ? (int)i : MAX_CPUS - 1;
}

void **reentry_slot(void)
{
	return &reentry_slots[cpu_index()];
}

struct vcpu *vcpu_current(void)
{
	return &vcpus[cpu_index()];
}

struct vcpu *vcpu_get(uint64_t index)
{
	if (index >= (uint64_t)MAX_CPUS)
		return NULL;
	struct vcpu *v = &vcpus[index];
	/* Static data is zero: fill in the rest on first use. */
	v->index = (int)index;
	v->memcache = &memcaches[index];
	return v;
}

bool vcpu_claim_on(struct vcpu *v, uint64_t entry, uint64_t context, enum power *found)
{
	int expected = POWER_OFF;

	if (!atomic_compare_exchange_strong(&v->power, &expected, POWER_ON_PENDING)) {
		*found = (enum power)expected;
		return false;
	}
	atomic_store_explicit(&v->entry, entry, memory_order_relaxed);
	atomic_store_explicit(&v->context, context, memory_order_release);
	return true;
}

void vcpu_abort_on(struct vcpu *v) { atomic_store(&v->power, POWER_OFF); }
void vcpu_set_off(struct vcpu *v) { atomic_store(&v->power, POWER_OFF); }

void vcpu_set_frame(struct vcpu *v, struct frame *f)
{
	atomic_fetch_add_explicit(&v->traps, 1, memory_order_relaxed);
	atomic_store_explicit(&v->frame, f, memory_order_relaxed);
}

void vcpu_clear_frame(struct vcpu *v)
{
	atomic_store_explicit(&v->frame, NULL, memory_order_relaxed);
}

static _Noreturn void enter(struct vcpu *v, uint64_t pc, uint64_t x0)
{
	/* Static: the stack is reset under it, and it is read only before
	 * the eret (one per vCPU, so CPUs do not share it). */
	static struct frame entry_frames[MAX_CPUS];
	struct frame *f = &entry_frames[v->index];

	atomic_store(&v->power, POWER_ON);
	atomic_fetch_add_explicit(&v->boots, 1, memory_order_relaxed);
	grace_online(v->index);
	*f = (struct frame){ .elr = pc, .spsr = SPSR_EL1H_MASKED };
	f->x[0] = x0;
	hv_enter_guest(f, (uint64_t)(uintptr_t)__stacks_start + (uint64_t)(v->index + 1) * HV_STACK_SIZE);
}

_Noreturn void vcpu_boot_primary(void)
{
	for (int i = 0; i < MAX_CPUS; i++) {
		struct vcpu *v = vcpu_get((uint64_t)i);
		if (i > 0)
			atomic_store(&v->power, POWER_OFF);
	}
	guest_setup_el2();
	int cases = psci_self_test();
	hv_printf("pgwalk-hv-c: PSCI self-test passed (%d calls with bad arguments answered as PSCI says)\n", cases);
	uint64_t entry = guest_kernel_entry();
	hv_printf("pgwalk-hv-c: vCPU 0 enters the guest at %#lx (DTB %#lx), stage 2 empty\n",
		  entry, (uint64_t)GUEST_DTB);
	atomic_store_explicit(&stats.start, counter(), memory_order_relaxed);
	enter(vcpu_get(0), entry, GUEST_DTB);
}

_Noreturn void vcpu_boot_secondary(int cpu)
{
	struct vcpu *v = vcpu_get((uint64_t)cpu);

	guest_setup_el2();
	uint64_t context = atomic_load_explicit(&v->context, memory_order_acquire);
	uint64_t entry = atomic_load_explicit(&v->entry, memory_order_relaxed);
	hv_printf("pgwalk-hv-c: vCPU %d enters the guest at %#lx\n", cpu, entry);
	enter(v, entry, context);
}

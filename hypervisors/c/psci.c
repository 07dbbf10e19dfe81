/*
 * PSCI for the guest, trapped as SMC (HCR_EL2.TSC). CPU_ON starts the
 * physical CPU through QEMU's own PSCI with the hypervisor's entry point;
 * SYSTEM_OFF ends the run. Every argument is checked: garbage gets a PSCI
 * error code, an unknown function NOT_SUPPORTED.
 */
#include "arch.h"
#include "hv.h"

#define INVALID_PARAMETERS (-2)
#define DENIED (-3)
#define ALREADY_ON (-4)
#define ON_PENDING (-5)
#define INTERNAL_FAILURE (-6)
#define INVALID_ADDRESS (-9)

#define PSCI_VERSION 0x84000000u
#define CPU_SUSPEND_32 0x84000001u
#define CPU_OFF 0x84000002u
#define CPU_ON_32 0x84000003u
#define AFFINITY_INFO_32 0x84000004u
#define MIGRATE_INFO_TYPE 0x84000006u
#define SYSTEM_OFF 0x84000008u
#define SYSTEM_RESET 0x84000009u
#define PSCI_FEATURES 0x8400000au
#define CPU_ON_64 0xc4000003u
#define AFFINITY_INFO_64 0xc4000004u

#define VERSION_1_1 0x00010001
#define NO_TRUSTED_OS 2

static const uint32_t implemented[] = {
	PSCI_VERSION, CPU_OFF, CPU_ON_32, CPU_ON_64, AFFINITY_INFO_32, AFFINITY_INFO_64,
	MIGRATE_INFO_TYPE, SYSTEM_OFF, SYSTEM_RESET, PSCI_FEATURES,
};

/* The vCPU an MPIDR names: Aff0 is the index, every other affinity 0. */
static struct vcpu *target(uint64_t mpidr)
{
	if (mpidr & ~0xffull)
		return NULL;
	return vcpu_get(mpidr);
}

int64_t psci_cpu_on_phys(uint64_t mpidr, int cpu)
{
	return (int64_t)hv_smc(CPU_ON_64, mpidr, (uint64_t)(uintptr_t)hv_secondary_entry, (uint64_t)cpu);
}

static int64_t cpu_on(uint64_t mpidr, uint64_t entry, uint64_t context)
{
	struct vcpu *v = target(mpidr);
	enum power found;

	if (!v)
		return INVALID_PARAMETERS;
	if (entry < GUEST_RAM_BASE || entry >= GUEST_RAM_END || entry % 4)
		return INVALID_ADDRESS;
	if (!vcpu_claim_on(v, entry, context, &found))
		return found == POWER_ON ? ALREADY_ON : found == POWER_ON_PENDING ? ON_PENDING : INTERNAL_FAILURE;
	bool again = atomic_load_explicit(&v->boots, memory_order_relaxed) > 0;
	/* The physical CPU may still be on its way off after the guest's
	 * CPU_OFF (QEMU then says ALREADY_ON): try until it is off. */
	for (int i = 0; i < 1000000; i++) {
		int64_t r = psci_cpu_on_phys(mpidr, v->index);
		if (r == PSCI_SUCCESS) {
			/* The guest brought a CPU back online: its workload
			 * starts now (dirty.c). */
			if (again)
				dirty_arm();
			return PSCI_SUCCESS;
		}
		if (r != ALREADY_ON && r != ON_PENDING)
			break;
		cpu_relax();
	}
	vcpu_abort_on(v);
	return INTERNAL_FAILURE;
}

static int64_t affinity_info(uint64_t mpidr, uint64_t lowest_level)
{
	struct vcpu *v = target(mpidr);

	if (lowest_level != 0 || !v)
		return INVALID_PARAMETERS;
	return atomic_load(&v->power);
}

static int64_t cpu_off(struct vcpu *cpu)
{
	bool others_on = false;

	for (int i = 0; i < MAX_CPUS; i++)
		if (i != cpu->index && atomic_load(&vcpu_get((uint64_t)i)->power) != POWER_OFF)
			others_on = true;
	/* The last CPU does not go off: the machine would be dead. */
	if (!others_on)
		return DENIED;
	grace_offline(cpu->index);
	vcpu_set_off(cpu);
	hv_printf("pgwalk-hv-c: vCPU %d off\n", cpu->index);
	vcpu_clear_frame(cpu);
	int64_t r = (int64_t)hv_smc(CPU_OFF, 0, 0, 0);
	hv_panic("QEMU's PSCI CPU_OFF returned %ld", r);
}

static int64_t system_off(struct vcpu *cpu, bool reset)
{
	hv_printf("pgwalk-hv-c: %s from vCPU %d\n", reset ? "SYSTEM_RESET" : "SYSTEM_OFF", cpu->index);
	if (!check_finish())
		hv_fail();
	if (reset)
		hv_reset();
	hv_power_off();
}

void psci_handle_smc(struct vcpu *cpu, struct frame *frame, uint64_t imm)
{
	uint32_t fid = (uint32_t)frame->x[0];
	/* SMC32 functions take 32-bit arguments. */
	uint64_t mask = (fid & 0x40000000u) ? ~0ull : 0xffffffffull;
	uint64_t a1 = frame->x[1] & mask, a2 = frame->x[2] & mask, a3 = frame->x[3] & mask;
	int64_t ret = PSCI_NOT_SUPPORTED;

	if (imm == 0) {
		switch (fid) {
		case PSCI_VERSION: ret = VERSION_1_1; break;
		case PSCI_FEATURES:
			for (size_t i = 0; i < ARRAY_SIZE(implemented); i++)
				if (implemented[i] == (uint32_t)a1)
					ret = PSCI_SUCCESS;
			break;
		case MIGRATE_INFO_TYPE: ret = NO_TRUSTED_OS; break;
		case CPU_ON_32:
		case CPU_ON_64: ret = cpu_on(a1, a2, a3); break;
		case AFFINITY_INFO_32:
		case AFFINITY_INFO_64: ret = affinity_info(a1, a2); break;
		case CPU_OFF: ret = cpu_off(cpu); break;
		case SYSTEM_OFF: ret = system_off(cpu, false); break;
		case SYSTEM_RESET: ret = system_off(cpu, true); break;
		case CPU_SUSPEND_32:
		default: ret = PSCI_NOT_SUPPORTED;
		}
	}
	if (ret < 0 && ret != PSCI_NOT_SUPPORTED)
		COUNT(psci_errors);
	frame->x[0] = (uint64_t)ret;
}

/* The argument checking, checked before the guest runs: each case is a
 * call the guest could make with garbage, and the PSCI code it must get.
 * None reaches QEMU or changes a vCPU. */
int psci_self_test(void)
{
	static const struct { uint64_t fid, args[3], imm; int64_t want; } cases[] = {
		{ PSCI_VERSION, { 0, 0, 0 }, 0, VERSION_1_1 },
		{ MIGRATE_INFO_TYPE, { 0, 0, 0 }, 0, NO_TRUSTED_OS },
		{ PSCI_FEATURES, { CPU_ON_64, 0, 0 }, 0, PSCI_SUCCESS },
		{ PSCI_FEATURES, { 0x84000001, 0, 0 }, 0, PSCI_NOT_SUPPORTED },
		/* An SMC32 call: the upper half of the argument is not looked at. */
		{ PSCI_FEATURES, { 0x1c4000003ull, 0, 0 }, 0, PSCI_SUCCESS },
		{ 0xc2000000, { 0, 0, 0 }, 0, PSCI_NOT_SUPPORTED },
		{ PSCI_VERSION, { 0, 0, 0 }, 1, PSCI_NOT_SUPPORTED },
		{ CPU_ON_64, { 0x100, GUEST_RAM_BASE, 0 }, 0, INVALID_PARAMETERS },
		{ CPU_ON_64, { 7, GUEST_RAM_BASE, 0 }, 0, INVALID_PARAMETERS },
		{ CPU_ON_64, { 1, 0x1000, 0 }, 0, INVALID_ADDRESS },
		{ CPU_ON_64, { 1, GUEST_RAM_BASE + 2, 0 }, 0, INVALID_ADDRESS },
		{ CPU_ON_32, { 0xffff000000000001ull, 0x100000000ull | 0x1000, 0 }, 0, INVALID_ADDRESS },
		{ AFFINITY_INFO_64, { 1, 1, 0 }, 0, INVALID_PARAMETERS },
		{ AFFINITY_INFO_64, { 0x100000001ull, 0, 0 }, 0, INVALID_PARAMETERS },
		{ AFFINITY_INFO_32, { 0xffffffff00000001ull, 0, 0 }, 0, POWER_OFF },
	};
	struct vcpu *v0 = vcpu_get(0);

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct frame f = { .x = { cases[i].fid, cases[i].args[0], cases[i].args[1], cases[i].args[2] } };
		psci_handle_smc(v0, &f, cases[i].imm);
		if ((int64_t)f.x[0] != cases[i].want)
			hv_panic("PSCI self-test case %zu (%#lx): got %ld, want %ld", i,
				 cases[i].fid, (int64_t)f.x[0], cases[i].want);
	}
	/* The guest's own errors are what the statistics count. */
	atomic_store(&stats.psci_errors, 0);
	return (int)ARRAY_SIZE(cases);
}

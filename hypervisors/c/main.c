/*
 * pgwalk-hv-c: the C twin of hypervisors/rust, an EL2 hypervisor that
 * boots Debian's arm64 Linux on a pgwalk stage-2 table with two vCPUs
 * faulting into it at once. It uses only include/pgwalk.h, and uses it the
 * way KVM's C code does (vm.c, fault.c, dirty.c); boot.S, the link map and
 * the guest are the Rust hypervisor's (hypervisors/common).
 */
#include "arch.h"
#include "hv.h"

/* Entered from boot.S on every CPU boot (CPU 0 from QEMU, the others from
 * QEMU's PSCI CPU_ON), with a stack and the vectors set up, EL2 MMU off. */
_Noreturn void hv_main(uint64_t cpu);
_Noreturn void hv_main(uint64_t cpu)
{
	write_sysreg(tpidr_el2, cpu);
	if (cpu == 0) {
		/* Before the first call: the hyp table is built next. */
		pgw_set_panic_hook(pgwalk_panic_hook);
		pgw_set_reentry_slot(reentry_slot);
		el2_mmu_build();
	}
	el2_mmu_enable();
	if (cpu != 0)
		vcpu_boot_secondary((int)cpu);
	hv_printf("pgwalk-hv-c: EL2 up, hypervisor %#lx..%#lx, guest RAM %#lx..%#lx, EL2 map in %d pgwalk hyp table pages (kvm_pgtable_hyp_*)\n",
		  (uint64_t)HV_BASE, (uint64_t)(HV_BASE + HV_SIZE), (uint64_t)GUEST_RAM_BASE,
		  (uint64_t)GUEST_RAM_END, el2_mmu_table_pages());
	vm_init();
	vcpu_boot_primary();
}

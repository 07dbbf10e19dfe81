//! pgwalk-hv: the smallest EL2 hypervisor that boots a real Linux guest on
//! a pgwalk stage-2 table, with two vCPUs faulting into it at once.
//!
//! Each physical CPU runs one vCPU. The stage-2 table starts empty; every
//! guest access faults to EL2 and goes through pgwalk's fault path
//! (`vm.rs`). PSCI is emulated (`psci.rs`), dirty logging runs rounds while
//! the guest works (`dirty.rs`), and SYSTEM_OFF ends the run with a table
//! check and statistics (`check.rs`, `stats.rs`).

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod arch;
mod check;
mod console;
mod dirty;
mod el2_mmu;
mod exit;
mod fault;
mod grace;
mod guest;
mod layout;
mod memmap;
mod memops;
mod psci;
mod stats;
mod trap;
mod vcpu;
mod vm;

core::arch::global_asm!(include_str!("../../common/boot.S"), options(raw));

/// Entered from `boot.S` on every CPU boot (CPU 0 from QEMU, the others
/// from QEMU's PSCI CPU_ON), with a stack and the vectors set up and the
/// EL2 MMU off.
#[no_mangle]
extern "C" fn hv_main(cpu: u64) -> ! {
    // SAFETY: TPIDR_EL2 is software's: only `vcpu::current_index` reads it.
    unsafe { arch::write_sysreg!("tpidr_el2", cpu) };
    let cpu = cpu as usize;
    if cpu == 0 {
        el2_mmu::build();
    }
    el2_mmu::enable();
    if cpu == 0 {
        hvprintln!(
            "pgwalk-hv: EL2 up, hypervisor {:#x}..{:#x}, guest RAM {:#x}..{:#x}, EL2 map in {} pgwalk hyp table pages",
            layout::HV_BASE,
            layout::HV_BASE + layout::HV_SIZE,
            layout::GUEST_RAM_BASE,
            layout::GUEST_RAM_END,
            el2_mmu::table_pages()
        );
        vm::init();
        vcpu::boot_primary()
    } else {
        vcpu::boot_secondary(cpu)
    }
}

//! The guest's side of EL2: the configuration it runs under, its kernel's
//! entry point, and the exceptions the hypervisor injects into it.

use crate::arch::{isb, read_sysreg, write_sysreg};
use crate::layout::{self, PAGE};
use crate::trap::Frame;
use crate::{exit, hvprintln, vm};

/// HCR_EL2 for the guest. AMO, IMO and FMO stay clear: physical
/// interrupts and SErrors go to the guest directly, through the GIC it
/// drives itself.
const HCR_EL2: u64 = 1 << 0 // VM: stage 2 on
    | 1 << 9 // FB: the guest's TLB and I-cache maintenance is broadcast
    | 0b01 << 10 // BSU: barriers upgraded to inner shareable
    | 1 << 13 // TWI: WFI traps, so an idle guest still comes back to EL2
    | 1 << 19 // TSC: SMC traps (PSCI)
    | 1 << 31 // RW: EL1 is AArch64
    | 1 << 40 // APK: pointer-authentication key registers not trapped
    | 1 << 41; // API: pointer-authentication instructions not trapped

/// Programs this CPU's EL2 for running the guest at EL1 on the stage-2
/// table.
pub fn setup_el2() {
    let counters = (read_sysreg!("pmcr_el0") >> 11) & 0x1f;
    let sve = (read_sysreg!("id_aa64pfr0_el1") >> 32) & 0xf != 0;
    let (midr, mpidr) = (read_sysreg!("midr_el1"), read_sysreg!("mpidr_el1"));
    // SAFETY: these configure only the EL1&0 regime the guest runs in (its
    // stage 2 is the pgwalk table, which maps none of the hypervisor's
    // memory) and the traps, timers and GIC access it gets; none changes
    // the hypervisor's own translation, stack or vectors.
    unsafe {
        write_sysreg!("vtcr_el2", vm::vtcr());
        write_sysreg!("vttbr_el2", vm::vttbr());
        write_sysreg!("hcr_el2", HCR_EL2);
        // The guest sees the CPU's own identification.
        write_sysreg!("vpidr_el2", midr);
        write_sysreg!("vmpidr_el2", mpidr);
        // EL1 uses the physical counter and timer; virtual = physical.
        write_sysreg!("cnthctl_el2", 0b11);
        write_sysreg!("cntvoff_el2", 0);
        write_sysreg!("cnthp_ctl_el2", 0);
        // GICv3: EL1 may use the system-register CPU interface (SRE, DFB,
        // DIB, Enable); the virtual interface stays off.
        // ICC_SRE_EL2, then ICH_HCR_EL2.
        write_sysreg!("S3_4_C12_C9_5", 0xf);
        isb();
        write_sysreg!("S3_4_C12_C11_0", 0);
        // Every PMU event counter belongs to EL1 (HPMN = PMCR_EL0.N); no
        // debug or PMU traps.
        write_sysreg!("mdcr_el2", counters);
        write_sysreg!("hstr_el2", 0);
        // SVE at the smallest vector length, so that saving q0-q31 on a trap
        // saves the whole of z0-z31 (see boot.S).
        if sve {
            // ZCR_EL2.
            write_sysreg!("S3_4_C1_C2_0", 0);
        }
    }
    // The boot protocol: EL1 MMU and caches off.
    // SAFETY: an EL1 register: the guest's alone.
    unsafe { write_sysreg!("sctlr_el1", 0x30d0_0800) };
    isb();
    // Nothing of another VMID's or of a previous boot's may be cached.
    crate::arch::tlbi_vmid();
}

/// Where the kernel starts: its `Image` header lies at GUEST_IMAGE plus
/// its text_offset (guest.sh places it there); the magic and the header's
/// own text_offset must agree.
pub fn kernel_entry() -> u64 {
    let mut off = 0;
    while off <= layout::BLOCK {
        let base = layout::GUEST_IMAGE + off;
        // SAFETY: guest RAM is mapped at EL2 (el2_mmu) and this reads two
        // aligned words of the Image header the loader wrote.
        let (magic, text_offset) = unsafe {
            (
                ((base + 56) as *const u32).read_volatile(),
                ((base + 8) as *const u64).read_volatile(),
            )
        };
        if magic == 0x644d_5241 && text_offset == off {
            return base;
        }
        off += PAGE;
    }
    hvprintln!("pgwalk-hv: no arm64 Image at {:#x}", layout::GUEST_IMAGE);
    exit::fail()
}

/// PSTATE for an exception taken to EL1h, given the PSTATE it interrupts
/// (the architecture's rules, as KVM's exception injection follows them).
fn exception_pstate(old: u64) -> u64 {
    let sctlr = read_sysreg!("sctlr_el1");
    let mut new = 0b0101 | 0xf << 6; // EL1h, DAIF masked
                                     // PAN is set on entry unless SCTLR_EL1.SPAN says keep it.
    if sctlr & (1 << 23) == 0 {
        new |= 1 << 22;
    } else {
        new |= old & (1 << 22);
    }
    // DIT is kept; SSBS comes from SCTLR_EL1.DSSBS.
    new |= old & (1 << 24);
    if sctlr & (1 << 44) != 0 {
        new |= 1 << 12;
    }
    new
}

/// The offset of the synchronous vector for an exception from `spsr`'s
/// mode, taken to EL1.
fn sync_vector(spsr: u64) -> u64 {
    match spsr & 0x1f {
        0b00100 => 0x000,            // EL1t
        0b00101 => 0x200,            // EL1h
        m if m & 0x10 != 0 => 0x600, // AArch32
        _ => 0x400,                  // EL0t
    }
}

fn inject(frame: &mut Frame, esr_el1: u64, far: Option<u64>) {
    // SAFETY: EL1 registers: the guest's alone, set as an exception taken
    // to EL1 would set them.
    unsafe {
        write_sysreg!("esr_el1", esr_el1);
        if let Some(far) = far {
            write_sysreg!("far_el1", far);
        }
        write_sysreg!("elr_el1", frame.elr);
        write_sysreg!("spsr_el1", frame.spsr);
    }
    frame.elr = read_sysreg!("vbar_el1") + sync_vector(frame.spsr);
    frame.spsr = exception_pstate(frame.spsr);
}

fn from_el0(spsr: u64) -> bool {
    spsr & 0xf == 0
}

/// A synchronous external abort on the access that faulted (what the
/// machine gives for an address where nothing is).
pub fn inject_external_abort(frame: &mut Frame, esr_el2: u64, instruction: bool) {
    let same_el = !from_el0(frame.spsr) as u64;
    let (class, iss) = if instruction {
        (0x20 + same_el, 0x10) // IFSC: synchronous external abort
    } else {
        (0x24 + same_el, esr_el2 & (1 << 6) | 0x10) // WnR kept; DFSC: SEA
    };
    inject(
        frame,
        class << 26 | 1 << 25 | iss,
        Some(read_sysreg!("far_el2")),
    );
}

/// An undefined-instruction exception on the instruction that trapped.
pub fn inject_undef(frame: &mut Frame, _esr_el2: u64) {
    inject(frame, 1 << 25, None);
}

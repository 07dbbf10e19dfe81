//! Traps from the guest: the saved frame, the ESR_EL2 classes the
//! hypervisor handles, and what happens on the way back to the guest.

use crate::arch::read_sysreg;
use crate::{dirty, exit, fault, grace, guest, psci, stats, vcpu};

/// What `boot.S` saves on every exception: the guest's general-purpose
/// registers, return state and FP/SIMD registers.
#[repr(C)]
pub struct Frame {
    /// x0..x30.
    pub x: [u64; 31],
    /// ELR_EL2: where the guest resumes.
    pub elr: u64,
    /// SPSR_EL2: the guest's PSTATE.
    pub spsr: u64,
    _pad: u64,
    /// q0..q31.
    pub q: [u128; 32],
    /// FPSR.
    pub fpsr: u64,
    /// FPCR.
    pub fpcr: u64,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 800);
const _: () = assert!(core::mem::offset_of!(Frame, elr) == 248);
const _: () = assert!(core::mem::offset_of!(Frame, q) == 272);

impl Frame {
    /// A frame entering the guest at `pc` in EL1h with DAIF masked and
    /// `x0` as the only argument.
    pub const fn entry(pc: u64, x0: u64) -> Frame {
        let mut x = [0; 31];
        x[0] = x0;
        Frame {
            x,
            elr: pc,
            spsr: SPSR_EL1H_MASKED,
            _pad: 0,
            q: [0; 32],
            fpsr: 0,
            fpcr: 0,
        }
    }
}

/// SPSR for EL1h with D, A, I and F masked.
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// ESR_EL2 exception classes.
mod ec {
    pub const WFX: u64 = 0x01;
    pub const HVC64: u64 = 0x16;
    pub const SMC64: u64 = 0x17;
    pub const IABT_LOW: u64 = 0x20;
    pub const DABT_LOW: u64 = 0x24;
}

/// The vector number of a synchronous exception from a lower EL in
/// AArch64 (boot.S).
const VECTOR_LOWER_SYNC: u64 = 8;

#[no_mangle]
extern "C" fn hv_trap(frame: &mut Frame, vector: u64) {
    if vector != VECTOR_LOWER_SYNC {
        exit::dump("unexpected guest exception vector", Some(frame));
        exit::fail();
    }
    let cpu = vcpu::current();
    cpu.set_frame(frame);
    grace::quiescent(cpu.index);
    let esr = read_sysreg!("esr_el2");
    let class = esr >> 26;
    let mut idle = false;
    match class {
        ec::DABT_LOW | ec::IABT_LOW => fault::handle(frame, esr, class == ec::IABT_LOW),
        ec::SMC64 => {
            // A trapped SMC returns to the SMC itself: step over it.
            frame.elr += 4;
            stats::count(&stats::STATS.smc);
            psci::handle_smc(cpu, frame, esr & 0xffff);
        }
        ec::HVC64 => {
            // No hypervisor services: SMCCC's NOT_SUPPORTED. ELR already
            // points past the HVC.
            stats::count(&stats::STATS.hvc);
            frame.x[0] = psci::NOT_SUPPORTED as u64;
        }
        ec::WFX => {
            frame.elr += 4;
            // ISS.TI: 0 for WFI (trapped: HCR_EL2.TWI); WFE is not trapped.
            idle = esr & 1 == 0;
            stats::count(&stats::STATS.wfi);
        }
        _ => {
            // Nothing else is trapped on purpose: what the guest did is
            // undefined as far as it can tell.
            stats::count(&stats::STATS.undef_injected);
            guest::inject_undef(frame, esr);
        }
    }
    dirty::tick();
    grace::quiescent(cpu.index);
    grace::poll();
    if idle {
        crate::arch::wfi();
    }
    cpu.clear_frame();
}

#[no_mangle]
extern "C" fn hv_exception(frame: &mut Frame, vector: u64) -> ! {
    let what = match vector {
        0..=3 => "EL2 exception on SP_EL0",
        4 => "EL2 synchronous exception (a hypervisor bug)",
        5..=7 => "EL2 asynchronous exception",
        _ => "unexpected guest exception vector",
    };
    exit::dump(what, Some(frame));
    exit::fail()
}

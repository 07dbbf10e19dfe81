//! vCPUs: one per physical CPU, their power state as the guest's PSCI
//! calls see it, and how each enters the guest.

use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};

use crate::arch::{enter_guest, read_sysreg};
use crate::layout::{self, MAX_CPUS};
use crate::trap::Frame;
use crate::{grace, guest, hvprintln};

/// Power state, as PSCI AFFINITY_INFO reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Power {
    /// Running the guest (or the hypervisor on its behalf).
    On = 0,
    /// Off.
    Off = 1,
    /// CPU_ON accepted, the CPU not yet in the guest.
    OnPending = 2,
}

/// One vCPU.
pub struct Vcpu {
    /// Its index, which is also its physical CPU's and its MPIDR Aff0.
    pub index: usize,
    power: AtomicU8,
    entry: AtomicU64,
    context: AtomicU64,
    frame: AtomicPtr<Frame>,
    /// Times this vCPU entered the guest from a boot (CPU_ON included).
    pub boots: AtomicU64,
    /// Traps taken from the guest.
    pub traps: AtomicU64,
    /// Stage-2 faults handled.
    pub faults: AtomicU64,
}

static VCPUS: [Vcpu; MAX_CPUS] = {
    let mut v = [const {
        Vcpu {
            index: 0,
            power: AtomicU8::new(Power::Off as u8),
            entry: AtomicU64::new(0),
            context: AtomicU64::new(0),
            frame: AtomicPtr::new(core::ptr::null_mut()),
            boots: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            faults: AtomicU64::new(0),
        }
    }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        v[i].index = i;
        i += 1;
    }
    v
};

/// The vCPU of the CPU running this code (TPIDR_EL2 holds its index).
pub fn current() -> &'static Vcpu {
    &VCPUS[current_index()]
}

/// The index of the CPU running this code.
pub fn current_index() -> usize {
    (read_sysreg!("tpidr_el2") as usize).min(MAX_CPUS - 1)
}

/// vCPU `i`, if there is one.
pub fn get(i: usize) -> Option<&'static Vcpu> {
    VCPUS.get(i)
}

/// Every vCPU.
pub fn all() -> &'static [Vcpu] {
    &VCPUS
}

impl Vcpu {
    /// Its power state.
    pub fn power(&self) -> Power {
        match self.power.load(Ordering::Acquire) {
            0 => Power::On,
            2 => Power::OnPending,
            _ => Power::Off,
        }
    }

    /// Moves Off -> OnPending with the guest's entry point and context id;
    /// the state found otherwise.
    pub fn claim_on(&self, entry: u64, context: u64) -> Result<(), Power> {
        self.power
            .compare_exchange(
                Power::Off as u8,
                Power::OnPending as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| {
                self.entry.store(entry, Ordering::Relaxed);
                self.context.store(context, Ordering::Release);
            })
            .map_err(|_| self.power())
    }

    /// Back to Off after a CPU_ON that QEMU refused.
    pub fn abort_on(&self) {
        self.power.store(Power::Off as u8, Ordering::Release);
    }

    /// This vCPU is turning itself off.
    pub fn set_off(&self) {
        self.power.store(Power::Off as u8, Ordering::Release);
    }

    /// Remembers the trap frame being handled, for a panic's dump.
    pub fn set_frame(&self, frame: &mut Frame) {
        self.traps.fetch_add(1, Ordering::Relaxed);
        self.frame.store(frame, Ordering::Relaxed);
    }

    /// The trap is over.
    pub fn clear_frame(&self) {
        self.frame.store(core::ptr::null_mut(), Ordering::Relaxed);
    }

    /// The frame of the trap in progress, if any.
    pub fn frame(&self) -> Option<&Frame> {
        let p = self.frame.load(Ordering::Relaxed);
        // SAFETY: a non-null pointer is the frame on this CPU's stack of the
        // trap being handled, set at its start and cleared at its end; the
        // dump that reads it runs on the same CPU, inside that trap.
        unsafe { p.as_ref() }
    }

    fn enter(&self, pc: u64, x0: u64) -> ! {
        self.power.store(Power::On as u8, Ordering::Release);
        self.boots.fetch_add(1, Ordering::Relaxed);
        grace::online(self.index);
        let frame = Frame::entry(pc, x0);
        // SAFETY: `frame` enters the guest at EL1h, masked, at an address
        // the guest asked for (or its kernel's entry); this CPU's stack is
        // reset to its top, and nothing of this call chain is needed again.
        unsafe { enter_guest(&frame, layout::stack_top(self.index)) }
    }
}

/// CPU 0: enters the guest kernel, x0 = the DTB.
pub fn boot_primary() -> ! {
    guest::setup_el2();
    let cases = crate::psci::self_test();
    hvprintln!(
        "pgwalk-hv: PSCI self-test passed ({cases} calls with bad arguments answered as PSCI says)"
    );
    let entry = guest::kernel_entry();
    hvprintln!(
        "pgwalk-hv: vCPU 0 enters the guest at {entry:#x} (DTB {:#x}), stage 2 empty",
        layout::GUEST_DTB
    );
    crate::stats::STATS
        .start
        .store(crate::arch::counter(), Ordering::Relaxed);
    VCPUS[0].enter(entry, layout::GUEST_DTB)
}

/// Another CPU, started by the guest's CPU_ON: enters the guest where it
/// asked, x0 = its context id.
pub fn boot_secondary(cpu: usize) -> ! {
    guest::setup_el2();
    let v = &VCPUS[cpu];
    let context = v.context.load(Ordering::Acquire);
    let entry = v.entry.load(Ordering::Relaxed);
    hvprintln!("pgwalk-hv: vCPU {cpu} enters the guest at {entry:#x}");
    v.enter(entry, context)
}

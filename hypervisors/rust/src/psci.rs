//! PSCI for the guest, trapped as SMC (HCR_EL2.TSC). CPU_ON starts the
//! physical CPU through QEMU's own PSCI with the hypervisor's entry point;
//! SYSTEM_OFF ends the run. Every argument is checked: garbage gets a PSCI
//! error code, an unknown function NOT_SUPPORTED.

use crate::arch::{psci_cpu_off, psci_cpu_on};
use crate::layout::{GUEST_RAM_BASE, GUEST_RAM_END};
use crate::stats::{count, STATS};
use crate::trap::Frame;
use crate::vcpu::{self, Power, Vcpu};
use crate::{check, dirty, exit, grace, hvprintln};

/// PSCI return codes.
pub const SUCCESS: i64 = 0;
/// The function is not implemented.
pub const NOT_SUPPORTED: i64 = -1;
const INVALID_PARAMETERS: i64 = -2;
const DENIED: i64 = -3;
const ALREADY_ON: i64 = -4;
const ON_PENDING: i64 = -5;
const INTERNAL_FAILURE: i64 = -6;
const INVALID_ADDRESS: i64 = -9;

const PSCI_VERSION: u32 = 0x8400_0000;
const CPU_SUSPEND_32: u32 = 0x8400_0001;
const CPU_OFF: u32 = 0x8400_0002;
const CPU_ON_32: u32 = 0x8400_0003;
const AFFINITY_INFO_32: u32 = 0x8400_0004;
const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
const SYSTEM_OFF: u32 = 0x8400_0008;
const SYSTEM_RESET: u32 = 0x8400_0009;
const PSCI_FEATURES: u32 = 0x8400_000a;
const CPU_ON_64: u32 = 0xc400_0003;
const AFFINITY_INFO_64: u32 = 0xc400_0004;

/// PSCI 1.1.
const VERSION_1_1: i64 = 0x0001_0001;
/// MIGRATE_INFO_TYPE: no Trusted OS to migrate.
const NO_TRUSTED_OS: i64 = 2;

/// The functions implemented (what PSCI_FEATURES says yes to).
const IMPLEMENTED: [u32; 10] = [
    PSCI_VERSION,
    CPU_OFF,
    CPU_ON_32,
    CPU_ON_64,
    AFFINITY_INFO_32,
    AFFINITY_INFO_64,
    MIGRATE_INFO_TYPE,
    SYSTEM_OFF,
    SYSTEM_RESET,
    PSCI_FEATURES,
];

/// Handles a trapped SMC; `imm` is its immediate (SMCCC wants 0).
pub fn handle_smc(cpu: &Vcpu, frame: &mut Frame, imm: u64) {
    let fid = frame.x[0] as u32;
    // SMC32 functions take 32-bit arguments.
    let arg = |i: usize| {
        if fid & 0x4000_0000 == 0 {
            frame.x[i] & 0xffff_ffff
        } else {
            frame.x[i]
        }
    };
    let (a1, a2, a3) = (arg(1), arg(2), arg(3));
    let ret = if imm != 0 {
        NOT_SUPPORTED
    } else {
        match fid {
            PSCI_VERSION => VERSION_1_1,
            PSCI_FEATURES => {
                if IMPLEMENTED.contains(&(a1 as u32)) {
                    SUCCESS
                } else {
                    NOT_SUPPORTED
                }
            }
            MIGRATE_INFO_TYPE => NO_TRUSTED_OS,
            CPU_ON_32 | CPU_ON_64 => cpu_on(a1, a2, a3),
            AFFINITY_INFO_32 | AFFINITY_INFO_64 => affinity_info(a1, a2),
            CPU_OFF => cpu_off(cpu),
            SYSTEM_OFF => system_off(cpu),
            SYSTEM_RESET => system_reset(cpu),
            CPU_SUSPEND_32 => NOT_SUPPORTED,
            _ => NOT_SUPPORTED,
        }
    };
    if ret < 0 && ret != NOT_SUPPORTED {
        count(&STATS.psci_errors);
    }
    frame.x[0] = ret as u64;
}

/// The vCPU an MPIDR names: Aff0 is the index, every other affinity 0.
fn target(mpidr: u64) -> Option<&'static Vcpu> {
    if mpidr & !0xff != 0 {
        return None;
    }
    vcpu::get(mpidr as usize)
}

fn cpu_on(mpidr: u64, entry: u64, context: u64) -> i64 {
    let Some(v) = target(mpidr) else {
        return INVALID_PARAMETERS;
    };
    if !(GUEST_RAM_BASE..GUEST_RAM_END).contains(&entry) || entry % 4 != 0 {
        return INVALID_ADDRESS;
    }
    match v.claim_on(entry, context) {
        Ok(()) => {}
        Err(Power::On) => return ALREADY_ON,
        Err(Power::OnPending) => return ON_PENDING,
        Err(Power::Off) => return INTERNAL_FAILURE,
    }
    let again = v.boots.load(core::sync::atomic::Ordering::Relaxed) > 0;
    // The physical CPU may still be on its way off after the guest's
    // CPU_OFF (QEMU then says ALREADY_ON): try until it is off.
    for _ in 0..1_000_000 {
        let r = psci_cpu_on(mpidr, v.index);
        match r {
            SUCCESS => {
                if again {
                    // The guest brought a CPU back online: its workload
                    // starts now (see dirty.rs).
                    dirty::arm();
                }
                return SUCCESS;
            }
            ALREADY_ON | ON_PENDING => core::hint::spin_loop(),
            _ => break,
        }
    }
    v.abort_on();
    INTERNAL_FAILURE
}

fn affinity_info(mpidr: u64, lowest_level: u64) -> i64 {
    if lowest_level != 0 {
        return INVALID_PARAMETERS;
    }
    match target(mpidr) {
        Some(v) => v.power() as i64,
        None => INVALID_PARAMETERS,
    }
}

fn cpu_off(cpu: &Vcpu) -> i64 {
    let others_on = vcpu::all()
        .iter()
        .any(|v| v.index != cpu.index && v.power() != Power::Off);
    if !others_on {
        // The last CPU does not go off: the machine would be dead.
        return DENIED;
    }
    grace::offline(cpu.index);
    cpu.set_off();
    hvprintln!("pgwalk-hv: vCPU {} off", cpu.index);
    cpu.clear_frame();
    let r = psci_cpu_off();
    panic!("QEMU's PSCI CPU_OFF returned {r}");
}

fn system_off(cpu: &Vcpu) -> i64 {
    hvprintln!("pgwalk-hv: SYSTEM_OFF from vCPU {}", cpu.index);
    if check::finish() {
        exit::power_off()
    }
    exit::fail()
}

fn system_reset(cpu: &Vcpu) -> i64 {
    hvprintln!("pgwalk-hv: SYSTEM_RESET from vCPU {}", cpu.index);
    if check::finish() {
        exit::reset()
    }
    exit::fail()
}

/// Checks the argument checking before the guest runs: each case is a call
/// the guest could make with garbage, and the PSCI code it must get. None
/// of them reaches QEMU or changes a vCPU. Panics on a wrong answer.
pub fn self_test() -> usize {
    let v0 = vcpu::get(0).expect("vCPU 0");
    let ram = GUEST_RAM_BASE;
    #[rustfmt::skip]
    let cases: [(u64, [u64; 3], u64, i64); 15] = [
        (PSCI_VERSION as u64, [0; 3], 0, VERSION_1_1),
        (MIGRATE_INFO_TYPE as u64, [0; 3], 0, NO_TRUSTED_OS),
        (PSCI_FEATURES as u64, [CPU_ON_64 as u64, 0, 0], 0, SUCCESS),
        (PSCI_FEATURES as u64, [0x8400_0001, 0, 0], 0, NOT_SUPPORTED),
        // An SMC32 call: the upper half of the argument is not looked at.
        (PSCI_FEATURES as u64, [0x1_c400_0003, 0, 0], 0, SUCCESS),
        (0xc200_0000, [0; 3], 0, NOT_SUPPORTED),
        (PSCI_VERSION as u64, [0; 3], 1, NOT_SUPPORTED),
        (CPU_ON_64 as u64, [0x100, ram, 0], 0, INVALID_PARAMETERS),
        (CPU_ON_64 as u64, [7, ram, 0], 0, INVALID_PARAMETERS),
        (CPU_ON_64 as u64, [1, 0x1000, 0], 0, INVALID_ADDRESS),
        (CPU_ON_64 as u64, [1, ram + 2, 0], 0, INVALID_ADDRESS),
        (CPU_ON_32 as u64, [0xffff_0000_0000_0001, 0x1_0000_0000 | 0x1000, 0], 0, INVALID_ADDRESS),
        (AFFINITY_INFO_64 as u64, [1, 1, 0], 0, INVALID_PARAMETERS),
        (AFFINITY_INFO_64 as u64, [0x1_0000_0001, 0, 0], 0, INVALID_PARAMETERS),
        (AFFINITY_INFO_32 as u64, [0xffff_ffff_0000_0001, 0, 0], 0, Power::Off as i64),
    ];
    for (i, &(fid, args, imm, want)) in cases.iter().enumerate() {
        let mut frame = Frame::entry(0, fid);
        frame.x[1..4].copy_from_slice(&args);
        handle_smc(v0, &mut frame, imm);
        let got = frame.x[0] as i64;
        assert_eq!(
            got, want,
            "PSCI self-test case {i} ({fid:#x} {args:x?}): got {got}, want {want}"
        );
    }
    // The guest's own errors are what the statistics count.
    STATS
        .psci_errors
        .store(0, core::sync::atomic::Ordering::Relaxed);
    cases.len()
}

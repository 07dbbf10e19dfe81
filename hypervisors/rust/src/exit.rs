//! How a run ends: the panic handler, the register dump for unexpected
//! exceptions, and the two ways out of QEMU (PSCI SYSTEM_OFF for success,
//! a semihosting exit status for failure).

use crate::arch::{psci_system_off, psci_system_reset, read_sysreg, semihost_exit};
use crate::console;
use crate::hvprintln;
use crate::trap::Frame;

/// Exit status QEMU reports when the hypervisor fails.
pub const FAILURE: u64 = 1;

/// Powers the machine off through QEMU's PSCI: QEMU exits with status 0.
pub fn power_off() -> ! {
    psci_system_off();
    hvprintln!("pgwalk-hv: PSCI SYSTEM_OFF returned");
    semihost_exit(FAILURE)
}

/// Resets the machine through QEMU's PSCI.
pub fn reset() -> ! {
    psci_system_reset();
    hvprintln!("pgwalk-hv: PSCI SYSTEM_RESET returned");
    semihost_exit(FAILURE)
}

/// Stops QEMU with a failure status.
pub fn fail() -> ! {
    hvprintln!("pgwalk-hv: FAILED, stopping");
    semihost_exit(FAILURE)
}

/// Prints the exception registers and, if there is one, a saved frame.
pub fn dump(what: &str, frame: Option<&Frame>) {
    console::panicking();
    let cpu = crate::vcpu::current_index();
    hvprintln!("pgwalk-hv: ==== {what} on CPU {cpu} ====");
    hvprintln!(
        "  ESR_EL2 {:#018x}  FAR_EL2 {:#018x}  HPFAR_EL2 {:#018x}",
        read_sysreg!("esr_el2"),
        read_sysreg!("far_el2"),
        read_sysreg!("hpfar_el2")
    );
    hvprintln!(
        "  ELR_EL2 {:#018x}  SPSR_EL2 {:#018x}  VBAR_EL2 {:#018x}",
        read_sysreg!("elr_el2"),
        read_sysreg!("spsr_el2"),
        read_sysreg!("vbar_el2")
    );
    if let Some(f) = frame {
        hvprintln!("  frame: ELR {:#018x}  SPSR {:#018x}", f.elr, f.spsr);
        for (i, pair) in f.x.chunks(2).enumerate() {
            match pair {
                [a, b] => hvprintln!("  x{:<2} {:#018x}  x{:<2} {:#018x}", 2 * i, a, 2 * i + 1, b),
                [a] => hvprintln!("  x{:<2} {:#018x}", 2 * i, a),
                _ => {}
            }
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::panicking();
    hvprintln!("pgwalk-hv: PANIC: {info}");
    dump("panic", crate::vcpu::current().frame());
    fail()
}

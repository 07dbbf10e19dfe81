//! Output on the PL011 the guest also uses (passed through: the
//! hypervisor only ever writes whole lines to its data register).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

const UART_BASE: usize = 0x0900_0000;
const UART_DR: usize = 0x00;
const UART_FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// One line at a time across CPUs; a panicking CPU takes it regardless.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());
static PANICKING: AtomicBool = AtomicBool::new(false);

struct Uart;

impl Uart {
    fn putc(&mut self, c: u8) {
        let fr = (UART_BASE + UART_FR) as *const u32;
        let dr = (UART_BASE + UART_DR) as *mut u32;
        // SAFETY: the PL011's registers are mapped as Device memory at EL2
        // (el2_mmu) and at their physical address before the MMU is on;
        // reading FR and writing DR have no effect on memory.
        unsafe {
            while fr.read_volatile() & FR_TXFF != 0 {}
            dr.write_volatile(u32::from(c));
        }
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.putc(b'\r');
            }
            self.putc(b);
        }
        Ok(())
    }
}

/// Prints one formatted line (the `hvprintln!` macro).
pub fn print_line(args: fmt::Arguments<'_>) {
    if PANICKING.load(Ordering::Relaxed) {
        let _ = writeln!(Uart, "{args}");
        return;
    }
    let _guard = LOCK.lock();
    let _ = writeln!(Uart, "{args}");
}

/// From now on, print without taking the line lock (its holder may be the
/// CPU that failed).
pub fn panicking() {
    PANICKING.store(true, Ordering::Relaxed);
}

/// Prints a line on the console, prefixed by nothing: callers say
/// `pgwalk-hv:` themselves where a line must be recognisable.
#[macro_export]
macro_rules! hvprintln {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}

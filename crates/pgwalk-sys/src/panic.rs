//! What a panic becomes in the freestanding build.
//!
//! The hosted library catches panics at the boundary (`errno::guard`). A
//! freestanding one (`no_std`, `panic = "abort"` targets such as
//! `aarch64-unknown-none`) cannot unwind, and returning an error would mean
//! running on after a broken invariant in the middle of a table update. So
//! its panic handler stops there: it formats the message into a buffer on
//! its own stack (no allocator), hands it with the location to the hook the
//! C side registered, and, should the hook return or none be registered,
//! spins forever rather than return into the code that panicked. Only the
//! first panic reaches the hook: one raised while it is reported (the hook
//! calling the library, which its contract forbids) spins at once, rather
//! than call the hook again and recurse until the stack runs out.

use core::ffi::{c_char, c_int};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of a panic message handed to the hook, its terminating NUL
/// included; a longer message is cut short.
pub const PGW_PANIC_MESSAGE_MAX: usize = 256;

/// What the panic hook receives (freestanding builds). The strings are the
/// library's, valid only during the call.
#[repr(C)]
pub struct pgw_panic_info {
    /// The library's source file that panicked, `file_len` bytes, not
    /// NUL-terminated (print it with `%.*s`); "" when unknown.
    pub file: *const c_char,
    /// Bytes at `file`.
    pub file_len: usize,
    /// Its line (1-based), 0 when unknown.
    pub line: u32,
    /// Its column (1-based), 0 when unknown.
    pub column: u32,
    /// The panic message, `message_len` bytes followed by a NUL, cut at
    /// `PGW_PANIC_MESSAGE_MAX - 1` bytes (perhaps inside a UTF-8 sequence).
    pub message: *const c_char,
    /// Bytes at `message`, the NUL not counted.
    pub message_len: usize,
}

/// The C side's panic hook. It must not return: print what it gets, stop
/// the CPU or the machine. The library's state is broken (a table may be
/// half updated, an entry left locked): do not call the library from it.
#[allow(non_camel_case_types)]
pub type pgw_panic_hook_fn = Option<unsafe extern "C" fn(info: *const pgw_panic_info)>;

/// The registered hook, 0 for none.
static HOOK: AtomicUsize = AtomicUsize::new(0);

/// Registers the hook a freestanding build's panic handler calls (one for
/// the whole library, any CPU may call it), or with NULL withdraws it.
/// The hook receives a `struct pgw_panic_info` and must not return; if it
/// does, or none is registered, the panicking CPU spins forever and never
/// returns into the library or its caller. It is called for the first
/// panic only: a later one (the hook calling the library, which panics
/// again, or another CPU panicking after it) spins without calling it.
///
/// Panics come from host callbacks breaking their contract
/// (`phys_to_virt` returning NULL or misaligned memory, allocations not
/// aligned to their size) or from a library bug. The hosted library
/// (built with `std`) catches them instead and returns
/// `-PGW_ENOTRECOVERABLE`: it accepts the registration and never calls the
/// hook.
///
/// Always returns 0.
///
/// # Safety
///
/// `hook` is NULL or a function that may be called from any CPU that calls
/// the library, for as long as the library may be called.
#[no_mangle]
pub unsafe extern "C" fn pgw_set_panic_hook(hook: pgw_panic_hook_fn) -> c_int {
    HOOK.store(hook.map_or(0, |f| f as usize), Ordering::Release);
    0
}

#[cfg(not(feature = "std"))]
mod handler {
    use core::fmt::{self, Write};
    use core::panic::PanicInfo;
    use core::sync::atomic::AtomicBool;

    use super::*;

    /// Set by the first panic, before anything else it does. Any panic that
    /// finds it set spins at once: one raised inside the report (the
    /// message's formatting, the hook calling the library), or another
    /// CPU's once the store reaches it. Read and written with plain loads
    /// and stores, not an atomic swap: the handler may run where exclusives
    /// do not work (EL2 with the MMU off, where memory is Device), and a
    /// panic nested in the report runs on the same CPU, after the store (two
    /// CPUs panicking at the same instant may both report).
    static REPORTING: AtomicBool = AtomicBool::new(false);

    /// The message, formatted on the panicking CPU's stack.
    struct Message {
        buf: [u8; PGW_PANIC_MESSAGE_MAX],
        len: usize,
    }

    impl Write for Message {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = PGW_PANIC_MESSAGE_MAX - 1 - self.len;
            let n = s.len().min(room);
            self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }

    #[panic_handler]
    fn panic(info: &PanicInfo<'_>) -> ! {
        if REPORTING.load(Ordering::Relaxed) {
            spin();
        }
        REPORTING.store(true, Ordering::Relaxed);
        let mut message = Message {
            buf: [0; PGW_PANIC_MESSAGE_MAX],
            len: 0,
        };
        // The writer never fails; a message it cuts short is still useful.
        let _ = write!(message, "{}", info.message());
        let (file, line, column) = info
            .location()
            .map_or(("", 0, 0), |l| (l.file(), l.line(), l.column()));
        let report = pgw_panic_info {
            file: file.as_ptr().cast(),
            file_len: file.len(),
            line,
            column,
            message: message.buf.as_ptr().cast(),
            message_len: message.len,
        };
        let hook = HOOK.load(Ordering::Acquire);
        if hook != 0 {
            // SAFETY: a non-zero value was stored by `pgw_set_panic_hook`
            // from a function pointer of exactly this type.
            let hook: unsafe extern "C" fn(*const pgw_panic_info) =
                unsafe { core::mem::transmute(hook) };
            // SAFETY: the registered hook may be called from any CPU
            // (`pgw_set_panic_hook`'s contract); `report` and the strings it
            // points to live until the call returns.
            unsafe { hook(&report) };
        }
        spin();
    }

    /// Where a panicking CPU stays: never back into the code that
    /// panicked.
    fn spin() -> ! {
        loop {
            core::hint::spin_loop();
        }
    }
}

//! Refusing a call on a table from inside a call on the same table.
//!
//! While the library runs a call on a table it calls back into C: a
//! walker's visitor, the `mm_ops` callbacks, the MMU's TLB callbacks,
//! `force_pte_cb`. The walker meanwhile holds pointers into the table's
//! pages, and a shared walker may hold an entry locked for
//! break-before-make. A call on the same table from such a callback would
//! free pages the walker reads next (a use-after-free), or spin forever on
//! the walker's own locked entry. So it is refused with `-PGW_EDEADLK` before
//! it looks at the table.
//!
//! Each thread keeps the stack of tables its calls in progress are on: a
//! list linked through frames on the library's own stack, its top in a
//! slot of the thread's own. What a call costs is one slot read and two
//! writes, and a list walk as deep as the callbacks nest (usually empty).
//! Nothing is shared between threads, so walkers on other threads never see
//! each other: two shared walkers on one table, which the caller's read
//! lock allows, are not refused. What this does not catch is a callback
//! that hands the table to another thread and waits for it; that thread's
//! call breaks the lock the caller holds, which is the caller's contract.
//!
//! Where the slot is: in the hosted build, a thread-local. A freestanding
//! build has no threads of its own to hang one on, so the C side says
//! where each CPU's slot is (`pgw_set_reentry_slot`: a function returning
//! the calling CPU's pointer-sized slot, as the kernel finds its per-CPU
//! data). Until it does, the check is off: a re-entrant call goes ahead,
//! as it would in the kernel.

use core::cell::Cell;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::abi::{kvm_pgtable, kvm_pte_t};
use crate::errno::PGW_EDEADLK;

/// One call in progress on this thread: the table it is on, known both by
/// the `struct kvm_pgtable` it was given and by that table's root, so that a
/// copy of the structure is recognised too.
struct Frame {
    pgt: *const kvm_pgtable,
    pgd: *const kvm_pte_t,
    outer: *const Frame,
}

/// Whether a call on this thread, whose innermost is `frame`, is on the
/// table `pgt`, or on one with the root `pgd` (when not NULL).
fn in_progress(mut frame: *const Frame, pgt: *const kvm_pgtable, pgd: *const kvm_pte_t) -> bool {
    while !frame.is_null() {
        // SAFETY: every frame in the list lives in the stack frame of an
        // `on_table` call of this thread that has not returned: it is pushed
        // after being placed there and popped (by `Popped`'s drop, also when
        // unwinding) before that call returns, so the list only ever links
        // live frames, innermost first.
        let f = unsafe { &*frame };
        if f.pgt == pgt || (!pgd.is_null() && f.pgd == pgd) {
            return true;
        }
        frame = f.outer;
    }
    false
}

/// Restores the list's previous top when the call is over, even by a panic.
struct Popped<'s> {
    top: &'s Cell<*const Frame>,
    outer: *const Frame,
}

impl Drop for Popped<'_> {
    fn drop(&mut self) {
        self.top.set(self.outer);
    }
}

/// Runs `f` as a call on the table `pgt` whose root is `pgd` (NULL for a
/// table being initialised): `-PGW_EDEADLK` without running it when a call
/// on the same table is already in progress on this thread.
#[inline(always)]
pub(crate) fn on_table<R>(
    pgt: *const kvm_pgtable,
    pgd: *const kvm_pte_t,
    f: impl FnOnce() -> Result<R, c_int>,
) -> Result<R, c_int> {
    let Some(top) = slot::current() else {
        return f();
    };
    // SAFETY: `slot::current` returns this thread's own slot, valid for
    // the thread's life (longer than this call) and read or written by no
    // other thread; `Cell` has the layout of the pointer it holds.
    let top = unsafe { &*top };
    let outer = top.get();
    if in_progress(outer, pgt, pgd) {
        return Err(-PGW_EDEADLK);
    }
    let frame = Frame { pgt, pgd, outer };
    top.set(&frame);
    // The same slot is restored, even if another was registered meanwhile.
    let _popped = Popped { top, outer };
    f()
}

/// The C side's function returning the calling CPU's slot.
#[allow(non_camel_case_types)]
pub type pgw_reentry_slot_fn = Option<unsafe extern "C" fn() -> *mut *mut c_void>;

/// The registered slot function (freestanding builds), 0 for none.
static SLOT_FN: AtomicUsize = AtomicUsize::new(0);

/// Registers where the calling CPU keeps the innermost call in progress,
/// so that a freestanding build can refuse a call on a table from inside a
/// call on the same table (`-PGW_EDEADLK`, see `struct kvm_pgtable`), or
/// with NULL withdraws it. `slot` returns the address of a pointer-sized,
/// pointer-aligned slot, NULL-initialised, of the CPU (or thread) it runs
/// on: the library reads and writes it only between entering and leaving
/// one of its calls, which must not migrate or be interrupted by another
/// call on the same CPU (EL2 with interrupts masked qualifies). Register it
/// before the first call on a table, or not at all: without it the check
/// is off and such a call goes ahead, as in the kernel. A slot returning
/// NULL or a misaligned address also leaves the check off for that call.
///
/// The hosted library (built with `std`) keeps the slot in a thread-local
/// of its own: it accepts the registration and never calls `slot`.
///
/// Always returns 0.
///
/// # Safety
///
/// `slot` is NULL or a function that may be called from any CPU that calls
/// the library and always returns that CPU's slot (or NULL), valid for as
/// long as the library may be called.
#[no_mangle]
pub unsafe extern "C" fn pgw_set_reentry_slot(slot: pgw_reentry_slot_fn) -> c_int {
    SLOT_FN.store(slot.map_or(0, |f| f as usize), Ordering::Release);
    0
}

#[cfg(feature = "std")]
mod slot {
    use core::ptr;

    use super::*;

    std::thread_local! {
        /// The innermost call in progress on this thread, or NULL.
        static INNERMOST: Cell<*const Frame> = const { Cell::new(ptr::null()) };
    }

    /// This thread's slot.
    #[inline(always)]
    pub(super) fn current() -> Option<*const Cell<*const Frame>> {
        // Without a destructor the thread-local lives as long as its
        // thread, so the pointer outlives any one call.
        Some(INNERMOST.with(|top| top as *const Cell<*const Frame>))
    }
}

#[cfg(not(feature = "std"))]
mod slot {
    use super::*;

    /// The calling CPU's slot, from the C side's function; None when none
    /// is registered (or it gave no usable slot): the check is off.
    pub(super) fn current() -> Option<*const Cell<*const Frame>> {
        let f = SLOT_FN.load(Ordering::Acquire);
        if f == 0 {
            return None;
        }
        // SAFETY: a non-zero value was stored by `pgw_set_reentry_slot`
        // from a function pointer of exactly this type.
        let f: unsafe extern "C" fn() -> *mut *mut c_void = unsafe { core::mem::transmute(f) };
        // SAFETY: the registered function may be called from any CPU that
        // calls the library (`pgw_set_reentry_slot`'s contract).
        let p = unsafe { f() };
        (!p.is_null() && p.is_aligned()).then_some(p as *const Cell<*const Frame>)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use core::ptr;

    use super::*;

    fn table(n: usize) -> *const kvm_pgtable {
        ptr::without_provenance(0x1000 * n)
    }

    fn root(n: usize) -> *const kvm_pte_t {
        ptr::without_provenance(0x10_0000 * n)
    }

    #[test]
    fn nested_calls_on_one_table_are_refused() {
        let r = on_table(table(1), root(1), || {
            assert_eq!(on_table(table(1), root(1), || Ok(())), Err(-PGW_EDEADLK));
            // A copy of the structure, same root.
            assert_eq!(on_table(table(2), root(1), || Ok(())), Err(-PGW_EDEADLK));
            // The same structure being initialised again.
            assert_eq!(
                on_table(table(1), ptr::null(), || Ok(())),
                Err(-PGW_EDEADLK)
            );
            // Another table: allowed, and refused again inside it.
            on_table(table(3), root(3), || {
                assert_eq!(on_table(table(1), root(1), || Ok(())), Err(-PGW_EDEADLK));
                assert_eq!(on_table(table(3), root(3), || Ok(())), Err(-PGW_EDEADLK));
                Ok(7)
            })
        });
        assert_eq!(r, Ok(7));
        // Over: the same call is allowed again.
        assert_eq!(on_table(table(1), root(1), || Ok(1)), Ok(1));
    }

    #[test]
    fn a_panic_ends_the_call() {
        let caught = std::panic::catch_unwind(|| {
            let _ = on_table::<()>(table(4), root(4), || panic!("inside"));
        });
        assert!(caught.is_err());
        assert_eq!(on_table(table(4), root(4), || Ok(2)), Ok(2));
    }

    #[test]
    fn other_threads_are_not_refused() {
        let r = on_table(table(5), root(5), || {
            let t = (table(5) as usize, root(5) as usize);
            let other = std::thread::spawn(move || {
                on_table(
                    ptr::without_provenance(t.0),
                    ptr::without_provenance(t.1),
                    || Ok(3),
                )
            });
            Ok(other.join().unwrap())
        });
        assert_eq!(r, Ok(Ok(3)));
    }
}

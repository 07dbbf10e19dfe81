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
//! thread-local. What a call costs is one thread-local read and two writes,
//! and a list walk as deep as the callbacks nest (usually empty). Nothing is
//! shared between threads, so walkers on other threads never see each other:
//! two shared walkers on one table, which the caller's read lock allows, are
//! not refused. What this does not catch is a callback that hands the table
//! to another thread and waits for it; that thread's call breaks the lock
//! the caller holds, which is the caller's contract.

use core::cell::Cell;
use core::ffi::c_int;
use core::ptr;

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

std::thread_local! {
    /// The innermost call in progress on this thread, or NULL.
    static INNERMOST: Cell<*const Frame> = const { Cell::new(ptr::null()) };
}

/// Whether a call on this thread is on the table `pgt`, or on one with the
/// root `pgd` (when not NULL).
fn in_progress(pgt: *const kvm_pgtable, pgd: *const kvm_pte_t) -> bool {
    let mut frame = INNERMOST.with(Cell::get);
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
struct Popped(*const Frame);

impl Drop for Popped {
    fn drop(&mut self) {
        INNERMOST.with(|top| top.set(self.0));
    }
}

/// Runs `f` as a call on the table `pgt` whose root is `pgd` (NULL for a
/// table being initialised): `-PGW_EDEADLK` without running it when a call
/// on the same table is already in progress on this thread.
pub(crate) fn on_table<R>(
    pgt: *const kvm_pgtable,
    pgd: *const kvm_pte_t,
    f: impl FnOnce() -> Result<R, c_int>,
) -> Result<R, c_int> {
    if in_progress(pgt, pgd) {
        return Err(-PGW_EDEADLK);
    }
    let outer = INNERMOST.with(Cell::get);
    let frame = Frame { pgt, pgd, outer };
    INNERMOST.with(|top| top.set(&frame));
    let _popped = Popped(outer);
    f()
}

#[cfg(all(test, feature = "std"))]
mod tests {
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

//! The view of a table kept from one call to the next.
//!
//! Every `kvm_pgtable_*` and `pgw_stage2_*` call reads its `struct
//! kvm_pgtable` again, because C may have changed it since the last one,
//! and building the view from what it read (decoding `mmu->vtcr`, checking
//! the geometry against `ia_bits` and `start_level`, the root's alignment,
//! assembling the `Stage2`) was a third of a one-page call. A VM's calls
//! find the same values every time. So each thread keeps the last view it
//! built together with its key: everything the view is a function of (see
//! `host::Key`), the root by its virtual address and the conversion
//! callbacks. A call whose key equals the kept one uses the kept view; any
//! other builds its own and keeps that. Every field is read and every
//! required callback checked on every call, and only what follows from
//! them is reused: the decoded geometry, and the root's physical address,
//! which `struct kvm_pgtable_mm_ops` promises `virt_to_phys` keeps giving
//! for a page while it is handed out (so a hit costs no conversion call).
//!
//! A call that runs while the kept view is in use, from inside a callback
//! of a call on another table or from a signal handler that interrupts
//! one, finds the slot busy and builds a view of its own, leaving the slot
//! alone. The freestanding build has no thread-local to keep a view in and
//! builds one on every call.

use core::ffi::c_int;

use crate::host::{Key, View};

#[cfg(feature = "std")]
mod slot {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{compiler_fence, AtomicBool, Ordering::Relaxed, Ordering::SeqCst};

    use super::*;

    /// A thread's kept value (a [`View`], or anything a test keeps) and its
    /// key.
    pub(crate) struct Slot<T> {
        /// Set while a call uses `kept`: a call that finds it set leaves
        /// `kept` alone, so nothing ever reads it half-written or writes
        /// it while another holds it.
        busy: AtomicBool,
        kept: UnsafeCell<Option<(Key, T)>>,
    }

    impl<T> Slot<T> {
        pub(crate) const fn new() -> Slot<T> {
            Slot {
                busy: AtomicBool::new(false),
                kept: UnsafeCell::new(None),
            }
        }

        /// Runs `f` on the kept value if its key is `key`, else on one from
        /// `build` (kept when the slot is free, for the next call).
        ///
        /// Only the thread that owns the slot may call this (the slot is a
        /// thread-local's).
        #[inline(always)]
        pub(crate) fn with<R>(
            &self,
            key: Key,
            build: impl FnOnce() -> Result<T, c_int>,
            f: impl FnOnce(&mut T) -> Result<R, c_int>,
        ) -> Result<R, c_int> {
            let mut own;
            let mut _done = None;
            // `f` has one call site, below, so that it inlines there.
            let v = if self.busy.load(Relaxed) {
                own = build()?;
                &mut own
            } else {
                // A signal handler running between the load and this store
                // finishes before it and leaves `busy` clear, as it found
                // it.
                self.busy.store(true, Relaxed);
                compiler_fence(SeqCst);
                // Cleared however the call ends, a panic caught at the
                // boundary included.
                _done = Some(Done(&self.busy));
                // SAFETY: `busy` was clear and is now set by this call, and
                // only the owning thread reaches the slot: no other
                // reference to `kept` exists until `_done` clears it, after
                // the last use of this one.
                let kept = unsafe { &mut *self.kept.get() };
                match kept {
                    Some((k, v)) if k.same(&key) => v,
                    _ => &mut kept.insert((key, build()?)).1,
                }
            };
            f(v)
        }
    }

    /// Clears a slot's `busy` when dropped.
    struct Done<'a>(&'a AtomicBool);

    impl Drop for Done<'_> {
        fn drop(&mut self) {
            compiler_fence(SeqCst);
            self.0.store(false, Relaxed);
        }
    }

    std::thread_local! {
        // Neither `Key` nor `View` needs dropping (addresses and plain
        // values, the table in a `ManuallyDrop`): the thread-local has no
        // destructor to register.
        pub(super) static KEPT: Slot<View> = const { Slot::new() };
    }
}

/// Runs `f` on the view whose key is `key`: the kept one if it has that
/// key, else one from `build` (kept for the next call when it built).
///
/// `build` must build the view `key` describes: equal keys, equal views.
#[cfg(feature = "std")]
#[inline(always)]
pub(crate) fn with_cached<R>(
    key: Key,
    build: impl FnOnce() -> Result<View, c_int>,
    f: impl FnOnce(&mut View) -> Result<R, c_int>,
) -> Result<R, c_int> {
    // Only the slot's address is taken inside `with`: the call itself then
    // inlines here, where a closure holding it made `with` a function call
    // of its own with the call's state passed through memory. The slot has
    // no destructor, so it lives as long as the thread, past this call.
    let slot = slot::KEPT.with(|slot| slot as *const slot::Slot<View>);
    // SAFETY: this thread's slot, alive for the thread's life (above).
    unsafe { &*slot }.with(key, build, f)
}

/// Runs `f` on a view from `build`: the freestanding build keeps none.
#[cfg(not(feature = "std"))]
#[inline(always)]
pub(crate) fn with_cached<R>(
    _key: Key,
    build: impl FnOnce() -> Result<View, c_int>,
    f: impl FnOnce(&mut View) -> Result<R, c_int>,
) -> Result<R, c_int> {
    f(&mut build()?)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use core::cell::Cell;

    use super::slot::Slot;
    use super::*;

    std::thread_local! {
        static TEST: Slot<u32> = const { Slot::new() };
    }

    /// `TEST.with(key, ..)`, counting the values built in `built`.
    fn call(key: u64, value: u32, built: &Cell<u32>) -> Result<u32, c_int> {
        TEST.with(|s| {
            s.with(
                Key::test(key),
                || {
                    built.set(built.get() + 1);
                    Ok(value)
                },
                |v| Ok(*v),
            )
        })
    }

    #[test]
    fn the_same_key_reuses_and_another_builds() {
        let built = Cell::new(0);
        assert_eq!(call(1, 10, &built), Ok(10));
        assert_eq!(call(1, 11, &built), Ok(10), "kept");
        assert_eq!(built.get(), 1);
        assert_eq!(call(2, 20, &built), Ok(20), "another key builds");
        assert_eq!(call(1, 12, &built), Ok(12), "and replaces the kept one");
        assert_eq!(built.get(), 3);
    }

    #[test]
    fn a_failed_build_keeps_nothing() {
        let built = Cell::new(0);
        assert_eq!(call(5, 50, &built), Ok(50));
        let r = TEST.with(|s| s.with(Key::test(6), || Err(-22), |v: &mut u32| Ok(*v)));
        assert_eq!(r, Err(-22));
        assert_eq!(
            call(5, 51, &built),
            Ok(50),
            "the earlier value is still kept"
        );
        assert_eq!(built.get(), 1);
    }

    #[test]
    fn a_call_inside_a_call_builds_its_own() {
        let built = Cell::new(0);
        assert_eq!(call(7, 70, &built), Ok(70));
        let r = TEST.with(|s| {
            s.with(
                Key::test(7),
                || Ok(0),
                |outer| {
                    // Inside: the slot is busy, so even the same key builds,
                    // and nothing the outer call holds is touched.
                    assert_eq!(call(7, 71, &built), Ok(71));
                    assert_eq!(call(8, 80, &built), Ok(80));
                    *outer += 1;
                    Ok(*outer)
                },
            )
        });
        assert_eq!(r, Ok(71), "the outer call's value, changed only by it");
        assert_eq!(built.get(), 3);
        assert_eq!(
            call(7, 72, &built),
            Ok(71),
            "kept, as the outer call left it"
        );
    }

    #[test]
    fn a_panic_frees_the_slot() {
        let built = Cell::new(0);
        assert_eq!(call(9, 90, &built), Ok(90));
        let caught = std::panic::catch_unwind(|| {
            TEST.with(|s| {
                s.with(
                    Key::test(9),
                    || Ok(0),
                    |_: &mut u32| -> Result<(), c_int> { panic!("inside") },
                )
            })
        });
        assert!(caught.is_err());
        assert_eq!(
            call(9, 91, &built),
            Ok(90),
            "not busy: the kept value is used"
        );
        assert_eq!(built.get(), 1);
    }
}

//! What the crate needs of the machine's concurrency, named in one place:
//! the atomic that table entries are made of, and how a walker waits.
//!
//! Built with `--cfg loom`, both come from loom, so that the loom model
//! (`tests/loom.rs`) runs the real walker, the real entry protocol and the
//! real operations under loom's scheduler, which explores every
//! interleaving and every value the memory orderings let a load return.
//! The few other things loom cannot model are switched off beside them:
//! `VisitCtx::entry_ptr` (a raw pointer into a loom atomic means nothing)
//! and the `host` module (`HeapMemory`'s pages are `core` atomics, which a
//! walker on loom's must never be handed).

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::AtomicU64;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU64;

/// Waits a moment before a walker tries an entry again (another walker's
/// update is in progress).
#[inline(always)]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    // Loom runs one thread at a time: a spinning thread must hand over, or
    // the walker it waits for never runs.
    #[cfg(loom)]
    loom::thread::yield_now();
}

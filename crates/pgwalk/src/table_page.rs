//! The one way into a table page's memory.
//!
//! The walker, the operations that build tables off to the side, and the
//! frees all reach entries through a [`TablePage`]. Building one is the
//! only `unsafe` step: it is where a physical address, and the host's word
//! that it is a live table page, become a slice of entries. Everything
//! after that is a bounds-checked, atomic access, so a wrong index is a
//! panic and never a stray write, and two walkers touching one entry are
//! never a data race.

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use crate::addr::PhysAddr;
use crate::descriptor::Pte;
use crate::memory::MemoryOps;
use crate::sync::AtomicU64;

/// The entries of one table page (or of a concatenated root: several
/// contiguous pages) for as long as `'a`.
#[derive(Clone, Copy)]
pub(crate) struct TablePage<'a> {
    entries: &'a [AtomicU64],
    pa: PhysAddr,
}

impl<'a> TablePage<'a> {
    /// The `entries` entries of the table at `pa`.
    ///
    /// # Safety
    ///
    /// `pa` is a table page that `mm` handed out (or the start of a root
    /// block from [`MemoryOps::zalloc_pages_exact`]) holding at least
    /// `entries` 8-byte entries, and it stays allocated for `'a`: the caller's walk is one
    /// that nobody frees it under (an exclusive walker frees only what it
    /// has left; a concurrent one runs inside [`MemoryOps::shared_walk`],
    /// whose grace period keeps unlinked pages alive), or the caller owns
    /// the page alone (allocated and not linked yet, or unlinked and past
    /// its grace period).
    #[inline(always)]
    pub(crate) unsafe fn new<M: MemoryOps>(mm: &'a M, pa: PhysAddr, entries: usize) -> Self {
        // SAFETY: `phys_to_virt` is the host's mapping of `pa`, which meets
        // this function's contract (the caller's).
        unsafe { Self::mapped(mm.phys_to_virt(pa), pa, entries) }
    }

    /// [`new`](Self::new) for the root of a table, through
    /// [`MemoryOps::root_to_virt`].
    ///
    /// # Safety
    ///
    /// As [`new`](Self::new), and `pa` is the root of a table that `mm`
    /// serves.
    #[inline(always)]
    pub(crate) unsafe fn new_root<M: MemoryOps>(mm: &'a M, pa: PhysAddr, entries: usize) -> Self {
        // SAFETY: `MemoryOps` promises that `root_to_virt` maps a root to
        // the memory `phys_to_virt` maps it to; the rest is the caller's.
        unsafe { Self::mapped(mm.root_to_virt(pa), pa, entries) }
    }

    /// The entries at `base`, the host's mapping of the table page at `pa`.
    ///
    /// # Safety
    ///
    /// `base` is what the host's `phys_to_virt` (or `root_to_virt`, for a
    /// root) gives for `pa`, and `pa` meets [`new`](Self::new)'s contract.
    #[inline(always)]
    unsafe fn mapped(base: NonNull<u8>, pa: PhysAddr, entries: usize) -> Self {
        // SAFETY: `MemoryOps` promises that `phys_to_virt` maps a page it
        // handed out to memory valid for reads and writes of its whole size
        // and 8-byte aligned, for as long as it is allocated; the caller
        // promises `base` is that mapping of such a page, `entries` long,
        // allocated for `'a`. Every access goes through `AtomicU64`, so
        // other walkers (and the MMU) changing entries meanwhile is no data
        // race.
        let entries =
            unsafe { core::slice::from_raw_parts(base.cast::<AtomicU64>().as_ptr(), entries) };
        TablePage { entries, pa }
    }

    /// The page's physical address.
    #[inline(always)]
    pub(crate) fn pa(&self) -> PhysAddr {
        self.pa
    }

    /// Every entry.
    #[inline(always)]
    pub(crate) fn entries(&self) -> &'a [AtomicU64] {
        self.entries
    }

    /// Entry `idx`.
    #[inline(always)]
    pub(crate) fn entry(&self, idx: usize) -> &'a AtomicU64 {
        &self.entries[idx]
    }

    /// Reads entry `idx`.
    #[inline(always)]
    pub(crate) fn load<D: Pte>(&self, idx: usize, order: Ordering) -> D {
        D::from_bits(self.entry(idx).load(order))
    }

    /// Writes entry `idx` of a page nobody else can reach yet (or any more):
    /// no release ordering needed, since linking the page publishes it.
    #[inline(always)]
    pub(crate) fn store_private<D: Pte>(&self, idx: usize, d: D) {
        self.entry(idx).store(d.bits(), Ordering::Relaxed);
    }
}

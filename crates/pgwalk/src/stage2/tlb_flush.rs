//! The TLB invalidation an operation owes its caller.

use crate::addr::Ipa;
use crate::memory::MemoryOps;

/// A TLB invalidation owed after restricting permissions, for the table
/// it came from.
///
/// Stale TLB entries keep granting the old permissions until invalidated.
/// The token borrows the table that issued it and invalidates *that*
/// table's range: [`flush`](Self::flush) does it now, and dropping the token
/// does it too, so that a token forgotten in a variable still flushes.
/// [`ignore`](Self::ignore) is the one way out, for a caller that
/// invalidates more widely itself (a whole-VMID flush after a batch).
///
/// ```
/// # #[cfg(feature = "std")] {
/// use pgwalk::{geometry::Geometry, host::HeapMemory, Ipa, PhysAddr, Prot, Stage2};
///
/// let mut table = Stage2::with_geometry(Geometry::for_ia_bits(40, 40)?, HeapMemory::new(64))?;
/// table.exclusive().map(Ipa(0), 0x1000, PhysAddr(0x8000_0000), Prot::RW, &mut ())?;
/// let before = table.mm().stats().tlbi_range;
/// let shared = table.shared();
/// shared.wrprotect(Ipa(0), 0x1000)?.flush();
/// assert_eq!(table.mm().stats().tlbi_range, before + 1);
/// # }
/// # Ok::<(), pgwalk::Error>(())
/// ```
#[must_use = "stale TLB entries keep the old permissions until flushed"]
pub struct TlbFlush<'t, M: MemoryOps> {
    mm: &'t M,
    ipa: Ipa,
    size: u64,
}

impl<'t, M: MemoryOps> TlbFlush<'t, M> {
    /// The invalidation of `size` bytes at `ipa` owed through `mm`.
    pub(crate) fn new(mm: &'t M, ipa: Ipa, size: u64) -> Self {
        TlbFlush { mm, ipa, size }
    }
}

impl<M: MemoryOps> TlbFlush<'_, M> {
    /// The range whose TLB entries are stale.
    pub fn range(&self) -> (Ipa, u64) {
        (self.ipa, self.size)
    }

    /// Invalidates the range, through the host operations of the table
    /// that issued the token.
    pub fn flush(self) {
        // `Drop` does the work.
    }

    /// Drops the obligation without invalidating: the caller invalidates
    /// more widely itself.
    pub fn ignore(self) {
        core::mem::forget(self);
    }
}

impl<M: MemoryOps> Drop for TlbFlush<'_, M> {
    fn drop(&mut self) {
        self.mm.tlb_flush_vmid_range(self.ipa, self.size);
    }
}

impl<M: MemoryOps> core::fmt::Debug for TlbFlush<'_, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlbFlush")
            .field("ipa", &self.ipa)
            .field("size", &self.size)
            .finish()
    }
}

//! The access flag: setting it on an access-flag fault
//! (`kvm_pgtable_stage2_mkyoung`), and testing and clearing it for aging
//! (`kvm_pgtable_stage2_test_clear_young`).
//!
//! No TLB invalidation either way: a stale entry with the flag clear costs
//! one spurious fault, and one with it set only delays the next aging.

use super::args::check_range;
use super::Handle;
use crate::addr::Ipa;
use crate::capability::{Exclusive, HandlesFault, Shared, Walked};
use crate::error::Error;
use crate::fault::TableOutcome;
use crate::memory::MemoryOps;
use crate::walk::Span;

impl<M: MemoryOps> Handle<'_, Shared, M> {
    /// Sets the access flag on the leaf at `ipa` (`kvm_pgtable_stage2_mkyoung`).
    /// Returns whether a valid leaf was there.
    pub fn mkyoung(&self, ipa: Ipa) -> Result<bool, Error> {
        let mut found = false;
        let (Walked::Completed, _) =
            self.update_leaves(Span::Page(ipa), |d| d.with_young(true), |_, _| found = true)?;
        Ok(found)
    }

    /// Whether any leaf in `size` bytes at `ipa` has its access flag set
    /// (`kvm_pgtable_stage2_test_clear_young` with `mkold` false).
    pub fn test_young(&self, ipa: Ipa, size: u64) -> Result<bool, Error> {
        self.young(ipa, size, false)
    }

    /// Clears the access flag of every leaf in `size` bytes at `ipa`, and
    /// says whether any had it set (`kvm_pgtable_stage2_test_clear_young`
    /// with `mkold` true).
    pub fn clear_young(&self, ipa: Ipa, size: u64) -> Result<bool, Error> {
        self.young(ipa, size, true)
    }

    fn young(&self, ipa: Ipa, size: u64, clear: bool) -> Result<bool, Error> {
        let range = check_range(self.geometry(), ipa, size)?;
        let mut young = false;
        let (Walked::Completed, _) = self.update_leaves(
            Span::Checked(range),
            |d| if clear { d.with_young(false) } else { d },
            |d, _| young |= d.young(),
        )?;
        Ok(young)
    }
}

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// The shared handle's `test_young`, for the holder of
    /// the write lock (as the kernel's aging holds it).
    pub fn test_young(&mut self, ipa: Ipa, size: u64) -> Result<bool, Error> {
        self.young_alone(ipa, size, false)
    }

    /// The shared handle's `clear_young`, for the holder of
    /// the write lock, as the kernel's aging runs it: a plain store per
    /// young leaf instead of a compare-and-swap. The same result.
    pub fn clear_young(&mut self, ipa: Ipa, size: u64) -> Result<bool, Error> {
        self.young_alone(ipa, size, true)
    }

    fn young_alone(&self, ipa: Ipa, size: u64, clear: bool) -> Result<bool, Error> {
        let range = check_range(self.geometry(), ipa, size)?;
        let mut young = false;
        self.update_leaves_alone(
            range,
            |d| if clear { d.with_young(false) } else { d },
            |d| young |= d.young(),
        )?;
        Ok(young)
    }
}

impl<M: MemoryOps> Handle<'_, HandlesFault, M> {
    /// Sets the access flag on the leaf at `ipa`, for an access-flag fault:
    /// [`Fixed`](TableOutcome::Fixed) if it set it,
    /// [`Spurious`](TableOutcome::Spurious) if it was set already,
    /// [`Retry`](TableOutcome::Retry) if there was no valid leaf or another
    /// walker changed it first.
    pub fn mkyoung(&self, ipa: Ipa) -> Result<TableOutcome, Error> {
        let (walked, changed) =
            self.update_leaves(Span::Page(ipa), |d| d.with_young(true), |_, _| {})?;
        Ok(TableOutcome::from_walk(walked, changed))
    }
}

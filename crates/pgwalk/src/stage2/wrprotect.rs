//! Write protection (`kvm_pgtable_stage2_wrprotect`), as dirty logging
//! starts a round.

use super::args::check_range;
use super::{Handle, TlbFlush};
use crate::addr::Ipa;
use crate::capability::{Shared, Walked};
use crate::error::Error;
use crate::memory::MemoryOps;

impl<'t, M: MemoryOps> Handle<'t, Shared, M> {
    /// Removes write permission from every leaf in `size` bytes at `ipa`
    /// (`kvm_pgtable_stage2_wrprotect`). The TLB still holds writable
    /// entries: the returned [`TlbFlush`] invalidates them, at once or when
    /// dropped. On an error, the leaves before the failure may be
    /// write-protected, and their range is invalidated before returning.
    pub fn wrprotect(&self, ipa: Ipa, size: u64) -> Result<TlbFlush<'t, M>, Error> {
        check_range(self.geometry(), ipa, size)?;
        let flush = TlbFlush::new(self.mm(), ipa, size);
        let (Walked::Completed, _) =
            self.update_leaves(ipa, size, |d| d.with_writable(false), |_, _| {})?;
        Ok(flush)
    }
}

//! The kernel's access-flag fault (`kvm_pgtable_stage2_mkyoung`): it
//! answers the entry as it was.

use super::Kvm;
use crate::addr::Ipa;
use crate::capability::HandlesFault;
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::fault::TableOutcome;
use crate::memory::MemoryOps;
use crate::walk::Span;

impl<M: MemoryOps> Kvm<'_, HandlesFault, M> {
    /// Sets the access flag on the leaf translating `ipa`, as the fault
    /// path does, and returns the outcome with the leaf as it was before
    /// (the kernel returns that leaf, or 0 when there was none or another
    /// walker changed it first: [`TableOutcome::Retry`]).
    #[inline]
    pub fn mkyoung(&self, ipa: Ipa) -> Result<(TableOutcome, Descriptor), Error> {
        let mut seen = Descriptor::INVALID;
        let (walked, changed) =
            self.handle
                .update_leaves(Span::Page(ipa), |d| d.with_young(true), |d, _| seen = d)?;
        let outcome = TableOutcome::from_walk(walked, changed);
        let old = match outcome {
            TableOutcome::Retry => Descriptor::INVALID,
            _ => seen,
        };
        Ok((outcome, old))
    }
}

//! Relaxing permissions on a permission fault
//! (`kvm_pgtable_stage2_relax_perms`): dirty logging's write faults, and
//! execute faults on pages mapped non-executable until first run.

use super::Handle;
use crate::addr::Ipa;
use crate::capability::{Concurrent, HandlesFault, Shared, Walked};
use crate::descriptor::Grant;
use crate::error::Error;
use crate::fault::TableOutcome;
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::walk::Span;

impl<C: Concurrent, M: MemoryOps> Handle<'_, C, M> {
    /// Relaxes permissions on the leaf at `ipa`, then invalidates its TLB
    /// entry on this CPU, so that the faulting vCPU does not fault again on
    /// a stale, stricter translation (as the kernel's relax_perms does, also
    /// after a lost race).
    #[inline(always)]
    fn relax(&self, ipa: Ipa, prot: Prot) -> Result<(Walked<C>, bool), Error> {
        if prot.intersects(!(Prot::RW | Prot::X | Prot::PX | Prot::UX)) {
            return Err(Error::InvalidProt("relax_perms adds R, W and X only"));
        }
        let grant = grant(prot);
        let mut level = None;
        let (walked, changed) = self.update_leaves(
            Span::Page(ipa),
            |d| d.granted(grant),
            |_, l| level = Some(l),
        )?;
        // Only this CPU faulted on the stricter entry; another that holds it
        // faults once more and finds it relaxed. After a race the level is
        // not known any more.
        match (&walked, level) {
            (Walked::Completed, Some(level)) => {
                self.mm().tlb_flush_vmid_ipa_local(ipa, Some(level))
            }
            (Walked::ResumeGuest(_), _) => self.mm().tlb_flush_vmid_ipa_local(ipa, None),
            (Walked::Completed, None) => {}
        }
        Ok((walked, changed))
    }
}

/// What relaxing to `prot` adds. Relaxing never takes a level away: as
/// sets of exception levels, the leaf's execution becomes the union of
/// what it allowed and what `prot` asks for.
#[inline(always)]
fn grant(prot: Prot) -> Grant {
    Grant::new(
        prot.contains(Prot::R),
        prot.contains(Prot::W),
        prot.el1_exec(),
        prot.el0_exec(),
    )
}

impl<M: MemoryOps> Handle<'_, Shared, M> {
    /// Adds the permissions in `prot` (R, W, X only) to the leaf at `ipa`
    /// and invalidates its TLB entry (`kvm_pgtable_stage2_relax_perms`).
    pub fn relax_perms(&self, ipa: Ipa, prot: Prot) -> Result<(), Error> {
        let (Walked::Completed, _) = self.relax(ipa, prot)?;
        Ok(())
    }
}

impl<M: MemoryOps> Handle<'_, HandlesFault, M> {
    /// Adds the permissions in `prot` (R, W, X only) to the leaf at `ipa`,
    /// for a permission fault (`kvm_pgtable_stage2_relax_perms`).
    /// [`Fixed`](TableOutcome::Fixed) if it changed the leaf,
    /// [`Spurious`](TableOutcome::Spurious) if it already allowed as much,
    /// [`Retry`](TableOutcome::Retry) if there was no valid leaf or another
    /// walker changed it first.
    #[inline]
    pub fn relax_perms(&self, ipa: Ipa, prot: Prot) -> Result<TableOutcome, Error> {
        let (walked, changed) = self.relax(ipa, prot)?;
        Ok(TableOutcome::from_walk(walked, changed))
    }
}

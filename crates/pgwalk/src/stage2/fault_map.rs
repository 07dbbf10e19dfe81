//! The fault path: installing and relaxing mappings from a vCPU's fault
//! handler, beside other vCPUs doing the same.
//!
//! Nothing here retries. A lost race, an entry that changed, or a mapping
//! that is already there ends the walk and resumes the guest; the outcome
//! says which, as a [`FaultOutcome`].

use super::map::Target;
use super::unlinked::{free_now, table_for};
use super::Handle;
use crate::action::{Action, Conflict, Walked};
use crate::addr::{Ipa, PhysAddr};
use crate::capability::HandlesFault;
use crate::error::Error;
use crate::fault::FaultOutcome;
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::walk::WalkFlags;

impl<M: MemoryOps> Handle<'_, HandlesFault, M> {
    /// Maps `size` bytes at `ipa` to `phys` for a faulting vCPU, with the
    /// largest block that fits (`kvm_pgtable_stage2_map` with
    /// `KVM_PGTABLE_WALK_HANDLE_FAULT | KVM_PGTABLE_WALK_SHARED`).
    ///
    /// - [`FaultOutcome::Fixed`]: this call installed (part of) the mapping.
    /// - [`FaultOutcome::Spurious`]: the same mapping (up to permissions,
    ///   which [`relax_perms`](Self::relax_perms) changes) was already there
    ///   for the whole range.
    /// - [`FaultOutcome::Retry`]: another walker changed the entry first;
    ///   resume the guest.
    ///
    /// Breaks go through break-before-make; a subtree a block replaces goes
    /// to the host's [`free_unlinked_table`](MemoryOps::free_unlinked_table).
    pub fn map(
        &self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        cache: &mut M::Cache,
        flags: WalkFlags,
    ) -> Result<FaultOutcome, Error> {
        let target = Target::map(self.geometry(), ipa, size, phys, prot)?;
        let flags = flags & (WalkFlags::SKIP_CMO | WalkFlags::SKIP_BBM_TLBI)
            | WalkFlags::LEAF
            | WalkFlags::TABLE_PRE;
        let mut installed = false;
        let walked = self.walk_internal::<Error, _>(
            ipa,
            size,
            flags,
            // Inlined into the walker's loops, and `ctx` handed to nothing
            // out of line, so that the context stays in registers and what
            // follows from the level folds away at the last one (see
            // `map::install`).
            #[inline(always)]
            |ctx| {
                let old = ctx.old();
                let level = ctx.level();
                if old.is_locked() {
                    return Err(Conflict::Raced.into());
                }
                if let Some(new) = target.leaf_for(ctx) {
                    if old.is_valid() && !new.differs_beyond_perms(old) {
                        // Already there (up to permissions, which relax_perms
                        // changes): nothing to do for this entry.
                        return Ok(Action::Continue);
                    }
                    if old.is_table(level) {
                        let broken = ctx.try_break()?;
                        ctx.make(broken, new);
                        // Handed over only once the block is in: had the
                        // break been undone (a host callback unwinding),
                        // the subtree would still be linked.
                        let child = old.output_address(ctx.geometry().granule());
                        // SAFETY: the block replaced the only descriptor linking `child`
                        // (break-before-make, so its range left the TLB first); walkers
                        // already inside it are what the host's grace period waits for.
                        unsafe { ctx.mm().free_unlinked_table(child, level.next()) };
                    } else {
                        ctx.try_set(new)?;
                    }
                    installed = true;
                    return Ok(Action::Continue);
                }
                if old.is_table(level) {
                    return Ok(Action::Continue);
                }
                let mm = ctx.mm();
                let child = table_for(mm, cache, ctx.geometry(), level, old)?;
                if let Err(conflict) = ctx.try_link_table(child) {
                    // SAFETY: `child` was built by this visit and the link
                    // failed, so nobody ever saw it: it can go at once.
                    unsafe { free_now(mm, ctx.geometry(), child, level.next()) };
                    return Err(conflict.into());
                }
                Ok(Action::Continue)
            },
        )?;
        Ok(match walked {
            Walked::Completed if installed => FaultOutcome::Fixed,
            Walked::Completed => FaultOutcome::Spurious,
            Walked::ResumeGuest(reason) => FaultOutcome::from_resume(reason),
        })
    }

    /// Adds the permissions in `prot` (R, W, X only) to the leaf at `ipa`,
    /// for a permission fault (`kvm_pgtable_stage2_relax_perms`).
    /// [`Fixed`](FaultOutcome::Fixed) if it changed the leaf,
    /// [`Spurious`](FaultOutcome::Spurious) if it already allowed as much,
    /// [`Retry`](FaultOutcome::Retry) if there was no valid leaf or another
    /// walker changed it first.
    pub fn relax_perms(&self, ipa: Ipa, prot: Prot) -> Result<FaultOutcome, Error> {
        Ok(match self.relax(ipa, prot)? {
            (Walked::Completed, true) => FaultOutcome::Fixed,
            (Walked::Completed, false) => FaultOutcome::Spurious,
            (Walked::ResumeGuest(reason), _) => FaultOutcome::from_resume(reason),
        })
    }

    /// Sets the access flag on the leaf at `ipa`, for an access-flag fault.
    pub fn mkyoung(&self, ipa: Ipa) -> Result<FaultOutcome, Error> {
        let page = self.geometry().granule().size();
        let (walked, changed) = self.update_leaves(
            Ipa(ipa.get() & !(page - 1)),
            page,
            WalkFlags::empty(),
            |d| d.with_young(true),
            |_, _| {},
        )?;
        Ok(match (walked, changed) {
            (Walked::Completed, true) => FaultOutcome::Fixed,
            (Walked::Completed, false) => FaultOutcome::Spurious,
            (Walked::ResumeGuest(reason), _) => FaultOutcome::from_resume(reason),
        })
    }
}

//! The fault path's map: installing a mapping from a vCPU's fault handler,
//! beside other vCPUs doing the same (`kvm_pgtable_stage2_map` with
//! `KVM_PGTABLE_WALK_HANDLE_FAULT | KVM_PGTABLE_WALK_SHARED`).
//!
//! Nothing here retries. A lost race, an entry that changed, or a mapping
//! that is already there ends the walk and resumes the guest; the outcome
//! says which, as a [`TableOutcome`].

use super::map::Target;
use super::options::MapOptions;
use super::tables::{free_now, table_for};
use super::Handle;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Action, Conflict, HandlesFault};
use crate::error::Error;
use crate::fault::TableOutcome;
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::walk::{Span, WalkFlags};

impl<M: MemoryOps> Handle<'_, HandlesFault, M> {
    /// Maps `size` bytes at `ipa` to `phys` for a faulting vCPU, with the
    /// largest block that fits (`kvm_pgtable_stage2_map` with
    /// `KVM_PGTABLE_WALK_HANDLE_FAULT | KVM_PGTABLE_WALK_SHARED`).
    ///
    /// - [`TableOutcome::Fixed`]: this call changed the table: it installed
    ///   (part of) the mapping, or split a block the range cuts. What the
    ///   call creates is exactly what was asked: a split keeps the rest of
    ///   the block as it was, and the pages of the range get `prot`, so a
    ///   write fault on a write-protected block (dirty logging) is served by
    ///   one call.
    /// - [`TableOutcome::Spurious`]: the same mapping (up to permissions,
    ///   which [`relax_perms`](Self::relax_perms) changes) was already there,
    ///   at the level `map` would use, for the whole range.
    /// - [`TableOutcome::Retry`]: another walker changed the entry first;
    ///   resume the guest.
    ///
    /// Breaks go through break-before-make; a subtree a block replaces goes
    /// to the host's [`free_unlinked_table`](MemoryOps::free_unlinked_table).
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use pgwalk::fault::TableOutcome;
    /// use pgwalk::{geometry::Geometry, host::HeapMemory, Ipa, PhysAddr, Prot, SpinStage2, Stage2};
    ///
    /// let table = SpinStage2::new(Stage2::with_geometry(Geometry::for_ia_bits(40, 40)?, HeapMemory::new(64))?);
    /// // A vCPU faulted at IPA 0x4000_1234: map its page, under the read lock.
    /// let guard = table.read();
    /// let vcpu = guard.fault_handler();
    /// match vcpu.map(Ipa(0x4000_1000), 0x1000, PhysAddr(0x8000_1000), Prot::RW, &mut ())? {
    ///     TableOutcome::Fixed | TableOutcome::Spurious => {} // resume the guest
    ///     TableOutcome::Retry => {}                          // raced: it faults again
    /// }
    /// // Another vCPU faulting on the same page finds it done.
    /// assert_eq!(vcpu.map(Ipa(0x4000_1000), 0x1000, PhysAddr(0x8000_1000), Prot::RW, &mut ())?, TableOutcome::Spurious);
    /// # }
    /// # Ok::<(), pgwalk::Error>(())
    /// ```
    pub fn map(
        &self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
    ) -> Result<TableOutcome, Error> {
        self.map_with(ipa, size, phys, prot, pool, MapOptions::new())
    }

    /// [`map`](Self::map), with [`MapOptions`] other than the defaults.
    pub fn map_with(
        &self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
        opts: MapOptions,
    ) -> Result<TableOutcome, Error> {
        let (target, range) = Target::map(self.geometry(), ipa, size, phys, prot, &opts)?;
        let flags = opts.walk_flags() | WalkFlags::LEAF | WalkFlags::TABLE_PRE;
        let mut installed = false;
        // Where the block this walk split ends: the pages a split makes
        // are this call's, so they get the requested permissions, where a
        // leaf that was already there keeps its own.
        let mut split_until = 0u64;
        let walked = self.run_span::<Error, _>(
            Span::Checked(range),
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
                    let split_here = ctx.addr().get() < split_until;
                    if old.is_valid() && !new.differs_beyond_perms(old) && !split_here {
                        // Already there (up to permissions, which relax_perms
                        // changes): nothing to do for this entry.
                        return Ok(Action::Continue);
                    }
                    if old == new {
                        // A page of the split that already is what was asked.
                        return Ok(Action::Continue);
                    }
                    if old.is_table(level) {
                        let broken = ctx.try_break()?;
                        ctx.make(broken, new);
                        // Handed over only once the block is in: had the
                        // break been undone (a host callback unwinding),
                        // the subtree would still be linked.
                        let child = old.output_address(ctx.geometry().format());
                        // SAFETY: the block replaced the only descriptor linking `child`
                        // (break-before-make, so its range left the TLB first); walkers
                        // already inside it are what the host's grace period waits for.
                        unsafe { ctx.mm().free_unlinked_table(child, level) };
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
                let child = table_for(mm, pool, ctx.geometry(), level, old)?;
                if let Err(conflict) = ctx.try_link_table(child) {
                    // SAFETY: `child` was built by this visit and the link
                    // failed, so nobody ever saw it: it can go at once.
                    unsafe { free_now(mm, ctx.geometry(), child, level) };
                    return Err(conflict.into());
                }
                // A table now hangs here (over an empty entry, or splitting a
                // block): the table changed, even if the leaf below turns out
                // to need no change.
                installed = true;
                if old.is_valid() {
                    // The walk only moves forward, and a split inside a
                    // split ends no later than the outer one.
                    split_until = split_until.max(ctx.entry_addr().get() + ctx.entry_size());
                }
                Ok(Action::Continue)
            },
        )?;
        Ok(TableOutcome::from_walk(walked, installed))
    }
}

//! Mapping a range into an EL2 table (`kvm_pgtable_hyp_map`).
//!
//! As in Linux's `hyp_map_walker`: a leaf visitor installs the largest
//! block or page that size and alignment allow, and where none fits it
//! hangs an empty table and lets the walker descend into it. An entry that
//! already holds the very leaf is left alone; one that differs only in its
//! software bits gets the new ones.
//!
//! Linux's visitor meets a conflicting mapping halfway through the walk:
//! it WARNs and returns `-EINVAL` for a page, and hangs a table over a
//! block that does not fit (losing the block). pgwalk checks the whole
//! range first and refuses an overlap with [`Error::AlreadyMapped`] before
//! anything changes.

use super::{HypHandle, HypTlb};
use crate::addr::{PhysAddr, Va};
use crate::capability::{Action, Exclusive, Visit, Walked};
use crate::descriptor::{HypAttrs, HypDescriptor};
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::stage2::check_map;
use crate::stage2::tables::alloc_table;
use crate::walk::{CheckedRange, Span, VisitCtx, VisitKind, WalkFlags};

/// What a map installs: the leaf for `phys` at the walk's first address
/// `start`, onwards, with `attrs`.
#[derive(Clone, Copy)]
struct Target {
    start: u64,
    phys: u64,
    attrs: HypAttrs,
}

impl Target {
    /// The leaf to install at this entry, if one fits here: a level that
    /// holds leaves, covered by the range, the output address aligned to it.
    #[inline(always)]
    fn leaf_for<M: MemoryOps + HypTlb>(
        &self,
        ctx: &VisitCtx<'_, Exclusive, M, HypDescriptor>,
    ) -> Option<HypDescriptor> {
        let level = ctx.level();
        if !ctx.geometry().leaf_allowed(level) || !ctx.covers_entry() {
            return None;
        }
        let pa = self.phys + (ctx.addr().get() - self.start);
        if !ctx.output_aligned(pa) {
            return None;
        }
        let format = ctx.geometry().format();
        Some(HypDescriptor::leaf(PhysAddr(pa), level, format, self.attrs))
    }
}

impl<M: MemoryOps + HypTlb> HypHandle<'_, M> {
    /// Maps `size` bytes at `va` to `phys` with `prot`, using the largest
    /// blocks that size and alignment allow (`kvm_pgtable_hyp_map`). New
    /// table pages come from `pool`; the call ends with
    /// [`HypTlb::publish`] when it stored anything.
    ///
    /// `prot` follows Linux's `hyp_set_prot_attr` (see
    /// [`HypAttrs::from_prot`]): readable, never writable and executable at
    /// once, never executable device memory.
    ///
    /// Refused before anything changes: a `va`, `size` or `phys` that is
    /// not page-aligned, an empty range, a range beyond the VA size, an
    /// output beyond the output size, a protection the regime cannot
    /// express, and a range that overlaps a valid mapping other than the
    /// very leaves this call would install ([`Error::AlreadyMapped`], with
    /// the first such address). Mapping the same range again with the same
    /// arguments changes nothing; with other software bits only, it updates
    /// them.
    ///
    /// On [`Error::NoMemory`] the part of the range before the failing
    /// entry is mapped and the rest is as it was (no empty table is left);
    /// mapping again after topping up the pool finishes the job.
    pub fn map(
        &mut self,
        va: Va,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
    ) -> Result<(), Error> {
        let geometry = self.geometry();
        let range = check_map(geometry, crate::Ipa(va.get()), size, phys)?;
        let target = Target {
            start: va.get(),
            phys: phys.get(),
            attrs: HypAttrs::from_prot(prot)?,
        };
        self.check_overlap(range, &target)?;
        let walked = self.run_span(Span::Checked(range), WalkFlags::LEAF, |ctx| {
            install(ctx, &target, pool)
        });
        if walked.is_err() {
            // Tables hung before the failure may have stayed empty.
            self.prune_empty(va, size);
        }
        self.mm().publish();
        let Walked::Completed = walked?;
        Ok(())
    }

    /// Refuses a map over valid leaves it would not leave as they are
    /// (modulo software bits): a different mapping, or a block the range
    /// does not cover whole.
    fn check_overlap(&self, range: CheckedRange, target: &Target) -> Result<(), Error> {
        let start = range.start().get();
        let checked = self.run_span::<Error, _>(Span::Checked(range), WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            if !old.is_valid() {
                return Ok(Action::Continue);
            }
            match target.leaf_for(ctx) {
                Some(new) if !new.differs_beyond_sw(old) => Ok(Action::Continue),
                _ => Err(Error::AlreadyMapped {
                    addr: ctx.entry_addr().get().max(start),
                }
                .into()),
            }
        })?;
        let Walked::Completed = checked;
        Ok(())
    }

    /// Unlinks and frees child tables left empty in the range.
    pub(super) fn prune_empty(&self, va: Va, size: u64) {
        let pruned = self.run::<Error, _>(va, size, WalkFlags::TABLE_POST, |ctx| {
            if ctx.kind() == VisitKind::TablePost {
                free_if_empty(ctx);
            }
            Ok(Action::Continue)
        });
        // The range was checked by the caller and this visitor never stops.
        debug_assert!(pruned.is_ok());
    }
}

/// The map visitor (Linux's `hyp_map_walker`), once the overlap check has
/// passed: every valid leaf in the range is one this map leaves (or only
/// re-tags with software bits).
#[inline(always)]
fn install<M: MemoryOps + HypTlb>(
    ctx: &mut VisitCtx<'_, Exclusive, M, HypDescriptor>,
    target: &Target,
    pool: &mut M::PagePool,
) -> Visit<Exclusive> {
    let old = ctx.old();
    if let Some(new) = target.leaf_for(ctx) {
        ctx.set(new);
        return Ok(Action::Continue);
    }
    debug_assert!(!old.is_valid(), "the overlap check let {old:?} through");
    // Nothing fits here (a leaf always fits at the last level, so this is
    // above it): hang an empty table and let the walker descend.
    let child = alloc_table(ctx.mm(), pool, ctx.geometry())?;
    let table = HypDescriptor::table(child, ctx.geometry().format());
    ctx.replace(table);
    Ok(Action::Continue)
}

/// At a table entry's post-visit: unlinks and frees the child table if
/// nothing is left in it (reference count 1).
pub(super) fn free_if_empty<M: MemoryOps + HypTlb>(
    ctx: &mut VisitCtx<'_, Exclusive, M, HypDescriptor>,
) {
    let child = ctx.old().output_address(ctx.geometry().format());
    if ctx.mm().page_count(child) == 1 {
        // Clears the entry and flushes the walks cached through it.
        ctx.replace(HypDescriptor::INVALID);
        // SAFETY: the child's count is 1 (no entries), the entry that
        // linked it is cleared and its walks invalidated, and the walker is
        // exclusive: this drops the last reference to an unreachable page.
        unsafe { ctx.mm().put_page(child) };
    }
}

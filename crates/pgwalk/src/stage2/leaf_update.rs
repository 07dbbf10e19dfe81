//! The visitor behind every attribute change of valid leaves (write
//! protection, the access flag, relaxing permissions). Under a capability
//! that runs beside others it is one compare-and-swap per leaf, a lost race
//! being the capability's business (retry the entry under `Shared`, resume
//! the guest under `HandlesFault`); under `Exclusive`, where nobody else
//! writes the table, one plain store, as the kernel's non-shared walks do.

use super::Handle;
use crate::capability::{Action, Concurrent, Conflict, Exclusive, Walked};
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::walk::{CheckedRange, Span, WalkFlags};

impl<C: Concurrent, M: MemoryOps> Handle<'_, C, M> {
    /// Applies `update` to every valid leaf in the range; `seen` gets each
    /// leaf as it was. Returns the walk's end and whether anything changed.
    ///
    /// An `update` that removes permissions leaves the TLB stale: its
    /// caller hands out a [`TlbFlush`](crate::TlbFlush) for the range.
    // Inlined into each operation: in the one-page ones (relax_perms,
    // mkyoung) a call of its own, its answer passed back through memory,
    // was a sixth of the kvm layer's mkyoung (73 of 435 instructions).
    #[inline(always)]
    pub(crate) fn update_leaves(
        &self,
        span: Span,
        update: impl Fn(Descriptor) -> Descriptor,
        mut seen: impl FnMut(Descriptor, Level),
    ) -> Result<(Walked<C>, bool), Error> {
        let mut changed = false;
        let walked = self.run_span::<Error, _>(
            span,
            WalkFlags::LEAF,
            // Inlined into the walker's leaf loop: it runs once per page.
            #[inline(always)]
            |ctx| {
                let old = ctx.old();
                if old.is_locked() {
                    return Err(Conflict::Raced.into());
                }
                if !old.is_valid() {
                    return C::on_absent();
                }
                seen(old, ctx.level());
                let new = update(old);
                if new != old {
                    ctx.try_set_owing_tlbi(new)?;
                    changed = true;
                }
                Ok(Action::Continue)
            },
        )?;
        Ok((walked, changed))
    }
}

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// [`update_leaves`](Handle::update_leaves) for the table's sole owner:
    /// a plain store per changed leaf, no race to lose. Returns whether
    /// anything changed.
    ///
    /// The TLB is left stale as there: the caller hands out a
    /// [`TlbFlush`](crate::TlbFlush) for the range.
    pub(crate) fn update_leaves_alone(
        &self,
        range: CheckedRange,
        update: impl Fn(Descriptor) -> Descriptor,
        mut seen: impl FnMut(Descriptor),
    ) -> Result<bool, Error> {
        let mut changed = false;
        let Walked::Completed = self.run_span::<Error, _>(
            Span::Checked(range),
            WalkFlags::LEAF,
            // Inlined into the walker's leaf loop: it runs once per page.
            #[inline(always)]
            |ctx| {
                let old = ctx.old();
                if !old.is_valid() {
                    return Ok(Action::Continue);
                }
                seen(old);
                let new = update(old);
                if new != old {
                    ctx.set_owing_tlbi(new);
                    changed = true;
                }
                Ok(Action::Continue)
            },
        )?;
        Ok(changed)
    }
}

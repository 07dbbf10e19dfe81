//! Splitting blocks into pages (`kvm_pgtable_stage2_split`), as dirty
//! logging does before it write-protects page by page.

use super::args::check_range;
use super::tables::{link_table, table_for};
use super::Handle;
use crate::addr::Ipa;
use crate::capability::Action;
use crate::capability::Exclusive;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::walk::{Span, WalkFlags};

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Splits every block that intersects `size` bytes at `ipa` into pages,
    /// keeping what it mapped. Tables come from `pool`; on
    /// [`Error::NoMemory`] the blocks split so far stay split.
    pub fn split(&mut self, ipa: Ipa, size: u64, pool: &mut M::PagePool) -> Result<(), Error> {
        let range = check_range(self.geometry(), ipa, size)?;
        // Inlined into the walker's leaf loop, where it has nothing to do
        // for a page: a call per page was most of the split's cost.
        let walked = self.run_span::<Error, _>(
            Span::Checked(range),
            WalkFlags::LEAF,
            #[inline(always)]
            |ctx| {
                let old = ctx.old();
                if !old.is_valid() || ctx.level().is_last() {
                    return Ok(Action::Continue);
                }
                let child = table_for(ctx.mm(), pool, ctx.geometry(), ctx.level(), old)?;
                // The walker descends into the new table and splits its blocks.
                link_table(ctx, child);
                Ok(Action::Continue)
            },
        )?;
        let crate::capability::Walked::Completed = walked;
        Ok(())
    }
}

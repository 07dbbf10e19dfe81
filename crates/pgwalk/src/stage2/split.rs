//! Splitting blocks into pages (`kvm_pgtable_stage2_split`), as dirty
//! logging does before it write-protects page by page.

use super::map::link_table;
use super::unlinked::table_for;
use super::{check_range, Handle};
use crate::action::Action;
use crate::addr::Ipa;
use crate::capability::Exclusive;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::walk::WalkFlags;

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Splits every block that intersects `size` bytes at `ipa` into pages,
    /// keeping what it mapped. Tables come from `cache`; on
    /// [`Error::NoMemory`] the blocks split so far stay split.
    pub fn split(&mut self, ipa: Ipa, size: u64, cache: &mut M::Cache) -> Result<(), Error> {
        check_range(self.geometry(), ipa, size)?;
        let walked = self.walk_internal::<Error, _>(ipa, size, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            if !old.is_valid() || ctx.level().is_last() {
                return Ok(Action::Continue);
            }
            let child = table_for(ctx.mm(), cache, ctx.geometry(), ctx.level(), old)?;
            // The walker descends into the new table and splits its blocks.
            link_table(ctx, child);
            Ok(Action::Continue)
        })?;
        let crate::Walked::Completed = walked;
        Ok(())
    }
}

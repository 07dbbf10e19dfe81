//! Cleaning guest memory to the point of coherency (`kvm_pgtable_stage2_flush`).

use super::{check_range, Handle};
use crate::action::Action;
use crate::addr::Ipa;
use crate::capability::Shared;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::walk::WalkFlags;

impl<M: MemoryOps> Handle<'_, Shared, M> {
    /// Cleans and invalidates the data cache for every cacheable page mapped
    /// in `size` bytes at `ipa`, so that memory seen with the caches off (or
    /// by a non-coherent device) matches what the guest wrote.
    pub fn flush(&self, ipa: Ipa, size: u64) -> Result<(), Error> {
        check_range(self.geometry(), ipa, size)?;
        let walked = self.walk_internal::<Error, _>(ipa, size, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            if old.is_valid() && old.is_cacheable() {
                let pa = old.output_address(ctx.geometry().granule());
                ctx.mm().dcache_clean_inval_poc(pa, ctx.entry_size());
            }
            Ok(Action::Continue)
        })?;
        let crate::Walked::Completed = walked;
        Ok(())
    }
}

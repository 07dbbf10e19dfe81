//! Cleaning guest memory to the point of coherency (`kvm_pgtable_stage2_flush`).
//!
//! The kernel calls it a flush; pgwalk keeps that word for TLB
//! invalidation ([`TlbFlush`](crate::TlbFlush)), so here it is a data-cache
//! clean.

use super::args::check_range;
use super::Handle;
use crate::addr::Ipa;
use crate::capability::Action;
use crate::capability::Shared;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::walk::{Span, WalkFlags};

impl<M: MemoryOps> Handle<'_, Shared, M> {
    /// Cleans and invalidates the data cache for every cacheable page mapped
    /// in `size` bytes at `ipa`, so that memory seen with the caches off (or
    /// by a non-coherent device) matches what the guest wrote.
    pub fn clean_dcache(&self, ipa: Ipa, size: u64) -> Result<(), Error> {
        let range = check_range(self.geometry(), ipa, size)?;
        let walked = self.run_span::<Error, _>(Span::Checked(range), WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            if old.is_valid() && old.is_cacheable() {
                let pa = old.output_address(ctx.geometry().format());
                ctx.mm().dcache_clean_inval_poc(pa, ctx.entry_size());
            }
            Ok(Action::Continue)
        })?;
        let crate::capability::Walked::Completed = walked;
        Ok(())
    }
}

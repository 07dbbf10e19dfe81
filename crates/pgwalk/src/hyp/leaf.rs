//! Looking up the leaf for one address (`kvm_pgtable_get_leaf` on a hyp
//! table).

use super::{HypHandle, HypTlb};
use crate::addr::Va;
use crate::capability::{Action, Walked};
use crate::descriptor::HypDescriptor;
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::walk::WalkFlags;

impl<M: MemoryOps + HypTlb> HypHandle<'_, M> {
    /// The entry that translates `va`, and its level: a block, a page, or
    /// the invalid entry where translation stops. An address beyond the VA
    /// size is [`Error::OutOfRange`] (the MMU reports a level-0 translation
    /// fault for it).
    pub fn get_leaf(&self, va: Va) -> Result<(HypDescriptor, Level), Error> {
        let mut found = (HypDescriptor::INVALID, self.geometry().start_level());
        let walked = self.run::<Error, _>(va, 1, WalkFlags::LEAF, |ctx| {
            found = (ctx.old(), ctx.level());
            Ok(Action::Continue)
        })?;
        // Only a visitor can end a walk early, and this one never does.
        let Walked::Completed = walked;
        Ok(found)
    }
}

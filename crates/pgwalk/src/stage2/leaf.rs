//! Looking up the leaf for one address (`kvm_pgtable_get_leaf`).

use super::Handle;
use crate::action::Action;
use crate::addr::Ipa;
use crate::capability::Capability;
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::walk::WalkFlags;

impl<C: Capability, M: MemoryOps> Handle<'_, C, M> {
    /// The entry that translates `addr`, and its level: a block, a page, or
    /// the invalid entry where translation stops.
    pub fn get_leaf(&self, addr: Ipa) -> Result<(Descriptor, Level), Error> {
        let mut found = (Descriptor::INVALID, self.geometry().start_level());
        let walked = self.walk_internal::<Error, _>(addr, 1, WalkFlags::LEAF, |ctx| {
            found = (ctx.old(), ctx.level());
            Ok(Action::Continue)
        })?;
        // Only a visitor can end a walk early, and this one never does.
        let _ = walked;
        Ok(found)
    }
}

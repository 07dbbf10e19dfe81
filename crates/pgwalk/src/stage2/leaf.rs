//! Looking up the leaf for one address (`kvm_pgtable_get_leaf`).

use super::Handle;
use crate::addr::Ipa;
use crate::capability::Action;
use crate::capability::Capability;
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::walk::WalkFlags;

impl<C: Capability, M: MemoryOps> Handle<'_, C, M> {
    /// The entry that translates `addr`, and its level: a block, a page, or
    /// the invalid entry where translation stops.
    ///
    /// Beside other walkers, an entry may be in the middle of a
    /// break-before-make; the lookup waits for the new value rather than
    /// report the walker's transient locked marker.
    pub fn get_leaf(&self, addr: Ipa) -> Result<(Descriptor, Level), Error> {
        let mut found = (Descriptor::INVALID, self.geometry().start_level());
        for _ in 0..self.mm().retry_limit() {
            let walked = self.run::<Error, _>(addr, 1, WalkFlags::LEAF, |ctx| {
                found = (ctx.old(), ctx.level());
                Ok(Action::Continue)
            })?;
            // Only a visitor can end a walk early, and this one never does.
            let _ = walked;
            // The marker is replaced as soon as the breaking walker has
            // invalidated the TLB; the new value may be a table to descend,
            // so walk again rather than re-read the entry.
            if !found.0.is_locked() {
                return Ok(found);
            }
            crate::sync::spin_hint();
        }
        // A break that never ends. The entry protocol never leaves one
        // behind (an unwinding walker restores the entry), so something
        // else wrote the marker: report it rather than spin forever.
        Err(Error::RetryLimit {
            addr: addr.get(),
            level: found.1,
        })
    }
}

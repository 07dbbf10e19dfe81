//! Annotating a range as owned by someone else (`kvm_pgtable_stage2_set_owner`).

use super::map::Target;
use super::{check_range, Handle};
use crate::addr::Ipa;
use crate::capability::Exclusive;
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::walk::WalkFlags;

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Marks `size` bytes at `ipa` as owned by `owner`: invalid entries that
    /// carry the owner id (and keep their table pages alive), at the
    /// coarsest level that fits. Mappings in the range are removed. Owner 0
    /// is the table's own and clears annotations.
    pub fn annotate(
        &mut self,
        ipa: Ipa,
        size: u64,
        owner: u32,
        cache: &mut M::Cache,
    ) -> Result<(), Error> {
        check_range(self.geometry(), ipa, size)?;
        let annotation = Descriptor::annotation(owner)?;
        self.install_range(
            ipa,
            size,
            Target::Annotate(annotation),
            cache,
            WalkFlags::empty(),
        )
    }
}

//! Reading a table back as runs of mappings, for dumps and checks.

use super::Handle;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::Action;
use crate::capability::Capability;
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::walk::WalkFlags;

/// A run of consecutive leaves of one level with the same attributes and
/// contiguous output addresses (or the same annotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// First input address.
    pub ipa: Ipa,
    /// Output address of the first byte (zero for annotations).
    pub pa: PhysAddr,
    /// Bytes in the run.
    pub size: u64,
    /// Level of the leaves.
    pub level: Level,
    /// The first leaf of the run.
    pub leaf: Descriptor,
}

impl<C: Capability, M: MemoryOps> Handle<'_, C, M> {
    /// Calls `f` for each run of leaves (valid or annotated) in `size`
    /// bytes at `ipa`, in address order, without allocating.
    pub fn for_each_mapping(
        &self,
        ipa: Ipa,
        size: u64,
        mut f: impl FnMut(&Mapping),
    ) -> Result<(), Error> {
        let format = self.geometry().format();
        let mut run: Option<Mapping> = None;
        let walked = self.run::<Error, _>(ipa, size, WalkFlags::LEAF, |ctx| {
            let d = ctx.old();
            if !d.is_counted() {
                if let Some(r) = run.take() {
                    f(&r);
                }
                return Ok(Action::Continue);
            }
            let here = ctx.entry_addr();
            let pa = if d.is_valid() {
                d.output_address(format)
            } else {
                PhysAddr(0)
            };
            if let Some(r) = run.as_mut() {
                let contiguous = r.ipa.get() + r.size == here.get()
                    && r.level == ctx.level()
                    && r.leaf.attrs() == d.attrs()
                    && r.leaf.is_valid() == d.is_valid()
                    && (!d.is_valid() || r.pa.get() + r.size == pa.get())
                    && (d.is_valid() || r.leaf == d);
                if contiguous {
                    r.size += ctx.entry_size();
                    return Ok(Action::Continue);
                }
                f(r);
            }
            run = Some(Mapping {
                ipa: here,
                pa,
                size: ctx.entry_size(),
                level: ctx.level(),
                leaf: d,
            });
            Ok(Action::Continue)
        })?;
        let _ = walked;
        if let Some(r) = run {
            f(&r);
        }
        Ok(())
    }
}

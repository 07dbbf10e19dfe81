//! Building a subtree that no table links yet
//! (`kvm_pgtable_stage2_create_unlinked`), for a caller that links it with
//! a break-before-make of its own (as the kernel's eager block splitting
//! does).

use super::args::check_output;
use super::tables::{alloc_table, fill_from};
use super::{Handle, Stage2};
use crate::addr::PhysAddr;
use crate::capability::Exclusive;
use crate::descriptor::{Descriptor, LeafAttrs};
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::prot::Prot;

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Builds an unlinked subtree mapping what one entry of `level` maps,
    /// from `phys` with `prot`: a table page whose entries are blocks (or
    /// pages) one level down (`kvm_pgtable_stage2_create_unlinked` without
    /// `force_pte`). Link it with a break-before-make of your own, or free it
    /// with [`free_unlinked`](crate::free_unlinked) at the same `level`.
    pub fn create_unlinked(
        &mut self,
        phys: PhysAddr,
        level: Level,
        prot: Prot,
        pool: &mut M::PagePool,
    ) -> Result<PhysAddr, Error> {
        self.build_unlinked(phys, level, prot, pool, false)
    }

    /// [`create_unlinked`](Self::create_unlinked), with pages all the way
    /// down (`force_pte`).
    pub fn create_unlinked_pages(
        &mut self,
        phys: PhysAddr,
        level: Level,
        prot: Prot,
        pool: &mut M::PagePool,
    ) -> Result<PhysAddr, Error> {
        self.build_unlinked(phys, level, prot, pool, true)
    }

    fn build_unlinked(
        &mut self,
        phys: PhysAddr,
        level: Level,
        prot: Prot,
        pool: &mut M::PagePool,
        pages_only: bool,
    ) -> Result<PhysAddr, Error> {
        let geometry = self.table.geometry;
        if level.is_last() || level < geometry.format().first_level() {
            return Err(Error::Geometry(
                "an unlinked table hangs below a table entry: one of the format's levels, never the last",
            ));
        }
        let size = geometry.entry_size(level);
        if !phys.is_aligned(size) {
            return Err(Error::Misaligned {
                what: "physical address",
                value: phys.get(),
                granule: size,
            });
        }
        check_output(&geometry, phys, size)?;
        let attrs = LeafAttrs::from_prot(prot)?;
        let mm = &self.table.mm;
        let table = alloc_table(mm, pool, &geometry)?;
        // A template one level up: `fill_from` only reads its address and
        // attributes.
        let template = Descriptor::leaf_in(geometry.format(), phys, level, attrs);
        // SAFETY: `table` was just allocated: empty, and only we reach it.
        let filled = unsafe {
            fill_from(
                mm,
                pool,
                &geometry,
                table,
                level.next(),
                template,
                pages_only,
            )
        };
        if let Err(e) = filled {
            // SAFETY: allocated above and never linked: the only reference
            // is ours.
            unsafe { mm.put_page(table) };
            return Err(e);
        }
        Ok(table)
    }
}

#[allow(dead_code)]
fn _assert_stage2_is_send_sync<M: MemoryOps + Send + Sync>(t: Stage2<M>) -> impl Send + Sync {
    t
}

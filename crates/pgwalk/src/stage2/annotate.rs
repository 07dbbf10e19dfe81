//! Annotating a range as owned by someone else (`kvm_pgtable_stage2_set_owner`).

use super::args::check_range;
use super::map::Target;
use super::Handle;
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
    /// is the table's own and clears annotations; child tables left empty
    /// are freed, as `unmap` frees them.
    pub fn annotate(
        &mut self,
        ipa: Ipa,
        size: u64,
        owner: u32,
        pool: &mut M::PagePool,
    ) -> Result<(), Error> {
        let range = check_range(self.geometry(), ipa, size)?;
        let annotation = Descriptor::annotation(owner)?;
        self.install_range(
            range,
            Target::Annotate(annotation),
            pool,
            WalkFlags::empty(),
        )?;
        if !annotation.is_counted() {
            // Owner 0 writes zero entries, which do not keep a table page
            // alive: a table it emptied (or one the walk had to hang to
            // reach an unaligned edge) would otherwise stay linked with
            // nothing in it.
            self.prune_empty(ipa, size);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::geometry::Geometry;
    use crate::host::{check_invariants, HeapMemory};
    use crate::{Ipa, PhysAddr, Prot, Stage2};

    fn table() -> Stage2<HeapMemory> {
        Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), HeapMemory::new(64)).unwrap()
    }

    /// Found by the QEMU conformance test: owner 0 over the only page of a
    /// table left an empty level-3 table (and its level-2 parent) linked.
    #[test]
    fn owner_zero_frees_the_tables_it_empties() {
        let mut t = table();
        let mut h = t.exclusive();
        let page = Ipa(0x4000_1000);
        h.map(page, 0x1000, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap();
        h.annotate(page, 0x1000, 0, &mut ()).unwrap();
        let report = check_invariants(&mut t).unwrap();
        assert_eq!(report.table_pages, 0);
        assert_eq!(t.mm().live_pages(), t.geometry().root_pages());
    }

    /// Owner 0 over a hole whose edges are not block-aligned must not leave
    /// the tables the walk hung to reach those edges.
    #[test]
    fn owner_zero_over_a_hole_leaves_no_tables() {
        let mut t = table();
        t.exclusive()
            .annotate(Ipa(0x4000_1000), 0x20_3000, 0, &mut ())
            .unwrap();
        assert_eq!(check_invariants(&mut t).unwrap().table_pages, 0);
    }

    /// Other owners keep their annotations, and with them the tables.
    #[test]
    fn other_owners_keep_their_tables() {
        let mut t = table();
        t.exclusive()
            .annotate(Ipa(0x4000_1000), 0x1000, 7, &mut ())
            .unwrap();
        let report = check_invariants(&mut t).unwrap();
        assert_eq!((report.annotations, report.table_pages), (1, 2));
    }
}

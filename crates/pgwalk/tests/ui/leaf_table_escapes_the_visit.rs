// Mistake: keeping a leaf table a visitor was handed for after its visit.
// Its entries are the table's own memory, which an exclusive walk may free
// once the visit is over (unmap does), and a shared walk's grace period
// stops covering when the walk ends.
use pgwalk::geometry::Geometry;
use pgwalk::host::HeapMemory;
use pgwalk::visit::{Action, LeafTable, WalkFlags};
use pgwalk::{Exclusive, Ipa, PhysAddr, Prot, Stage2};

fn main() {
    let g = Geometry::for_ia_bits(40, 40).unwrap();
    let mut t = Stage2::with_geometry(g, HeapMemory::new(64)).unwrap();
    let mut h = t.exclusive();
    h.map(Ipa(0), 0x1000, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap();
    let mut kept: Option<LeafTable<'_, Exclusive>> = None;
    let _ = h.walk(Ipa(0), 0x1000, WalkFlags::TABLE_PRE, |ctx| {
        kept = ctx.take_leaf_table();
        Ok(Action::Continue)
    });
    let _ = h.unmap(Ipa(0), 0x1000);
    let _ = kept.map(|t| t.get(0));
}

// Mistake: storing a stage-2 descriptor into an EL2 table. The two formats
// share the walker, not their bits (AP versus S2AP, AttrIndx versus
// MemAttr): the types keep them apart.
use pgwalk::descriptor::{Descriptor, LeafAttrs};
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::HeapMemory;
use pgwalk::hyp::HypTable;
use pgwalk::visit::{Action, WalkFlags};
use pgwalk::{PhysAddr, Prot, Va};

fn main() {
    let g = Geometry::for_va_bits(Granule::Size4KiB, 39, 40).unwrap();
    let mut table = HypTable::with_geometry(g, HeapMemory::new(8), &mut ()).unwrap();
    let _ = table.exclusive().walk(Va(0), 0x1000, WalkFlags::LEAF, |ctx| {
        let attrs = LeafAttrs::from_prot(Prot::RW)?;
        ctx.set(Descriptor::leaf(PhysAddr(0x8000_0000), ctx.level(), attrs));
        Ok(Action::Continue)
    });
}

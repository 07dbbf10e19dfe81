// Mistake: keeping a hyp handle after the table it changes is dropped (and
// its pages freed).
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::HeapMemory;
use pgwalk::hyp::HypTable;
use pgwalk::{PhysAddr, Prot, Va};

fn main() {
    let g = Geometry::for_va_bits(Granule::Size4KiB, 39, 40).unwrap();
    let mut table = HypTable::with_geometry(g, HeapMemory::new(8), &mut ()).unwrap();
    let mut h = table.exclusive();
    drop(table);
    let _ = h.map(Va(0), 0x1000, PhysAddr(0), Prot::R, &mut ());
}

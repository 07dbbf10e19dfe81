// Mistake: asking a hyp table for a fault handler's handle, to map on a
// fault path as stage 2 does. EL2 tables have no fault path.
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::HeapMemory;
use pgwalk::hyp::HypTable;

fn main() {
    let g = Geometry::for_va_bits(Granule::Size4KiB, 39, 40).unwrap();
    let table = HypTable::with_geometry(g, HeapMemory::new(8), &mut ()).unwrap();
    let _h = table.fault_handler();
}

// Mistake: taking exclusive access for an unmap while a shared walker's
// handle on the same table is still in use.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::geometry::Geometry;

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let mut table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let shared = table.shared();
    table.exclusive().unmap(Ipa(0x4000_0000), 0x1000).unwrap();
    let _ = shared.get_leaf(Ipa(0x4000_0000));
}

// Mistake: a fault handler, holding only the read lock, splits a block
// (a structural change that needs the write lock).
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, SpinStage2, Stage2};
use pgwalk::geometry::Geometry;

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let lock = SpinStage2::new(Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap());
    let guard = lock.read();
    let mut fault = guard.fault_handler();
    fault.split(Ipa(0x4000_0000), 2 << 20, &mut ()).unwrap();
}

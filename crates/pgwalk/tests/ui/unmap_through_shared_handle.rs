// Mistake: unmapping (a structural change) while holding only the read lock.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, SpinStage2, Stage2};
use pgwalk::geometry::Geometry;

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let lock = SpinStage2::new(Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap());
    let guard = lock.read();
    guard.shared().unmap(Ipa(0x8000_0000), 0x1000).unwrap();
}

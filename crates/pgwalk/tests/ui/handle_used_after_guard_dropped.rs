// Mistake: dropping the read lock early "to keep the critical section short"
// while still walking through the handle it gave out.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, SpinStage2, Stage2};
use pgwalk::geometry::Geometry;

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let lock = SpinStage2::new(Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap());
    let guard = lock.read();
    let shared = guard.shared();
    drop(guard);
    let _ = shared.get_leaf(Ipa(0x4000_0000));
}

// Mistake: taking the exclusive handle straight from a temporary write
// guard, so the lock is released at the end of the statement.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, SpinStage2, Stage2};
use pgwalk::geometry::Geometry;

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let lock = SpinStage2::new(Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap());
    let mut exclusive = lock.write().exclusive();
    exclusive.unmap(Ipa(0x4000_0000), 0x1000).unwrap();
}

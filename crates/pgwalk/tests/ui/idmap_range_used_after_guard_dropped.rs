// Mistake: finding the host idmap range under the write lock, releasing the
// lock, then mapping it (another CPU may have mapped part of it meanwhile).
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, PhysAddr, Prot, SpinStage2, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::idmap::MemoryRegion;

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let lock = SpinStage2::new(Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap());
    let regions = [MemoryRegion {
        start: PhysAddr(0x8000_0000),
        end: PhysAddr(0xc000_0000),
        prot: Prot::RWX,
    }];
    let mut guard = lock.write();
    let mut exclusive = guard.exclusive();
    let mut range = exclusive.idmap_range(Ipa(0x8000_1000), &regions).unwrap();
    drop(guard);
    range.map(&mut ()).unwrap();
}

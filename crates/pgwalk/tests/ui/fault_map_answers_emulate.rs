// Mistake: handling an outcome the operation cannot produce. A fault-path
// map only touches the table, which cannot tell MMIO from RAM: deciding to
// emulate is `fault_in`'s (it asks the host). The arm does not compile, so
// no dead "emulate" branch hides a missing MMIO check elsewhere.
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::Geometry;
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, PhysAddr, Prot, Stage2};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let fault = table.fault_handler();
    match fault
        .map(Ipa(0x4000_0000), 0x1000, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap()
    {
        TableOutcome::Fixed | TableOutcome::Spurious => {}
        TableOutcome::Retry => {}
        TableOutcome::Emulate => println!("emulate the access"),
    }
}

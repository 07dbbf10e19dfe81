// Mistake: the C habit `if (ret)` for "the fault handler did something".
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, PhysAddr, Prot, Stage2};
use pgwalk::geometry::Geometry;

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let fault = table.fault_handler();
    let outcome = fault
        .map(
            Ipa(0x4000_0000),
            0x1000,
            PhysAddr(0x8000_0000),
            Prot::RW,
            &mut ()
        )
        .unwrap();
    if outcome {
        println!("retry the vCPU");
    }
}

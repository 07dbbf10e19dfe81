// Mistake: the fault path maps a page and ignores what happened (Retry and
// Spurious need different handling than Fixed).
#![deny(unused_must_use)]

use pgwalk::host::HeapMemory;
use pgwalk::{Error, Ipa, PhysAddr, Prot, Stage2};
use pgwalk::geometry::Geometry;

fn handle_fault(table: &Stage2<HeapMemory>, ipa: Ipa) -> Result<(), Error> {
    let fault = table.fault_handler();
    fault.map(
        ipa,
        0x1000,
        PhysAddr(0x8000_0000),
        Prot::RW,
        &mut ()
    )?;
    Ok(())
}

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    handle_fault(&table, Ipa(0x4000_0000)).unwrap();
}

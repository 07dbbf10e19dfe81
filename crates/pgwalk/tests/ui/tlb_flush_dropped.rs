// Mistake: write-protecting for dirty logging and forgetting the TLB flush,
// so vCPUs keep writing through stale writable TLB entries.
#![deny(unused_must_use)]

use pgwalk::host::HeapMemory;
use pgwalk::{Error, Geometry, Ipa, Stage2};

fn start_dirty_logging(table: &Stage2<HeapMemory>) -> Result<(), Error> {
    table.shared().wrprotect(Ipa(0x4000_0000), 2 << 20)?;
    Ok(())
}

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    start_dirty_logging(&table).unwrap();
}

// Mistake: write-protecting for dirty logging and discarding the TLB flush
// it owes without a word. (Dropping the token does flush; the rule is that
// the code says so, `.flush()` or `.ignore()`, so a reader sees where the
// stale writable entries go.)
#![deny(unused_must_use)]

use pgwalk::host::HeapMemory;
use pgwalk::{Error, Ipa, Stage2};
use pgwalk::geometry::Geometry;

fn start_dirty_logging(table: &Stage2<HeapMemory>) -> Result<(), Error> {
    table.shared().wrprotect(Ipa(0x4000_0000), 2 << 20)?;
    Ok(())
}

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    start_dirty_logging(&table).unwrap();
}

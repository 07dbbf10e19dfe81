// Mistake: write-protecting table A for dirty logging and spending the TLB
// flush it owes on table B: A's vCPUs keep their writable translations.
// The token flushes the table it came from, and takes no table argument.

use pgwalk::host::HeapMemory;
use pgwalk::{Error, Ipa, Stage2};
use pgwalk::geometry::Geometry;

fn start_dirty_logging(a: &Stage2<HeapMemory>, b: &Stage2<HeapMemory>) -> Result<(), Error> {
    a.shared().wrprotect(Ipa(0x4000_0000), 2 << 20)?.flush(&b.shared());
    Ok(())
}

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let a = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let b = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    start_dirty_logging(&a, &b).unwrap();
}

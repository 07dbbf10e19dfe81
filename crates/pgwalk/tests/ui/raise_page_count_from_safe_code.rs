// Mistake: raising a table page's reference count from safe code, through
// the `&MemoryOps` a handle hands out. The walker trusts "count 1 means
// empty": a count raised for no entry would let an unmap free the page
// while its parent still links it (and, on a host that wraps, a raise by
// `u32::MAX - 1` makes a page with a live entry look empty at once).

use pgwalk::host::HeapMemory;
use pgwalk::{MemoryOps, Stage2};
use pgwalk::geometry::Geometry;

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let h = table.shared();
    h.mm().get_pages(table.root(), u32::MAX as usize - 1);
}

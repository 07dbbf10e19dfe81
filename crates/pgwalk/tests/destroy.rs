//! Dropping a table (`src/stage2/destroy.rs`) gives every page back.

mod common;

use common::*;
use pgwalk::geometry::Geometry;
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Prot, Stage2};

#[test]
fn destroy_returns_every_page() {
    let mm = HeapMemory::new(8192);
    {
        let mut t =
            Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), mm.clone()).unwrap();
        map(&mut t, 0, 3 * M2 + 5 * K4, 0x8000_1000, Prot::RW).unwrap();
        map(&mut t, 3 * G1, G1, 0x1_0000_0000, Prot::R).unwrap();
        t.exclusive().annotate(Ipa(5 * G1), K4, 3, &mut ()).unwrap();
        assert!(mm.live_pages() > 2);
    }
    assert_eq!(mm.live_pages(), 0);
    let s = mm.stats();
    assert_eq!(s.pages_allocated, s.pages_freed);
    assert_eq!(s.double_frees, 0);
}

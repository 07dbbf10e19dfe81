//! Map and unmap options (`src/stage2/options.rs`): batched TLB
//! invalidation.

mod common;

use common::*;
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, MapOptions, PhysAddr, Prot, Stage2, UnmapOptions};

#[test]
fn skipping_per_entry_invalidations_costs_one_for_the_range() {
    let mm = HeapMemory::new(64);
    let mut t = Stage2::with_geometry(geometry(), mm.clone()).unwrap();
    map(&mut t, 0, 16 * K4, RAM, Prot::RW).unwrap();
    let before = mm.stats();
    t.exclusive()
        .map_with(
            Ipa(0),
            16 * K4,
            PhysAddr(RAM),
            Prot::R,
            &mut (),
            MapOptions::new().batch_tlbi(),
        )
        .unwrap();
    let after = mm.stats();
    assert_eq!(after.tlbi_ipa, before.tlbi_ipa, "no per-page invalidation");
    assert_eq!(after.tlbi_range, before.tlbi_range + 1, "one for the range");
    t.exclusive()
        .unmap_with(Ipa(0), 16 * K4, UnmapOptions::new().batch_tlbi())
        .unwrap();
    let end = mm.stats();
    assert_eq!(end.tlbi_ipa, before.tlbi_ipa);
    assert_eq!(end.tlbi_range, after.tlbi_range + 1);
}

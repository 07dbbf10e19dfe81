//! `get_leaf` (`src/stage2/leaf.rs`): the entry where translation stops,
//! at whatever level, for every capability.

mod common;

use common::*;
use pgwalk::{Ipa, Prot};

#[test]
fn the_leaf_is_where_translation_stops() {
    let mut t = table(40);
    map(&mut t, G1, G1, 0x1_0000_0000, Prot::RW).unwrap();
    map(&mut t, 0, K4, RAM, Prot::R).unwrap();
    // A 1 GiB block, a page, an invalid entry in a page table, and an
    // empty level-1 entry.
    let cases = [
        (G1 + 0x1234_5678, 1, true),
        (0, 3, true),
        (K4, 3, false),
        (3 * G1, 1, false),
    ];
    for (ipa, level, valid) in cases {
        let (d, l) = leaf(&mut t, ipa);
        assert_eq!((l, d.is_valid()), (level, valid), "at {ipa:#x}");
        // Shared and fault-path walkers find the same.
        assert_eq!(t.shared().get_leaf(Ipa(ipa)).unwrap().0, d);
        assert_eq!(t.fault_handler().get_leaf(Ipa(ipa)).unwrap().0, d);
    }
    assert!(t.shared().get_leaf(Ipa(1 << 40)).is_err());
}

//! `clean_dcache` (`src/stage2/dcache.rs`): one clean per cacheable leaf,
//! none for device memory or holes.

mod common;

use common::*;
use pgwalk::Ipa;
use pgwalk::Prot;

#[test]
fn cleans_each_cacheable_leaf_once_and_skips_devices_and_holes() {
    let mut t = table(40);
    map(&mut t, 0, M2, RAM, Prot::RW).unwrap();
    map(&mut t, M2, 2 * K4, RAM + M2, Prot::RW).unwrap();
    map(
        &mut t,
        M2 + 2 * K4,
        K4,
        0x0900_0000,
        Prot::RW | Prot::DEVICE,
    )
    .unwrap();
    let before = t.mm().stats().dcache_cleans;
    // A 2 MiB block, two pages, a device page and a hole after them.
    t.shared().clean_dcache(Ipa(0), M2 + 8 * K4).unwrap();
    assert_eq!(t.mm().stats().dcache_cleans - before, 3);
    assert!(t.shared().clean_dcache(Ipa(1 << 40), K4).is_err());
    check(&mut t);
}

//! `split` (`src/stage2/split.rs`): a block becomes pages that translate
//! as it did.

mod common;

use common::*;
use pgwalk::{Ipa, Prot};

#[test]
fn split_keeps_every_translation() {
    let mut t = table(40);
    map(&mut t, G1, G1, 0x1_0000_0000, Prot::RWX).unwrap();
    let before = t.exclusive().get_leaf(Ipa(G1 + 0x1234_5000)).unwrap().0;
    t.exclusive().split(Ipa(G1), G1, &mut ()).unwrap();
    let r = check(&mut t);
    assert_eq!(r.leaves, [0, 0, 0, 512 * 512]);
    let (after, l) = leaf(&mut t, G1 + 0x1234_5000);
    assert_eq!(l, 3);
    assert_eq!(after.attrs(), before.attrs());
    assert_eq!(
        after
            .output_address(pgwalk::geometry::Granule::Size4KiB)
            .get(),
        0x1_1234_5000
    );
}

//! `annotate` (`src/stage2/annotate.rs`): owner annotations are counted
//! entries, and unmap clears them.

mod common;

use common::*;
use pgwalk::Ipa;

#[test]
fn annotations_count_and_are_cleared_by_unmap() {
    let mut t = table(40);
    t.exclusive().annotate(Ipa(0), M2 + K4, 7, &mut ()).unwrap();
    let r = check(&mut t);
    assert_eq!(r.annotations, 2, "one block-sized annotation and one page");
    assert_eq!(leaf(&mut t, M2).0.owner(), Some(7));
    assert!(t.exclusive().annotate(Ipa(0), K4, 256, &mut ()).is_err());
    t.exclusive().unmap(Ipa(0), M2 + K4).unwrap();
    let r = check(&mut t);
    assert_eq!((r.annotations, r.table_pages), (0, 0));
}

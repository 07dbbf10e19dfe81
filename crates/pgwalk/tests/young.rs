//! The access flag (`src/stage2/young.rs`): aging under the shared
//! capability, and `mkyoung`'s outcomes on the fault path.

mod common;

use common::*;
use pgwalk::fault::TableOutcome;
use pgwalk::host::check_invariants;
use pgwalk::Ipa;

// Split from the shared attribute-change test (wrprotect, young, relax)
// when the tests moved to one file per operation.
#[test]
fn aging_under_shared() {
    let mut t = table_with_pages(4);
    let h = t.shared();
    assert!(
        h.clear_young(Ipa(0), 4 * K4).unwrap(),
        "new leaves are young"
    );
    assert!(!h.test_young(Ipa(0), 4 * K4).unwrap(), "and were made old");
    assert!(h.mkyoung(Ipa(K4)).unwrap());
    assert!(h.test_young(Ipa(K4), K4).unwrap());
    check_invariants(&mut t).unwrap();
}

// Split from the fault path's relax_perms and mkyoung test.
#[test]
fn fault_mkyoung_outcomes() {
    let t = table_with_pages(2);
    let f = t.fault_handler();
    assert_eq!(
        f.mkyoung(Ipa(K4)).unwrap(),
        TableOutcome::Spurious,
        "already young"
    );
    assert_eq!(f.mkyoung(Ipa(0x40_0000)).unwrap(), TableOutcome::Retry);
}

//! `relax_perms` (`src/stage2/relax.rs`): permissions added under the
//! shared capability, and its outcomes on the fault path.

mod common;

use common::*;
use pgwalk::fault::TableOutcome;
use pgwalk::host::check_invariants;
use pgwalk::{Ipa, Prot};

// Split from the shared attribute-change test (wrprotect, young, relax)
// when the tests moved to one file per operation.
#[test]
fn relax_perms_under_shared() {
    let mut t = table_with_pages(4);
    let h = t.shared();
    h.wrprotect(Ipa(0), 4 * K4).unwrap().flush();
    h.relax_perms(Ipa(2 * K4), Prot::W).unwrap();
    assert!(h.get_leaf(Ipa(2 * K4)).unwrap().0.writable());
    assert!(h.relax_perms(Ipa(0), Prot::DEVICE).is_err());
    check_invariants(&mut t).unwrap();
}

// Split from the fault path's relax_perms and mkyoung test.
#[test]
fn fault_relax_perms_outcomes() {
    let t = table_with_pages(2);
    let f = t.fault_handler();
    f.as_shared().wrprotect(Ipa(0), K4).unwrap().flush();
    assert_eq!(f.relax_perms(Ipa(0), Prot::W).unwrap(), TableOutcome::Fixed);
    assert_eq!(
        f.relax_perms(Ipa(0), Prot::W).unwrap(),
        TableOutcome::Spurious
    );
    assert_eq!(
        f.relax_perms(Ipa(0x40_0000), Prot::W).unwrap(),
        TableOutcome::Retry,
        "no leaf"
    );
}

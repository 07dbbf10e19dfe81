//! The access flag (`src/stage2/young.rs`): aging under the shared and the
//! exclusive capability, and `mkyoung`'s outcomes on the fault path.

mod common;

use common::*;
use pgwalk::fault::TableOutcome;
use pgwalk::host::check_invariants;
use pgwalk::{Ipa, PhysAddr, Prot};

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

#[test]
fn aging_under_exclusive_matches_aging_under_shared() {
    let [mut plain, mut swapped] = [0, 1].map(|_| {
        let mut t = table_with_pages(8);
        let mut h = t.exclusive();
        h.map(Ipa(M2), M2, PhysAddr(RAM + M2), Prot::RW, &mut ())
            .unwrap();
        h.annotate(Ipa(16 * K4), K4, 3, &mut ()).unwrap();
        // Half the pages old, so that clearing changes some leaves only.
        h.clear_young(Ipa(0), 4 * K4).unwrap();
        t
    });
    let before = plain.mm().stats();
    let range = (Ipa(0), 2 * M2);
    for (mkold, expect) in [(false, true), (true, true), (false, false), (true, false)] {
        let got = if mkold {
            plain.exclusive().clear_young(range.0, range.1).unwrap()
        } else {
            plain.exclusive().test_young(range.0, range.1).unwrap()
        };
        let h = swapped.shared();
        let twin = if mkold {
            h.clear_young(range.0, range.1)
        } else {
            h.test_young(range.0, range.1)
        }
        .unwrap();
        assert_eq!((got, twin), (expect, expect), "mkold {mkold}");
    }
    assert_eq!(plain.mm().stats(), before, "aging calls no host operation");
    assert_eq!(swapped.mm().stats(), before);
    for ipa in [0, 5 * K4, M2, M2 + 300 * K4] {
        assert_eq!(leaf(&mut plain, ipa), leaf(&mut swapped, ipa), "{ipa:#x}");
        assert!(!leaf(&mut plain, ipa).0.young(), "{ipa:#x} made old");
    }
    assert!(
        !plain.exclusive().test_young(Ipa(16 * K4), K4).unwrap(),
        "an annotation is never young"
    );
    check(&mut plain);
}

#[test]
fn exclusive_aging_refuses_a_range_beyond_the_input_size() {
    let mut t = table_with_pages(1);
    assert!(t.exclusive().clear_young(Ipa(1 << 40), K4).is_err());
    assert!(t.exclusive().test_young(Ipa(0), (1 << 40) + K4).is_err());
    assert!(leaf(&mut t, 0).0.young(), "nothing cleared");
}

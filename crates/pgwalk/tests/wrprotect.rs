//! `wrprotect` (`src/stage2/wrprotect.rs`): write permission removed under
//! the shared capability, and the TLB flush it owes.

mod common;

use common::*;
use pgwalk::host::check_invariants;
use pgwalk::Ipa;

// Split from the shared attribute-change test (wrprotect, young, relax)
// when the tests moved to one file per operation.
#[test]
fn wrprotect_under_shared_owes_a_range_flush() {
    let mut t = table_with_pages(4);
    let h = t.shared();
    let flush = h.wrprotect(Ipa(0), 4 * K4).unwrap();
    let before = t.mm().stats().tlbi_range;
    flush.flush();
    assert_eq!(t.mm().stats().tlbi_range, before + 1);
    assert!(!h.get_leaf(Ipa(K4)).unwrap().0.writable());
    check_invariants(&mut t).unwrap();
}

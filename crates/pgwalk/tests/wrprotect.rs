//! `wrprotect` (`src/stage2/wrprotect.rs`): write permission removed under
//! the shared capability (compare-and-swap) and the exclusive one (plain
//! stores, to the same effect), and the TLB flush it owes.

mod common;

use common::*;
use pgwalk::host::check_invariants;
use pgwalk::visit::{Action, WalkFlags};
use pgwalk::{Ipa, Prot};

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

/// Two copies of one table whose range holds pages, a block, a hole, a
/// device page, a read-only page and an annotation: every kind of entry
/// a bulk attribute change walks past.
fn mixed_tables() -> [pgwalk::Stage2<pgwalk::host::HeapMemory>; 2] {
    [0, 1].map(|_| {
        let mut t = table(40);
        let mut h = t.exclusive();
        let pa = pgwalk::PhysAddr(RAM);
        h.map(Ipa(0), 8 * K4, pa, Prot::RW, &mut ()).unwrap();
        h.map(Ipa(16 * K4), K4, pa, Prot::R, &mut ()).unwrap();
        h.map(Ipa(17 * K4), K4, pa, Prot::RW | Prot::DEVICE, &mut ())
            .unwrap();
        h.annotate(Ipa(18 * K4), K4, 5, &mut ()).unwrap();
        h.map(Ipa(M2), M2, pgwalk::PhysAddr(RAM + M2), Prot::RWX, &mut ())
            .unwrap();
        t
    })
}

/// Every entry a leaf walk of the first 4 MiB sees, with its level.
fn leaves(t: &mut pgwalk::Stage2<pgwalk::host::HeapMemory>) -> Vec<(u64, u64, i8)> {
    let mut out = Vec::new();
    let walked = t
        .exclusive()
        .walk(Ipa(0), 2 * M2, WalkFlags::LEAF, |ctx| {
            out.push((ctx.addr().get(), ctx.old().bits(), ctx.level().get()));
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    out
}

#[test]
fn exclusive_wrprotect_writes_what_the_shared_one_does() {
    let [mut plain, mut swapped] = mixed_tables();
    let before = plain.mm().stats();
    assert_eq!(before, swapped.mm().stats());
    let flush = plain.exclusive().wrprotect(Ipa(0), 2 * M2).unwrap();
    assert_eq!(flush.range(), (Ipa(0), 2 * M2));
    flush.flush();
    swapped.shared().wrprotect(Ipa(0), 2 * M2).unwrap().flush();
    let after = plain.mm().stats();
    assert_eq!(after, swapped.mm().stats(), "the same host calls");
    assert_eq!(after.tlbi_range, before.tlbi_range + 1, "one range flush");
    assert_eq!(after.tlbi_ipa, before.tlbi_ipa, "and none per page");
    let got = leaves(&mut plain);
    assert_eq!(got, leaves(&mut swapped));
    let writable = got
        .iter()
        .filter(|&&(_, bits, _)| pgwalk::descriptor::Descriptor::from_bits(bits).writable())
        .count();
    assert_eq!(writable, 0, "no writable leaf left in {got:x?}");
    assert!(
        got.iter().any(|&(a, bits, _)| a == 18 * K4 && bits != 0),
        "the annotation kept"
    );
    check(&mut plain);
}

#[test]
fn exclusive_wrprotect_refuses_a_range_beyond_the_input_size() {
    let mut t = table_with_pages(1);
    let before = t.mm().stats();
    assert!(t.exclusive().wrprotect(Ipa(1 << 40), K4).is_err());
    assert!(t.exclusive().wrprotect(Ipa(0), (1 << 40) + K4).is_err());
    assert_eq!(t.mm().stats(), before, "nothing flushed, nothing written");
    assert!(leaf(&mut t, 0).0.writable());
}

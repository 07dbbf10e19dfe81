//! The `TlbFlush` token (`src/stage2/tlb_flush.rs`): it flushes the table
//! it came from, when spent or dropped.

mod common;

use common::*;
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Prot, Stage2};

// Item 5: the token invalidates the table it came from (it takes no
// argument any more: `tlb_flush_spent_on_another_table` in the
// compile-fail suite), and dropping it invalidates too.
#[test]
fn a_tlb_flush_invalidates_its_own_table_even_when_dropped() {
    let (a_mm, b_mm) = (HeapMemory::new(64), HeapMemory::new(64));
    let mut a = Stage2::with_geometry(geometry(), a_mm.clone()).unwrap();
    let b = Stage2::with_geometry(geometry(), b_mm.clone()).unwrap();
    map(&mut a, 0, K4, RAM, Prot::RW).unwrap();
    let (a0, b0) = (a_mm.stats().tlbi_range, b_mm.stats().tlbi_range);
    let shared = a.shared();
    shared.wrprotect(Ipa(0), K4).unwrap().flush();
    assert_eq!(a_mm.stats().tlbi_range, a0 + 1);
    let token = shared.wrprotect(Ipa(0), K4).unwrap();
    assert_eq!(token.range(), (Ipa(0), K4));
    drop(token);
    assert_eq!(a_mm.stats().tlbi_range, a0 + 2);
    shared.wrprotect(Ipa(0), K4).unwrap().ignore();
    assert_eq!(a_mm.stats().tlbi_range, a0 + 2, "ignore is the one way out");
    assert_eq!(b_mm.stats().tlbi_range, b0, "never the other table");
    drop(b);
}

/// A token shows the range it owes, so that a hypervisor can log what it
/// is about to invalidate.
#[test]
fn a_tlb_flush_shows_its_range() {
    let mut t = Stage2::with_geometry(geometry(), HeapMemory::new(64)).unwrap();
    map(&mut t, M2, 2 * K4, RAM, Prot::RW).unwrap();
    let token = t.shared().wrprotect(Ipa(M2), 2 * K4).unwrap();
    let shown = format!("{token:?}");
    assert!(shown.starts_with("TlbFlush"), "{shown}");
    assert!(shown.contains(&format!("{:?}", Ipa(M2))), "{shown}");
    assert!(shown.contains("size: 8192"), "{shown}");
    token.flush();
}

//! The fault path's `map` (`src/stage2/fault_map.rs`): its outcomes, a
//! block replacing a table through the grace period, a split that counts
//! as a change.

mod common;

use common::*;
use pgwalk::fault::FaultOutcome;
use pgwalk::geometry::Geometry;
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::{Ipa, PhysAddr, Prot, Stage2};

#[test]
fn fault_map_fixed_then_spurious() {
    let mut t = table_with_pages(0);
    let h = t.fault_handler();
    let r = h
        .map(Ipa(0x10_0000), K4, PhysAddr(0x9000_0000), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(r, FaultOutcome::Fixed);
    let r = h
        .map(Ipa(0x10_0000), K4, PhysAddr(0x9000_0000), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(r, FaultOutcome::Spurious);
    // Permissions alone differ: the map leaves it to relax_perms.
    let r = h
        .map(Ipa(0x10_0000), K4, PhysAddr(0x9000_0000), Prot::R, &mut ())
        .unwrap();
    assert_eq!(r, FaultOutcome::Spurious);
    check_invariants(&mut t).unwrap();
}

#[test]
fn fault_map_block_over_table_defers_the_free() {
    let mm = HeapMemory::new(4096);
    let mut t = Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), mm.clone()).unwrap();
    let f = t.fault_handler();
    assert_eq!(
        f.map(Ipa(0), K4, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap(),
        FaultOutcome::Fixed
    );
    assert_eq!(
        f.map(Ipa(0), 2 << 20, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap(),
        FaultOutcome::Fixed
    );
    assert_eq!(mm.stats().deferred_frees, 1);
    assert!(mm.quiesce());
    check_invariants(&mut t).unwrap();
}

/// Found by the Rust hypervisor (dirty logging): a fault-path map of one
/// page over a write-protected block split the block but answered
/// `Spurious`, as if nothing had changed. A split is a change: `Fixed`, and
/// the split keeps the block's permissions for `relax_perms` to widen.
#[test]
fn a_fault_path_map_that_splits_a_block_is_fixed() {
    let mut t = table_with_pages(0);
    let m2 = 2 << 20;
    t.exclusive()
        .map(Ipa(0), m2, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap();
    t.shared().wrprotect(Ipa(0), m2).unwrap().flush();
    let f = t.fault_handler();
    let outcome = f
        .map_with(
            Ipa(K4),
            K4,
            PhysAddr(0x8000_0000 + K4),
            Prot::RW,
            &mut (),
            pgwalk::MapOptions::new().pages_only(),
        )
        .unwrap();
    assert_eq!(outcome, FaultOutcome::Fixed);
    let (leaf, level) = f.get_leaf(Ipa(K4)).unwrap();
    assert_eq!(level.get(), 3, "the block is split");
    assert!(!leaf.writable(), "with the block's permissions");
    assert_eq!(
        f.relax_perms(Ipa(K4), Prot::W).unwrap(),
        FaultOutcome::Fixed
    );
    // The same map again changes nothing.
    assert_eq!(
        f.map(Ipa(K4), K4, PhysAddr(0x8000_0000 + K4), Prot::RW, &mut ())
            .unwrap(),
        FaultOutcome::Spurious
    );
    check_invariants(&mut t).unwrap();
}

//! The fault path's `map` (`src/stage2/fault_map.rs`): its outcomes, a
//! block replacing a table through the grace period, a split that counts
//! as a change.

mod common;

use common::*;
use pgwalk::fault::TableOutcome;
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
    assert_eq!(r, TableOutcome::Fixed);
    let r = h
        .map(Ipa(0x10_0000), K4, PhysAddr(0x9000_0000), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(r, TableOutcome::Spurious);
    // Permissions alone differ: the map leaves it to relax_perms.
    let r = h
        .map(Ipa(0x10_0000), K4, PhysAddr(0x9000_0000), Prot::R, &mut ())
        .unwrap();
    assert_eq!(r, TableOutcome::Spurious);
    check_invariants(&mut t).unwrap();
}

#[test]
fn fault_map_block_over_table_defers_the_free() {
    let mm = HeapMemory::new(POOL_PAGES);
    let mut t = Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), mm.clone()).unwrap();
    let f = t.fault_handler();
    assert_eq!(
        f.map(Ipa(0), K4, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap(),
        TableOutcome::Fixed
    );
    assert_eq!(
        f.map(Ipa(0), 2 << 20, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap(),
        TableOutcome::Fixed
    );
    assert_eq!(mm.stats().deferred_frees, 1);
    assert!(mm.quiesce());
    check_invariants(&mut t).unwrap();
}

/// Found by the Rust hypervisor (dirty logging): a fault-path map of one
/// page over a write-protected block split the block but answered
/// `Spurious`, as if nothing had changed, and left the page read-only, so
/// the write fault took a second walk to relax it. A split is a change
/// (`Fixed`), and the page the fault asked for gets what it asked for; the
/// rest of the block keeps the block's mapping.
#[test]
fn a_fault_path_map_that_splits_a_block_is_fixed() {
    let mut t = table_with_pages(0);
    t.exclusive()
        .map(Ipa(0), M2, PhysAddr(RAM), Prot::RW, &mut ())
        .unwrap();
    t.shared().wrprotect(Ipa(0), M2).unwrap().flush();
    let f = t.fault_handler();
    let outcome = f
        .map(Ipa(K4), K4, PhysAddr(RAM + K4), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(outcome, TableOutcome::Fixed);
    let (leaf, level) = f.get_leaf(Ipa(K4)).unwrap();
    assert_eq!(level.get(), 3, "the block is split");
    assert!(leaf.writable(), "the faulting page is writable at once");
    assert_eq!(
        leaf.output_address(f.geometry().granule()),
        PhysAddr(RAM + K4)
    );
    for other in [0, 2 * K4, M2 - K4] {
        let (leaf, level) = f.get_leaf(Ipa(other)).unwrap();
        assert_eq!(level.get(), 3);
        assert!(leaf.is_valid() && leaf.readable() && !leaf.writable());
        assert_eq!(
            leaf.output_address(f.geometry().granule()),
            PhysAddr(RAM + other),
            "the rest of the block keeps its mapping"
        );
    }
    // The same map again changes nothing.
    assert_eq!(
        f.map(Ipa(K4), K4, PhysAddr(RAM + K4), Prot::RW, &mut ())
            .unwrap(),
        TableOutcome::Spurious
    );
    // A page already there keeps its permissions: widening them is
    // relax_perms' business.
    assert_eq!(
        f.map(Ipa(2 * K4), K4, PhysAddr(RAM + 2 * K4), Prot::RW, &mut ())
            .unwrap(),
        TableOutcome::Spurious
    );
    assert!(!f.get_leaf(Ipa(2 * K4)).unwrap().0.writable());
    assert_eq!(
        f.relax_perms(Ipa(2 * K4), Prot::W).unwrap(),
        TableOutcome::Fixed
    );
    check_invariants(&mut t).unwrap();
}

/// A split that gives the faulting page fewer permissions than the block
/// had invalidates that page once more: between the split and the page's
/// update another vCPU may have cached the block's writable translation.
#[test]
fn a_split_that_narrows_the_faulting_page_invalidates_it() {
    let split_with = |prot: Prot| {
        let mut t = table_with_pages(0);
        t.exclusive()
            .map(Ipa(M2), M2, PhysAddr(RAM), Prot::RW, &mut ())
            .unwrap();
        let tlbi = |t: &Stage2<HeapMemory>| {
            let s = t.mm().stats();
            s.tlbi_ipa + s.tlbi_range + s.tlbi_vmid
        };
        let before = tlbi(&t);
        let f = t.fault_handler();
        assert_eq!(
            f.map(Ipa(M2 + K4), K4, PhysAddr(RAM + K4), prot, &mut ())
                .unwrap(),
            TableOutcome::Fixed
        );
        assert_eq!(
            f.get_leaf(Ipa(M2 + K4)).unwrap().0.writable(),
            prot.contains(Prot::W)
        );
        assert!(f.get_leaf(Ipa(M2)).unwrap().0.writable(), "the rest stays");
        let made = tlbi(&t) - before;
        check_invariants(&mut t).unwrap();
        made
    };
    assert_eq!(split_with(Prot::R), split_with(Prot::RW) + 1);
}

/// A leaf already there keeps its permissions wherever it sits, the first
/// entry of the address space and the entry just past a block this walk
/// split included: only the pages a split makes are this call's.
#[test]
fn a_page_this_walk_did_not_split_keeps_its_permissions() {
    // IPA 0: nothing has been split when the walk gets there.
    let mut t = table_with_pages(0);
    let f = t.fault_handler();
    assert_eq!(
        f.map(Ipa(0), K4, PhysAddr(RAM), Prot::R, &mut ()).unwrap(),
        TableOutcome::Fixed
    );
    assert_eq!(
        f.map(Ipa(0), K4, PhysAddr(RAM), Prot::RW, &mut ()).unwrap(),
        TableOutcome::Spurious
    );
    assert!(!f.get_leaf(Ipa(0)).unwrap().0.writable());
    check_invariants(&mut t).unwrap();

    // A read-only block at [0, 2 MiB) and a read-only page at 2 MiB; one
    // map over the block's last page and that page splits the block.
    let mut t = table_with_pages(0);
    let mut h = t.exclusive();
    h.map(Ipa(0), M2, PhysAddr(RAM), Prot::R, &mut ()).unwrap();
    h.map(Ipa(M2), K4, PhysAddr(RAM + M2), Prot::R, &mut ())
        .unwrap();
    let f = t.fault_handler();
    assert_eq!(
        f.map(
            Ipa(M2 - K4),
            2 * K4,
            PhysAddr(RAM + M2 - K4),
            Prot::RW,
            &mut ()
        )
        .unwrap(),
        TableOutcome::Fixed
    );
    let (split, level) = f.get_leaf(Ipa(M2 - K4)).unwrap();
    assert_eq!(level.get(), 3);
    assert!(
        split.writable(),
        "the split made this page: it is the call's"
    );
    assert!(!f.get_leaf(Ipa(0)).unwrap().0.writable(), "the rest stays");
    let (after, level) = f.get_leaf(Ipa(M2)).unwrap();
    assert_eq!(level.get(), 3);
    assert!(
        after.is_valid() && !after.writable(),
        "the split ended before it"
    );
    check_invariants(&mut t).unwrap();
}

/// A page the guest saw uncached was never cleaned; the fault path that
/// maps it cacheable owes the clean, as an exclusive map does.
#[test]
fn a_fault_path_map_that_makes_a_page_cacheable_cleans_it() {
    let mut t = table_with_pages(0);
    let f = t.fault_handler();
    let cleans = |t: &Stage2<HeapMemory>| t.mm().stats().dcache_cleans;
    let nc = Prot::RW | Prot::NORMAL_NC;
    assert_eq!(
        f.map(Ipa(0), K4, PhysAddr(RAM), nc, &mut ()).unwrap(),
        TableOutcome::Fixed
    );
    let before = cleans(&t);
    assert_eq!(
        f.map(Ipa(0), K4, PhysAddr(RAM), Prot::RW, &mut ()).unwrap(),
        TableOutcome::Fixed
    );
    assert_eq!(cleans(&t), before + 1, "now cacheable: cleaned");
    assert_eq!(
        f.map(Ipa(0), K4, PhysAddr(RAM), Prot::RW, &mut ()).unwrap(),
        TableOutcome::Spurious
    );
    assert_eq!(cleans(&t), before + 1, "no change: nothing owed");
    check_invariants(&mut t).unwrap();
}

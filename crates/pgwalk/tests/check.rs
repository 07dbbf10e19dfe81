//! The table check (`src/stage2/check.rs`): what it reports of a healthy
//! table, and each invariant it names when one is broken. The breakage is
//! written the way a C visitor would write it, through the raw entry
//! pointer, since pgwalk's own updates never break an invariant.

mod common;

use common::*;
use pgwalk::check::BrokenInvariant;
use pgwalk::descriptor::Descriptor;
use pgwalk::geometry::{Geometry, Granule, Level};
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::visit::{Action, VisitKind, WalkFlags};
use pgwalk::{Ipa, MemoryOps, PhysAddr, Prot, Stage2};

/// Overwrites the entry that translates `ipa` at `level` with `bits`,
/// bypassing the entry protocol (no count, no TLBI).
fn poke(t: &mut Stage2<HeapMemory>, ipa: u64, level: i8, bits: u64) {
    let mut poked = false;
    let flags = WalkFlags::LEAF | WalkFlags::TABLE_PRE;
    let walked = t.exclusive().walk(Ipa(ipa), K4, flags, |ctx| {
        if ctx.level().get() == level && !poked {
            poked = true;
            // SAFETY: the pointer is this entry's, valid and aligned, and
            // the walk is exclusive: nothing else reads or writes the table
            // meanwhile. The breakage is what the test checks for.
            unsafe { ctx.entry_ptr().write(bits) };
        }
        Ok(Action::Continue)
    });
    assert!(walked.unwrap().is_completed() && poked);
}

/// The table page that the level-`level` entry for `ipa` links.
fn table_below(t: &mut Stage2<HeapMemory>, ipa: u64, level: i8) -> PhysAddr {
    let mut found = None;
    let walked = t
        .exclusive()
        .walk(Ipa(ipa), K4, WalkFlags::TABLE_PRE, |ctx| {
            if ctx.kind() == VisitKind::TablePre && ctx.level().get() == level {
                found = Some(ctx.old().output_address(Granule::Size4KiB));
            }
            Ok(Action::Continue)
        });
    assert!(walked.unwrap().is_completed());
    found.unwrap()
}

#[test]
fn a_healthy_table_is_reported_as_the_host_check_reports_it() {
    let mut t = table(40);
    map(&mut t, G1, G1 + 2 * M2 + 3 * K4, 0x1_0000_0000, Prot::RW).unwrap();
    t.exclusive().annotate(Ipa(0), K4, 5, &mut ()).unwrap();
    let report = t.exclusive().check().unwrap();
    assert_eq!(report.leaves, [0, 1, 2, 3]);
    assert_eq!(report.annotations, 1);
    // Level 2 and 3 under the 1 GiB block's neighbour, and the same pair
    // for the annotation at 0.
    assert_eq!(report.table_pages, 4);
    assert_eq!(check_invariants(&mut t).unwrap(), report);
}

#[test]
fn every_page_of_a_concatenated_root_is_counted_on_its_own() {
    // 40 bits from level 1: two root pages, an entry in each.
    let mut t = table(40);
    map(&mut t, 0, M2, RAM, Prot::R).unwrap();
    map(&mut t, (1 << 40) - M2, M2, RAM, Prot::R).unwrap();
    assert_eq!(t.exclusive().check().unwrap().table_pages, 2);
    let second = PhysAddr(t.root().get() + K4);
    // SAFETY: a deliberate extra reference on the second root page, given
    // back below.
    unsafe { t.mm().get_page(second) };
    assert_eq!(
        t.exclusive().check(),
        Err(BrokenInvariant::Count {
            table: second,
            count: 3,
            entries: 1
        })
    );
    // SAFETY: gives back the reference taken above.
    unsafe { t.mm().put_page(second) };
    t.exclusive().check().unwrap();
}

#[test]
fn a_child_count_that_disagrees_with_its_entries() {
    let mut t = table(40);
    map(&mut t, 0, 2 * K4, RAM, Prot::RW).unwrap();
    let leaves = table_below(&mut t, 0, 2);
    // SAFETY: a deliberate extra reference, given back below.
    unsafe { t.mm().get_page(leaves) };
    let broken = t.exclusive().check().unwrap_err();
    assert_eq!(
        broken,
        BrokenInvariant::Count {
            table: leaves,
            count: 4,
            entries: 2
        }
    );
    assert_eq!(
        broken.to_string(),
        format!("table page {leaves:?}: count 4, expected 1 + 2 non-zero entries")
    );
    // SAFETY: gives back the reference taken above.
    unsafe { t.mm().put_page(leaves) };
    assert_eq!(t.exclusive().check().unwrap().leaves[3], 2);
}

#[test]
fn an_empty_child_table_is_counted_not_refused() {
    let mut t = table(40);
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    let leaves = table_below(&mut t, 0, 2);
    // The only page goes, count and all, but the table stays linked: what
    // the kernel's map leaves when the allocation below a table it just
    // linked fails.
    poke(&mut t, 0, 3, 0);
    // SAFETY: the reference of the entry just cleared; the table page keeps
    // its own.
    unsafe { t.mm().put_page(leaves) };
    let report = t.exclusive().check().unwrap();
    assert_eq!((report.empty_tables, report.table_pages), (1, 2));
    assert_eq!(report.leaves, [0; 4]);
    assert_eq!(check_invariants(&mut t).unwrap().empty_tables, 1);
}

#[test]
fn a_kernel_map_out_of_memory_leaves_an_empty_table_the_check_accepts() {
    use pgwalk::kvm::KvmMapOptions;
    // One page for the level-2 table, none for the level-3 one below it.
    let mm = HeapMemory::new(3);
    let mut t = Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), mm).unwrap();
    let mut h = t.exclusive();
    let r = h.kvm().map(
        Ipa(0),
        K4,
        PhysAddr(RAM),
        Prot::RW,
        &mut (),
        KvmMapOptions::default(),
    );
    assert_eq!(r, Err(pgwalk::Error::NoMemory));
    let report = h.check().unwrap();
    assert_eq!((report.empty_tables, report.table_pages), (1, 1));
    assert_eq!(check_invariants(&mut t).unwrap().empty_tables, 1);
}

#[test]
fn a_locked_marker_left_behind() {
    let mut t = table(40);
    map(&mut t, 0, 2 * K4, RAM, Prot::RW).unwrap();
    // The marker keeps the count of the page it replaced.
    poke(&mut t, K4, 3, 1 << 10);
    assert!(Descriptor::from_bits(1 << 10).is_locked());
    assert_eq!(
        t.exclusive().check(),
        Err(BrokenInvariant::Locked {
            addr: Ipa(K4),
            level: Level::LAST
        })
    );
    let e = check_invariants(&mut t).unwrap_err();
    assert!(e.contains("left locked"), "{e}");
}

#[test]
fn a_leaf_at_a_level_that_cannot_hold_one() {
    // 48 bits start at level 0, where no block may sit.
    let mut t = table(48);
    poke(&mut t, 0, 0, RAM | 0b01);
    // SAFETY: the reference of the entry just written.
    unsafe { t.mm().get_page(t.root()) };
    assert_eq!(
        t.exclusive().check(),
        Err(BrokenInvariant::LeafLevel {
            addr: Ipa(0),
            level: Level::new(0).unwrap()
        })
    );
}

#[test]
fn an_invalid_entry_of_unknown_shape() {
    let mut t = table(40);
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    let leaves = table_below(&mut t, 0, 2);
    // Bit 11 alone: neither an annotation (bits 9:2) nor the marker.
    poke(&mut t, K4, 3, 1 << 11);
    // SAFETY: the reference of the entry just written.
    unsafe { t.mm().get_page(leaves) };
    assert_eq!(
        t.exclusive().check(),
        Err(BrokenInvariant::UnknownInvalid {
            addr: Ipa(K4),
            level: Level::LAST,
            bits: 1 << 11
        })
    );
}

#[test]
fn a_table_the_host_refuses_is_reported_not_followed() {
    let mut t = table(40);
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    let mut asked = Vec::new();
    let broken = t.exclusive().check_with(|table| {
        asked.push(table);
        false
    });
    assert_eq!(asked.len(), 1, "the check stops at the first refusal");
    assert_eq!(
        broken,
        Err(BrokenInvariant::ForeignTable {
            addr: Ipa(0),
            level: Level::new(1).unwrap(),
            table: asked[0]
        })
    );
}

#[test]
fn a_root_at_level_two_holds_the_leaf_tables_directly() {
    // One root page at level 2: its entries link the level-3 tables.
    let g = Geometry::new(Granule::Size4KiB, 30, Level::new(2).unwrap(), 40).unwrap();
    let mut t = Stage2::with_geometry(g, HeapMemory::new(16)).unwrap();
    assert_eq!(t.geometry().root_pages(), 1);
    map(&mut t, M2, 3 * K4, RAM, Prot::RW).unwrap();
    let report = t.exclusive().check().unwrap();
    assert_eq!((report.table_pages, report.leaves), (1, [0, 0, 0, 3]));
}

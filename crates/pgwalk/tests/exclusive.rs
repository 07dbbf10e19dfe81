//! Exclusive stage-2 operations: map, unmap, annotate, split, get_leaf and
//! destroy, with the table's invariants checked after every step.

use pgwalk::descriptor::{Descriptor, Exec, MemAttr, Shareability};
use pgwalk::geometry::{Geometry, Level};
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::visit::{Action, WalkFlags};
use pgwalk::{Error, Ipa, PhysAddr, Prot, Stage2};

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;

fn table(ia_bits: u8) -> Stage2<HeapMemory> {
    Stage2::with_geometry(
        Geometry::for_ia_bits(ia_bits, 48).unwrap(),
        HeapMemory::new(8192),
    )
    .unwrap()
}

fn check(t: &mut Stage2<HeapMemory>) -> pgwalk::host::TableReport {
    check_invariants(t).unwrap_or_else(|e| panic!("invariant broken: {e}"))
}

fn leaf(t: &mut Stage2<HeapMemory>, ipa: u64) -> (Descriptor, i8) {
    let (d, l) = t.exclusive().get_leaf(Ipa(ipa)).unwrap();
    (d, l.get())
}

fn map(t: &mut Stage2<HeapMemory>, ipa: u64, size: u64, pa: u64, prot: Prot) -> Result<(), Error> {
    t.exclusive()
        .map(Ipa(ipa), size, PhysAddr(pa), prot, &mut ())
}

#[test]
fn blocks_where_size_and_alignment_allow() {
    let mut t = table(40);
    map(&mut t, G1, G1 + 2 * M2 + 3 * K4, 0x1_0000_0000, Prot::RW).unwrap();
    let r = check(&mut t);
    assert_eq!(
        r.leaves,
        [0, 1, 2, 3],
        "one 1G block, two 2M blocks, three pages"
    );
    assert_eq!(r.table_pages, 2, "one level-2 and one level-3 table");
    let (d, l) = leaf(&mut t, G1 + 0x1234_5000);
    assert_eq!(l, 1);
    assert_eq!(
        d.output_address(pgwalk::geometry::Granule::Size4KiB),
        PhysAddr(0x1_0000_0000)
    );
    let (d, l) = leaf(&mut t, 2 * G1 + M2 + 0x1000);
    assert_eq!(
        (
            l,
            d.output_address(pgwalk::geometry::Granule::Size4KiB).get()
        ),
        (2, 0x1_4020_0000)
    );
    let (d, l) = leaf(&mut t, 2 * G1 + 2 * M2 + 2 * K4);
    assert_eq!(
        (
            l,
            d.output_address(pgwalk::geometry::Granule::Size4KiB).get()
        ),
        (3, 0x1_4040_2000)
    );
    assert!(!leaf(&mut t, 2 * G1 + 2 * M2 + 3 * K4).0.is_valid());
}

#[test]
fn misaligned_output_forces_pages() {
    let mut t = table(40);
    // IPA 2M-aligned but PA only 4K-aligned: no block can be used.
    map(&mut t, 0, M2, 0x8000_1000, Prot::R).unwrap();
    assert_eq!(check(&mut t).leaves, [0, 0, 0, 512]);
}

#[test]
fn attributes_reach_the_descriptor() {
    let mut t = table(40);
    map(&mut t, 0, K4, 0x8000_0000, Prot::R | Prot::DEVICE).unwrap();
    map(&mut t, K4, K4, 0x8000_1000, Prot::RW | Prot::NORMAL_NC).unwrap();
    map(&mut t, 2 * K4, K4, 0x8000_2000, Prot::R | Prot::PX).unwrap();
    let (d, _) = leaf(&mut t, 0);
    assert_eq!(d.mem_attr(), Ok(MemAttr::DeviceNGnRE));
    assert!(d.readable() && !d.writable() && d.young());
    assert_eq!(d.exec(), Exec::Never);
    assert_eq!(d.shareability(), Ok(Shareability::Inner));
    let (d, _) = leaf(&mut t, K4);
    assert_eq!(d.mem_attr(), Ok(MemAttr::NormalNonCacheable));
    assert!(d.writable());
    let (d, _) = leaf(&mut t, 2 * K4);
    assert_eq!(d.mem_attr(), Ok(MemAttr::NormalWriteBack));
    assert_eq!(d.exec(), Exec::El1Only);
}

#[test]
fn remapping_changes_attributes_and_address_with_break_before_make() {
    let mut t = table(40);
    map(&mut t, 0, 4 * K4, 0x8000_0000, Prot::RW).unwrap();
    let before = t.mm().stats();
    map(&mut t, K4, K4, 0x8000_1000, Prot::R).unwrap();
    let s = t.mm().stats();
    // Regression (issue 10, item 4): the permission-only change needs no
    // break, but it used to skip the TLB invalidation too, leaving the
    // guest a cached writable translation of a read-only page.
    assert_eq!(
        s.tlbi_ipa,
        before.tlbi_ipa + 1,
        "taking write away: no break, but a TLBI after the store"
    );
    map(&mut t, 2 * K4, K4, 0x9000_0000, Prot::RW).unwrap();
    let s2 = t.mm().stats();
    assert_eq!(
        s2.tlbi_ipa,
        s.tlbi_ipa + 1,
        "new output address: break-before-make with a TLBI"
    );
    assert!(!leaf(&mut t, K4).0.writable());
    assert_eq!(
        leaf(&mut t, 2 * K4)
            .0
            .output_address(pgwalk::geometry::Granule::Size4KiB),
        PhysAddr(0x9000_0000)
    );
    assert!(leaf(&mut t, 0).0.writable(), "neighbours untouched");
    check(&mut t);
}

#[test]
fn block_replaces_page_table_and_frees_it() {
    let mut t = table(40);
    map(&mut t, 0, M2, 0x8000_1000, Prot::RW).unwrap();
    assert_eq!(check(&mut t).table_pages, 2);
    let allocated = t.mm().live_pages();
    let tlbi_range = t.mm().stats().tlbi_range;
    map(&mut t, 0, M2, 0x8000_0000, Prot::RW).unwrap();
    let r = check(&mut t);
    assert_eq!(r.leaves, [0, 0, 1, 0]);
    assert_eq!(r.table_pages, 1, "the level-3 table is gone");
    assert_eq!(t.mm().live_pages(), allocated - 1);
    assert_eq!(
        t.mm().stats().tlbi_range,
        tlbi_range + 1,
        "the table's range was invalidated"
    );
}

#[test]
fn page_inside_a_block_splits_it_and_keeps_the_rest() {
    let mut t = table(40);
    map(&mut t, 0, M2, 0x8000_0000, Prot::RW).unwrap();
    map(&mut t, 5 * K4, K4, 0x9000_0000, Prot::R).unwrap();
    let r = check(&mut t);
    assert_eq!(r.leaves, [0, 0, 0, 512], "the block became 512 pages");
    for i in [0u64, 4, 6, 511] {
        let (d, l) = leaf(&mut t, i * K4);
        assert_eq!(l, 3);
        assert_eq!(
            d.output_address(pgwalk::geometry::Granule::Size4KiB).get(),
            0x8000_0000 + i * K4
        );
        assert!(d.writable());
    }
    let (d, _) = leaf(&mut t, 5 * K4);
    assert_eq!(
        d.output_address(pgwalk::geometry::Granule::Size4KiB).get(),
        0x9000_0000
    );
    assert!(!d.writable());
}

#[test]
fn gigabyte_block_split_down_two_levels() {
    let mut t = table(40);
    map(&mut t, 0, G1, 0x4000_0000, Prot::RW).unwrap();
    map(&mut t, 3 * M2 + K4, K4, 0x1000, Prot::R).unwrap();
    let r = check(&mut t);
    assert_eq!(r.leaves, [0, 0, 511, 512]);
    assert_eq!(
        leaf(&mut t, 100 * M2)
            .0
            .output_address(pgwalk::geometry::Granule::Size4KiB)
            .get(),
        0x4000_0000 + 100 * M2
    );
}

#[test]
fn unmap_frees_empty_tables_and_keeps_the_rest() {
    let mut t = table(40);
    map(&mut t, 0, 4 * M2, 0x8000_1000, Prot::RW).unwrap();
    assert_eq!(check(&mut t).table_pages, 5);
    t.exclusive().unmap(Ipa(M2), M2).unwrap();
    let r = check(&mut t);
    assert_eq!(r.table_pages, 4, "the emptied level-3 table was freed");
    assert_eq!(r.leaves[3], 3 * 512);
    t.exclusive().unmap(Ipa(0), K4).unwrap();
    assert_eq!(check(&mut t).leaves[3], 3 * 512 - 1);
    t.exclusive().unmap(Ipa(0), 4 * M2).unwrap();
    let r = check(&mut t);
    assert_eq!(
        r.table_pages, 0,
        "everything freed, up to the level-2 table"
    );
    assert_eq!(t.mm().live_pages(), t.geometry().root_pages());
}

#[test]
fn unmap_invalidates_and_cleans() {
    let mut t = table(40);
    map(&mut t, 0, 2 * K4, 0x8000_0000, Prot::RW).unwrap();
    map(&mut t, 2 * K4, K4, 0x9000_0000, Prot::RW | Prot::DEVICE).unwrap();
    let s = t.mm().stats();
    t.exclusive().unmap(Ipa(0), 3 * K4).unwrap();
    let s2 = t.mm().stats();
    assert_eq!(s2.tlbi_ipa - s.tlbi_ipa, 3, "one TLBI per page");
    assert_eq!(
        s2.dcache_cleans - s.dcache_cleans,
        2,
        "cacheable pages only"
    );
}

#[test]
fn partial_block_unmap_is_refused_untouched() {
    let mut t = table(40);
    map(&mut t, 0, M2, 0x8000_0000, Prot::RW).unwrap();
    let err = t.exclusive().unmap(Ipa(K4), K4).unwrap_err();
    assert_eq!(
        err,
        Error::SplitsBlock {
            addr: K4,
            level: Level::new(2).unwrap()
        }
    );
    assert_eq!(check(&mut t).leaves, [0, 0, 1, 0], "nothing changed");
    t.exclusive().split(Ipa(0), M2, &mut ()).unwrap();
    t.exclusive().unmap(Ipa(K4), K4).unwrap();
    assert_eq!(check(&mut t).leaves, [0, 0, 0, 511]);
}

#[test]
fn split_keeps_every_translation() {
    let mut t = table(40);
    map(&mut t, G1, G1, 0x1_0000_0000, Prot::RWX).unwrap();
    let before = t.exclusive().get_leaf(Ipa(G1 + 0x1234_5000)).unwrap().0;
    t.exclusive().split(Ipa(G1), G1, &mut ()).unwrap();
    let r = check(&mut t);
    assert_eq!(r.leaves, [0, 0, 0, 512 * 512]);
    let (after, l) = leaf(&mut t, G1 + 0x1234_5000);
    assert_eq!(l, 3);
    assert_eq!(after.attrs(), before.attrs());
    assert_eq!(
        after
            .output_address(pgwalk::geometry::Granule::Size4KiB)
            .get(),
        0x1_1234_5000
    );
}

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

#[test]
fn errors_for_bad_input_leave_the_table_alone() {
    let mut t = table(40);
    map(&mut t, 0, K4, 0x8000_0000, Prot::R).unwrap();
    let live = t.mm().live_pages();
    let cases: [(u64, u64, u64, Prot); 7] = [
        (0x1001, K4, 0, Prot::R),
        (0, 0x1001, 0, Prot::R),
        (0, K4, 0x123, Prot::R),
        (0, 0, 0, Prot::R),
        (1 << 40, K4, 0, Prot::R),
        (0, K4, 1 << 48, Prot::R),
        (0, K4, 0, Prot::DEVICE | Prot::X),
    ];
    for (ipa, size, pa, prot) in cases {
        let e = map(&mut t, ipa, size, pa, prot);
        assert!(
            e.is_err(),
            "map({ipa:#x}, {size:#x}, {pa:#x}, {prot:?}) accepted"
        );
    }
    assert!(matches!(
        map(&mut t, (1 << 40) - K4, 2 * K4, 0, Prot::R),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        map(&mut t, 0, K4, 0x123, Prot::R),
        Err(Error::Misaligned { .. })
    ));
    assert!(matches!(
        map(&mut t, 0, 0, 0, Prot::R),
        Err(Error::EmptyRange)
    ));
    assert!(matches!(
        map(&mut t, 0, K4, 1 << 48, Prot::R),
        Err(Error::OutputTooLarge { .. })
    ));
    assert!(matches!(
        t.exclusive().unmap(Ipa(u64::MAX - 0xfff), K4),
        Err(Error::OutOfRange { .. })
    ));
    assert_eq!(t.mm().live_pages(), live);
    assert_eq!(
        leaf(&mut t, 0)
            .0
            .output_address(pgwalk::geometry::Granule::Size4KiB)
            .get(),
        0x8000_0000
    );
    check(&mut t);
}

#[test]
fn out_of_memory_is_an_error_and_retry_completes() {
    let mut t = table(40);
    let live = t.mm().live_pages();
    t.mm().set_page_limit(live + 1);
    assert_eq!(
        map(&mut t, 0, 4 * M2, 0x8000_1000, Prot::RW),
        Err(Error::NoMemory)
    );
    check(&mut t);
    t.mm().set_page_limit(usize::MAX);
    map(&mut t, 0, 4 * M2, 0x8000_1000, Prot::RW).unwrap();
    assert_eq!(check(&mut t).leaves[3], 4 * 512);
    assert!(t.mm().stats().alloc_failures > 0);
}

#[test]
fn out_of_memory_while_splitting_loses_nothing() {
    let mut t = table(40);
    map(&mut t, 0, G1, 0x4000_0000, Prot::RW).unwrap();
    let live = t.mm().live_pages();
    t.mm().set_page_limit(live + 1);
    assert_eq!(map(&mut t, K4, K4, 0x1000, Prot::R), Err(Error::NoMemory));
    check(&mut t);
    // Whatever level it got to, every address still translates as before.
    for addr in [0, K4, 5 * M2 + 3 * K4, G1 - K4] {
        let (d, l) = leaf(&mut t, addr);
        let size = t.geometry().entry_size(Level::new(l).unwrap());
        let pa = d.output_address(pgwalk::geometry::Granule::Size4KiB).get() + (addr & (size - 1));
        assert_eq!(pa, 0x4000_0000 + addr, "at {addr:#x}");
    }
}

#[test]
fn destroy_returns_every_page() {
    let mm = HeapMemory::new(8192);
    {
        let mut t =
            Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), mm.clone()).unwrap();
        map(&mut t, 0, 3 * M2 + 5 * K4, 0x8000_1000, Prot::RW).unwrap();
        map(&mut t, 3 * G1, G1, 0x1_0000_0000, Prot::R).unwrap();
        t.exclusive().annotate(Ipa(5 * G1), K4, 3, &mut ()).unwrap();
        assert!(mm.live_pages() > 2);
    }
    assert_eq!(mm.live_pages(), 0);
    let s = mm.stats();
    assert_eq!(s.pages_allocated, s.pages_freed);
    assert_eq!(s.double_frees, 0);
}

#[test]
fn concatenated_root_covers_the_whole_input_space() {
    // 40 bits from level 1: a two-page root.
    let mut t = table(40);
    assert_eq!(t.geometry().root_pages(), 2);
    map(&mut t, (1 << 40) - M2, M2, 0x8000_0000, Prot::R).unwrap();
    map(&mut t, 0, M2, 0x8000_0000, Prot::R).unwrap();
    assert_eq!(leaf(&mut t, (1 << 40) - K4).1, 2);
    check(&mut t);
}

#[test]
fn walk_visits_pre_leaf_post_in_order() {
    let mut t = table(40);
    map(&mut t, 0, 2 * K4, 0x8000_0000, Prot::R).unwrap();
    let mut seen = Vec::new();
    let flags = WalkFlags::LEAF | WalkFlags::TABLE_PRE | WalkFlags::TABLE_POST;
    let walked = t
        .exclusive()
        .walk(Ipa(0), 2 * K4, flags, |ctx| {
            seen.push((ctx.kind(), ctx.level().get(), ctx.addr().get()));
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    use pgwalk::visit::VisitKind::*;
    assert_eq!(
        seen,
        [
            (TablePre, 1, 0),
            (TablePre, 2, 0),
            (Leaf, 3, 0),
            (Leaf, 3, K4),
            (TablePost, 2, 0),
            (TablePost, 1, 0)
        ]
    );
}

#[test]
fn walk_page_aligns_and_rejects_out_of_range() {
    let mut t = table(32);
    let mut n = 0;
    let w = t
        .exclusive()
        .walk(Ipa(0x1800), 0x1000, WalkFlags::LEAF, |_| {
            n += 1;
            Ok(Action::Continue)
        });
    assert!(w.is_ok());
    // 0x1800..0x2800 widens to 0x1000..0x3000; empty table: one level-2 leaf
    // (invalid) covers both pages.
    assert_eq!(n, 1);
    let e = t
        .exclusive()
        .walk(Ipa(0xffff_f000), 0x2000, WalkFlags::LEAF, |_| {
            Ok(Action::Continue)
        });
    assert!(matches!(e, Err(Error::OutOfRange { .. })));
}

#[test]
fn stop_ends_the_walk_with_the_visitors_error() {
    let mut t = table(40);
    map(&mut t, 0, 4 * K4, 0x8000_0000, Prot::R).unwrap();
    let mut visits = 0;
    let r = t.exclusive().walk(Ipa(0), 4 * K4, WalkFlags::LEAF, |ctx| {
        visits += 1;
        if ctx.addr() == Ipa(2 * K4) {
            return Err(pgwalk::visit::Unfinished::Stop(Error::NoRegion {
                addr: 2 * K4,
            }));
        }
        Ok(Action::Continue)
    });
    assert_eq!(r.unwrap_err(), Error::NoRegion { addr: 2 * K4 });
    assert_eq!(visits, 3);
}

#[test]
fn visitor_set_keeps_counts() {
    let mut t = table(40);
    map(&mut t, 0, 4 * K4, 0x8000_0000, Prot::RW).unwrap();
    // Clear two pages and write-protect another through a custom visitor.
    let w = t.exclusive().walk(Ipa(0), 3 * K4, WalkFlags::LEAF, |ctx| {
        let old = ctx.old();
        if ctx.addr().get() < 2 * K4 {
            ctx.set(Descriptor::INVALID);
        } else {
            ctx.set(old.with_writable(false));
        }
        Ok(Action::Continue)
    });
    assert!(w.unwrap().is_completed());
    assert_eq!(check(&mut t).leaves[3], 2);
}

#[test]
#[should_panic(expected = "visitors may change leaves only")]
fn visitor_cannot_overwrite_a_table_entry() {
    let mut t = table(40);
    map(&mut t, 0, K4, 0x8000_0000, Prot::RW).unwrap();
    let _ = t.exclusive().walk(Ipa(0), K4, WalkFlags::TABLE_PRE, |ctx| {
        ctx.set(Descriptor::INVALID);
        Ok(Action::Continue)
    });
}

//! `map` under the exclusive capability (`src/stage2/map.rs`): blocks where
//! size and alignment allow, attributes, remaps with break-before-make,
//! blocks replacing tables and tables splitting blocks, running out of
//! memory; the table's invariants checked after every step.

mod common;

use common::*;
use pgwalk::descriptor::{Exec, MemAttr, Shareability};
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Granule, Level};
use pgwalk::host::HeapMemory;
use pgwalk::{Error, Ipa, MapOptions, PhysAddr, Prot, Stage2};

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

/// `MapOptions::pages_only` (the kernel's `force_pte`): a range that could
/// be one block is mapped as pages, by the exclusive map and by the fault
/// path alike.
#[test]
fn pages_only_maps_a_block_sized_range_as_pages() {
    let opts = MapOptions::new().pages_only();
    let mut t = table(40);
    t.exclusive()
        .map_with(Ipa(0), M2, PhysAddr(RAM), Prot::RW, &mut (), opts)
        .unwrap();
    let f = t.fault_handler();
    assert_eq!(
        f.map_with(Ipa(G1), M2, PhysAddr(RAM + M2), Prot::RW, &mut (), opts)
            .unwrap(),
        TableOutcome::Fixed
    );
    assert_eq!(check(&mut t).leaves, [0, 0, 0, 1024]);
    for (ipa, pa) in [(0, RAM), (M2 - K4, RAM + M2 - K4), (G1 + K4, RAM + M2 + K4)] {
        let (d, l) = leaf(&mut t, ipa);
        assert_eq!(l, 3, "{ipa:#x}");
        assert_eq!(d.output_address(Granule::Size4KiB), PhysAddr(pa));
    }
}

/// A block remapped whole to an address aligned only for the next level
/// down: the block is split and every piece then remapped. The split's
/// table page holds the block's pieces (and their references), so it is
/// not one that may be filled in one go as if it were empty.
#[test]
fn a_block_remapped_to_a_finer_aligned_address_is_split_then_remapped() {
    let mut t = table(40);
    map(&mut t, G1, G1, RAM, Prot::RW).unwrap();
    assert_eq!(check(&mut t).leaves, [0, 1, 0, 0]);
    map(&mut t, G1, G1, 2 * RAM + M2, Prot::R).unwrap();
    assert_eq!(check(&mut t).leaves, [0, 0, 512, 0]);
    for off in [0, M2, G1 - M2] {
        let (d, l) = leaf(&mut t, G1 + off);
        assert_eq!(l, 2);
        assert_eq!(
            d.output_address(Granule::Size4KiB),
            PhysAddr(2 * RAM + M2 + off)
        );
        assert!(!d.writable());
    }
}

/// The cache maintenance a map owes the guest (without FEAT_S2FWB): a page
/// newly mapped cacheable is cleaned to the point of coherency first, one
/// newly mapped executable is also invalidated from the instruction cache;
/// a change that keeps the page, and keeps it executable, owes neither.
/// `skip_cmo` leaves it all to the caller.
#[test]
fn a_map_owes_the_caches_what_the_guest_will_see_anew() {
    let mut t = table(40);
    let cmo = |t: &Stage2<HeapMemory>| {
        let s = t.mm().stats();
        (s.dcache_cleans, s.icache_invals)
    };
    let owed = |t: &mut Stage2<HeapMemory>, ipa, pa, prot| {
        let before = cmo(t);
        map(t, ipa, K4, pa, prot).unwrap();
        let after = cmo(t);
        (after.0 - before.0, after.1 - before.1)
    };
    assert_eq!(owed(&mut t, 0, RAM, Prot::RW), (1, 0), "new, cacheable");
    assert_eq!(
        owed(&mut t, K4, RAM + K4, Prot::RWX),
        (1, 1),
        "new, executable"
    );
    assert_eq!(
        owed(&mut t, K4, RAM + K4, Prot::R | Prot::X),
        (0, 0),
        "the same page, still executable"
    );
    assert_eq!(
        owed(&mut t, 0, RAM, Prot::RWX),
        (0, 1),
        "the same page, now executable"
    );
    assert_eq!(
        owed(&mut t, K4, RAM + 2 * K4, Prot::RWX),
        (1, 1),
        "an executable page moved"
    );
    assert_eq!(
        owed(&mut t, 2 * K4, 0x0900_0000, Prot::RW | Prot::DEVICE),
        (0, 0),
        "device memory"
    );
    // Nothing cleaned the page while the guest saw it uncached, so the
    // host's dirty lines for it may still be in the cache.
    assert_eq!(
        owed(&mut t, 4 * K4, RAM + 4 * K4, Prot::RW | Prot::NORMAL_NC),
        (0, 0),
        "non-cacheable memory"
    );
    assert_eq!(
        owed(&mut t, 4 * K4, RAM + 4 * K4, Prot::RW),
        (1, 0),
        "the same page, now cacheable"
    );
    let before = cmo(&t);
    t.exclusive()
        .map_with(
            Ipa(3 * K4),
            K4,
            PhysAddr(RAM + 3 * K4),
            Prot::RWX,
            &mut (),
            MapOptions::new().skip_cmo(),
        )
        .unwrap();
    assert_eq!(cmo(&t), before, "skip_cmo");
    check(&mut t);
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

/// What the README promises of a map that runs out of table pages in the
/// middle: the part before the failing entry is mapped, the rest is as it
/// was, no table is left empty, and every page taken is linked.
#[test]
fn out_of_memory_in_the_middle_maps_exactly_the_part_before() {
    let mut t = table(40);
    map(&mut t, M2, K4, 0x9000_0000, Prot::R).unwrap();
    let live = t.mm().live_pages();
    // Pages from 2 MiB - 8 KiB to 4 MiB + 4 KiB: the first leaf table is
    // there to be had, the one for 4 MiB is not.
    t.mm().set_page_limit(live + 1);
    let start = M2 - 2 * K4;
    assert_eq!(
        map(&mut t, start, M2 + 3 * K4, RAM, Prot::RW),
        Err(Error::NoMemory)
    );
    // Before the failure: the two pages below 2 MiB, and the 2 MiB above
    // it (its leaf table existed: one for the page mapped first).
    for addr in [start, start + K4, M2, 2 * M2 - K4] {
        let (d, l) = leaf(&mut t, addr);
        let pa = d.output_address(pgwalk::geometry::Granule::Size4KiB).get();
        assert_eq!((pa, l), (RAM + addr - start, 3));
    }
    // From the failing entry on, nothing changed.
    assert!(!leaf(&mut t, 2 * M2).0.is_valid());
    let report = check(&mut t);
    assert_eq!((report.table_pages, report.empty_tables), (3, 0));
    assert_eq!(t.mm().live_pages(), live + 1);
    assert_eq!(t.mm().stats().double_frees, 0);
    t.mm().set_page_limit(usize::MAX);
    map(&mut t, start, M2 + 3 * K4, RAM, Prot::RW).unwrap();
    assert_eq!(check(&mut t).leaves[3], 2 + 512 + 1);
}

/// A map or an annotation that runs out of memory after linking a new
/// table frees that table again, wherever its range lies: the clean-up
/// after the failure walks the call's own range (here in the last GiB of
/// the input space, where a fresh level-2 table is linked and the leaf
/// table under it cannot be had).
#[test]
fn out_of_memory_after_a_new_table_frees_it_at_the_calls_own_range() {
    let mut t = table(40);
    let live = t.mm().live_pages();
    let ipa = (1 << 40) - G1 + K4;
    t.mm().set_page_limit(live + 1);
    assert_eq!(map(&mut t, ipa, K4, RAM, Prot::RW), Err(Error::NoMemory));
    assert_eq!(check(&mut t).empty_tables, 0);
    assert_eq!(t.mm().live_pages(), live);
    assert_eq!(
        t.exclusive().annotate(Ipa(ipa), K4, 1, &mut ()),
        Err(Error::NoMemory)
    );
    assert_eq!(check(&mut t).empty_tables, 0);
    assert_eq!(t.mm().live_pages(), live);
    assert_eq!(t.mm().stats().double_frees, 0);
}

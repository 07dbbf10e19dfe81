//! `unmap` (`src/stage2/unmap.rs`): emptied tables freed, TLB and cache
//! maintenance per page, a partial block refused.

mod common;

use common::*;
use pgwalk::geometry::Level;
use pgwalk::{Error, Ipa, Prot};

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
fn unmapping_whole_page_tables_does_each_leaf_s_maintenance_and_frees_them() {
    let mut t = table(40);
    // Two page tables: the first all cacheable pages but one device page
    // and one owner annotation, the second all cacheable.
    map(&mut t, 0, 2 * M2, 0x8000_1000, Prot::RW).unwrap();
    map(&mut t, K4, K4, 0x9000_0000, Prot::RW | Prot::DEVICE).unwrap();
    t.exclusive().unmap(Ipa(2 * K4), K4).unwrap();
    t.exclusive().annotate(Ipa(2 * K4), K4, 7, &mut ()).unwrap();
    let before = t.mm().live_pages();
    let s = t.mm().stats();
    t.exclusive().unmap(Ipa(0), 2 * M2).unwrap();
    let s2 = t.mm().stats();
    // The leaves of a table unmapped whole are invalidated by runs of 64
    // (each run before its pages are cleaned), and each table freed by its
    // range.
    assert_eq!(s2.tlbi_ipa - s.tlbi_ipa, 0, "no TLBI per page");
    assert_eq!(s2.tlbi_range - s.tlbi_range, 2 * 512 / 64 + 3);
    assert_eq!(
        s2.dcache_cleans - s.dcache_cleans,
        2 * 512 - 2,
        "cacheable pages only"
    );
    assert_eq!(
        s2.pages_freed - s.pages_freed,
        3,
        "both page tables and the level-2 table"
    );
    assert_eq!(t.mm().live_pages(), before - 3);
    assert_eq!(s2.double_frees, 0);
    let r = check(&mut t);
    assert_eq!(r.leaves, [0, 0, 0, 0]);
    assert_eq!(r.table_pages, 0);
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

/// A range that starts clear of any block but ends inside one is refused
/// at its end, with nothing changed.
#[test]
fn an_unmap_ending_inside_a_block_is_refused_untouched() {
    let mut t = table(40);
    map(&mut t, K4, K4, 0x8000_0000, Prot::RW).unwrap();
    map(&mut t, M2, M2, 0x8020_0000, Prot::RW).unwrap();
    let err = t.exclusive().unmap(Ipa(K4), M2).unwrap_err();
    assert_eq!(
        err,
        Error::SplitsBlock {
            addr: M2 + K4,
            level: Level::new(2).unwrap()
        }
    );
    assert_eq!(check(&mut t).leaves, [0, 0, 1, 1], "nothing changed");
}

//! Bad input for the granules and LPA2: each is an error (or, for a
//! visitor's own bug, a panic) that names the rule, and the table stays as
//! it was.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pgwalk::descriptor::{Descriptor, LeafAttrs};
use pgwalk::geometry::{Geometry, Granule, Level, TableFormat};
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::visit::{Action, WalkFlags};
use pgwalk::{Error, Ipa, PhysAddr, Prot, Stage2};

fn lpa2(granule: Granule) -> TableFormat {
    TableFormat::new(granule, true).unwrap()
}

fn table(format: TableFormat, ia: u8, oa: u8) -> Stage2<HeapMemory> {
    let g = Geometry::for_ia_bits_in(format, ia, oa).unwrap();
    Stage2::with_geometry(g, HeapMemory::with_format(format, 256)).unwrap()
}

#[test]
fn a_host_whose_pages_are_another_size_is_refused() {
    let g = Geometry::for_ia_bits_in(Granule::Size64KiB, 48, 48).unwrap();
    let mm = HeapMemory::new(16);
    match Stage2::with_geometry(g, mm.clone()) {
        Err(Error::Geometry(why)) => assert!(why.contains("another format"), "{why}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(mm.live_pages(), 0);
    // The same pages with and without LPA2 are two formats too.
    let g = Geometry::for_ia_bits_in(lpa2(Granule::Size4KiB), 48, 48).unwrap();
    assert!(Stage2::with_geometry(g, HeapMemory::new(16)).is_err());
}

#[test]
fn table_pages_the_descriptors_cannot_address_are_refused() {
    // A 4 KiB pool at 2^48: no table descriptor without LPA2 holds that.
    let g = Geometry::for_ia_bits(40, 48).unwrap();
    let mm = HeapMemory::at(1 << 48, 16);
    assert!(matches!(
        Stage2::with_geometry(g, mm.clone()),
        Err(Error::OutputTooLarge { oa_bits: 48, .. })
    ));
    assert_eq!(mm.live_pages(), 0);
    // With LPA2 it can, and the walker follows it there.
    let f = lpa2(Granule::Size4KiB);
    let g = Geometry::for_ia_bits_in(f, 40, 52).unwrap();
    let mut t = Stage2::with_geometry(g, HeapMemory::with_format_at(f, 1 << 50, 64)).unwrap();
    t.exclusive()
        .map(
            Ipa(0x1000),
            0x1000,
            PhysAddr(0x8000_1000),
            Prot::RW,
            &mut (),
        )
        .unwrap();
    let (leaf, level) = t.shared().get_leaf(Ipa(0x1000)).unwrap();
    assert_eq!(
        (leaf.output_address(f).get(), level.get()),
        (0x8000_1000, 3)
    );
    check_invariants(&mut t).unwrap();
}

#[test]
fn output_addresses_beyond_ps_are_refused() {
    for (format, oa) in [
        (TableFormat::from(Granule::Size64KiB), 48),
        (Granule::Size64KiB.into(), 52),
        (lpa2(Granule::Size4KiB), 52),
        (lpa2(Granule::Size16KiB), 44),
    ] {
        let mut t = table(format, 44, oa);
        let page = format.granule().size();
        let top = (1u64 << oa) - page;
        t.exclusive()
            .map(Ipa(0), page, PhysAddr(top), Prot::RW, &mut ())
            .unwrap_or_else(|e| panic!("{format}: the last page below PS: {e}"));
        let (leaf, _) = t.shared().get_leaf(Ipa(0)).unwrap();
        assert_eq!(leaf.output_address(format).get(), top, "{format}");
        let r = t
            .exclusive()
            .map(Ipa(page), page, PhysAddr(1 << oa), Prot::RW, &mut ());
        assert_eq!(
            r,
            Err(Error::OutputTooLarge {
                pa: (1 << oa) + page - 1,
                oa_bits: oa
            }),
            "{format}"
        );
        assert!(!t.shared().get_leaf(Ipa(page)).unwrap().0.is_valid());
    }
}

#[test]
fn a_block_the_granule_lacks_is_a_panic_naming_the_rule() {
    // 64 KiB has 512 MiB blocks at level 2 and no 4 TiB ones at level 1
    // (Linux 6.12 does not use them).
    let mut t = table(Granule::Size64KiB.into(), 52, 52);
    let attrs = LeafAttrs::from_prot(Prot::RW).unwrap();
    let level1 = Level::new(1).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        t.exclusive()
            .walk(Ipa(0), 64 << 10, WalkFlags::LEAF, |ctx| {
                if ctx.level() == level1 {
                    ctx.set(Descriptor::leaf(PhysAddr(0), level1, attrs));
                }
                Ok(Action::Continue)
            })
            .map(|_| ())
    }));
    let message = r
        .expect_err("a level-1 block in a 64 KiB table")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("level 1 of a 64 KiB table") && message.contains("from level 2"),
        "{message}"
    );
    assert!(!t.shared().get_leaf(Ipa(0)).unwrap().0.is_valid());
    check_invariants(&mut t).unwrap();
}

#[test]
fn unlinked_tables_below_levels_the_table_lacks_are_refused() {
    let mut t = table(Granule::Size64KiB.into(), 48, 48);
    for level in [-1, 0, 3] {
        let r = t.exclusive().create_unlinked(
            PhysAddr(0),
            Level::new(level).unwrap(),
            Prot::RW,
            &mut (),
        );
        assert!(matches!(r, Err(Error::Geometry(_))), "level {level}: {r:?}");
    }
    // Level 1 is the root's: its entries may link a table of 512 MiB blocks.
    let mm = t.mm().clone();
    let before = mm.live_pages();
    let unlinked = t
        .exclusive()
        .create_unlinked(PhysAddr(0), Level::new(1).unwrap(), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(mm.live_pages(), before + 1);
    // SAFETY: just built, never linked, freed once.
    unsafe { pgwalk::free_unlinked(&mm, unlinked, Level::new(1).unwrap()) };
    assert_eq!(mm.live_pages(), before);
}

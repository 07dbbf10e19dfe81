//! EL2 stage-1 tables (`pgwalk::hyp`): map, unmap, get_leaf, walk and
//! destroy against the behaviour of Linux 6.12's hyp walkers, bad input,
//! and a random model test with the structural invariants checked after
//! every step.

use std::collections::BTreeMap;

use pgwalk::descriptor::{HypDescriptor, HypMemType, Shareability, HYP_MAIR};
use pgwalk::geometry::{Geometry, Granule, Level, TableFormat};
use pgwalk::host::{check_hyp_invariants, HeapMemory};
use pgwalk::hyp::{HypTable, HypUnmapStop};
use pgwalk::visit::{Action, WalkFlags};
use pgwalk::{Error, PhysAddr, Prot, Va};

const PAGE: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;

fn table(va_bits: u8) -> (HypTable<HeapMemory>, HeapMemory) {
    let mm = HeapMemory::new(512);
    let g = Geometry::for_va_bits(Granule::Size4KiB, va_bits, 48).unwrap();
    (HypTable::with_geometry(g, mm.clone(), &mut ()).unwrap(), mm)
}

/// Every entry the table reaches: (first address, level, bits).
fn snapshot(t: &mut HypTable<HeapMemory>) -> Vec<(u64, i8, u64)> {
    let limit = t.geometry().ia_limit();
    let mut out = Vec::new();
    let walked = t
        .exclusive()
        .walk(
            Va(0),
            limit,
            WalkFlags::LEAF | WalkFlags::TABLE_PRE,
            |ctx| {
                if ctx.old().bits() != 0 {
                    out.push((ctx.entry_va().get(), ctx.level().get(), ctx.old().bits()));
                }
                Ok(Action::Continue)
            },
        )
        .unwrap();
    assert!(walked.is_completed());
    out
}

fn leaf(t: &mut HypTable<HeapMemory>, va: u64) -> (HypDescriptor, i8) {
    let (d, l) = t.exclusive().get_leaf(Va(va)).unwrap();
    (d, l.get())
}

fn ok(t: &mut HypTable<HeapMemory>) {
    check_hyp_invariants(t).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn blocks_pages_and_attributes() {
    let (mut t, _) = table(48);
    let mut h = t.exclusive();
    // 1 GiB + 2 MiB + 4 KiB, all aligned: one block of each size.
    h.map(
        Va(G1),
        G1 + M2 + PAGE,
        PhysAddr(0x80_0000_0000),
        Prot::RW,
        &mut (),
    )
    .unwrap();
    h.map(
        Va(0x900_0000),
        PAGE,
        PhysAddr(0x900_0000),
        Prot::RW | Prot::DEVICE,
        &mut (),
    )
    .unwrap();
    h.map(
        Va(0x4000_0000_0000),
        M2,
        PhysAddr(0x4020_0000),
        Prot::R | Prot::X,
        &mut (),
    )
    .unwrap();
    h.map(
        Va(0x5000),
        PAGE,
        PhysAddr(0x5000),
        Prot::R | Prot::NORMAL_NC,
        &mut (),
    )
    .unwrap();
    let (d, l) = leaf(&mut t, G1 + 0x1234_5000);
    assert_eq!(l, 1);
    assert_eq!(
        d.output_address(Granule::Size4KiB),
        PhysAddr(0x80_0000_0000)
    );
    assert!(d.writable() && !d.executable() && d.young());
    assert_eq!(d.mem_type(), Ok(HypMemType::NormalWriteBack));
    assert_eq!(d.shareability(), Ok(Shareability::Inner));
    assert_eq!(leaf(&mut t, 2 * G1).1, 2);
    assert_eq!(leaf(&mut t, 2 * G1 + M2).1, 3);
    assert_eq!(leaf(&mut t, 2 * G1 + M2 + PAGE).0, HypDescriptor::INVALID);
    let (dev, _) = leaf(&mut t, 0x900_0000);
    assert_eq!(dev.mem_type(), Ok(HypMemType::DeviceNGnRE));
    assert_eq!(dev.prot(), Prot::RW | Prot::DEVICE);
    let (code, l) = leaf(&mut t, 0x4000_0000_0000);
    assert!(code.executable() && !code.writable() && l == 2);
    assert_eq!(code.prot(), Prot::R | Prot::X);
    let (nc, _) = leaf(&mut t, 0x5000);
    assert_eq!(nc.mem_type(), Ok(HypMemType::NormalNonCacheable));
    assert_eq!(
        HYP_MAIR >> (8 * nc.mem_type().unwrap().attr_index()) & 0xff,
        0x44
    );
    let report = check_hyp_invariants(&mut t).unwrap();
    assert_eq!(report.leaves, [0, 1, 2, 3]);
}

/// A range that could hold a block, mapped to an output address that is
/// only page-aligned: no block fits the output, so every page is a page,
/// each translating to its own frame.
#[test]
fn a_block_sized_range_with_a_page_aligned_output_maps_pages() {
    let (mut t, _) = table(48);
    let out = 0x80_0000_0000 + PAGE;
    t.exclusive()
        .map(Va(M2), M2, PhysAddr(out), Prot::RW, &mut ())
        .unwrap();
    for i in [0, 1, 511] {
        let (d, l) = leaf(&mut t, M2 + i * PAGE);
        assert_eq!(l, 3, "page {i} is a page");
        assert_eq!(
            d.output_address(Granule::Size4KiB),
            PhysAddr(out + i * PAGE)
        );
    }
    let report = check_hyp_invariants(&mut t).unwrap();
    assert_eq!(report.leaves, [0, 0, 0, 512]);
}

#[test]
fn holes_report_the_level_where_translation_stops() {
    let (mut t, _) = table(48);
    t.exclusive()
        .map(Va(0x20_0000), PAGE, PhysAddr(0x1000), Prot::R, &mut ())
        .unwrap();
    assert_eq!(leaf(&mut t, 1 << 40).1, 0);
    assert_eq!(leaf(&mut t, G1).1, 1);
    assert_eq!(leaf(&mut t, 0x40_0000).1, 2);
    assert_eq!(leaf(&mut t, 0x20_1000).1, 3);
    assert!(matches!(
        t.exclusive().get_leaf(Va(1 << 48)),
        Err(Error::OutOfRange { .. })
    ));
    // A 32-bit VA space starts at level 1, with four root entries.
    let (mut small, _) = table(32);
    assert_eq!(small.geometry().start_level().get(), 1);
    assert_eq!(leaf(&mut small, 0xc000_0000).1, 1);
    assert!(small.exclusive().get_leaf(Va(1 << 32)).is_err());
}

#[test]
fn map_is_idempotent_and_updates_software_bits_only() {
    let (mut t, mm) = table(39);
    let mut h = t.exclusive();
    h.map(Va(0), 4 * M2, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap();
    let before = snapshot(&mut t);
    let flushes = mm.stats().hyp_flush_va;
    t.exclusive()
        .map(Va(0), 4 * M2, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(snapshot(&mut t), before);
    // Software bits change in place, as in Linux (no break, no flush).
    t.exclusive()
        .map(
            Va(M2),
            M2,
            PhysAddr(0x8020_0000),
            Prot::RW | Prot::SW2,
            &mut (),
        )
        .unwrap();
    assert_eq!(leaf(&mut t, M2).0.sw_bits(), 0b0100);
    assert_eq!(leaf(&mut t, 0).0.sw_bits(), 0);
    assert_eq!(mm.stats().hyp_flush_va, flushes);
    ok(&mut t);
}

#[test]
fn overlapping_maps_are_refused_before_anything_changes() {
    let (mut t, mm) = table(39);
    let mut h = t.exclusive();
    h.map(Va(M2), M2, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap();
    h.map(
        Va(8 * M2 + PAGE),
        PAGE,
        PhysAddr(0x9000_0000),
        Prot::R,
        &mut (),
    )
    .unwrap();
    let before = snapshot(&mut t);
    let pages = mm.live_pages();
    let cases: [(u64, u64, u64, Prot); 5] = [
        // Another output address over the block.
        (M2, M2, 0x7000_0000, Prot::RW),
        // Other permissions over the block.
        (M2, M2, 0x8000_0000, Prot::R),
        // A page inside the block, even with the block's own attributes.
        (M2 + PAGE, PAGE, 0x8000_1000, Prot::RW),
        // A range that starts empty and runs into the block.
        (0, 2 * M2, 0x4000_0000, Prot::RW),
        // A block over a table holding a different page.
        (8 * M2, M2, 0xa000_0000, Prot::R),
    ];
    for (va, size, pa, prot) in cases {
        let e = t
            .exclusive()
            .map(Va(va), size, PhysAddr(pa), prot, &mut ())
            .unwrap_err();
        assert!(matches!(e, Error::AlreadyMapped { .. }), "{va:#x}: {e}");
        assert_eq!(snapshot(&mut t), before, "{va:#x}");
        assert_eq!(mm.live_pages(), pages, "{va:#x}");
    }
    // The same page again is fine, and so is a neighbour in its table.
    t.exclusive()
        .map(
            Va(8 * M2),
            2 * PAGE,
            PhysAddr(0x9000_0000 - PAGE),
            Prot::R,
            &mut (),
        )
        .unwrap();
    ok(&mut t);
}

#[test]
fn bad_input_is_an_error_and_leaves_the_table_unchanged() {
    let (mut t, _) = table(39);
    t.exclusive()
        .map(Va(0), PAGE, PhysAddr(0x1000), Prot::RW, &mut ())
        .unwrap();
    let before = snapshot(&mut t);
    let bad: [(u64, u64, u64, Prot, &str); 12] = [
        (0x1800, PAGE, 0x2000, Prot::RW, "misaligned VA"),
        (0x2000, 0x800, 0x2000, Prot::RW, "misaligned size"),
        (0x2000, PAGE, 0x2800, Prot::RW, "misaligned PA"),
        (0x2000, 0, 0x2000, Prot::RW, "empty"),
        (
            (1 << 39) - PAGE,
            2 * PAGE,
            0x2000,
            Prot::RW,
            "beyond the VA size",
        ),
        (1 << 39, PAGE, 0x2000, Prot::RW, "beyond the VA size"),
        (0x2000, PAGE, 1 << 48, Prot::RW, "beyond the output size"),
        (0x2000, PAGE, 0x2000, Prot::RWX, "W^X"),
        (0x2000, PAGE, 0x2000, Prot::W, "not readable"),
        (
            0x2000,
            PAGE,
            0x2000,
            Prot::R | Prot::X | Prot::DEVICE,
            "executable device",
        ),
        (0x2000, PAGE, 0x2000, Prot::R | Prot::UX, "EL0 execute"),
        (
            0x2000,
            PAGE,
            0x2000,
            Prot::R | Prot::DEVICE | Prot::NORMAL_NC,
            "two types",
        ),
    ];
    for (va, size, pa, prot, what) in bad {
        assert!(
            t.exclusive()
                .map(Va(va), size, PhysAddr(pa), prot, &mut ())
                .is_err(),
            "{what}"
        );
        assert_eq!(snapshot(&mut t), before, "{what}");
    }
    for (va, size) in [(0x800, PAGE), (0, 0x800), (0, 0), (1 << 39, PAGE)] {
        assert!(
            t.exclusive().unmap(Va(va), size).is_err(),
            "{va:#x}+{size:#x}"
        );
        assert_eq!(snapshot(&mut t), before);
    }
    ok(&mut t);
}

#[test]
fn unmap_counts_bytes_flushes_and_frees_empty_tables() {
    let (mut t, mm) = table(48);
    let mut h = t.exclusive();
    h.map(
        Va(G1),
        2 * M2 + 3 * PAGE,
        PhysAddr(0x4000_0000),
        Prot::RW,
        &mut (),
    )
    .unwrap();
    let pages = mm.live_pages();
    let s0 = mm.stats();
    let done = t.exclusive().unmap(Va(G1), 2 * M2 + 3 * PAGE).unwrap();
    assert!(done.is_complete());
    assert_eq!(done.bytes(), 2 * M2 + 3 * PAGE);
    let s1 = mm.stats();
    // One flush per leaf cleared: two blocks and three pages.
    assert_eq!(s1.hyp_flush_va - s0.hyp_flush_va, 5);
    // The level-3, level-2 and level-1 tables emptied and were unlinked,
    // each with its walks flushed.
    assert_eq!(s1.hyp_flush_va_walks - s0.hyp_flush_va_walks, 3);
    assert_eq!(mm.live_pages(), pages - 3);
    assert_eq!(snapshot(&mut t), []);
    ok(&mut t);
}

#[test]
fn unmap_stops_at_a_hole() {
    let (mut t, mm) = table(39);
    let mut h = t.exclusive();
    h.map(Va(0), 2 * PAGE, PhysAddr(0x1000_0000), Prot::RW, &mut ())
        .unwrap();
    h.map(Va(3 * PAGE), PAGE, PhysAddr(0x1000_3000), Prot::RW, &mut ())
        .unwrap();
    let done = t.exclusive().unmap(Va(0), 4 * PAGE).unwrap();
    assert_eq!(done.bytes(), 2 * PAGE);
    let level3 = Level::new(3).unwrap();
    assert_eq!(
        done.stopped(),
        Some(HypUnmapStop::Hole {
            va: Va(2 * PAGE),
            level: level3
        })
    );
    // Past the hole, nothing changed.
    assert!(leaf(&mut t, 3 * PAGE).0.is_valid());
    // A hole at level 1: nothing mapped in the first GiB above 2 MiB... and
    // nothing unmapped.
    let none = t.exclusive().unmap(Va(G1), PAGE).unwrap();
    assert_eq!(none.bytes(), 0);
    assert_eq!(
        none.stopped(),
        Some(HypUnmapStop::Hole {
            va: Va(G1),
            level: Level::new(1).unwrap()
        })
    );
    // Unmapping the last page empties the tables, which go.
    let last = t.exclusive().unmap(Va(3 * PAGE), PAGE).unwrap();
    assert!(last.is_complete());
    assert_eq!(mm.live_pages(), 1);
    ok(&mut t);
}

#[test]
fn unmap_stops_at_a_block_beyond_the_range() {
    let (mut t, _) = table(39);
    t.exclusive()
        .map(Va(0), PAGE, PhysAddr(0x1000_0000), Prot::RW, &mut ())
        .unwrap();
    t.exclusive()
        .map(Va(M2), M2, PhysAddr(0x2000_0000), Prot::RW, &mut ())
        .unwrap();
    let level2 = Level::new(2).unwrap();
    // Past the end (Linux stops here too).
    let r = t.exclusive().unmap(Va(M2), PAGE).unwrap();
    assert_eq!(r.bytes(), 0);
    assert_eq!(
        r.stopped(),
        Some(HypUnmapStop::BlockBeyondRange {
            va: Va(M2),
            level: level2
        })
    );
    // Before the start (Linux would unmap the whole block).
    let r = t.exclusive().unmap(Va(M2 + PAGE), M2).unwrap();
    assert_eq!(
        r.stopped(),
        Some(HypUnmapStop::BlockBeyondRange {
            va: Va(M2 + PAGE),
            level: level2
        })
    );
    assert!(leaf(&mut t, M2).0.is_valid());
    // A page, then the straddling block: the page goes, and its emptied
    // level-3 table with it, although the walk stopped.
    let r = t.exclusive().unmap(Va(0), M2 + PAGE).unwrap();
    assert_eq!(r.bytes(), PAGE);
    assert_eq!(leaf(&mut t, 0).1, 2, "the level-3 table was freed");
    ok(&mut t);
}

#[test]
fn out_of_memory_leaves_no_empty_table_and_a_retry_finishes() {
    let (mut t, mm) = table(48);
    // The root, and one more page: not enough for levels 1, 2 and 3.
    mm.set_page_limit(2);
    let e = t
        .exclusive()
        .map(Va(0x1000), PAGE, PhysAddr(0x1000), Prot::R, &mut ())
        .unwrap_err();
    assert_eq!(e, Error::NoMemory);
    assert_eq!(snapshot(&mut t), []);
    assert_eq!(mm.live_pages(), 1);
    mm.set_page_limit(usize::MAX);
    t.exclusive()
        .map(Va(0x1000), PAGE, PhysAddr(0x1000), Prot::R, &mut ())
        .unwrap();
    ok(&mut t);
}

#[test]
fn destroy_frees_every_page() {
    let mm = HeapMemory::new(64);
    {
        let g = Geometry::for_va_bits(Granule::Size4KiB, 48, 48).unwrap();
        let mut t = HypTable::with_geometry(g, mm.clone(), &mut ()).unwrap();
        let mut h = t.exclusive();
        h.map(Va(0x1000), 5 * PAGE, PhysAddr(0x1000), Prot::R, &mut ())
            .unwrap();
        h.map(Va(0x7f_0000_0000), G1, PhysAddr(0), Prot::RW, &mut ())
            .unwrap();
        assert!(mm.live_pages() > 1);
    }
    assert_eq!(mm.live_pages(), 0);
    assert_eq!(mm.stats().double_frees, 0);
}

#[test]
fn a_visitor_write_protects_with_a_flush() {
    let (mut t, mm) = table(39);
    t.exclusive()
        .map(Va(0), 2 * PAGE, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap();
    let s0 = mm.stats();
    let walked = t
        .exclusive()
        .walk(Va(0), 2 * PAGE, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            let ro = pgwalk::descriptor::HypAttrs::from_prot(Prot::R).unwrap();
            let new = HypDescriptor::leaf(
                old.output_address(Granule::Size4KiB),
                ctx.level(),
                Granule::Size4KiB,
                ro,
            );
            ctx.set(new);
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    let s1 = mm.stats();
    assert!(!leaf(&mut t, PAGE).0.writable());
    assert_eq!(
        s1.hyp_flush_va - s0.hyp_flush_va,
        2,
        "one flush per restricted leaf"
    );
    assert_eq!(
        s1.hyp_publishes - s0.hyp_publishes,
        1,
        "one publish per walk"
    );
    ok(&mut t);
}

#[test]
#[should_panic(expected = "W^X")]
fn a_visitor_cannot_store_a_writable_executable_leaf() {
    let (mut t, _) = table(39);
    let _ = t.exclusive().walk(Va(0), PAGE, WalkFlags::LEAF, |ctx| {
        // RW, and XN (bit 54) cleared by hand.
        let rw = pgwalk::descriptor::HypAttrs::from_prot(Prot::RW).unwrap();
        let d = HypDescriptor::leaf(PhysAddr(0), ctx.level(), Granule::Size4KiB, rw);
        ctx.set(HypDescriptor::from_bits(d.bits() & !(1 << 54)));
        Ok(Action::Continue)
    });
}

#[test]
fn geometry_from_tcr_and_stage_2_geometries_refused() {
    let mm = HeapMemory::new(8);
    let tcr = Geometry::for_va_bits(Granule::Size4KiB, 40, 40)
        .unwrap()
        .tcr_el2();
    let t = HypTable::new(tcr, mm.clone(), &mut ()).unwrap();
    assert_eq!(t.tcr_el2(), tcr);
    assert_eq!(t.ttbr0_el2(), t.root().get());
    assert_eq!(t.geometry().start_level().get(), 0);
    drop(t);
    // A stage-2 geometry with a concatenated root (40 bits from level 1).
    let s2 = Geometry::for_ia_bits(40, 40).unwrap();
    assert!(HypTable::with_geometry(s2, mm.clone(), &mut ()).is_err());
    assert_eq!(mm.live_pages(), 0);
    // A host of 4 KiB pages serves no 16 KiB or LPA2 table (its pages are
    // too small, or the table would read its descriptors differently).
    let k16 = Geometry::for_va_bits(Granule::Size16KiB, 40, 40).unwrap();
    let lpa2 = TableFormat::new(Granule::Size4KiB, true).unwrap();
    let k4_lpa2 = Geometry::for_va_bits(lpa2, 40, 40).unwrap();
    for g in [k16, k4_lpa2] {
        assert!(matches!(
            HypTable::with_geometry(g, mm.clone(), &mut ()),
            Err(Error::Geometry(_))
        ));
    }
    assert_eq!(mm.live_pages(), 0);
    // The host of the right pages does.
    let t = HypTable::new(
        k16.tcr_el2(),
        HeapMemory::with_format(Granule::Size16KiB, 2),
        &mut (),
    );
    assert_eq!(t.unwrap().geometry(), &k16);
}

/// SplitMix64, for a reproducible random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The shape of one random run: a table format, its VA size, output size
/// and where its outputs start.
#[derive(Clone, Copy)]
struct Shape {
    format: TableFormat,
    va_bits: u8,
    oa_bits: u8,
    base: u64,
    seeds: u64,
}

/// Random maps and unmaps over a window of 16 level-2 blocks, against a
/// model of what each page maps, with the invariants checked after every
/// step and every page compared at the end of each run: 4 KiB with a
/// 39-bit VA (12 runs), and every other format with a few runs each,
/// from the deepest start levels they have and with outputs above 2^48
/// where the format reaches them.
#[test]
fn random_operations_match_a_model() {
    let lpa2 = |g| TableFormat::new(g, true).unwrap();
    let high = 0xa_0000_0000_0000;
    for shape in [
        Shape {
            format: Granule::Size4KiB.into(),
            va_bits: 39,
            oa_bits: 48,
            base: 0x40_0000_0000,
            seeds: 12,
        },
        Shape {
            format: Granule::Size16KiB.into(),
            va_bits: 48,
            oa_bits: 48,
            base: 0x40_0000_0000,
            seeds: 3,
        },
        Shape {
            format: Granule::Size64KiB.into(),
            va_bits: 52,
            oa_bits: 52,
            base: high,
            seeds: 2,
        },
        Shape {
            format: lpa2(Granule::Size4KiB),
            va_bits: 52,
            oa_bits: 52,
            base: high,
            seeds: 3,
        },
        Shape {
            format: lpa2(Granule::Size16KiB),
            va_bits: 52,
            oa_bits: 52,
            base: high,
            seeds: 3,
        },
    ] {
        random_operations(shape);
    }
}

fn random_operations(shape: Shape) {
    let Shape { format, base, .. } = shape;
    let page = format.granule().size();
    // Pages per level-2 block.
    let ppb = format.granule().entries() as u64;
    let block = page * ppb;
    let prots = [
        Prot::R,
        Prot::RW,
        Prot::R | Prot::X,
        Prot::RW | Prot::DEVICE,
        Prot::R | Prot::NORMAL_NC,
    ];
    let window = 16 * block;
    let (mut maps, mut refused, mut unmapped_pages, mut stopped) = (0, 0, 0, 0);
    let mut blocks = 0;
    for seed in 0..shape.seeds {
        let mm = HeapMemory::with_format(format, 512);
        let g = Geometry::for_va_bits(format, shape.va_bits, shape.oa_bits).unwrap();
        let mut t = HypTable::with_geometry(g, mm.clone(), &mut ()).unwrap();
        let mut rng = Rng(0x4879_7000 + seed);
        // Page index -> (output address, prot).
        let mut model: BTreeMap<u64, (u64, Prot)> = BTreeMap::new();
        for _ in 0..60 {
            let pages = if rng.below(3) == 0 {
                ppb * (1 + rng.below(2))
            } else {
                1 + rng.below(24)
            };
            let first = if pages >= ppb {
                rng.below(14) * ppb
            } else {
                rng.below(window / page - pages)
            };
            let va = first * page;
            let size = pages * page;
            if rng.below(3) < 2 {
                let prot = prots[rng.below(prots.len() as u64) as usize];
                let pa = base
                    + if pages >= ppb {
                        rng.below(64) * block
                    } else {
                        rng.below(1 << 16) * page
                    };
                let overlaps = (first..first + pages).any(|p| {
                    model.get(&p).is_some_and(|&(opa, oprot)| {
                        opa != pa + (p - first) * page || oprot != prot
                    })
                });
                let r = t.exclusive().map(Va(va), size, PhysAddr(pa), prot, &mut ());
                // pgwalk may also refuse an identical remap at a finer grain
                // than the blocks already there; the model only knows pages.
                match r {
                    Ok(()) => {
                        maps += 1;
                        assert!(
                            !overlaps,
                            "{format} seed {seed}: map over a different mapping succeeded"
                        );
                        for p in first..first + pages {
                            model.insert(p, (pa + (p - first) * page, prot));
                        }
                    }
                    Err(Error::AlreadyMapped { .. }) => {
                        refused += 1;
                        let any = (first..first + pages).any(|p| model.contains_key(&p));
                        assert!(any, "{format} seed {seed}: refused a map over nothing");
                    }
                    Err(e) => panic!("{format} seed {seed}: {e}"),
                }
            } else {
                let r = t.exclusive().unmap(Va(va), size).unwrap();
                let unmapped = r.bytes() / page;
                unmapped_pages += unmapped;
                stopped += u32::from(!r.is_complete());
                for p in first..first + unmapped {
                    assert!(
                        model.remove(&p).is_some(),
                        "{format} seed {seed}: unmapped an unmapped page"
                    );
                }
                if let Some(HypUnmapStop::Hole { va: at, .. }) = r.stopped() {
                    assert_eq!(at.get(), va + r.bytes());
                    assert!(!model.contains_key(&(at.get() / page)));
                } else if r.is_complete() {
                    assert_eq!(unmapped, pages);
                }
            }
            let report = check_hyp_invariants(&mut t)
                .unwrap_or_else(|e| panic!("{format} seed {seed}: {e}"));
            blocks += report.leaves[2];
        }
        for p in 0..window / page {
            let (d, level) = leaf(&mut t, p * page);
            match model.get(&p) {
                Some(&(pa, prot)) => {
                    assert!(d.is_valid(), "{format} seed {seed}: page {p:#x} lost");
                    let size = t.geometry().entry_size(Level::new(level).unwrap());
                    let got = d.output_address(format).get() + ((p * page) & (size - 1));
                    assert_eq!(got, pa, "{format} seed {seed}: page {p:#x}");
                    assert_eq!(d.prot(), prot, "{format} seed {seed}: page {p:#x}");
                }
                None => assert!(!d.is_valid(), "{format} seed {seed}: page {p:#x} mapped"),
            }
        }
        drop(t);
        assert_eq!(mm.live_pages(), 0);
    }
    // The sequences did what the test is about.
    let n = shape.seeds as u32;
    assert!(
        maps > 16 * n && refused > 4 * n,
        "{format}: {maps} maps, {refused} refused"
    );
    assert!(
        unmapped_pages > 160 * u64::from(n) && stopped > 4 * n,
        "{format}: {unmapped_pages} pages unmapped, {stopped} stopped early"
    );
    assert!(
        blocks > 8 * shape.seeds as usize,
        "{format}: {blocks} block-steps"
    );
}

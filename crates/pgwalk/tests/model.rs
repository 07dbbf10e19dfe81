//! Model-based tests: random sequences of stage-2 operations against a
//! simple model of what should be mapped, with the table compared to the
//! model and its invariants checked after every step, for every table
//! format: the 4, 16 and 64 KiB granules, and LPA2 with 4 and 16 KiB.
//!
//! The model is a set of disjoint IPA intervals, each mapped (output
//! address, protection, access flag) or annotated (owner). It knows nothing
//! of levels: block versus page is the library's business. The few
//! behaviours that depend on the shape (attribute changes act on whole
//! leaves; unmap refuses a boundary inside a block; a fault-path map that
//! only changes permissions is spurious, and one that splits a larger block
//! is not) read the shape from the table before the step, through
//! `get_leaf`.

use std::collections::BTreeMap;

use pgwalk::descriptor::Descriptor;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Granule, Level, TableFormat};
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::{Error, Ipa, Mapping, PhysAddr, Prot, Stage2};
use proptest::prelude::*;

/// The sizes one format's operations are built from, and its table.
#[derive(Debug, Clone, Copy)]
struct Shape {
    format: TableFormat,
    /// A page.
    page: u64,
    /// A level-2 block.
    block: u64,
    /// A larger unit: a level-1 block with 4 KiB, several level-2 blocks
    /// otherwise. The window the operations touch is two of them.
    big: u64,
    /// Input size and start level of the table.
    ia_bits: u8,
    start: i8,
    oa_bits: u8,
    /// Output addresses: IPA - base() + pa_base, plus a skew that may
    /// spoil block alignment. Above 48 bits where the format has them.
    pa_base: u64,
}

impl Shape {
    fn new(format: TableFormat, ia_bits: u8, start: i8, oa_bits: u8, pa_base: u64) -> Shape {
        let page = format.granule().size();
        let block = page << format.granule().bits_per_level();
        let big = if format.granule() == Granule::Size4KiB {
            block << 9
        } else {
            4 * block
        };
        Shape {
            format,
            page,
            block,
            big,
            ia_bits,
            start,
            oa_bits,
            pa_base,
        }
    }

    fn base(&self) -> u64 {
        self.big
    }

    fn end(&self) -> u64 {
        3 * self.big
    }

    fn geometry(&self) -> Geometry {
        Geometry::new(
            self.format,
            self.ia_bits,
            Level::new(self.start).unwrap(),
            self.oa_bits,
        )
        .unwrap()
    }

    fn table(&self, pages: usize) -> (HeapMemory, Stage2<HeapMemory>) {
        let mm = HeapMemory::with_format(self.format, pages);
        let t = Stage2::with_geometry(self.geometry(), mm.clone()).unwrap();
        (mm, t)
    }

    fn pa_for(&self, ipa: u64, skew: u64) -> u64 {
        self.pa_base + (ipa - self.base()) + skew
    }
}

fn lpa2(granule: Granule) -> TableFormat {
    TableFormat::new(granule, true).unwrap()
}

/// 4 KiB: a 40-bit input space with a two-page root at level 1.
fn shape_4k() -> Shape {
    Shape::new(TableFormat::FOUR_KIB, 40, 1, 48, 0x40_0000_0000)
}

/// 16 KiB: 40 bits, a 16-page root at level 2.
fn shape_16k() -> Shape {
    Shape::new(Granule::Size16KiB.into(), 40, 2, 48, 0x40_0000_0000)
}

/// 64 KiB with 52-bit output addresses (FEAT_LPA, bits 51:48 in 15:12): a
/// 52-bit input space, its level-1 root of 1024 entries.
fn shape_64k() -> Shape {
    Shape::new(Granule::Size64KiB.into(), 52, 1, 52, 0xc_0000_0000_0000)
}

/// 4 KiB with LPA2: 52 bits from level -1 (a 16-entry root), output
/// addresses with bits 51:50 (in descriptor bits 9:8) set.
fn shape_4k_lpa2() -> Shape {
    Shape::new(lpa2(Granule::Size4KiB), 52, -1, 52, 0xc_0000_0000_0000)
}

/// 16 KiB with LPA2: 52 bits from level 0 (32 entries).
fn shape_16k_lpa2() -> Shape {
    Shape::new(lpa2(Granule::Size16KiB), 52, 0, 52, 0xc_0000_0000_0000)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Map { pa: u64, prot: Prot, young: bool },
    Owned(u32),
}

impl Val {
    /// The value `off` bytes further on.
    fn at(self, off: u64) -> Val {
        match self {
            Val::Map { pa, prot, young } => Val::Map {
                pa: pa + off,
                prot,
                young,
            },
            v => v,
        }
    }
}

/// Disjoint intervals: start -> (end, value at start).
#[derive(Debug, Clone, Default)]
struct Model(BTreeMap<u64, (u64, Val)>);

impl Model {
    /// Cuts any interval that straddles `addr` in two.
    fn cut(&mut self, addr: u64) {
        let hit = self
            .0
            .range(..addr)
            .next_back()
            .map(|(&s, &(e, v))| (s, e, v));
        if let Some((s, e, v)) = hit {
            if e > addr {
                self.0.insert(s, (addr, v));
                self.0.insert(addr, (e, v.at(addr - s)));
            }
        }
    }

    fn set(&mut self, start: u64, end: u64, val: Option<Val>) {
        self.cut(start);
        self.cut(end);
        let inside: Vec<u64> = self.0.range(start..end).map(|(&s, _)| s).collect();
        for s in inside {
            self.0.remove(&s);
        }
        if let Some(v) = val {
            self.0.insert(start, (end, v));
        }
    }

    /// Applies `f` to every mapped interval within `start..end`.
    fn update(&mut self, start: u64, end: u64, f: impl Fn(&mut Prot, &mut bool)) {
        self.cut(start);
        self.cut(end);
        for (_, (_, v)) in self.0.range_mut(start..end) {
            if let Val::Map { prot, young, .. } = v {
                f(prot, young);
            }
        }
    }

    fn any_young(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end)
            .any(|(_, _, v)| matches!(v, Val::Map { young: true, .. }))
    }

    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64, Val)> + '_ {
        let first = self
            .0
            .range(..=start)
            .next_back()
            .map(|(&s, _)| s)
            .unwrap_or(start);
        self.0
            .range(first..end)
            .map(|(&s, &(e, v))| (s, e, v))
            .filter(move |&(_, e, _)| e > start)
    }

    /// The value at `addr`, if any.
    fn get(&self, addr: u64) -> Option<Val> {
        self.overlapping(addr, addr + 1)
            .next()
            .map(|(s, _, v)| v.at(addr - s))
    }

    /// Coalesced intervals, for comparison with the table's.
    fn intervals(&self) -> Vec<(u64, u64, Val)> {
        coalesce(self.0.iter().map(|(&s, &(e, v))| (s, e, v)))
    }
}

/// Merges neighbours whose values continue each other.
fn coalesce(it: impl Iterator<Item = (u64, u64, Val)>) -> Vec<(u64, u64, Val)> {
    let mut out: Vec<(u64, u64, Val)> = Vec::new();
    for (s, e, v) in it {
        if let Some(last) = out.last_mut() {
            if last.1 == s && last.2.at(s - last.0) == v {
                last.1 = e;
                continue;
            }
        }
        out.push((s, e, v));
    }
    out
}

fn table_intervals(t: &Stage2<HeapMemory>, s: &Shape) -> Vec<(u64, u64, Val)> {
    let mut runs = Vec::new();
    t.shared()
        .for_each_mapping(Ipa(s.base()), s.end() - s.base(), |m: &Mapping| {
            let v = match m.leaf.owner() {
                Some(owner) if !m.leaf.is_valid() => Val::Owned(owner),
                _ => Val::Map {
                    pa: m.pa.get(),
                    prot: m.leaf.prot(),
                    young: m.leaf.young(),
                },
            };
            runs.push((m.ipa.get(), m.ipa.get() + m.size, v));
        })
        .unwrap();
    coalesce(runs.into_iter())
}

/// The extent of the leaf (or the invalid entry) that translates `addr`.
fn leaf_extent(t: &Stage2<HeapMemory>, addr: u64) -> (u64, u64, Descriptor) {
    let h = t.shared();
    let (leaf, level) = h.get_leaf(Ipa(addr)).unwrap();
    let size = h.geometry().entry_size(level);
    let start = addr & !(size - 1);
    (start, start + size, leaf)
}

/// Widens `start..end` to the whole leaves it touches, as attribute
/// changes act on whole blocks.
fn widen(t: &Stage2<HeapMemory>, start: u64, end: u64) -> (u64, u64) {
    let (s, _, _) = leaf_extent(t, start);
    let (_, e, _) = leaf_extent(t, end - 1);
    (s, e)
}

#[derive(Debug, Clone)]
enum Op {
    Map {
        start: u64,
        len: u64,
        skew: u64,
        prot: Prot,
    },
    Unmap {
        start: u64,
        len: u64,
    },
    Annotate {
        start: u64,
        len: u64,
        owner: u32,
    },
    Split {
        start: u64,
        len: u64,
    },
    Wrprotect {
        start: u64,
        len: u64,
        /// Through the exclusive handle (plain stores) instead of the
        /// shared one (compare-and-swap).
        exclusive: bool,
    },
    Relax {
        addr: u64,
        prot: Prot,
    },
    Mkyoung {
        addr: u64,
    },
    TestClearYoung {
        start: u64,
        len: u64,
        mkold: bool,
        /// Through the exclusive handle, as [`Op::Wrprotect`]'s.
        exclusive: bool,
    },
    FaultMap {
        addr: u64,
        block: bool,
        skew: u64,
        prot: Prot,
    },
}

fn addr(s: Shape) -> impl Strategy<Value = u64> {
    (0..2u64, 0..3u64, 0..6u64, 0..4u64).prop_map(move |(g, m, p, tail)| {
        s.base()
            + g * s.big
            + m * s.block
            + p * s.page
            + if tail == 0 { s.block - s.page } else { 0 }
    })
}

fn len(s: Shape) -> impl Strategy<Value = u64> {
    prop_oneof![
        (1..8u64).prop_map(move |n| n * s.page),
        (1..3u64).prop_map(move |n| n * s.block),
        (1..3u64, 1..4u64).prop_map(move |(m, p)| m * s.block + p * s.page),
        Just(s.big),
        Just(s.big + s.block),
    ]
}

fn range(s: Shape) -> impl Strategy<Value = (u64, u64)> {
    (addr(s), len(s)).prop_map(move |(a, l)| (a, l.min(s.end() - a)))
}

fn prot() -> impl Strategy<Value = Prot> {
    prop_oneof![
        Just(Prot::R),
        Just(Prot::RW),
        Just(Prot::RWX),
        Just(Prot::R | Prot::X),
        Just(Prot::RW | Prot::DEVICE),
        Just(Prot::R | Prot::NORMAL_NC),
        Just(Prot::RW | Prot::SW1),
    ]
}

fn skew(s: Shape) -> impl Strategy<Value = u64> {
    prop_oneof![4 => Just(0), 1 => Just(s.page), 1 => Just(s.block)]
}

fn op(s: Shape) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (range(s), skew(s), prot()).prop_map(|((start, len), skew, prot)| Op::Map { start, len, skew, prot }),
        3 => range(s).prop_map(|(start, len)| Op::Unmap { start, len }),
        1 => (range(s), 0..3u32).prop_map(|((start, len), owner)| Op::Annotate { start, len, owner }),
        1 => range(s).prop_map(move |(start, len)| Op::Split { start, len: len.min(4 * s.block) }),
        2 => (range(s), any::<bool>()).prop_map(|((start, len), exclusive)| Op::Wrprotect { start, len, exclusive }),
        2 => (addr(s), prop_oneof![Just(Prot::W), Just(Prot::X), Just(Prot::R | Prot::W)])
            .prop_map(|(addr, prot)| Op::Relax { addr, prot }),
        1 => addr(s).prop_map(|addr| Op::Mkyoung { addr }),
        2 => (range(s), any::<bool>(), any::<bool>())
            .prop_map(|((start, len), mkold, exclusive)| Op::TestClearYoung { start, len, mkold, exclusive }),
        3 => (addr(s), any::<bool>(), skew(s), prot())
            .prop_map(|(addr, block, skew, prot)| Op::FaultMap { addr, block, skew, prot }),
    ]
}

/// `prot` as a leaf built from it reports it.
fn leaf_prot(prot: Prot) -> Prot {
    Descriptor::leaf(
        PhysAddr(0),
        pgwalk::geometry::Level::LAST,
        pgwalk::descriptor::LeafAttrs::from_prot(prot).unwrap(),
    )
    .prot()
}

/// Runs `op` on the table and the model, checking what the table reports.
fn step(t: &mut Stage2<HeapMemory>, m: &mut Model, op: &Op, s: &Shape) {
    match *op {
        Op::Map {
            start,
            len,
            skew,
            prot,
        } => {
            let pa = s.pa_for(start, skew);
            t.exclusive()
                .map(Ipa(start), len, PhysAddr(pa), prot, &mut ())
                .unwrap();
            let val = Val::Map {
                pa,
                prot: leaf_prot(prot),
                young: true,
            };
            m.set(start, start + len, Some(val));
        }
        Op::Unmap { start, len } => {
            let inside_block = |a: u64| {
                a < s.end() && {
                    let (b, _, leaf) = leaf_extent(t, a);
                    leaf.is_counted() && b != a
                }
            };
            let refused = inside_block(start) || inside_block(start + len);
            let r = t.exclusive().unmap(Ipa(start), len);
            if refused {
                assert!(matches!(r, Err(Error::SplitsBlock { .. })), "{r:?}");
            } else {
                r.unwrap();
                m.set(start, start + len, None);
            }
        }
        Op::Annotate { start, len, owner } => {
            t.exclusive()
                .annotate(Ipa(start), len, owner, &mut ())
                .unwrap();
            let val = (owner != 0).then_some(Val::Owned(owner));
            m.set(start, start + len, val);
        }
        Op::Split { start, len } => {
            t.exclusive().split(Ipa(start), len, &mut ()).unwrap();
            let h = t.shared();
            for a in (start..start + len).step_by(s.page as usize) {
                let (leaf, level) = h.get_leaf(Ipa(a)).unwrap();
                assert!(!leaf.is_valid() || level.is_last(), "{a:#x} not split");
            }
        }
        Op::Wrprotect {
            start,
            len,
            exclusive,
        } => {
            let (b, e) = widen(t, start, start + len);
            if exclusive {
                t.exclusive().wrprotect(Ipa(start), len).unwrap().flush();
            } else {
                t.shared().wrprotect(Ipa(start), len).unwrap().flush();
            }
            m.update(b, e, |p, _| p.remove(Prot::W));
        }
        Op::Relax { addr, prot } => {
            let (b, e, leaf) = leaf_extent(t, addr);
            t.shared().relax_perms(Ipa(addr), prot).unwrap();
            if leaf.is_valid() {
                m.update(b, e, |p, _| p.insert(prot));
            }
        }
        Op::Mkyoung { addr } => {
            let (b, e, leaf) = leaf_extent(t, addr);
            assert_eq!(t.shared().mkyoung(Ipa(addr)).unwrap(), leaf.is_valid());
            m.update(b, e, |_, y| *y = true);
        }
        Op::TestClearYoung {
            start,
            len,
            mkold,
            exclusive,
        } => {
            let (b, e) = widen(t, start, start + len);
            let expect = m.any_young(b, e);
            let got = match (exclusive, mkold) {
                (true, true) => t.exclusive().clear_young(Ipa(start), len),
                (true, false) => t.exclusive().test_young(Ipa(start), len),
                (false, true) => t.shared().clear_young(Ipa(start), len),
                (false, false) => t.shared().test_young(Ipa(start), len),
            }
            .unwrap();
            assert_eq!(got, expect, "young in {b:#x}..{e:#x}");
            if mkold {
                m.update(b, e, |_, y| *y = false);
            }
        }
        Op::FaultMap {
            addr,
            block,
            skew,
            prot,
        } => {
            let size = if block { s.block } else { s.page };
            let start = addr & !(size - 1);
            let pa = s.pa_for(start, skew);
            let want = Val::Map {
                pa,
                prot: leaf_prot(prot),
                young: true,
            };
            // The fault installs the largest leaves that fit; a leaf already
            // there with the same mapping up to permissions is passed over
            // (permissions are relax_perms' business), any other is
            // replaced, a page table under a fitting block included. A
            // larger block is split first (Fixed), the range getting what
            // was asked and the rest of the block keeping its mapping.
            let (unit, unit_level) = if block && pa % s.block == 0 {
                (s.block, 2)
            } else {
                (s.page, 3)
            };
            let same = |a: u64| match (m.get(a), want.at(a - start)) {
                (
                    Some(Val::Map {
                        pa: p1,
                        prot: q1,
                        young: y1,
                    }),
                    Val::Map {
                        pa: p2,
                        prot: q2,
                        young: y2,
                    },
                ) => p1 == p2 && y1 == y2 && q1.difference(Prot::RWX) == q2.difference(Prot::RWX),
                _ => false,
            };
            let mut replaced = Vec::new();
            for u in (start..start + size).step_by(unit as usize) {
                let (leaf, level) = t.shared().get_leaf(Ipa(u)).unwrap();
                // Passed over only at the unit's own level: a table where a
                // block fits is replaced, and a block above the unit is
                // split, its pages in the range getting what was asked.
                let present = leaf.is_valid() && level.get() == unit_level && same(u);
                if !present {
                    replaced.push(u);
                }
            }
            let r = t
                .fault_handler()
                .map(Ipa(start), size, PhysAddr(pa), prot, &mut ())
                .unwrap();
            let expect = if replaced.is_empty() {
                TableOutcome::Spurious
            } else {
                TableOutcome::Fixed
            };
            assert_eq!(r, expect, "an uncontended fault");
            for u in replaced {
                m.set(u, u + unit, Some(want.at(u - start)));
            }
        }
    }
}

fn check(t: &mut Stage2<HeapMemory>, m: &Model, op: &Op, s: &Shape) {
    // Page tables a fault-path block replaced wait for a grace period.
    assert!(t.mm().quiesce());
    match check_invariants(t) {
        Err(e) => panic!("{}: invariant broken after {op:?}: {e}", s.format),
        // pgwalk's own operations free every table they empty.
        Ok(r) => assert_eq!(r.empty_tables, 0, "{}: empty table after {op:?}", s.format),
    }
    let got = table_intervals(t, s);
    let want = m.intervals();
    assert!(
        got == want,
        "{}: after {op:?}:\n table {got:#x?}\n model {want:#x?}",
        s.format
    );
}

/// Cases per format (`PROPTEST_CASES` overrides): the five formats share
/// the budget one format used to have.
fn cases() -> u32 {
    let default = if cfg!(debug_assertions) { 16 } else { 128 };
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Runs `ops` against a fresh table of `s` and the model.
fn run(s: Shape, ops: &[Op]) -> Result<(), TestCaseError> {
    // Enough for the window in pages (1024 leaf tables with 4 KiB).
    let (mm, mut t) = s.table(if s.page == 64 << 10 { 1 << 10 } else { 1 << 12 });
    let mut m = Model::default();
    for op in ops {
        step(&mut t, &mut m, op, &s);
        check(&mut t, &m, op, &s);
    }
    drop(t);
    prop_assert!(mm.quiesce());
    prop_assert_eq!(mm.live_pages(), 0);
    prop_assert_eq!(mm.stats().double_frees, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn operations_match_the_model_4k(ops in prop::collection::vec(op(shape_4k()), 1..24)) {
        run(shape_4k(), &ops)?;
    }

    #[test]
    fn operations_match_the_model_16k(ops in prop::collection::vec(op(shape_16k()), 1..24)) {
        run(shape_16k(), &ops)?;
    }

    #[test]
    fn operations_match_the_model_64k_52_bit(ops in prop::collection::vec(op(shape_64k()), 1..24)) {
        run(shape_64k(), &ops)?;
    }

    #[test]
    fn operations_match_the_model_4k_lpa2(ops in prop::collection::vec(op(shape_4k_lpa2()), 1..24)) {
        run(shape_4k_lpa2(), &ops)?;
    }

    #[test]
    fn operations_match_the_model_16k_lpa2(ops in prop::collection::vec(op(shape_16k_lpa2()), 1..24)) {
        run(shape_16k_lpa2(), &ops)?;
    }
}

#[test]
fn model_sanity() {
    // The model itself: cutting, replacing and coalescing.
    let s = shape_4k();
    let (base, k4) = (s.base(), s.page);
    let mut m = Model::default();
    let v = Val::Map {
        pa: 0x1000_0000,
        prot: Prot::RW,
        young: true,
    };
    m.set(base, base + 4 * k4, Some(v));
    m.set(base + k4, base + 2 * k4, None);
    assert_eq!(m.get(base + 3 * k4), Some(v.at(3 * k4)));
    assert_eq!(m.get(base + k4), None);
    m.set(base + k4, base + 2 * k4, Some(v.at(k4)));
    assert_eq!(m.intervals(), [(base, base + 4 * k4, v)]);
}

#[test]
fn every_shape_is_what_it_says() {
    // The shapes really exercise what they are named after.
    for (s, root_level, blocks) in [
        (shape_4k(), 1, [2 << 20, 1 << 30]),
        (shape_16k(), 2, [32 << 20, 32 << 20]),
        (shape_64k(), 1, [512 << 20, 512 << 20]),
        (shape_4k_lpa2(), -1, [2 << 20, 1 << 30]),
        (shape_16k_lpa2(), 0, [32 << 20, 32 << 20]),
    ] {
        let g = s.geometry();
        assert_eq!(g.start_level().get(), root_level, "{}", s.format);
        assert_eq!(s.block, blocks[0], "{}", s.format);
        let largest = (1..=2)
            .map(|l| Level::new(l).unwrap())
            .filter(|&l| g.block_allowed(l))
            .map(|l| g.entry_size(l))
            .max();
        assert_eq!(largest, Some(blocks[1]), "{}: largest block", s.format);
        assert!(s.end() <= g.ia_limit() && s.pa_for(s.end() - 1, s.block) >> s.oa_bits == 0);
    }
}

#[test]
fn annotate_owner_zero_over_a_lone_page() {
    for s in [shape_4k(), shape_64k(), shape_4k_lpa2()] {
        let (_, mut t) = s.table(64);
        let mut m = Model::default();
        let ops = [
            Op::Map {
                start: s.base(),
                len: s.page,
                skew: 0,
                prot: Prot::RW,
            },
            Op::Annotate {
                start: s.base(),
                len: s.page,
                owner: 0,
            },
        ];
        for op in &ops {
            step(&mut t, &mut m, op, &s);
            check(&mut t, &m, op, &s);
        }
    }
}

//! Model-based tests: random sequences of stage-2 operations against a
//! simple model of what should be mapped, with the table compared to the
//! model and its invariants checked after every step.
//!
//! The model is a set of disjoint IPA intervals, each mapped (output
//! address, protection, access flag) or annotated (owner). It knows nothing
//! of levels: block versus page is the library's business. The few
//! behaviours that depend on the shape (attribute changes act on whole
//! leaves; unmap refuses a boundary inside a block; a fault-path map that
//! only changes permissions is spurious) read the shape from the table
//! before the step, through `get_leaf`.

use std::collections::BTreeMap;

use pgwalk::descriptor::Descriptor;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::{Error, Ipa, Mapping, PhysAddr, Prot, Stage2};
use proptest::prelude::*;

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;
/// The window the operations touch: two 1 GiB blocks' worth.
const BASE: u64 = G1;
const END: u64 = 3 * G1;
/// Output addresses: IPA - BASE + PA_BASE, plus a skew that may spoil
/// block alignment.
const PA_BASE: u64 = 0x40_0000_0000;

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

fn table_intervals(t: &Stage2<HeapMemory>) -> Vec<(u64, u64, Val)> {
    let mut runs = Vec::new();
    t.shared()
        .for_each_mapping(Ipa(BASE), END - BASE, |m: &Mapping| {
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
    },
    FaultMap {
        addr: u64,
        block: bool,
        skew: u64,
        prot: Prot,
    },
}

fn addr() -> impl Strategy<Value = u64> {
    (0..2u64, 0..3u64, 0..6u64, 0..4u64).prop_map(|(g, m, p, tail)| {
        BASE + g * G1 + m * M2 + p * K4 + if tail == 0 { M2 - K4 } else { 0 }
    })
}

fn len() -> impl Strategy<Value = u64> {
    prop_oneof![
        (1..8u64).prop_map(|n| n * K4),
        (1..3u64).prop_map(|n| n * M2),
        (1..3u64, 1..4u64).prop_map(|(m, p)| m * M2 + p * K4),
        Just(G1),
        Just(G1 + M2),
    ]
}

fn range() -> impl Strategy<Value = (u64, u64)> {
    (addr(), len()).prop_map(|(s, l)| (s, l.min(END - s)))
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

fn skew() -> impl Strategy<Value = u64> {
    prop_oneof![4 => Just(0), 1 => Just(K4), 1 => Just(M2)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (range(), skew(), prot()).prop_map(|((start, len), skew, prot)| Op::Map { start, len, skew, prot }),
        3 => range().prop_map(|(start, len)| Op::Unmap { start, len }),
        1 => (range(), 0..3u32).prop_map(|((start, len), owner)| Op::Annotate { start, len, owner }),
        1 => range().prop_map(|(start, len)| Op::Split { start, len: len.min(4 * M2) }),
        2 => range().prop_map(|(start, len)| Op::Wrprotect { start, len }),
        2 => (addr(), prop_oneof![Just(Prot::W), Just(Prot::X), Just(Prot::R | Prot::W)])
            .prop_map(|(addr, prot)| Op::Relax { addr, prot }),
        1 => addr().prop_map(|addr| Op::Mkyoung { addr }),
        2 => (range(), any::<bool>()).prop_map(|((start, len), mkold)| Op::TestClearYoung { start, len, mkold }),
        3 => (addr(), any::<bool>(), skew(), prot())
            .prop_map(|(addr, block, skew, prot)| Op::FaultMap { addr, block, skew, prot }),
    ]
}

fn pa_for(ipa: u64, skew: u64) -> u64 {
    PA_BASE + (ipa - BASE) + skew
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
fn step(t: &mut Stage2<HeapMemory>, m: &mut Model, op: &Op) {
    match *op {
        Op::Map {
            start,
            len,
            skew,
            prot,
        } => {
            let pa = pa_for(start, skew);
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
                a < END && {
                    let (s, _, leaf) = leaf_extent(t, a);
                    leaf.is_counted() && s != a
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
            for a in (start..start + len).step_by(K4 as usize) {
                let (leaf, level) = h.get_leaf(Ipa(a)).unwrap();
                assert!(!leaf.is_valid() || level.is_last(), "{a:#x} not split");
            }
        }
        Op::Wrprotect { start, len } => {
            let (s, e) = widen(t, start, start + len);
            let h = t.shared();
            h.wrprotect(Ipa(start), len).unwrap().flush();
            m.update(s, e, |p, _| p.remove(Prot::W));
        }
        Op::Relax { addr, prot } => {
            let (s, e, leaf) = leaf_extent(t, addr);
            t.shared().relax_perms(Ipa(addr), prot).unwrap();
            if leaf.is_valid() {
                m.update(s, e, |p, _| p.insert(prot));
            }
        }
        Op::Mkyoung { addr } => {
            let (s, e, leaf) = leaf_extent(t, addr);
            assert_eq!(t.shared().mkyoung(Ipa(addr)).unwrap(), leaf.is_valid());
            m.update(s, e, |_, y| *y = true);
        }
        Op::TestClearYoung { start, len, mkold } => {
            let (s, e) = widen(t, start, start + len);
            let expect = m.any_young(s, e);
            let got = if mkold {
                t.shared().clear_young(Ipa(start), len)
            } else {
                t.shared().test_young(Ipa(start), len)
            }
            .unwrap();
            assert_eq!(got, expect, "young in {s:#x}..{e:#x}");
            if mkold {
                m.update(s, e, |_, y| *y = false);
            }
        }
        Op::FaultMap {
            addr,
            block,
            skew,
            prot,
        } => {
            let size = if block { M2 } else { K4 };
            let start = addr & !(size - 1);
            let pa = pa_for(start, skew);
            let want = Val::Map {
                pa,
                prot: leaf_prot(prot),
                young: true,
            };
            // The fault installs the largest leaves that fit; a leaf already
            // there with the same mapping up to permissions is passed over
            // (permissions are relax_perms' business), any other is
            // replaced, a page table under a fitting block included.
            let unit = if block && pa % M2 == 0 { M2 } else { K4 };
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
                let unit_level = if unit == M2 { 2 } else { 3 };
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

fn check(t: &mut Stage2<HeapMemory>, m: &Model, op: &Op) {
    // Page tables a fault-path block replaced wait for a grace period.
    assert!(t.mm().quiesce());
    if let Err(e) = check_invariants(t) {
        panic!("invariant broken after {op:?}: {e}");
    }
    let got = table_intervals(t);
    let want = m.intervals();
    assert!(
        got == want,
        "after {op:?}:\n table {got:#x?}\n model {want:#x?}"
    );
}

fn cases() -> u32 {
    if cfg!(debug_assertions) {
        32
    } else {
        256
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn operations_match_the_model(ops in prop::collection::vec(op(), 1..24)) {
        let mm = HeapMemory::new(1 << 12);
        let mut t = Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), mm.clone()).unwrap();
        let mut m = Model::default();
        for op in &ops {
            step(&mut t, &mut m, op);
            check(&mut t, &m, op);
        }
        drop(t);
        prop_assert!(mm.quiesce());
        prop_assert_eq!(mm.live_pages(), 0);
        prop_assert_eq!(mm.stats().double_frees, 0);
    }
}

#[test]
fn model_sanity() {
    // The model itself: cutting, replacing and coalescing.
    let mut m = Model::default();
    let v = Val::Map {
        pa: 0x1000_0000,
        prot: Prot::RW,
        young: true,
    };
    m.set(BASE, BASE + 4 * K4, Some(v));
    m.set(BASE + K4, BASE + 2 * K4, None);
    assert_eq!(m.get(BASE + 3 * K4), Some(v.at(3 * K4)));
    assert_eq!(m.get(BASE + K4), None);
    m.set(BASE + K4, BASE + 2 * K4, Some(v.at(K4)));
    assert_eq!(m.intervals(), [(BASE, BASE + 4 * K4, v)]);
    let _ = Granule::Size4KiB;
}

#[test]
fn annotate_owner_zero_over_a_lone_page() {
    let mut t =
        Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), HeapMemory::new(64)).unwrap();
    let mut m = Model::default();
    let ops = [
        Op::Map {
            start: BASE,
            len: K4,
            skew: 0,
            prot: Prot::RW,
        },
        Op::Annotate {
            start: BASE,
            len: K4,
            owner: 0,
        },
    ];
    for op in &ops {
        step(&mut t, &mut m, op);
        check(&mut t, &m, op);
    }
}

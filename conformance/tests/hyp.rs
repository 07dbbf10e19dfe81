//! pgwalk's EL2 stage-1 tables (`pgwalk::hyp`) against a real MMU model:
//! tables built by the library on the host are loaded into TTBR0_EL2 of
//! QEMU's emulated CPU, whose MMU answers `AT S1E2R`, `AT S1E2W` and an
//! instruction fetch for every probe address, with the EL2 MMU on.
//!
//! Three oracles meet for every probe, as in the stage-2 test:
//!
//! - QEMU, which only sees the table bytes, MAIR_EL2, TCR_EL2, TTBR0_EL2;
//! - pgwalk's own reading of its table (`get_leaf`: the leaf, its level
//!   and its bits), turned into expected answers with the architecture's
//!   rules, from the raw bits;
//! - a model of what the operations should have left at that address,
//!   written without looking at descriptor bits.
//!
//! Tables are built by random maps (pages and every block size pgwalk
//! uses: 2 MiB and 1 GiB with 4 KiB pages, 32 MiB with 16 KiB, 512 MiB
//! with 64 KiB; RO and RW, executable or not; the three memory types),
//! refused overlapping maps, idempotent remaps, software-bit updates and
//! unmaps (which stop at holes and straddling blocks), in every format:
//! 4 KiB with VA sizes from 31 to 48 bits (start levels 0 and 1), 16 KiB
//! and 64 KiB (start levels 0 to 2; 52-bit VAs and PAs with 64 KiB), and
//! LPA2 with 4 KiB (from level -1) and 16 KiB (52-bit VAs and PAs, the
//! shareability in TCR_EL2.SH0). Probes cover every mapping's edges and
//! inside, holes at every level, the trampoline, and addresses beyond the
//! VA size.
//!
//! The seed is fixed; `PGWALK_CONFORMANCE_SEED` (decimal or `0x` hex) runs
//! another. 4 KiB VA sizes of 30 bits and less (start level 2) are not run:
//! the probe's trampoline must be identity-mapped, and QEMU's RAM starts at
//! 1 GiB (16 KiB and 64 KiB tables start at level 2 from 36 bits down, and
//! are run there).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use pgwalk::descriptor::HYP_MAIR;
use pgwalk::geometry::{Geometry, Granule, Level, TableFormat};
use pgwalk::host::{check_hyp_invariants, HeapMemory};
use pgwalk::hyp::{HypTable, HypUnmapStop};
use pgwalk::{Error, PhysAddr, Prot, Va};
use pgwalk_conformance::{
    Fetch, HypProbeResult, Machine, Par, HYP_NO_MEMORY_END, HYP_NO_MEMORY_PA, HYP_TRAMPOLINE_PA,
    HYP_TRAMPOLINE_SIZE, TABLE_WINDOW_PA, TABLE_WINDOW_SIZE,
};

const DEFAULT_SEED: u64 = 0x5067_7761_6c6b_0e12;
const SEED_ENV: &str = "PGWALK_CONFORMANCE_SEED";

/// PAR_EL1 reports output addresses in 4 KiB units, whatever the granule.
const PAR_PAGE: u64 = 4 << 10;

/// One table of the run: its format, VA size and output size.
#[derive(Clone, Copy, Debug)]
struct Config {
    format: TableFormat,
    va_bits: u8,
    oa_bits: u8,
}

const fn lpa2(granule: Granule) -> TableFormat {
    match TableFormat::new(granule, true) {
        Ok(f) => f,
        Err(_) => panic!("LPA2 exists for 4 and 16 KiB"),
    }
}

const K4: TableFormat = TableFormat::without_lpa2(Granule::Size4KiB);
const K16: TableFormat = TableFormat::without_lpa2(Granule::Size16KiB);
const K64: TableFormat = TableFormat::without_lpa2(Granule::Size64KiB);
const K4_LPA2: TableFormat = lpa2(Granule::Size4KiB);
const K16_LPA2: TableFormat = lpa2(Granule::Size16KiB);

const fn config(format: TableFormat, va_bits: u8, oa_bits: u8) -> Config {
    Config {
        format,
        va_bits,
        oa_bits,
    }
}

/// The tables built: every start level each format reaches with the
/// trampoline identity-mapped, roots of 2 to 8192 entries, several PS
/// values, 52-bit VAs and PAs where the format has them.
const CONFIGS: [Config; 20] = [
    // 4 KiB: start levels 0 and 1.
    config(K4, 48, 48),
    config(K4, 44, 44),
    config(K4, 42, 40),
    config(K4, 40, 48),
    config(K4, 39, 40),
    config(K4, 36, 36),
    config(K4, 32, 42),
    config(K4, 31, 40),
    // 16 KiB: level 0 (two entries), 1, and 2 (36 bits and less).
    config(K16, 48, 48),
    config(K16, 44, 40),
    config(K16, 36, 36),
    // 64 KiB: level 1 up to 52 bits (FEAT_LVA, FEAT_LPA), and 2.
    config(K64, 52, 52),
    config(K64, 48, 44),
    config(K64, 42, 52),
    config(K64, 36, 40),
    // LPA2: level -1 with 4 KiB (2 and 16 entries), level 0 with 16 KiB.
    config(K4_LPA2, 52, 52),
    config(K4_LPA2, 49, 48),
    config(K4_LPA2, 40, 52),
    config(K16_LPA2, 52, 52),
    config(K16_LPA2, 47, 52),
];

fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
                None => s.replace('_', "").parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{SEED_ENV}={s:?} is not a number: {e}"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// SplitMix64.
#[derive(Clone)]
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
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

// ------------------------------------------------------------ answers

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FaultKind {
    Translation,
    AccessFlag,
    Permission,
    AddressSize,
}

/// Any level: the model knows what is mapped, not how the table is shaped.
const ANY_LEVEL: i8 = i8::MIN;

/// One access, decoded into what the test compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Translated: page address, MAIR attribute byte, PAR.SH.
    Ok { pa: u64, attr: u8, sh: u8 },
    /// A stage-1 fault.
    Fault { kind: FaultKind, level: i8 },
    /// An external abort on the fetch (executable, no memory behind it).
    ExternalAbort,
    /// The probe did not branch (the trampoline page).
    NotBranched,
    /// Anything else: always a mismatch.
    Other(u64),
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Ok { pa, attr, sh } => write!(f, "ok pa={pa:#x} attr={attr:#04x} sh={sh:#04b}"),
            Access::Fault { kind, level } if *level == ANY_LEVEL => write!(f, "{kind:?} fault"),
            Access::Fault { kind, level } => write!(f, "{kind:?} fault L{level}"),
            Access::ExternalAbort => write!(f, "external abort"),
            Access::NotBranched => write!(f, "not branched"),
            Access::Other(raw) => write!(f, "unexpected {raw:#x}"),
        }
    }
}

fn fault_of_code(code: u8) -> Option<(FaultKind, i8)> {
    // FEAT_LPA2's level -1 codes sit outside the four-code families.
    match code {
        0b10_1001 => return Some((FaultKind::AddressSize, -1)),
        0b10_1011 => return Some((FaultKind::Translation, -1)),
        _ => {}
    }
    let level = (code & 0b11) as i8;
    match code & !0b11 {
        0b00_0000 => Some((FaultKind::AddressSize, level)),
        0b00_0100 => Some((FaultKind::Translation, level)),
        0b00_1000 => Some((FaultKind::AccessFlag, level)),
        0b00_1100 => Some((FaultKind::Permission, level)),
        _ => None,
    }
}

fn from_par(par: Par) -> Access {
    if !par.fault() {
        return Access::Ok {
            pa: par.pa().unwrap_or_default(),
            attr: par.attr().unwrap_or_default(),
            sh: par.sh().unwrap_or_default(),
        };
    }
    // A stage-1 fault (S = 0), not on a stage-2 walk (PTW = 0).
    if par.stage2() != Some(false) || par.ptw() != Some(false) {
        return Access::Other(par.raw());
    }
    match par.fst().and_then(fault_of_code) {
        Some((kind, level)) => Access::Fault { kind, level },
        None => Access::Other(par.raw()),
    }
}

fn from_fetch(fetch: Fetch) -> Access {
    match fetch {
        Fetch::NotBranched => Access::NotBranched,
        Fetch::Returned => Access::Other(0),
        Fetch::Exception { esr } => {
            // EC 0x21: instruction abort taken without a change of level.
            if esr >> 26 != 0x21 {
                return Access::Other(esr);
            }
            let ifsc = (esr & 0x3f) as u8;
            if ifsc == 0b01_0000 {
                return Access::ExternalAbort;
            }
            match fault_of_code(ifsc) {
                Some((kind, level)) => Access::Fault { kind, level },
                None => Access::Other(esr),
            }
        }
    }
}

/// What one probe answers: read, write, fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Answer {
    read: Access,
    write: Access,
    fetch: Access,
}

impl Answer {
    fn all(a: Access) -> Answer {
        Answer {
            read: a,
            write: a,
            fetch: a,
        }
    }

    fn from_qemu(r: &HypProbeResult) -> Answer {
        Answer {
            read: from_par(r.read),
            write: from_par(r.write),
            fetch: from_fetch(r.fetch),
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R: {}; W: {}; X: {}", self.read, self.write, self.fetch)
    }
}

/// PAR.SH is 0b10 for Device and Normal non-cacheable memory
/// (PAREncodeShareability); QEMU 7.2 reports the descriptor's SH for a
/// stage-1-only translation instead. Either is accepted for those types,
/// and only there.
fn same_access(qemu: &Access, expected: &Access, attr_relaxes_sh: bool, raw_sh: u8) -> bool {
    match (qemu, expected) {
        (
            Access::Ok { pa, attr, sh },
            Access::Ok {
                pa: p,
                attr: a,
                sh: s,
            },
        ) => pa == p && attr == a && (sh == s || (attr_relaxes_sh && *sh == raw_sh)),
        (a, b) => a == b,
    }
}

fn same_ignoring_level(a: &Access, b: &Access) -> bool {
    match (a, b) {
        (Access::Fault { kind: x, .. }, Access::Fault { kind: y, .. }) => x == y,
        (x, y) => x == y,
    }
}

/// MAIR_EL2's attribute byte for an AttrIndx.
fn mair_attr(index: u64) -> u8 {
    (HYP_MAIR >> (8 * index)) as u8
}

/// Device (`0b0000dd00`) or Normal inner and outer non-cacheable (`0x44`).
fn arch_reports_outer(attr: u8) -> bool {
    attr & 0xf0 == 0 || attr == 0x44
}

/// What the architecture makes of pgwalk's own answer for `va`, from the
/// raw bits of the leaf (and the raw SH, for QEMU's report).
fn expected_from_pgwalk(t: &mut HypTable<HeapMemory>, va: u64) -> (Answer, bool, u8) {
    let (d, level) = match t.exclusive().get_leaf(Va(va)) {
        Ok(found) => found,
        // Beyond the VA size: a translation fault at level 0, whatever the
        // start level (the Arm ARM's AArch64.S1Translate).
        Err(Error::OutOfRange { .. }) => {
            let f = Access::Fault {
                kind: FaultKind::Translation,
                level: 0,
            };
            return (Answer::all(f), false, 0);
        }
        Err(e) => panic!("get_leaf({va:#x}): {e}"),
    };
    let level = level.get();
    let bits = d.bits();
    if bits & 1 == 0 {
        let f = Access::Fault {
            kind: FaultKind::Translation,
            level,
        };
        return (Answer::all(f), false, 0);
    }
    if bits & (1 << 10) == 0 {
        let f = Access::Fault {
            kind: FaultKind::AccessFlag,
            level,
        };
        return (Answer::all(f), false, 0);
    }
    let format = t.geometry().format();
    let size = t.geometry().entry_size(Level::new(level).unwrap());
    let oa = raw_output_address(format, bits) & !(size - 1);
    let pa = (oa + (va & (size - 1))) & !(PAR_PAGE - 1);
    let attr = mair_attr(bits >> 2 & 0b111);
    // With LPA2 bits 9:8 are address bits, and TCR_EL2.SH0 (inner, as
    // pgwalk sets it) is the shareability.
    let raw_sh = if format.lpa2() {
        0b11
    } else {
        (bits >> 8 & 0b11) as u8
    };
    let sh = if arch_reports_outer(attr) {
        0b10
    } else {
        raw_sh
    };
    let ok = Access::Ok { pa, attr, sh };
    let perm = Access::Fault {
        kind: FaultKind::Permission,
        level,
    };
    // AP[2] (bit 7) clear: writable at EL2. XN (bit 54) clear: executable.
    let write = if bits & (1 << 7) == 0 { ok } else { perm };
    let fetch = if bits & (1 << 54) != 0 {
        perm
    } else if in_trampoline(va) {
        Access::NotBranched
    } else {
        Access::ExternalAbort
    };
    (
        Answer {
            read: ok,
            write,
            fetch,
        },
        arch_reports_outer(attr),
        raw_sh,
    )
}

/// The output address a descriptor's bits hold, read the Arm ARM's way
/// (not pgwalk's): bits 47 down to the page shift, and PA\[51:48\] from
/// bits 15:12 (64 KiB) or PA\[49:48\] in place and PA\[51:50\] from bits
/// 9:8 (LPA2).
fn raw_output_address(format: TableFormat, bits: u64) -> u64 {
    let page = format.granule().size();
    let low = bits & 0x0000_ffff_ffff_ffff & !(page - 1);
    if format.lpa2() {
        bits & 0x0003_ffff_ffff_ffff & !(page - 1) | (bits >> 8 & 0b11) << 50
    } else if format.granule() == Granule::Size64KiB {
        low | (bits >> 12 & 0xf) << 48
    } else {
        low
    }
}

fn in_trampoline(va: u64) -> bool {
    (HYP_TRAMPOLINE_PA..HYP_TRAMPOLINE_PA + HYP_TRAMPOLINE_SIZE).contains(&va)
}

// ---------------------------------------------------------------- model

/// Mapped extents: start -> (end, output address of start, prot).
#[derive(Default)]
struct Model {
    extents: BTreeMap<u64, (u64, u64, Prot)>,
}

impl Model {
    fn lookup(&self, va: u64) -> Option<(u64, Prot)> {
        let (&start, &(end, pa, prot)) = self.extents.range(..=va).next_back()?;
        (va < end).then(|| (pa + (va - start), prot))
    }

    fn any_mapped(&self, start: u64, end: u64) -> bool {
        self.extents
            .range(..end)
            .next_back()
            .is_some_and(|(_, &(e, _, _))| e > start)
    }

    /// Whether mapping `start..end` to `pa` with `prot` conflicts with a
    /// different mapping already there.
    fn conflicts(&self, start: u64, end: u64, pa: u64, prot: Prot) -> bool {
        self.extents.range(..end).any(|(&s, &(e, epa, eprot))| {
            let (lo, hi) = (s.max(start), e.min(end));
            lo < hi && (epa + (lo - s) != pa + (lo - start) || eprot != prot)
        })
    }

    fn remove(&mut self, start: u64, end: u64) {
        let hit: Vec<u64> = self
            .extents
            .range(..end)
            .filter(|(_, &(e, _, _))| e > start)
            .map(|(&s, _)| s)
            .collect();
        for s in hit {
            let (e, pa, prot) = self.extents.remove(&s).unwrap();
            if s < start {
                self.extents.insert(s, (start, pa, prot));
            }
            if e > end {
                self.extents.insert(end, (e, pa + (end - s), prot));
            }
        }
    }

    fn insert(&mut self, start: u64, end: u64, pa: u64, prot: Prot) {
        self.remove(start, end);
        self.extents.insert(start, (end, pa, prot));
    }

    fn expected(&self, va: u64) -> Answer {
        let Some((pa, prot)) = self.lookup(va) else {
            return Answer::all(Access::Fault {
                kind: FaultKind::Translation,
                level: ANY_LEVEL,
            });
        };
        let (attr, sh) = if prot.contains(Prot::DEVICE) {
            (0x04, 0b10)
        } else if prot.contains(Prot::NORMAL_NC) {
            (0x44, 0b10)
        } else {
            (0xff, 0b11)
        };
        let ok = Access::Ok {
            pa: pa & !(PAR_PAGE - 1),
            attr,
            sh,
        };
        let perm = Access::Fault {
            kind: FaultKind::Permission,
            level: ANY_LEVEL,
        };
        Answer {
            read: ok,
            write: if prot.contains(Prot::W) { ok } else { perm },
            fetch: if !prot.el1_exec() {
                perm
            } else if in_trampoline(va) {
                Access::NotBranched
            } else {
                Access::ExternalAbort
            },
        }
    }
}

// ----------------------------------------------------------- one table

/// What one table's run covered, for the coverage checks at the end.
#[derive(Default)]
struct Coverage {
    probes: usize,
    leaves: [usize; 4],
    /// Translation faults by level, -1 to 3.
    hole_levels: [bool; 5],
    beyond: usize,
    kinds: [bool; 3],
    read_only: usize,
    executable: usize,
    refused: usize,
    stopped_unmaps: usize,
}

struct Run {
    va_bits: u8,
    oa_bits: u8,
    format: TableFormat,
    /// The granule's page.
    page: u64,
    /// A level-2 block.
    block: u64,
    /// The slot of the VA space one round works in: 1 GiB (a level-1
    /// block) with 4 KiB pages, a few level-2 blocks otherwise.
    slot_size: u64,
    rng: Rng,
    table: HypTable<HeapMemory>,
    mm: HeapMemory,
    model: Model,
    probes: Vec<u64>,
    log: Vec<String>,
    cov: Coverage,
}

const PROTS: [Prot; 8] = [
    Prot::R,
    Prot::RW,
    Prot::R.union(Prot::X),
    Prot::R.union(Prot::X),
    Prot::RW.union(Prot::DEVICE),
    Prot::R.union(Prot::DEVICE),
    Prot::RW.union(Prot::NORMAL_NC),
    Prot::R.union(Prot::NORMAL_NC),
];

impl Run {
    fn new(config: Config, rng: Rng) -> Run {
        let Config {
            format,
            va_bits,
            oa_bits,
        } = config;
        let page = format.granule().size();
        let block = page << format.granule().bits_per_level();
        let slot_size = match format.granule() {
            Granule::Size4KiB => block << 9,
            Granule::Size16KiB => block << 6,
            Granule::Size64KiB => block << 3,
        };
        // A quarter of the table window, in the granule's pages.
        let pages = (TABLE_WINDOW_SIZE / page) as usize / 4;
        let mm = HeapMemory::with_format_at(format, TABLE_WINDOW_PA, pages);
        let g = Geometry::for_va_bits(format, va_bits, oa_bits).unwrap();
        let mut table = HypTable::with_geometry(g, mm.clone(), &mut ()).unwrap();
        table
            .exclusive()
            .map(
                Va(HYP_TRAMPOLINE_PA),
                HYP_TRAMPOLINE_SIZE,
                PhysAddr(HYP_TRAMPOLINE_PA),
                Prot::R | Prot::X,
                &mut (),
            )
            .unwrap();
        let mut model = Model::default();
        model.insert(
            HYP_TRAMPOLINE_PA,
            HYP_TRAMPOLINE_PA + HYP_TRAMPOLINE_SIZE,
            HYP_TRAMPOLINE_PA,
            Prot::R | Prot::X,
        );
        Run {
            va_bits,
            oa_bits,
            format,
            page,
            block,
            slot_size,
            rng,
            table,
            mm,
            model,
            probes: vec![HYP_TRAMPOLINE_PA, HYP_TRAMPOLINE_PA + 0x7fc],
            log: Vec::new(),
            cov: Coverage::default(),
        }
    }

    /// An output address for `size` bytes aligned to `align`, in the window
    /// with no memory behind it and within the output size; with a 52-bit
    /// output size, half the time above 2^48 (where `virt` has nothing
    /// either), so that the descriptors' top address bits are walked.
    fn output(&mut self, size: u64, align: u64) -> u64 {
        let (start, end) = if self.oa_bits == 52 && self.rng.chance(1, 2) {
            (1 << 48, 1 << 52)
        } else {
            (HYP_NO_MEMORY_PA, HYP_NO_MEMORY_END.min(1 << self.oa_bits))
        };
        let slots = (end - start - size) / align;
        start + self.rng.below(slots) * align
    }

    /// Probes around `lo..hi`: its edges, inside, and just outside.
    fn probe_range(&mut self, lo: u64, hi: u64) {
        let limit = 1u64 << self.va_bits;
        let mut push = |a: u64| {
            if a < limit {
                self.probes.push(a & !3);
            }
        };
        push(lo);
        push(hi - 4);
        for _ in 0..6 {
            push(lo + self.rng.below(hi - lo));
        }
        if lo >= PAR_PAGE {
            push(lo - 4);
        }
        push(hi);
    }

    /// A slot of the VA space to work in, away from the trampoline's.
    fn slot(&mut self) -> u64 {
        let size = self.slot_size;
        let slots = (1u64 << self.va_bits) / size;
        loop {
            let s = self.rng.below(slots) * size;
            if s != HYP_TRAMPOLINE_PA & !(size - 1) {
                return s;
            }
        }
    }

    fn map(&mut self, va: u64, size: u64, pa: u64, prot: Prot) {
        let conflicts = self.model.conflicts(va, va + size, pa, prot);
        let r = self
            .table
            .exclusive()
            .map(Va(va), size, PhysAddr(pa), prot, &mut ());
        self.log
            .push(format!("map {va:#x}+{size:#x} -> {pa:#x} {prot:?}: {r:?}"));
        match r {
            Ok(()) => {
                assert!(
                    !conflicts,
                    "a map over a different mapping succeeded: {:?}",
                    self.log
                );
                self.model.insert(va, va + size, pa, prot);
            }
            Err(Error::AlreadyMapped { .. }) => {
                // pgwalk also refuses an identical remap at a finer grain
                // than the blocks there; the model sees the overlap only.
                assert!(
                    self.model.any_mapped(va, va + size),
                    "refused a map over nothing: {:?}",
                    self.log
                );
                self.cov.refused += 1;
            }
            Err(e) => panic!("map: {e}; {:?}", self.log),
        }
        self.probe_range(va, va + size);
    }

    fn unmap(&mut self, va: u64, size: u64) {
        let r = self.table.exclusive().unmap(Va(va), size).unwrap();
        self.log.push(format!("unmap {va:#x}+{size:#x}: {r:?}"));
        for probe in [va, va + r.bytes().saturating_sub(self.page)] {
            if r.bytes() > 0 {
                assert!(
                    self.model.lookup(probe).is_some(),
                    "unmapped an unmapped page {probe:#x}: {:?}",
                    self.log
                );
            }
        }
        match r.stopped() {
            Some(HypUnmapStop::Hole { va: at, .. }) => {
                assert!(self.model.lookup(at.get()).is_none(), "{:?}", self.log);
                self.cov.stopped_unmaps += 1;
            }
            Some(HypUnmapStop::BlockBeyondRange { va: at, .. }) => {
                assert!(self.model.lookup(at.get()).is_some(), "{:?}", self.log);
                self.cov.stopped_unmaps += 1;
            }
            None => assert_eq!(r.bytes(), size),
        }
        self.model.remove(va, va + r.bytes());
        self.probe_range(va, va + size);
    }

    /// Random operations in a few slots.
    fn build(&mut self) {
        let (page, block, slot_size) = (self.page, self.block, self.slot_size);
        let blocks = slot_size / block;
        for _ in 0..8 {
            let slot = self.slot();
            for _ in 0..12 {
                let prot = self.rng.pick(&PROTS);
                match self.rng.below(10) {
                    // The whole slot: a 1 GiB block with 4 KiB pages (or,
                    // with a misaligned output, 2 MiB blocks), level-2
                    // blocks otherwise.
                    0 => {
                        let align = if self.rng.chance(3, 4) {
                            slot_size
                        } else {
                            block
                        };
                        let pa = self.output(slot_size, align);
                        self.map(slot, slot_size, pa, prot);
                    }
                    // Level-2 blocks, or pages when the output is
                    // misaligned.
                    1..=3 => {
                        let n = 1 + self.rng.below(3);
                        let va = slot + self.rng.below(blocks - n) * block;
                        let align = if self.rng.chance(4, 5) { block } else { page };
                        let pa = self.output(n * block, align);
                        self.map(va, n * block, pa, prot);
                    }
                    // Pages, perhaps across a block boundary.
                    4..=6 => {
                        let n = 1 + self.rng.below(40);
                        let base = slot + self.rng.below(blocks - 2) * block + block
                            - self.rng.below(24) * page;
                        let pa = self.output(n * page, page);
                        self.map(base, n * page, pa, prot);
                    }
                    // Remap what is there, unchanged or with software bits.
                    7 => {
                        let found = self
                            .model
                            .extents
                            .range(slot..slot + slot_size)
                            .next()
                            .map(|(&s, &e)| (s, e));
                        if let Some((s, (e, pa, p))) = found {
                            let sw = if self.rng.chance(1, 2) {
                                Prot::SW1
                            } else {
                                Prot::empty()
                            };
                            let r = self.table.exclusive().map(
                                Va(s),
                                e - s,
                                PhysAddr(pa),
                                p | sw,
                                &mut (),
                            );
                            self.log.push(format!("remap {s:#x}..{e:#x} {sw:?}: {r:?}"));
                            // Refused only where the extent's blocks were
                            // split by an unmap (finer grain than the map).
                            if r.is_ok() {
                                self.model.insert(s, e, pa, p | sw);
                            }
                            self.probe_range(s, e);
                        }
                    }
                    // Unmap part of the slot.
                    _ => {
                        let (va, size) = if self.rng.chance(1, 3) {
                            (
                                slot + self.rng.below(blocks) * block,
                                block * (1 + self.rng.below(2)),
                            )
                        } else {
                            (
                                slot + self.rng.below(slot_size / page - 64) * page,
                                page * (1 + self.rng.below(64)),
                            )
                        };
                        self.unmap(va, size.min(slot + slot_size - va));
                    }
                }
            }
            check_hyp_invariants(&mut self.table).unwrap_or_else(|e| panic!("{e}; {:?}", self.log));
        }
        // Holes anywhere, and addresses beyond the VA size.
        let limit = 1u64 << self.va_bits;
        for _ in 0..3000 {
            let a = self.rng.below(limit) & !3;
            self.probes.push(a);
        }
        let top: u64 = if self.va_bits < 48 { 1 << 48 } else { 1 << 56 };
        for _ in 0..50 {
            let a = limit + self.rng.below(top - limit + 1);
            self.probes.push(a & !3);
            self.cov.beyond += 1;
        }
        self.probes.push(limit);
        self.probes.push(!3);
        self.cov.beyond += 2;
    }

    /// Compares QEMU, pgwalk and the model on every probe; returns the
    /// failures.
    fn check(&mut self, machine: &Machine) -> Vec<String> {
        let image = self.mm.bytes(self.mm.phys_base(), self.mm.extent());
        let results = machine
            .translate_el2(
                HYP_MAIR,
                self.table.tcr_el2(),
                self.table.ttbr0_el2(),
                TABLE_WINDOW_PA,
                &image,
                &self.probes,
            )
            .unwrap_or_else(|e| panic!("{}, VA {} bits: {e}", self.format, self.va_bits));
        let report = check_hyp_invariants(&mut self.table).unwrap();
        for (l, n) in report.leaves.iter().enumerate() {
            self.cov.leaves[l] += n;
        }
        let mut failures = Vec::new();
        let probes = std::mem::take(&mut self.probes);
        for (&va, r) in probes.iter().zip(&results) {
            self.cov.probes += 1;
            let qemu = Answer::from_qemu(r);
            let (pg, relaxed, raw_sh) = expected_from_pgwalk(&mut self.table, va);
            let model = self.model.expected(va);
            match pg.read {
                Access::Fault {
                    kind: FaultKind::Translation,
                    level,
                } => self.cov.hole_levels[(level + 1) as usize] = true,
                Access::Ok { attr, .. } => {
                    let kind = match attr {
                        0xff => 0,
                        0x44 => 1,
                        _ => 2,
                    };
                    self.cov.kinds[kind] = true;
                    self.cov.read_only += usize::from(pg.write != pg.read);
                    self.cov.executable += usize::from(!matches!(pg.fetch, Access::Fault { .. }));
                }
                _ => {}
            }
            let pairs = [
                ("read", &qemu.read, &pg.read, &model.read),
                ("write", &qemu.write, &pg.write, &model.write),
                ("fetch", &qemu.fetch, &pg.fetch, &model.fetch),
            ];
            for (what, q, p, m) in pairs {
                if !same_access(q, p, relaxed, raw_sh) {
                    failures.push(format!(
                        "{}, VA {} bits, PA {}: {va:#x} {what}: QEMU says {q}, pgwalk's table says {p}",
                        self.format, self.va_bits, self.oa_bits
                    ));
                }
                if !same_ignoring_level(p, m) {
                    failures.push(format!(
                        "{}, VA {} bits, PA {}: {va:#x} {what}: pgwalk's table says {p}, the model {m}",
                        self.format, self.va_bits, self.oa_bits
                    ));
                }
            }
        }
        failures
    }
}

#[test]
fn hyp_tables_agree_with_qemu() {
    let seed = seed();
    let hint = format!("{SEED_ENV}={seed:#x} cargo test -p pgwalk-conformance --test hyp");
    eprintln!("hyp conformance: seed {seed:#x} ({hint})");
    let machine = Machine::new().unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(Coverage, Vec<String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&config) = CONFIGS.get(i) else {
                    break;
                };
                let mut run =
                    Run::new(config, Rng(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9)));
                run.build();
                let failures = run.check(&machine);
                drop(run.table);
                assert_eq!(run.mm.live_pages(), 0, "destroy freed every page");
                results.lock().unwrap().push((run.cov, failures));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut total = Coverage::default();
    let mut failures = Vec::new();
    for (c, f) in results {
        total.probes += c.probes;
        for l in 0..4 {
            total.leaves[l] += c.leaves[l];
        }
        for l in 0..5 {
            total.hole_levels[l] |= c.hole_levels[l];
        }
        for k in 0..3 {
            total.kinds[k] |= c.kinds[k];
        }
        total.beyond += c.beyond;
        total.read_only += c.read_only;
        total.executable += c.executable;
        total.refused += c.refused;
        total.stopped_unmaps += c.stopped_unmaps;
        failures.extend(f);
    }
    eprintln!(
        "hyp conformance: {} probes over {} tables in {:.1} s; leaves by level {:?}, \
         {} refused maps, {} unmaps stopped early",
        total.probes,
        CONFIGS.len(),
        start.elapsed().as_secs_f64(),
        total.leaves,
        total.refused,
        total.stopped_unmaps
    );
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(30).collect();
        panic!(
            "{} mismatches (seed {seed:#x}; rerun: {hint}):\n{}",
            failures.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // What the run must have covered, or it proves less than it claims.
    assert!(
        total.leaves[1] > 0 && total.leaves[2] > 0 && total.leaves[3] > 0,
        "{:?}",
        total.leaves
    );
    assert_eq!(
        total.hole_levels, [true; 5],
        "holes at every level, -1 to 3"
    );
    assert_eq!(total.kinds, [true; 3], "the three memory types");
    assert!(total.read_only > 0 && total.executable > 0 && total.beyond > 0);
    assert!(total.refused > 0 && total.stopped_unmaps > 0);
    assert!(total.probes >= 25_000, "{} probes", total.probes);
}

//! Running one configuration: build, ask QEMU, compare every probe three
//! ways, and tally what was covered.

use pgwalk::descriptor::Descriptor;
use pgwalk::geometry::{Geometry, Level};
use pgwalk::host::check_invariants;
use pgwalk_conformance::{Machine, Par, ParPair};

use crate::configs::{hit_by_qemu_ps_start_level_bug, qemu_cannot_start_here, vtcr_for, Config};
use crate::expect::{expected_from_pgwalk, FaultKind, Outcome};
use crate::model::{model_at, model_outcome};
use crate::rng::Rng;
use crate::scenarios::{Builder, Built};

/// What one configuration's run found.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) probes: usize,
    pub(crate) boots: usize,
    pub(crate) ops: usize,
    /// Probes QEMU could not be asked about (see
    /// `configs::qemu_cannot_start_here`): compared with the model only.
    pub(crate) unchecked: usize,
    pub(crate) ok: [usize; 3],
    /// Translation faults by level, -1..=3.
    pub(crate) translation: [usize; 5],
    pub(crate) access_flag: usize,
    pub(crate) permission: [usize; 2],
    pub(crate) out_of_range: usize,
    pub(crate) leaves: [usize; 4],
    pub(crate) annotations: usize,
    pub(crate) s2ap_seen: [usize; 4],
    pub(crate) table_pages: usize,
    pub(crate) notes: Vec<String>,
    pub(crate) mismatches: Vec<String>,
    pub(crate) mismatch_count: usize,
}

impl Tally {
    pub(crate) fn add(&mut self, o: &Tally) {
        self.probes += o.probes;
        self.boots += o.boots;
        self.ops += o.ops;
        self.unchecked += o.unchecked;
        for i in 0..3 {
            self.ok[i] += o.ok[i];
        }
        for i in 0..5 {
            self.translation[i] += o.translation[i];
        }
        for i in 0..4 {
            self.leaves[i] += o.leaves[i];
            self.s2ap_seen[i] += o.s2ap_seen[i];
        }
        self.access_flag += o.access_flag;
        self.permission[0] += o.permission[0];
        self.permission[1] += o.permission[1];
        self.out_of_range += o.out_of_range;
        self.annotations += o.annotations;
        self.table_pages += o.table_pages;
        self.notes.extend(o.notes.iter().cloned());
        self.mismatches.extend(o.mismatches.iter().cloned());
        self.mismatch_count += o.mismatch_count;
    }

    fn count(&mut self, o: &Outcome, write: bool, out_of_range: bool) {
        match *o {
            Outcome::Ok { attr: 0xff, .. } => self.ok[0] += 1,
            Outcome::Ok { attr: 0x44, .. } => self.ok[1] += 1,
            Outcome::Ok { .. } => self.ok[2] += 1,
            Outcome::Fault {
                kind: FaultKind::Translation,
                level,
            } => {
                if out_of_range {
                    self.out_of_range += 1;
                } else {
                    self.translation[(level.clamp(-1, 3) + 1) as usize] += 1;
                }
            }
            Outcome::Fault {
                kind: FaultKind::AccessFlag,
                ..
            } => self.access_flag += 1,
            Outcome::Fault {
                kind: FaultKind::Permission,
                ..
            } => self.permission[usize::from(write)] += 1,
            _ => {}
        }
    }
}

/// Mismatches printed in full; the rest are only counted.
pub(crate) const MISMATCHES_SHOWN: usize = 12;

/// Compares every probe's answers (`None`: QEMU was not asked) with
/// pgwalk's reading of its table and with the model. What QEMU answered is
/// tallied for the coverage checks.
pub(crate) fn compare(cfg: &Config, built: &Built, results: &[Option<ParPair>], tally: &mut Tally) {
    let limit = 1u64 << cfg.ia;
    for (&ipa, pair) in built.probes.iter().zip(results) {
        let state = model_at(&built.log, ipa);
        let pars = match pair {
            Some(p) => [(false, Some(p.read)), (true, Some(p.write))],
            None => {
                tally.unchecked += 1;
                [(false, None), (true, None)]
            }
        };
        for (write, par) in pars {
            let (want, leaf) = expected_from_pgwalk(&built.table, ipa, write);
            let got = par.map(Outcome::from_par);
            let model = model_outcome(state, ipa, write);
            if par.is_none() {
                if !model.same_ignoring_level(&want) {
                    tally.mismatch_count += 1;
                    if tally.mismatches.len() < MISMATCHES_SHOWN {
                        tally.mismatches.push(format!(
                            "{cfg}: {ipa:#x} (not walkable by this QEMU)\n    pgwalk: {want} \
                             (leaf {leaf:?})\n    model:  {model} ({state:?})\n    -> pgwalk's \
                             table disagrees with the operations applied"
                        ));
                    }
                }
                continue;
            }
            let (got, par) = (got.expect("asked"), par.expect("asked"));
            tally.count(&want, write, ipa >= limit);
            if !write {
                if let Some((d, level)) = leaf {
                    if d.is_valid() && level.get() >= 1 {
                        tally.s2ap_seen
                            [usize::from(d.readable()) | usize::from(d.writable()) << 1] += 1;
                    }
                }
            }
            let qemu_ok = got == want;
            let model_ok = model.same_ignoring_level(&want);
            if qemu_ok && model_ok {
                continue;
            }
            tally.mismatch_count += 1;
            if tally.mismatches.len() < MISMATCHES_SHOWN {
                let access = if write { "AT S12E1W" } else { "AT S12E1R" };
                let leaf = match leaf {
                    Some((d, l)) => format!("{d:?} at L{}", l.get()),
                    None => "none (outside the input size)".into(),
                };
                let history: Vec<String> = built
                    .log
                    .iter()
                    .filter(|op| (op.range().0..op.range().1).contains(&ipa))
                    .map(|op| format!("{op:?}"))
                    .collect();
                tally.mismatches.push(format!(
                    "{cfg}: {access} {ipa:#x}\n    QEMU:   {got} ({par:?})\n    pgwalk: {want} \
                     (leaf {leaf})\n    model:  {model} ({state:?}){}{}\n    operations on \
                     this address: {}",
                    if qemu_ok {
                        ""
                    } else {
                        "\n    -> QEMU disagrees with pgwalk"
                    },
                    if model_ok {
                        ""
                    } else {
                        "\n    -> pgwalk's table disagrees with the operations applied"
                    },
                    if history.is_empty() {
                        "none".into()
                    } else {
                        history.join("; ")
                    }
                ));
            }
        }
    }
}

/// Whether every answer is the level-0 translation fault QEMU gives for a
/// VTCR_EL2 it refuses.
pub(crate) fn all_refused(results: &[ParPair]) -> bool {
    let refused = |p: Par| {
        Outcome::from_par(p)
            == Outcome::Fault {
                kind: FaultKind::Translation,
                level: 0,
            }
    };
    results.iter().all(|r| refused(r.read) && refused(r.write))
}

/// Asks QEMU about a table it cannot start a walk of (see
/// `configs::qemu_cannot_start_here`), one root entry at a time: each
/// table the root links is walked as the root of the table one level down,
/// and the probes below that entry are asked about there. Probes below
/// entries that link no table, and those beyond the input size, get
/// `None`. Returns the answers and the boots it took.
fn ask_per_root_entry(
    machine: &Machine,
    cfg: &Config,
    built: &Built,
    image: &[u8],
    vmid: u64,
) -> (Vec<Option<ParPair>>, usize) {
    let g = built.table.geometry();
    let mm = built.table.mm();
    let start = g.start_level();
    let shift = g.level_shift(start);
    let child_level = Level::new(start.get() + 1).expect("a level below the root");
    let child_geometry = Geometry::new(g.format(), shift as u8, child_level, g.oa_bits())
        .unwrap_or_else(|e| panic!("{cfg}: the geometry of a root entry's table: {e}"));
    let root = mm.bytes(built.table.root(), g.root_entries() * 8);
    let mut results = vec![None; built.probes.len()];
    let mut boots = 0;
    for (idx, bytes) in root.chunks(8).enumerate() {
        let d = Descriptor::from_bits(u64::from_le_bytes(bytes.try_into().expect("8 bytes")));
        if !d.is_table(start) {
            continue;
        }
        let child = d.output_address(g.format());
        let below: Vec<usize> = (0..built.probes.len())
            .filter(|&i| built.probes[i] >> shift == idx as u64 && built.probes[i] < g.ia_limit())
            .collect();
        if below.is_empty() {
            continue;
        }
        let probes: Vec<u64> = below
            .iter()
            .map(|&i| built.probes[i] & ((1 << shift) - 1))
            .collect();
        let answers = machine
            .translate(
                child_geometry.vtcr(),
                child.get() | vmid << 48,
                mm.phys_base().get(),
                image,
                &probes,
            )
            .unwrap_or_else(|e| panic!("{cfg}: QEMU harness failed: {e}"));
        boots += 1;
        for (i, a) in below.into_iter().zip(answers) {
            results[i] = Some(a);
        }
    }
    (results, boots)
}

pub(crate) fn run_config(machine: &Machine, cfg: Config, rng: Rng) -> Tally {
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    let mut built = Builder::new(cfg, rng, &mut failures).run(48);
    for f in failures {
        tally.mismatch_count += 1;
        tally.mismatches.push(f);
    }
    tally.ops = built.ops;
    if let Ok(report) = check_invariants(&mut built.table) {
        tally.leaves = report.leaves;
        tally.annotations = report.annotations;
        tally.table_pages = report.table_pages;
    }

    let g = built.table.geometry();
    let vtcr = g.vtcr();
    let fields = 0x3_000f_ffff;
    assert_eq!(
        vtcr & fields,
        vtcr_for(&cfg) & fields,
        "{cfg}: pgwalk's VTCR_EL2 encoding"
    );
    // Distinct per configuration, and below 256 (8-bit VMIDs).
    let vmid = u64::from(cfg.ia) << 2 | (cfg.start + 1) as u64;
    let vttbr = built.table.root().get() | vmid << 48;
    let mm = built.table.mm();
    let image = mm.bytes(mm.phys_base(), mm.extent());
    let ask = |vtcr: u64| {
        machine
            .translate(vtcr, vttbr, mm.phys_base().get(), &image, &built.probes)
            .unwrap_or_else(|e| panic!("{cfg}: QEMU harness failed: {e}"))
    };
    let mut results = ask(vtcr);
    tally.boots += 1;
    if hit_by_qemu_ps_start_level_bug(&cfg) && all_refused(&results) {
        tally.notes.push(format!(
            "{cfg}: this QEMU refuses this start level when PS <= {} bits (fixed in QEMU 8.0; \
             the Arm ARM tests the implemented PA size); checked again with PS = 48 bits",
            if cfg.format.granule() == pgwalk::geometry::Granule::Size16KiB {
                40
            } else {
                42
            }
        ));
        results = ask((vtcr & !(0b111 << 16)) | (0b101 << 16));
        tally.boots += 1;
    }
    assert_eq!(results.len(), built.probes.len(), "{cfg}: result count");
    let results = if qemu_cannot_start_here(&cfg) && all_refused(&results) {
        let (per_entry, boots) = ask_per_root_entry(machine, &cfg, &built, &image, vmid);
        tally.notes.push(format!(
            "{cfg}: this QEMU cannot start a walk here (fixed in QEMU 8.0); checked one root \
             entry at a time, {boots} table(s) walked from one level down"
        ));
        tally.boots += boots;
        per_entry
    } else {
        results.into_iter().map(Some).collect()
    };
    tally.probes = built.probes.len();
    compare(&cfg, &built, &results, &mut tally);
    tally
}

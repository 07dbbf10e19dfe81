//! Running one configuration: build, ask QEMU, compare every probe three
//! ways, and tally what was covered.

use pgwalk::host::check_invariants;
use pgwalk_conformance::{Machine, Par, ParPair};

use crate::configs::{hit_by_qemu_ps_start_level_bug, vtcr_for, Config};
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
    pub(crate) ok: [usize; 3],
    pub(crate) translation: [usize; 4],
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
        for i in 0..3 {
            self.ok[i] += o.ok[i];
        }
        for i in 0..4 {
            self.translation[i] += o.translation[i];
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
                    self.translation[level.clamp(0, 3) as usize] += 1;
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

pub(crate) fn compare(cfg: &Config, built: &Built, results: &[ParPair], tally: &mut Tally) {
    let limit = 1u64 << cfg.ia;
    for (&ipa, pair) in built.probes.iter().zip(results) {
        let state = model_at(&built.log, ipa);
        for (write, par) in [(false, pair.read), (true, pair.write)] {
            let got = Outcome::from_par(par);
            let (want, leaf) = expected_from_pgwalk(&built.table, ipa, write);
            let model = model_outcome(state, ipa, write);
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
    assert_eq!(
        vtcr & 0xf_ffff,
        vtcr_for(cfg.ia, cfg.start, cfg.ps) & 0xf_ffff,
        "{cfg}: pgwalk's VTCR_EL2 encoding"
    );
    let vmid = u64::from(cfg.ia) << 2 | cfg.start as u64;
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
            "{cfg}: this QEMU refuses level-0 starts when PS <= 42 bits (fixed in QEMU 8.0; \
             the Arm ARM tests the implemented PA size); checked again with PS = 44 bits"
        ));
        results = ask((vtcr & !(0b111 << 16)) | (0b100 << 16));
        tally.boots += 1;
    }
    assert_eq!(results.len(), built.probes.len(), "{cfg}: result count");
    tally.probes = built.probes.len();
    compare(&cfg, &built, &results, &mut tally);
    tally
}

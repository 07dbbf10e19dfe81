//! pgwalk against a real MMU model: tables built by the library on the host
//! are walked by QEMU's emulated ARMv8 MMU (`AT S12E1R` / `AT S12E1W`), and
//! every answer is compared with what pgwalk itself says about the address.
//!
//! Three oracles meet for every probe:
//!
//! - QEMU, which only sees the table bytes, VTCR_EL2 and VTTBR_EL2;
//! - pgwalk's own reading of its table (`get_leaf`: the leaf, its level and
//!   its bits), turned into an expected PAR_EL1 with the architecture's
//!   rules (HCR_EL2.DC=1 makes stage 1 Normal Write-Back, Non-shareable, and
//!   stage 2 combines with it);
//! - a model of what the operations applied to the table should have left
//!   at that address, written here without looking at descriptor bits.
//!
//! QEMU vs `get_leaf` catches encoding errors (a bit in the wrong place, a
//! wrong walk); `get_leaf` vs the model catches operations that do the wrong
//! thing to a correctly encoded table.
//!
//! Every table format runs: the 4, 16 and 64 KiB granules (64 KiB up to
//! 52-bit addresses with FEAT_LPA), and LPA2 with 4 and 16 KiB, each with
//! every start level the architecture allows and the concatenated roots
//! they need. QEMU's CPU must implement them (the probe checks
//! ID_AA64MMFR0_EL1, and the test says what is missing).
//!
//! The seed is fixed so CI runs are reproducible; set
//! `PGWALK_CONFORMANCE_SEED` (decimal or `0x` hex) to run another one. The
//! seed in use is printed, and every failure message repeats it.

mod check;
mod configs;
mod coverage;
mod expect;
mod features;
mod model;
mod parallel;
mod rng;
mod scenarios;

use std::time::{Duration, Instant};

use pgwalk::geometry::{Geometry, Granule, Level};
use pgwalk_conformance::{Machine, TABLE_WINDOW_PA};

use check::{run_config, Tally};
use configs::{
    architecture_allows, configurations, formats, qemu_cannot_start_here, vtcr_for, Config,
};
use coverage::coverage_gaps;
use expect::{FaultKind, Outcome};
use features::require_features;
use parallel::parallel;
use rng::{rerun_hint, seed, Rng};

/// PAR_EL1 reports output addresses in 4 KiB units, whatever the granule.
const PAR_PAGE: u64 = 4 << 10;
/// Probes stay below 2^52: with stage 1 off, `AT S12E1*` faults at stage 1
/// above the CPU's PA size, which must be 52 bits (checked up front).
const MAX_PROBE_BITS: u32 = 52;

fn machine() -> Machine {
    Machine::new().unwrap_or_else(|e| {
        panic!(
            "the conformance test needs QEMU (Debian package qemu-system-arm) and the aarch64 \
             binutils (binutils-aarch64-linux-gnu); scripts/setup.sh installs both.\n{e}"
        )
    })
}

/// The conformance test proper: every legal configuration of every format,
/// tables after random operation sequences, every probe compared three
/// ways.
#[test]
fn tables_translate_in_qemu_as_pgwalk_says() {
    let seed = seed();
    println!(
        "pgwalk conformance seed: {seed:#x} (rerun with {})",
        rerun_hint(seed)
    );
    let machine = machine();
    require_features(&machine);
    let start = Instant::now();
    let root = Rng::new(seed);
    let mut configs = Vec::new();
    for (n, format) in formats().into_iter().enumerate() {
        configs.extend(configurations(format, &mut root.fork(n as u64)));
    }
    let jobs: Vec<(usize, Config)> = configs.iter().copied().enumerate().collect();
    let tallies = parallel(jobs, |(i, cfg)| {
        run_config(&machine, cfg, root.fork(0x100 + i as u64))
    });

    let mut failures = Vec::new();
    let mut mismatches = Vec::new();
    let mut mismatch_count = 0;
    let mut grand = Tally::default();
    for format in formats() {
        let mut total = Tally::default();
        let mine: Vec<(&Config, &Tally)> = configs
            .iter()
            .zip(&tallies)
            .filter(|(c, _)| c.format == format)
            .collect();
        for &(cfg, t) in &mine {
            println!(
                "  {cfg:<44} root {:>2} page(s): {:>3} ops, {:>4} probes, leaves L1/L2/L3 \
                 {}/{}/{}, {} table pages",
                cfg.geometry().root_pages(),
                t.ops,
                t.probes,
                t.leaves[1],
                t.leaves[2],
                t.leaves[3],
                t.table_pages
            );
            total.add(t);
        }
        println!(
            "{format}: {} configurations, {} QEMU boots, {} operations, {} probes ({} not \
             walkable by this QEMU); ok WB/NC/Device {:?}; translation faults L-1..L3 {:?} (+{} \
             outside the input size); access flag {}; permission R/W {:?}; S2AP none/R/W/RW \
             {:?}",
            mine.len(),
            total.boots,
            total.ops,
            total.probes,
            total.unchecked,
            total.ok,
            total.translation,
            total.out_of_range,
            total.access_flag,
            total.permission,
            total.s2ap_seen
        );
        mismatch_count += total.mismatch_count;
        mismatches.extend(total.mismatches.iter().take(4).cloned());
        let missing = coverage_gaps(format, &total, &mine);
        if !missing.is_empty() {
            failures.push(format!("{format} did not cover: {missing:?}"));
        }
        grand.add(&total);
    }
    let elapsed = start.elapsed();
    println!(
        "{} configurations, {} QEMU boots, {} operations, {} probes ({} AT instructions) in \
         {elapsed:.1?}",
        configs.len(),
        grand.boots,
        grand.ops,
        grand.probes,
        2 * grand.probes
    );
    for note in &grand.notes {
        println!("note: {note}");
    }
    if mismatch_count > 0 {
        panic!(
            "{mismatch_count} mismatch(es) (seed {seed:#x}; rerun with {}):\n{}",
            rerun_hint(seed),
            mismatches.join("\n")
        );
    }
    assert!(
        failures.is_empty(),
        "seed {seed:#x}: {} (rerun with {})",
        failures.join("; "),
        rerun_hint(seed)
    );
    assert!(
        elapsed < Duration::from_secs(600),
        "the conformance run took {elapsed:?}"
    );
}

/// Which VTCR_EL2 start levels are legal: the architecture's rule (written
/// out in `configs.rs`), pgwalk's `Geometry::new` and QEMU must all agree,
/// for every format. pgwalk is asked about every input size from 25 to 52
/// bits at every level from -1 to 3; QEMU about the input sizes at either
/// edge of each level the format's SL0 (and SL2) can encode.
///
/// QEMU's view is read with a table that makes every walk succeed as far as
/// the last level: one page (or sixteen, for concatenated roots) whose
/// every entry is a table descriptor pointing back at the first page. At
/// level 3 that descriptor reads as a page with the access flag clear, so a
/// configuration QEMU accepts answers "access flag fault, level 3"
/// everywhere, and one it refuses answers "translation fault, level 0".
/// Where QEMU 7.2 cannot start a walk that the architecture allows (see
/// `configs::qemu_cannot_start_here`), either answer is accepted and the
/// refusal noted.
#[test]
fn legal_start_levels_agree_with_qemu() {
    let machine = machine();
    require_features(&machine);
    let mut problems = Vec::new();
    let mut jobs = Vec::new();
    for format in formats() {
        let ps = if format.max_oa_bits() == 52 { 52 } else { 48 };
        for start in -1..=3i8 {
            let legal: Vec<u8> = (25..=52)
                .filter(|&ia| architecture_allows(format, ia, start))
                .collect();
            for ia in 25..=format.max_oa_bits() {
                let level = Level::new(start).unwrap();
                let pgwalk = Geometry::new(format, ia, level, ps);
                if pgwalk.is_ok() != legal.contains(&ia) {
                    problems.push(format!(
                        "{format}, IA {ia}, start L{start}: the architecture says legal={}, \
                         pgwalk says {pgwalk:?}",
                        legal.contains(&ia)
                    ));
                }
            }
            // Levels SL0/SL2 cannot encode for this format are not VTCR
            // values at all (and 4 KiB's level 3 needs FEAT_TTST, which
            // pgwalk does not support but QEMU's CPU has).
            let encodable = match (format.granule(), format.lpa2()) {
                (Granule::Size4KiB, lpa2) => (0..=2).contains(&start) || (lpa2 && start == -1),
                _ => start >= 0,
            };
            let (Some(&lo), Some(&hi)) = (legal.first(), legal.last()) else {
                if encodable {
                    // Never legal: QEMU must refuse it at any size.
                    jobs.push((format, 40, start, ps, false));
                }
                continue;
            };
            if !encodable {
                continue;
            }
            for ia in [lo.saturating_sub(1), lo, hi, hi + 1] {
                if (25..=format.max_oa_bits()).contains(&ia) {
                    jobs.push((format, ia, start, ps, legal.contains(&ia)));
                }
            }
        }
    }
    let answers = parallel(jobs, |(format, ia, start, ps, legal)| {
        let cfg = Config {
            format,
            ia,
            start,
            ps,
        };
        let page = format.granule().size() as usize;
        let mut image = vec![0u8; 16 * page];
        for entry in image.chunks_mut(8) {
            entry.copy_from_slice(&(TABLE_WINDOW_PA | 0b11).to_le_bytes());
        }
        let limit = 1u64 << ia;
        let probes = [
            0,
            limit / 3,
            limit / 2 + PAR_PAGE,
            limit - PAR_PAGE,
            limit - 1,
        ];
        let results = machine
            .translate(
                vtcr_for(&cfg),
                TABLE_WINDOW_PA,
                TABLE_WINDOW_PA,
                &image,
                &probes,
            )
            .unwrap_or_else(|e| panic!("QEMU harness failed: {e}"));
        let accepted = Outcome::Fault {
            kind: FaultKind::AccessFlag,
            level: 3,
        };
        let refused = Outcome::Fault {
            kind: FaultKind::Translation,
            level: 0,
        };
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        for (ipa, r) in probes.iter().zip(&results) {
            for par in [r.read, r.write] {
                let got = Outcome::from_par(par);
                let fine = if !legal {
                    got == refused
                } else if qemu_cannot_start_here(&cfg) {
                    got == accepted || got == refused
                } else {
                    got == accepted
                };
                if !fine {
                    problems.push(format!(
                        "{cfg} (legal={legal}): QEMU answered {got} for {ipa:#x}"
                    ));
                } else if legal && got == refused && notes.is_empty() {
                    notes.push(format!("{cfg}: legal, refused by this QEMU (fixed in 8.0)"));
                }
            }
        }
        (problems, notes)
    });
    for (p, notes) in answers {
        problems.extend(p);
        for n in notes {
            println!("note: {n}");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

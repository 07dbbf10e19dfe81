//! What each format's run must have covered, for the comparison not to be
//! vacuous.

use pgwalk::geometry::{Granule, TableFormat};

use crate::check::Tally;
use crate::configs::{architecture_allows, Config};

/// The issue asks for at least as many probes per format as the 4 KiB
/// test made before there were others (about 25,000).
pub(crate) const MIN_PROBES_PER_FORMAT: usize = 20_000;

/// What a format's run should have covered and did not: the generator
/// must really have produced what the issue asks to cover, or the
/// comparison would be vacuous. Counts are of answers QEMU gave.
pub(crate) fn coverage_gaps(
    format: TableFormat,
    t: &Tally,
    configs: &[(&Config, &Tally)],
) -> Vec<String> {
    let four_k = format.granule() == Granule::Size4KiB;
    // The levels QEMU 7.2 walks translation faults at: all of the
    // format's, except 16 KiB's level 0, which it cannot start at.
    let first = match (format.granule(), format.lpa2()) {
        (Granule::Size4KiB, true) => -1,
        (Granule::Size4KiB, false) => 0,
        _ => 1,
    };
    let levels: Vec<i8> = (first..=3).collect();
    let blocks: &[usize] = if four_k { &[1, 2] } else { &[2] };
    let start_levels: Vec<i8> = configs.iter().map(|(c, _)| c.start).collect();
    let mut gaps = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok {
            gaps.push(what);
        }
    };
    need(
        t.probes >= MIN_PROBES_PER_FORMAT,
        format!("{MIN_PROBES_PER_FORMAT} probes"),
    );
    need(t.ok[0] > 0, "Normal WB translations".into());
    need(t.ok[1] > 0, "Normal NC translations".into());
    need(t.ok[2] > 0, "Device translations".into());
    for &l in blocks {
        need(t.leaves[l] > 0, format!("level-{l} blocks"));
    }
    need(t.leaves[3] > 0, "pages".into());
    need(t.annotations > 0, "annotations".into());
    need(t.access_flag > 0, "access flag faults".into());
    need(t.permission[0] > 0, "read permission faults".into());
    need(t.permission[1] > 0, "write permission faults".into());
    need(t.out_of_range > 0, "out-of-range inputs".into());
    need(
        t.s2ap_seen.iter().all(|&n| n > 0),
        "every S2AP value".into(),
    );
    for l in levels {
        need(
            t.translation[(l + 1) as usize] > 0,
            format!("translation faults at level {l}"),
        );
    }
    for l in format.first_level().get()..=3 {
        let legal = (25..=52).any(|ia| architecture_allows(format, ia, l));
        need(
            !legal || start_levels.contains(&l),
            format!("tables starting at level {l}"),
        );
    }
    need(
        [2, 4, 8, 16]
            .iter()
            .all(|n| configs.iter().any(|(c, _)| c.geometry().root_pages() == *n)),
        "concatenated roots of 2, 4, 8 and 16 pages".into(),
    );
    gaps
}

//! The probe program's serial protocol (documented in `el2/probe.S`):
//! parsing its output into PAR_EL1 pairs, and its error reports.

use crate::error::HarnessError;
use crate::{Par, ParPair};

pub(crate) const MARK_START: &str = "PGWALK-PROBE START ";
pub(crate) const MARK_END: &str = "PGWALK-PROBE END";
pub(crate) const MARK_ERROR: &str = "PGWALK-PROBE ERROR ";
pub(crate) const MARK_EXCEPTION: &str = "PGWALK-PROBE EXCEPTION ";
const MARK_MMFR0: &str = "PGWALK-PROBE ID_AA64MMFR0_EL1 ";

/// Lines of serial output kept in error reports.
const TAIL_LINES: usize = 20;

pub(crate) fn tail_of(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    if lines.is_empty() {
        "(no serial output)".to_owned()
    } else {
        lines[start..].join("\n")
    }
}

pub(crate) fn parse_hex16(s: &str) -> Option<u64> {
    if s.len() == 16 {
        u64::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// The ID_AA64MMFR0_EL1 value the probe reports before anything else.
pub(crate) fn parse_mmfr0(serial: &str) -> Option<u64> {
    serial
        .lines()
        .find_map(|l| l.strip_prefix(MARK_MMFR0))
        .and_then(|v| parse_hex16(v.trim_end()))
}

/// Parses the probe's serial protocol (documented in `el2/probe.S`).
pub(crate) fn parse_output(serial: &str, expected: usize) -> Result<Vec<ParPair>, HarnessError> {
    let protocol = |problem: String| HarnessError::Protocol {
        problem,
        tail: tail_of(serial),
    };
    // Guest-side reports win over everything: they explain the rest.
    if let Some(line) = serial
        .lines()
        .find(|l| l.starts_with(MARK_ERROR) || l.starts_with(MARK_EXCEPTION))
    {
        return Err(HarnessError::Guest {
            report: describe_guest_report(line),
            tail: tail_of(serial),
        });
    }

    let mut lines = serial.lines();
    // Firmware or QEMU chatter before the start marker is tolerated.
    let count = loop {
        match lines.next() {
            Some(line) => {
                if let Some(rest) = line.strip_prefix(MARK_START) {
                    break parse_hex16(rest.trim_end())
                        .ok_or_else(|| protocol(format!("malformed start marker {line:?}")))?;
                }
            }
            None => return Err(protocol("no start marker in QEMU output".into())),
        }
    };
    if count != expected as u64 {
        return Err(protocol(format!(
            "probe announced {count} probes, {expected} were sent"
        )));
    }

    let mut out = Vec::with_capacity(expected);
    for i in 0..expected {
        let line = lines.next().ok_or_else(|| {
            protocol(format!(
                "output ended after {i} of {expected} probes (no end marker)"
            ))
        })?;
        let pair = line
            .split_once(' ')
            .and_then(|(r, w)| Some((parse_hex16(r)?, parse_hex16(w.trim_end())?)));
        match pair {
            Some((r, w)) => out.push(ParPair {
                read: Par(r),
                write: Par(w),
            }),
            None => return Err(protocol(format!("malformed result line {i}: {line:?}"))),
        }
    }
    match lines.next() {
        Some(l) if l.trim_end() == MARK_END => Ok(out),
        Some(l) => Err(protocol(format!("expected end marker, found {l:?}"))),
        None => Err(protocol("missing end marker".into())),
    }
}

/// Adds names to the exception report's numbers so the error is readable
/// without the probe source at hand.
pub(crate) fn describe_guest_report(line: &str) -> String {
    let Some(rest) = line.strip_prefix(MARK_EXCEPTION) else {
        return line.to_owned();
    };
    let fields: Vec<Option<u64>> = rest.split_whitespace().map(parse_hex16).collect();
    match fields.as_slice() {
        [Some(vector), Some(esr), Some(elr), Some(far)] => format!(
            "unexpected EL2 exception (vector {vector}, ESR_EL2={esr:#x} EC={:#x}, \
             ELR_EL2={elr:#x}, FAR_EL2={far:#x})",
            (esr >> 26) & 0x3f
        ),
        _ => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_output() {
        let out = "junk\nPGWALK-PROBE START 0000000000000002\n\
                   0000000000000a0b 0000000000000a0b\n\
                   ff00000123456f80 0000000000000a1f\n\
                   PGWALK-PROBE END\n";
        let r = parse_output(out, 2).unwrap();
        assert_eq!(r[0].read, Par(0xa0b));
        assert_eq!(r[1].read.pa(), Some(0x1_2345_6000));
        assert_eq!(r[1].write, Par(0xa1f));
    }

    #[test]
    fn reads_the_cpu_features_line() {
        let out = "PGWALK-PROBE ID_AA64MMFR0_EL1 0000032310201126\n\
                   PGWALK-PROBE START 0000000000000000\nPGWALK-PROBE END\n";
        assert_eq!(parse_mmfr0(out), Some(0x0000_0323_1020_1126));
        assert!(parse_output(out, 0).unwrap().is_empty());
        assert_eq!(parse_mmfr0("PGWALK-PROBE START 0000000000000000\n"), None);
    }

    #[test]
    fn reports_missing_end_with_tail() {
        let out = "PGWALK-PROBE START 0000000000000001\n0000000000000a0b 0000000000000a0b\n";
        match parse_output(out, 1) {
            Err(HarnessError::Protocol { problem, tail }) => {
                assert!(problem.contains("end marker"));
                assert!(tail.contains("0a0b"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reports_guest_exception() {
        let out = "PGWALK-PROBE START 0000000000000001\nPGWALK-PROBE EXCEPTION \
                   0000000000000004 0000000096000010 0000000040200100 0000000000000008\n";
        match parse_output(out, 1) {
            Err(HarnessError::Guest { report, .. }) => assert!(report.contains("EC=0x25")),
            other => panic!("unexpected {other:?}"),
        }
    }
}

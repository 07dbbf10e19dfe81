//! The EL2 stage-1 mode: QEMU's MMU walks a hypervisor's own table.
//!
//! The caller provides MAIR_EL2, TCR_EL2, TTBR0_EL2 and a byte image of the
//! table memory (placed in the table window, as for stage 2). The probe
//! program `el2/hyp_probe.S` loads the three registers and, for each probe
//! address, turns the EL2 MMU on inside its trampoline page, runs
//! `AT S1E2R` and `AT S1E2W`, branches to the address to see whether EL2
//! may execute from it, and turns the MMU off again. The table must map the
//! trampoline page ([`HYP_TRAMPOLINE_PA`], [`HYP_TRAMPOLINE_SIZE`]) to
//! itself, readable and executable; nothing else.
//!
//! The branch ends in an exception (a translation or permission fault, or
//! an external abort when the address is executable and its output has no
//! memory behind it), whose ESR_EL2 is returned as a [`Fetch`]. So that the
//! branch can never run anything, the caller must map no executable page
//! to memory other than the trampoline: outputs in
//! [`HYP_NO_MEMORY_PA`]`..`[`HYP_NO_MEMORY_END`], where QEMU's `virt`
//! machine (with 1 GiB of RAM) has nothing, are safe.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::assemble;
use crate::error::HarnessError;
use crate::protocol::{
    describe_guest_report, parse_hex16, tail_of, MARK_END, MARK_ERROR, MARK_EXCEPTION, MARK_START,
};
use crate::{Machine, Par, TABLE_WINDOW_END, TABLE_WINDOW_PA};

/// Where the probe's trampoline page is (`el2/hyp_link.ld`): the table
/// under test must map it to itself, readable and executable.
pub const HYP_TRAMPOLINE_PA: u64 = 0x4030_0000;
/// Size of the trampoline's page: 64 KiB, the largest granule's page, so
/// that a table of any granule maps it with pages of its own and nothing
/// else lies in it. The probe never branches to an address inside it.
pub const HYP_TRAMPOLINE_SIZE: u64 = 0x10000;
/// First physical address of a window with no memory or device behind it
/// on QEMU's `virt` machine with 1 GiB of RAM: an instruction fetch there
/// is a synchronous external abort.
pub const HYP_NO_MEMORY_PA: u64 = 0x1_0000_0000;
/// End (exclusive) of that window: QEMU's high I/O regions start here.
pub const HYP_NO_MEMORY_END: u64 = 0x40_0000_0000;

/// Header value the probe checks ("PGWALKH1").
const HYP_PARAMS_MAGIC: u64 = u64::from_le_bytes(*b"PGWALKH1");
/// magic, mair, tcr, ttbr0, count.
const HYP_PARAMS_HEADER_BYTES: u64 = 40;

/// What the branch to a probe address did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fetch {
    /// The address lies in the trampoline page; the probe did not branch.
    NotBranched,
    /// The branch came back without an exception (something ran there).
    Returned,
    /// The branch took an exception with this ESR_EL2.
    Exception {
        /// ESR_EL2.
        esr: u64,
    },
}

impl Fetch {
    fn from_raw(raw: u64) -> Fetch {
        match raw {
            u64::MAX => Fetch::NotBranched,
            0 => Fetch::Returned,
            esr => Fetch::Exception { esr },
        }
    }
}

/// The answers for one probe address of an EL2 stage-1 table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HypProbeResult {
    /// PAR_EL1 after `AT S1E2R`.
    pub read: Par,
    /// PAR_EL1 after `AT S1E2W`.
    pub write: Par,
    /// What branching to the address did.
    pub fetch: Fetch,
}

impl Machine {
    /// Translates every address in `probes` through the EL2 stage-1 table
    /// that `mair`, `tcr` and `ttbr0` describe, whose memory is
    /// `table_image` loaded at `table_base_pa` (inside the table window),
    /// with the EL2 MMU on: `AT S1E2R`, `AT S1E2W` and a branch to each
    /// address ([`Fetch`]). The table must map the trampoline page
    /// ([`HYP_TRAMPOLINE_PA`]) to itself, readable and executable, and no
    /// other executable page to memory: outputs in
    /// [`HYP_NO_MEMORY_PA`]`..`[`HYP_NO_MEMORY_END`] are safe.
    pub fn translate_el2(
        &self,
        mair: u64,
        tcr: u64,
        ttbr0: u64,
        table_base_pa: u64,
        table_image: &[u8],
        probes: &[u64],
    ) -> Result<Vec<HypProbeResult>, HarnessError> {
        let image_end = table_base_pa
            .checked_add(table_image.len() as u64)
            .ok_or_else(|| HarnessError::InvalidInput("table image end overflows".into()))?;
        if table_base_pa < TABLE_WINDOW_PA || image_end > TABLE_WINDOW_END || table_image.is_empty()
        {
            return Err(HarnessError::InvalidInput(format!(
                "table image {table_base_pa:#x}..{image_end:#x} is empty or outside the table \
                 window {TABLE_WINDOW_PA:#x}..{TABLE_WINDOW_END:#x}"
            )));
        }
        let elf = hyp_probe_elf()?;
        let mut results = Vec::with_capacity(probes.len());
        let mut chunks = probes.chunks(self.max_probes_per_boot()).peekable();
        if chunks.peek().is_none() {
            self.boot_el2(&elf, [mair, tcr, ttbr0], table_base_pa, table_image, &[])?;
        }
        for chunk in chunks {
            results.extend(self.boot_el2(
                &elf,
                [mair, tcr, ttbr0],
                table_base_pa,
                table_image,
                chunk,
            )?);
        }
        Ok(results)
    }

    fn boot_el2(
        &self,
        elf: &Path,
        regs: [u64; 3],
        table_base_pa: u64,
        table_image: &[u8],
        probes: &[u64],
    ) -> Result<Vec<HypProbeResult>, HarnessError> {
        let mut params = Vec::with_capacity(HYP_PARAMS_HEADER_BYTES as usize + probes.len() * 8);
        let header = [
            HYP_PARAMS_MAGIC,
            regs[0],
            regs[1],
            regs[2],
            probes.len() as u64,
        ];
        for word in header.iter().chain(probes) {
            params.extend_from_slice(&word.to_le_bytes());
        }
        let serial = self.run_program(elf, &params, table_base_pa, table_image)?;
        parse_el2_output(&serial, probes.len())
    }
}

/// Parses the EL2 stage-1 probe's serial protocol (`el2/hyp_probe.S`).
fn parse_el2_output(serial: &str, expected: usize) -> Result<Vec<HypProbeResult>, HarnessError> {
    let protocol = |problem: String| HarnessError::Protocol {
        problem,
        tail: tail_of(serial),
    };
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
        let fields: Vec<Option<u64>> = line.split_whitespace().map(parse_hex16).collect();
        match fields.as_slice() {
            [Some(r), Some(w), Some(f)] => out.push(HypProbeResult {
                read: Par(*r),
                write: Par(*w),
                fetch: Fetch::from_raw(*f),
            }),
            _ => return Err(protocol(format!("malformed result line {i}: {line:?}"))),
        }
    }
    match lines.next() {
        Some(l) if l.trim_end() == MARK_END => Ok(out),
        Some(l) => Err(protocol(format!("expected end marker, found {l:?}"))),
        None => Err(protocol("missing end marker".into())),
    }
}

/// The EL2 stage-1 probe ELF: built by `build.rs` when possible, otherwise
/// assembled here once per process.
fn hyp_probe_elf() -> Result<PathBuf, HarnessError> {
    static PROBE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let out_dir = Path::new(env!("OUT_DIR"));
            let prebuilt = out_dir.join(assemble::HYP_PROBE_ELF_NAME);
            if prebuilt.is_file() {
                return Ok(prebuilt);
            }
            let el2_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("el2");
            match assemble::build_hyp_probe(&el2_dir, out_dir) {
                Ok(elf) => Ok(elf),
                Err(assemble::AssembleError::Io { .. }) => {
                    let fallback = std::env::temp_dir().join(format!(
                        "pgwalk-conformance-hyp-probe-{}",
                        std::process::id()
                    ));
                    assemble::build_hyp_probe(&el2_dir, &fallback).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            }
        })
        .clone()
        .map_err(HarnessError::Assembler)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_columns() {
        let out = "PGWALK-PROBE START 0000000000000002\n\
                   0000000000000809 0000000000000809 0000000086000004\n\
                   ff00000123456f80 000000000000081b ffffffffffffffff\n\
                   PGWALK-PROBE END\n";
        let r = parse_el2_output(out, 2).unwrap();
        assert_eq!(r[0].fetch, Fetch::Exception { esr: 0x8600_0004 });
        assert_eq!(r[1].read.pa(), Some(0x1_2345_6000));
        assert_eq!(r[1].fetch, Fetch::NotBranched);
        assert!(parse_el2_output("PGWALK-PROBE START 0000000000000001\n0 0\n", 1).is_err());
    }

    #[test]
    fn the_trampoline_is_where_the_link_script_puts_it() {
        let ld = include_str!("../el2/hyp_link.ld");
        assert!(ld.contains(&format!("{HYP_TRAMPOLINE_PA:#x}")));
    }
}

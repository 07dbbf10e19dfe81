//! Conformance harness: translate addresses through caller-supplied stage-2
//! tables with QEMU's emulated ARMv8 MMU.
//!
//! The caller provides VTCR_EL2, VTTBR_EL2 and a byte image of the table
//! memory placed at a physical address inside [`TABLE_WINDOW_PA`]`..`
//! [`TABLE_WINDOW_END`]. A tiny bare-metal program (`el2/probe.S`) boots at
//! EL2 in `qemu-system-aarch64 -M virt,virtualization=on`, programs stage 2
//! with those values (stage 1 off, `HCR_EL2.DC` set), runs `AT S12E1R` and
//! `AT S12E1W` for every probe address and prints both PAR_EL1 values, which
//! are returned as [`ParPair`]s.
//!
//! [`Machine::translate_el2`] does the same for a hypervisor's own EL2
//! stage-1 table (`el2/hyp_probe.S`: `AT S1E2R`, `AT S1E2W` and a branch to
//! each address, with the EL2 MMU on; see [`Fetch`]).
//!
//! The crate deliberately knows nothing about the pgwalk library: the
//! interface is plain bytes, so the emulated MMU is an independent oracle.
//!
//! Needs `qemu-system-aarch64` (Debian: `qemu-system-arm`) and the aarch64
//! binutils (Debian: `binutils-aarch64-linux-gnu`); `scripts/setup.sh`
//! installs both. `PGWALK_QEMU` overrides the QEMU binary and
//! `PGWALK_CROSS_PREFIX` the binutils prefix.

#![warn(missing_docs)]

mod assemble;
mod hyp;
mod par;

pub use hyp::{
    Fetch, HypProbeResult, HYP_NO_MEMORY_END, HYP_NO_MEMORY_PA, HYP_TRAMPOLINE_PA,
    HYP_TRAMPOLINE_SIZE,
};
pub use par::Par;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Guest physical address of the parameter block (header + probes).
pub const PARAMS_PA: u64 = 0x4400_0000;
/// First guest physical address available for stage-2 table memory.
pub const TABLE_WINDOW_PA: u64 = 0x4800_0000;
/// Size of the table window (64 MiB).
pub const TABLE_WINDOW_SIZE: u64 = 64 << 20;
/// End (exclusive) of the table window.
pub const TABLE_WINDOW_END: u64 = TABLE_WINDOW_PA + TABLE_WINDOW_SIZE;

/// Header value the probe checks before trusting the block ("PGWALKP1").
const PARAMS_MAGIC: u64 = u64::from_le_bytes(*b"PGWALKP1");
/// magic, vtcr, vttbr, count.
const PARAMS_HEADER_BYTES: u64 = 32;
/// How many probes fit between [`PARAMS_PA`] and the table window; the probe
/// program enforces the same bound.
pub const MAX_PROBES_PER_BOOT_LIMIT: usize =
    ((TABLE_WINDOW_PA - PARAMS_PA - PARAMS_HEADER_BYTES) / 8) as usize;

/// Default probes per QEMU boot. One probe costs ~55 µs (dominated by the
/// character-at-a-time UART output), so this keeps a boot near 10 s, far
/// from the timeout.
pub const DEFAULT_MAX_PROBES_PER_BOOT: usize = 200_000;
/// Default limit on one QEMU boot before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variable naming the QEMU binary to run.
pub const QEMU_ENV: &str = "PGWALK_QEMU";
const DEFAULT_QEMU: &str = "qemu-system-aarch64";

const MARK_START: &str = "PGWALK-PROBE START ";
const MARK_END: &str = "PGWALK-PROBE END";
const MARK_ERROR: &str = "PGWALK-PROBE ERROR ";
const MARK_EXCEPTION: &str = "PGWALK-PROBE EXCEPTION ";

/// Lines of serial output kept in error reports.
const TAIL_LINES: usize = 20;

/// The two PAR_EL1 values for one probe address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParPair {
    /// PAR_EL1 after `AT S12E1R` (stage 1+2 read, EL1).
    pub read: Par,
    /// PAR_EL1 after `AT S12E1W` (stage 1+2 write, EL1).
    pub write: Par,
}

/// Everything that can go wrong while asking QEMU.
#[derive(Debug)]
pub enum HarnessError {
    /// `qemu-system-aarch64` could not be started.
    QemuMissing {
        /// The program that was run.
        program: String,
        /// Why starting it failed.
        source: io::Error,
    },
    /// The aarch64 assembler or linker is missing or rejected the probe.
    Assembler(String),
    /// The caller's arguments cannot be served (e.g. tables outside the
    /// window).
    InvalidInput(String),
    /// Temporary files could not be written or read.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// QEMU ran longer than the timeout and was killed.
    Timeout {
        /// The limit that was exceeded.
        after: Duration,
        /// Last lines of serial output.
        tail: String,
    },
    /// QEMU exited unsuccessfully (bad command line, crash, ...).
    QemuFailed {
        /// Its exit status.
        status: ExitStatus,
        /// Its diagnostics.
        stderr: String,
        /// Last lines of serial output.
        tail: String,
    },
    /// The probe program reported an error or took an unexpected exception.
    Guest {
        /// The probe's report line.
        report: String,
        /// Last lines of serial output.
        tail: String,
    },
    /// QEMU exited without the probe's end marker (or its output was
    /// malformed).
    Protocol {
        /// What was wrong.
        problem: String,
        /// Last lines of serial output.
        tail: String,
    },
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::QemuMissing { program, source } => write!(
                f,
                "cannot run `{program}` ({source}): install qemu-system-arm (Debian) / run \
                 scripts/setup.sh, or point {QEMU_ENV} at a qemu-system-aarch64 binary"
            ),
            HarnessError::Assembler(msg) => write!(f, "building the EL2 probe: {msg}"),
            HarnessError::InvalidInput(msg) => write!(f, "invalid harness input: {msg}"),
            HarnessError::Io { context, source } => write!(f, "{context}: {source}"),
            HarnessError::Timeout { after, tail } => write!(
                f,
                "QEMU did not finish within {after:?} and was killed; serial output tail:\n{tail}"
            ),
            HarnessError::QemuFailed {
                status,
                stderr,
                tail,
            } => write!(
                f,
                "QEMU failed ({status}):\n{stderr}\nserial output tail:\n{tail}"
            ),
            HarnessError::Guest { report, tail } => write!(
                f,
                "EL2 probe reported a failure: {report}\nserial output tail:\n{tail}"
            ),
            HarnessError::Protocol { problem, tail } => {
                write!(f, "{problem}; serial output tail:\n{tail}")
            }
        }
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HarnessError::QemuMissing { source, .. } | HarnessError::Io { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
    let context = context.into();
    move |source| HarnessError::Io { context, source }
}

/// A configured QEMU + probe program, ready to translate.
#[derive(Clone, Debug)]
pub struct Machine {
    qemu: String,
    probe_elf: PathBuf,
    timeout: Duration,
    max_probes_per_boot: usize,
}

impl Machine {
    /// Locates QEMU and the probe program (assembling it if the build script
    /// could not).
    ///
    /// Fails early with an installation hint when either tool is missing.
    pub fn new() -> Result<Machine, HarnessError> {
        let qemu = std::env::var(QEMU_ENV).unwrap_or_else(|_| DEFAULT_QEMU.to_owned());
        let probe_elf = probe_elf()?;
        check_qemu(&qemu)?;
        Ok(Machine {
            qemu,
            probe_elf,
            timeout: DEFAULT_TIMEOUT,
            max_probes_per_boot: DEFAULT_MAX_PROBES_PER_BOOT,
        })
    }

    /// Sets the wall-clock limit for one QEMU boot.
    pub fn with_timeout(mut self, timeout: Duration) -> Machine {
        self.timeout = timeout;
        self
    }

    /// Sets how many probes one boot handles; larger batches are split over
    /// several boots. Clamped to `1..=MAX_PROBES_PER_BOOT_LIMIT`.
    pub fn with_max_probes_per_boot(mut self, max: usize) -> Machine {
        self.max_probes_per_boot = max.clamp(1, MAX_PROBES_PER_BOOT_LIMIT);
        self
    }

    /// Path of the linked EL2 probe program.
    pub fn probe_elf(&self) -> &Path {
        &self.probe_elf
    }

    /// Translates every address in `probes` through the stage-2 tables
    /// described by `vtcr`/`vttbr`, whose memory is `table_image` loaded at
    /// guest physical address `table_base_pa`.
    ///
    /// Table descriptors (and VTTBR_EL2.BADDR) must therefore hold addresses
    /// inside `table_base_pa..table_base_pa + table_image.len()`, which must
    /// lie in the table window. Leaf output addresses are unconstrained:
    /// `AT` never touches the output page. The result has one [`ParPair`]
    /// per probe, in order.
    pub fn translate(
        &self,
        vtcr: u64,
        vttbr: u64,
        table_base_pa: u64,
        table_image: &[u8],
        probes: &[u64],
    ) -> Result<Vec<ParPair>, HarnessError> {
        let image_end = table_base_pa
            .checked_add(table_image.len() as u64)
            .ok_or_else(|| HarnessError::InvalidInput("table image end overflows".into()))?;
        if table_base_pa < TABLE_WINDOW_PA || image_end > TABLE_WINDOW_END {
            return Err(HarnessError::InvalidInput(format!(
                "table image {table_base_pa:#x}..{image_end:#x} is outside the table window \
                 {TABLE_WINDOW_PA:#x}..{TABLE_WINDOW_END:#x}"
            )));
        }

        let mut results = Vec::with_capacity(probes.len());
        // Even zero probes boot once: the caller may rely on errors such as
        // a bad setup surfacing.
        let mut chunks = probes.chunks(self.max_probes_per_boot).peekable();
        if chunks.peek().is_none() {
            self.boot(vtcr, vttbr, table_base_pa, table_image, &[])?;
        }
        for chunk in chunks {
            results.extend(self.boot(vtcr, vttbr, table_base_pa, table_image, chunk)?);
        }
        Ok(results)
    }

    fn boot(
        &self,
        vtcr: u64,
        vttbr: u64,
        table_base_pa: u64,
        table_image: &[u8],
        probes: &[u64],
    ) -> Result<Vec<ParPair>, HarnessError> {
        let dir = ScratchDir::new()?;
        let params_path = dir.path.join("params.bin");
        let tables_path = dir.path.join("tables.bin");
        let serial_path = dir.path.join("serial.txt");
        let stderr_path = dir.path.join("qemu-stderr.txt");

        let mut params = Vec::with_capacity(32 + probes.len() * 8);
        for word in [PARAMS_MAGIC, vtcr, vttbr, probes.len() as u64]
            .iter()
            .chain(probes)
        {
            params.extend_from_slice(&word.to_le_bytes());
        }
        fs::write(&params_path, &params).map_err(io_err("writing the parameter block"))?;

        let mut cmd = Command::new(&self.qemu);
        cmd.args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            "max",
            "-m",
            "1G",
            "-nodefaults",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ]);
        // Serial output goes to a file rather than a pipe so QEMU can never
        // block on a reader and the tail survives a kill.
        cmd.arg("-chardev").arg(format!(
            "file,id=pgwalk_serial,path={}",
            qemu_opt_escape(&serial_path)
        ));
        cmd.args(["-serial", "chardev:pgwalk_serial"]);
        cmd.arg("-kernel").arg(&self.probe_elf);
        cmd.arg("-device").arg(format!(
            "loader,file={},addr={PARAMS_PA:#x},force-raw=on",
            qemu_opt_escape(&params_path)
        ));
        // QEMU's loader rejects empty files, and an empty image has nothing
        // to load anyway.
        if !table_image.is_empty() {
            fs::write(&tables_path, table_image).map_err(io_err("writing the table image"))?;
            cmd.arg("-device").arg(format!(
                "loader,file={},addr={table_base_pa:#x},force-raw=on",
                qemu_opt_escape(&tables_path)
            ));
        }
        let stderr_file = fs::File::create(&stderr_path).map_err(io_err("creating stderr file"))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr_file);

        let child = cmd.spawn().map_err(|source| HarnessError::QemuMissing {
            program: self.qemu.clone(),
            source,
        })?;
        let mut child = KillOnDrop(child);
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = child.0.try_wait().map_err(io_err("waiting for QEMU"))? {
                break status;
            }
            if Instant::now() >= deadline {
                drop(child);
                return Err(HarnessError::Timeout {
                    after: self.timeout,
                    tail: tail_of(&read_lossy(&serial_path)),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        };

        let serial = read_lossy(&serial_path);
        if !status.success() {
            return Err(HarnessError::QemuFailed {
                status,
                stderr: read_lossy(&stderr_path),
                tail: tail_of(&serial),
            });
        }
        parse_output(&serial, probes.len())
    }
}

/// Translates `probes` with a default [`Machine`]; see
/// [`Machine::translate`].
pub fn translate(
    vtcr: u64,
    vttbr: u64,
    table_base_pa: u64,
    table_image: &[u8],
    probes: &[u64],
) -> Result<Vec<ParPair>, HarnessError> {
    Machine::new()?.translate(vtcr, vttbr, table_base_pa, table_image, probes)
}

/// Kills QEMU if the harness gives up on it (timeout, error, panic), so no
/// emulator outlives its caller.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Per-boot directory for QEMU's input and output files, removed on drop.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn new() -> Result<ScratchDir, HarnessError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pgwalk-conformance-{}-{n}", std::process::id()));
        // A leftover from a crashed process with a recycled pid is stale.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).map_err(io_err(format!("creating {}", path.display())))?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// QEMU option values end at a comma unless it is doubled.
fn qemu_opt_escape(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn tail_of(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    if lines.is_empty() {
        "(no serial output)".to_owned()
    } else {
        lines[start..].join("\n")
    }
}

fn parse_hex16(s: &str) -> Option<u64> {
    if s.len() == 16 {
        u64::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// Parses the probe's serial protocol (documented in `el2/probe.S`).
fn parse_output(serial: &str, expected: usize) -> Result<Vec<ParPair>, HarnessError> {
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
fn describe_guest_report(line: &str) -> String {
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

/// Runs QEMU once with `-version` so a missing binary is reported before
/// any work is done.
fn check_qemu(qemu: &str) -> Result<(), HarnessError> {
    let missing = |source| HarnessError::QemuMissing {
        program: qemu.to_owned(),
        source,
    };
    let status = Command::new(qemu)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(missing)?;
    if status.success() {
        Ok(())
    } else {
        Err(missing(io::Error::other(format!(
            "`{qemu} -version` exited with {status}"
        ))))
    }
}

/// The probe ELF: built by `build.rs` when possible, otherwise assembled
/// here once per process.
fn probe_elf() -> Result<PathBuf, HarnessError> {
    static PROBE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let out_dir = Path::new(env!("OUT_DIR"));
            let prebuilt = out_dir.join(assemble::PROBE_ELF_NAME);
            if prebuilt.is_file() {
                return Ok(prebuilt);
            }
            let el2_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("el2");
            match assemble::build_probe(&el2_dir, out_dir) {
                Ok(elf) => Ok(elf),
                // OUT_DIR may be read-only (e.g. a copied test binary); the
                // tools' verdict is what matters, so retry somewhere writable.
                Err(assemble::AssembleError::Io { .. }) => {
                    let fallback = std::env::temp_dir()
                        .join(format!("pgwalk-conformance-probe-{}", std::process::id()));
                    assemble::build_probe(&el2_dir, &fallback).map_err(|e| e.to_string())
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

    #[test]
    fn escapes_commas() {
        assert_eq!(qemu_opt_escape(Path::new("/a,b/c")), "/a,,b/c");
    }
}

//! One QEMU boot per batch of probes: the command line, the files it reads
//! and writes, the timeout, and the probe program it runs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::assemble;
use crate::error::{io_err, HarnessError};
use crate::protocol::{parse_mmfr0, parse_output, tail_of};
use crate::{
    ParPair, DEFAULT_MAX_PROBES_PER_BOOT, DEFAULT_TIMEOUT, MAX_PROBES_PER_BOOT_LIMIT, PARAMS_MAGIC,
    PARAMS_PA, QEMU_ENV, TABLE_WINDOW_END, TABLE_WINDOW_PA,
};

const DEFAULT_QEMU: &str = "qemu-system-aarch64";

/// A configured QEMU + probe program, ready to translate.
#[derive(Clone, Debug)]
pub struct Machine {
    qemu: String,
    probe_elf: PathBuf,
    timeout: Duration,
    max_probes_per_boot: usize,
    cpu: String,
    /// ID_AA64MMFR0_EL1 of the emulated CPU, once asked for.
    mmfr0: Arc<OnceLock<u64>>,
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
            cpu: "max".to_owned(),
            mmfr0: Arc::new(OnceLock::new()),
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

    /// Sets the CPU model QEMU emulates (`-cpu`; `max` unless told): one
    /// without a feature a VTCR_EL2 needs shows how the probe refuses it.
    pub fn with_cpu(mut self, cpu: &str) -> Machine {
        self.cpu = cpu.to_owned();
        self.mmfr0 = Arc::new(OnceLock::new());
        self
    }

    /// Path of the linked EL2 probe program.
    pub fn probe_elf(&self) -> &Path {
        &self.probe_elf
    }

    /// How many probes one boot handles.
    pub(crate) fn max_probes_per_boot(&self) -> usize {
        self.max_probes_per_boot
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

    /// ID_AA64MMFR0_EL1 of QEMU's CPU as the probe reads it at EL2: the
    /// granules stage 2 implements (TGran4_2, TGran16_2, TGran64_2, and
    /// the stage-1 fields they may defer to), and PARange. One boot, the
    /// first time; [`translate`](Self::translate) itself refuses, with a
    /// [`HarnessError::Guest`] naming the feature, a VTCR_EL2 that needs
    /// what the CPU lacks.
    pub fn id_aa64mmfr0(&self) -> Result<u64, HarnessError> {
        if let Some(&v) = self.mmfr0.get() {
            return Ok(v);
        }
        // 4 KiB, 32-bit IPA from level 1: what every ARMv8 CPU walks.
        let vtcr = 1 << 31 | 32 | 1 << 6;
        let serial = self.run(vtcr, TABLE_WINDOW_PA, TABLE_WINDOW_PA, &[], &[])?;
        parse_output(&serial, 0)?;
        let v = parse_mmfr0(&serial).ok_or_else(|| HarnessError::Protocol {
            problem: "the probe reported no ID_AA64MMFR0_EL1".into(),
            tail: tail_of(&serial),
        })?;
        Ok(*self.mmfr0.get_or_init(|| v))
    }

    fn boot(
        &self,
        vtcr: u64,
        vttbr: u64,
        table_base_pa: u64,
        table_image: &[u8],
        probes: &[u64],
    ) -> Result<Vec<ParPair>, HarnessError> {
        let serial = self.run(vtcr, vttbr, table_base_pa, table_image, probes)?;
        parse_output(&serial, probes.len())
    }

    /// One boot of the stage-2 probe; its serial output once it exited
    /// successfully.
    fn run(
        &self,
        vtcr: u64,
        vttbr: u64,
        table_base_pa: u64,
        table_image: &[u8],
        probes: &[u64],
    ) -> Result<String, HarnessError> {
        let mut params = Vec::with_capacity(32 + probes.len() * 8);
        for word in [PARAMS_MAGIC, vtcr, vttbr, probes.len() as u64]
            .iter()
            .chain(probes)
        {
            params.extend_from_slice(&word.to_le_bytes());
        }
        self.run_program(&self.probe_elf, &params, table_base_pa, table_image)
    }

    /// One QEMU boot of the probe program `elf` (the stage-2 probe or the
    /// EL2 stage-1 one) with the parameter block `params` and the table
    /// image; its serial output once QEMU exited successfully.
    pub(crate) fn run_program(
        &self,
        elf: &Path,
        params: &[u8],
        table_base_pa: u64,
        table_image: &[u8],
    ) -> Result<String, HarnessError> {
        let dir = ScratchDir::new()?;
        let params_path = dir.path.join("params.bin");
        let tables_path = dir.path.join("tables.bin");
        let serial_path = dir.path.join("serial.txt");
        let stderr_path = dir.path.join("qemu-stderr.txt");
        fs::write(&params_path, params).map_err(io_err("writing the parameter block"))?;

        let mut cmd = Command::new(&self.qemu);
        cmd.args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            &self.cpu,
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
        cmd.arg("-kernel").arg(elf);
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
        Ok(serial)
    }
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
    fn escapes_commas() {
        assert_eq!(qemu_opt_escape(Path::new("/a,b/c")), "/a,,b/c");
    }
}

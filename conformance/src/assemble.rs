//! Assembles and links the EL2 probe program.
//!
//! Shared between `build.rs` (which tries to build the probe ahead of time)
//! and the library (which builds it on first use when the build script could
//! not, e.g. because the cross binutils were installed after the build).

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Environment variable overriding the cross-binutils prefix.
pub const CROSS_PREFIX_ENV: &str = "PGWALK_CROSS_PREFIX";

/// Debian's binutils-aarch64-linux-gnu prefix.
pub const DEFAULT_CROSS_PREFIX: &str = "aarch64-linux-gnu-";

/// File name of the linked probe inside its output directory.
pub const PROBE_ELF_NAME: &str = "pgwalk-el2-probe.elf";

/// File name of the linked EL2 stage-1 probe (`el2/hyp_probe.S`).
pub const HYP_PROBE_ELF_NAME: &str = "pgwalk-el2-hyp-probe.elf";

/// Why the probe could not be built.
#[derive(Debug)]
pub enum AssembleError {
    /// The assembler or linker could not be started.
    ToolMissing {
        /// The program that was run.
        tool: String,
        /// Why starting it failed.
        source: io::Error,
    },
    /// The assembler or linker ran and reported an error.
    ToolFailed {
        /// The program that was run.
        tool: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its diagnostics.
        stderr: String,
    },
    /// Reading sources or writing outputs failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for AssembleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssembleError::ToolMissing { tool, source } => write!(
                f,
                "cannot run `{tool}` ({source}); install binutils-aarch64-linux-gnu (Debian) \
                 or run scripts/setup.sh, or set {CROSS_PREFIX_ENV} to another aarch64 \
                 binutils prefix"
            ),
            AssembleError::ToolFailed {
                tool,
                status,
                stderr,
            } => write!(f, "`{tool}` failed ({status}):\n{stderr}"),
            AssembleError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for AssembleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AssembleError::ToolMissing { source, .. } | AssembleError::Io { source, .. } => {
                Some(source)
            }
            AssembleError::ToolFailed { .. } => None,
        }
    }
}

/// The binutils prefix to use: `$PGWALK_CROSS_PREFIX` or the Debian default.
pub fn cross_prefix() -> String {
    std::env::var(CROSS_PREFIX_ENV).unwrap_or_else(|_| DEFAULT_CROSS_PREFIX.to_owned())
}

fn run(tool: &str, args: &[OsString]) -> Result<(), AssembleError> {
    let output =
        Command::new(tool)
            .args(args)
            .output()
            .map_err(|source| AssembleError::ToolMissing {
                tool: tool.to_owned(),
                source,
            })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(AssembleError::ToolFailed {
            tool: tool.to_owned(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Builds `el2/probe.S` + `el2/link.ld` from `el2_dir` into
/// `out_dir/PROBE_ELF_NAME` and returns that path.
///
/// Intermediate and final files are written under names unique to this
/// process and the ELF is renamed into place, so concurrent builders (test
/// binaries running in parallel) never observe a half-written file.
pub fn build_probe(el2_dir: &Path, out_dir: &Path) -> Result<PathBuf, AssembleError> {
    let prefix = cross_prefix();
    let asm = format!("{prefix}as");
    let ld = format!("{prefix}ld");

    fs::create_dir_all(out_dir).map_err(|source| AssembleError::Io {
        context: format!("creating {}", out_dir.display()),
        source,
    })?;
    let unique = format!("{}-{}", std::process::id(), unique_suffix());
    let obj = out_dir.join(format!("probe-{unique}.o"));
    let tmp_elf = out_dir.join(format!("probe-{unique}.elf"));
    let elf = out_dir.join(PROBE_ELF_NAME);

    let result = (|| {
        run(
            &asm,
            &[
                "-o".into(),
                obj.clone().into_os_string(),
                el2_dir.join("probe.S").into_os_string(),
            ],
        )?;
        run(
            &ld,
            &[
                "-T".into(),
                el2_dir.join("link.ld").into_os_string(),
                "-o".into(),
                tmp_elf.clone().into_os_string(),
                obj.clone().into_os_string(),
            ],
        )?;
        fs::rename(&tmp_elf, &elf).map_err(|source| AssembleError::Io {
            context: format!("renaming {} to {}", tmp_elf.display(), elf.display()),
            source,
        })
    })();
    let _ = fs::remove_file(&obj);
    let _ = fs::remove_file(&tmp_elf);
    result.map(|()| elf)
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Builds `el2/hyp_probe.S` + `el2/hyp_link.ld` from `el2_dir` into
/// `out_dir/HYP_PROBE_ELF_NAME` and returns that path, as [`build_probe`]
/// does for the stage-2 probe (unique intermediate names, renamed into
/// place).
pub fn build_hyp_probe(el2_dir: &Path, out_dir: &Path) -> Result<PathBuf, AssembleError> {
    let prefix = cross_prefix();
    let asm = format!("{prefix}as");
    let ld = format!("{prefix}ld");

    fs::create_dir_all(out_dir).map_err(|source| AssembleError::Io {
        context: format!("creating {}", out_dir.display()),
        source,
    })?;
    let unique = format!("{}-{}", std::process::id(), unique_suffix());
    let obj = out_dir.join(format!("hyp-probe-{unique}.o"));
    let tmp_elf = out_dir.join(format!("hyp-probe-{unique}.elf"));
    let elf = out_dir.join(HYP_PROBE_ELF_NAME);

    let result = (|| {
        run(
            &asm,
            &[
                "-o".into(),
                obj.clone().into_os_string(),
                el2_dir.join("hyp_probe.S").into_os_string(),
            ],
        )?;
        run(
            &ld,
            &[
                "-T".into(),
                el2_dir.join("hyp_link.ld").into_os_string(),
                "--no-warn-rwx-segments".into(),
                "-o".into(),
                tmp_elf.clone().into_os_string(),
                obj.clone().into_os_string(),
            ],
        )?;
        fs::rename(&tmp_elf, &elf).map_err(|source| AssembleError::Io {
            context: format!("renaming {} to {}", tmp_elf.display(), elf.display()),
            source,
        })
    })();
    let _ = fs::remove_file(&obj);
    let _ = fs::remove_file(&tmp_elf);
    result.map(|()| elf)
}

//! What can go wrong while asking QEMU.

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use crate::QEMU_ENV;

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

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
    let context = context.into();
    move |source| HarnessError::Io { context, source }
}

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
mod error;
mod hyp;
mod machine;
mod par;
mod protocol;

pub use error::HarnessError;
pub use hyp::{
    Fetch, HypProbeResult, HYP_NO_MEMORY_END, HYP_NO_MEMORY_PA, HYP_TRAMPOLINE_PA,
    HYP_TRAMPOLINE_SIZE,
};
pub use machine::Machine;
pub use par::Par;

use std::time::Duration;

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

/// The two PAR_EL1 values for one probe address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParPair {
    /// PAR_EL1 after `AT S12E1R` (stage 1+2 read, EL1).
    pub read: Par,
    /// PAR_EL1 after `AT S12E1W` (stage 1+2 write, EL1).
    pub write: Par,
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

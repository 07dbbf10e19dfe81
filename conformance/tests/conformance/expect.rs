//! Expected PAR_EL1 values: what the architecture says `AT S12E1R/W`
//! returns for a leaf as pgwalk reads it.

use std::fmt;

use pgwalk::descriptor::Descriptor;
use pgwalk::geometry::Level;
use pgwalk::host::HeapMemory;
use pgwalk::{Error, Ipa, Stage2};
use pgwalk_conformance::Par;

use crate::PAR_PAGE;

/// Fault classes PAR_EL1.FST distinguishes for a stage-2 walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FaultKind {
    Translation,
    AccessFlag,
    Permission,
    AddressSize,
}

/// One `AT` answer, decoded into what the test compares. PAR bit 11 and NS
/// are IMPLEMENTATION DEFINED / RES1 details and are not compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Translation succeeded: page address, MAIR-style attributes, SH.
    Ok { pa: u64, attr: u8, sh: u8 },
    /// A stage-2 fault (S=1, PTW=0) of `kind` at `level`.
    Fault { kind: FaultKind, level: i8 },
    /// Anything else (a stage-1 fault, PTW set, an unknown FST): always a
    /// mismatch, kept raw for the report.
    Other(u64),
}

impl Outcome {
    pub(crate) fn from_par(par: Par) -> Outcome {
        if !par.fault() {
            return Outcome::Ok {
                pa: par.pa().unwrap_or_default(),
                attr: par.attr().unwrap_or_default(),
                sh: par.sh().unwrap_or_default(),
            };
        }
        if par.stage2() != Some(true) || par.ptw() != Some(false) {
            return Outcome::Other(par.raw());
        }
        let classified = [
            (par.is_translation_fault(), FaultKind::Translation),
            (par.is_access_flag_fault(), FaultKind::AccessFlag),
            (par.is_permission_fault(), FaultKind::Permission),
            (par.is_address_size_fault(), FaultKind::AddressSize),
        ];
        for (level, kind) in classified {
            if let Some(level) = level {
                return Outcome::Fault { kind, level };
            }
        }
        Outcome::Other(par.raw())
    }

    /// Equality that ignores fault levels, for the model (which knows what
    /// is mapped, not how the table is shaped).
    pub(crate) fn same_ignoring_level(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Fault { kind: a, .. }, Outcome::Fault { kind: b, .. }) => a == b,
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok { pa, attr, sh } => {
                write!(f, "ok pa={pa:#x} attr={attr:#04x} sh={sh:#04b}")
            }
            Outcome::Fault { kind, level } if *level == ANY_LEVEL => {
                write!(f, "{kind:?} fault (any level)")
            }
            Outcome::Fault { kind, level } => write!(f, "{kind:?} fault L{level}"),
            Outcome::Other(raw) => write!(f, "unexpected PAR {:?}", Par(*raw)),
        }
    }
}

/// PAR_EL1.ATTR for stage-2 MemAttr\[3:0\] combined with what HCR_EL2.DC=1
/// makes stage 1: Normal, Inner and Outer Write-Back, Read- and
/// Write-Allocate, Non-transient. Without FEAT_S2FWB (HCR_EL2.FWB is 0) the
/// combination takes the more restrictive type and, for Normal memory, the
/// weaker cacheability of each of inner and outer; allocation hints come
/// from stage 1. Returns `None` for encodings whose result the architecture
/// leaves UNPREDICTABLE (Normal with inner 0b00).
fn combined_attr(memattr: u8) -> Option<u8> {
    let outer = memattr >> 2 & 0b11;
    let inner = memattr & 0b11;
    if outer == 0 {
        // Device: stage 2 wins; its nGnRnE/nGnRE/nGRE/GRE goes to ATTR[3:2].
        return Some(inner << 2);
    }
    // MAIR nibbles: Non-cacheable, Write-Through and Write-Back, the last
    // two non-transient with stage 1's read and write allocation.
    let nibble = |c: u8| match c {
        0b01 => Some(0b0100),
        0b10 => Some(0b1011),
        0b11 => Some(0b1111),
        _ => None,
    };
    Some(nibble(outer)? << 4 | nibble(inner)?)
}

/// PAR_EL1.SH for a stage-2 leaf: Device memory and Normal memory that is
/// Non-cacheable inside and out are Outer Shareable by definition (and PAR
/// reports them so); otherwise the more shareable of the two stages, and
/// stage 1 is Non-shareable under HCR_EL2.DC, so stage 2's SH. `None` for
/// the reserved SH 0b01.
fn combined_sh(memattr: u8, sh: u8) -> Option<u8> {
    let outer = memattr >> 2 & 0b11;
    let inner = memattr & 0b11;
    if outer == 0 || (outer == 0b01 && inner == 0b01) {
        return Some(0b10);
    }
    (sh != 0b01).then_some(sh)
}

/// What the architecture says `AT S12E1R/W` returns for `ipa`, reading the
/// table the way pgwalk reads it. Also returns the leaf, for the report.
pub(crate) fn expected_from_pgwalk(
    table: &Stage2<HeapMemory>,
    ipa: u64,
    write: bool,
) -> (Outcome, Option<(Descriptor, Level)>) {
    let g = table.geometry();
    let leaf = match table.shared().get_leaf(Ipa(ipa)) {
        // AArch64.IPAIsOutOfRange: a Translation fault at level 0.
        Err(Error::OutOfRange { .. }) => {
            let o = Outcome::Fault {
                kind: FaultKind::Translation,
                level: 0,
            };
            return (o, None);
        }
        Err(e) => panic!("get_leaf({ipa:#x}) failed: {e}"),
        Ok(leaf) => leaf,
    };
    let (d, level) = leaf;
    let fault = |kind| Outcome::Fault {
        kind,
        level: level.get(),
    };
    let outcome = if !d.is_valid() || !g.leaf_allowed(level) {
        // Invalid (or annotated) entry, or a block where none may be.
        fault(FaultKind::Translation)
    } else {
        let size = g.entry_size(level);
        let oa = d.output_address(g.format()).get() + (ipa & (size - 1));
        let memattr = (d.bits() >> 2 & 0xf) as u8;
        // With LPA2 the leaf has no SH field: VTCR_EL2.SH0 is every leaf's.
        let sh = if g.format().has_shareability() {
            (d.bits() >> 8 & 0b11) as u8
        } else {
            (g.vtcr() >> 12 & 0b11) as u8
        };
        if oa >> g.oa_bits() != 0 {
            fault(FaultKind::AddressSize)
        } else if !d.young() {
            // With VTCR_EL2.HA clear the access flag fault comes before
            // any permission check.
            fault(FaultKind::AccessFlag)
        } else if !(if write { d.writable() } else { d.readable() }) {
            fault(FaultKind::Permission)
        } else {
            match (combined_attr(memattr), combined_sh(memattr, sh)) {
                (Some(attr), Some(sh)) => Outcome::Ok {
                    pa: oa & !(PAR_PAGE - 1),
                    attr,
                    sh,
                },
                _ => panic!(
                    "pgwalk produced a leaf whose attributes are UNPREDICTABLE: {d:?} at {ipa:#x}"
                ),
            }
        }
    };
    (outcome, Some(leaf))
}

/// The model's fault level: it knows what is mapped, not the table's shape.
pub(crate) const ANY_LEVEL: i8 = i8::MIN;

//! The model: what the operations applied should have left at each
//! address, in the test's own terms (no descriptor bits).

use pgwalk::Prot;

use crate::expect::{FaultKind, Outcome, ANY_LEVEL};
use crate::PAR_PAGE;

/// What the operations should have left at one page, in the test's own
/// terms: no descriptor bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ModelLeaf {
    /// Output address minus input address.
    pub(crate) delta: u64,
    pub(crate) prot: Prot,
    pub(crate) young: bool,
}

/// An operation as it affects translation, over `lo..hi`. Attribute changes
/// act on whole leaves, so their range is widened to the leaves the
/// operation touched (known only when it runs).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ModelOp {
    Map { lo: u64, hi: u64, leaf: ModelLeaf },
    Clear { lo: u64, hi: u64 },
    Wrprotect { lo: u64, hi: u64 },
    Young { lo: u64, hi: u64, young: bool },
    Relax { lo: u64, hi: u64, prot: Prot },
}

impl ModelOp {
    pub(crate) fn range(&self) -> (u64, u64) {
        match *self {
            ModelOp::Map { lo, hi, .. }
            | ModelOp::Clear { lo, hi }
            | ModelOp::Wrprotect { lo, hi }
            | ModelOp::Young { lo, hi, .. }
            | ModelOp::Relax { lo, hi, .. } => (lo, hi),
        }
    }

    fn apply(&self, state: &mut Option<ModelLeaf>) {
        match *self {
            ModelOp::Map { leaf, .. } => *state = Some(leaf),
            ModelOp::Clear { .. } => *state = None,
            ModelOp::Wrprotect { .. } => {
                if let Some(l) = state {
                    l.prot.remove(Prot::W);
                }
            }
            ModelOp::Young { young, .. } => {
                if let Some(l) = state {
                    l.young = young;
                }
            }
            ModelOp::Relax { prot, .. } => {
                if let Some(l) = state {
                    l.prot.insert(prot);
                }
            }
        }
    }
}

/// The model's state at `ipa`: the operation log replayed for one address.
pub(crate) fn model_at(log: &[ModelOp], ipa: u64) -> Option<ModelLeaf> {
    let mut state = None;
    for op in log {
        let (lo, hi) = op.range();
        if (lo..hi).contains(&ipa) {
            op.apply(&mut state);
        }
    }
    state
}

pub(crate) fn model_outcome(state: Option<ModelLeaf>, ipa: u64, write: bool) -> Outcome {
    let fault = |kind| Outcome::Fault {
        kind,
        level: ANY_LEVEL,
    };
    let Some(l) = state else {
        return fault(FaultKind::Translation);
    };
    if !l.young {
        return fault(FaultKind::AccessFlag);
    }
    if !l.prot.contains(if write { Prot::W } else { Prot::R }) {
        return fault(FaultKind::Permission);
    }
    // The memory types as the Prot documentation promises them, seen
    // through HCR_EL2.DC: Device-nGnRE, Normal NC, Normal WB inner
    // shareable.
    let (attr, sh) = if l.prot.contains(Prot::DEVICE) {
        (0x04, 0b10)
    } else if l.prot.contains(Prot::NORMAL_NC) {
        (0x44, 0b10)
    } else {
        (0xff, 0b11)
    };
    Outcome::Ok {
        pa: ipa.wrapping_add(l.delta) & !(PAR_PAGE - 1),
        attr,
        sh,
    }
}

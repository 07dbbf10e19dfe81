//! Fault outcomes: what a stage-2 fault handler did, as a value that cannot
//! be mistaken for "zero means fixed".

use num_enum::{IntoPrimitive, TryFromPrimitive};

use crate::action::ResumeReason;

/// What handling a guest's stage-2 fault came to (after x86's `RET_PF_*`).
///
/// Every value is non-zero and positive, so in C it never collides with a
/// `-errno` and a caller testing `if (r)` is not told "fixed" by accident.
/// There is no conversion to `bool` or integer comparison in Rust: match it.
#[must_use = "a fault outcome says whether the vCPU must retry, emulate or go on"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TryFromPrimitive, IntoPrimitive)]
#[repr(u32)]
pub enum FaultOutcome {
    /// Nothing decided yet: the fault handler goes on with its next step.
    Continue = 1,
    /// Resume the guest without a change; it faults again if it still needs
    /// to (another vCPU raced us, or the entry changed under us).
    Retry = 2,
    /// The access is to emulated memory (MMIO): emulate the instruction.
    Emulate = 3,
    /// The page is write-protected (dirty logging): record and relax.
    WriteProtected = 4,
    /// This fault installed or relaxed the mapping.
    Fixed = 5,
    /// The mapping was already what the fault needed: another vCPU fixed it.
    Spurious = 6,
}

impl FaultOutcome {
    /// Every outcome, in value order.
    pub const ALL: [FaultOutcome; 6] = [
        FaultOutcome::Continue,
        FaultOutcome::Retry,
        FaultOutcome::Emulate,
        FaultOutcome::WriteProtected,
        FaultOutcome::Fixed,
        FaultOutcome::Spurious,
    ];

    /// A stable name, for traces and logs.
    pub const fn name(self) -> &'static str {
        match self {
            FaultOutcome::Continue => "continue",
            FaultOutcome::Retry => "retry",
            FaultOutcome::Emulate => "emulate",
            FaultOutcome::WriteProtected => "write-protected",
            FaultOutcome::Fixed => "fixed",
            FaultOutcome::Spurious => "spurious",
        }
    }

    /// What resuming the guest for `reason` means for the fault.
    pub const fn from_resume(reason: ResumeReason) -> FaultOutcome {
        match reason {
            ResumeReason::Raced | ResumeReason::Gone => FaultOutcome::Retry,
            ResumeReason::Spurious => FaultOutcome::Spurious,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_positive_distinct_and_named() {
        for (i, o) in FaultOutcome::ALL.iter().enumerate() {
            let v: u32 = (*o).into();
            assert_eq!(v as usize, i + 1);
            assert_eq!(FaultOutcome::try_from(v).unwrap(), *o);
            assert!(!o.name().is_empty());
        }
        assert!(FaultOutcome::try_from(0).is_err());
        assert!(FaultOutcome::try_from(7).is_err());
    }
}

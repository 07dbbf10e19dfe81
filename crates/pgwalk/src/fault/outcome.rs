//! What a stage-2 fault handler did, as a value that cannot be mistaken for
//! "zero means fixed".

use num_enum::{IntoPrimitive, TryFromPrimitive};

use crate::capability::{Capability, ResumeReason, Walked};

/// What handling a guest's stage-2 fault came to (after x86's `RET_PF_*`).
///
/// Every value is non-zero and positive, so in C it never collides with a
/// `-errno` and a caller testing `if (r)` is not told "fixed" by accident.
/// There is no conversion to `bool` or integer comparison in Rust: match it.
#[must_use = "a fault outcome says whether the vCPU must retry, emulate or go on"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TryFromPrimitive, IntoPrimitive)]
#[repr(u32)]
pub enum FaultOutcome {
    /// Resume the guest without a change; it faults again if it still needs
    /// to (another vCPU raced us, or the entry changed under us).
    Retry = 2,
    /// The access is to emulated memory (MMIO): emulate the instruction.
    Emulate = 3,
    /// This fault installed or relaxed the mapping.
    Fixed = 5,
    /// The mapping was already what the fault needed: another vCPU fixed it.
    Spurious = 6,
}

impl FaultOutcome {
    /// Every outcome, in value order. (Values 1 and 4 are not used: they
    /// were outcomes nothing produced, and the others keep their values.)
    pub const ALL: [FaultOutcome; 4] = [
        FaultOutcome::Retry,
        FaultOutcome::Emulate,
        FaultOutcome::Fixed,
        FaultOutcome::Spurious,
    ];

    /// A stable name, for traces and logs.
    pub const fn name(self) -> &'static str {
        match self {
            FaultOutcome::Retry => "retry",
            FaultOutcome::Emulate => "emulate",
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

    /// What a fault-path walk came to: [`Fixed`](Self::Fixed) if it finished
    /// and changed the table, [`Spurious`](Self::Spurious) if it finished
    /// with nothing to change, and what the resume reason says if a visitor
    /// resumed the guest.
    pub fn from_walk<C: Capability<Resume = ResumeReason>>(
        walked: Walked<C>,
        changed: bool,
    ) -> FaultOutcome {
        match walked {
            Walked::Completed if changed => FaultOutcome::Fixed,
            Walked::Completed => FaultOutcome::Spurious,
            Walked::ResumeGuest(reason) => FaultOutcome::from_resume(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_positive_distinct_and_named() {
        let values: [u32; 4] = FaultOutcome::ALL.map(u32::from);
        assert_eq!(values, [2, 3, 5, 6]);
        for o in FaultOutcome::ALL {
            assert_eq!(FaultOutcome::try_from(u32::from(o)).unwrap(), o);
            assert!(!o.name().is_empty());
        }
        for v in [0, 1, 4, 7] {
            assert!(FaultOutcome::try_from(v).is_err());
        }
    }
}

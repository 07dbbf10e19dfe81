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
}

/// What a fault-path operation on the table came to: a [`FaultOutcome`]
/// without [`Emulate`](FaultOutcome::Emulate).
///
/// The table alone cannot tell that an access is to be emulated: only
/// [`fault_in`](crate::Handle::fault_in), which asks the host, can. So
/// `map`, `relax_perms` and `mkyoung` on a
/// [`Handle<HandlesFault, _>`](crate::Handle) answer with this type, and a
/// caller's `match` has exactly the arms that can happen. It converts into
/// a [`FaultOutcome`] (same values) where the two meet.
#[must_use = "a fault outcome says whether the vCPU must retry or go on"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TryFromPrimitive, IntoPrimitive)]
#[repr(u32)]
pub enum TableOutcome {
    /// Nothing changed: another walker changed the entry first, or there
    /// was no leaf to update. Resume the guest; it faults again if it
    /// still needs to.
    Retry = 2,
    /// This call changed the table.
    Fixed = 5,
    /// The table already had what the fault needed: another vCPU fixed it.
    Spurious = 6,
}

impl TableOutcome {
    /// Every outcome, in value order.
    pub const ALL: [TableOutcome; 3] = [
        TableOutcome::Retry,
        TableOutcome::Fixed,
        TableOutcome::Spurious,
    ];

    /// A stable name, the same as the [`FaultOutcome`]'s.
    pub const fn name(self) -> &'static str {
        FaultOutcome::from_table(self).name()
    }

    /// What resuming the guest for `reason` means for the fault.
    pub const fn from_resume(reason: ResumeReason) -> TableOutcome {
        match reason {
            ResumeReason::Raced | ResumeReason::Gone => TableOutcome::Retry,
            ResumeReason::Spurious => TableOutcome::Spurious,
        }
    }

    /// What a fault-path walk came to: [`Fixed`](Self::Fixed) if it finished
    /// and changed the table, [`Spurious`](Self::Spurious) if it finished
    /// with nothing to change, and what the resume reason says if a visitor
    /// resumed the guest.
    pub fn from_walk<C: Capability<Resume = ResumeReason>>(
        walked: Walked<C>,
        changed: bool,
    ) -> TableOutcome {
        match walked {
            Walked::Completed if changed => TableOutcome::Fixed,
            Walked::Completed => TableOutcome::Spurious,
            Walked::ResumeGuest(reason) => TableOutcome::from_resume(reason),
        }
    }
}

impl FaultOutcome {
    /// The [`FaultOutcome`] of a table operation's outcome (`From`, usable
    /// in `const` context).
    pub const fn from_table(outcome: TableOutcome) -> FaultOutcome {
        match outcome {
            TableOutcome::Retry => FaultOutcome::Retry,
            TableOutcome::Fixed => FaultOutcome::Fixed,
            TableOutcome::Spurious => FaultOutcome::Spurious,
        }
    }
}

impl From<TableOutcome> for FaultOutcome {
    fn from(outcome: TableOutcome) -> FaultOutcome {
        FaultOutcome::from_table(outcome)
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

    #[test]
    fn table_outcomes_keep_their_fault_outcome_values() {
        for o in TableOutcome::ALL {
            let f = FaultOutcome::from(o);
            assert_eq!(u32::from(o), u32::from(f));
            assert_eq!(o.name(), f.name());
            assert_ne!(f, FaultOutcome::Emulate);
        }
        assert!(TableOutcome::try_from(u32::from(FaultOutcome::Emulate)).is_err());
    }
}

//! Protections, as Linux 6.12's `enum kvm_pgtable_prot` spells them.

use bitflags::bitflags;

bitflags! {
    /// What a stage-2 mapping allows. The bits below `PX` and the software
    /// bits have the values of Linux 6.12's `enum kvm_pgtable_prot`, so C
    /// callers pass theirs unchanged.
    ///
    /// Memory is Normal write-back unless [`Prot::DEVICE`] or
    /// [`Prot::NORMAL_NC`] is set (never both). Device and non-cacheable
    /// memory cannot be executable.
    ///
    /// Execution: [`Prot::X`] allows it at EL1 and EL0, as the kernel's
    /// `KVM_PGTABLE_PROT_X` does. With FEAT_XNX the descriptor can also
    /// allow one of the two: [`Prot::PX`] (EL1 only) and [`Prot::UX`] (EL0
    /// only) are pgwalk's own bits for that, above the kernel's; `PX | UX`
    /// is the same as `X`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Prot: u64 {
        /// Executable at EL1 and EL0 (`KVM_PGTABLE_PROT_X`).
        const X = 1 << 0;
        /// Writable (`KVM_PGTABLE_PROT_W`).
        const W = 1 << 1;
        /// Readable (`KVM_PGTABLE_PROT_R`).
        const R = 1 << 2;
        /// Device-nGnRE memory (`KVM_PGTABLE_PROT_DEVICE`).
        const DEVICE = 1 << 3;
        /// Normal non-cacheable memory (`KVM_PGTABLE_PROT_NORMAL_NC`).
        const NORMAL_NC = 1 << 4;
        /// Executable at EL1 only (FEAT_XNX; pgwalk's, not the kernel's).
        const PX = 1 << 5;
        /// Executable at EL0 only (FEAT_XNX; pgwalk's, not the kernel's).
        const UX = 1 << 6;
        /// Software bit 0 (descriptor bit 55), ignored by the MMU.
        const SW0 = 1 << 55;
        /// Software bit 1 (descriptor bit 56).
        const SW1 = 1 << 56;
        /// Software bit 2 (descriptor bit 57).
        const SW2 = 1 << 57;
        /// Software bit 3 (descriptor bit 58).
        const SW3 = 1 << 58;
        /// Readable and writable.
        const RW = Self::R.bits() | Self::W.bits();
        /// Readable, writable and executable.
        const RWX = Self::RW.bits() | Self::X.bits();
    }
}

impl Prot {
    /// The software bits.
    pub const SW: Prot = Prot::SW0.union(Prot::SW1).union(Prot::SW2).union(Prot::SW3);

    /// The bits Linux 6.12's `enum kvm_pgtable_prot` defines: everything but
    /// pgwalk's [`PX`](Prot::PX) and [`UX`](Prot::UX).
    pub const KVM: Prot = Prot::X
        .union(Prot::W)
        .union(Prot::R)
        .union(Prot::DEVICE)
        .union(Prot::NORMAL_NC)
        .union(Prot::SW);

    /// Whether execution is allowed at EL1 ([`X`](Prot::X) or
    /// [`PX`](Prot::PX)).
    pub const fn el1_exec(self) -> bool {
        self.intersects(Prot::X.union(Prot::PX))
    }

    /// Whether execution is allowed at EL0 ([`X`](Prot::X) or
    /// [`UX`](Prot::UX)).
    pub const fn el0_exec(self) -> bool {
        self.intersects(Prot::X.union(Prot::UX))
    }

    /// Whether execution is allowed at some exception level.
    pub const fn any_exec(self) -> bool {
        self.intersects(Prot::X.union(Prot::PX).union(Prot::UX))
    }
}

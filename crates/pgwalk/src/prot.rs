//! Protections, as `enum kvm_pgtable_prot` spells them.

use bitflags::bitflags;

bitflags! {
    /// What a stage-2 mapping allows, with the bit values of the kernel's
    /// `enum kvm_pgtable_prot`, so C callers pass theirs unchanged.
    ///
    /// Memory is Normal write-back unless [`Prot::DEVICE`] or
    /// [`Prot::NORMAL_NC`] is set (never both). Device and non-cacheable
    /// memory cannot be executable.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Prot: u64 {
        /// Executable at EL1 (privileged execute).
        const PX = 1 << 0;
        /// Executable at EL0 (unprivileged execute).
        const UX = 1 << 1;
        /// Executable at both levels.
        const X = Self::PX.bits() | Self::UX.bits();
        /// Writable.
        const W = 1 << 2;
        /// Readable.
        const R = 1 << 3;
        /// Device-nGnRE memory.
        const DEVICE = 1 << 4;
        /// Normal non-cacheable memory.
        const NORMAL_NC = 1 << 5;
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
}

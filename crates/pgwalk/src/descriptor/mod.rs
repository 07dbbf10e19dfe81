//! The descriptor formats: what the bits of a table entry mean.
//!
//! - `stage2.rs` holds the architecture's VMSAv8-64 stage-2 descriptor: the
//!   valid and table bits, the output address (where the
//!   [`TableFormat`] puts it), MemAttr, S2AP,
//!   SH, AF, XN.
//! - `attrs.rs` is pgwalk's policy for turning a [`Prot`](crate::Prot) into
//!   those bits (and back), as `kvm_pgtable_prot` does.
//! - `software.rs` holds the conventions KVM keeps in invalid entries: the
//!   owner annotation and the locked marker of a break-before-make, and what
//!   counts towards a table page's reference count.
//! - `hyp.rs` holds the EL2 stage-1 descriptor of the hypervisor's own
//!   tables ([`HypDescriptor`]), its MAIR_EL2 ([`HYP_MAIR`]) and its
//!   [`Prot`](crate::Prot) policy ([`HypAttrs`]).
//!
//! The walk engine needs only what [`Pte`] says of a format: whether an
//! entry is a table to descend into, and where that table is.

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::addr::PhysAddr;
use crate::geometry::{Level, TableFormat};

mod attrs;
mod grant;
mod hyp;
mod software;
mod stage2;

pub use attrs::LeafAttrs;
pub(crate) use grant::Grant;
pub use hyp::{HypAttrs, HypDescriptor, HypMemType, HYP_MAIR};
pub use software::MAX_OWNER_ID;
pub use stage2::{Exec, MemAttr, Shareability};

#[cfg(test)]
mod tests;

mod sealed {
    pub trait Sealed {}
}

/// What the walk engine knows of a descriptor format: enough to recurse,
/// nothing of attributes. Sealed: the walker follows the table addresses a
/// format decodes, so only this crate's formats may decode them.
pub trait Pte: sealed::Sealed + Copy + Eq + fmt::Debug {
    /// The descriptor with these raw bits.
    fn from_bits(bits: u64) -> Self;
    /// The raw bits.
    fn bits(self) -> u64;
    /// Whether this entry, found at `level`, points to a next-level table.
    fn is_table(self, level: Level) -> bool;
    /// The next-level table a table descriptor of a `format` table points
    /// to.
    fn table_address(self, format: TableFormat) -> PhysAddr;
}

/// One stage-2 translation table entry.
///
/// Its bits are the architecture's, its leaf attributes come
/// from a [`Prot`](crate::Prot), and its invalid shapes carry
/// KVM's software conventions (see the [module](self) documentation).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(transparent)]
pub struct Descriptor(u64);

impl Descriptor {
    /// The all-zero entry: invalid, not annotated, not counted.
    pub const INVALID: Descriptor = Descriptor(0);

    /// A descriptor from its raw bits.
    #[inline(always)]
    pub const fn from_bits(bits: u64) -> Descriptor {
        Descriptor(bits)
    }

    /// The raw bits.
    #[inline(always)]
    pub const fn bits(self) -> u64 {
        self.0
    }
}

impl sealed::Sealed for Descriptor {}

impl Pte for Descriptor {
    #[inline(always)]
    fn from_bits(bits: u64) -> Self {
        Descriptor(bits)
    }

    #[inline(always)]
    fn bits(self) -> u64 {
        self.0
    }

    #[inline(always)]
    fn is_table(self, level: Level) -> bool {
        Descriptor::is_table(self, level)
    }

    #[inline(always)]
    fn table_address(self, format: TableFormat) -> PhysAddr {
        self.output_address(format)
    }
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Descriptor({:#018x})", self.0)
    }
}

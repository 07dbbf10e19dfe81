//! Address newtypes, so an intermediate physical address is never passed
//! where an output (host physical) address is expected, nor an EL2 virtual
//! address where either is.

use core::fmt;

/// An intermediate physical address: the guest's view, the input of stage 2.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Ipa(pub u64);

/// A virtual address of the EL2 translation regime: the input of the
/// hypervisor's own stage-1 tables ([`HypTable`](crate::hyp::HypTable)).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Va(pub u64);

/// A host physical address: the output of stage 2, and where table pages live.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PhysAddr(pub u64);

macro_rules! addr_common {
    ($ty:ident, $tag:literal) => {
        impl $ty {
            /// The raw address.
            #[inline(always)]
            pub const fn get(self) -> u64 {
                self.0
            }

            /// Whether the address is a multiple of `align` (a power of two).
            #[inline(always)]
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }

            /// The address plus `offset`, or `None` on overflow.
            #[inline(always)]
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($tag, "({:#x})"), self.0)
            }
        }

        impl fmt::LowerHex for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

addr_common!(Ipa, "Ipa");
addr_common!(PhysAddr, "PhysAddr");
addr_common!(Va, "Va");

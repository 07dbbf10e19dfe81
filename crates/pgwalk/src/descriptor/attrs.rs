//! pgwalk's policy for leaf attributes: a [`Prot`] (the kernel's
//! `enum kvm_pgtable_prot`) becomes MemAttr, S2AP, SH, AF, XN and the
//! software bits, and a leaf reads back as a `Prot`.

use core::fmt;

use super::stage2::{AF, MEMATTR_MASK, MEMATTR_SHIFT, S2AP_R, S2AP_W, SW_MASK, XN_MASK, XN_SHIFT};
use super::{Descriptor, Exec, MemAttr};
use crate::error::Error;
use crate::prot::Prot;

impl Descriptor {
    /// The protection this leaf grants, in [`Prot`] terms.
    pub fn prot(self) -> Prot {
        let mut p = Prot::empty();
        if self.readable() {
            p |= Prot::R;
        }
        if self.writable() {
            p |= Prot::W;
        }
        match self.exec() {
            Exec::Both => p |= Prot::X,
            Exec::El0Only => p |= Prot::UX,
            Exec::El1Only => p |= Prot::PX,
            Exec::Never => {}
        }
        match self.mem_attr() {
            Ok(MemAttr::DeviceNGnRE) => p |= Prot::DEVICE,
            Ok(MemAttr::NormalNonCacheable) => p |= Prot::NORMAL_NC,
            _ => {}
        }
        p | Prot::from_bits_retain(self.0 & SW_MASK)
    }
}

/// The attribute bits of a leaf descriptor, built from a [`Prot`]: the
/// same in every table format (shareability, which LPA2 moves to
/// VTCR_EL2, is the descriptor constructors' to add).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeafAttrs(pub(super) u64);

impl LeafAttrs {
    pub(super) const MASK: u64 = MEMATTR_MASK | S2AP_R | S2AP_W | AF | XN_MASK | SW_MASK;

    /// The leaf attributes for `prot`: MemAttr from the memory type,
    /// S2AP from R and W, XN from PX and UX, access flag set, software bits
    /// copied. (Leaves are inner shareable: [`Descriptor::leaf`] and
    /// [`Descriptor::leaf_in`] say where that goes.)
    pub fn from_prot(prot: Prot) -> Result<LeafAttrs, Error> {
        if prot.bits() & !Prot::all().bits() != 0 {
            return Err(Error::InvalidProt("unknown protection bits"));
        }
        let exec = prot.any_exec();
        let mem = match (prot.contains(Prot::DEVICE), prot.contains(Prot::NORMAL_NC)) {
            (true, true) => {
                return Err(Error::InvalidProt(
                    "DEVICE and NORMAL_NC exclude each other",
                ))
            }
            (true, false) if exec => {
                return Err(Error::InvalidProt("device memory cannot be executable"))
            }
            (false, true) if exec => {
                return Err(Error::InvalidProt(
                    "non-cacheable memory cannot be executable",
                ))
            }
            (true, false) => MemAttr::DeviceNGnRE,
            (false, true) => MemAttr::NormalNonCacheable,
            (false, false) => MemAttr::NormalWriteBack,
        };
        let xn = match (prot.el1_exec(), prot.el0_exec()) {
            (true, true) => Exec::Both,
            (false, true) => Exec::El0Only,
            (false, false) => Exec::Never,
            (true, false) => Exec::El1Only,
        };
        let mut bits =
            (mem as u64) << MEMATTR_SHIFT | AF | (xn as u64) << XN_SHIFT | prot.bits() & SW_MASK;
        if prot.contains(Prot::R) {
            bits |= S2AP_R;
        }
        if prot.contains(Prot::W) {
            bits |= S2AP_W;
        }
        Ok(LeafAttrs(bits))
    }

    /// The raw attribute bits.
    pub const fn bits(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for LeafAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeafAttrs({:#018x})", self.0)
    }
}

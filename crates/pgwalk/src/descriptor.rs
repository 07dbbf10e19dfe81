//! The VMSAv8-64 stage-2 descriptor, bit by bit.
//!
//! | bits   | meaning |
//! |--------|---------|
//! | 0      | valid |
//! | 1      | table (levels 0..=2) or page (level 3) = 1; block = 0 |
//! | 5:2    | MemAttr |
//! | 7:6    | S2AP: bit 6 read, bit 7 write |
//! | 9:8    | SH |
//! | 10     | AF |
//! | 47:12  | output address (4 KiB granule) |
//! | 54:53  | XN |
//! | 58:55  | software bits |
//!
//! Invalid descriptors are free for software. pgwalk, like KVM, uses two
//! shapes: an *annotation* (owner id in bits 9:2), which counts towards the
//! table page's reference count, and the *locked* marker (bit 10), which a
//! concurrent walker installs for the moment of a break-before-make.

use core::fmt;

use num_enum::{IntoPrimitive, TryFromPrimitive};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::addr::PhysAddr;
use crate::error::Error;
use crate::geometry::{Granule, Level};
use crate::prot::Prot;

const VALID: u64 = 1 << 0;
const TABLE: u64 = 1 << 1;
const MEMATTR_SHIFT: u32 = 2;
const MEMATTR_MASK: u64 = 0xf << MEMATTR_SHIFT;
const S2AP_R: u64 = 1 << 6;
const S2AP_W: u64 = 1 << 7;
const SH_SHIFT: u32 = 8;
const SH_MASK: u64 = 0b11 << SH_SHIFT;
const AF: u64 = 1 << 10;
const XN_SHIFT: u32 = 53;
const XN_MASK: u64 = 0b11 << XN_SHIFT;
const SW_SHIFT: u32 = 55;
const SW_MASK: u64 = 0xf << SW_SHIFT;
const OA_MASK_4K: u64 = 0x0000_ffff_ffff_f000;
const OWNER_SHIFT: u32 = 2;
const OWNER_MASK: u64 = 0xff << OWNER_SHIFT;
const LOCKED: u64 = 1 << 10;

/// Permission bits of a leaf: what relaxing or restricting access touches.
const PERMS: u64 = S2AP_R | S2AP_W | XN_MASK;

/// Largest owner id an annotation can hold.
pub const MAX_OWNER_ID: u32 = (OWNER_MASK >> OWNER_SHIFT) as u32;

/// One stage-2 translation table entry.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(transparent)]
pub struct Descriptor(u64);

/// Stage-2 MemAttr\[3:0\] encodings pgwalk produces (without FEAT_S2FWB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TryFromPrimitive, IntoPrimitive)]
#[repr(u8)]
pub enum MemAttr {
    /// Device-nGnRE.
    DeviceNGnRE = 0b0001,
    /// Normal, inner and outer non-cacheable.
    NormalNonCacheable = 0b0101,
    /// Normal, inner and outer write-back cacheable.
    NormalWriteBack = 0b1111,
}

/// Shareability, SH\[1:0\].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TryFromPrimitive, IntoPrimitive)]
#[repr(u8)]
pub enum Shareability {
    /// Non-shareable.
    NonShareable = 0b00,
    /// Outer shareable.
    Outer = 0b10,
    /// Inner shareable.
    Inner = 0b11,
}

/// Stage-2 execute permission, XN\[1:0\] (with FEAT_XNX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TryFromPrimitive, IntoPrimitive)]
#[repr(u8)]
pub enum Exec {
    /// Executable at EL1 and EL0.
    Both = 0b00,
    /// Executable at EL0 only.
    El0Only = 0b01,
    /// Not executable.
    Never = 0b10,
    /// Executable at EL1 only.
    El1Only = 0b11,
}

impl Descriptor {
    /// The all-zero entry: invalid, not annotated, not counted.
    pub const INVALID: Descriptor = Descriptor(0);

    /// The marker a concurrent walker leaves while it breaks an entry.
    pub(crate) const LOCKED: Descriptor = Descriptor(LOCKED);

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

    /// A table descriptor pointing at `table`. Only the crate builds these:
    /// the walker follows them, so they must point at table pages it owns.
    #[inline(always)]
    pub(crate) const fn table(table: PhysAddr) -> Descriptor {
        Descriptor(table.0 & OA_MASK_4K | TABLE | VALID)
    }

    /// A valid leaf at `level`: a block at levels 1 and 2, a page at level 3.
    /// `attrs` comes from [`LeafAttrs::from_prot`].
    ///
    /// The caller checks that a leaf may sit at `level` and that `pa` is
    /// aligned to the level's entry size.
    #[inline(always)]
    pub const fn leaf(pa: PhysAddr, level: Level, attrs: LeafAttrs) -> Descriptor {
        let ty = if level.is_last() { TABLE } else { 0 };
        Descriptor(pa.0 & OA_MASK_4K | attrs.0 | ty | VALID)
    }

    /// An invalid entry recording that the page belongs to `owner`.
    pub fn annotation(owner: u32) -> Result<Descriptor, Error> {
        if owner > MAX_OWNER_ID {
            return Err(Error::InvalidOwner {
                id: owner,
                max: MAX_OWNER_ID,
            });
        }
        Ok(Descriptor(u64::from(owner) << OWNER_SHIFT))
    }

    /// Whether the MMU uses this entry.
    #[inline(always)]
    pub const fn is_valid(self) -> bool {
        self.0 & VALID != 0
    }

    /// Whether this entry, found at `level`, points to a next-level table.
    #[inline(always)]
    pub const fn is_table(self, level: Level) -> bool {
        self.0 & (VALID | TABLE) == VALID | TABLE && !level.is_last()
    }

    /// Whether this entry, found at `level`, is a valid block or page.
    #[inline(always)]
    pub const fn is_leaf(self, level: Level) -> bool {
        self.is_valid() && !self.is_table(level)
    }

    /// Whether this is a concurrent walker's break-before-make marker.
    #[inline(always)]
    pub const fn is_locked(self) -> bool {
        self.0 == LOCKED
    }

    /// Whether the entry counts towards its table page's reference count:
    /// anything but zero. The locked marker counts too: it holds the count
    /// of the entry it stands in for until the break's make.
    #[inline(always)]
    pub const fn is_counted(self) -> bool {
        self.0 != 0
    }

    /// The owner id of an annotation, if this is one.
    pub const fn owner(self) -> Option<u32> {
        if self.is_valid() || self.is_locked() || self.0 & OWNER_MASK == 0 {
            None
        } else {
            Some(((self.0 & OWNER_MASK) >> OWNER_SHIFT) as u32)
        }
    }

    /// Output address: the block, page or next table this entry points to.
    #[inline(always)]
    pub const fn output_address(self, granule: Granule) -> PhysAddr {
        let mask = match granule {
            Granule::Size4KiB => OA_MASK_4K,
            Granule::Size16KiB => 0x0000_ffff_ffff_c000,
            // 64 KiB puts PA[51:48] in bits 15:12.
            Granule::Size64KiB => {
                return PhysAddr(self.0 & 0x0000_ffff_ffff_0000 | (self.0 & 0xf000) << 36)
            }
        };
        PhysAddr(self.0 & mask)
    }

    /// The attribute bits of a leaf.
    #[inline(always)]
    pub const fn attrs(self) -> LeafAttrs {
        LeafAttrs(self.0 & LeafAttrs::MASK)
    }

    /// MemAttr\[3:0\], decoded where it is one pgwalk produces.
    pub fn mem_attr(self) -> Result<MemAttr, u8> {
        let raw = ((self.0 & MEMATTR_MASK) >> MEMATTR_SHIFT) as u8;
        MemAttr::try_from(raw).map_err(|_| raw)
    }

    /// Shareability, decoded where it is not the reserved 0b01.
    pub fn shareability(self) -> Result<Shareability, u8> {
        let raw = ((self.0 & SH_MASK) >> SH_SHIFT) as u8;
        Shareability::try_from(raw).map_err(|_| raw)
    }

    /// Execute permission.
    pub fn exec(self) -> Exec {
        // Two bits, four variants: every value decodes.
        Exec::try_from(((self.0 & XN_MASK) >> XN_SHIFT) as u8).unwrap_or(Exec::Never)
    }

    /// S2AP read.
    #[inline(always)]
    pub const fn readable(self) -> bool {
        self.0 & S2AP_R != 0
    }

    /// S2AP write.
    #[inline(always)]
    pub const fn writable(self) -> bool {
        self.0 & S2AP_W != 0
    }

    /// The access flag.
    #[inline(always)]
    pub const fn young(self) -> bool {
        self.0 & AF != 0
    }

    /// Software bits 58:55, as a 4-bit value.
    #[inline(always)]
    pub const fn sw_bits(self) -> u8 {
        ((self.0 & SW_MASK) >> SW_SHIFT) as u8
    }

    /// The same entry with write permission set or cleared.
    #[inline(always)]
    #[must_use]
    pub const fn with_writable(self, w: bool) -> Descriptor {
        Descriptor(if w { self.0 | S2AP_W } else { self.0 & !S2AP_W })
    }

    /// The same entry with read permission set or cleared.
    #[inline(always)]
    #[must_use]
    pub const fn with_readable(self, r: bool) -> Descriptor {
        Descriptor(if r { self.0 | S2AP_R } else { self.0 & !S2AP_R })
    }

    /// The same entry with the access flag set or cleared.
    #[inline(always)]
    #[must_use]
    pub const fn with_young(self, af: bool) -> Descriptor {
        Descriptor(if af { self.0 | AF } else { self.0 & !AF })
    }

    /// The same entry with another execute permission.
    #[inline(always)]
    #[must_use]
    pub const fn with_exec(self, exec: Exec) -> Descriptor {
        Descriptor(self.0 & !XN_MASK | (exec as u64) << XN_SHIFT)
    }

    /// Whether going from the valid leaf `self` to the valid leaf `new`
    /// takes away a permission (read, write, or execution at either EL), so
    /// that a TLB entry cached for `self` would grant more than `new`. Such
    /// a change needs no break-before-make, but it needs a TLB
    /// invalidation afterwards.
    #[inline(always)]
    pub const fn removes_permissions(self, new: Descriptor) -> bool {
        if !self.is_valid() || !new.is_valid() {
            return false;
        }
        let s2ap = S2AP_R | S2AP_W;
        let lost_access = self.0 & s2ap & !new.0 != 0;
        // The exception levels XN[1:0] lets execute from (FEAT_XNX), as a
        // set: bit 0 for EL0, bit 1 for EL1.
        const fn allowed(d: u64) -> u8 {
            match (d & XN_MASK) >> XN_SHIFT {
                0b00 => 0b11,
                0b01 => 0b01,
                0b11 => 0b10,
                _ => 0b00,
            }
        }
        let lost_exec = allowed(self.0) & !allowed(new.0) != 0;
        lost_access || lost_exec
    }

    /// Whether two leaves differ in more than their permissions (and so a
    /// fault handler installing `self` over `old` has real work to do).
    #[inline(always)]
    pub const fn differs_beyond_perms(self, old: Descriptor) -> bool {
        (self.0 ^ old.0) & !PERMS != 0
    }

    /// Whether two entries differ in more than their software bits.
    #[inline(always)]
    pub const fn differs_beyond_sw(self, old: Descriptor) -> bool {
        (self.0 ^ old.0) & !SW_MASK != 0
    }

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

    /// Whether the leaf maps write-back cacheable memory (and so needs data
    /// cache maintenance when installed without FEAT_S2FWB).
    #[inline(always)]
    pub const fn is_cacheable(self) -> bool {
        self.0 & MEMATTR_MASK == (MemAttr::NormalWriteBack as u64) << MEMATTR_SHIFT
    }

    /// Whether the leaf is executable at some exception level.
    #[inline(always)]
    pub const fn is_executable(self) -> bool {
        self.0 & XN_MASK != (Exec::Never as u64) << XN_SHIFT
    }
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Descriptor({:#018x})", self.0)
    }
}

/// The attribute bits of a leaf descriptor, built from a [`Prot`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeafAttrs(u64);

impl LeafAttrs {
    const MASK: u64 = MEMATTR_MASK | S2AP_R | S2AP_W | SH_MASK | AF | XN_MASK | SW_MASK;

    /// The leaf attributes for `prot`: MemAttr from the memory type,
    /// S2AP from R and W, XN from PX and UX, inner shareable, access flag
    /// set, software bits copied.
    pub fn from_prot(prot: Prot) -> Result<LeafAttrs, Error> {
        if prot.bits() & !Prot::all().bits() != 0 {
            return Err(Error::InvalidProt("unknown protection bits"));
        }
        let exec = prot.intersects(Prot::X);
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
        let xn = match (prot.contains(Prot::PX), prot.contains(Prot::UX)) {
            (true, true) => Exec::Both,
            (false, true) => Exec::El0Only,
            (false, false) => Exec::Never,
            (true, false) => Exec::El1Only,
        };
        let mut bits = (mem as u64) << MEMATTR_SHIFT
            | (Shareability::Inner as u64) << SH_SHIFT
            | AF
            | (xn as u64) << XN_SHIFT
            | prot.bits() & SW_MASK;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(prot: Prot, level: i8) -> Descriptor {
        Descriptor::leaf(
            PhysAddr(0x8_0000_0000),
            Level::new(level).unwrap(),
            LeafAttrs::from_prot(prot).unwrap(),
        )
    }

    #[test]
    fn page_and_block_type_bits() {
        let page = leaf(Prot::R, 3);
        assert_eq!(page.bits() & 0b11, 0b11, "level-3 page: valid + bit 1");
        assert!(page.is_leaf(Level::LAST) && !page.is_table(Level::LAST));
        let block = leaf(Prot::R, 2);
        assert_eq!(block.bits() & 0b11, 0b01, "block: valid, bit 1 clear");
        assert!(block.is_leaf(Level::new(2).unwrap()));
        let table = Descriptor::table(PhysAddr(0x1234_5000));
        assert_eq!(table.bits(), 0x1234_5003);
        assert!(table.is_table(Level::new(0).unwrap()));
        assert_eq!(
            table.output_address(Granule::Size4KiB),
            PhysAddr(0x1234_5000)
        );
    }

    #[test]
    fn every_attribute_bit() {
        assert_eq!(
            leaf(Prot::empty(), 3).bits() >> 2 & 0xf,
            0b1111,
            "normal WB"
        );
        assert_eq!(
            leaf(Prot::NORMAL_NC, 3).bits() >> 2 & 0xf,
            0b0101,
            "normal NC"
        );
        assert_eq!(
            leaf(Prot::DEVICE, 3).bits() >> 2 & 0xf,
            0b0001,
            "device nGnRE"
        );
        assert_eq!(leaf(Prot::R, 3).bits() & (0b11 << 6), 1 << 6, "S2AP read");
        assert_eq!(leaf(Prot::W, 3).bits() & (0b11 << 6), 1 << 7, "S2AP write");
        assert_eq!(leaf(Prot::RW, 3).bits() & (0b11 << 6), 0b11 << 6);
        assert_eq!(
            leaf(Prot::empty(), 3).bits() >> 8 & 0b11,
            0b11,
            "inner shareable"
        );
        assert_ne!(
            leaf(Prot::empty(), 3).bits() & (1 << 10),
            0,
            "AF set on new leaves"
        );
        assert_eq!(leaf(Prot::X, 3).bits() >> 53 & 0b11, 0b00, "PX+UX");
        assert_eq!(leaf(Prot::UX, 3).bits() >> 53 & 0b11, 0b01, "UX only");
        assert_eq!(
            leaf(Prot::empty(), 3).bits() >> 53 & 0b11,
            0b10,
            "no execute"
        );
        assert_eq!(leaf(Prot::PX, 3).bits() >> 53 & 0b11, 0b11, "PX only");
        assert_eq!(leaf(Prot::SW0, 3).bits() >> 55 & 0xf, 0b0001);
        assert_eq!(leaf(Prot::SW3, 3).bits() >> 55 & 0xf, 0b1000);
        assert_eq!(
            leaf(Prot::R, 3).output_address(Granule::Size4KiB),
            PhysAddr(0x8_0000_0000)
        );
    }

    #[test]
    fn prot_round_trips() {
        for prot in [
            Prot::R,
            Prot::RW,
            Prot::RWX,
            Prot::R | Prot::PX,
            Prot::R | Prot::UX,
            Prot::R | Prot::DEVICE,
            Prot::RW | Prot::NORMAL_NC,
            Prot::R | Prot::SW2 | Prot::SW0,
        ] {
            assert_eq!(leaf(prot, 3).prot(), prot);
        }
    }

    #[test]
    fn bad_protections() {
        assert!(LeafAttrs::from_prot(Prot::DEVICE | Prot::NORMAL_NC).is_err());
        assert!(LeafAttrs::from_prot(Prot::DEVICE | Prot::PX).is_err());
        assert!(LeafAttrs::from_prot(Prot::NORMAL_NC | Prot::UX).is_err());
        assert!(LeafAttrs::from_prot(Prot::from_bits_retain(1 << 40)).is_err());
    }

    #[test]
    fn setters_touch_one_bit() {
        let d = leaf(Prot::RW, 3);
        assert_eq!(d.with_writable(false).bits(), d.bits() & !(1 << 7));
        assert_eq!(d.with_readable(false).bits(), d.bits() & !(1 << 6));
        assert_eq!(d.with_young(false).bits(), d.bits() & !(1 << 10));
        assert_eq!(d.with_exec(Exec::Both).bits() >> 53 & 0b11, 0);
        assert!(!d.with_writable(false).differs_beyond_perms(d));
        assert!(d.with_young(false).differs_beyond_perms(d));
    }

    #[test]
    fn annotations_and_locked_marker() {
        let a = Descriptor::annotation(42).unwrap();
        assert!(!a.is_valid() && a.is_counted());
        assert_eq!(a.owner(), Some(42));
        assert_eq!(a.bits(), 42 << 2);
        assert!(Descriptor::annotation(MAX_OWNER_ID + 1).is_err());
        assert!(Descriptor::LOCKED.is_locked() && Descriptor::LOCKED.is_counted());
        assert_eq!(Descriptor::LOCKED.owner(), None);
        assert!(!Descriptor::INVALID.is_counted());
    }

    #[test]
    fn sixty_four_k_output_address_high_bits() {
        let d = Descriptor::from_bits(0x0000_1234_5678_0000 | 0xa000 | 0b11);
        assert_eq!(
            d.output_address(Granule::Size64KiB),
            PhysAddr(0x000a_1234_5678_0000)
        );
    }
}

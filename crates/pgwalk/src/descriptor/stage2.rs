//! The VMSAv8-64 stage-2 descriptor, bit by bit (Arm ARM D8.3, "Translation
//! table descriptor formats").
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
//! The break-before-make rule is the format's too: which changes of a live
//! entry the architecture lets happen in one store.

use num_enum::{IntoPrimitive, TryFromPrimitive};

use super::{Descriptor, LeafAttrs};
use crate::addr::PhysAddr;
use crate::geometry::{Granule, Level};

pub(super) const VALID: u64 = 1 << 0;
pub(super) const TABLE: u64 = 1 << 1;
pub(super) const MEMATTR_SHIFT: u32 = 2;
pub(super) const MEMATTR_MASK: u64 = 0xf << MEMATTR_SHIFT;
pub(super) const S2AP_R: u64 = 1 << 6;
pub(super) const S2AP_W: u64 = 1 << 7;
pub(super) const SH_SHIFT: u32 = 8;
pub(super) const SH_MASK: u64 = 0b11 << SH_SHIFT;
pub(super) const AF: u64 = 1 << 10;
pub(super) const XN_SHIFT: u32 = 53;
pub(super) const XN_MASK: u64 = 0b11 << XN_SHIFT;
pub(super) const SW_SHIFT: u32 = 55;
pub(super) const SW_MASK: u64 = 0xf << SW_SHIFT;
const OA_MASK_4K: u64 = 0x0000_ffff_ffff_f000;

/// Permission bits of a leaf: what relaxing or restricting access touches.
const PERMS: u64 = S2AP_R | S2AP_W | XN_MASK;

/// Bits whose change in a live entry needs break-before-make: the output
/// address, the memory type, the shareability, and bit 1 (a block becoming
/// a table or the reverse; a level-3 page keeps it set).
const BREAK_BITS: u64 = OA_MASK_4K | MEMATTR_MASK | SH_MASK | TABLE;

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

    /// Whether replacing the valid entry `self` with the valid `new` needs
    /// break-before-make: the output address, memory type or shareability
    /// change, or a block becomes a table or the reverse. Permission and
    /// access-flag changes do not (aarch64-paging's `is_bbm_safe` draws
    /// the same line).
    #[inline(always)]
    pub const fn needs_break_to(self, new: Descriptor) -> bool {
        self.is_valid() && new.is_valid() && (self.0 ^ new.0) & BREAK_BITS != 0
    }
}

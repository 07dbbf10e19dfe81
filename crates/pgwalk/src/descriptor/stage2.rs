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
//! | 47:12  | output address: 47:granule in place; 64 KiB puts 51:48 in 15:12 |
//! | 49:12, 9:8 | with LPA2: output address 49:granule in place, 51:50 in 9:8 (no SH) |
//! | 54:53  | XN |
//! | 58:55  | software bits |
//!
//! Where the output address sits depends on the [`TableFormat`]: the
//! constructors and [`Descriptor::output_address`] take it.
//!
//! The break-before-make rule is the format's too: which changes of a live
//! entry the architecture lets happen in one store.

use num_enum::{IntoPrimitive, TryFromPrimitive};

use super::{Descriptor, LeafAttrs};
use crate::addr::PhysAddr;
use crate::geometry::{Level, TableFormat};

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
/// Output-address bits at their own place in any format (47:12, and 49:48
/// with LPA2).
const OA_IN_PLACE: u64 = 0x0003_ffff_ffff_f000;
/// The shareability pgwalk gives every leaf: inner (in the descriptor
/// without LPA2, in VTCR_EL2.SH0 with it).
const SH_INNER: u64 = (Shareability::Inner as u64) << SH_SHIFT;

/// Permission bits of a leaf: what relaxing or restricting access touches.
const PERMS: u64 = S2AP_R | S2AP_W | XN_MASK;

/// Bits whose change in a live entry needs break-before-make: the output
/// address (in every format: bits 15:12 and 9:8 hold its top bits with
/// 64 KiB and with LPA2), the memory type, the shareability, and bit 1 (a
/// block becoming a table or the reverse; a level-3 page keeps it set).
const BREAK_BITS: u64 = OA_IN_PLACE | MEMATTR_MASK | SH_MASK | TABLE;

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

/// The exception levels XN\[1:0\] = `xn` lets execute from, as a set: bit
/// 1 for EL1, bit 0 for EL0.
#[inline(always)]
const fn xn_levels(xn: u64) -> u8 {
    match xn & 0b11 {
        0b00 => 0b11,
        0b01 => 0b01,
        0b11 => 0b10,
        _ => 0b00,
    }
}

impl Exec {
    /// The exception levels this lets execute from, as a set: bit 1 for
    /// EL1, bit 0 for EL0.
    #[inline(always)]
    pub(crate) const fn levels(self) -> u8 {
        xn_levels(self as u64)
    }

    /// The value that lets execute from exactly `levels` (as in
    /// [`levels`](Self::levels); higher bits are ignored).
    #[inline(always)]
    pub(crate) const fn from_levels(levels: u8) -> Exec {
        match levels & 0b11 {
            0b11 => Exec::Both,
            0b10 => Exec::El1Only,
            0b01 => Exec::El0Only,
            _ => Exec::Never,
        }
    }
}

impl Descriptor {
    /// A table descriptor of a `format` table pointing at `table`. Only the
    /// crate builds these: the walker follows them, so they must point at
    /// table pages it owns (below the output size, which the callers check).
    #[inline(always)]
    pub(crate) const fn table(table: PhysAddr, format: TableFormat) -> Descriptor {
        Descriptor(format.encode(table.0) | TABLE | VALID)
    }

    /// A valid leaf at `level` of a table without LPA2, any granule: a
    /// block at levels 1 and 2, a page at level 3, inner shareable. `attrs`
    /// comes from [`LeafAttrs::from_prot`].
    ///
    /// Without LPA2 every granule keeps output-address bits 47:12 in place
    /// (an address aligned to 16 or 64 KiB has its low bits clear), and
    /// 64 KiB keeps bits 51:48 in bits 15:12, which no address of a 4 KiB
    /// or 16 KiB table has (their output size is at most 48 bits). A table
    /// with LPA2 needs [`leaf_in`](Self::leaf_in).
    ///
    /// The caller checks that a leaf may sit at `level` and that `pa` is
    /// aligned to the level's entry size and fits the output size.
    #[inline(always)]
    pub const fn leaf(pa: PhysAddr, level: Level, attrs: LeafAttrs) -> Descriptor {
        let ty = if level.is_last() { TABLE } else { 0 };
        let oa = pa.0 & 0x0000_ffff_ffff_f000 | (pa.0 >> 36) & 0xf000;
        Descriptor(oa | attrs.0 | SH_INNER | ty | VALID)
    }

    /// A valid leaf at `level` of a `format` table: what
    /// [`leaf`](Self::leaf) builds, with the output address where `format`
    /// keeps it. With LPA2 the descriptor has no shareability field (bits
    /// 9:8 hold address bits 51:50): the table's shareability is
    /// VTCR_EL2.SH0, inner in [`Geometry::vtcr`](crate::geometry::Geometry::vtcr).
    #[inline(always)]
    pub const fn leaf_in(
        format: TableFormat,
        pa: PhysAddr,
        level: Level,
        attrs: LeafAttrs,
    ) -> Descriptor {
        let ty = if level.is_last() { TABLE } else { 0 };
        let sh = if format.has_shareability() {
            SH_INNER
        } else {
            0
        };
        Descriptor(format.encode(pa.0) | attrs.0 | sh | ty | VALID)
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

    /// Output address: the block, page or next table this entry points to,
    /// read the way a table of `format` keeps it (a [`TableFormat`], or a
    /// [`Granule`](crate::geometry::Granule) for its format without LPA2).
    #[inline(always)]
    pub fn output_address(self, format: impl Into<TableFormat>) -> PhysAddr {
        PhysAddr(format.into().decode(self.0))
    }

    /// The attribute bits of a leaf, in any format: MemAttr, S2AP, AF, XN
    /// and the software bits (not the output address, nor the
    /// shareability, which the constructors add for the format).
    #[inline(always)]
    pub const fn attrs(self) -> LeafAttrs {
        LeafAttrs(self.0 & LeafAttrs::MASK)
    }

    /// MemAttr\[3:0\], decoded where it is one pgwalk produces.
    pub fn mem_attr(self) -> Result<MemAttr, u8> {
        let raw = ((self.0 & MEMATTR_MASK) >> MEMATTR_SHIFT) as u8;
        MemAttr::try_from(raw).map_err(|_| raw)
    }

    /// Shareability, decoded where it is not the reserved 0b01. Only
    /// descriptors without LPA2 have the field: with LPA2 bits 9:8 are
    /// output-address bits and the table's shareability is VTCR_EL2.SH0
    /// (see [`TableFormat::has_shareability`]).
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
        let allowed = xn_levels((self.0 & XN_MASK) >> XN_SHIFT);
        let lost_exec = allowed & !xn_levels((new.0 & XN_MASK) >> XN_SHIFT) != 0;
        lost_access || lost_exec
    }

    /// Whether two leaves differ in more than their permissions (and so a
    /// fault handler installing `self` over `old` has real work to do).
    #[inline(always)]
    pub const fn differs_beyond_perms(self, old: Descriptor) -> bool {
        (self.0 ^ old.0) & !PERMS != 0
    }

    /// Whether two leaves of one table hold the same output address: every
    /// bit that holds address bits in some format agrees (with LPA2 bits
    /// 9:8 are among them; without it they are the shareability, which
    /// pgwalk never changes alone, so nothing is lost by comparing them).
    #[inline(always)]
    pub(crate) const fn same_output_bits(self, other: Descriptor) -> bool {
        (self.0 ^ other.0) & (OA_IN_PLACE | SH_MASK) == 0
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

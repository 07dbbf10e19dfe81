//! The VMSAv8-64 stage-1 descriptor of the EL2 translation regime, as a
//! non-VHE hypervisor uses it (one VA range through TTBR0_EL2, no EL0, no
//! ASID), and pgwalk's policy for turning a [`Prot`] into it (Linux's
//! `hyp_set_prot_attr`) and back (`kvm_pgtable_hyp_pte_prot`).
//!
//! The bits are on [`HypDescriptor`], the memory types on [`HYP_MAIR`].
//!
//! A table page's reference count is 1 plus its *valid* entries, as in
//! Linux's hyp walkers: the EL2 tables carry no annotations and no locked
//! marker (their walkers are exclusive only), so every entry is either a
//! valid leaf, a table, or zero.

use core::fmt;

use num_enum::{IntoPrimitive, TryFromPrimitive};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{sealed, Pte, Shareability};
use crate::addr::PhysAddr;
use crate::error::Error;
use crate::geometry::{Level, TableFormat};
use crate::prot::Prot;

const VALID: u64 = 1 << 0;
const TABLE: u64 = 1 << 1;
const ATTRIDX_SHIFT: u32 = 2;
const ATTRIDX_MASK: u64 = 0b111 << ATTRIDX_SHIFT;
const AP_SHIFT: u32 = 6;
const AP_MASK: u64 = 0b11 << AP_SHIFT;
/// AP\[2\]: set, the page is read-only.
const AP_RO_BIT: u64 = 1 << 7;
/// AP\[2:1\] as Linux writes them for a non-VHE EL2 (AP\[1\] is RES1).
const AP_RW: u64 = 0b01;
const AP_RO: u64 = 0b11;
const SH_SHIFT: u32 = 8;
const SH_MASK: u64 = 0b11 << SH_SHIFT;
const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const XN: u64 = 1 << 54;
const SW_MASK: u64 = 0xf << 55;

/// MAIR_EL2 as the hyp format assumes it: Linux's `MAIR_EL1_SET` before MTE.
///
/// Leaves name their memory type by index, at Linux's `MT_*` positions, so
/// that MAIR_EL2 can be the value Linux programs for EL1 and EL2:
///
/// | index | Linux name | attribute | pgwalk uses it for |
/// |-------|------------|-----------|--------------------|
/// | 0 | `MT_NORMAL` | `0xff` Normal, inner and outer write-back, read/write-allocate | [`HypMemType::NormalWriteBack`] |
/// | 1 | `MT_NORMAL_TAGGED` | `0xff` (`0xf0` with MTE) | nothing |
/// | 2 | `MT_NORMAL_NC` | `0x44` Normal, inner and outer non-cacheable | [`HypMemType::NormalNonCacheable`] |
/// | 3 | `MT_DEVICE_nGnRnE` | `0x00` | nothing |
/// | 4 | `MT_DEVICE_nGnRE` | `0x04` | [`HypMemType::DeviceNGnRE`] |
///
/// A hypervisor loads this value into MAIR_EL2 before it turns on the EL2
/// MMU with a [`HypTable`](crate::hyp::HypTable).
pub const HYP_MAIR: u64 = 0xff | 0xff << 8 | 0x44 << 16 | 0x04 << 32;

/// The memory types hyp leaves use, by their AttrIndx (Linux's `MT_*`
/// positions in [`HYP_MAIR`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TryFromPrimitive, IntoPrimitive)]
#[repr(u8)]
pub enum HypMemType {
    /// `MT_NORMAL`: Normal, inner and outer write-back.
    NormalWriteBack = 0,
    /// `MT_NORMAL_NC`: Normal, inner and outer non-cacheable.
    NormalNonCacheable = 2,
    /// `MT_DEVICE_nGnRE`.
    DeviceNGnRE = 4,
}

impl HypMemType {
    /// The AttrIndx of this type.
    pub const fn attr_index(self) -> u8 {
        self as u8
    }

    /// The attribute byte [`HYP_MAIR`] holds at this type's index.
    pub const fn mair_attr(self) -> u8 {
        (HYP_MAIR >> (8 * self as u32)) as u8
    }
}

/// One entry of an EL2 stage-1 table.
///
/// Its bits are the architecture's; its leaf attributes come from a
/// [`Prot`] through [`HypAttrs::from_prot`]:
///
/// | bits   | meaning |
/// |--------|---------|
/// | 0      | valid |
/// | 1      | table (levels below the last) or page (last level) = 1; block = 0 |
/// | 4:2    | AttrIndx: an index into MAIR_EL2 (see [`HYP_MAIR`]) |
/// | 7:6    | AP\[2:1\]: `0b01` read-write, `0b11` read-only (AP\[1\] is RES1 at EL2) |
/// | 9:8    | SH; with LPA2, PA\[51:50\] (TCR_EL2.SH0 is the shareability) |
/// | 10     | AF |
/// | 11     | nG: RES0 here (one VA range, no ASID), never set |
/// | 49:12  | output address where the [`TableFormat`] puts it, as at stage 2: 47 down to the granule's page shift, for 64 KiB PA\[51:48\] in bits 15:12 (FEAT_LPA), with LPA2 PA\[49:48\] in place |
/// | 50     | GP (BTI guarded page): never set |
/// | 54     | XN |
/// | 58:55  | software bits |
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(transparent)]
pub struct HypDescriptor(u64);

/// Output-address bits at their own place in any format: 47:12, and 49:48
/// with LPA2 (RES0 without it). The bits that hold the top of the address
/// elsewhere (15:12 with 64 KiB; 9:8, SH without LPA2) break anyway.
const OA_BITS_ANY: u64 = 0x0003_ffff_ffff_f000;

/// Bits whose change in a live entry needs break-before-make: the output
/// address, the memory type, the shareability, nG, and bit 1 (a block
/// becoming a table or the reverse).
const BREAK_BITS: u64 = OA_BITS_ANY | ATTRIDX_MASK | SH_MASK | NG | TABLE;

impl HypDescriptor {
    /// The all-zero entry: invalid, not counted.
    pub const INVALID: HypDescriptor = HypDescriptor(0);

    /// A descriptor from its raw bits.
    #[inline(always)]
    pub const fn from_bits(bits: u64) -> HypDescriptor {
        HypDescriptor(bits)
    }

    /// The raw bits.
    #[inline(always)]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// A table descriptor pointing at `table`, in a table of `format`. Only
    /// the crate builds these: the walker follows them, so they must point
    /// at table pages it owns.
    #[inline(always)]
    pub(crate) const fn table(table: PhysAddr, format: TableFormat) -> HypDescriptor {
        HypDescriptor(format.encode(table.0) | TABLE | VALID)
    }

    /// A valid leaf at `level` of a table of `format` (a [`TableFormat`],
    /// or a [`Granule`](crate::geometry::Granule) for its format without
    /// LPA2): a block above the last level, a page at it. `attrs` comes
    /// from [`HypAttrs::from_prot`]. With LPA2 the descriptor has no
    /// shareability field (bits 9:8 hold PA\[51:50\]), so the attributes'
    /// SH is left out: TCR_EL2.SH0 gives it.
    ///
    /// The caller checks that a leaf may sit at `level` and that `pa` is
    /// aligned to the level's entry size and within what the format holds.
    #[inline(always)]
    pub fn leaf(
        pa: PhysAddr,
        level: Level,
        format: impl Into<TableFormat>,
        attrs: HypAttrs,
    ) -> HypDescriptor {
        let format = format.into();
        let ty = if level.is_last() { TABLE } else { 0 };
        let attrs = if format.has_shareability() {
            attrs.0
        } else {
            attrs.0 & !SH_MASK
        };
        HypDescriptor(format.encode(pa.0) | attrs | ty | VALID)
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

    /// Whether the entry counts towards its table page's reference count:
    /// valid entries do (Linux's hyp rule).
    #[inline(always)]
    pub const fn is_counted(self) -> bool {
        self.is_valid()
    }

    /// Output address: the block, page or next table this entry of a
    /// `format` table (a [`TableFormat`] or a
    /// [`Granule`](crate::geometry::Granule)) points to.
    #[inline(always)]
    pub fn output_address(self, format: impl Into<TableFormat>) -> PhysAddr {
        PhysAddr(format.into().decode(self.0))
    }

    /// The attribute bits of a leaf.
    #[inline(always)]
    pub const fn attrs(self) -> HypAttrs {
        HypAttrs(self.0 & HypAttrs::MASK)
    }

    /// AttrIndx, decoded where it is an index pgwalk uses.
    pub fn mem_type(self) -> Result<HypMemType, u8> {
        let raw = ((self.0 & ATTRIDX_MASK) >> ATTRIDX_SHIFT) as u8;
        HypMemType::try_from(raw).map_err(|_| raw)
    }

    /// Shareability, decoded where it is not the reserved 0b01. Without
    /// LPA2 only: with it bits 9:8 are output-address bits, and the table's
    /// shareability is TCR_EL2.SH0.
    pub fn shareability(self) -> Result<Shareability, u8> {
        let raw = ((self.0 & SH_MASK) >> SH_SHIFT) as u8;
        Shareability::try_from(raw).map_err(|_| raw)
    }

    /// AP\[2:1\], raw.
    #[inline(always)]
    pub const fn ap(self) -> u8 {
        ((self.0 & AP_MASK) >> AP_SHIFT) as u8
    }

    /// Whether EL2 may write through this leaf: AP\[2\] clear (the
    /// architecture's rule for a regime with one privilege level).
    #[inline(always)]
    pub const fn writable(self) -> bool {
        self.0 & AP_RO_BIT == 0
    }

    /// Whether EL2 may execute from this leaf: XN clear.
    #[inline(always)]
    pub const fn executable(self) -> bool {
        self.0 & XN == 0
    }

    /// The access flag.
    #[inline(always)]
    pub const fn young(self) -> bool {
        self.0 & AF != 0
    }

    /// Software bits 58:55, as a 4-bit value.
    #[inline(always)]
    pub const fn sw_bits(self) -> u8 {
        ((self.0 & SW_MASK) >> 55) as u8
    }

    /// Whether replacing the valid entry `self` with the valid `new` needs
    /// break-before-make: the output address, memory type, shareability or
    /// nG change, or a block becomes a table or the reverse. Permission,
    /// access-flag and software-bit changes do not.
    #[inline(always)]
    pub const fn needs_break_to(self, new: HypDescriptor) -> bool {
        self.is_valid() && new.is_valid() && (self.0 ^ new.0) & BREAK_BITS != 0
    }

    /// Whether going from the valid leaf `self` to the valid leaf `new`
    /// takes write or execute permission away, so that a TLB entry cached
    /// for `self` would grant more than `new`.
    #[inline(always)]
    pub const fn removes_permissions(self, new: HypDescriptor) -> bool {
        self.is_valid()
            && new.is_valid()
            && ((self.writable() && !new.writable()) || (self.executable() && !new.executable()))
    }

    /// Whether two entries differ in more than their software bits.
    #[inline(always)]
    pub const fn differs_beyond_sw(self, old: HypDescriptor) -> bool {
        (self.0 ^ old.0) & !SW_MASK != 0
    }

    /// The protection this entry grants, in [`Prot`] terms: what Linux's
    /// `kvm_pgtable_hyp_pte_prot` reports (the software bits, and for a
    /// valid entry [`Prot::X`] unless XN, [`Prot::R`] for AP `0b11`,
    /// [`Prot::RW`] for AP `0b01`), plus the memory type
    /// ([`Prot::DEVICE`], [`Prot::NORMAL_NC`]), so that a leaf made by
    /// [`HypAttrs::from_prot`] gives its protection back.
    ///
    /// AP `0b00` and `0b10`, which pgwalk never writes, report neither R
    /// nor W, as in Linux (the MMU treats them as `0b01` and `0b11`).
    pub fn prot(self) -> Prot {
        let mut p = Prot::from_bits_retain(self.0 & SW_MASK);
        if !self.is_valid() {
            return p;
        }
        if self.executable() {
            p |= Prot::X;
        }
        match u64::from(self.ap()) {
            AP_RO => p |= Prot::R,
            AP_RW => p |= Prot::RW,
            _ => {}
        }
        match self.mem_type() {
            Ok(HypMemType::DeviceNGnRE) => p |= Prot::DEVICE,
            Ok(HypMemType::NormalNonCacheable) => p |= Prot::NORMAL_NC,
            _ => {}
        }
        p
    }
}

impl sealed::Sealed for HypDescriptor {}

impl Pte for HypDescriptor {
    #[inline(always)]
    fn from_bits(bits: u64) -> Self {
        HypDescriptor(bits)
    }

    #[inline(always)]
    fn bits(self) -> u64 {
        self.0
    }

    #[inline(always)]
    fn is_table(self, level: Level) -> bool {
        HypDescriptor::is_table(self, level)
    }

    #[inline(always)]
    fn table_address(self, format: TableFormat) -> PhysAddr {
        self.output_address(format)
    }
}

impl fmt::Debug for HypDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HypDescriptor({:#018x})", self.0)
    }
}

/// The attribute bits of a hyp leaf, built from a [`Prot`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HypAttrs(u64);

impl HypAttrs {
    const MASK: u64 = ATTRIDX_MASK | AP_MASK | SH_MASK | AF | NG | XN | SW_MASK;

    /// The leaf attributes for `prot`, with Linux's rules
    /// (`hyp_set_prot_attr`): [`Prot::R`] is required, an executable
    /// mapping may be neither writable (W^X) nor device memory. The memory
    /// type is Normal write-back unless [`Prot::DEVICE`] or
    /// [`Prot::NORMAL_NC`] says otherwise; AP is read-write with
    /// [`Prot::W`], read-only without; SH is inner shareable, AF set, XN
    /// set unless executable, the software bits copied.
    ///
    /// EL2 has no EL0 here, so execution is [`Prot::PX`] (alone, or in
    /// [`Prot::X`]); [`Prot::UX`] without it cannot be expressed.
    /// Non-cacheable memory cannot be executable either, as at stage 2.
    pub fn from_prot(prot: Prot) -> Result<HypAttrs, Error> {
        if prot.bits() & !Prot::all().bits() != 0 {
            return Err(Error::InvalidProt("unknown protection bits"));
        }
        if !prot.contains(Prot::R) {
            return Err(Error::InvalidProt(
                "an EL2 mapping is always readable: R is required",
            ));
        }
        if prot.contains(Prot::UX) && !prot.el1_exec() {
            return Err(Error::InvalidProt(
                "UX alone: the EL2 regime has no EL0 to execute from",
            ));
        }
        let exec = prot.el1_exec();
        let mem = match (prot.contains(Prot::DEVICE), prot.contains(Prot::NORMAL_NC)) {
            (true, true) => {
                return Err(Error::InvalidProt(
                    "DEVICE and NORMAL_NC exclude each other",
                ))
            }
            (true, false) => HypMemType::DeviceNGnRE,
            (false, true) => HypMemType::NormalNonCacheable,
            (false, false) => HypMemType::NormalWriteBack,
        };
        if exec && prot.contains(Prot::W) {
            return Err(Error::InvalidProt(
                "W^X: an EL2 mapping cannot be both writable and executable",
            ));
        }
        if exec && mem == HypMemType::DeviceNGnRE {
            return Err(Error::InvalidProt("device memory cannot be executable"));
        }
        if exec && mem == HypMemType::NormalNonCacheable {
            return Err(Error::InvalidProt(
                "non-cacheable memory cannot be executable",
            ));
        }
        let ap = if prot.contains(Prot::W) { AP_RW } else { AP_RO };
        let mut bits = u64::from(mem.attr_index()) << ATTRIDX_SHIFT
            | ap << AP_SHIFT
            | (Shareability::Inner as u64) << SH_SHIFT
            | AF
            | prot.bits() & SW_MASK;
        if !exec {
            bits |= XN;
        }
        Ok(HypAttrs(bits))
    }

    /// The raw attribute bits.
    pub const fn bits(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for HypAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HypAttrs({:#018x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::Descriptor;

    fn l(level: i8) -> Level {
        Level::new(level).unwrap()
    }

    #[test]
    fn mair_holds_linux_mt_positions() {
        assert_eq!(HYP_MAIR, 0x0000_0004_0044_ffff);
        assert_eq!(HypMemType::NormalWriteBack.mair_attr(), 0xff);
        assert_eq!(HypMemType::NormalNonCacheable.mair_attr(), 0x44);
        assert_eq!(HypMemType::DeviceNGnRE.mair_attr(), 0x04);
        assert_eq!(HypMemType::DeviceNGnRE.attr_index(), 4);
    }

    #[test]
    fn linux_encodings() {
        let g = crate::geometry::Granule::Size4KiB;
        // PAGE_HYP (RW): AttrIndx 0, AP 0b01, SH 0b11, AF, XN.
        let rw = HypAttrs::from_prot(Prot::RW).unwrap();
        assert_eq!(rw.bits(), 0b01 << 6 | 0b11 << 8 | 1 << 10 | 1 << 54);
        // PAGE_HYP_EXEC (R | X): AP 0b11, no XN.
        let rx = HypAttrs::from_prot(Prot::R | Prot::X).unwrap();
        assert_eq!(rx.bits(), 0b11 << 6 | 0b11 << 8 | 1 << 10);
        // PAGE_HYP_DEVICE: AttrIndx 4.
        let dev = HypAttrs::from_prot(Prot::RW | Prot::DEVICE).unwrap();
        assert_eq!(dev.bits() & ATTRIDX_MASK, 4 << 2);
        let page = HypDescriptor::leaf(PhysAddr(0x4000_1000), l(3), g, rw);
        assert_eq!(page.bits(), 0x4000_1000 | rw.bits() | 0b11);
        let block = HypDescriptor::leaf(PhysAddr(0x4020_0000), l(2), g, rx);
        assert_eq!(block.bits(), 0x4020_0000 | rx.bits() | 0b01);
        assert!(block.is_leaf(l(2)) && !block.is_table(l(2)));
        assert!(page.is_leaf(l(3)) && !page.is_table(l(3)));
        let table = HypDescriptor::table(PhysAddr(0x4800_0000), g.into());
        assert!(table.is_table(l(1)) && !table.is_leaf(l(1)));
        assert_eq!(table.output_address(g), PhysAddr(0x4800_0000));
    }

    #[test]
    fn hyp_set_prot_attr_rules() {
        for bad in [
            Prot::W,                             // no R
            Prot::X,                             // no R
            Prot::RWX,                           // W^X
            Prot::R | Prot::X | Prot::DEVICE,    // executable device
            Prot::R | Prot::X | Prot::NORMAL_NC, // executable non-cacheable
            Prot::R | Prot::DEVICE | Prot::NORMAL_NC,
            Prot::R | Prot::UX, // EL0 execute
            Prot::from_bits_retain(Prot::R.bits() | 1 << 40),
        ] {
            assert!(HypAttrs::from_prot(bad).is_err(), "{bad:?}");
        }
        assert!(HypAttrs::from_prot(Prot::R | Prot::PX).is_ok());
    }

    #[test]
    fn prot_round_trips() {
        let g = crate::geometry::Granule::Size4KiB;
        for p in [
            Prot::R,
            Prot::RW,
            Prot::R | Prot::X,
            Prot::RW | Prot::DEVICE,
            Prot::R | Prot::NORMAL_NC,
            Prot::RW | Prot::SW0 | Prot::SW3,
        ] {
            let d = HypDescriptor::leaf(PhysAddr(0x1000), l(3), g, HypAttrs::from_prot(p).unwrap());
            assert_eq!(d.prot(), p, "{d:?}");
        }
        // PX alone reads back as X, Linux's single execute bit.
        let d = HypDescriptor::leaf(
            PhysAddr(0x1000),
            l(3),
            g,
            HypAttrs::from_prot(Prot::R | Prot::PX).unwrap(),
        );
        assert_eq!(d.prot(), Prot::R | Prot::X);
        // An invalid entry keeps only its software bits.
        assert_eq!(HypDescriptor::from_bits(Prot::SW1.bits()).prot(), Prot::SW1);
        // AP values pgwalk never writes grant nothing, as in Linux.
        let odd = HypDescriptor::from_bits(d.bits() & !AP_MASK);
        assert_eq!(odd.prot() & Prot::RW, Prot::empty());
    }

    #[test]
    fn output_addresses_agree_with_stage_2() {
        use crate::geometry::Granule;
        let formats = [
            TableFormat::from(Granule::Size4KiB),
            Granule::Size16KiB.into(),
            Granule::Size64KiB.into(),
            TableFormat::new(Granule::Size4KiB, true).unwrap(),
            TableFormat::new(Granule::Size16KiB, true).unwrap(),
        ];
        let rw = HypAttrs::from_prot(Prot::RW).unwrap();
        for f in formats {
            // The highest page-aligned address the format holds.
            let pa = ((1u64 << f.max_oa_bits()) - 1) & !(f.granule().size() - 1);
            let pa = pa & !(0x5a5 << 20);
            let leaf = HypDescriptor::leaf(PhysAddr(pa), l(3), f, rw);
            assert_eq!(leaf.output_address(f), PhysAddr(pa), "{f}");
            assert_eq!(
                leaf.output_address(f),
                Descriptor::from_bits(leaf.bits()).output_address(f),
                "{f}"
            );
            let table = HypDescriptor::table(PhysAddr(pa), f);
            assert_eq!(table.output_address(f), PhysAddr(pa), "{f}");
            if f.lpa2() {
                // No SH field: bits 9:8 are PA[51:50].
                assert_eq!(leaf.bits() >> 8 & 0b11, pa >> 50);
            } else {
                assert_eq!(leaf.shareability(), Ok(Shareability::Inner), "{f}");
            }
        }
    }

    #[test]
    fn break_and_permission_rules() {
        let g = crate::geometry::Granule::Size4KiB;
        let rw = HypAttrs::from_prot(Prot::RW).unwrap();
        let ro = HypAttrs::from_prot(Prot::R).unwrap();
        let a = HypDescriptor::leaf(PhysAddr(0x1000), l(3), g, rw);
        let b = HypDescriptor::leaf(PhysAddr(0x2000), l(3), g, rw);
        let a_ro = HypDescriptor::leaf(PhysAddr(0x1000), l(3), g, ro);
        let a_dev = HypDescriptor::leaf(
            PhysAddr(0x1000),
            l(3),
            g,
            HypAttrs::from_prot(Prot::RW | Prot::DEVICE).unwrap(),
        );
        assert!(a.needs_break_to(b) && a.needs_break_to(a_dev));
        assert!(!a.needs_break_to(a_ro) && a.removes_permissions(a_ro));
        assert!(!a_ro.removes_permissions(a));
        assert!(!HypDescriptor::INVALID.needs_break_to(a));
    }
}

//! The translation table format: the granule, and whether the descriptors
//! are LPA2's. Together they say where a descriptor keeps its output
//! address, and whether it has a shareability field at all.

use core::fmt;

use super::granule::{Granule, Level};
use crate::error::Error;

/// The format of a table's descriptors: its granule and whether
/// VTCR_EL2.DS (FEAT_LPA2) is set.
///
/// | format | output address bits | shareability |
/// |--------|---------------------|--------------|
/// | 4 KiB, 16 KiB | 47:12 (47:14) in place | bits 9:8 |
/// | 64 KiB | 47:16 in place, 51:48 in bits 15:12 (FEAT_LPA) | bits 9:8 |
/// | 4 KiB, 16 KiB with LPA2 | 49:12 (49:14) in place, 51:50 in bits 9:8 | VTCR_EL2.SH0 |
///
/// A [`Granule`] converts into the format without LPA2, so APIs that take
/// `impl Into<TableFormat>` accept either.
///
/// Each format's layout is kept as masks, so that encoding and decoding an
/// output address costs the same few instructions in every format: the bits
/// kept in place, and one field moved by a fixed distance.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableFormat {
    granule: Granule,
    lpa2: bool,
    /// Output-address bits that sit at their own position.
    low: u64,
    /// The descriptor field holding the top output-address bits, or 0.
    high: u64,
    /// How far those bits sit below their place in the address.
    shift: u32,
}

/// Bits 47:0, the output size without FEAT_LPA or FEAT_LPA2.
const BELOW_48: u64 = (1 << 48) - 1;
/// Bits 49:0, what LPA2 keeps in place.
const BELOW_50: u64 = (1 << 50) - 1;

impl TableFormat {
    /// 4 KiB without LPA2: the format of most tables, and the default.
    pub const FOUR_KIB: TableFormat = TableFormat::without_lpa2(Granule::Size4KiB);

    /// The format for `granule`, with LPA2 or without. LPA2 exists for 4 KiB
    /// and 16 KiB only: the 64 KiB granule reaches 52-bit addresses without
    /// it (FEAT_LPA).
    pub const fn new(granule: Granule, lpa2: bool) -> Result<TableFormat, Error> {
        if !lpa2 {
            return Ok(TableFormat::without_lpa2(granule));
        }
        if let Granule::Size64KiB = granule {
            return Err(Error::Geometry(
                "LPA2 (VTCR_EL2.DS) applies to the 4 KiB and 16 KiB granules; 64 KiB reaches 52-bit addresses without it (FEAT_LPA)",
            ));
        }
        let page = (1u64 << granule.shift()) - 1;
        Ok(TableFormat {
            granule,
            lpa2: true,
            low: BELOW_50 & !page,
            high: 0b11 << 8,
            shift: 50 - 8,
        })
    }

    /// The format for `granule` without LPA2.
    pub const fn without_lpa2(granule: Granule) -> TableFormat {
        let page = (1u64 << granule.shift()) - 1;
        match granule {
            Granule::Size64KiB => TableFormat {
                granule,
                lpa2: false,
                low: BELOW_48 & !page,
                high: 0xf << 12,
                shift: 48 - 12,
            },
            _ => TableFormat {
                granule,
                lpa2: false,
                low: BELOW_48 & !page,
                high: 0,
                shift: 0,
            },
        }
    }

    /// The format a TG0 field and a DS bit select (VTCR_EL2 and TCR_EL2
    /// encode both alike: TG0 in bits 15:14, DS in bit 32).
    pub const fn from_tg0_ds(tg0: u64, ds: bool) -> Result<TableFormat, Error> {
        match Granule::from_tg0(tg0) {
            Ok(granule) => TableFormat::new(granule, ds),
            Err(e) => Err(e),
        }
    }

    /// The granule.
    #[inline(always)]
    pub const fn granule(self) -> Granule {
        self.granule
    }

    /// Whether the descriptors are LPA2's (VTCR_EL2.DS = 1).
    #[inline(always)]
    pub const fn lpa2(self) -> bool {
        self.lpa2
    }

    /// Whether the descriptors hold shareability (bits 9:8). With LPA2
    /// those bits are output-address bits, and shareability comes from
    /// VTCR_EL2.SH0 for the whole table.
    #[inline(always)]
    pub const fn has_shareability(self) -> bool {
        !self.lpa2
    }

    /// The largest output (and input) address size this format can hold:
    /// 52 bits for 64 KiB and with LPA2, 48 otherwise.
    pub const fn max_oa_bits(self) -> u8 {
        if self.lpa2 || matches!(self.granule, Granule::Size64KiB) {
            52
        } else {
            48
        }
    }

    /// The lowest level a table of this format has.
    #[inline(always)]
    pub const fn first_level(self) -> Level {
        self.granule.first_level(self.lpa2)
    }

    /// The output address a descriptor's bits hold.
    #[inline(always)]
    pub const fn decode(self, bits: u64) -> u64 {
        bits & self.low | (bits & self.high) << self.shift
    }

    /// The descriptor bits that hold output address `pa` (aligned to the
    /// granule, and representable: below `1 << max_oa_bits()`).
    #[inline(always)]
    pub const fn encode(self, pa: u64) -> u64 {
        pa & self.low | (pa >> self.shift) & self.high
    }

    /// Every descriptor bit that holds part of an output address.
    #[inline(always)]
    pub const fn oa_mask(self) -> u64 {
        self.low | self.high
    }
}

impl Default for TableFormat {
    fn default() -> TableFormat {
        TableFormat::FOUR_KIB
    }
}

impl From<Granule> for TableFormat {
    #[inline(always)]
    fn from(granule: Granule) -> TableFormat {
        TableFormat::without_lpa2(granule)
    }
}

impl fmt::Debug for TableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lpa2 {
            write!(f, "{}, LPA2", self.granule)
        } else {
            write!(f, "{}", self.granule)
        }
    }
}

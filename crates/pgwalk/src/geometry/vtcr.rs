//! VTCR_EL2, field by field: decoding it into a [`Geometry`] and encoding a
//! geometry back.
//!
//! | bits  | field | |
//! |-------|-------|-|
//! | 5:0   | T0SZ  | input size is `64 - T0SZ` bits |
//! | 7:6   | SL0   | start level, read with TG0 (and SL2) |
//! | 9:8, 11:10, 13:12 | IRGN0, ORGN0, SH0 | table walk attributes; SH0 is the leaves' shareability too with LPA2 |
//! | 15:14 | TG0   | granule |
//! | 18:16 | PS    | output size |
//! | 31    | RES1  | |
//! | 32    | DS    | LPA2 descriptors, 52-bit addresses (4 KiB and 16 KiB) |
//! | 33    | SL2   | with DS, SL0 = 0 and 4 KiB: start at level -1 |

use super::{Geometry, Granule, Level, TableFormat};
use crate::error::Error;

const RES1: u64 = 1 << 31;
const DS: u64 = 1 << 32;
const SL2: u64 = 1 << 33;

/// The output sizes the PS field encodes (VTCR_EL2.PS and TCR_EL2.PS share
/// it), by encoding: 0b110 (52 bits) needs FEAT_LPA or FEAT_LPA2; 0b111 is
/// FEAT_D128's 56 bits, which pgwalk does not support.
const PS_BITS: [u8; 7] = [32, 36, 40, 42, 44, 48, 52];

/// The output size a PS field encodes.
pub fn oa_bits_from_ps(ps: u64) -> Result<u8, Error> {
    match PS_BITS.get(ps as usize) {
        Some(&bits) => Ok(bits),
        None => Err(Error::Geometry(
            "PS = 0b111 (56 bits, FEAT_D128) is not supported",
        )),
    }
}

/// The PS field for an output size of `oa_bits`.
pub fn ps_from_oa_bits(oa_bits: u8) -> Result<u64, Error> {
    match PS_BITS.iter().position(|&b| b == oa_bits) {
        Some(ps) => Ok(ps as u64),
        None => Err(Error::Geometry(
            "the output size must be 32, 36, 40, 42, 44, 48 or 52 bits (the PS encodings)",
        )),
    }
}

/// The start level SL0 (and SL2) select for `format`, per AArch64.S2StartLevel
/// and the encodings AArch64.S2InvalidSL refuses.
fn start_level(format: TableFormat, sl0: u64, sl2: bool) -> Result<Level, Error> {
    let level = match (format.granule(), sl0, sl2) {
        (Granule::Size4KiB, 0, true) if format.lpa2() => -1,
        (Granule::Size4KiB, _, true) if format.lpa2() => {
            return Err(Error::Geometry("SL2 = 1 (start at level -1) needs SL0 = 0"))
        }
        (_, _, true) => {
            return Err(Error::Geometry(
                "SL2 = 1 (start at level -1) needs the 4 KiB granule and VTCR_EL2.DS = 1",
            ))
        }
        (Granule::Size4KiB, 3, false) => {
            return Err(Error::Geometry(
                "SL0 = 3 with the 4 KiB granule (start at level 3, FEAT_TTST) is not supported",
            ))
        }
        (Granule::Size4KiB, sl0, false) => 2 - sl0 as i8,
        (Granule::Size16KiB, 3, false) if !format.lpa2() => {
            return Err(Error::Geometry(
                "SL0 = 3 with the 16 KiB granule (start at level 0) needs VTCR_EL2.DS = 1",
            ))
        }
        (Granule::Size64KiB, 3, false) => {
            return Err(Error::Geometry(
                "SL0 = 3 is reserved with the 64 KiB granule (it has no level 0)",
            ))
        }
        (_, sl0, false) => 3 - sl0 as i8,
    };
    Ok(Level(level))
}

impl Geometry {
    /// Decodes VTCR_EL2: T0SZ (input size), SL0 and SL2 (start level), TG0
    /// (granule), PS (output size) and DS (LPA2). The other fields (table
    /// walk attributes, VMID size, hardware flags) do not change the table.
    pub fn from_vtcr(vtcr: u64) -> Result<Geometry, Error> {
        let format = TableFormat::from_tg0_ds(vtcr >> 14 & 0b11, vtcr & DS != 0)?;
        let t0sz = (vtcr & 0x3f) as u8;
        let start = start_level(format, vtcr >> 6 & 0b11, vtcr & SL2 != 0)?;
        let oa_bits = oa_bits_from_ps(vtcr >> 16 & 0b111)?;
        Geometry::new(format, 64 - t0sz, start, oa_bits)
    }

    /// A VTCR_EL2 value describing this geometry, with inner-shareable,
    /// write-back table walks (the value KVM programs, without VMID or
    /// hardware-feature bits). With LPA2 the SH0 field is the leaves'
    /// shareability too: inner, as pgwalk's leaves have without LPA2.
    pub fn vtcr(&self) -> u64 {
        let format = self.format;
        let t0sz = u64::from(64 - self.ia_bits);
        let level = self.start_level.get();
        let (sl0, sl2) = match format.granule() {
            Granule::Size4KiB if level == -1 => (0, SL2),
            Granule::Size4KiB => ((2 - level) as u64, 0),
            _ => ((3 - level) as u64, 0),
        };
        // A geometry only holds output sizes PS encodes.
        let ps = ps_from_oa_bits(self.oa_bits).unwrap_or(0);
        let ds = if format.lpa2() { DS } else { 0 };
        RES1 | t0sz
            | sl0 << 6
            | 0b01 << 8 // IRGN0: write-back, write-allocate
            | 0b01 << 10 // ORGN0: write-back, write-allocate
            | 0b11 << 12 // SH0: inner shareable
            | format.granule().tg0() << 14
            | ps << 16
            | ds
            | sl2
    }
}

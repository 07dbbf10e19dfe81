//! VTCR_EL2 decoded once per value, not once per call.
//!
//! Every `kvm_pgtable_stage2_*` call reads the table's geometry from
//! `mmu->vtcr`, and decoding and checking it was a fifth of a one-page
//! call's instructions. A VM passes the same value on every call, so each
//! thread keeps the last value it decoded with its geometry and decodes
//! again only when the value differs. The answer is a pure function of
//! the value, so nothing the C side may change between calls (`mmu`,
//! `mmu->vtcr`, `ia_bits`, `start_level`) is trusted from an earlier call:
//! the value is read and compared every time, and `ia_bits` and
//! `start_level` are checked against the geometry every time.
//!
//! The freestanding build has no thread-local of its own to keep it in
//! and decodes on every call.

use core::ffi::c_int;

use pgwalk::geometry::Geometry;

use crate::errno::PGW_EINVAL;

/// The geometry `vtcr` describes, `-PGW_EINVAL` for one pgwalk refuses.
#[cfg(feature = "std")]
pub(crate) fn geometry(vtcr: u64) -> Result<Geometry, c_int> {
    use core::cell::Cell;

    std::thread_local! {
        /// The last valid value this thread decoded, and its geometry.
        static LAST: Cell<Option<(u64, Geometry)>> = const { Cell::new(None) };
    }
    LAST.with(|last| match last.get() {
        Some((seen, g)) if seen == vtcr => Ok(g),
        _ => {
            let g = decode(vtcr)?;
            last.set(Some((vtcr, g)));
            Ok(g)
        }
    })
}

/// The geometry `vtcr` describes, `-PGW_EINVAL` for one pgwalk refuses.
#[cfg(not(feature = "std"))]
pub(crate) fn geometry(vtcr: u64) -> Result<Geometry, c_int> {
    decode(vtcr)
}

fn decode(vtcr: u64) -> Result<Geometry, c_int> {
    Geometry::from_vtcr(vtcr).map_err(|_| -PGW_EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalk::geometry::{Granule, Level, TableFormat};

    #[test]
    fn every_value_gets_its_own_geometry() {
        let four = Geometry::new(TableFormat::FOUR_KIB, 40, Level::new(1).unwrap(), 40).unwrap();
        let sixteen = Geometry::new(Granule::Size16KiB, 36, Level::new(2).unwrap(), 40).unwrap();
        let (a, b) = (four.vtcr(), sixteen.vtcr());
        assert_eq!(geometry(a), Ok(four));
        assert_eq!(geometry(a), Ok(four), "remembered");
        assert_eq!(geometry(b), Ok(sixteen), "another value is decoded");
        // T0SZ 63: an input size pgwalk refuses, right after a valid one,
        // and the valid one is still told apart afterwards.
        assert_eq!(geometry(b | 0x3f), Err(-PGW_EINVAL));
        assert_eq!(geometry(b), Ok(sixteen));
        assert_eq!(
            geometry(b | 0x3f),
            Err(-PGW_EINVAL),
            "refusals are not remembered as valid"
        );
        assert_eq!(geometry(a), Ok(four));
    }

    #[test]
    fn agrees_with_decoding_for_every_field_value() {
        // T0SZ, SL0, TG0, PS, SL2 and DS: every combination, twice each, so
        // that the second answer comes from the remembered value.
        for fields in 0u64..(1 << 15) {
            let vtcr = (fields & 0x3f)
                | (fields >> 6 & 0b11) << 6
                | (fields >> 8 & 0b11) << 14
                | (fields >> 10 & 0b111) << 16
                | (fields >> 13 & 1) << 32
                | (fields >> 14 & 1) << 33;
            let want = decode(vtcr);
            assert_eq!(geometry(vtcr), want, "{vtcr:#x}");
            assert_eq!(geometry(vtcr), want, "{vtcr:#x}, again");
        }
    }
}

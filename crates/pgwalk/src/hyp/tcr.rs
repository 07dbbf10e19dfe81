//! EL2 stage-1 geometry, as TCR_EL2 describes it (the non-VHE format: one
//! VA range through TTBR0_EL2).
//!
//! Stage 1 has no SL0: the walk starts at the level that leaves the root
//! with at most one table page of entries, which the VA size (`64 - T0SZ`)
//! and the granule (TG0) fix. So there is no concatenated root either.

use crate::error::Error;
use crate::geometry::{Geometry, Granule, Level};

/// TCR_EL2 fields (Arm ARM, TCR_EL2 when HCR_EL2.E2H is 0).
const T0SZ_MASK: u64 = 0x3f;
const TG0_SHIFT: u32 = 14;
const PS_SHIFT: u32 = 16;
const RES1: u64 = 1 << 31 | 1 << 23;
const DS: u64 = 1 << 32;

/// Smallest VA size: T0SZ at most 39, the bound without FEAT_TTST.
const MIN_VA_BITS: u8 = 25;
/// Largest VA size without FEAT_LVA or LPA2.
const MAX_VA_BITS: u8 = 48;

/// The granules the walk engine supports so far. The decoding below is
/// written for all three; only this list changes when the engine grows.
const fn walker_supports(granule: Granule) -> bool {
    matches!(granule, Granule::Size4KiB)
}

/// The output sizes PS encodes without FEAT_LPA (bits).
fn ps_bits(ps: u64) -> Result<u8, Error> {
    Ok(match ps {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => return Err(Error::Geometry("PS above 48 bits is not supported")),
    })
}

fn ps_field(oa_bits: u8) -> Result<u64, Error> {
    Ok(match oa_bits {
        32 => 0,
        36 => 1,
        40 => 2,
        42 => 3,
        44 => 4,
        48 => 5,
        _ => {
            return Err(Error::Geometry(
                "the output size must be 32, 36, 40, 42, 44 or 48 bits",
            ))
        }
    })
}

impl Geometry {
    /// The EL2 stage-1 geometry for a VA size and granule: the walk starts
    /// at the level where the root needs at most one table page (Linux's
    /// `ARM64_HW_PGTABLE_LEVELS(va_bits)` levels, as `kvm_pgtable_hyp_init`
    /// computes them).
    ///
    /// `va_bits` may be 25 to 48 (T0SZ 16 to 39: beyond need FEAT_TTST or
    /// LPA2), `oa_bits` one of the PS sizes 32, 36, 40, 42, 44, 48; unlike
    /// at stage 2, the VA size may exceed the output size.
    pub fn for_va_bits(granule: Granule, va_bits: u8, oa_bits: u8) -> Result<Geometry, Error> {
        if !walker_supports(granule) {
            return Err(Error::Geometry(
                "only the 4 KiB granule is supported (16 KiB and 64 KiB are planned)",
            ));
        }
        if !(MIN_VA_BITS..=MAX_VA_BITS).contains(&va_bits) {
            return Err(Error::Geometry(
                "the EL2 VA size must be 25 to 48 bits (T0SZ 16 to 39)",
            ));
        }
        ps_field(oa_bits)?;
        let page = granule.shift() as u8;
        let per_level = granule.bits_per_level() as u8;
        let levels = (va_bits - page).div_ceil(per_level) as i8;
        let start = Level::new(Level::LAST.get() + 1 - levels)
            .ok_or(Error::Geometry("the VA size needs more levels than exist"))?;
        Ok(Geometry::from_checked_parts(
            granule, va_bits, start, oa_bits,
        ))
    }

    /// Decodes TCR_EL2 (the non-VHE format): T0SZ (VA size), TG0
    /// (granule) and PS (output size); the start level follows from them
    /// (see [`for_va_bits`](Self::for_va_bits)). The other fields (cache
    /// and shareability of table walks, TBI, HA/HD) say nothing about the
    /// table's shape and are not checked; DS (LPA2) is refused.
    pub fn from_tcr_el2(tcr: u64) -> Result<Geometry, Error> {
        if tcr & DS != 0 {
            return Err(Error::Geometry("TCR_EL2.DS (LPA2) is not supported"));
        }
        let t0sz = (tcr & T0SZ_MASK) as u8;
        let granule = match (tcr >> TG0_SHIFT) & 0b11 {
            0b00 => Granule::Size4KiB,
            0b01 => Granule::Size64KiB,
            0b10 => Granule::Size16KiB,
            _ => return Err(Error::Geometry("TG0 = 0b11 is reserved")),
        };
        let oa_bits = ps_bits((tcr >> PS_SHIFT) & 0b111)?;
        Geometry::for_va_bits(granule, 64 - t0sz, oa_bits)
    }

    /// A TCR_EL2 value (non-VHE format) describing this geometry, with
    /// write-back, write-allocate, inner-shareable table walks and the RES1
    /// bits 23 and 31 set (the value Linux's `__kvm_hyp_init` programs,
    /// without TBI or hardware flag updates).
    pub fn tcr_el2(&self) -> u64 {
        let tg0: u64 = match self.granule() {
            Granule::Size4KiB => 0b00,
            Granule::Size64KiB => 0b01,
            Granule::Size16KiB => 0b10,
        };
        // Every geometry a hyp table accepts has a PS size (`for_va_bits`).
        let ps = ps_field(self.oa_bits()).unwrap_or(0b101);
        RES1 | u64::from(64 - self.ia_bits())
            | 0b01 << 8 // IRGN0: write-back, write-allocate
            | 0b01 << 10 // ORGN0: write-back, write-allocate
            | 0b11 << 12 // SH0: inner shareable
            | tg0 << TG0_SHIFT
            | ps << PS_SHIFT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_levels_are_linuxs() {
        // ARM64_HW_PGTABLE_LEVELS(va) = (va - 4) / 9 for 4 KiB pages.
        for va in MIN_VA_BITS..=MAX_VA_BITS {
            let g = Geometry::for_va_bits(Granule::Size4KiB, va, 48).unwrap();
            let levels = (i32::from(va) - 4) / 9;
            assert_eq!(i32::from(g.start_level().get()), 4 - levels, "va {va}");
            assert_eq!(g.root_pages(), 1, "va {va}");
            assert!(g.root_entries() <= 512 && g.root_entries() >= 2, "va {va}");
        }
        let g = Geometry::for_va_bits(Granule::Size4KiB, 32, 40).unwrap();
        assert_eq!((g.start_level().get(), g.root_entries()), (1, 4));
    }

    #[test]
    fn tcr_round_trips() {
        for (va, oa) in [(48, 48), (39, 40), (32, 36), (25, 32), (48, 40)] {
            let g = Geometry::for_va_bits(Granule::Size4KiB, va, oa).unwrap();
            let tcr = g.tcr_el2();
            assert_eq!(tcr & 0x3f, u64::from(64 - va));
            assert_eq!(Geometry::from_tcr_el2(tcr).unwrap(), g);
        }
        // The value the hand-written hypervisor table used: 32-bit VA,
        // PS 40 bits.
        let g = Geometry::from_tcr_el2(32 | 0b01 << 8 | 0b01 << 10 | 0b11 << 12 | 2 << 16 | RES1)
            .unwrap();
        assert_eq!(
            (g.ia_bits(), g.oa_bits(), g.start_level().get()),
            (32, 40, 1)
        );
    }

    #[test]
    fn bad_tcrs_are_refused() {
        let ok = Geometry::for_va_bits(Granule::Size4KiB, 39, 40)
            .unwrap()
            .tcr_el2();
        let t0sz = |n: u64| ok & !T0SZ_MASK | n;
        assert!(Geometry::from_tcr_el2(t0sz(15)).is_err()); // 49 bits
        assert!(Geometry::from_tcr_el2(t0sz(40)).is_err()); // 24 bits
        assert!(Geometry::from_tcr_el2(ok | DS).is_err());
        assert!(Geometry::from_tcr_el2(ok | 0b11 << TG0_SHIFT).is_err());
        assert!(Geometry::from_tcr_el2(ok | 0b111 << PS_SHIFT).is_err());
        // Other granules decode, and wait for the walker.
        assert!(Geometry::from_tcr_el2(ok | 0b10 << TG0_SHIFT).is_err());
        assert!(Geometry::for_va_bits(Granule::Size4KiB, 39, 39).is_err());
    }
}

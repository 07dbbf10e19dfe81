//! EL2 stage-1 geometry, as TCR_EL2 describes it (the non-VHE format: one
//! VA range through TTBR0_EL2).
//!
//! Stage 1 has no SL0: the walk starts at the level that leaves the root
//! with at most one table page of entries, which the VA size (`64 - T0SZ`)
//! and the granule (TG0) fix. So there is no concatenated root either.

use crate::error::Error;
use crate::geometry::{oa_bits_from_ps, ps_from_oa_bits, Geometry, Level, TableFormat};

/// TCR_EL2 fields (Arm ARM, TCR_EL2 when HCR_EL2.E2H is 0).
const T0SZ_MASK: u64 = 0x3f;
const TG0_SHIFT: u32 = 14;
const PS_SHIFT: u32 = 16;
const RES1: u64 = 1 << 31 | 1 << 23;
const DS: u64 = 1 << 32;

/// Smallest VA size: T0SZ at most 39, the bound without FEAT_TTST.
const MIN_VA_BITS: u8 = 25;

impl Geometry {
    /// The EL2 stage-1 geometry for a VA size in `format` (a
    /// [`TableFormat`], or a [`Granule`](crate::geometry::Granule) for its
    /// format without LPA2): the walk starts at the level where the root
    /// needs at most one table page (Linux's
    /// `ARM64_HW_PGTABLE_LEVELS(va_bits)` levels, as `kvm_pgtable_hyp_init`
    /// computes them for its `PAGE_SIZE`).
    ///
    /// `va_bits` may be 25 to 48 (T0SZ 16 to 39: smaller VA sizes need
    /// FEAT_TTST), and up to 52 with LPA2 (TCR_EL2.DS, 4 and 16 KiB; a
    /// 4 KiB table then starts at level -1) or the 64 KiB granule
    /// (FEAT_LVA); `oa_bits` one of the PS sizes 32, 36, 40, 42, 44, 48, and
    /// 52 with LPA2 or 64 KiB (FEAT_LPA). Unlike at stage 2, the VA size may
    /// exceed the output size.
    pub fn for_va_bits(
        format: impl Into<TableFormat>,
        va_bits: u8,
        oa_bits: u8,
    ) -> Result<Geometry, Error> {
        let format = format.into();
        if va_bits < MIN_VA_BITS {
            return Err(Error::Geometry(
                "EL2 VA sizes below 25 bits (T0SZ above 39) need FEAT_TTST, which pgwalk does not support",
            ));
        }
        if va_bits > format.max_oa_bits() {
            return Err(Error::Geometry(if format.max_oa_bits() < 52 {
                "EL2 VA sizes above 48 bits (T0SZ below 16) need the 64 KiB granule (FEAT_LVA) or LPA2 (TCR_EL2.DS = 1)"
            } else {
                "EL2 VA sizes above 52 bits (T0SZ below 12) do not exist"
            }));
        }
        ps_from_oa_bits(oa_bits)?;
        if oa_bits > format.max_oa_bits() {
            return Err(Error::Geometry(
                "a 52-bit output size needs the 64 KiB granule (FEAT_LPA) or LPA2 (TCR_EL2.DS = 1)",
            ));
        }
        let granule = format.granule();
        // ARM64_HW_PGTABLE_LEVELS: each level resolves `shift - 3` bits
        // above the page offset.
        let levels = (va_bits - 4) / (granule.shift() as u8 - 3);
        let start = Level::new(Level::LAST.get() + 1 - levels as i8)
            .filter(|l| *l >= format.first_level())
            .ok_or(Error::Geometry(
                "the VA size needs more levels than the format has",
            ))?;
        Ok(Geometry::from_checked_parts(
            format, va_bits, start, oa_bits,
        ))
    }

    /// Decodes TCR_EL2 (the non-VHE format): T0SZ (VA size), TG0
    /// (granule), DS (LPA2) and PS (output size); the start level follows
    /// from them (see [`for_va_bits`](Self::for_va_bits)). The other fields
    /// (cache and shareability of table walks, TBI, HA/HD) say nothing
    /// about the table's shape and are not checked.
    pub fn from_tcr_el2(tcr: u64) -> Result<Geometry, Error> {
        let t0sz = (tcr & T0SZ_MASK) as u8;
        let format = TableFormat::from_tg0_ds((tcr >> TG0_SHIFT) & 0b11, tcr & DS != 0)?;
        let oa_bits = oa_bits_from_ps((tcr >> PS_SHIFT) & 0b111)?;
        Geometry::for_va_bits(format, 64 - t0sz, oa_bits)
    }

    /// A TCR_EL2 value (non-VHE format) describing this geometry, with
    /// write-back, write-allocate, inner-shareable table walks (with LPA2
    /// SH0 is the leaves' shareability too), DS for LPA2, and the RES1 bits
    /// 23 and 31 set (the value Linux's `__kvm_hyp_init` programs, without
    /// TBI or hardware flag updates).
    pub fn tcr_el2(&self) -> u64 {
        // Every geometry a hyp table accepts has a PS size (`for_va_bits`).
        let ps = ps_from_oa_bits(self.oa_bits()).unwrap_or(0b101);
        let ds = if self.lpa2() { DS } else { 0 };
        RES1 | u64::from(64 - self.ia_bits())
            | 0b01 << 8 // IRGN0: write-back, write-allocate
            | 0b01 << 10 // ORGN0: write-back, write-allocate
            | 0b11 << 12 // SH0: inner shareable
            | self.granule().tg0() << TG0_SHIFT
            | ps << PS_SHIFT
            | ds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Granule;

    fn formats() -> [TableFormat; 5] {
        [
            Granule::Size4KiB.into(),
            Granule::Size16KiB.into(),
            Granule::Size64KiB.into(),
            TableFormat::new(Granule::Size4KiB, true).unwrap(),
            TableFormat::new(Granule::Size16KiB, true).unwrap(),
        ]
    }

    #[test]
    fn start_levels_are_linuxs() {
        for f in formats() {
            let page = f.granule().shift();
            for va in MIN_VA_BITS..=f.max_oa_bits() {
                let g = Geometry::for_va_bits(f, va, 48).unwrap();
                // ARM64_HW_PGTABLE_LEVELS(va) = (va - 4) / (PAGE_SHIFT - 3).
                let levels = (i32::from(va) - 4) / (page as i32 - 3);
                assert_eq!(i32::from(g.start_level().get()), 4 - levels, "{f} va {va}");
                assert_eq!(g.root_pages(), 1, "{f} va {va}");
                let entries = g.root_entries();
                assert!(
                    entries <= f.granule().entries() && entries >= 2,
                    "{f} va {va}"
                );
            }
        }
        let g = Geometry::for_va_bits(Granule::Size4KiB, 32, 40).unwrap();
        assert_eq!((g.start_level().get(), g.root_entries()), (1, 4));
        // 52 bits: level -1 with 4 KiB and LPA2 (16 entries), level 0 with
        // 16 KiB and LPA2 (32), level 1 with 64 KiB (1024).
        let [_, _, k64, k4_lpa2, k16_lpa2] = formats();
        for (f, level, entries) in [(k4_lpa2, -1, 16), (k16_lpa2, 0, 32), (k64, 1, 1024)] {
            let g = Geometry::for_va_bits(f, 52, 52).unwrap();
            assert_eq!(
                (g.start_level().get(), g.root_entries()),
                (level, entries),
                "{f}"
            );
        }
        // 16 KiB at 48 bits starts at level 0, with two entries, LPA2 or not.
        let g = Geometry::for_va_bits(Granule::Size16KiB, 48, 48).unwrap();
        assert_eq!((g.start_level().get(), g.root_entries()), (0, 2));
    }

    #[test]
    fn tcr_round_trips() {
        for f in formats() {
            for (va, oa) in [(48, 48), (39, 40), (32, 36), (25, 32), (48, 40), (52, 52)] {
                let Ok(g) = Geometry::for_va_bits(f, va, oa) else {
                    assert!(
                        va > f.max_oa_bits() || oa > f.max_oa_bits(),
                        "{f} {va} {oa}"
                    );
                    continue;
                };
                let tcr = g.tcr_el2();
                assert_eq!(tcr & 0x3f, u64::from(64 - va));
                assert_eq!(tcr & DS != 0, f.lpa2());
                assert_eq!(
                    TableFormat::from_tg0_ds(tcr >> TG0_SHIFT & 3, f.lpa2()),
                    Ok(f)
                );
                assert_eq!(Geometry::from_tcr_el2(tcr).unwrap(), g, "{f} {va} {oa}");
            }
        }
        // The value the hand-written hypervisor table used: 32-bit VA,
        // PS 40 bits.
        let g = Geometry::from_tcr_el2(32 | 0b01 << 8 | 0b01 << 10 | 0b11 << 12 | 2 << 16 | RES1)
            .unwrap();
        assert_eq!(
            (g.ia_bits(), g.oa_bits(), g.start_level().get()),
            (32, 40, 1)
        );
        // Linux's 64 KiB, 42-bit VA hypervisor: TG0 = 0b01, two levels.
        let g = Geometry::from_tcr_el2(RES1 | 22 | 0b01 << TG0_SHIFT | 5 << PS_SHIFT).unwrap();
        assert_eq!(
            (g.granule(), g.start_level().get()),
            (Granule::Size64KiB, 2)
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
        assert!(Geometry::from_tcr_el2(t0sz(15) | DS).is_ok()); // LPA2
        assert!(Geometry::from_tcr_el2(t0sz(11) | DS).is_err()); // 53 bits
        assert!(Geometry::from_tcr_el2(ok | 0b11 << TG0_SHIFT).is_err());
        assert!(Geometry::from_tcr_el2(ok | 0b111 << PS_SHIFT).is_err());
        // PS = 52 bits needs LPA2 or 64 KiB; DS does not exist for 64 KiB.
        let ps52 = ok & !(0b111 << PS_SHIFT) | 0b110 << PS_SHIFT;
        assert!(Geometry::from_tcr_el2(ps52).is_err());
        assert!(Geometry::from_tcr_el2(ps52 | DS).is_ok());
        assert!(Geometry::from_tcr_el2(ps52 | 0b01 << TG0_SHIFT).is_ok());
        assert!(Geometry::from_tcr_el2(ok | 0b01 << TG0_SHIFT | DS).is_err());
        // Other granules decode.
        let g = Geometry::from_tcr_el2(ok | 0b10 << TG0_SHIFT).unwrap();
        assert_eq!(
            (g.granule(), g.start_level().get()),
            (Granule::Size16KiB, 1)
        );
        assert!(Geometry::for_va_bits(Granule::Size4KiB, 39, 39).is_err());
    }
}

//! Checks of the arguments operations are given, before anything changes.

use crate::addr::{Ipa, PhysAddr};
use crate::error::Error;
use crate::geometry::Geometry;
use crate::walk::CheckedRange;

/// Checks an IPA range an operation was given: page-aligned, non-empty,
/// inside the input space. The range it returns is what the operation's
/// walk may then take without checking it again.
#[inline]
pub(crate) fn check_range(
    geometry: &Geometry,
    addr: Ipa,
    size: u64,
) -> Result<CheckedRange, Error> {
    CheckedRange::new(geometry, addr, size)
}

/// Checks what every map is given before its attributes: the range (as
/// [`check_range`]), then `phys`, which must be aligned to the granule and
/// end inside the output address size. Stage 2, the kvm layer and EL2
/// stage 1 give the same errors in the same order.
#[inline]
pub(crate) fn check_map(
    geometry: &Geometry,
    addr: Ipa,
    size: u64,
    phys: PhysAddr,
) -> Result<CheckedRange, Error> {
    let range = check_range(geometry, addr, size)?;
    let granule = geometry.granule().size();
    if !phys.is_aligned(granule) {
        return Err(Error::Misaligned {
            what: "physical address",
            value: phys.get(),
            granule,
        });
    }
    check_output(geometry, phys, size)?;
    Ok(range)
}

/// Checks that `phys..phys + size` fits the output address size.
pub(crate) fn check_output(geometry: &Geometry, phys: PhysAddr, size: u64) -> Result<(), Error> {
    let last = phys.get().checked_add(size - 1);
    match last {
        Some(last) if last >> geometry.oa_bits() == 0 => Ok(()),
        _ => Err(Error::OutputTooLarge {
            pa: last.unwrap_or(u64::MAX),
            oa_bits: geometry.oa_bits(),
        }),
    }
}

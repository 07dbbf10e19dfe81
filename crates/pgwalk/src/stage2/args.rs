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

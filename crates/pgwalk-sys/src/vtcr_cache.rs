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
//! A signal handler that interrupts a call and calls the library itself
//! decodes for itself (see `Last::busy`). The freestanding build has no
//! thread-local of its own to keep the value in and decodes on every call.

use core::ffi::c_int;

use pgwalk::geometry::Geometry;

use crate::errno::PGW_EINVAL;

/// A thread's remembered value.
#[cfg(feature = "std")]
struct Last {
    /// Set while a call reads or writes `entry`. A signal handler that
    /// interrupts this thread meanwhile and calls the library finds it set
    /// and decodes for itself, leaving `entry` alone: it never reads a
    /// half-written entry, nor writes one that is being read.
    busy: core::sync::atomic::AtomicBool,
    /// The last valid value this thread decoded, and its geometry.
    entry: core::cell::Cell<Option<(u64, Geometry)>>,
}

#[cfg(feature = "std")]
std::thread_local! {
    static LAST: Last = const {
        Last {
            busy: core::sync::atomic::AtomicBool::new(false),
            entry: core::cell::Cell::new(None),
        }
    };
}

/// The geometry `vtcr` describes, `-PGW_EINVAL` for one pgwalk refuses.
#[cfg(feature = "std")]
pub(crate) fn geometry(vtcr: u64) -> Result<Geometry, c_int> {
    use core::sync::atomic::{compiler_fence, Ordering::Relaxed, Ordering::SeqCst};

    LAST.with(|last| {
        if last.busy.load(Relaxed) {
            return decode(vtcr);
        }
        // A handler running between the load and this store finishes
        // before it and leaves `busy` clear, as it found it.
        last.busy.store(true, Relaxed);
        compiler_fence(SeqCst);
        let g = match last.entry.get() {
            Some((seen, g)) if seen == vtcr => Ok(g),
            _ => decode(vtcr).inspect(|&g| last.entry.set(Some((vtcr, g)))),
        };
        compiler_fence(SeqCst);
        last.busy.store(false, Relaxed);
        g
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
    fn a_call_interrupting_another_leaves_the_entry_alone() {
        let four = Geometry::new(TableFormat::FOUR_KIB, 40, Level::new(1).unwrap(), 40).unwrap();
        let sixteen = Geometry::new(Granule::Size16KiB, 36, Level::new(2).unwrap(), 40).unwrap();
        assert_eq!(geometry(four.vtcr()), Ok(four));
        // As a signal handler finds it when it interrupts a call that is
        // reading or writing the entry.
        LAST.with(|l| l.busy.store(true, core::sync::atomic::Ordering::Relaxed));
        assert_eq!(geometry(sixteen.vtcr()), Ok(sixteen), "decoded");
        LAST.with(|l| {
            assert!(
                l.busy.load(core::sync::atomic::Ordering::Relaxed),
                "still the interrupted call's"
            );
            assert_eq!(l.entry.get(), Some((four.vtcr(), four)), "not overwritten");
            l.busy.store(false, core::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(geometry(sixteen.vtcr()), Ok(sixteen));
        LAST.with(|l| assert_eq!(l.entry.get(), Some((sixteen.vtcr(), sixteen))));
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

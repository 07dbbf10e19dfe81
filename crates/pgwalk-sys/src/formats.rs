//! Which table format each `struct kvm_pgtable_mm_ops` serves.
//!
//! `kvm_pgtable_stage2_free_unlinked(mm_ops, pgtable, level)` has no VTCR
//! to read the granule (how many entries a table page holds) and LPA2
//! (where table descriptors keep their address) from: the kernel knows
//! them at build time (`PAGE_SIZE`, and one LPA2 setting for the system).
//! pgwalk takes them from VTCR_EL2 per table, so it records them per
//! `mm_ops` instead: the first `__kvm_pgtable_stage2_init` (or hyp table
//! initialisation) with an `mm_ops` binds it to its table's format, and a
//! later one with another format is refused. That is the kernel's
//! arrangement too, where one set of callbacks allocates `PAGE_SIZE` pages
//! for every VM and for the hypervisor's own tables, all with the
//! system's LPA2 setting; a host with tables of several formats gives each
//! format its own `mm_ops` (the callbacks may be the same functions).
//!
//! Hyp tables need the binding more still: `struct kvm_pgtable` records
//! no format, and a hyp table has no VTCR either, so every hyp call reads
//! the table's format from its `mm_ops`.

use core::ffi::c_int;

use pgwalk::geometry::TableFormat;

use crate::abi::kvm_pgtable_mm_ops;
use crate::errno::{PGW_EINVAL, PGW_ENOMEM};

/// How many `mm_ops` the library tells apart. A fixed table, so that the
/// freestanding library needs no allocator; a host has a handful (one per
/// format it uses, and KVM has one for all its tables).
pub const PGW_MAX_MM_OPS: usize = 64;

/// `mm_ops` addresses and their formats, in the order they were bound.
struct Bindings<const N: usize>([Option<(usize, TableFormat)>; N]);

impl<const N: usize> Bindings<N> {
    const fn new() -> Self {
        Bindings([None; N])
    }

    fn bind(&mut self, key: usize, format: TableFormat) -> Result<(), c_int> {
        for slot in self.0.iter_mut() {
            match *slot {
                Some((ops, bound)) if ops == key => {
                    return if bound == format {
                        Ok(())
                    } else {
                        Err(-PGW_EINVAL)
                    };
                }
                Some(_) => {}
                None => {
                    *slot = Some((key, format));
                    return Ok(());
                }
            }
        }
        Err(-PGW_ENOMEM)
    }

    fn bound(&self, key: usize) -> Option<TableFormat> {
        self.0
            .iter()
            .map_while(|slot| *slot)
            .find(|&(ops, _)| ops == key)
            .map(|(_, format)| format)
    }
}

/// Entries are never removed: an unlinked table may be freed after its
/// table is destroyed.
static FORMATS: spin::RwLock<Bindings<PGW_MAX_MM_OPS>> = spin::RwLock::new(Bindings::new());

/// Binds `mm_ops` to `format`, or checks that it is bound to it already:
/// `-PGW_EINVAL` if it serves another format, `-PGW_ENOMEM` when
/// `PGW_MAX_MM_OPS` others are bound already.
pub(crate) fn bind(mm_ops: *const kvm_pgtable_mm_ops, format: TableFormat) -> Result<(), c_int> {
    FORMATS.write().bind(mm_ops as usize, format)
}

/// The format `mm_ops` was bound to by an initialisation, if any.
pub(crate) fn bound(mm_ops: *const kvm_pgtable_mm_ops) -> Option<TableFormat> {
    FORMATS.read().bound(mm_ops as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalk::geometry::Granule;

    #[test]
    fn an_mm_ops_serves_one_format() {
        // Addresses no real `mm_ops` has: the test owns them.
        let a = 0x10 as *const kvm_pgtable_mm_ops;
        let b = 0x20 as *const kvm_pgtable_mm_ops;
        let lpa2 = TableFormat::new(Granule::Size4KiB, true).unwrap();
        assert_eq!(bound(a), None);
        bind(a, TableFormat::FOUR_KIB).unwrap();
        bind(a, TableFormat::FOUR_KIB).unwrap();
        assert_eq!(bind(a, lpa2), Err(-PGW_EINVAL));
        assert_eq!(bind(a, Granule::Size64KiB.into()), Err(-PGW_EINVAL));
        bind(b, lpa2).unwrap();
        assert_eq!(bound(a), Some(TableFormat::FOUR_KIB));
        assert_eq!(bound(b), Some(lpa2));
    }

    #[test]
    fn the_table_of_bindings_is_bounded() {
        let mut b = Bindings::<2>::new();
        let lpa2 = TableFormat::new(Granule::Size4KiB, true).unwrap();
        assert_eq!(b.bind(1, TableFormat::FOUR_KIB), Ok(()));
        assert_eq!(b.bind(2, lpa2), Ok(()));
        assert_eq!(b.bind(3, TableFormat::FOUR_KIB), Err(-PGW_ENOMEM));
        assert_eq!(
            b.bind(1, TableFormat::FOUR_KIB),
            Ok(()),
            "bound stays bound"
        );
        assert_eq!(b.bind(2, TableFormat::FOUR_KIB), Err(-PGW_EINVAL));
        assert_eq!(b.bound(2), Some(lpa2));
        assert_eq!(b.bound(3), None);
    }
}

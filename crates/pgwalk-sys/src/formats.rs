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
use std::sync::Mutex;

use pgwalk::geometry::TableFormat;

use crate::abi::kvm_pgtable_mm_ops;
use crate::errno::PGW_EINVAL;

/// `mm_ops` addresses and their formats. Entries are never removed: an
/// unlinked table may be freed after its table is destroyed, and the set
/// of `mm_ops` a host uses is small.
static FORMATS: Mutex<Vec<(usize, TableFormat)>> = Mutex::new(Vec::new());

fn formats() -> std::sync::MutexGuard<'static, Vec<(usize, TableFormat)>> {
    // A panic under the lock cannot leave the list half-changed: it is
    // only ever pushed to.
    FORMATS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Binds `mm_ops` to `format`, or checks that it is bound to it already:
/// `-PGW_EINVAL` if it serves another format.
pub(crate) fn bind(mm_ops: *const kvm_pgtable_mm_ops, format: TableFormat) -> Result<(), c_int> {
    let mut formats = formats();
    match formats.iter().find(|(ops, _)| *ops == mm_ops as usize) {
        Some(&(_, bound)) if bound == format => Ok(()),
        Some(_) => Err(-PGW_EINVAL),
        None => {
            formats.push((mm_ops as usize, format));
            Ok(())
        }
    }
}

/// The format `mm_ops` was bound to by an initialisation, if any.
pub(crate) fn bound(mm_ops: *const kvm_pgtable_mm_ops) -> Option<TableFormat> {
    formats()
        .iter()
        .find(|(ops, _)| *ops == mm_ops as usize)
        .map(|&(_, format)| format)
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
}

//! Which callbacks each operation may call, memory and TLB, checked before
//! it changes anything.
//!
//! The kernel calls a callback only where an operation needs it, and its
//! own hosts leave out the ones their operations never reach: pKVM's host
//! stage-2 has no `free_pages_exact` (it is never destroyed), and in 6.12
//! pKVM's guest tables, only ever initialised and destroyed, have no
//! `free_unlinked_table`. Requiring all of them would refuse those tables
//! outright; checking none would let an operation stop halfway, its table
//! changed, at the first callback it finds missing. So each call checks
//! the callbacks its operation may call, and only those, before it starts:
//! a missing one is `-PGW_EINVAL` with nothing changed.
//!
//! The MMU's TLB callbacks likewise: initialisation requires all but the
//! local one, and so does every operation that may invalidate a range or
//! the VMID; `relax_perms` needs the broadcast invalidation by address
//! (the local one is optional: it falls back to the broadcast one);
//! lookups, walks and the attribute changes that leave invalidation to
//! their caller call none (the checks a running VM's most frequent calls
//! skip).

use crate::abi::{kvm_pgtable_mm_ops, kvm_s2_mmu};

/// An operation's memory callbacks besides `phys_to_virt` and
/// `virt_to_phys`, which every call makes (the second for the root). The
/// two cache callbacks are optional everywhere, as in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Walks and attribute changes (`get_leaf`, `walk`, `wrprotect`,
    /// `mkyoung`, `test_clear_young`, `flush`): entries change but none
    /// comes or goes, so no count moves, and the TLB is the caller's.
    Conversions,
    /// `relax_perms`: as [`Conversions`](Needs::Conversions), and the TLB
    /// entry of the page invalidated on this CPU: `tlb_flush_vmid_ipa`,
    /// which stands in for the optional `tlb_flush_vmid_ipa_nsh`.
    Relax,
    /// Initialisation: `zalloc_pages_exact` for the root. (A root it cannot
    /// use, beyond the output size, goes back through `free_pages_exact`
    /// if the host has it.)
    Root,
    /// Map, `set_owner` and the fault path's map (and a binding, which is
    /// for the fault path): `zalloc_page` for tables, `get_page` and
    /// `put_page` for counts, `free_unlinked_table` for a table a block
    /// replaces.
    Map,
    /// Unmap: `put_page` and `page_count`, to drop entries and free the
    /// tables they emptied.
    Unmap,
    /// Split and `create_unlinked`: `zalloc_page`, `get_page`, and
    /// `put_page` to give back what a failed split built.
    Split,
    /// Destroy: `put_page` for every table page, `free_pages_exact` for the
    /// root.
    Destroy,
    /// `kvm_pgtable_stage2_free_unlinked`: `put_page`.
    FreeUnlinked,
}

impl Needs {
    /// Whether `ops` has every callback this operation may call.
    // Inlined with a constant `self`, this is a few tests of the callbacks
    // the operation uses, not of all eleven.
    #[inline(always)]
    pub(crate) fn met_by(self, ops: &kvm_pgtable_mm_ops) -> bool {
        let conversions = ops.phys_to_virt.is_some() & ops.virt_to_phys.is_some();
        let counts = ops.get_page.is_some() & ops.put_page.is_some();
        conversions
            & match self {
                Needs::Conversions | Needs::Relax => true,
                Needs::Root => ops.zalloc_pages_exact.is_some(),
                Needs::Map => {
                    counts & ops.zalloc_page.is_some() & ops.free_unlinked_table.is_some()
                }
                Needs::Unmap => ops.put_page.is_some() & ops.page_count.is_some(),
                Needs::Split => counts & ops.zalloc_page.is_some(),
                Needs::Destroy => ops.put_page.is_some() & ops.free_pages_exact.is_some(),
                Needs::FreeUnlinked => ops.put_page.is_some(),
            }
    }

    /// Whether the operation reads the table's `flags` and `force_pte_cb`
    /// (map, `set_owner`, the fault path's map, a binding for it), so that
    /// a kept view must be given the call's own.
    #[inline(always)]
    pub(crate) fn reads_map_fields(self) -> bool {
        matches!(self, Needs::Map)
    }

    /// Whether `mmu` has every TLB callback this operation may call.
    #[inline(always)]
    pub(crate) fn tlb_met_by(self, mmu: &kvm_s2_mmu) -> bool {
        match self {
            Needs::Conversions => true,
            Needs::Relax => mmu.tlb_flush_vmid_ipa.is_some(),
            Needs::Root
            | Needs::Map
            | Needs::Unmap
            | Needs::Split
            | Needs::Destroy
            | Needs::FreeUnlinked => {
                mmu.tlb_flush_vmid_ipa.is_some()
                    & mmu.tlb_flush_vmid_range.is_some()
                    & mmu.tlb_flush_vmid.is_some()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Needs;
    use crate::abi::{kvm_pgtable_mm_ops, kvm_s2_mmu};

    unsafe extern "C" fn zalloc(_: *mut core::ffi::c_void) -> *mut core::ffi::c_void {
        core::ptr::null_mut()
    }
    unsafe extern "C" fn page(_: *mut core::ffi::c_void) {}
    unsafe extern "C" fn count(_: *mut core::ffi::c_void) -> core::ffi::c_int {
        1
    }
    unsafe extern "C" fn p2v(_: u64) -> *mut core::ffi::c_void {
        core::ptr::null_mut()
    }
    unsafe extern "C" fn v2p(_: *mut core::ffi::c_void) -> u64 {
        0
    }
    unsafe extern "C" fn exact(_: usize) -> *mut core::ffi::c_void {
        core::ptr::null_mut()
    }
    unsafe extern "C" fn free_exact(_: *mut core::ffi::c_void, _: usize) {}
    unsafe extern "C" fn unlinked(_: *mut core::ffi::c_void, _: i8) {}

    fn all() -> kvm_pgtable_mm_ops {
        kvm_pgtable_mm_ops {
            zalloc_page: Some(zalloc),
            zalloc_pages_exact: Some(exact),
            free_pages_exact: Some(free_exact),
            free_unlinked_table: Some(unlinked),
            get_page: Some(page),
            put_page: Some(page),
            page_count: Some(count),
            phys_to_virt: Some(p2v),
            virt_to_phys: Some(v2p),
            dcache_clean_inval_poc: None,
            icache_inval_pou: None,
        }
    }

    const EVERY: [Needs; 8] = [
        Needs::Conversions,
        Needs::Relax,
        Needs::Root,
        Needs::Map,
        Needs::Unmap,
        Needs::Split,
        Needs::Destroy,
        Needs::FreeUnlinked,
    ];

    #[test]
    fn every_operation_needs_the_conversions() {
        for needs in EVERY {
            assert!(needs.met_by(&all()), "{needs:?}");
            let mut ops = all();
            ops.phys_to_virt = None;
            assert!(!needs.met_by(&ops), "{needs:?} without phys_to_virt");
            let mut ops = all();
            ops.virt_to_phys = None;
            assert!(!needs.met_by(&ops), "{needs:?} without virt_to_phys");
        }
    }

    #[test]
    fn tlb_callbacks_are_checked_for_the_operations_that_call_them() {
        unsafe extern "C" fn ipa(_: *mut kvm_s2_mmu, _: u64, _: core::ffi::c_int) {}
        unsafe extern "C" fn range(_: *mut kvm_s2_mmu, _: u64, _: u64) {}
        unsafe extern "C" fn vmid(_: *mut kvm_s2_mmu) {}
        let all = || kvm_s2_mmu {
            vtcr: 0,
            pgd_phys: 0,
            pgt: core::ptr::null_mut(),
            tlb_flush_vmid_ipa: Some(ipa),
            tlb_flush_vmid_range: Some(range),
            tlb_flush_vmid: Some(vmid),
            tlb_flush_vmid_ipa_nsh: None,
        };
        let without: [fn(&mut kvm_s2_mmu); 3] = [
            |m| m.tlb_flush_vmid_ipa = None,
            |m| m.tlb_flush_vmid_range = None,
            |m| m.tlb_flush_vmid = None,
        ];
        for needs in EVERY {
            assert!(needs.tlb_met_by(&all()), "{needs:?}");
            for (i, clear) in without.iter().enumerate() {
                let mut m = all();
                clear(&mut m);
                let want = match needs {
                    Needs::Conversions => true,
                    Needs::Relax => i != 0,
                    _ => false,
                };
                assert_eq!(needs.tlb_met_by(&m), want, "{needs:?} without callback {i}");
            }
        }
    }

    #[test]
    fn the_kernels_own_hosts_pass_for_what_they_call() {
        // pKVM's host stage-2: no free_pages_exact.
        let mut host = all();
        host.free_pages_exact = None;
        for needs in [Needs::Root, Needs::Map, Needs::Unmap, Needs::FreeUnlinked] {
            assert!(needs.met_by(&host), "{needs:?}");
        }
        assert!(!Needs::Destroy.met_by(&host));
        // A pKVM guest: no free_unlinked_table.
        let mut guest = all();
        guest.free_unlinked_table = None;
        for needs in [Needs::Root, Needs::Destroy] {
            assert!(needs.met_by(&guest), "{needs:?}");
        }
        assert!(!Needs::Map.met_by(&guest));
    }
}

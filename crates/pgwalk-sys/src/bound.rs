//! A stage-2 table bound once (`pgw_bind_stage2`), for the fault path's
//! calls without the per-call setup.
//!
//! Every `kvm_pgtable_*` and `pgw_stage2_*` call takes a `struct
//! kvm_pgtable *` whose fields, `mm_ops` and MMU the C side may have
//! changed since the last call, so each one checks them again and builds
//! its view of the table: some 300 instructions, as many as the walk of a
//! one-page fault itself. A VM's fault path calls with the same table
//! every time. Binding checks it once and keeps the view in storage of
//! the caller's (`struct pgw_bound_stage2`); the `pgw_bound_*` calls then
//! trust it, as the kernel trusts a `struct kvm_pgtable` after its
//! initialisation.

use core::ffi::{c_int, c_void};
use core::mem::{align_of, size_of};

use crate::abi::{kvm_pgtable, kvm_pte_t, pgw_fault_outcome};
use crate::convert::typed_prot;
use crate::errno::{call, PGW_EFAULT, PGW_EINVAL};
use crate::host::{take_view, Needs, TablePtr, View};
use crate::reentry::on_table;
use crate::typed::{check_fault_map_flags, fault_map, fault_mkyoung, fault_relax, put};

/// 64-bit words of a `struct pgw_bound_stage2`.
pub const PGW_BOUND_STAGE2_WORDS: usize = 32;

/// Storage for a table bound by `pgw_bind_stage2`: opaque, the caller's
/// (on its VM structure, say), as long as the binding is used. It holds
/// no pointer into itself, so it may be copied.
#[repr(C)]
pub struct pgw_bound_stage2 {
    /// Not for the caller: `pgw_bind_stage2` fills it.
    pub opaque: [u64; PGW_BOUND_STAGE2_WORDS],
}

/// What the storage holds once bound (`repr(C)`: the magic comes first).
#[repr(C)]
struct Bound {
    /// [`MAGIC`]: storage that was never bound (zeroed, say) is refused.
    magic: u64,
    pgt: *const kvm_pgtable,
    /// `pgt->pgd` when bound: the table as the re-entry check knows it.
    pgd: *const kvm_pte_t,
    view: View,
}

const MAGIC: u64 = u64::from_le_bytes(*b"pgwbound");

const _: () = assert!(size_of::<Bound>() <= size_of::<pgw_bound_stage2>());
const _: () = assert!(align_of::<Bound>() <= align_of::<pgw_bound_stage2>());

/// Checks `pgt` as every call on it does (`-PGW_EFAULT` for NULL pointers,
/// `-PGW_EINVAL` for a table that is not initialised, that lacks a callback
/// of the bound calls (a map's memory callbacks, see `struct
/// kvm_pgtable_mm_ops`; the MMU's TLB callbacks) or whose `ia_bits` and
/// `start_level` disagree with
/// `mmu->vtcr`, `-PGW_EDEADLK` from inside a call on it) and keeps what the
/// calls need in `*out`, for `pgw_bound_fault_map`,
/// `pgw_bound_fault_relax_perms` and `pgw_bound_fault_mkyoung`. Returns 0
/// or that errno; `*out` is written only on 0.
///
/// The binding keeps `pgt`'s root, geometry, flags and `force_pte_cb` as
/// they are now, its `mm_ops`' `phys_to_virt` and `virt_to_phys`, and the
/// addresses of its `mm_ops` and `mmu`, whose other callbacks it reads at
/// each use as every call does: bind again after changing `pgt` or those
/// two callbacks, or after pointing it at other `mm_ops` or another MMU.
/// `kvm_pgtable_*` calls on `pgt` may go on beside the binding's: they
/// change the same table.
///
/// # Safety
///
/// `pgt` is NULL or was initialised by `__kvm_pgtable_stage2_init`; `out`
/// is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn pgw_bind_stage2(
    pgt: *mut kvm_pgtable,
    out: *mut pgw_bound_stage2,
) -> c_int {
    call(|| {
        if out.is_null() {
            return Err(-PGW_EFAULT);
        }
        // SAFETY: the caller's contract on `pgt`.
        let view = take_view(unsafe { TablePtr::new(pgt) }, Needs::Map)?;
        let bound = Bound {
            magic: MAGIC,
            pgt,
            // SAFETY: `take_view` read the same field of the same, non-NULL
            // structure.
            pgd: unsafe { (*pgt).pgd },
            view,
        };
        // SAFETY: `out` is valid for writes of a `pgw_bound_stage2` (the
        // caller's contract), which is at least as large and as aligned as
        // a `Bound` (asserted above).
        unsafe { out.cast::<Bound>().write(bound) };
        Ok(0)
    })
}

/// Runs `f` on the binding at `s2` as a call on its table.
///
/// # Safety
///
/// As the `pgw_bound_*` calls' contract on `s2`.
#[inline(always)]
unsafe fn with_bound(
    s2: *const pgw_bound_stage2,
    f: impl FnOnce(&View) -> Result<pgw_fault_outcome, c_int>,
    outcome: *mut pgw_fault_outcome,
) -> Result<c_int, c_int> {
    if s2.is_null() || outcome.is_null() {
        return Err(-PGW_EFAULT);
    }
    let s2 = s2.cast::<Bound>();
    // SAFETY: `s2` points to storage that `pgw_bind_stage2` wrote a
    // `Bound` into (the caller's contract), whose first word is the magic;
    // the test catches storage that was zeroed and never bound.
    if unsafe { core::ptr::addr_of!((*s2).magic).read() } != MAGIC {
        return Err(-PGW_EINVAL);
    }
    // SAFETY: bound, as the magic says and the caller promises: a `Bound`
    // that nobody writes while it is used (binding again is the caller's
    // write, never done beside a call).
    let b = unsafe { &*s2 };
    on_table(b.pgt, b.pgd, || {
        let o = f(&b.view)?;
        // SAFETY: checked not NULL; the caller's contract.
        unsafe { put(outcome, o) };
        Ok(0)
    })
}

/// `pgw_stage2_fault_map` on a bound table: the same map, checks of its
/// own arguments and outcomes, without the per-call setup.
///
/// # Safety
///
/// `s2` is NULL or was filled by `pgw_bind_stage2` from a table that is
/// still initialised and unchanged since (see `pgw_bind_stage2`), and is
/// not being bound again meanwhile; the caller holds the read lock;
/// `outcome` is NULL or valid for writes; `mc` is what `zalloc_page`
/// expects.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // pgw_stage2_fault_map's
pub unsafe extern "C" fn pgw_bound_fault_map(
    s2: *const pgw_bound_stage2,
    addr: u64,
    size: u64,
    phys: u64,
    prot: u64,
    mc: *mut c_void,
    flags: u32,
    outcome: *mut pgw_fault_outcome,
) -> c_int {
    call(|| {
        check_fault_map_flags(flags)?;
        let map = |v: &View| fault_map(v, addr, size, phys, prot, mc, flags);
        // SAFETY: the caller's contract.
        unsafe { with_bound(s2, map, outcome) }
    })
}

/// `pgw_stage2_fault_relax_perms` on a bound table.
///
/// # Safety
///
/// As `pgw_bound_fault_map`.
#[no_mangle]
pub unsafe extern "C" fn pgw_bound_fault_relax_perms(
    s2: *const pgw_bound_stage2,
    addr: u64,
    prot: u64,
    outcome: *mut pgw_fault_outcome,
) -> c_int {
    call(|| {
        let p = typed_prot(prot)?;
        // SAFETY: the caller's contract.
        unsafe { with_bound(s2, |v| fault_relax(v, addr, p), outcome) }
    })
}

/// `pgw_stage2_fault_mkyoung` on a bound table.
///
/// # Safety
///
/// As `pgw_bound_fault_map`.
#[no_mangle]
pub unsafe extern "C" fn pgw_bound_fault_mkyoung(
    s2: *const pgw_bound_stage2,
    addr: u64,
    outcome: *mut pgw_fault_outcome,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract.
        unsafe { with_bound(s2, |v| fault_mkyoung(v, addr), outcome) }
    })
}

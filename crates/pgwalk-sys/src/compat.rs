//! The kernel-compatible API: `kvm_pgtable_*` with the kernel's names,
//! signatures and return conventions, each a thin call into `pgwalk`.
//!
//! Every function checks its arguments before touching the table and runs
//! inside [`call`](crate::errno::call), so bad input is an error code and a
//! panic never unwinds into C.

use core::ffi::{c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr;

use pgwalk::fault::FaultOutcome;
use pgwalk::geometry::Geometry;
use pgwalk::geometry::Level;
use pgwalk::visit::{
    Action, Conflict, ResumeReason, RetryEntry, Unfinished, Visit, VisitKind, WalkFlags, Walked,
};
use pgwalk::{
    free_unlinked, Capability, Exclusive, Handle, HandlesFault, Ipa, MapOptions, PhysAddr, Prot,
    Shared, Stage2,
};

use crate::abi::*;
use crate::errno::*;
use crate::host::{table_virt, with_view, CHost, Cache, MmFns, TablePtr, TlbFns, View};
use crate::reentry::on_table;

/// How a walk through the C boundary stops early: with an errno, or (typed
/// visitors only) because the visitor said so.
pub(crate) enum Halt {
    Errno(c_int),
    Stopped,
}

impl From<pgwalk::Error> for Halt {
    fn from(e: pgwalk::Error) -> Halt {
        Halt::Errno(from_error(e))
    }
}

pub(crate) fn prot_of(prot: u64) -> Result<Prot, c_int> {
    Prot::from_bits(prot).ok_or(-PGW_EINVAL)
}

pub(crate) fn visit_flags(flags: u32) -> WalkFlags {
    WalkFlags::from_bits_truncate(flags)
}

/// Which walker a legacy `flags` value asks for.
pub(crate) enum Kind {
    Exclusive,
    Shared,
    Fault,
}

/// The walker kind in `flags`; unknown bits and `HANDLE_FAULT` without
/// `SHARED` (a fault handler always runs beside others) are `-PGW_EINVAL`.
pub(crate) fn kind_of(flags: u32) -> Result<Kind, c_int> {
    if flags & !WALK_KNOWN != 0 {
        return Err(-PGW_EINVAL);
    }
    match (flags & WALK_SHARED != 0, flags & WALK_HANDLE_FAULT != 0) {
        (false, false) => Ok(Kind::Exclusive),
        (true, false) => Ok(Kind::Shared),
        (true, true) => Ok(Kind::Fault),
        (false, true) => Err(-PGW_EINVAL),
    }
}

/// The legacy meaning of a visitor's `int`, per walker kind: the table in
/// DESIGN.md section 1, expressed as the core's typed actions so that the
/// one walker does the rest.
pub(crate) trait Legacy: Capability {
    fn interpret(code: c_int) -> Visit<Self, Halt>;
    /// The code a walk that resumed the guest returns.
    fn resumed(reason: Self::Resume) -> c_int;
}

/// Anything but 0 or a negated errno means nothing.
fn meaningless<C: Capability>(code: c_int) -> Visit<C, Halt> {
    let code = if is_errno_or_zero(code) {
        code
    } else {
        -PGW_EBADMSG
    };
    Err(Unfinished::Stop(Halt::Errno(code)))
}

impl Legacy for Exclusive {
    fn interpret(code: c_int) -> Visit<Self, Halt> {
        match code {
            0 => Ok(Action::Continue),
            // Nobody races an exclusive walker: the kernel ignores these.
            c if c == -PGW_EAGAIN || c == -PGW_ENOENT => Ok(Action::Continue),
            c => meaningless(c),
        }
    }

    fn resumed(reason: Self::Resume) -> c_int {
        match reason {}
    }
}

impl Legacy for Shared {
    fn interpret(code: c_int) -> Visit<Self, Halt> {
        match code {
            0 => Ok(Action::Continue),
            c if c == -PGW_EAGAIN => Err(Unfinished::Retry(RetryEntry(Conflict::Raced))),
            c if c == -PGW_ENOENT => Ok(Action::SKIP),
            c => meaningless(c),
        }
    }

    fn resumed(reason: Self::Resume) -> c_int {
        match reason {}
    }
}

impl Legacy for HandlesFault {
    fn interpret(code: c_int) -> Visit<Self, Halt> {
        match code {
            0 => Ok(Action::Continue),
            c if c == -PGW_EAGAIN => Err(Unfinished::ResumeGuest(ResumeReason::Raced)),
            c if c == -PGW_ENOENT => Err(Unfinished::ResumeGuest(ResumeReason::Gone)),
            c => meaningless(c),
        }
    }

    fn resumed(reason: Self::Resume) -> c_int {
        match reason {
            ResumeReason::Gone => -PGW_ENOENT,
            ResumeReason::Raced | ResumeReason::Spurious => -PGW_EAGAIN,
        }
    }
}

pub(crate) fn visit_kind(kind: VisitKind) -> kvm_pgtable_walk_flags {
    match kind {
        VisitKind::Leaf => kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_LEAF,
        VisitKind::TablePre => kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_TABLE_PRE,
        VisitKind::TablePost => kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_TABLE_POST,
    }
}

type LegacyFn = unsafe extern "C" fn(*const kvm_pgtable_visit_ctx, kvm_pgtable_walk_flags) -> c_int;

fn legacy_walk<C: Legacy>(
    mut handle: Handle<'_, C, CHost>,
    addr: u64,
    size: u64,
    cb: LegacyFn,
    arg: *mut c_void,
    mm_ops: *mut kvm_pgtable_mm_ops,
    flags: u32,
) -> c_int {
    let start = addr & !(handle.geometry().granule().size() - 1);
    let walked = handle.walk_with::<Halt, _>(Ipa(addr), size, visit_flags(flags), |ctx| {
        let visit = visit_kind(ctx.kind());
        let c = kvm_pgtable_visit_ctx {
            ptep: ctx.entry_ptr(),
            old: ctx.old().bits(),
            arg,
            mm_ops,
            start,
            addr: ctx.addr().get(),
            end: ctx.end().get(),
            level: ctx.level().get(),
            flags,
        };
        // SAFETY: the caller's visitor, called as the kernel calls it, with
        // a context that lives across the call.
        let code = unsafe { cb(&c, visit) };
        C::interpret(code)
    });
    match walked {
        Ok(Walked::Completed) | Err(Halt::Stopped) => 0,
        Ok(Walked::ResumeGuest(r)) => C::resumed(r),
        Err(Halt::Errno(e)) => e,
    }
}

/// Walks `size` bytes from `addr` (widened to whole pages), calling
/// `walker->cb` for the entries `walker->flags` selects, in address order.
/// The visitor's return value is read by the table on
/// `kvm_pgtable_visitor_fn_t`, according to `KVM_PGTABLE_WALK_SHARED` and
/// `KVM_PGTABLE_WALK_HANDLE_FAULT`.
///
/// Returns 0 when the whole range was visited, the visitor's error when it
/// stopped the walk, `-PGW_ERANGE` for a range beyond the input size,
/// `-PGW_EINVAL` for unknown flag bits or `HANDLE_FAULT` without `SHARED`,
/// `-PGW_EFAULT` for NULL `pgt`, `walker` or `walker->cb`, `-PGW_EBADMSG`
/// when the visitor returned something that is no errno.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; `walker` is NULL
/// or valid; the caller holds the lock the walker kind implies (write lock
/// without `SHARED`, read lock with it).
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_walk(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    walker: *mut kvm_pgtable_walker,
) -> c_int {
    call(|| {
        // SAFETY: NULL or valid (the caller's contract).
        let w = unsafe { walker.as_ref() }.ok_or(-PGW_EFAULT)?;
        let cb = w.cb.ok_or(-PGW_EFAULT)?;
        let kind = kind_of(w.flags)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| {
            let (arg, mm_ops, flags) = (w.arg, v.mm_ops, w.flags);
            Ok(match kind {
                Kind::Exclusive => {
                    legacy_walk(v.table.exclusive(), addr, size, cb, arg, mm_ops, flags)
                }
                Kind::Shared => legacy_walk(v.table.shared(), addr, size, cb, arg, mm_ops, flags),
                Kind::Fault => {
                    legacy_walk(v.table.fault_handler(), addr, size, cb, arg, mm_ops, flags)
                }
            })
        })
    })
}

/// Bytes of the root for a VTCR_EL2 value: the granule's page size (4, 16
/// or 64 KiB, from TG0) times the number of concatenated root tables (1 to
/// 16), with or without LPA2. 0 for a VTCR_EL2 the library does not support
/// (which `__kvm_pgtable_stage2_init` refuses with `-PGW_EINVAL`).
#[no_mangle]
pub extern "C" fn kvm_pgtable_stage2_pgd_size(vtcr: u64) -> usize {
    guard_or(0, || Geometry::from_vtcr(vtcr).map_or(0, |g| g.root_size()))
}

/// Initialises `pgt`: allocates the root with `mm_ops->zalloc_pages_exact`
/// for the geometry in `mmu->vtcr`, and records `mmu`, `mm_ops`, `flags`
/// and `force_pte_cb` in it. Also writes `mmu->pgd_phys` and `mmu->pgt`.
///
/// Every granule is supported, with LPA2 (see `struct kvm_s2_mmu`): pages
/// from `mm_ops` are the granule's size. The first initialisation with an
/// `mm_ops` binds it to its table's format (granule and LPA2), which
/// `kvm_pgtable_stage2_free_unlinked` reads tables with; an initialisation
/// with the same `mm_ops` and another format is `-PGW_EINVAL` (give each
/// format its own `struct kvm_pgtable_mm_ops`).
///
/// `flags` may hold `KVM_PGTABLE_S2_NOFWB` (`KVM_PGTABLE_S2_IDMAP` is
/// `-PGW_EOPNOTSUPP`, other bits `-PGW_EINVAL`). When `force_pte_cb` is
/// given, `kvm_pgtable_stage2_map` asks it once per call whether to map the
/// range with pages only.
///
/// Returns 0, `-PGW_EFAULT` for a NULL pointer, `-PGW_EINVAL` for an
/// unsupported VTCR_EL2 or a missing callback (among the eleven memory
/// callbacks only the two cache ones may be NULL; all three TLB callbacks
/// of `mmu` are required), `-PGW_ENOMEM` when the root cannot be allocated.
/// On error `pgt` and `mmu` are left as they were.
///
/// # Safety
///
/// `pgt`, `mmu` and `mm_ops` are NULL or valid, and stay valid (and
/// unmoved) until `kvm_pgtable_stage2_destroy`; `pgt` holds no table (one it
/// held would leak).
#[no_mangle]
pub unsafe extern "C" fn __kvm_pgtable_stage2_init(
    pgt: *mut kvm_pgtable,
    mmu: *mut kvm_s2_mmu,
    mm_ops: *mut kvm_pgtable_mm_ops,
    flags: u32,
    force_pte_cb: kvm_pgtable_force_pte_cb_t,
) -> c_int {
    call(|| {
        if pgt.is_null() {
            return Err(-PGW_EFAULT);
        }
        let nofwb = kvm_pgtable_stage2_flags::KVM_PGTABLE_S2_NOFWB as u32;
        let idmap = kvm_pgtable_stage2_flags::KVM_PGTABLE_S2_IDMAP as u32;
        if flags & !(nofwb | idmap) != 0 {
            return Err(-PGW_EINVAL);
        }
        if flags & idmap != 0 {
            return Err(-PGW_EOPNOTSUPP);
        }
        // A callback of a call on `pgt` (the allocator's, or a visitor's)
        // may not initialise it again under that call's feet.
        on_table(pgt, ptr::null(), || {
            // SAFETY: NULL or valid (the caller's contract).
            let mm = unsafe { MmFns::from_c(mm_ops) }?;
            // SAFETY: as above.
            let tlb = unsafe { TlbFns::from_c(mmu) }?;
            // SAFETY: `from_c` refused a NULL `mmu`.
            let vtcr = unsafe { (*mmu).vtcr };
            let geometry = pgwalk::geometry::Geometry::from_vtcr(vtcr).map_err(|_| -PGW_EINVAL)?;
            crate::formats::bind(mm_ops, geometry.format())?;
            let host = CHost::new(mm, Some(tlb), geometry.format());
            let table = Stage2::with_geometry(geometry, host).map_err(from_error)?;
            let (geometry, pgd, host) = table.into_raw_parts();
            let pgd_va = table_virt(&host, pgd);
            // SAFETY: `pgt` and `mmu` are valid for writes (the caller's
            // contract) and nothing else refers to them during the call.
            unsafe {
                pgt.write(kvm_pgtable {
                    ia_bits: u32::from(geometry.ia_bits()),
                    start_level: geometry.start_level().get(),
                    pgd: pgd_va,
                    mm_ops,
                    flags,
                    force_pte_cb,
                    mmu,
                });
                (*mmu).pgd_phys = pgd.get();
                (*mmu).pgt = pgt;
            }
            Ok(0)
        })
    })
}

/// `__kvm_pgtable_stage2_init(pgt, mmu, mm_ops, 0, NULL)` (a macro in the
/// kernel; a function here, so that it also exists in the shared library).
///
/// # Safety
///
/// As `__kvm_pgtable_stage2_init`.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_init(
    pgt: *mut kvm_pgtable,
    mmu: *mut kvm_s2_mmu,
    mm_ops: *mut kvm_pgtable_mm_ops,
) -> c_int {
    // SAFETY: the same contract.
    unsafe { __kvm_pgtable_stage2_init(pgt, mmu, mm_ops, 0, None) }
}

/// Destroys the table behind `pgt`, without TLB invalidation. See
/// `kvm_pgtable_stage2_destroy`.
///
/// # Safety
///
/// As `kvm_pgtable_stage2_destroy`.
pub(crate) unsafe fn destroy(pgt: *mut kvm_pgtable) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let table = unsafe { TablePtr::new(pgt) };
        with_view(table, |v| {
            // Dropping the core's table is what destroys it: this is the one
            // place a view is let go of that way.
            // SAFETY: `v.table` is not used again: the view goes right after
            // this closure returns, and its `ManuallyDrop` drops nothing.
            unsafe { ManuallyDrop::drop(&mut v.table) };
            // SAFETY: `view` checked `pgt` is not NULL; the caller holds it
            // exclusively.
            unsafe { (*pgt).pgd = ptr::null_mut() };
            Ok(0)
        })
    })
}

/// Frees every table page and the root through `mm_ops` (`put_page`, then
/// `free_pages_exact`), and sets `pgt->pgd` to NULL, so that calling it
/// again does nothing. No TLB invalidation: the VMID retires with the table.
/// A `pgt` that is NULL or not initialised is left alone (use
/// `pgw_stage2_destroy` to see the error).
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init` (or is NULL); no
/// other call uses it concurrently, and no walker reads the table any more.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_destroy(pgt: *mut kvm_pgtable) {
    // SAFETY: the same contract. The kernel's function returns nothing;
    // `pgw_stage2_destroy` reports the error this drops.
    let _ = unsafe { destroy(pgt) };
}

/// Whether the table's `force_pte_cb` wants pages only for this call: asked
/// once per call, for the whole range, as the kernel does.
fn force_pte(v: &View, addr: u64, size: u64, prot: u64) -> bool {
    match v.force_pte_cb {
        // SAFETY: the caller's callback, registered at initialisation.
        Some(cb) => unsafe { cb(addr, addr.wrapping_add(size), prot) },
        None => false,
    }
}

/// The core's options for a map with these kernel walk flags.
pub(crate) fn map_options(flags: u32, pages_only: bool) -> MapOptions {
    let mut opts = MapOptions::new();
    if flags & WALK_SKIP_CMO != 0 {
        opts = opts.skip_cmo();
    }
    if flags & WALK_SKIP_BBM_TLBI != 0 {
        opts = opts.batch_tlbi();
    }
    if pages_only {
        opts = opts.pages_only();
    }
    opts
}

/// The fault path's map, one outcome for the whole range.
pub(crate) fn fault_map(
    v: &View,
    addr: u64,
    size: u64,
    phys: u64,
    prot: u64,
    mc: *mut c_void,
    flags: u32,
) -> Result<FaultOutcome, c_int> {
    let p = prot_of(prot)?;
    let opts = map_options(flags, force_pte(v, addr, size, prot));
    v.table
        .fault_handler()
        .map_with(Ipa(addr), size, PhysAddr(phys), p, &mut Cache(mc), opts)
        .map_err(from_error)
}

/// Maps `size` bytes at IPA `addr` to `phys` with `prot`, using the largest
/// blocks alignment allows (pages only when the table's `force_pte_cb`
/// says so). New table pages come from `mm_ops->zalloc_page(mc)`.
///
/// With `flags` 0 (or `SKIP_BBM_TLBI` / `SKIP_CMO`) the caller holds the
/// write lock and whatever the range mapped is replaced. With
/// `KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT` it is a vCPU's
/// fault path: returns 0 when this call installed the mapping and
/// `-PGW_EAGAIN` when another walker got there first or the same mapping was
/// already there (resume the guest). `SHARED` alone is `-PGW_EOPNOTSUPP`.
///
/// Errors: `-PGW_EINVAL` (misaligned or empty range, unknown prot or flag
/// bits, DEVICE with NORMAL_NC, executable device memory), `-PGW_ERANGE`
/// (beyond the IPA or PA size), `-PGW_ENOMEM` (`zalloc_page` returned NULL:
/// the range before the failing entry may be mapped, the rest is as it was,
/// nothing leaks; map again after refilling the cache).
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; `mc` is whatever
/// `mm_ops->zalloc_page` expects; the caller holds the lock `flags` implies.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_map(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    phys: u64,
    prot: u64,
    mc: *mut c_void,
    flags: u32,
) -> c_int {
    call(|| {
        let kind = kind_of(flags)?;
        let p = prot_of(prot)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| match kind {
            Kind::Exclusive => {
                let opts = map_options(flags, force_pte(v, addr, size, prot));
                v.table
                    .exclusive()
                    .map_with(Ipa(addr), size, PhysAddr(phys), p, &mut Cache(mc), opts)
                    .map_err(from_error)?;
                Ok(0)
            }
            Kind::Shared => Err(-PGW_EOPNOTSUPP),
            Kind::Fault => match fault_map(v, addr, size, phys, prot, mc, flags)? {
                FaultOutcome::Fixed => Ok(0),
                // The kernel's fault path resumes the guest on -EAGAIN,
                // which is what every other outcome of a map asks for.
                FaultOutcome::Spurious | FaultOutcome::Retry | FaultOutcome::Emulate => {
                    Err(-PGW_EAGAIN)
                }
            },
        })
    })
}

/// Annotates `size` bytes at `addr` as owned by `owner_id`: invalid entries
/// carrying the id (mappings in the range are removed). Owner 0 clears
/// annotations. Write lock. Errors as `kvm_pgtable_stage2_map`.
///
/// # Safety
///
/// As `kvm_pgtable_stage2_map` without `SHARED`.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_set_owner(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    mc: *mut c_void,
    owner_id: u8,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| {
            v.table
                .exclusive()
                .annotate(Ipa(addr), size, u32::from(owner_id), &mut Cache(mc))
                .map_err(from_error)?;
            Ok(0)
        })
    })
}

/// Removes every mapping and annotation in `size` bytes at `addr` (TLB
/// invalidation and, for cacheable memory, data-cache cleaning included)
/// and frees the table pages left empty. Write lock.
///
/// Unlike the kernel, a range that starts or ends inside a block is refused
/// with `-PGW_EINVAL` before anything changes (`kvm_pgtable_stage2_split`
/// first). Other errors: `-PGW_EINVAL` (misaligned or empty), `-PGW_ERANGE`.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// the write lock.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_unmap(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| {
            v.table
                .exclusive()
                .unmap(Ipa(addr), size)
                .map_err(from_error)?;
            Ok(0)
        })
    })
}

/// Removes write permission from every valid leaf in `size` bytes at
/// `addr`, then invalidates the range through `mmu->tlb_flush_vmid_range`
/// (the kernel leaves that to the caller; here it cannot be forgotten).
/// Read lock. Errors: `-PGW_EINVAL`, `-PGW_ERANGE`.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// at least the read lock.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_wrprotect(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| {
            let h = v.table.shared();
            h.wrprotect(Ipa(addr), size).map_err(from_error)?.flush();
            Ok(0)
        })
    })
}

/// Sets the access flag on the valid leaf translating `addr`, if any. With
/// `KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT` it runs as the
/// fault path. Errors (NULL or uninitialised `pgt`, bad flags) are dropped,
/// as the kernel's function returns nothing: `pgw_stage2_mkyoung` and
/// `pgw_stage2_fault_mkyoung` report them.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init` (or is NULL); the
/// caller holds at least the read lock.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_mkyoung(pgt: *mut kvm_pgtable, addr: u64, flags: u32) {
    call(|| {
        let kind = kind_of(flags)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| {
            match kind {
                Kind::Fault => {
                    let _ = v
                        .table
                        .fault_handler()
                        .mkyoung(Ipa(addr))
                        .map_err(from_error)?;
                }
                Kind::Exclusive | Kind::Shared => {
                    v.table.shared().mkyoung(Ipa(addr)).map_err(from_error)?;
                }
            }
            Ok(0)
        })
    });
}

/// Whether any valid leaf in `size` bytes at `addr` has its access flag
/// set; with `mkold`, clears them (no TLB invalidation: a stale young entry
/// only delays the next aging). Read lock. Errors read as `false`:
/// `pgw_stage2_test_clear_young` reports them.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init` (or is NULL); the
/// caller holds at least the read lock.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_test_clear_young(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    mkold: bool,
) -> bool {
    guard_or(false, || {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| test_clear_young(v, addr, size, mkold)).unwrap_or(false)
    })
}

/// The aging walk both APIs share: whether any leaf was young, clearing
/// the flags with `mkold`.
pub(crate) fn test_clear_young(v: &View, addr: u64, size: u64, mkold: bool) -> Result<bool, c_int> {
    let h = v.table.shared();
    let young = if mkold {
        h.clear_young(Ipa(addr), size)
    } else {
        h.test_young(Ipa(addr), size)
    };
    young.map_err(from_error)
}

/// Adds the permissions in `prot` (R, W, PX, UX only; other bits are
/// `-PGW_EINVAL`) to the valid leaf translating `addr`, then invalidates its
/// TLB entry. With `KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT`
/// it is the fault path: `-PGW_EAGAIN` when there was no valid leaf or
/// another walker changed it first (resume the guest). Otherwise a missing
/// leaf is not an error.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// at least the read lock.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_relax_perms(
    pgt: *mut kvm_pgtable,
    addr: u64,
    prot: u64,
    flags: u32,
) -> c_int {
    call(|| {
        let kind = kind_of(flags)?;
        let p = prot_of(prot)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| match kind {
            Kind::Fault => {
                match v
                    .table
                    .fault_handler()
                    .relax_perms(Ipa(addr), p)
                    .map_err(from_error)?
                {
                    FaultOutcome::Fixed | FaultOutcome::Spurious => Ok(0),
                    FaultOutcome::Retry | FaultOutcome::Emulate => Err(-PGW_EAGAIN),
                }
            }
            Kind::Exclusive | Kind::Shared => {
                v.table
                    .shared()
                    .relax_perms(Ipa(addr), p)
                    .map_err(from_error)?;
                Ok(0)
            }
        })
    })
}

/// Cleans and invalidates the data cache for every cacheable page mapped in
/// `size` bytes at `addr` (through `mm_ops->dcache_clean_inval_poc`). Read
/// lock. Errors: `-PGW_EINVAL`, `-PGW_ERANGE`.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// at least the read lock.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_flush(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| {
            v.table
                .shared()
                .clean_dcache(Ipa(addr), size)
                .map_err(from_error)?;
            Ok(0)
        })
    })
}

/// Splits every block intersecting `size` bytes at `addr` into pages,
/// keeping what they map; table pages come from `mm_ops->zalloc_page(mc)`.
/// Write lock. `-PGW_ENOMEM` leaves the blocks split so far split.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// the write lock; `mc` is what `zalloc_page` expects.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_split(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    mc: *mut kvm_mmu_memory_cache,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| {
            v.table
                .exclusive()
                .split(Ipa(addr), size, &mut Cache(mc.cast()))
                .map_err(from_error)?;
            Ok(0)
        })
    })
}

/// Creates an unlinked table that maps the `level` entry's worth of memory
/// from `phys` with `prot`: level `level + 1` blocks, or pages all the way
/// down with `force_pte`. Returns its virtual address, to be linked with a
/// break-before-make of the caller's or freed with
/// `kvm_pgtable_stage2_free_unlinked`; on error, the kernel's
/// `ERR_PTR(-errno)`: a pointer whose value is the negated errno, in the
/// last 4095 bytes of the address space (`pgw_stage2_create_unlinked`
/// returns the errno directly).
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// the write lock; `mc` is what `zalloc_page` expects.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_create_unlinked(
    pgt: *mut kvm_pgtable,
    phys: u64,
    level: i8,
    prot: u64,
    mc: *mut c_void,
    force_pte: bool,
) -> *mut kvm_pte_t {
    let mut table = ptr::null_mut();
    // SAFETY: the same contract; `table` outlives the call.
    let r = unsafe {
        crate::typed::pgw_stage2_create_unlinked(pgt, phys, level, prot, mc, force_pte, &mut table)
    };
    if r < 0 {
        // ERR_PTR: an address no allocation can have, never dereferenced here.
        r as isize as *mut kvm_pte_t
    } else {
        table
    }
}

/// Frees an unlinked table subtree: every table page below `pgtable` and
/// `pgtable` itself, through `mm_ops->put_page`. `level` is that of the
/// entry that linked it (as `free_unlinked_table` receives it, or as given
/// to `kvm_pgtable_stage2_create_unlinked`). Hosts call it from their
/// `free_unlinked_table` callback once the grace period has passed.
/// The table is read in the format (granule, LPA2) `mm_ops` was bound to
/// by `__kvm_pgtable_stage2_init`. A NULL `pgtable`, one not aligned to the
/// granule, a level that is not one of the format's table levels (-1 or 0
/// up to 2), missing callbacks or an `mm_ops` no initialisation used leave
/// everything alone.
///
/// # Safety
///
/// `pgtable` is a table page from these `mm_ops` that no table links to any
/// more and no walker can still read, freed once.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_free_unlinked(
    mm_ops: *mut kvm_pgtable_mm_ops,
    pgtable: *mut c_void,
    level: i8,
) {
    call(|| {
        if pgtable.is_null() {
            return Err(-PGW_EFAULT);
        }
        // SAFETY: NULL or valid (the caller's contract).
        let mm = unsafe { MmFns::from_c(mm_ops) }?;
        let format = crate::formats::bound(mm_ops).ok_or(-PGW_EINVAL)?;
        let level = Level::new(level)
            .filter(|l| *l >= format.first_level() && l.get() <= 2)
            .ok_or(-PGW_EINVAL)?;
        let host = CHost::new(mm, None, format);
        let pa = host.phys(pgtable);
        if !pa.is_aligned(format.granule().size()) {
            return Err(-PGW_EINVAL);
        }
        // SAFETY: the caller's contract: an unlinked table of this host that
        // hung below an entry of `level`, unreachable and freed once; the
        // host reads it in the format its `mm_ops` serve.
        unsafe { free_unlinked(&host, pa, level) };
        Ok(0)
    });
}

/// Looks up the entry translating `addr`: a valid leaf, or the invalid
/// entry where translation stops. Writes it to `*ptep` and its level to
/// `*level` (either may be NULL). Returns 0, `-PGW_ERANGE` beyond the input
/// size, `-PGW_EINVAL`/`-PGW_EFAULT` for a bad `pgt`.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; `ptep` and `level`
/// are NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_get_leaf(
    pgt: *mut kvm_pgtable,
    addr: u64,
    ptep: *mut kvm_pte_t,
    level: *mut i8,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, |v| {
            let (leaf, l) = v.table.shared().get_leaf(Ipa(addr)).map_err(from_error)?;
            // SAFETY: NULL is skipped; otherwise valid for writes (the
            // caller's contract).
            unsafe {
                if !ptep.is_null() {
                    ptep.write(leaf.bits());
                }
                if !level.is_null() {
                    level.write(l.get());
                }
            }
            Ok(0)
        })
    })
}

//! The typed C API (`pgw_*`): two channels kept apart. A visitor's return
//! value is an error of its own (0 or `-errno`); what it did to the walk is
//! a `pgw_action` in an out-field, checked against the walker's capability.
//! Fault-path operations report a `pgw_fault_outcome`, never an `int` that
//! might be tested with `if (r)`.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::ptr;

use pgwalk::fault::TableOutcome;
use pgwalk::geometry::Level;
use pgwalk::visit::{
    Action, Conflict, ResumeReason, RetryEntry, Unfinished, Visit, VisitKind, Walked,
};
use pgwalk::{Capability, Exclusive, Handle, HandlesFault, Ipa, PhysAddr, Prot, Shared};

use crate::abi::*;
use crate::compat::destroy;
use crate::convert::{typed_prot as prot_of, visit_flags, Halt};
use crate::errno::*;
use crate::host::{with_view, CHost, Cache, Needs, TablePtr, View};

/// A typed visitor's action, checked against the capability `Self`.
trait Typed: Capability {
    const CAP: pgw_capability;
    /// The core action for `action`; `Err(-PGW_EPROTO)` when this
    /// capability does not allow it, `Err(-PGW_EBADMSG)` for a resume
    /// reason outside the enum.
    fn action(action: pgw_action, reason: u32) -> Result<Visit<Self, Halt>, c_int>;
    fn resumed(reason: Self::Resume) -> TableOutcome;
}

fn stop<C: Capability>() -> Result<Visit<C, Halt>, c_int> {
    Ok(Err(Unfinished::Stop(Halt::Stopped)))
}

impl Typed for Exclusive {
    const CAP: pgw_capability = pgw_capability::PGW_EXCLUSIVE;

    fn action(action: pgw_action, _reason: u32) -> Result<Visit<Self, Halt>, c_int> {
        match action {
            pgw_action::PGW_ACTION_CONTINUE => Ok(Ok(Action::Continue)),
            pgw_action::PGW_ACTION_STOP => stop(),
            pgw_action::PGW_ACTION_SKIP
            | pgw_action::PGW_ACTION_RETRY
            | pgw_action::PGW_ACTION_RESUME_GUEST => Err(-PGW_EPROTO),
        }
    }

    fn resumed(reason: Self::Resume) -> TableOutcome {
        match reason {}
    }
}

impl Typed for Shared {
    const CAP: pgw_capability = pgw_capability::PGW_SHARED;

    fn action(action: pgw_action, _reason: u32) -> Result<Visit<Self, Halt>, c_int> {
        match action {
            pgw_action::PGW_ACTION_CONTINUE => Ok(Ok(Action::Continue)),
            pgw_action::PGW_ACTION_SKIP => Ok(Ok(Action::SKIP)),
            pgw_action::PGW_ACTION_RETRY => Ok(Err(Unfinished::Retry(RetryEntry(Conflict::Raced)))),
            pgw_action::PGW_ACTION_STOP => stop(),
            pgw_action::PGW_ACTION_RESUME_GUEST => Err(-PGW_EPROTO),
        }
    }

    fn resumed(reason: Self::Resume) -> TableOutcome {
        match reason {}
    }
}

impl Typed for HandlesFault {
    const CAP: pgw_capability = pgw_capability::PGW_HANDLES_FAULT;

    fn action(action: pgw_action, reason: u32) -> Result<Visit<Self, Halt>, c_int> {
        match action {
            pgw_action::PGW_ACTION_CONTINUE => Ok(Ok(Action::Continue)),
            pgw_action::PGW_ACTION_STOP => stop(),
            pgw_action::PGW_ACTION_RESUME_GUEST => {
                // 0 is what the field holds on entry: a visitor that gives no
                // reason lost a race, the common case.
                let reason = match reason {
                    0 => ResumeReason::Raced,
                    r => match pgw_resume_reason::try_from(r).map_err(|_| -PGW_EBADMSG)? {
                        pgw_resume_reason::PGW_RESUME_RACED => ResumeReason::Raced,
                        pgw_resume_reason::PGW_RESUME_GONE => ResumeReason::Gone,
                        pgw_resume_reason::PGW_RESUME_SPURIOUS => ResumeReason::Spurious,
                    },
                };
                Ok(Err(Unfinished::ResumeGuest(reason)))
            }
            pgw_action::PGW_ACTION_SKIP | pgw_action::PGW_ACTION_RETRY => Err(-PGW_EPROTO),
        }
    }

    fn resumed(reason: Self::Resume) -> TableOutcome {
        TableOutcome::from_resume(reason)
    }
}

fn kind_value(kind: VisitKind) -> u32 {
    (match kind {
        VisitKind::Leaf => pgw_visit_kind::PGW_VISIT_LEAF,
        VisitKind::TablePre => pgw_visit_kind::PGW_VISIT_TABLE_PRE,
        VisitKind::TablePost => pgw_visit_kind::PGW_VISIT_TABLE_POST,
    }) as u32
}

/// The C value of a table operation's outcome (never `PGW_FAULT_EMULATE`:
/// the table alone cannot decide that an access is emulated).
pub(crate) fn outcome(o: TableOutcome) -> pgw_fault_outcome {
    match o {
        TableOutcome::Retry => pgw_fault_outcome::PGW_FAULT_RETRY,
        TableOutcome::Fixed => pgw_fault_outcome::PGW_FAULT_FIXED,
        TableOutcome::Spurious => pgw_fault_outcome::PGW_FAULT_SPURIOUS,
    }
}

type TypedFn = unsafe extern "C" fn(*mut pgw_visit) -> c_int;

fn typed_walk<C: Typed>(
    mut handle: Handle<'_, C, CHost>,
    addr: u64,
    size: u64,
    cb: TypedFn,
    arg: *mut c_void,
    flags: u32,
) -> Result<pgw_walk_result, c_int> {
    // Read once: the visitor's call would make the walk read it from the
    // geometry again at every page.
    let page_size = handle.geometry().entry_size(Level::LAST);
    let walked = handle.walk_with::<Halt, _>(Ipa(addr), size, visit_flags(flags), |ctx| {
        let entry_size = if ctx.level().is_last() {
            page_size
        } else {
            ctx.entry_size()
        };
        let mut v = pgw_visit {
            old: ctx.old().bits(),
            addr: ctx.addr().get(),
            entry_addr: ctx.entry_addr().get(),
            entry_size,
            end: ctx.end().get(),
            arg,
            level: ctx.level().get(),
            kind: kind_value(ctx.kind()),
            capability: C::CAP as u32,
            action: pgw_action::PGW_ACTION_CONTINUE as u32,
            resume_reason: 0,
        };
        // SAFETY: the caller's visitor, given a visit that lives across the
        // call; every field it may write is a plain integer.
        let ret = unsafe { cb(&mut v) };
        if ret != 0 {
            let code = if ret < 0 && is_errno_or_zero(ret) {
                ret
            } else {
                -PGW_EBADMSG
            };
            return Err(Unfinished::Stop(Halt::Errno(code)));
        }
        // The common answer first: decoding it through the enum cost a
        // range check and a second compare per entry.
        if v.action == pgw_action::PGW_ACTION_CONTINUE as u32 {
            return Ok(Action::Continue);
        }
        let action = match pgw_action::try_from(v.action) {
            Ok(a) => a,
            Err(_) => return Err(Unfinished::Stop(Halt::Errno(-PGW_EBADMSG))),
        };
        C::action(action, v.resume_reason).unwrap_or_else(|e| Err(Unfinished::Stop(Halt::Errno(e))))
    });
    let (status, fault) = match walked {
        Ok(Walked::Completed) => (
            pgw_walk_status::PGW_WALK_COMPLETED,
            pgw_fault_outcome::PGW_FAULT_CONTINUE,
        ),
        Ok(Walked::ResumeGuest(r)) => (
            pgw_walk_status::PGW_WALK_RESUMED_GUEST,
            outcome(C::resumed(r)),
        ),
        Err(Halt::Stopped) => (
            pgw_walk_status::PGW_WALK_STOPPED,
            pgw_fault_outcome::PGW_FAULT_CONTINUE,
        ),
        Err(Halt::Errno(e)) => return Err(e),
    };
    Ok(pgw_walk_result {
        status,
        outcome: fault,
    })
}

/// Walks `size` bytes from `addr` (widened to whole pages) with the typed
/// visitor `walker->cb`, under the capability `walker->capability`, and
/// writes how the walk ended to `*result`.
///
/// Returns 0 (see `result->status`), the visitor's own negative errno when
/// it returned one, `-PGW_EPROTO` when it reported an action its capability
/// does not allow, `-PGW_EBADMSG` when it returned a positive value or an
/// unknown `action` / `resume_reason`, `-PGW_EINVAL` for unknown flag bits,
/// `SHARED` or `HANDLE_FAULT` in `walker->flags`, or an unknown capability,
/// `-PGW_EFAULT` for a NULL pointer, `-PGW_ERANGE` beyond the input size.
/// `*result` is written only on success.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; `walker` and
/// `result` are NULL or valid; the caller holds the lock the capability
/// implies (write lock for `PGW_EXCLUSIVE`, read lock otherwise).
#[no_mangle]
pub unsafe extern "C" fn pgw_walk(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    walker: *const pgw_walker,
    result: *mut pgw_walk_result,
) -> c_int {
    call(|| {
        // SAFETY: NULL or valid (the caller's contract).
        let w = unsafe { walker.as_ref() }.ok_or(-PGW_EFAULT)?;
        let cb = w.cb.ok_or(-PGW_EFAULT)?;
        if result.is_null() {
            return Err(-PGW_EFAULT);
        }
        let visits = WALK_LEAF | WALK_TABLE_PRE | WALK_TABLE_POST;
        let maintenance = (kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_SKIP_BBM_TLBI as u32)
            | (kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_SKIP_CMO as u32);
        if w.flags & !(visits | maintenance) != 0 {
            return Err(-PGW_EINVAL);
        }
        let cap = pgw_capability::try_from(w.capability).map_err(|_| -PGW_EINVAL)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            let (arg, flags) = (w.arg, w.flags);
            let r = match cap {
                pgw_capability::PGW_EXCLUSIVE => {
                    typed_walk(v.table.exclusive(), addr, size, cb, arg, flags)
                }
                pgw_capability::PGW_SHARED => {
                    typed_walk(v.table.shared(), addr, size, cb, arg, flags)
                }
                pgw_capability::PGW_HANDLES_FAULT => {
                    typed_walk(v.table.fault_handler(), addr, size, cb, arg, flags)
                }
            }?;
            // SAFETY: checked not NULL above; valid for writes (the caller's
            // contract).
            unsafe { result.write(r) };
            Ok(0)
        })
    })
}

/// Writes `o` through the out-pointer `out`, which the caller checked.
///
/// # Safety
///
/// `out` is valid for writes.
pub(crate) unsafe fn put<T>(out: *mut T, o: T) {
    // SAFETY: the function's contract.
    unsafe { out.write(o) }
}

/// The fault path's map (`kvm_pgtable_stage2_map` with
/// `SHARED | HANDLE_FAULT`), reporting what it came to in `*outcome`:
/// `PGW_FAULT_FIXED` (installed, or split a block the range cuts: the rest
/// of the block keeps its mapping and the range gets `prot`),
/// `PGW_FAULT_SPURIOUS` (already there at the level the map would use, up
/// to permissions, which `pgw_stage2_fault_relax_perms` widens),
/// `PGW_FAULT_RETRY` (another walker changed the entry first). Unlike
/// `kvm_pgtable_stage2_map`, a block the range cuts is split rather than
/// replaced by an empty table. `flags` may
/// hold `KVM_PGTABLE_WALK_SKIP_BBM_TLBI` and `KVM_PGTABLE_WALK_SKIP_CMO`
/// only. Returns 0 or a negative errno as `kvm_pgtable_stage2_map`;
/// `*outcome` is written only on 0.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// the read lock; `outcome` is NULL or valid for writes; `mc` is what
/// `zalloc_page` expects.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the kernel's map, plus its answer
pub unsafe extern "C" fn pgw_stage2_fault_map(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    phys: u64,
    prot: u64,
    mc: *mut c_void,
    flags: u32,
    outcome: *mut pgw_fault_outcome,
) -> c_int {
    call(|| {
        if outcome.is_null() {
            return Err(-PGW_EFAULT);
        }
        check_fault_map_flags(flags)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Map, |v| {
            let o = fault_map(v, addr, size, phys, prot, mc, flags)?;
            // SAFETY: checked not NULL; the caller's contract.
            unsafe { put(outcome, o) };
            Ok(0)
        })
    })
}

/// `-PGW_EINVAL` for fault-map flags other than the maintenance ones.
pub(crate) fn check_fault_map_flags(flags: u32) -> Result<(), c_int> {
    let maintenance = (kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_SKIP_BBM_TLBI as u32)
        | (kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_SKIP_CMO as u32);
    if flags & !maintenance != 0 {
        return Err(-PGW_EINVAL);
    }
    Ok(())
}

/// The typed fault-path map on the view `v`, its flags checked.
#[inline(always)]
pub(crate) fn fault_map(
    v: &View,
    addr: u64,
    size: u64,
    phys: u64,
    prot: u64,
    mc: *mut c_void,
    flags: u32,
) -> Result<pgw_fault_outcome, c_int> {
    let p = prot_of(prot)?;
    let force = match v.force_pte_cb {
        // SAFETY: the caller's callback, registered at initialisation.
        Some(cb) => unsafe { cb(addr, addr.wrapping_add(size), prot) },
        None => false,
    };
    let mut opts = pgwalk::MapOptions::new();
    if flags & WALK_SKIP_CMO != 0 {
        opts = opts.skip_cmo();
    }
    if flags & WALK_SKIP_BBM_TLBI != 0 {
        opts = opts.batch_tlbi();
    }
    if force {
        opts = opts.pages_only();
    }
    let o = v
        .table
        .fault_handler()
        .map_with(Ipa(addr), size, PhysAddr(phys), p, &mut Cache::of(mc), opts)
        .map_err(from_error)?;
    Ok(outcome(o))
}

/// The typed fault-path permission relaxation on the view `v`.
#[inline(always)]
pub(crate) fn fault_relax(v: &View, addr: u64, prot: Prot) -> Result<pgw_fault_outcome, c_int> {
    let o = v
        .table
        .fault_handler()
        .relax_perms(Ipa(addr), prot)
        .map_err(from_error)?;
    Ok(outcome(o))
}

/// The typed fault-path access-flag update on the view `v`.
#[inline(always)]
pub(crate) fn fault_mkyoung(v: &View, addr: u64) -> Result<pgw_fault_outcome, c_int> {
    let o = v
        .table
        .fault_handler()
        .mkyoung(Ipa(addr))
        .map_err(from_error)?;
    Ok(outcome(o))
}

/// The fault path's permission relaxation: adds `prot` (R, W, PX, UX) to
/// the leaf at `addr`. `*outcome`: `PGW_FAULT_FIXED` (changed),
/// `PGW_FAULT_SPURIOUS` (it already allowed as much), `PGW_FAULT_RETRY` (no
/// valid leaf, or another walker changed it first).
///
/// # Safety
///
/// As `pgw_stage2_fault_map`.
#[no_mangle]
pub unsafe extern "C" fn pgw_stage2_fault_relax_perms(
    pgt: *mut kvm_pgtable,
    addr: u64,
    prot: u64,
    outcome: *mut pgw_fault_outcome,
) -> c_int {
    call(|| {
        if outcome.is_null() {
            return Err(-PGW_EFAULT);
        }
        let p = prot_of(prot)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Relax, |v| {
            let o = fault_relax(v, addr, p)?;
            // SAFETY: checked not NULL; the caller's contract.
            unsafe { put(outcome, o) };
            Ok(0)
        })
    })
}

/// The fault path's access-flag update for the leaf at `addr`.
/// `*outcome`: `PGW_FAULT_FIXED`, `PGW_FAULT_SPURIOUS` (already young) or
/// `PGW_FAULT_RETRY` (no valid leaf, or a lost race).
///
/// # Safety
///
/// As `pgw_stage2_fault_map`.
#[no_mangle]
pub unsafe extern "C" fn pgw_stage2_fault_mkyoung(
    pgt: *mut kvm_pgtable,
    addr: u64,
    outcome: *mut pgw_fault_outcome,
) -> c_int {
    call(|| {
        if outcome.is_null() {
            return Err(-PGW_EFAULT);
        }
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            let o = fault_mkyoung(v, addr)?;
            // SAFETY: checked not NULL; the caller's contract.
            unsafe { put(outcome, o) };
            Ok(0)
        })
    })
}

/// `kvm_pgtable_stage2_mkyoung` outside the fault path, with its errors:
/// sets the access flag on the leaf at `addr`; `*found` says whether there
/// was a valid leaf (`found` may be NULL).
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// at least the read lock; `found` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn pgw_stage2_mkyoung(
    pgt: *mut kvm_pgtable,
    addr: u64,
    found: *mut bool,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            let f = v.table.shared().mkyoung(Ipa(addr)).map_err(from_error)?;
            if !found.is_null() {
                // SAFETY: not NULL; the caller's contract.
                unsafe { put(found, f) };
            }
            Ok(0)
        })
    })
}

/// `kvm_pgtable_stage2_test_clear_young` with its errors: `*young` (which
/// must not be NULL) says whether a leaf in the range was young.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// at least the read lock; `young` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn pgw_stage2_test_clear_young(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    mkold: bool,
    young: *mut bool,
) -> c_int {
    call(|| {
        if young.is_null() {
            return Err(-PGW_EFAULT);
        }
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            let h = v.table.shared();
            let y = if mkold {
                h.clear_young(Ipa(addr), size)
            } else {
                h.test_young(Ipa(addr), size)
            }
            .map_err(from_error)?;
            // SAFETY: checked not NULL; the caller's contract.
            unsafe { put(young, y) };
            Ok(0)
        })
    })
}

/// `kvm_pgtable_stage2_wrprotect` for a caller beside other walkers:
/// removes write permission from every valid leaf in `size` bytes at
/// `addr` with one compare-and-swap each, so fault handlers may run
/// meanwhile. The TLB is the caller's, as with the kernel's: invalidate the
/// range before relying on it. Returns 0, `-PGW_EINVAL` for a range that
/// is empty or not page-aligned, `-PGW_ERANGE` for one beyond the input
/// size.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// at least the read lock.
#[no_mangle]
pub unsafe extern "C" fn pgw_stage2_wrprotect(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            // The caller's, as the doc says.
            v.table
                .shared()
                .wrprotect(Ipa(addr), size)
                .map_err(from_error)?
                .ignore();
            Ok(0)
        })
    })
}

/// `kvm_pgtable_stage2_destroy` with its errors: 0, or `-PGW_EFAULT` /
/// `-PGW_EINVAL` for a `pgt` that is NULL, not initialised or already
/// destroyed.
///
/// # Safety
///
/// As `kvm_pgtable_stage2_destroy`.
#[no_mangle]
pub unsafe extern "C" fn pgw_stage2_destroy(pgt: *mut kvm_pgtable) -> c_int {
    // SAFETY: the same contract.
    unsafe { destroy(pgt) }
}

/// `kvm_pgtable_stage2_create_unlinked` returning an errno: on 0, `*table`
/// is the new table's virtual address. `level` may be any of the table
/// format's levels but the last, the start level and those above it
/// included. Errors: `-PGW_EINVAL` (`level` 3, or one the format lacks:
/// below -1 for 4 KiB with LPA2, below 0 for 4 KiB and 16 KiB, below 1
/// for 64 KiB; `phys` not aligned to the level's block size; bad prot),
/// `-PGW_ERANGE`, `-PGW_ENOMEM` (nothing leaked).
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// the write lock; `table` is NULL or valid for writes; `mc` is what
/// `zalloc_page` expects.
#[no_mangle]
pub unsafe extern "C" fn pgw_stage2_create_unlinked(
    pgt: *mut kvm_pgtable,
    phys: u64,
    level: i8,
    prot: u64,
    mc: *mut c_void,
    force_pte: bool,
    table: *mut *mut kvm_pte_t,
) -> c_int {
    call(|| {
        if table.is_null() {
            return Err(-PGW_EFAULT);
        }
        let p = prot_of(prot)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Split, |v| {
            let va =
                crate::compat::create_unlinked(v, phys, level, p, &mut Cache::of(mc), force_pte)?;
            // SAFETY: checked not NULL; the caller's contract.
            unsafe { put(table, va) };
            Ok(0)
        })
    })
}

/// The stable name of a `pgw_fault_outcome` value ("fixed", "spurious",
/// ...), the same as the Rust core's `FaultOutcome::name` ("continue" for
/// `PGW_FAULT_CONTINUE`, which only `pgw_walk` reports), for traces; NULL
/// for a value outside the enum. The string is static.
#[no_mangle]
pub extern "C" fn pgw_fault_outcome_name(outcome: u32) -> *const c_char {
    match pgw_fault_outcome::try_from(outcome) {
        Ok(o) => name_cstr(o).as_ptr(),
        Err(_) => ptr::null(),
    }
}

/// `FaultOutcome::name`, NUL-terminated (checked against it in the tests).
fn name_cstr(o: pgw_fault_outcome) -> &'static CStr {
    match o {
        pgw_fault_outcome::PGW_FAULT_CONTINUE => c"continue",
        pgw_fault_outcome::PGW_FAULT_RETRY => c"retry",
        pgw_fault_outcome::PGW_FAULT_EMULATE => c"emulate",
        pgw_fault_outcome::PGW_FAULT_FIXED => c"fixed",
        pgw_fault_outcome::PGW_FAULT_SPURIOUS => c"spurious",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalk::fault::FaultOutcome;

    #[test]
    fn names_are_the_cores() {
        for o in FaultOutcome::ALL {
            let v: u32 = o.into();
            let p = pgw_fault_outcome_name(v);
            assert!(!p.is_null());
            // SAFETY: a static, NUL-terminated string from `name_cstr`.
            let s = unsafe { CStr::from_ptr(p) };
            assert_eq!(s.to_str().unwrap(), o.name());
        }
        for o in TableOutcome::ALL {
            assert_eq!(outcome(o) as u32, u32::from(o));
        }
        // SAFETY: as above.
        let c = unsafe { CStr::from_ptr(pgw_fault_outcome_name(1)) };
        assert_eq!(c.to_str().unwrap(), "continue");
        for v in [0, 4, 7] {
            assert!(pgw_fault_outcome_name(v).is_null());
        }
    }

    #[test]
    fn disallowed_actions_are_eproto() {
        let r = <Exclusive as Typed>::action(pgw_action::PGW_ACTION_RETRY, 0);
        assert!(matches!(r, Err(e) if e == -PGW_EPROTO));
        let r = <Shared as Typed>::action(pgw_action::PGW_ACTION_RESUME_GUEST, 0);
        assert!(matches!(r, Err(e) if e == -PGW_EPROTO));
        let r = <HandlesFault as Typed>::action(pgw_action::PGW_ACTION_SKIP, 0);
        assert!(matches!(r, Err(e) if e == -PGW_EPROTO));
        let r = <HandlesFault as Typed>::action(pgw_action::PGW_ACTION_RESUME_GUEST, 9);
        assert!(matches!(r, Err(e) if e == -PGW_EBADMSG));
    }
}

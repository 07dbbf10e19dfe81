//! The kernel-compatible API: `kvm_pgtable_*` with Linux 6.12's names,
//! signatures, values and behaviour, each a translation onto the core's
//! kernel-compatible operations (`pgwalk::kvm`) or, where the kernel's
//! behaviour is the core's own, onto the core's operations.
//!
//! What is translated here: the kernel's input rounding (addresses aligned
//! down, sizes up, empty ranges done at once), its reading of prot values
//! (unknown bits dropped) and walk flags (the walker kind), the legacy
//! visitor's `int` answers, and errno values. Every function runs inside
//! [`call`](crate::errno::call): a panic never unwinds into C.

use core::ffi::{c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr;

use pgwalk::descriptor::{Descriptor, Pte};
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Granule, Level, TableFormat};
use pgwalk::kvm::KvmMapOptions;
use pgwalk::visit::{Action, ResumeReason, Unfinished, Visit, VisitCtx, Walked};
use pgwalk::{
    free_unlinked, Capability, Exclusive, Handle, HandlesFault, Ipa, PhysAddr, Shared, Va,
};
use pgwalk::{MemoryOps, Prot, Stage2};

use crate::abi::*;
use crate::convert::{kernel_range, kind_of, kvm_prot, visit_flags, visit_kind, Halt, Kind};
use crate::errno::*;
use crate::host::{
    table_virt, with_fresh_view, with_view, CHost, Cache, MmFns, Needs, TablePtr, TlbFns, View,
};
use crate::hyp::{hyp_get_leaf, is_hyp, with_hyp};
use crate::reentry::on_table;

/// What a legacy visitor's `int` means, per walker kind: Linux 6.12's
/// `kvm_pgtable_walk_continue`, expressed as the core's typed actions so
/// that the one walker does the rest.
///
/// - 0: continue.
/// - `-EAGAIN`: continue (the code is ignored) unless the walker handles a
///   fault, which stops and returns it.
/// - anything else: stop, and return it as it is.
trait Legacy: Capability {
    fn interpret(code: c_int, handles_fault: bool) -> Visit<Self, Halt>;
    /// The code a walk that resumed the guest returns.
    fn resumed(reason: Self::Resume) -> c_int;
}

fn stop_with<C: Capability>(code: c_int) -> Visit<C, Halt> {
    Err(Unfinished::Stop(Halt::Errno(code)))
}

impl Legacy for Exclusive {
    fn interpret(code: c_int, handles_fault: bool) -> Visit<Self, Halt> {
        match code {
            0 => Ok(Action::Continue),
            c if c == -PGW_EAGAIN && !handles_fault => Ok(Action::Continue),
            c => stop_with(c),
        }
    }

    fn resumed(reason: Self::Resume) -> c_int {
        match reason {}
    }
}

impl Legacy for Shared {
    fn interpret(code: c_int, _: bool) -> Visit<Self, Halt> {
        match code {
            0 => Ok(Action::Continue),
            c if c == -PGW_EAGAIN => Ok(Action::Continue),
            c => stop_with(c),
        }
    }

    fn resumed(reason: Self::Resume) -> c_int {
        match reason {}
    }
}

impl Legacy for HandlesFault {
    fn interpret(code: c_int, _: bool) -> Visit<Self, Halt> {
        match code {
            0 => Ok(Action::Continue),
            c if c == -PGW_EAGAIN => Err(Unfinished::ResumeGuest(ResumeReason::Raced)),
            c => stop_with(c),
        }
    }

    fn resumed(_: Self::Resume) -> c_int {
        -PGW_EAGAIN
    }
}

type LegacyFn = unsafe extern "C" fn(*const kvm_pgtable_visit_ctx, kvm_pgtable_walk_flags) -> c_int;

/// The kernel walker's arguments, as the visitor's context repeats them.
#[derive(Clone, Copy)]
struct LegacyWalker {
    cb: LegacyFn,
    arg: *mut c_void,
    mm_ops: *mut kvm_pgtable_mm_ops,
    flags: u32,
}

/// One entry as the kernel's visitor sees it.
struct LegacyEntry {
    ptep: *mut kvm_pte_t,
    old: kvm_pte_t,
    addr: u64,
    level: i8,
    visit: kvm_pgtable_walk_flags,
}

impl LegacyEntry {
    /// The entry a visit of either kind of table (stage 2 or hyp) is on.
    fn of<C: Capability, M: MemoryOps, D: Pte>(ctx: &mut VisitCtx<'_, C, M, D>) -> LegacyEntry {
        LegacyEntry {
            ptep: ctx.entry_ptr(),
            old: ctx.old().bits(),
            addr: ctx.addr().get(),
            level: ctx.level().get(),
            visit: visit_kind(ctx.kind()),
        }
    }
}

impl LegacyWalker {
    /// Whether the walker handles a fault (what its `-EAGAIN` means).
    fn handles_fault(&self) -> bool {
        self.flags & WALK_HANDLE_FAULT != 0
    }

    /// The visitor's context for a walk over `start..end`, its entry
    /// fields left for [`visit`](Self::visit) to fill in.
    fn context(&self, start: u64, end: u64) -> kvm_pgtable_visit_ctx {
        kvm_pgtable_visit_ctx {
            ptep: core::ptr::null_mut(),
            old: 0,
            arg: self.arg,
            mm_ops: self.mm_ops,
            start,
            addr: 0,
            end,
            level: 0,
            flags: self.flags,
        }
    }

    /// Calls the visitor on entry `e`, as the kernel calls it, with `c`
    /// from [`context`](Self::context) of this walk.
    ///
    /// One context serves every visit of a walk, so that a visit writes the
    /// entry's four fields and not the walker's five again: the kernel
    /// passes it `const`, and a visitor that wrote it anyway would find its
    /// own values in the walker's fields at its next visit (never a
    /// problem for pgwalk, which reads nothing back from it).
    ///
    /// # Safety
    ///
    /// `cb` is the caller's visitor and `arg` its argument (the contract of
    /// `kvm_pgtable_walk`); `e.ptep` is the entry the walk is visiting.
    #[inline(always)]
    unsafe fn visit(&self, c: &mut kvm_pgtable_visit_ctx, e: LegacyEntry) -> c_int {
        c.ptep = e.ptep;
        c.old = e.old;
        c.addr = e.addr;
        c.level = e.level;
        // SAFETY: the caller's contract; the pointer may be written through
        // (it comes from `&mut`), and nothing is read back from it.
        unsafe { (self.cb)(core::ptr::from_mut(c).cast_const(), e.visit) }
    }
}

/// What `kvm_pgtable_walk` returns for a walk that ended with `walked`.
fn legacy_code<C: Legacy>(walked: Result<Walked<C>, Halt>) -> c_int {
    match walked {
        Ok(Walked::Completed) | Err(Halt::Stopped) => 0,
        Ok(Walked::ResumeGuest(r)) => C::resumed(r),
        Err(Halt::Errno(e)) => e,
    }
}

fn legacy_walk<C: Legacy>(
    mut handle: Handle<'_, C, CHost>,
    addr: u64,
    size: u64,
    w: LegacyWalker,
) -> Result<c_int, c_int> {
    let Some((start, len)) = kernel_range(handle.geometry(), addr, size)? else {
        return Ok(0);
    };
    let end = start.get() + len;
    let mut c = w.context(start.get(), end);
    let c = &mut c;
    // `move`: the walker's arguments are copied into the visitor, where the
    // walk keeps them in registers across the C calls, rather than reread
    // through a reference after each one.
    let walked = handle.walk_with::<Halt, _>(start, len, visit_flags(w.flags), move |ctx| {
        let e = LegacyEntry::of(ctx);
        // SAFETY: the caller's walker (`kvm_pgtable_walk`'s contract), on
        // the entry this walk is visiting.
        let code = unsafe { w.visit(c, e) };
        C::interpret(code, w.handles_fault())
    });
    Ok(legacy_code(walked))
}

/// `kvm_pgtable_walk` on a hyp table: the kernel's walker is the same for
/// both kinds of table, and a hyp table is walked under the caller's lock
/// whatever the flags say (pgwalk's hyp walker is exclusive only), so the
/// flags decide only what a visitor's `-EAGAIN` means, as in
/// `kvm_pgtable_walk_continue`.
///
/// # Safety
///
/// `pgt` is an initialised hyp table no other call uses at the same time;
/// `w` is the caller's walker, with `cb` its visitor.
unsafe fn legacy_hyp_walk(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    cb: LegacyFn,
    w: &kvm_pgtable_walker,
) -> Result<c_int, c_int> {
    let lw = LegacyWalker {
        cb,
        arg: w.arg,
        // SAFETY: readable (the caller's contract).
        mm_ops: unsafe { (*pgt).mm_ops },
        flags: w.flags,
    };
    let walk = |table: &mut ManuallyDrop<pgwalk::hyp::HypTable<_>>| {
        let mut h = table.exclusive();
        let Some((start, len)) = kernel_range(h.geometry(), addr, size)? else {
            return Ok(0);
        };
        let end = start.get() + len;
        let mut c = lw.context(start.get(), end);
        let walked = h.walk_with::<Halt, _>(Va(start.get()), len, visit_flags(lw.flags), |ctx| {
            let e = LegacyEntry::of(ctx);
            // SAFETY: the caller's walker (`kvm_pgtable_walk`'s contract),
            // on the entry this walk is visiting.
            let code = unsafe { lw.visit(&mut c, e) };
            Exclusive::interpret(code, lw.handles_fault())
        });
        Ok(legacy_code(walked))
    };
    // SAFETY: the caller's contract is `with_hyp`'s.
    unsafe { with_hyp(pgt, walk) }
}

/// Linux 6.12 `kvm_pgtable_walk`: walks the range from `addr` aligned down
/// to a page, for `size` bytes rounded up to whole pages, calling
/// `walker->cb` for the entries `walker->flags` selects, in address order.
/// The visitor's return value reads as the kernel's
/// `kvm_pgtable_walk_continue` does (see `kvm_pgtable_visitor_fn_t`).
///
/// Returns 0 when the range was visited (or was empty), what the visitor
/// returned when it stopped the walk, `-PGW_ERANGE` for a range beyond the
/// input size, `-PGW_EINVAL` for an uninitialised `pgt`; and, where the
/// kernel would crash, `-PGW_EFAULT` for NULL `pgt`, `walker` or
/// `walker->cb`.
///
/// A hyp table (from `kvm_pgtable_hyp_init`: `mmu` NULL) is walked as the
/// kernel walks one, under the caller's lock whatever the flags: they
/// select the visits and what `-EAGAIN` means (with `HANDLE_FAULT` it
/// stops the walk and is returned).
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`, or by
/// `kvm_pgtable_hyp_init` (then as for `kvm_pgtable_hyp_map`); `walker` is
/// NULL or valid; the caller holds the lock the walker kind implies (write
/// lock without `SHARED`, read lock with it).
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
        // SAFETY: `pgt` is NULL or readable (the caller's contract).
        if unsafe { is_hyp(pgt) } {
            // SAFETY: an initialised hyp table (the caller's contract).
            return unsafe { legacy_hyp_walk(pgt, addr, size, cb, w) };
        }
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            let lw = LegacyWalker {
                cb,
                arg: w.arg,
                mm_ops: v.mm_ops,
                flags: w.flags,
            };
            match kind_of(w.flags) {
                Kind::Exclusive | Kind::ExclusiveFault => {
                    legacy_walk(v.table.exclusive(), addr, size, lw)
                }
                Kind::Shared => legacy_walk(v.table.shared(), addr, size, lw),
                Kind::Fault => legacy_walk(v.table.fault_handler(), addr, size, lw),
            }
        })
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_pgd_size`: bytes of the root for a
/// VTCR_EL2 value, the size of one table page (the granule's, 4, 16 or
/// 64 KiB from TG0) times the number of concatenated root tables (1 to
/// 16), with or without LPA2. 0 for a VTCR_EL2 the library does not support
/// (which `__kvm_pgtable_stage2_init` refuses with `-PGW_EINVAL`).
#[no_mangle]
pub extern "C" fn kvm_pgtable_stage2_pgd_size(vtcr: u64) -> usize {
    guard_or(0, || Geometry::from_vtcr(vtcr).map_or(0, |g| g.root_size()))
}

/// Linux 6.12 `__kvm_pgtable_stage2_init`: allocates the root with
/// `mm_ops->zalloc_pages_exact` for the geometry in `mmu->vtcr`, and
/// records `mmu`, `mm_ops`, `flags` and `force_pte_cb` in `pgt`. Also
/// writes `mmu->pgd_phys` and `mmu->pgt`.
///
/// Every granule is supported, with LPA2 (see `struct kvm_s2_mmu`): pages
/// from `mm_ops` are the granule's size. The first initialisation with an
/// `mm_ops` binds it to its table's format (granule and LPA2), which
/// `kvm_pgtable_stage2_free_unlinked` reads tables with; an initialisation
/// with the same `mm_ops` and another format is `-PGW_EINVAL` (give each
/// format its own `struct kvm_pgtable_mm_ops`). The library tells apart
/// `PGW_MAX_MM_OPS` of them (bindings are never dropped, so that unlinked
/// tables can be freed after their table): one more is `-PGW_ENOMEM`.
///
/// `flags` are `enum kvm_pgtable_stage2_flags` bits, kept as given:
/// `KVM_PGTABLE_S2_IDMAP` makes `kvm_pgtable_stage2_map` refuse a map whose
/// IPA is not its physical address (`-PGW_EINVAL`); `KVM_PGTABLE_S2_NOFWB`
/// changes nothing (the library does not use FEAT_S2FWB). When
/// `force_pte_cb` is given, `kvm_pgtable_stage2_map` asks it once per call
/// whether to map the range with pages only.
///
/// Returns 0, `-PGW_ENOMEM` when the root cannot be allocated, and (where
/// the kernel would not check) `-PGW_EFAULT` for a NULL pointer and
/// `-PGW_EINVAL` for a VTCR_EL2 the architecture does not allow or a
/// missing callback (of the memory callbacks, initialisation needs
/// `zalloc_pages_exact` and the two conversions, and each later call those
/// of its operation: see `struct kvm_pgtable_mm_ops`; `mmu`'s TLB
/// callbacks are required but `tlb_flush_vmid_ipa_nsh`). On error `pgt`
/// and `mmu` are left as they
/// were.
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
        // A callback of a call on `pgt` (the allocator's, or a visitor's)
        // may not initialise it again under that call's feet.
        on_table(pgt, ptr::null(), || {
            // SAFETY: NULL or valid (the caller's contract).
            let mm = unsafe { MmFns::from_c(mm_ops, Needs::Root) }?;
            // SAFETY: as above.
            let tlb = unsafe { TlbFns::from_c(mmu, Needs::Root) }?;
            // SAFETY: `from_c` refused a NULL `mmu`.
            let vtcr = unsafe { (*mmu).vtcr };
            let geometry = Geometry::from_vtcr(vtcr).map_err(|_| -PGW_EINVAL)?;
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
                    mmu,
                    flags,
                    force_pte_cb,
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
        // A view of its own: the one a thread keeps for its next call must
        // never be the one dropped.
        with_fresh_view(table, Needs::Destroy, |v| {
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

/// Linux 6.12 `kvm_pgtable_stage2_destroy`: frees every table page and the
/// root through `mm_ops` (`put_page`, then `free_pages_exact`), and sets
/// `pgt->pgd` to NULL. No TLB invalidation: the VMID retires with the
/// table. A `pgt` that is NULL or not initialised is left alone (use
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

/// Whether the table's `force_pte_cb` wants pages only for this call:
/// asked once per call, for the whole range as given, as the kernel does.
fn force_pte(v: &View, addr: u64, size: u64, prot: u64) -> bool {
    match v.force_pte_cb {
        // SAFETY: the caller's callback, registered at initialisation.
        Some(cb) => unsafe { cb(addr, addr.wrapping_add(size), prot) },
        None => false,
    }
}

/// The memory cache a kernel map walker allocates tables from: none at all
/// for a NULL `mc` (the kernel's map answers `-ENOMEM` where it needs a
/// table and has no cache), else `mc` for `zalloc_page`.
fn map_cache(mc: *mut c_void) -> Cache {
    if mc.is_null() {
        Cache::none()
    } else {
        Cache::of(mc)
    }
}

/// The kernel's options for a map with these walk flags.
fn kvm_map_options(flags: u32, force_pte: bool) -> KvmMapOptions {
    KvmMapOptions {
        force_pte,
        skip_cmo: flags & WALK_SKIP_CMO != 0,
        skip_bbm_tlbi: flags & WALK_SKIP_BBM_TLBI != 0,
        table_post: flags & WALK_TABLE_POST != 0,
    }
}

/// Linux 6.12 `kvm_pgtable_stage2_map`: maps `size` bytes at IPA `addr` to
/// `phys` with `prot`, with the largest blocks alignment allows (pages only
/// when the table's `force_pte_cb` says so), new table pages from
/// `mm_ops->zalloc_page(mc)`. `addr` is aligned down to a page, `size`
/// rounded up, `phys` aligned down, unknown `prot` bits are dropped, and an
/// empty range maps nothing.
///
/// - A valid leaf that differs from the new one only in permissions is left
///   as it is (the fault path then returns `-PGW_EAGAIN`); one that differs
///   in more is replaced by break-before-make, with cache maintenance for
///   the new leaf unless `KVM_PGTABLE_WALK_SKIP_CMO`.
/// - A block the range cuts is replaced by a table holding only what the
///   range maps: the rest of it is unmapped, to be faulted back in.
/// - With `flags` 0 the caller holds the write lock. With
///   `KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT` it is a vCPU's
///   fault path: 0 when the walk went through, `-PGW_EAGAIN` when it stopped
///   at a leaf needing no update or lost a race (resume the guest).
///
/// Errors: `-PGW_EINVAL` (DEVICE with NORMAL_NC, executable DEVICE or
/// NORMAL_NC memory, `addr != phys` with `KVM_PGTABLE_S2_IDMAP`),
/// `-PGW_ERANGE` (beyond the input size), `-PGW_ENOMEM` (no table page from
/// `mc`, or `mc` NULL where one was needed; the range before the failure is
/// mapped). Where pgwalk deliberately differs from 6.12 (README, "Kernel
/// parity"): an output address beyond VTCR_EL2.PS is `-PGW_ERANGE`;
/// `SKIP_BBM_TLBI` invalidates the range once at the end when a break
/// skipped its invalidation. `SHARED` without `HANDLE_FAULT` (updates by
/// compare-and-swap, races passed over) and `HANDLE_FAULT` without `SHARED`
/// (plain stores, stopping with `-PGW_EAGAIN`) work as in the kernel.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; `mc` is NULL or
/// what `mm_ops->zalloc_page` expects; the caller holds the lock `flags`
/// implies.
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
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Map, |v| {
            let force = force_pte(v, addr, size, prot);
            if v.flags & S2_IDMAP != 0 && addr != phys {
                return Err(-PGW_EINVAL);
            }
            let p = kvm_prot(prot);
            // The kernel checks the protection before the range.
            pgwalk::descriptor::LeafAttrs::from_prot(p).map_err(from_error)?;
            let Some((ipa, len)) = kernel_range(v.table.geometry(), addr, size)? else {
                return Ok(0);
            };
            let page = v.table.geometry().granule().size();
            let pa = PhysAddr(phys & !(page - 1));
            let opts = kvm_map_options(flags, force);
            let mut cache = map_cache(mc);
            match kind_of(flags) {
                Kind::Exclusive => {
                    let mut h = v.table.exclusive();
                    h.kvm()
                        .map(ipa, len, pa, p, &mut cache, opts)
                        .map_err(from_error)?;
                    Ok(0)
                }
                Kind::Fault => {
                    let h = v.table.fault_handler();
                    match h.kvm().map(ipa, len, pa, p, &mut cache, opts) {
                        Ok(TableOutcome::Fixed) => Ok(0),
                        Ok(TableOutcome::Spurious | TableOutcome::Retry) => Err(-PGW_EAGAIN),
                        Err(e) => Err(from_error(e)),
                    }
                }
                Kind::Shared => {
                    let h = v.table.shared();
                    h.kvm()
                        .map(ipa, len, pa, p, &mut cache, opts)
                        .map_err(from_error)?;
                    Ok(0)
                }
                Kind::ExclusiveFault => {
                    let mut h = v.table.exclusive();
                    match h.kvm().map_stopping(ipa, len, pa, p, &mut cache, opts) {
                        Ok(TableOutcome::Fixed) => Ok(0),
                        Ok(TableOutcome::Spurious | TableOutcome::Retry) => Err(-PGW_EAGAIN),
                        Err(e) => Err(from_error(e)),
                    }
                }
            }
        })
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_set_owner`: annotates `size` bytes at
/// `addr` (aligned as `kvm_pgtable_stage2_map` does) as owned by
/// `owner_id`, page by page: invalid entries carrying the id, which keep
/// their table pages alive. Mappings in the range are removed (blocks the
/// range cuts go whole). Owner 0 writes zero entries; tables left with
/// nothing else stay linked until an unmap of the range. Write lock.
///
/// Errors: `-PGW_EINVAL` for an `owner_id` above `KVM_MAX_OWNER_ID`,
/// `-PGW_ERANGE`, `-PGW_ENOMEM` (as `kvm_pgtable_stage2_map`).
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
        if u32::from(owner_id) > KVM_MAX_OWNER_ID {
            return Err(-PGW_EINVAL);
        }
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Map, |v| {
            let Some((ipa, len)) = kernel_range(v.table.geometry(), addr, size)? else {
                return Ok(0);
            };
            v.table
                .exclusive()
                .kvm()
                .set_owner(ipa, len, u32::from(owner_id), &mut map_cache(mc))
                .map_err(from_error)?;
            Ok(0)
        })
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_unmap`: removes every mapping and
/// annotation the range touches (aligned as `kvm_pgtable_stage2_map`
/// does): a block the range cuts goes whole, its rest to be faulted back
/// in. Each valid leaf is invalidated by IPA and level, and cacheable
/// memory cleaned to the point of coherency; a table left empty is freed
/// and invalidated by IPA without a level. Write lock. Errors:
/// `-PGW_ERANGE`.
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
        with_view(pgt, Needs::Unmap, |v| {
            let Some((ipa, len)) = kernel_range(v.table.geometry(), addr, size)? else {
                return Ok(0);
            };
            v.table
                .exclusive()
                .kvm()
                .unmap(ipa, len)
                .map_err(from_error)?;
            Ok(0)
        })
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_wrprotect`: removes write permission
/// from every valid leaf in the range (aligned as `kvm_pgtable_stage2_map`
/// does). As in the kernel, the TLB is left to the caller: invalidate the
/// range (`kvm_tlb_flush_vmid_range`) before relying on it. Errors:
/// `-PGW_ERANGE`.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// the write lock (the kernel's contract: updates here are plain stores, as
/// the kernel's are; `pgw_stage2_wrprotect` is the one for a read lock
/// beside fault handlers).
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_wrprotect(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            let Some((ipa, len)) = kernel_range(v.table.geometry(), addr, size)? else {
                return Ok(0);
            };
            // The kernel's contract: the caller invalidates.
            v.table
                .exclusive()
                .wrprotect(ipa, len)
                .map_err(from_error)?
                .ignore();
            Ok(0)
        })
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_mkyoung`: sets the access flag on the
/// valid leaf translating `addr`, as the fault path does, and returns the
/// leaf as it was; 0 when there was none, another walker changed it
/// first, or the call failed (`pgw_stage2_fault_mkyoung` reports why). No
/// TLB invalidation.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init` (or is NULL); the
/// caller holds at least the read lock.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_stage2_mkyoung(pgt: *mut kvm_pgtable, addr: u64) -> kvm_pte_t {
    guard_or(0, || {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            // As in relax_perms, the operation checks the range.
            let (_, old) = v
                .table
                .fault_handler()
                .kvm()
                .mkyoung(Ipa(addr))
                .map_err(from_error)?;
            Ok(old.bits())
        })
        .unwrap_or(0)
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_test_clear_young`: whether any valid
/// leaf in the range (aligned as `kvm_pgtable_stage2_map` does) has its
/// access flag set; with `mkold`, clears them. No TLB invalidation: a
/// stale young entry only delays the next aging. A range beyond the input
/// size (a kernel WARN) or a bad `pgt` reads as false.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init` (or is NULL); the
/// caller holds the write lock, as the kernel's caller does (updates here
/// are plain stores; `pgw_stage2_test_clear_young` is the one for a read
/// lock).
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
        with_view(pgt, Needs::Conversions, |v| {
            let Some((ipa, len)) = kernel_range(v.table.geometry(), addr, size)? else {
                return Ok(false);
            };
            let mut h = v.table.exclusive();
            let young = if mkold {
                h.clear_young(ipa, len)
            } else {
                h.test_young(ipa, len)
            };
            young.map_err(from_error)
        })
        .unwrap_or(false)
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_relax_perms`: adds the R, W and X of
/// `prot` (other bits but the software ones are ignored) to the valid leaf
/// translating `addr`, as the fault path does, then invalidates `addr` on
/// this CPU (`mmu->tlb_flush_vmid_ipa_nsh`, with the leaf's level, or
/// `TLBI_TTL_UNKNOWN` after `-PGW_EAGAIN`). Returns 0, `-PGW_EAGAIN` when
/// there was no valid leaf or another walker changed it first (resume the
/// guest), `-PGW_EINVAL` for software bits in `prot`, `-PGW_ERANGE`.
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
) -> c_int {
    call(|| {
        if prot & Prot::SW.bits() != 0 {
            return Err(-PGW_EINVAL);
        }
        let p = kvm_prot(prot) & (Prot::RW | Prot::X);
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Relax, |v| {
            // The operation pages `addr` down and refuses a page beyond the
            // input size (-PGW_ERANGE), as `kernel_range` would: checking
            // here too cost 16 of the call's 470 instructions.
            match v
                .table
                .fault_handler()
                .relax_perms(Ipa(addr), p)
                .map_err(from_error)?
            {
                TableOutcome::Fixed | TableOutcome::Spurious => Ok(0),
                TableOutcome::Retry => Err(-PGW_EAGAIN),
            }
        })
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_flush`: cleans and invalidates the data
/// cache for every cacheable leaf mapped in the range (aligned as
/// `kvm_pgtable_stage2_map` does), through `mm_ops->dcache_clean_inval_poc`.
/// Errors: `-PGW_ERANGE`.
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
        with_view(pgt, Needs::Conversions, |v| {
            let Some((ipa, len)) = kernel_range(v.table.geometry(), addr, size)? else {
                return Ok(0);
            };
            v.table
                .shared()
                .clean_dcache(ipa, len)
                .map_err(from_error)?;
            Ok(0)
        })
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_split`: splits every block intersecting
/// the range (aligned as `kvm_pgtable_stage2_map` does) into pages, table
/// pages from `mm_ops->zalloc_page(mc)`. Write lock. `-PGW_ENOMEM` leaves
/// the blocks split so far split.
///
/// pgwalk deliberately differs from 6.12 here (README, "Kernel parity"): it
/// splits only the part of a block inside the range, one level at a time
/// (it cannot read how full the kernel's memory cache is), and keeps each
/// block's exact attributes (6.12 rebuilds Device and non-cacheable blocks
/// as Normal write-back pages, and sets the access flag).
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
    mc: *mut c_void,
) -> c_int {
    call(|| {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Split, |v| {
            let Some((ipa, len)) = kernel_range(v.table.geometry(), addr, size)? else {
                return Ok(0);
            };
            v.table
                .exclusive()
                .split(ipa, len, &mut Cache::of(mc))
                .map_err(from_error)?;
            Ok(0)
        })
    })
}

/// The unlinked table `create_unlinked` builds, as a virtual address.
pub(crate) fn create_unlinked(
    v: &mut View,
    phys: u64,
    level: i8,
    prot: Prot,
    cache: &mut Cache,
    force_pte: bool,
) -> Result<*mut kvm_pte_t, c_int> {
    let level = Level::new(level).ok_or(-PGW_EINVAL)?;
    let mut h = v.table.exclusive();
    let pa = if force_pte {
        h.create_unlinked_pages(PhysAddr(phys), level, prot, cache)
    } else {
        h.create_unlinked(PhysAddr(phys), level, prot, cache)
    }
    .map_err(from_error)?;
    Ok(table_virt(v.table.mm(), pa))
}

/// The memory cache of a kernel `create_unlinked`: 6.12 takes the new
/// table's own page with `zalloc_page(mc)` whatever `mc` is, but the map
/// walker that fills it answers `-ENOMEM` for a table below it when `mc` is
/// NULL.
fn unlinked_cache(mc: *mut c_void) -> Cache {
    if mc.is_null() {
        Cache::at_most(mc, 1)
    } else {
        Cache::of(mc)
    }
}

/// Linux 6.12 `kvm_pgtable_stage2_create_unlinked`: builds a table that no
/// table links, mapping what one entry of `level` maps from `phys` with
/// `prot` (unknown bits dropped): blocks one level down, or pages all the
/// way with `force_pte`. Returns its virtual address, to be linked with a
/// break-before-make of the caller's or freed with
/// `kvm_pgtable_stage2_free_unlinked` at the same `level`; on error, the
/// kernel's `ERR_PTR(-errno)`: a pointer whose value is the negated errno,
/// in the last 4095 bytes of the address space (`pgw_stage2_create_unlinked`
/// returns the errno directly). Errors: `-PGW_EINVAL` (`level` 3, or one
/// the table's format lacks: below -1, 0 or 1 for 4 KiB with LPA2, 4 and
/// 16 KiB, 64 KiB; `phys` not aligned to the level's entry size; bad prot),
/// `-PGW_ENOMEM` (no page from `zalloc_page(mc)`, or `mc` NULL where a
/// table below the new one is needed, as with `force_pte` above level 2;
/// nothing leaked).
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
    let on_panic = (-PGW_ENOTRECOVERABLE) as isize as *mut kvm_pte_t;
    guard_or(on_panic, || {
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        match with_view(pgt, Needs::Split, |v| {
            let mut cache = unlinked_cache(mc);
            create_unlinked(v, phys, level, kvm_prot(prot), &mut cache, force_pte)
        }) {
            Ok(table) => table,
            // ERR_PTR: an address no allocation can have, never dereferenced
            // here.
            Err(e) => e as isize as *mut kvm_pte_t,
        }
    })
}

/// Linux 6.12 `kvm_pgtable_stage2_free_unlinked`: frees an unlinked table
/// subtree, every table page below `pgtable` and `pgtable` itself, through
/// `mm_ops->put_page`. `level` is that of the entry that linked it (as
/// `free_unlinked_table` receives it, or as given to
/// `kvm_pgtable_stage2_create_unlinked`). Hosts call it from their
/// `free_unlinked_table` callback once the grace period has passed.
/// The table is read in the format (granule, LPA2) `mm_ops` was bound to
/// by `__kvm_pgtable_stage2_init`. A NULL `pgtable`, one not aligned to the
/// granule, a level that is not one of the format's table levels (from its
/// first level, -1, 0 or 1, up to 2), a NULL `put_page`, `phys_to_virt` or
/// `virt_to_phys`, or an `mm_ops` no initialisation used leave everything
/// alone.
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
        let mm = unsafe { MmFns::from_c(mm_ops, Needs::FreeUnlinked) }?;
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

/// Linux 6.12 `kvm_pgtable_get_leaf`: the entry translating `addr` (a valid
/// leaf, or the invalid entry where translation stops) to `*ptep` and its
/// level to `*level` (either may be NULL). Returns 0, `-PGW_ERANGE` beyond
/// the input size, `-PGW_EINVAL` (and `-PGW_EFAULT` for NULL) for a bad
/// `pgt`. On a hyp table (`mmu` NULL) it is `pgw_hyp_get_leaf`, as the
/// kernel's one walker serves both kinds of table.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`, or by
/// `kvm_pgtable_hyp_init` (then as for `kvm_pgtable_hyp_map`); `ptep` and
/// `level` are NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_get_leaf(
    pgt: *mut kvm_pgtable,
    addr: u64,
    ptep: *mut kvm_pte_t,
    level: *mut i8,
) -> c_int {
    call(|| {
        // SAFETY: `pgt` is NULL or readable (the caller's contract).
        if unsafe { is_hyp(pgt) } {
            // SAFETY: an initialised hyp table; `ptep` and `level` as
            // below (the caller's contract).
            return unsafe { hyp_get_leaf(pgt, addr, ptep, level) };
        }
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
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

/// Linux 6.12 `kvm_pgtable_stage2_pte_prot`: the protection a stage-2
/// entry grants, as `enum kvm_pgtable_prot` bits: its software bits, and,
/// for a valid entry, R and W from S2AP and X unless XN\[1\] (bit 54) is
/// set.
#[no_mangle]
pub extern "C" fn kvm_pgtable_stage2_pte_prot(pte: kvm_pte_t) -> u64 {
    let d = Descriptor::from_bits(pte);
    let mut prot = pte & Prot::SW.bits();
    if !d.is_valid() {
        return prot;
    }
    if d.readable() {
        prot |= KVM_PGTABLE_PROT_R;
    }
    if d.writable() {
        prot |= KVM_PGTABLE_PROT_W;
    }
    if pte & KVM_PTE_LEAF_ATTR_HI_S2_XN == 0 {
        prot |= KVM_PGTABLE_PROT_X;
    }
    prot
}

/// Linux 6.12 `kvm_get_vtcr`, as a 4 KiB kernel without LPA2 computes it:
/// the VTCR_EL2 value for an IPA size of `phys_shift` bits on a CPU with
/// these ID registers — inner-shareable write-back walks, PS from
/// `ID_AA64MMFR0_EL1.PARange` (at most 48 bits), the fewest levels (at
/// least two) whose root needs no more than 16 concatenated tables, and
/// 16-bit VMIDs when `ID_AA64MMFR1_EL1.VMIDBits` says so.
///
/// The kernel's takes the granule from its `PAGE_SIZE` and LPA2 from the
/// system; one library serves every granule, so this one keeps the
/// 4 KiB kernel's answer and `pgw_get_vtcr` takes the granule and LPA2.
#[no_mangle]
pub extern "C" fn kvm_get_vtcr(mmfr0: u64, mmfr1: u64, phys_shift: u32) -> u64 {
    linux_vtcr(mmfr0, mmfr1, phys_shift, TableFormat::FOUR_KIB)
}

/// `kvm_get_vtcr` as Linux 6.12 computes it when built with pages of
/// `1 << page_shift` bytes (12, 14 or 16) and with `lpa2` as
/// `kvm_lpa2_is_enabled()`: TG0 for that granule, DS with LPA2, SL0 for
/// the fewest levels of that granule (at least two; never level -1: the
/// root concatenates instead), and PS capped at 52 bits with LPA2 or with
/// 64 KiB pages (a kernel with `CONFIG_ARM64_PA_BITS_52`), at 48 bits
/// otherwise. 0 for another `page_shift`, or LPA2 with 64 KiB pages.
#[no_mangle]
pub extern "C" fn pgw_get_vtcr(
    mmfr0: u64,
    mmfr1: u64,
    phys_shift: u32,
    page_shift: u32,
    lpa2: bool,
) -> u64 {
    guard_or(0, || {
        let granule = match page_shift {
            12 => Granule::Size4KiB,
            14 => Granule::Size16KiB,
            16 => Granule::Size64KiB,
            _ => return 0,
        };
        TableFormat::new(granule, lpa2).map_or(0, |f| linux_vtcr(mmfr0, mmfr1, phys_shift, f))
    })
}

/// The body of `kvm_get_vtcr` for a kernel whose tables have `format`.
fn linux_vtcr(mmfr0: u64, mmfr1: u64, phys_shift: u32, format: TableFormat) -> u64 {
    const PARANGE_48: u64 = 5;
    const PARANGE_52: u64 = 6;
    // kvm_get_parange_max: 52 bits with LPA2, or with 64 KiB pages when the
    // kernel supports 52-bit PAs.
    let parange_max = if format.max_oa_bits() == 52 {
        PARANGE_52
    } else {
        PARANGE_48
    };
    let parange = (mmfr0 & 0xf).min(parange_max);
    let granule = format.granule();
    // stage2_pgtable_levels: the levels stage 1 would need for four bits
    // fewer (the root concatenates up to 16 tables), at least two.
    let per_level = u64::from(granule.shift()) - 3;
    let levels = (u64::from(phys_shift).saturating_sub(8) / per_level).max(2);
    // VTCR_EL2_LVLS_TO_SL0: SL0 counts from level 2 with 4 KiB pages, from
    // level 3 with the others.
    let sl0_base = if granule == Granule::Size4KiB { 2 } else { 3 };
    let sl0 = (sl0_base + levels).wrapping_sub(4);
    let vmid16 = (mmfr1 >> 4) & 0xf == 2;
    (1 << 31) // RES1
        | 0b11 << 12 // SH0: inner shareable
        | 0b01 << 10 // ORGN0: write-back, write-allocate
        | 0b01 << 8 // IRGN0: write-back, write-allocate
        | granule.tg0() << 14
        | parange << 16
        | 64u64.wrapping_sub(u64::from(phys_shift)) & 0x3f
        | (sl0 & 0b11) << 6
        | u64::from(vmid16) << 19
        | u64::from(format.lpa2()) << 32
}

/// Linux 6.12 `kvm_tlb_flush_vmid_range`: invalidates the stage-2 TLB
/// entries for `size` bytes from `addr` through `mmu->tlb_flush_vmid_range`.
/// A NULL `mmu` or callback is ignored.
///
/// # Safety
///
/// `mmu` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn kvm_tlb_flush_vmid_range(mmu: *mut kvm_s2_mmu, addr: u64, size: usize) {
    guard_or((), || {
        // SAFETY: NULL or valid (the caller's contract).
        if let Some(f) = unsafe { mmu.as_ref() }.and_then(|m| m.tlb_flush_vmid_range) {
            // SAFETY: the MMU's own callback, given the MMU.
            unsafe { f(mmu, addr, size as u64) };
        }
    })
}

//! EL2 stage-1 tables from C: `kvm_pgtable_hyp_init`, `_destroy`, `_map`,
//! `_unmap` and `kvm_pgtable_hyp_pte_prot` with Linux 6.12's signatures,
//! over `pgwalk::hyp`; and `pgw_hyp_set_tlb_ops` / `pgw_hyp_get_leaf`, what
//! the kernel does inline or through its generic walker.
//!
//! Like the kernel, a hyp table is a `struct kvm_pgtable` whose `mmu` is
//! NULL; the stage-2 functions refuse it (no MMU) and these refuse a
//! stage-2 table (`-PGW_EINVAL`). Its root is one page from `zalloc_page`,
//! freed with `put_page`, and it needs only `zalloc_page`, `get_page`,
//! `put_page`, `phys_to_virt` and `virt_to_phys` of its `mm_ops`, as pKVM's
//! hyp allocators provide; without `page_count`, unmap does nothing and
//! returns 0, as in the kernel.
//!
//! Every format is supported: pages of 4, 16 or 64 KiB, with LPA2
//! (TCR_EL2.DS) or not. As for stage 2, an `mm_ops` serves one format and
//! the first initialisation with it binds it (`formats.rs`); the hyp
//! functions read the table's format from that binding, since `struct
//! kvm_pgtable` holds none.
//!
//! The kernel issues `tlbi vale2is` / `vae2is` and its barriers inline.
//! pgwalk issues no instruction of its own: a C hypervisor registers its
//! EL2 TLB maintenance once with `pgw_hyp_set_tlb_ops`. The EL2 regime has
//! no ASID or VMID, so the same operations serve every hyp table, as the
//! kernel's inline instructions do. Initialising a hyp table without them
//! fails, and every later call refuses to run without them, so no
//! invalidation is ever skipped.

use core::ffi::{c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use pgwalk::descriptor::HypDescriptor;
use pgwalk::geometry::{Geometry, Granule, Level, TableFormat};
use pgwalk::hyp::{HypTable, HypTlb};
use pgwalk::{Ipa, MemoryOps, PhysAddr, Prot, Va};

use crate::abi::*;
use crate::convert::{kernel_range, kvm_prot};
use crate::errno::{call, from_error, guard_or, PGW_EFAULT, PGW_EINVAL};
use crate::reentry::on_table;

/// The hypervisor's EL2 TLB maintenance and barriers, for every hyp table
/// (`pgw_hyp_set_tlb_ops`). Each callback must have its effect on every
/// CPU of the inner-shareable domain before it returns. All three are
/// required.
#[repr(C)]
pub struct pgw_hyp_tlb_ops {
    /// The leaf for `va` at `level` was removed or lost a permission:
    /// invalidate its translations (`dsb ishst; tlbi vale2is, va >> 12;
    /// dsb ish; isb`).
    pub flush_va: Option<unsafe extern "C" fn(arg: *mut c_void, va: u64, level: i8)>,
    /// The table entry at `level` covering `va` was removed: invalidate the
    /// walks cached through it too (`dsb ishst; tlbi vae2is, va >> 12;
    /// dsb ish; isb`).
    pub flush_va_walks: Option<unsafe extern "C" fn(arg: *mut c_void, va: u64, level: i8)>,
    /// Entries were stored into live tables: make them visible to the
    /// table walker before they are used (`dsb ishst; isb`).
    pub publish: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    /// Passed to every callback.
    pub arg: *mut c_void,
}

type VaFn = unsafe extern "C" fn(*mut c_void, u64, i8);

/// The registered callbacks, copied.
#[derive(Clone, Copy)]
struct TlbFns {
    flush_va: VaFn,
    flush_va_walks: VaFn,
    publish: unsafe extern "C" fn(*mut c_void),
    arg: *mut c_void,
}

// SAFETY: the pointers are the caller's callbacks and the argument it
// registered for them; the library only hands `arg` back to those
// callbacks, which the caller made callable from any thread that calls the
// library (as the kernel's TLB instructions are).
unsafe impl Send for TlbFns {}
// SAFETY: as above; the copy is never written after registration.
unsafe impl Sync for TlbFns {}

#[cfg(feature = "std")]
static TLB: std::sync::RwLock<Option<TlbFns>> = std::sync::RwLock::new(None);
#[cfg(not(feature = "std"))]
static TLB: spin::RwLock<Option<TlbFns>> = spin::RwLock::new(None);

fn registered_tlb() -> Result<TlbFns, c_int> {
    // A poisoned lock still holds a consistent `Option` (written whole).
    #[cfg(feature = "std")]
    let tlb = *TLB.read().unwrap_or_else(|p| p.into_inner());
    #[cfg(not(feature = "std"))]
    let tlb = *TLB.read();
    tlb.ok_or(-PGW_EINVAL)
}

fn register_tlb(new: Option<TlbFns>) {
    #[cfg(feature = "std")]
    let mut tlb = TLB.write().unwrap_or_else(|p| p.into_inner());
    #[cfg(not(feature = "std"))]
    let mut tlb = TLB.write();
    *tlb = new;
}

/// Registers the EL2 TLB maintenance every hyp table uses (copied: `ops`
/// need not outlive the call), or with NULL withdraws it, after which hyp
/// calls refuse to run. `-PGW_EINVAL` if a callback is missing (nothing
/// changes then).
///
/// # Safety
///
/// `ops` is NULL or points to a readable `struct pgw_hyp_tlb_ops` whose
/// callbacks may be called, with its `arg`, from any thread that calls the
/// library, until they are withdrawn or replaced.
#[no_mangle]
pub unsafe extern "C" fn pgw_hyp_set_tlb_ops(ops: *const pgw_hyp_tlb_ops) -> c_int {
    call(|| {
        // SAFETY: NULL or readable (the caller's contract).
        let new = match unsafe { ops.as_ref() } {
            None => None,
            Some(o) => Some(TlbFns {
                flush_va: o.flush_va.ok_or(-PGW_EINVAL)?,
                flush_va_walks: o.flush_va_walks.ok_or(-PGW_EINVAL)?,
                publish: o.publish.ok_or(-PGW_EINVAL)?,
                arg: o.arg,
            }),
        };
        register_tlb(new);
        Ok(0)
    })
}

/// The `mm_ops` callbacks a hyp table uses, copied at the start of a call.
#[derive(Clone, Copy)]
struct HypMmFns {
    zalloc_page: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    get_page: unsafe extern "C" fn(*mut c_void),
    put_page: unsafe extern "C" fn(*mut c_void),
    page_count: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    phys_to_virt: unsafe extern "C" fn(u64) -> *mut c_void,
    virt_to_phys: unsafe extern "C" fn(*mut c_void) -> u64,
}

impl HypMmFns {
    /// `-PGW_EFAULT` for NULL, `-PGW_EINVAL` for a missing callback.
    ///
    /// # Safety
    ///
    /// `ops` is NULL or points to a readable `struct kvm_pgtable_mm_ops`.
    unsafe fn from_c(ops: *const kvm_pgtable_mm_ops) -> Result<HypMmFns, c_int> {
        // SAFETY: NULL is handled by `as_ref`; otherwise the caller's contract.
        let ops = unsafe { ops.as_ref() }.ok_or(-PGW_EFAULT)?;
        let missing = -PGW_EINVAL;
        Ok(HypMmFns {
            zalloc_page: ops.zalloc_page.ok_or(missing)?,
            get_page: ops.get_page.ok_or(missing)?,
            put_page: ops.put_page.ok_or(missing)?,
            page_count: ops.page_count,
            phys_to_virt: ops.phys_to_virt.ok_or(missing)?,
            virt_to_phys: ops.virt_to_phys.ok_or(missing)?,
        })
    }
}

/// A C hypervisor's callbacks as the host of a `pgwalk::hyp::HypTable` of
/// one format: the one its `mm_ops` is bound to (see `formats.rs`).
pub(crate) struct CHypHost {
    mm: HypMmFns,
    tlb: TlbFns,
    format: TableFormat,
}

impl CHypHost {
    fn virt(&self, pa: PhysAddr) -> *mut c_void {
        self.phys_to_virt(pa).as_ptr().cast()
    }

    fn phys(&self, va: *mut c_void) -> PhysAddr {
        // SAFETY: the host's address conversion callback.
        PhysAddr(unsafe { (self.mm.virt_to_phys)(va) })
    }
}

// SAFETY: the promises `MemoryOps` asks for are those `struct
// kvm_pgtable_mm_ops` documents for the C host (zeroed pages of the
// granule its `mm_ops` is bound to, aligned to it, starting at count 1; `phys_to_virt` mapping them while allocated;
// `put_page` freeing at zero). What can be checked is, with a panic the
// boundary turns into an error: NULL or misaligned pointers from
// `phys_to_virt`, pages not page-aligned. Without `page_count` the count
// reads as never 1, so nothing is freed on that basis (pgwalk uses it only
// to free empty tables). Hyp tables use none of the stage-2 methods: they
// panic, which only a library bug could reach.
unsafe impl MemoryOps for CHypHost {
    type PagePool = ();

    fn table_format(&self) -> TableFormat {
        self.format
    }

    fn zalloc_page(&self, _: &mut ()) -> Option<PhysAddr> {
        // SAFETY: the host's allocator callback; hyp tables pass no memory
        // cache (NULL), as the kernel does.
        let va = unsafe { (self.mm.zalloc_page)(ptr::null_mut()) };
        if va.is_null() {
            return None;
        }
        let pa = self.phys(va);
        assert!(
            pa.is_aligned(self.format.granule().size()),
            "zalloc_page returned {pa:?}, not aligned to a {} page",
            self.format.granule()
        );
        Some(pa)
    }

    fn zalloc_pages_exact(&self, _: usize) -> Option<PhysAddr> {
        None
    }

    unsafe fn free_pages_exact(&self, pa: PhysAddr, _: usize) {
        unreachable!("hyp tables allocate no exact blocks ({pa:?})")
    }

    unsafe fn free_unlinked_table(&self, table: PhysAddr, _: Level) {
        unreachable!("hyp tables unlink nothing under shared walkers ({table:?})")
    }

    unsafe fn get_page(&self, pa: PhysAddr) {
        // SAFETY: a reference-count callback on a page the host gave pgwalk,
        // for an entry pgwalk is storing in it.
        unsafe { (self.mm.get_page)(self.virt(pa)) }
    }

    unsafe fn put_page(&self, pa: PhysAddr) {
        // SAFETY: pgwalk drops a reference it holds.
        unsafe { (self.mm.put_page)(self.virt(pa)) }
    }

    unsafe fn get_page_at(&self, _pa: PhysAddr, entry: NonNull<u64>) {
        // SAFETY: as `get_page`; the callback takes any address in the page,
        // and the kernel's hyp walker gives it the entry's.
        unsafe { (self.mm.get_page)(entry.as_ptr().cast()) }
    }

    unsafe fn put_page_at(&self, _pa: PhysAddr, entry: NonNull<u64>) {
        // SAFETY: as `put_page`, with the entry's address.
        unsafe { (self.mm.put_page)(entry.as_ptr().cast()) }
    }

    fn page_count(&self, pa: PhysAddr) -> usize {
        match self.mm.page_count {
            // SAFETY: a read-only callback on a page the host gave pgwalk.
            Some(f) => usize::try_from(unsafe { f(self.virt(pa)) }).unwrap_or(usize::MAX),
            None => usize::MAX,
        }
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        // SAFETY: the host's address conversion callback.
        let va = unsafe { (self.mm.phys_to_virt)(pa.get()) };
        let va = NonNull::new(va.cast::<u8>())
            .unwrap_or_else(|| panic!("phys_to_virt({pa:?}) returned NULL"));
        assert!(
            va.as_ptr().align_offset(8) == 0,
            "phys_to_virt({pa:?}) returned a pointer that is not 8-byte aligned"
        );
        va
    }

    fn dcache_clean_inval_poc(&self, pa: PhysAddr, _: u64) {
        unreachable!("hyp tables do no cache maintenance ({pa:?})")
    }

    fn icache_inval_pou(&self, pa: PhysAddr, _: u64) {
        unreachable!("hyp tables do no cache maintenance ({pa:?})")
    }

    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, _: Level) {
        unreachable!("no stage-2 TLB maintenance for hyp tables ({ipa:?})")
    }

    fn tlb_flush_vmid_range(&self, ipa: Ipa, _: u64) {
        unreachable!("no stage-2 TLB maintenance for hyp tables ({ipa:?})")
    }

    fn tlb_flush_vmid(&self) {
        unreachable!("no stage-2 TLB maintenance for hyp tables")
    }
}

impl HypTlb for CHypHost {
    fn flush_va(&self, va: Va, level: Level) {
        // SAFETY: the registered callback, with its registered argument.
        unsafe { (self.tlb.flush_va)(self.tlb.arg, va.get(), level.get()) }
    }

    fn flush_va_walks(&self, va: Va, level: Level) {
        // SAFETY: as `flush_va`.
        unsafe { (self.tlb.flush_va_walks)(self.tlb.arg, va.get(), level.get()) }
    }

    fn publish(&self) {
        // SAFETY: as `flush_va`.
        unsafe { (self.tlb.publish)(self.tlb.arg) }
    }
}

/// The geometry of a C hyp table of `format` for `va_bits`: its PA size is
/// the most the format's descriptors hold (48 bits, 52 with 64 KiB or
/// LPA2), since the kernel's hyp init takes none.
fn geometry(format: TableFormat, va_bits: u32) -> Result<Geometry, c_int> {
    let va_bits = u8::try_from(va_bits).map_err(|_| -PGW_EINVAL)?;
    Geometry::for_va_bits(format, va_bits, format.max_oa_bits()).map_err(|_| -PGW_EINVAL)
}

/// Whether `pgt` is a hyp table as the kernel tells them apart: an
/// initialised `struct kvm_pgtable` whose `mmu` is NULL (the generic
/// `kvm_pgtable_walk` and `kvm_pgtable_get_leaf` then walk it as one).
///
/// # Safety
///
/// `pgt` is NULL or readable.
pub(crate) unsafe fn is_hyp(pgt: *const kvm_pgtable) -> bool {
    // SAFETY: NULL is handled by `as_ref`; otherwise readable (the
    // caller's contract).
    unsafe { pgt.as_ref() }.is_some_and(|p| p.mmu.is_null() && !p.pgd.is_null())
}

/// Runs `f` on the hyp table behind `pgt`, seen as a `HypTable` for the
/// call (in a `ManuallyDrop`: only `kvm_pgtable_hyp_destroy` frees it), as
/// a call on that table (`-PGW_EDEADLK` from inside one of its callbacks).
/// `-PGW_EFAULT` for NULL, `-PGW_EINVAL` for a table that is not an
/// initialised hyp table (a NULL `pgd`, a non-NULL `mmu`, `ia_bits` and
/// `start_level` that disagree, missing callbacks) or when no TLB
/// operations are registered.
///
/// # Safety
///
/// `pgt` is NULL or points to a `struct kvm_pgtable` that is not being
/// written; if initialised by `kvm_pgtable_hyp_init`, only this library
/// changed the table.
pub(crate) unsafe fn with_hyp<R>(
    pgt: *mut kvm_pgtable,
    f: impl FnOnce(&mut ManuallyDrop<HypTable<CHypHost>>) -> Result<R, c_int>,
) -> Result<R, c_int> {
    if pgt.is_null() {
        return Err(-PGW_EFAULT);
    }
    // SAFETY: not NULL, so readable (the caller's contract).
    let pgd = unsafe { (*pgt).pgd };
    on_table(pgt, pgd, || {
        // SAFETY: as above.
        let p = unsafe { &*pgt };
        if p.pgd.is_null() || !p.mmu.is_null() {
            return Err(-PGW_EINVAL);
        }
        // SAFETY: `mm_ops` was set by initialisation (the caller's
        // contract); NULL is refused inside.
        let mm = unsafe { HypMmFns::from_c(p.mm_ops) }?;
        // Initialisation bound `mm_ops` to the table's format.
        let format = crate::formats::bound(p.mm_ops).ok_or(-PGW_EINVAL)?;
        let geometry = geometry(format, p.ia_bits)?;
        if geometry.start_level().get() != p.start_level {
            return Err(-PGW_EINVAL);
        }
        let host = CHypHost {
            mm,
            tlb: registered_tlb()?,
            format,
        };
        let root = host.phys(p.pgd.cast());
        if !root.is_aligned(format.granule().size()) {
            return Err(-PGW_EINVAL);
        }
        // SAFETY: the root and the table below it were built by this
        // library through the same callbacks (the caller's contract,
        // checked as far as possible above); the `ManuallyDrop` keeps this
        // view from freeing the table.
        let table = unsafe { HypTable::from_raw_parts(geometry, root, host) };
        f(&mut ManuallyDrop::new(table))
    })
}

/// Initialises `pgt` as an empty EL2 stage-1 table for `va_bits`-bit
/// virtual addresses in the format `mm_ops` serves, with the start level
/// Linux computes (`ARM64_HW_PGTABLE_LEVELS(va_bits)` levels for that page
/// size) and a root page from `mm_ops->zalloc_page(NULL)`. `mmu` is set to
/// NULL, as in the kernel.
///
/// The kernel's hyp tables use its `PAGE_SIZE` and its system-wide LPA2
/// setting; one library serves every granule, so the page size is that of
/// the pages `mm_ops` hands out: the format an earlier
/// `__kvm_pgtable_stage2_init` or `pgw_hyp_init` bound `mm_ops` to, or,
/// for an `mm_ops` no initialisation used yet, 4 KiB pages without LPA2
/// (a 4 KiB kernel), which this binds it to. `pgw_hyp_init` names the
/// format instead.
///
/// Returns 0, `-PGW_EFAULT` for NULL `pgt` or `mm_ops`, `-PGW_EINVAL` for
/// `va_bits` outside 25..=48 (up to 52 with 64 KiB pages or LPA2; the
/// kernel also takes 13..=24, starting at level 3), a missing required
/// callback, or no registered `pgw_hyp_set_tlb_ops`; `-PGW_ENOMEM` when
/// `zalloc_page` returns NULL.
///
/// # Safety
///
/// `pgt` is NULL or valid for writes; `mm_ops` is NULL or points to a
/// `struct kvm_pgtable_mm_ops` that outlives the table, with callbacks that
/// keep the promises documented there.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_hyp_init(
    pgt: *mut kvm_pgtable,
    va_bits: u32,
    mm_ops: *mut kvm_pgtable_mm_ops,
) -> c_int {
    call(|| {
        let format = crate::formats::bound(mm_ops).unwrap_or(TableFormat::FOUR_KIB);
        // SAFETY: the caller's contract.
        unsafe { hyp_init(pgt, va_bits, format, mm_ops) }
    })
}

/// `kvm_pgtable_hyp_init` for tables of a format named here: pages of
/// `1 << page_shift` bytes (12, 14 or 16: 4, 16 or 64 KiB), LPA2
/// (TCR_EL2.DS: 52-bit addresses with 4 and 16 KiB pages, level -1 with
/// 4 KiB) or not. The first initialisation with an `mm_ops` binds it to
/// its format, as `__kvm_pgtable_stage2_init` does: `mm_ops` then hands out
/// pages of that size, aligned to it.
///
/// Returns what `kvm_pgtable_hyp_init` returns, and `-PGW_EINVAL` for
/// another `page_shift`, LPA2 with 64 KiB pages, or an `mm_ops` bound to
/// another format.
///
/// # Safety
///
/// As `kvm_pgtable_hyp_init`.
#[no_mangle]
pub unsafe extern "C" fn pgw_hyp_init(
    pgt: *mut kvm_pgtable,
    va_bits: u32,
    page_shift: u32,
    lpa2: bool,
    mm_ops: *mut kvm_pgtable_mm_ops,
) -> c_int {
    call(|| {
        let granule = match page_shift {
            12 => Granule::Size4KiB,
            14 => Granule::Size16KiB,
            16 => Granule::Size64KiB,
            _ => return Err(-PGW_EINVAL),
        };
        let format = TableFormat::new(granule, lpa2).map_err(|_| -PGW_EINVAL)?;
        // SAFETY: the caller's contract.
        unsafe { hyp_init(pgt, va_bits, format, mm_ops) }
    })
}

/// The body of both initialisations.
///
/// # Safety
///
/// As `kvm_pgtable_hyp_init`.
unsafe fn hyp_init(
    pgt: *mut kvm_pgtable,
    va_bits: u32,
    format: TableFormat,
    mm_ops: *mut kvm_pgtable_mm_ops,
) -> Result<c_int, c_int> {
    if pgt.is_null() {
        return Err(-PGW_EFAULT);
    }
    on_table(pgt, ptr::null(), || {
        // SAFETY: NULL or valid (the caller's contract).
        let mm = unsafe { HypMmFns::from_c(mm_ops) }?;
        let geometry = geometry(format, va_bits)?;
        let host = CHypHost {
            mm,
            tlb: registered_tlb()?,
            format,
        };
        crate::formats::bind(mm_ops, format)?;
        let table = HypTable::with_geometry(geometry, host, &mut ()).map_err(from_error)?;
        let (geometry, root, host) = table.into_raw_parts();
        let pgd = host.virt(root).cast::<kvm_pte_t>();
        // SAFETY: `pgt` is valid for writes (the caller's contract) and
        // nothing else refers to it during the call.
        unsafe {
            pgt.write(kvm_pgtable {
                ia_bits: u32::from(geometry.ia_bits()),
                start_level: geometry.start_level().get(),
                pgd,
                mm_ops,
                flags: 0,
                force_pte_cb: None,
                mmu: ptr::null_mut(),
            })
        };
        Ok(0)
    })
}

/// Frees every page of the hyp table behind `pgt` and sets `pgd` to NULL
/// (Linux's `kvm_pgtable_hyp_destroy`), without TLB maintenance: the MMU
/// must no longer use the table. Does nothing for NULL, a table that is not
/// an initialised hyp table, or a call from one of the table's callbacks.
///
/// # Safety
///
/// As `kvm_pgtable_hyp_map`; no hardware walker uses the table any more.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_hyp_destroy(pgt: *mut kvm_pgtable) {
    guard_or((), || {
        // SAFETY: the caller's contract is `with_hyp`'s.
        let destroyed = unsafe { with_hyp(pgt, destroy_view) };
        if destroyed.is_ok() {
            // SAFETY: `with_hyp` checked `pgt` is not NULL; valid for writes
            // (the caller's contract).
            unsafe { (*pgt).pgd = ptr::null_mut() };
        }
    })
}

/// Drops the table of a view, which frees it.
fn destroy_view(table: &mut ManuallyDrop<HypTable<CHypHost>>) -> Result<(), c_int> {
    // SAFETY: the view's table is dropped once, here, and the view is never
    // used again: `kvm_pgtable_hyp_destroy` clears `pgd` right after.
    unsafe { ManuallyDrop::drop(table) };
    Ok(())
}

/// Maps `size` bytes at `addr` to `phys` with `prot` (Linux 6.12's
/// `kvm_pgtable_hyp_map`), over the range 6.12's `kvm_pgtable_walk`
/// covers: from `addr` aligned down to its page (of the table's granule)
/// to that plus `size` rounded up to a page (an unaligned `addr` does not
/// add a page; a range that wraps around maps nothing); `phys` is aligned
/// down to its page; blocks
/// are used where size and alignment allow. `prot` follows
/// `hyp_set_prot_attr`: `KVM_PGTABLE_PROT_R` is required, `_X` excludes
/// `_W` and `_DEVICE`; bits 6.12 does not define are dropped, as the
/// kernel drops them. The call ends with the registered `publish`.
///
/// Returns 0; `-PGW_EINVAL` for a prot the regime cannot express (also
/// `_X` with `_NORMAL_NC`, and `_DEVICE` with `_NORMAL_NC`);
/// `-PGW_ERANGE` for a range past `va_bits`, or an output past what the
/// format's descriptors hold (48 bits; 52 with 64 KiB pages or LPA2); `-PGW_EEXIST` for a range that overlaps a different mapping,
/// before anything changes (where the kernel WARNs, and returns `-EINVAL`
/// for a page or replaces a block with an empty table); `-PGW_ENOMEM` when
/// `zalloc_page` fails (what was mapped before stays mapped);
/// `-PGW_EFAULT` for a NULL `pgt`; `-PGW_EINVAL` for one that is not an
/// initialised hyp table (a stage-2 table included) or when no
/// `pgw_hyp_set_tlb_ops` is registered; `-PGW_EDEADLK` from inside one of
/// the table's callbacks. `_NORMAL_NC` maps Normal non-cacheable memory
/// (the kernel's hyp tables ignore it and map write-back).
///
/// # Safety
///
/// `pgt` is NULL or was initialised by `kvm_pgtable_hyp_init` and is not
/// used by another call at the same time (the caller's lock, as the
/// kernel's hyp spinlock).
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_hyp_map(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    phys: u64,
    prot: u64,
) -> c_int {
    call(|| {
        // The kernel refuses a bad prot before it looks at the range.
        let prot = kvm_prot(prot);
        pgwalk::descriptor::HypAttrs::from_prot(prot).map_err(from_error)?;
        // SAFETY: the caller's contract is `with_hyp`'s.
        unsafe {
            with_hyp(pgt, |table| {
                let g = table.geometry();
                let Some((Ipa(start), len)) = kernel_range(g, addr, size)? else {
                    return Ok(0);
                };
                let phys = PhysAddr(phys & !(g.granule().size() - 1));
                table
                    .exclusive()
                    .map(Va(start), len, phys, prot, &mut ())
                    .map_err(from_error)?;
                Ok(0)
            })
        }
    })
}

/// Unmaps `size` bytes at `addr` (Linux 6.12's `kvm_pgtable_hyp_unmap`;
/// the range rounded as by `kvm_pgtable_hyp_map`), leaf by leaf with the
/// registered `flush_va`, freeing the tables it empties (unlinked with
/// `flush_va_walks`). It stops at the first address where nothing is
/// mapped or where a block extends beyond the range — also before its
/// start, where the kernel unmaps the whole block — and frees the tables
/// it emptied even then.
///
/// Returns the bytes unmapped: 0 for a range past `va_bits`, a table
/// without `mm_ops->page_count` (as in the kernel), a NULL `pgt`, one that
/// is not an initialised hyp table, no registered `pgw_hyp_set_tlb_ops`, or
/// a call from inside one of the table's callbacks.
///
/// # Safety
///
/// As `kvm_pgtable_hyp_map`.
#[no_mangle]
pub unsafe extern "C" fn kvm_pgtable_hyp_unmap(pgt: *mut kvm_pgtable, addr: u64, size: u64) -> u64 {
    guard_or(0, || {
        // SAFETY: the caller's contract is `with_hyp`'s.
        let unmapped = unsafe {
            with_hyp(pgt, |table| {
                if table.mm().mm.page_count.is_none() {
                    return Ok(0);
                }
                let g = table.geometry();
                let Some((Ipa(start), len)) = kernel_range(g, addr, size)? else {
                    return Ok(0);
                };
                let done = table
                    .exclusive()
                    .unmap(Va(start), len)
                    .map_err(from_error)?;
                Ok(done.bytes())
            })
        };
        unmapped.unwrap_or(0)
    })
}

/// The leaf that translates `addr` in the hyp table behind `pgt`, and its
/// level (the kernel's `kvm_pgtable_get_leaf` on a hyp table): `*ptep` the
/// entry (a block, a page, or the invalid entry where translation stops),
/// `*level` its level; either may be NULL. Returns 0, `-PGW_ERANGE` past
/// `va_bits`, or the errors of `kvm_pgtable_hyp_map` for a bad `pgt`.
///
/// # Safety
///
/// As `kvm_pgtable_hyp_map`; `ptep` and `level` are NULL or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn pgw_hyp_get_leaf(
    pgt: *mut kvm_pgtable,
    addr: u64,
    ptep: *mut kvm_pte_t,
    level: *mut i8,
) -> c_int {
    // SAFETY: the caller's contract.
    call(|| unsafe { hyp_get_leaf(pgt, addr, ptep, level) })
}

/// The body of `pgw_hyp_get_leaf`, and of `kvm_pgtable_get_leaf` on a hyp
/// table.
///
/// # Safety
///
/// As `pgw_hyp_get_leaf`.
pub(crate) unsafe fn hyp_get_leaf(
    pgt: *mut kvm_pgtable,
    addr: u64,
    ptep: *mut kvm_pte_t,
    level: *mut i8,
) -> Result<c_int, c_int> {
    // SAFETY: the caller's contract is `with_hyp`'s.
    let (leaf, l) = unsafe {
        with_hyp(pgt, |table| {
            table.exclusive().get_leaf(Va(addr)).map_err(from_error)
        })
    }?;
    // SAFETY: NULL or valid for writes (the caller's contract).
    unsafe {
        if let Some(p) = ptep.as_mut() {
            *p = leaf.bits();
        }
        if let Some(p) = level.as_mut() {
            *p = l.get();
        }
    }
    Ok(0)
}

/// The protection a hyp entry grants (Linux 6.12's
/// `kvm_pgtable_hyp_pte_prot`): its software bits and, for a valid entry,
/// `KVM_PGTABLE_PROT_X` unless XN, `_R` for AP `0b11` (read-only), `_R |
/// _W` for AP `0b01`. Like the kernel, it reports no memory type.
#[no_mangle]
pub extern "C" fn kvm_pgtable_hyp_pte_prot(pte: kvm_pte_t) -> u64 {
    guard_or(0, || c_prot(HypDescriptor::from_bits(pte).prot()))
}

/// A core [`Prot`] in the C bits of `kvm_pgtable_hyp_pte_prot`: the bits
/// have the kernel's values, and like the kernel it reports access and
/// execution, not the memory type.
fn c_prot(p: Prot) -> u64 {
    (p & (Prot::RWX | Prot::SW)).bits()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::PGW_ERANGE;

    #[test]
    fn pte_prot_is_linuxs() {
        let g = Granule::Size4KiB;
        let l3 = Level::new(3).unwrap();
        let leaf = |p: Prot| {
            let a = pgwalk::descriptor::HypAttrs::from_prot(p).unwrap();
            HypDescriptor::leaf(PhysAddr(0x1000), l3, g, a).bits()
        };
        assert_eq!(
            kvm_pgtable_hyp_pte_prot(leaf(Prot::RW)),
            KVM_PGTABLE_PROT_RW
        );
        assert_eq!(
            kvm_pgtable_hyp_pte_prot(leaf(Prot::R | Prot::X)),
            KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_X
        );
        // No memory type, as the kernel.
        assert_eq!(
            kvm_pgtable_hyp_pte_prot(leaf(Prot::RW | Prot::DEVICE)),
            KVM_PGTABLE_PROT_RW
        );
        assert_eq!(
            kvm_pgtable_hyp_pte_prot(KVM_PGTABLE_PROT_SW2),
            KVM_PGTABLE_PROT_SW2
        );
        assert_eq!(kvm_pgtable_hyp_pte_prot(0), 0);
    }

    #[test]
    fn ranges_round_as_the_kernels() {
        // A hyp table's VA range: 39 bits with 4 KiB pages.
        let g = Geometry::new(TableFormat::FOUR_KIB, 39, Level::new(1).unwrap(), 40).unwrap();
        let range = |addr, size| kernel_range(&g, addr, size);
        assert_eq!(range(0x1800, 0x10), Ok(Some((Ipa(0x1000), 0x1000))));
        assert_eq!(range(0x1000, 0), Ok(None));
        assert_eq!(range(0x1001, 0), Ok(None));
        assert_eq!(range((1 << 39) - 0x1000, 0x1001), Err(-PGW_ERANGE));
        assert_eq!(range(u64::MAX, 2), Err(-PGW_ERANGE));
        // The end is the aligned start plus the size, rounded up: an
        // unaligned address does not add a page.
        assert_eq!(range(0x1800, 0x1000), Ok(Some((Ipa(0x1000), 0x1000))));
        assert_eq!(range(0x1800, 0x1001), Ok(Some((Ipa(0x1000), 0x2000))));
        // Wrapping around is an empty range.
        assert_eq!(range(0x1000, u64::MAX), Ok(None));
    }
}

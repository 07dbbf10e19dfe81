//! The C host behind pgwalk's `MemoryOps`, and the per-call view of a
//! caller-allocated `struct kvm_pgtable` as a `pgwalk::Stage2`.
//!
//! The kernel's callbacks take virtual addresses and pgwalk's take physical
//! ones; every conversion goes through the host's own `phys_to_virt` and
//! `virt_to_phys`, so the library never assumes a linear map.

use core::ffi::{c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use pgwalk::geometry::{Level, TableFormat};
use pgwalk::{Ipa, MemoryOps, PhysAddr, Stage2};

use crate::abi::{kvm_pgtable, kvm_pgtable_mm_ops, kvm_pte_t, kvm_s2_mmu};
use crate::errno::{PGW_EFAULT, PGW_EINVAL};
pub(crate) use crate::needs::Needs;
use crate::reentry::on_table;

/// A `struct kvm_pgtable_mm_ops` found to have the callbacks of the
/// operation at hand (see `needs.rs`).
///
/// The callbacks are not copied out but for the two conversions: every use
/// reads its callback from the C structure, as the kernel's walker does, so
/// that a call costs no more than the checks (copying the fifteen callbacks
/// of a call into Rust's own structures was a sixth of a one-page call's
/// instructions). A callback found NULL at its use (the structure written
/// during the call, which its documentation forbids) panics, and the
/// boundary answers `-PGW_ENOTRECOVERABLE`: nothing calls through NULL.
/// `phys_to_virt`, called at every level of every walk, is read and checked
/// once per call instead (12 of a relax_perms' 454 instructions), and
/// `virt_to_phys` with it.
#[derive(Clone, Copy)]
pub(crate) struct MmFns {
    ops: NonNull<kvm_pgtable_mm_ops>,
    /// `phys_to_virt` as the call found it: the one callback of every
    /// level of every walk, kept where the walk reads it without going
    /// through the structure (or checking it again) per level.
    p2v: PhysToVirt,
    /// `virt_to_phys` as the call found it: the key of a kept view names
    /// it (see [`Key`]).
    v2p: VirtToPhys,
}

/// The type of `kvm_pgtable_mm_ops::phys_to_virt`.
type PhysToVirt = unsafe extern "C" fn(phys: u64) -> *mut c_void;
/// The type of `kvm_pgtable_mm_ops::virt_to_phys`.
type VirtToPhys = unsafe extern "C" fn(addr: *mut c_void) -> u64;

/// The callback `$f` of `$ops`, a NULL one a panic.
macro_rules! callback {
    ($ops:expr, $f:ident) => {
        match $ops.$f {
            Some(f) => f,
            None => missing(stringify!($f)),
        }
    };
}

#[cold]
#[inline(never)]
fn missing(name: &str) -> ! {
    panic!("the callback {name} became NULL during a call")
}

impl MmFns {
    /// Checks the callbacks: `-PGW_EFAULT` for a NULL `ops`, `-PGW_EINVAL`
    /// when one that the operation may call is missing.
    ///
    /// # Safety
    ///
    /// `ops` is NULL or points to a `struct kvm_pgtable_mm_ops` that stays
    /// readable, and is not written, for as long as the value is used.
    #[inline(always)]
    pub(crate) unsafe fn from_c(
        ops: *const kvm_pgtable_mm_ops,
        needs: Needs,
    ) -> Result<MmFns, c_int> {
        let ops = NonNull::new(ops.cast_mut()).ok_or(-PGW_EFAULT)?;
        // SAFETY: not NULL, so readable (the caller's contract).
        let c = unsafe { ops.as_ref() };
        // Every `needs` has the conversions.
        let (true, Some(p2v), Some(v2p)) = (needs.met_by(c), c.phys_to_virt, c.virt_to_phys) else {
            return Err(-PGW_EINVAL);
        };
        Ok(MmFns { ops, p2v, v2p })
    }

    /// The C structure, as C passed it.
    #[inline(always)]
    fn ptr(&self) -> *mut kvm_pgtable_mm_ops {
        self.ops.as_ptr()
    }

    #[inline(always)]
    fn get(&self) -> &kvm_pgtable_mm_ops {
        // SAFETY: readable and unwritten while `self` is used (`from_c`'s
        // contract).
        unsafe { self.ops.as_ref() }
    }
}

/// A `struct kvm_s2_mmu` whose TLB callbacks that the operation may call
/// were found set (see `needs.rs`); read at each use like [`MmFns`].
#[derive(Clone, Copy)]
pub(crate) struct TlbFns(NonNull<kvm_s2_mmu>);

impl TlbFns {
    /// Checks the callbacks: `-PGW_EFAULT` for a NULL `mmu`, `-PGW_EINVAL`
    /// when one that the operation may call is missing.
    ///
    /// # Safety
    ///
    /// `mmu` is NULL or points to a `struct kvm_s2_mmu` that stays
    /// readable, and whose callbacks are not written, for as long as the
    /// value is used.
    #[inline(always)]
    pub(crate) unsafe fn from_c(mmu: *mut kvm_s2_mmu, needs: Needs) -> Result<TlbFns, c_int> {
        let mmu = NonNull::new(mmu).ok_or(-PGW_EFAULT)?;
        // SAFETY: not NULL, so readable (the caller's contract).
        if !needs.tlb_met_by(unsafe { mmu.as_ref() }) {
            return Err(-PGW_EINVAL);
        }
        Ok(TlbFns(mmu))
    }

    #[inline(always)]
    fn get(&self) -> &kvm_s2_mmu {
        // SAFETY: as `MmFns::get`.
        unsafe { self.0.as_ref() }
    }

    /// The MMU, for its callbacks' first argument.
    #[inline(always)]
    fn mmu(&self) -> *mut kvm_s2_mmu {
        self.0.as_ptr()
    }
}

/// What the caller passed as `mc`, handed back to `zalloc_page`, and how
/// many pages may be asked for: a kernel walker given a NULL `mc` answers
/// `-ENOMEM` where it needs a table, without asking the host.
pub(crate) struct Cache {
    mc: *mut c_void,
    /// Pages `zalloc_page` may still be asked for; `None`: no limit.
    left: Option<u32>,
}

impl Cache {
    /// `mc`, for `zalloc_page`.
    pub(crate) fn of(mc: *mut c_void) -> Cache {
        Cache { mc, left: None }
    }

    /// `mc`, for at most `pages` calls of `zalloc_page`; then allocation
    /// fails.
    pub(crate) fn at_most(mc: *mut c_void, pages: u32) -> Cache {
        Cache {
            mc,
            left: Some(pages),
        }
    }

    /// No cache: every allocation fails.
    pub(crate) fn none() -> Cache {
        Cache::at_most(core::ptr::null_mut(), 0)
    }
}

/// A C hypervisor's callbacks as pgwalk's [`MemoryOps`], for tables of one
/// format: the one `mmu->vtcr` gives, or the one the `mm_ops` was bound to
/// (see `formats.rs`).
pub(crate) struct CHost {
    mm: MmFns,
    /// `None` only for `kvm_pgtable_stage2_free_unlinked`, which has no MMU
    /// and invalidates nothing.
    tlb: Option<TlbFns>,
    /// The granule of the pages `zalloc_page` returns, and LPA2.
    format: TableFormat,
    /// The table's root and `pgd`, its virtual address: the kernel's walker
    /// starts from `pgd` without converting, and so does a walk here (a
    /// host call and its checks fewer in every one-page call).
    root: Option<(PhysAddr, NonNull<u8>)>,
}

impl CHost {
    pub(crate) fn new(mm: MmFns, tlb: Option<TlbFns>, format: TableFormat) -> CHost {
        CHost {
            mm,
            tlb,
            format,
            root: None,
        }
    }

    /// This host, for the table whose root is `pa`, at `pgd`: `None` when
    /// `pgd` is NULL or not 8-byte aligned, which no page from the host's
    /// allocator is.
    ///
    /// `pgd` is what `virt_to_phys` took to `pa`, so `phys_to_virt` gives it
    /// back (`struct kvm_pgtable_mm_ops` promises both agree, and do not
    /// change, while a page is handed out).
    fn with_root(self, pa: PhysAddr, pgd: *mut kvm_pte_t) -> Option<CHost> {
        let va = NonNull::new(pgd.cast::<u8>())?;
        (va.as_ptr().align_offset(8) == 0).then_some(CHost {
            root: Some((pa, va)),
            ..self
        })
    }

    /// The host's virtual address for `pa`, checked.
    pub(crate) fn virt(&self, pa: PhysAddr) -> *mut c_void {
        self.phys_to_virt(pa).as_ptr().cast()
    }

    /// The host's virtual address for guest memory at `pa`, unchecked: the
    /// library never dereferences it, only hands it back to the host's cache
    /// maintenance (and guest memory at physical address 0 may well map to
    /// a NULL-looking address).
    fn guest_virt(&self, pa: PhysAddr) -> *mut c_void {
        // SAFETY: the host's address conversion callback.
        unsafe { (self.mm.p2v)(pa.get()) }
    }

    /// The physical address of the host's `va`.
    pub(crate) fn phys(&self, va: *mut c_void) -> PhysAddr {
        // SAFETY: a callback the host registered for exactly this; it only
        // converts an address.
        PhysAddr(unsafe { (self.mm.v2p)(va) })
    }

    fn tlb(&self) -> &TlbFns {
        // The core invalidates TLBs only from table operations, which always
        // build their host with the MMU's callbacks; reaching this without
        // them is a bug, and skipping the invalidation would be worse.
        self.tlb
            .as_ref()
            .expect("TLB invalidation requested without a struct kvm_s2_mmu")
    }

    fn page_aligned(&self, pa: PhysAddr, align: u64) -> PhysAddr {
        assert!(
            pa.is_aligned(align),
            "the host's allocator returned {pa:?}, not aligned to {align:#x}"
        );
        pa
    }
}

// SAFETY: the promises `MemoryOps` asks for are the ones `struct
// kvm_pgtable_mm_ops` documents for the C host (zeroed pages of the
// granule `mmu->vtcr` names, aligned to it, starting at count 1;
// `phys_to_virt` mapping them for as long as they are allocated, and
// agreeing with `virt_to_phys`, so that the root's `pgd`, which
// `virt_to_phys` took to the root, is where `phys_to_virt` maps it, as
// `root_to_virt` answers; `put_page` freeing at zero;
// `free_unlinked_table` waiting for a grace period). What can be checked
// here is checked, with a panic that the boundary turns into an error:
// NULL or misaligned pointers from `phys_to_virt` (and a NULL or
// misaligned `pgd` refused when the view is built), and allocations not
// aligned to their size.
unsafe impl MemoryOps for CHost {
    type PagePool = Cache;

    fn table_format(&self) -> TableFormat {
        self.format
    }

    fn zalloc_page(&self, cache: &mut Cache) -> Option<PhysAddr> {
        if let Some(left) = &mut cache.left {
            *left = left.checked_sub(1)?;
        }
        // SAFETY: the host's allocator callback, given the cache its caller
        // passed in for it.
        let va = unsafe { callback!(self.mm.get(), zalloc_page)(cache.mc) };
        if va.is_null() {
            return None;
        }
        Some(self.page_aligned(self.phys(va), self.format.granule().size()))
    }

    fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
        // SAFETY: the host's allocator callback.
        let va = unsafe { callback!(self.mm.get(), zalloc_pages_exact)(size) };
        if va.is_null() {
            return None;
        }
        Some(self.page_aligned(self.phys(va), size as u64))
    }

    unsafe fn free_pages_exact(&self, pa: PhysAddr, size: usize) {
        // SAFETY: pgwalk frees what it allocated with `zalloc_pages_exact`,
        // once, after the last use (this method's contract).
        unsafe { callback!(self.mm.get(), free_pages_exact)(self.virt(pa), size) }
    }

    unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
        // SAFETY: `table` is unlinked and handed over once (this method's
        // contract); the host frees it after its grace period. Both sides
        // mean the level of the entry that linked it.
        unsafe { callback!(self.mm.get(), free_unlinked_table)(self.virt(table), level.get()) }
    }

    unsafe fn get_page(&self, pa: PhysAddr) {
        // SAFETY: a reference-count callback on a page the host gave pgwalk,
        // for an entry pgwalk is storing in it (this method's contract).
        unsafe { callback!(self.mm.get(), get_page)(self.virt(pa)) }
    }

    unsafe fn put_page(&self, pa: PhysAddr) {
        // SAFETY: pgwalk drops a reference it holds (this method's contract).
        unsafe { callback!(self.mm.get(), put_page)(self.virt(pa)) }
    }

    unsafe fn get_page_at(&self, _pa: PhysAddr, entry: NonNull<u64>) {
        // SAFETY: as `get_page`. The callback takes any address in the
        // page, and the kernel's walker gives it the entry's, as here.
        unsafe { callback!(self.mm.get(), get_page)(entry.as_ptr().cast()) }
    }

    unsafe fn put_page_at(&self, _pa: PhysAddr, entry: NonNull<u64>) {
        // SAFETY: as `put_page`, with the entry's address as in `get_page_at`.
        unsafe { callback!(self.mm.get(), put_page)(entry.as_ptr().cast()) }
    }

    fn page_count(&self, pa: PhysAddr) -> usize {
        // SAFETY: a read-only callback on a page the host gave pgwalk.
        let count = unsafe { callback!(self.mm.get(), page_count)(self.virt(pa)) };
        // A negative count is the host's bug; treating it as zero never
        // makes pgwalk free a page that is still counted (it frees at 1).
        usize::try_from(count).unwrap_or(0)
    }

    // Inlined into every level of every walk: out of line, it was a call of
    // its own around the host's (14 instructions of a fault-in, 17 of an
    // mkyoung).
    #[inline(always)]
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        // SAFETY: the host's address conversion callback.
        let va = unsafe { (self.mm.p2v)(pa.get()) };
        let va = NonNull::new(va.cast::<u8>())
            .unwrap_or_else(|| panic!("phys_to_virt({pa:?}) returned NULL"));
        assert!(
            va.as_ptr().align_offset(8) == 0,
            "phys_to_virt({pa:?}) returned a pointer that is not 8-byte aligned"
        );
        va
    }

    // The root's address as the table keeps it, instead of a conversion.
    // Any other root (this host serving some other table) is converted.
    #[inline(always)]
    fn root_to_virt(&self, root: PhysAddr) -> NonNull<u8> {
        match self.root {
            Some((pa, va)) if pa == root => va,
            _ => self.phys_to_virt(root),
        }
    }

    fn dcache_clean_inval_poc(&self, pa: PhysAddr, size: u64) {
        if let Some(f) = self.mm.get().dcache_clean_inval_poc {
            // SAFETY: the host's cache maintenance callback, on guest memory
            // the table maps.
            unsafe { f(self.guest_virt(pa), size as usize) }
        }
    }

    fn icache_inval_pou(&self, pa: PhysAddr, size: u64) {
        if let Some(f) = self.mm.get().icache_inval_pou {
            // SAFETY: as `dcache_clean_inval_poc`.
            unsafe { f(self.guest_virt(pa), size as usize) }
        }
    }

    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, level: Level) {
        let t = self.tlb();
        // SAFETY: the MMU's callback, given the MMU it was registered in.
        unsafe {
            callback!(t.get(), tlb_flush_vmid_ipa)(t.mmu(), ipa.get(), c_int::from(level.get()))
        }
    }

    fn tlb_flush_vmid_ipa_unknown_level(&self, ipa: Ipa) {
        let t = self.tlb();
        // SAFETY: as `tlb_flush_vmid_ipa`.
        unsafe {
            callback!(t.get(), tlb_flush_vmid_ipa)(t.mmu(), ipa.get(), crate::abi::TLBI_TTL_UNKNOWN)
        }
    }

    // Inlined: the fault path's one invalidation, a call of its own
    // otherwise (10 of a relax_perms' instructions).
    #[inline(always)]
    fn tlb_flush_vmid_ipa_local(&self, ipa: Ipa, level: Option<Level>) {
        let t = self.tlb();
        let level = level.map_or(crate::abi::TLBI_TTL_UNKNOWN, |l| c_int::from(l.get()));
        let m = t.get();
        // Without a local variant, the broadcast one does.
        let f = match m.tlb_flush_vmid_ipa_nsh {
            Some(f) => f,
            None => callback!(m, tlb_flush_vmid_ipa),
        };
        // SAFETY: as `tlb_flush_vmid_ipa`.
        unsafe { f(t.mmu(), ipa.get(), level) }
    }

    fn tlb_flush_vmid_range(&self, ipa: Ipa, size: u64) {
        let t = self.tlb();
        // SAFETY: as `tlb_flush_vmid_ipa`.
        unsafe { callback!(t.get(), tlb_flush_vmid_range)(t.mmu(), ipa.get(), size) }
    }

    fn tlb_flush_vmid(&self) {
        let t = self.tlb();
        // SAFETY: as `tlb_flush_vmid_ipa`.
        unsafe { callback!(t.get(), tlb_flush_vmid)(t.mmu()) }
    }
}

/// A `struct kvm_pgtable` seen as a [`Stage2`] for the length of one call.
///
/// The `Stage2` is in a `ManuallyDrop`: dropping it would destroy the
/// table, which only `kvm_pgtable_stage2_destroy` may do. Its host holds
/// nothing that needs dropping (callback pointers only).
pub(crate) struct View {
    pub(crate) table: ManuallyDrop<Stage2<CHost>>,
    /// The caller's `mm_ops`, for `kvm_pgtable_visit_ctx::mm_ops`.
    pub(crate) mm_ops: *mut kvm_pgtable_mm_ops,
    /// The table's `enum kvm_pgtable_stage2_flags`, and below its
    /// `force_pte_cb`: what the call's `struct kvm_pgtable` holds in a call
    /// whose [`Needs::reads_map_fields`]. Other calls neither read nor
    /// copy them: a view one of them builds holds 0 and `None`, and in a
    /// kept view they leave what an earlier call found.
    pub(crate) flags: u32,
    pub(crate) force_pte_cb: crate::abi::kvm_pgtable_force_pte_cb_t,
}

/// What a view is built from: the fields of a `struct kvm_pgtable` and
/// its MMU's `vtcr`, read once, checked as far as reading goes (pointers
/// not NULL, required callbacks set).
pub(crate) struct Parts {
    pgd: *mut kvm_pte_t,
    mm: MmFns,
    tlb: TlbFns,
    vtcr: u64,
    ia_bits: u32,
    start_level: i8,
    flags: u32,
    force_pte_cb: crate::abi::kvm_pgtable_force_pte_cb_t,
}

/// Reads `pgt`: `-PGW_EFAULT` for NULL pointers, `-PGW_EINVAL` for a
/// table that is not initialised, that lacks a memory callback `needs`
/// names, or whose MMU lacks a required TLB callback.
///
/// # Safety
///
/// `pgt` is NULL or points to a `struct kvm_pgtable` that is not being
/// written, nor are its `mm_ops` and its `mmu`'s callbacks, while the
/// parts are used.
#[inline(always)]
unsafe fn parts(pgt: *const kvm_pgtable, needs: Needs) -> Result<Parts, c_int> {
    // SAFETY: NULL is handled by `as_ref`; otherwise the caller's contract.
    let p = unsafe { pgt.as_ref() }.ok_or(-PGW_EFAULT)?;
    if p.pgd.is_null() {
        return Err(-PGW_EINVAL);
    }
    // SAFETY: `mm_ops` and `mmu` were set by initialisation (the caller's
    // contract); NULL is refused inside.
    let mm = unsafe { MmFns::from_c(p.mm_ops, needs) }?;
    // SAFETY: as above.
    let tlb = unsafe { TlbFns::from_c(p.mmu, needs) }?;
    // SAFETY: `from_c` checked that `mmu` is not NULL.
    let vtcr = unsafe { (*p.mmu).vtcr };
    Ok(Parts {
        pgd: p.pgd,
        mm,
        tlb,
        vtcr,
        ia_bits: p.ia_bits,
        start_level: p.start_level,
        // Read only where used: the other calls neither copy them into a
        // kept view nor look at them in a new one (see `View::flags`), and
        // reading them anyway cost them two loads and two spills.
        flags: if needs.reads_map_fields() { p.flags } else { 0 },
        force_pte_cb: if needs.reads_map_fields() {
            p.force_pte_cb
        } else {
            None
        },
    })
}

/// Everything a [`View`] is a function of, besides the fields [`refresh`]
/// copies on every call: equal keys build equal views. The root is known
/// by `pgd`, its virtual address, and the `virt_to_phys` that converts it:
/// the view holds the physical address that callback gave when it was
/// built, which `struct kvm_pgtable_mm_ops` promises stays the answer while
/// the page is handed out (the kernel itself converts `pgd` once, at
/// initialisation, for `VTTBR_EL2`).
///
/// Words, compared all at once: a derived comparison of the fields became
/// a call to `memcmp`.
// The freestanding build keeps no view (`view_cache.rs`), so never
// compares keys.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
#[derive(Clone, Copy)]
pub(crate) struct Key([u64; 7]);

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl Key {
    /// Whether both keys hold the same values.
    #[inline(always)]
    pub(crate) fn same(&self, other: &Key) -> bool {
        self.0.iter().zip(&other.0).fold(0, |d, (a, b)| d | (a ^ b)) == 0
    }

    /// A key for the view cache's own tests, `n` in every word.
    #[cfg(test)]
    pub(crate) fn test(n: u64) -> Key {
        Key([n; 7])
    }
}

impl Parts {
    /// The key of the view these parts build.
    #[inline(always)]
    fn key(&self) -> Key {
        Key([
            self.pgd.addr() as u64,
            self.mm.ptr().addr() as u64,
            self.mm.p2v as usize as u64,
            self.mm.v2p as usize as u64,
            self.tlb.mmu().addr() as u64,
            self.vtcr,
            u64::from(self.ia_bits) | (self.start_level as u8 as u64) << 32,
        ])
    }
}

/// Builds the view of the table `parts` were read from: `-PGW_EINVAL`
/// when `mmu->vtcr` is refused, disagrees with `ia_bits` and
/// `start_level`, the root is not aligned to its size, or `pgd` is not
/// 8-byte aligned.
///
/// # Safety
///
/// `parts` were read by [`parts`] from a table meeting [`TablePtr::new`]'s
/// requirements, still met while the view is used.
// Inlined, so that the view is built where it is used instead of being
// copied there (a `memcpy` of its 200 bytes per call).
#[inline(always)]
unsafe fn build(parts: &Parts) -> Result<View, c_int> {
    // SAFETY: a callback the host registered for exactly this; it only
    // converts an address.
    let pgd = PhysAddr(unsafe { (parts.mm.v2p)(parts.pgd.cast()) });
    let geometry = crate::vtcr_cache::geometry(parts.vtcr)?;
    if u32::from(geometry.ia_bits()) != parts.ia_bits
        || geometry.start_level().get() != parts.start_level
    {
        return Err(-PGW_EINVAL);
    }
    if !pgd.is_aligned(geometry.root_size() as u64) {
        return Err(-PGW_EINVAL);
    }
    let host = CHost::new(parts.mm, Some(parts.tlb), geometry.format())
        .with_root(pgd, parts.pgd)
        .ok_or(-PGW_EINVAL)?;
    // SAFETY: the root and the table below it were built by this library
    // through the same host callbacks (the caller's contract, checked as far
    // as possible above), and the `ManuallyDrop` keeps this view from
    // owning the table: it is never dropped, so it never frees it.
    let table = unsafe { Stage2::from_raw_parts(geometry, pgd, host) };
    let mut v = View {
        table: ManuallyDrop::new(table),
        mm_ops: parts.mm.ptr(),
        flags: 0,
        force_pte_cb: None,
    };
    refresh(&mut v, parts);
    Ok(v)
}

/// Copies into `v` the fields of `parts` that are not part of its key.
#[inline(always)]
fn refresh(v: &mut View, parts: &Parts) {
    v.flags = parts.flags;
    v.force_pte_cb = parts.force_pte_cb;
}

/// A `struct kvm_pgtable *` from C that the caller of an exported function
/// vouched for: NULL, or what [`TablePtr::new`] requires.
#[derive(Clone, Copy)]
pub(crate) struct TablePtr(*mut kvm_pgtable);

impl TablePtr {
    /// # Safety
    ///
    /// `pgt` is NULL or points to a `struct kvm_pgtable` that is not being
    /// written, nor are its `mm_ops` and its `mmu`'s callbacks, while the
    /// value is used; if initialised, its `pgd` is the root that
    /// initialisation allocated through its `mm_ops`, and only this library
    /// changed the table (or changes followed its rules: table pages from
    /// `mm_ops`, counts of 1 plus the non-zero entries).
    pub(crate) unsafe fn new(pgt: *mut kvm_pgtable) -> TablePtr {
        TablePtr(pgt)
    }
}

/// Runs `f` on the view of `pgt` as a call on that table: `-PGW_EDEADLK`,
/// before anything but the root pointer is read, when this thread is
/// already inside a call on it (from one of its callbacks). The other
/// errors are [`parts`]' and [`build`]'s: every field is read and checked
/// on every call, the memory callbacks as far as the operation, `needs`,
/// may call them.
///
/// The view may be the one the thread's previous call built from the same
/// key (see `view_cache.rs`), so `f` must not drop the table through it:
/// `kvm_pgtable_stage2_destroy` uses [`with_fresh_view`].
#[inline(always)]
pub(crate) fn with_view<R>(
    pgt: TablePtr,
    needs: Needs,
    f: impl FnOnce(&mut View) -> Result<R, c_int>,
) -> Result<R, c_int> {
    // Inlined, as the closures inside: one function from the boundary's
    // guard down to the operation, not one per layer with its state passed
    // through memory.
    on_parts(
        pgt,
        needs,
        #[inline(always)]
        |parts| {
            crate::view_cache::with_cached(
                parts.key(),
                // SAFETY: `on_parts` passes parts read under `TablePtr::new`'s
                // contract.
                #[inline(always)]
                || unsafe { build(parts) },
                #[inline(always)]
                |v| {
                    // Only the map family reads these; the other calls
                    // (the fault path's relax_perms and mkyoung among them)
                    // skip copying them (see `View::flags`).
                    if needs.reads_map_fields() {
                        refresh(v, parts);
                    }
                    f(v)
                },
            )
        },
    )
}

/// [`with_view`] on a view of its own, never one kept for later calls:
/// for `kvm_pgtable_stage2_destroy`, which drops the table through it.
pub(crate) fn with_fresh_view<R>(
    pgt: TablePtr,
    needs: Needs,
    f: impl FnOnce(&mut View) -> Result<R, c_int>,
) -> Result<R, c_int> {
    on_parts(pgt, needs, |parts| {
        // SAFETY: as in `with_view`.
        f(&mut unsafe { build(parts) }?)
    })
}

/// The view of `pgt`, built and checked as [`with_view`] builds it, by
/// value: for a binding that keeps it (`pgw_bind_stage2`).
pub(crate) fn take_view(pgt: TablePtr, needs: Needs) -> Result<View, c_int> {
    // SAFETY: as in `with_view`.
    on_parts(pgt, needs, |parts| unsafe { build(parts) })
}

/// The one body of the functions above: `f` given the parts of `pgt`,
/// inside the call on the table.
#[inline(always)]
fn on_parts<R>(
    pgt: TablePtr,
    needs: Needs,
    f: impl FnOnce(&Parts) -> Result<R, c_int>,
) -> Result<R, c_int> {
    let pgt = pgt.0;
    if pgt.is_null() {
        return Err(-PGW_EFAULT);
    }
    // SAFETY: not NULL, so readable (`TablePtr::new`'s contract).
    let pgd = unsafe { (*pgt).pgd };
    on_table(
        pgt,
        pgd,
        #[inline(always)]
        || {
            // SAFETY: `TablePtr::new`'s contract is `parts`'.
            let parts = unsafe { parts(pgt, needs) }?;
            f(&parts)
        },
    )
}

/// The virtual address of a table page, for C.
pub(crate) fn table_virt(host: &CHost, pa: PhysAddr) -> *mut kvm_pte_t {
    host.virt(pa).cast()
}

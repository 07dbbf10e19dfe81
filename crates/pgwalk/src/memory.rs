//! What the host provides: table pages, their reference counts, cache and
//! TLB maintenance, and the grace period for pages unlinked under
//! concurrent walkers. The Rust counterpart of `struct kvm_pgtable_mm_ops`
//! plus the `kvm_s2_mmu` TLB helpers.

use core::ptr::NonNull;

use crate::addr::{Ipa, PhysAddr};
use crate::geometry::{Level, TableFormat};

/// The host's memory, cache and TLB operations for one stage-2 table.
///
/// Methods take `&self` and may be called from several walkers at once
/// (under [`Shared`](crate::Shared) and [`HandlesFault`](crate::HandlesFault)),
/// so reference counting must be atomic.
///
/// # Safety
///
/// The walker dereferences what these methods return. An implementation
/// guarantees that:
///
/// - a page returned by [`zalloc_page`](Self::zalloc_page) is a page of the
///   granule of [`table_format`](Self::table_format): 4 KiB, 16 KiB or
///   64 KiB (a block from [`zalloc_pages_exact`](Self::zalloc_pages_exact)
///   is the size asked, a multiple of it); it is zeroed, aligned to its
///   size, used by nothing else until pgwalk frees it, and starts with a
///   reference count of 1;
/// - [`phys_to_virt`](Self::phys_to_virt) maps every such page to memory
///   valid for reads and writes of its whole size, 8-byte aligned, for as
///   long as the page is allocated, and
///   [`root_to_virt`](Self::root_to_virt) maps a table's root to the same
///   memory;
/// - [`put_page`](Self::put_page) frees a page only when its count drops to
///   zero, [`page_count`](Self::page_count) reports the count, and no count
///   ever wraps round (a [`get_page`](Self::get_page) that would overflow
///   panics or aborts instead);
/// - nothing changes a count or frees a page except the methods that are
///   `unsafe` to call: [`get_page`](Self::get_page),
///   [`get_pages`](Self::get_pages), [`put_page`](Self::put_page),
///   [`put_pages`](Self::put_pages),
///   [`free_pages_exact`](Self::free_pages_exact) and the deferred
///   [`free_unlinked_table`](Self::free_unlinked_table). A count raised or
///   dropped behind pgwalk's back would let it free a page that a table
///   still links, and the walker would read freed memory. (Safe code may
///   hold `&M` — [`Handle::mm`](crate::Handle::mm) hands it out — so these
///   must stay `unsafe`.)
///
/// # Page sizes
///
/// Table pages are the granule's size, as in the kernel, where they are
/// `PAGE_SIZE`: a host serves tables of one [`TableFormat`] and says which
/// in [`table_format`](Self::table_format) (4 KiB without LPA2 unless it
/// overrides it). [`Stage2`](crate::Stage2) refuses a geometry of another
/// format, so a 4 KiB host never sees a 64 KiB table. A host with 16 KiB or
/// 64 KiB tables hands out pages of that size, aligned to it, from
/// `zalloc_page`: carved out of a pool of such pages, or as
/// `1 << (granule.shift() - 12)` contiguous 4 KiB pages, with one
/// reference count for the lot (pgwalk counts a table page as one page, at
/// its first address, and only ever passes that address). A host whose
/// tables differ in format (LPA2 for some VMs, say) keeps one `MemoryOps`
/// value per format over the same pages.
///
/// # Implementing it
///
/// A host with a fixed pool of table pages, whose physical and virtual
/// addresses are the same (as an EL2 hypervisor with an identity map has),
/// and no concurrent walkers (so the grace period is over at once):
///
/// ```
/// use core::ptr::NonNull;
/// use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
/// use pgwalk::geometry::{Granule, Level};
/// use pgwalk::{free_unlinked, Ipa, MemoryOps, PhysAddr};
///
/// const PAGES: usize = 8;
///
/// #[repr(C, align(4096))]
/// struct Page([AtomicU64; 512]);
///
/// struct Pool {
///     pages: [Page; PAGES],
///     counts: [AtomicU32; PAGES],
/// }
///
/// impl Pool {
///     fn index(&self, pa: PhysAddr) -> usize {
///         let base = self.pages.as_ptr() as u64;
///         let idx = (pa.get().wrapping_sub(base) / 4096) as usize;
///         assert!(idx < PAGES, "{pa:?} is not a page of the pool");
///         idx
///     }
///
///     fn alloc(&self) -> Option<PhysAddr> {
///         let idx = self.counts.iter().position(|c| {
///             c.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
///         })?;
///         for e in &self.pages[idx].0 {
///             e.store(0, Ordering::Relaxed);
///         }
///         Some(PhysAddr(&self.pages[idx] as *const Page as u64))
///     }
/// }
///
/// // SAFETY: pages are zeroed, 4 KiB-aligned and start at count 1; a page
/// // is handed out again only after its count reached 0; `phys_to_virt`
/// // maps every page of the pool (identity), for as long as the pool lives;
/// // counts cannot wrap (a table page has at most 513 references); no
/// // walker runs concurrently, so an unlinked table may go at once.
/// unsafe impl MemoryOps for &'static Pool {
///     type PagePool = ();
///
///     fn zalloc_page(&self, _: &mut ()) -> Option<PhysAddr> {
///         self.alloc()
///     }
///     fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
///         // Roots of one page only, in this small host.
///         if size <= 4096 { self.alloc() } else { None }
///     }
///     unsafe fn free_pages_exact(&self, pa: PhysAddr, _: usize) {
///         self.counts[self.index(pa)].store(0, Ordering::Release);
///     }
///     unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
///         // SAFETY: the walker unlinked `table`, and no other walker runs.
///         unsafe { free_unlinked(self, table, level) }
///     }
///     unsafe fn get_page(&self, pa: PhysAddr) {
///         self.counts[self.index(pa)].fetch_add(1, Ordering::Relaxed);
///     }
///     unsafe fn put_page(&self, pa: PhysAddr) {
///         self.counts[self.index(pa)].fetch_sub(1, Ordering::Release);
///     }
///     fn page_count(&self, pa: PhysAddr) -> usize {
///         self.counts[self.index(pa)].load(Ordering::Acquire) as usize
///     }
///     fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
///         NonNull::from(&self.pages[self.index(pa)]).cast()
///     }
///     fn dcache_clean_inval_poc(&self, _: PhysAddr, _: u64) {} // coherent here
///     fn icache_inval_pou(&self, _: PhysAddr, _: u64) {}
///     fn tlb_flush_vmid_ipa(&self, _: Ipa, _: Level) {} // `tlbi ipas2e1is` on arm64
///     fn tlb_flush_vmid_range(&self, _: Ipa, _: u64) {}
///     fn tlb_flush_vmid(&self) {}
/// }
///
/// static POOL: Pool = Pool {
///     pages: [const { Page([const { AtomicU64::new(0) }; 512]) }; PAGES],
///     counts: [const { AtomicU32::new(0) }; PAGES],
/// };
///
/// // A 32-bit IPA space starting at level 1 (a four-entry root).
/// let start = Level::new(1).unwrap();
/// let geometry = pgwalk::geometry::Geometry::new(Granule::Size4KiB, 32, start, 40)?;
/// let mut table = pgwalk::Stage2::with_geometry(geometry, &POOL)?;
/// table.exclusive().map(Ipa(0x1000), 0x1000, PhysAddr(0x8000_0000), pgwalk::Prot::RW, &mut ())?;
/// // The root, a level-2 and a level-3 table.
/// assert_eq!(POOL.counts.iter().filter(|c| c.load(Ordering::Relaxed) > 0).count(), 3);
/// drop(table);
/// assert!(POOL.counts.iter().all(|c| c.load(Ordering::Relaxed) == 0));
/// # Ok::<(), pgwalk::Error>(())
/// ```
///
/// # Callbacks that panic
///
/// A method may panic (unwind). pgwalk then leaves every entry either as it
/// was or as the update meant it, never locked, with reference counts that
/// match the entries, except that a subtree or page being freed may leak.
/// The panic propagates to pgwalk's caller.
/// - [`free_unlinked_table`](Self::free_unlinked_table) does not free before
///   every walk that was running inside [`shared_walk`](Self::shared_walk)
///   when it was called has returned (a grace period, as RCU provides).
pub unsafe trait MemoryOps {
    /// What the caller passes down to [`zalloc_page`](Self::zalloc_page):
    /// the kernel's `kvm_mmu_memory_cache`, a pool of pages set aside
    /// beforehand from which a fault handler allocates without sleeping.
    /// `()` when there is none.
    type PagePool: ?Sized;

    /// A zeroed page for a table, from `pool` if the host keeps one, or
    /// `None` when out of memory.
    fn zalloc_page(&self, pool: &mut Self::PagePool) -> Option<PhysAddr>;

    /// `size` bytes of zeroed, physically contiguous memory aligned to
    /// `size`: the (possibly concatenated) root.
    fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr>;

    /// Returns memory from [`zalloc_pages_exact`](Self::zalloc_pages_exact).
    ///
    /// # Safety
    ///
    /// `pa` and `size` come from one `zalloc_pages_exact` call, and no table
    /// links to or walks that memory any more.
    unsafe fn free_pages_exact(&self, pa: PhysAddr, size: usize);

    /// The format of the tables this host serves: the granule (the size of
    /// every page [`zalloc_page`](Self::zalloc_page) returns) and whether
    /// the descriptors are LPA2's, which
    /// [`free_unlinked`](crate::free_unlinked) reads them by. The default is
    /// [`TableFormat::FOUR_KIB`].
    #[inline(always)]
    fn table_format(&self) -> TableFormat {
        TableFormat::FOUR_KIB
    }

    /// A table subtree was unlinked while other walkers may still read it.
    /// Once they are all gone, the host calls
    /// [`free_unlinked`](crate::free_unlinked) on it with the same `level`:
    /// the level of the entry that linked it (its own entries are one level
    /// down), as in the kernel's `free_unlinked_table`.
    ///
    /// # Safety
    ///
    /// `table` is a table page of this host that hung below an entry of
    /// `level`, no table links to it any more, and it is handed over once.
    unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level);

    /// Increments the reference count of the page holding `pa`.
    ///
    /// # Safety
    ///
    /// The new reference belongs to a counted (non-zero) entry that the
    /// caller is storing in that table page, and is given back with
    /// [`put_page`](Self::put_page) when the entry goes. pgwalk trusts
    /// "count 1 means empty" and "count 0 means unlinked": a reference
    /// taken for anything else would let it free a page that a table still
    /// links.
    unsafe fn get_page(&self, pa: PhysAddr);

    /// [`get_page`](Self::get_page) for the entry at `entry`, the address
    /// at which this host's [`phys_to_virt`](Self::phys_to_virt) mapping of
    /// the table page at `pa` holds the entry being stored. The walker has
    /// that address at hand where it updates an entry, so a host whose own
    /// reference counts are found by address (the C ABI's `get_page` takes
    /// the entry's address, as the kernel's does) can skip converting `pa`
    /// back. The default calls `get_page(pa)`.
    ///
    /// # Safety
    ///
    /// As [`get_page`](Self::get_page), and `entry` is an entry of the page
    /// at `pa`, at the address `phys_to_virt` maps it at.
    #[inline]
    unsafe fn get_page_at(&self, pa: PhysAddr, entry: NonNull<u64>) {
        let _ = entry;
        // SAFETY: the caller's contract is `get_page`'s.
        unsafe { self.get_page(pa) }
    }

    /// [`put_page`](Self::put_page) for the entry at `entry`, as
    /// [`get_page_at`](Self::get_page_at) is for `get_page`. The default
    /// calls `put_page(pa)`.
    ///
    /// # Safety
    ///
    /// As [`put_page`](Self::put_page), and `entry` is an entry of the page
    /// at `pa`, at the address `phys_to_virt` maps it at.
    #[inline]
    unsafe fn put_page_at(&self, pa: PhysAddr, entry: NonNull<u64>) {
        let _ = entry;
        // SAFETY: the caller's contract is `put_page`'s.
        unsafe { self.put_page(pa) }
    }

    /// Adds `n` to the reference count of the page holding `pa`: what `n`
    /// calls to [`get_page`](Self::get_page) do. pgwalk calls it once for a
    /// table page it filled in bulk; a host whose counts are atomic saves an
    /// atomic operation per entry by overriding it.
    ///
    /// # Safety
    ///
    /// As [`get_page`](Self::get_page), for `n` counted entries.
    #[inline]
    unsafe fn get_pages(&self, pa: PhysAddr, n: usize) {
        for _ in 0..n {
            // SAFETY: the caller accounts for `n` new entries, one each.
            unsafe { self.get_page(pa) };
        }
    }

    /// Decrements the reference count of the page holding `pa`, freeing it
    /// at zero.
    ///
    /// # Safety
    ///
    /// The caller owns one of the page's references, and, if it is the last
    /// one, nothing links to or walks the page any more.
    unsafe fn put_page(&self, pa: PhysAddr);

    /// Whether [`put_pages`](Self::put_pages) drops its `n` references in
    /// about the time of one [`put_page`](Self::put_page) (one atomic
    /// subtraction, as the `std` feature's `HeapMemory` does).
    ///
    /// When it does, an unmap that empties a whole last-level table gives
    /// the table's references back in one call, once the table is clear.
    /// When it does not (the default: `put_pages` is `n` calls of
    /// `put_page`), the reference of each page the unmap cleans goes back
    /// beside that page's clean, where the host's count updates overlap
    /// the cleans instead of running in a row at the end, each waiting for
    /// the last (on the kernel's C host in `benches/linux.rs`: unmap 5.3 →
    /// 4.4 ns a page). Either way the same references are given back.
    const BULK_PUT_PAGES: bool = false;

    /// Drops `n` references to the page holding `pa`: what `n` calls to
    /// [`put_page`](Self::put_page) do. pgwalk calls it once for a table
    /// page it emptied in bulk (an unmap covering a whole last-level
    /// table) when [`BULK_PUT_PAGES`](Self::BULK_PUT_PAGES) says it is one
    /// update; a host whose counts are atomic saves an atomic operation per
    /// entry by overriding it so.
    ///
    /// # Safety
    ///
    /// As [`put_page`](Self::put_page), for `n` references the caller owns.
    #[inline]
    unsafe fn put_pages(&self, pa: PhysAddr, n: usize) {
        for _ in 0..n {
            // SAFETY: the caller gives back `n` references it owns, one each.
            unsafe { self.put_page(pa) };
        }
    }

    /// The reference count of the page holding `pa`.
    fn page_count(&self, pa: PhysAddr) -> usize;

    /// Where the host can read and write the page at `pa`.
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8>;

    /// [`phys_to_virt`](Self::phys_to_virt) of the root of a table, where
    /// every one-page walk (a fault, a permission change) starts: a host
    /// that keeps the root's virtual address (as the kernel's `struct
    /// kvm_pgtable` keeps `pgd`) returns it here without converting. The
    /// default converts.
    #[inline(always)]
    fn root_to_virt(&self, root: PhysAddr) -> NonNull<u8> {
        self.phys_to_virt(root)
    }

    /// Cleans and invalidates the data cache to the point of coherency for
    /// `size` bytes of guest memory at `pa`, before it is mapped cacheable.
    fn dcache_clean_inval_poc(&self, pa: PhysAddr, size: u64);

    /// Invalidates the instruction cache to the point of unification for
    /// `size` bytes at `pa`, before it is mapped executable.
    fn icache_inval_pou(&self, pa: PhysAddr, size: u64);

    /// Runs `walk`, a walk that other walkers may run beside, inside the
    /// host's read-side critical section (the kernel's `rcu_read_lock`).
    /// Hosts without concurrent walkers keep the default.
    #[inline(always)]
    fn shared_walk<R>(&self, walk: impl FnOnce() -> R) -> R {
        walk()
    }

    /// How many times in a row a [`Shared`](crate::Shared) walker retries
    /// one entry before it gives up with
    /// [`Error::RetryLimit`](crate::Error::RetryLimit).
    ///
    /// A retry follows a lost race or an entry locked by another walker's
    /// break-before-make, which ends once that walker's TLB invalidation
    /// does; a visitor still asking after this many tries waits for a change
    /// nobody is making. The default, [`RETRY_LIMIT`](crate::visit::RETRY_LIMIT),
    /// spins for the better part of a second: enough for a breaking walker
    /// that was preempted, in a host that can preempt one.
    #[inline(always)]
    fn retry_limit(&self) -> u32 {
        crate::visit::RETRY_LIMIT
    }

    /// Invalidates stage-2 TLB entries for the entry at `ipa` and `level`
    /// (`__kvm_tlb_flush_vmid_ipa`).
    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, level: Level);

    /// Invalidates stage-2 TLB entries for `ipa` whatever the level of the
    /// entry that maps it, including cached walks through tables (a TLBI by
    /// IPA without a TTL hint: the kernel's `__kvm_tlb_flush_vmid_ipa` with
    /// `TLBI_TTL_UNKNOWN`). The default invalidates the whole VMID, which is
    /// always enough.
    #[inline]
    fn tlb_flush_vmid_ipa_unknown_level(&self, ipa: Ipa) {
        let _ = ipa;
        self.tlb_flush_vmid();
    }

    /// Invalidates stage-2 TLB entries for `ipa` on this CPU only (the
    /// kernel's `__kvm_tlb_flush_vmid_ipa_nsh`), with the entry's level when
    /// known. pgwalk asks for it after relaxing permissions for a faulting
    /// vCPU: other CPUs holding the stricter entry at worst fault once more
    /// and find it relaxed. The default invalidates as
    /// [`tlb_flush_vmid_ipa`](Self::tlb_flush_vmid_ipa) and
    /// [`tlb_flush_vmid_ipa_unknown_level`](Self::tlb_flush_vmid_ipa_unknown_level)
    /// do, for every CPU.
    #[inline]
    fn tlb_flush_vmid_ipa_local(&self, ipa: Ipa, level: Option<Level>) {
        match level {
            Some(level) => self.tlb_flush_vmid_ipa(ipa, level),
            None => self.tlb_flush_vmid_ipa_unknown_level(ipa),
        }
    }

    /// Invalidates stage-2 TLB entries for `size` bytes from `ipa`, including
    /// cached table walks (`kvm_tlb_flush_vmid_range`).
    fn tlb_flush_vmid_range(&self, ipa: Ipa, size: u64);

    /// Invalidates every stage-2 TLB entry of this VMID (`__kvm_tlb_flush_vmid`).
    fn tlb_flush_vmid(&self);
}

//! [`HeapMemory`]: a [`MemoryOps`] over a heap-allocated pool.

use std::alloc::alloc_zeroed;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::grace::{self, Snapshot};
use super::pool::{Counters, Pool, Retired};
use crate::addr::{Ipa, PhysAddr, Va};
use crate::geometry::{Level, TableFormat};
use crate::hyp::HypTlb;
use crate::memory::MemoryOps;
use crate::stage2::free_unlinked;

/// Counters of what the table asked the host to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Table pages handed out by `zalloc_page`.
    pub pages_allocated: u64,
    /// Table pages whose count reached zero.
    pub pages_freed: u64,
    /// `put_page` on a page whose count was already zero (a bug).
    pub double_frees: u64,
    /// `zalloc_page` or `zalloc_pages_exact` refused (out of memory).
    pub alloc_failures: u64,
    /// `tlb_flush_vmid_ipa` calls.
    pub tlbi_ipa: u64,
    /// `tlb_flush_vmid_range` calls.
    pub tlbi_range: u64,
    /// `tlb_flush_vmid` calls.
    pub tlbi_vmid: u64,
    /// `dcache_clean_inval_poc` calls.
    pub dcache_cleans: u64,
    /// `icache_inval_pou` calls.
    pub icache_invals: u64,
    /// Subtrees handed to `free_unlinked_table`.
    pub deferred_frees: u64,
    /// [`HypTlb::flush_va`](crate::hyp::HypTlb::flush_va) calls (hyp tables).
    pub hyp_flush_va: u64,
    /// [`HypTlb::flush_va_walks`](crate::hyp::HypTlb::flush_va_walks) calls.
    pub hyp_flush_va_walks: u64,
    /// [`HypTlb::publish`](crate::hyp::HypTlb::publish) calls.
    pub hyp_publishes: u64,
}

/// A heap-backed [`MemoryOps`]: see the [module documentation](crate::host).
///
/// Cloning shares the pool (deferred frees need a handle that outlives the
/// walker that unlinked the pages).
#[derive(Clone)]
pub struct HeapMemory {
    pool: Arc<Pool>,
}

impl HeapMemory {
    /// A pool of `pages` 4 KiB pages at physical address 0x4000_0000, for
    /// 4 KiB tables without LPA2.
    pub fn new(pages: usize) -> HeapMemory {
        HeapMemory::at(0x4000_0000, pages)
    }

    /// A pool of `pages` 4 KiB pages whose physical addresses start at
    /// `phys_base` (page-aligned), for 4 KiB tables without LPA2. The
    /// memory is reserved lazily by the operating system, so a large pool
    /// costs little until used.
    pub fn at(phys_base: u64, pages: usize) -> HeapMemory {
        HeapMemory::with_format_at(TableFormat::FOUR_KIB, phys_base, pages)
    }

    /// A pool of `pages` pages at physical address 0x4000_0000 for tables
    /// of `format` (a [`TableFormat`], or a
    /// [`Granule`](crate::geometry::Granule) without LPA2): each page is the
    /// granule's size, 4, 16 or 64 KiB.
    pub fn with_format(format: impl Into<TableFormat>, pages: usize) -> HeapMemory {
        HeapMemory::with_format_at(format, 0x4000_0000, pages)
    }

    /// A pool of `pages` pages of `format`'s granule whose physical
    /// addresses start at `phys_base` (aligned to the granule).
    pub fn with_format_at(
        format: impl Into<TableFormat>,
        phys_base: u64,
        pages: usize,
    ) -> HeapMemory {
        let format = format.into();
        let shift = format.granule().shift();
        assert!(
            phys_base & ((1 << shift) - 1) == 0,
            "phys_base must be page-aligned"
        );
        assert!(
            pages > 0 && pages <= u32::MAX as usize,
            "pool size out of range"
        );
        let layout = Pool::layout(shift, pages);
        // SAFETY: the layout has a non-zero size (pages > 0).
        let base =
            NonNull::new(unsafe { alloc_zeroed(layout) }).expect("out of host memory for the pool");
        let counts = (0..pages).map(|_| AtomicU32::new(0)).collect();
        HeapMemory {
            pool: Arc::new(Pool {
                base,
                format,
                shift,
                pages,
                phys_base,
                counts,
                free: Mutex::new(Vec::new()),
                next: AtomicUsize::new(0),
                limit: AtomicUsize::new(usize::MAX),
                counting: AtomicBool::new(true),
                retry_limit: AtomicU32::new(crate::visit::RETRY_LIMIT),
                live: AtomicUsize::new(0),
                pending: AtomicUsize::new(0),
                retired: Mutex::new(Vec::new()),
                stats: Counters::default(),
            }),
        }
    }

    /// Turns the counting of TLB and cache maintenance in [`Stats`] on (the
    /// default) or off. Each count is a shared atomic increment: off, the
    /// maintenance hooks cost what a host's own instructions would, which is
    /// what a benchmark wants. Page accounting is always on.
    pub fn set_counting(&self, on: bool) {
        self.pool.counting.store(on, Ordering::Relaxed);
    }

    /// Sets what [`MemoryOps::retry_limit`] answers (the default is
    /// [`RETRY_LIMIT`](crate::visit::RETRY_LIMIT)): a small limit makes a test of a
    /// livelocked visitor quick.
    pub fn set_retry_limit(&self, limit: u32) {
        self.pool.retry_limit.store(limit, Ordering::Relaxed);
    }

    /// Caps the pages alive at once: allocations beyond it fail, to test
    /// out-of-memory paths. `usize::MAX` removes the cap.
    pub fn set_page_limit(&self, limit: usize) {
        self.pool.limit.store(limit, Ordering::Relaxed);
    }

    /// Table pages allocated and not yet freed (the root included).
    pub fn live_pages(&self) -> usize {
        self.pool.live.load(Ordering::Relaxed)
    }

    /// Subtrees waiting for their grace period.
    pub fn pending_frees(&self) -> usize {
        self.pool.pending.load(Ordering::Acquire)
    }

    /// The reference count of the page at `pa`.
    pub fn count(&self, pa: PhysAddr) -> u32 {
        self.pool.counts[self.pool.index(pa)].load(Ordering::Relaxed)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let s = &self.pool.stats;
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            pages_allocated: l(&s.pages_allocated),
            pages_freed: l(&s.pages_freed),
            double_frees: l(&s.double_frees),
            alloc_failures: l(&s.alloc_failures),
            tlbi_ipa: l(&s.tlbi_ipa),
            tlbi_range: l(&s.tlbi_range),
            tlbi_vmid: l(&s.tlbi_vmid),
            dcache_cleans: l(&s.dcache_cleans),
            icache_invals: l(&s.icache_invals),
            deferred_frees: l(&s.deferred_frees),
            hyp_flush_va: l(&s.hyp_flush_va),
            hyp_flush_va_walks: l(&s.hyp_flush_va_walks),
            hyp_publishes: l(&s.hyp_publishes),
        }
    }

    /// Waits until every deferred free has run: frees what the walks of
    /// its grace period no longer hold, until nothing is pending, for at
    /// most ten seconds. Call it with no walk of this table running; walks
    /// on other tables (other tests of the same process, say) may delay a
    /// free, not stop it. Returns whether everything was freed.
    pub fn quiesce(&self) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            self.collect();
            if self.pending_frees() == 0 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Frees the retired subtrees whose grace period is over.
    fn collect(&self) {
        let ready: Vec<Retired> = {
            let mut retired = self.pool.retired.lock().unwrap_or_else(|e| e.into_inner());
            let mut ready = Vec::new();
            let mut i = 0;
            while i < retired.len() {
                if retired[i].walks.passed() {
                    ready.push(retired.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            ready
        };
        for r in ready {
            // SAFETY: `free_unlinked_table` retired `r.table`, unlinked,
            // and every walk that could still reach it then has ended.
            unsafe { free_unlinked(self, r.table, r.level) };
            self.pool.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// A copy of the pool's bytes from physical address `from` for `len`
    /// bytes, e.g. to hand a table image to another machine. Any address and
    /// length inside the pool will do.
    ///
    /// Each aligned 8-byte word is read atomically, so a walker changing
    /// entries meanwhile is no data race, but the copy may then mix entries
    /// from before and after its changes: for a consistent image, take it
    /// while no walker runs.
    ///
    /// # Panics
    ///
    /// If the range is not inside the pool.
    pub fn bytes(&self, from: PhysAddr, len: usize) -> Vec<u8> {
        let size = (self.pool.pages << self.pool.shift) as u64;
        let start = from
            .get()
            .checked_sub(self.pool.phys_base)
            .filter(|&s| s <= size)
            .unwrap_or_else(|| panic!("{from:?} is outside the pool"));
        let end = start
            .checked_add(len as u64)
            .filter(|&e| e <= size)
            .unwrap_or_else(|| panic!("{len:#x} bytes from {from:?} run beyond the pool"));
        let (start, end) = (start as usize, end as usize);
        let mut out = Vec::with_capacity(len);
        let first = start / 8;
        let words = &self.pool.words()[first..end.div_ceil(8)];
        for (i, word) in words.iter().enumerate() {
            let at = (first + i) * 8;
            let bytes = word.load(Ordering::Acquire).to_le_bytes();
            out.extend_from_slice(&bytes[start.max(at) - at..end.min(at + 8) - at]);
        }
        out
    }

    /// Pages in the pool.
    pub(super) fn pool_pages(&self) -> usize {
        self.pool.pages
    }

    /// The physical address where the pool starts.
    pub fn phys_base(&self) -> PhysAddr {
        PhysAddr(self.pool.phys_base)
    }

    /// The pages the bump allocator has reached: table images lie below
    /// `phys_base + extent()`.
    pub fn extent(&self) -> usize {
        self.pool.next.load(Ordering::Relaxed) << self.pool.shift
    }

    /// Bytes in one of the pool's pages: the granule's size.
    pub fn page_size(&self) -> usize {
        self.pool.page()
    }
}

// SAFETY: pages come zeroed (`zero` before hand-out), of the granule's
// size (`table_format` is the pool's, whose pages have that size) and
// aligned to it, from a
// block that lives as long as any clone of the pool; the count starts at 1
// and a page is reused only after `put_page` takes it to zero; `phys_to_virt`
// maps inside the block; a deferred free runs only once every walk that was
// inside `shared_walk` when it was retired has left it (see `grace`).
unsafe impl MemoryOps for HeapMemory {
    type PagePool = ();

    #[inline(always)]
    fn table_format(&self) -> TableFormat {
        self.pool.format
    }

    fn zalloc_page(&self, _pool: &mut ()) -> Option<PhysAddr> {
        let pool = &self.pool;
        let Some(idx) = pool.take(1, 1) else {
            pool.stats.alloc_failures.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        pool.zero(idx, 1);
        pool.counts[idx].store(1, Ordering::Relaxed);
        pool.live.fetch_add(1, Ordering::Relaxed);
        pool.stats.pages_allocated.fetch_add(1, Ordering::Relaxed);
        Some(PhysAddr(pool.phys_base + ((idx as u64) << pool.shift)))
    }

    fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
        let pool = &self.pool;
        let n = size.div_ceil(pool.page());
        let Some(idx) = pool.take(n, n.next_power_of_two()) else {
            pool.stats.alloc_failures.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        pool.zero(idx, n);
        for c in &pool.counts[idx..idx + n] {
            c.store(1, Ordering::Relaxed);
        }
        pool.live.fetch_add(n, Ordering::Relaxed);
        pool.stats
            .pages_allocated
            .fetch_add(n as u64, Ordering::Relaxed);
        Some(PhysAddr(pool.phys_base + ((idx as u64) << pool.shift)))
    }

    unsafe fn free_pages_exact(&self, pa: PhysAddr, size: usize) {
        let idx = self.pool.index(pa);
        for i in idx..idx + size.div_ceil(self.pool.page()) {
            if self.pool.counts[i].swap(0, Ordering::AcqRel) == 0 {
                self.pool.stats.double_frees.fetch_add(1, Ordering::Relaxed);
            } else {
                self.pool.release(i);
            }
        }
    }

    unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
        let pool = &self.pool;
        pool.stats.deferred_frees.fetch_add(1, Ordering::Relaxed);
        pool.pending.fetch_add(1, Ordering::AcqRel);
        // The caller unlinked `table` before this call, on this thread, as
        // the snapshot's barrier needs.
        let walks = Snapshot::take();
        pool.retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Retired {
                table,
                level,
                walks,
            });
    }

    #[inline]
    unsafe fn get_page(&self, pa: PhysAddr) {
        // SAFETY: the caller's contract is the one `get_pages` asks for.
        unsafe { self.get_pages(pa, 1) }
    }

    #[inline]
    unsafe fn get_pages(&self, pa: PhysAddr, n: usize) {
        // One atomic add for a whole table page filled in bulk, where
        // `get_page` would take one per entry. A count never wraps: a
        // wrapped count would read "empty" (1) or "free" (0) while entries
        // still hold references, and pgwalk would free a linked page.
        // No real count comes near `COUNT_LIMIT` (a page has at most a few
        // thousand entries), and below it one add cannot wrap, so a single
        // atomic add, checked after the fact, is enough.
        let count = &self.pool.counts[self.pool.index(pa)];
        let Some(n32) = u32::try_from(n).ok().filter(|&n| n <= COUNT_LIMIT) else {
            count_overflow(pa, n);
        };
        if count.fetch_add(n32, Ordering::Relaxed) > COUNT_LIMIT {
            count.fetch_sub(n32, Ordering::Relaxed);
            count_overflow(pa, n);
        }
    }

    #[inline]
    unsafe fn put_page(&self, pa: PhysAddr) {
        let idx = self.pool.index(pa);
        let prev = self.pool.counts[idx]
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
        match prev {
            Ok(1) => self.pool.release(idx),
            Ok(_) => {}
            Err(_) => {
                self.pool.stats.double_frees.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    // One atomic update for any `n`.
    const BULK_PUT_PAGES: bool = true;

    #[inline]
    unsafe fn put_pages(&self, pa: PhysAddr, n: usize) {
        if n == 0 {
            return;
        }
        let idx = self.pool.index(pa);
        // A drop of more than a count holds is a double free, whatever `n`.
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        let prev = self.pool.counts[idx]
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(n32));
        match prev {
            Ok(c) if c == n32 => self.pool.release(idx),
            Ok(_) => {}
            Err(_) => {
                self.pool.stats.double_frees.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[inline]
    fn page_count(&self, pa: PhysAddr) -> usize {
        self.pool.counts[self.pool.index(pa)].load(Ordering::Acquire) as usize
    }

    #[inline]
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        // `index` checks that the page lies inside the block; the offset
        // within the block is then below its size.
        self.pool.index(pa);
        let off = (pa.get() - self.pool.phys_base) as usize;
        // SAFETY: `off` lies inside the block (checked just above).
        unsafe { self.pool.base.add(off) }
    }

    #[inline]
    fn dcache_clean_inval_poc(&self, _pa: PhysAddr, _size: u64) {
        self.pool.count(&self.pool.stats.dcache_cleans);
    }

    #[inline]
    fn icache_inval_pou(&self, _pa: PhysAddr, _size: u64) {
        self.pool.count(&self.pool.stats.icache_invals);
    }

    #[inline]
    fn retry_limit(&self) -> u32 {
        self.pool.retry_limit.load(Ordering::Relaxed)
    }

    #[inline]
    fn shared_walk<R>(&self, walk: impl FnOnce() -> R) -> R {
        let r = grace::read(walk);
        // Whoever ends a walk frees what is ready: a relaxed load when
        // nothing is pending.
        if self.pool.pending.load(Ordering::Relaxed) != 0 {
            self.collect();
        }
        r
    }

    #[inline]
    fn tlb_flush_vmid_ipa(&self, _ipa: Ipa, _level: Level) {
        self.pool.count(&self.pool.stats.tlbi_ipa);
    }

    #[inline]
    fn tlb_flush_vmid_range(&self, _ipa: Ipa, _size: u64) {
        self.pool.count(&self.pool.stats.tlbi_range);
    }

    #[inline]
    fn tlb_flush_vmid(&self) {
        self.pool.count(&self.pool.stats.tlbi_vmid);
    }
}

/// EL2 TLB maintenance is counted in [`Stats`], like stage 2's.
impl HypTlb for HeapMemory {
    #[inline]
    fn flush_va(&self, _va: Va, _level: Level) {
        self.pool.count(&self.pool.stats.hyp_flush_va);
    }

    #[inline]
    fn flush_va_walks(&self, _va: Va, _level: Level) {
        self.pool.count(&self.pool.stats.hyp_flush_va_walks);
    }

    #[inline]
    fn publish(&self) {
        self.pool.count(&self.pool.stats.hyp_publishes);
    }
}

/// The highest reference count [`HeapMemory`] accepts. Half the range: a
/// count at or above it is refused before it can wrap.
const COUNT_LIMIT: u32 = u32::MAX / 2;

#[cold]
#[inline(never)]
fn count_overflow(pa: PhysAddr, n: usize) -> ! {
    panic!("reference count of the table page at {pa:?} would overflow (+{n})")
}

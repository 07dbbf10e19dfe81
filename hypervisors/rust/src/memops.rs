//! The hypervisor's `pgwalk::MemoryOps`: table pages from a static pool
//! with atomic reference counts, identity phys<->virt, real TLB and cache
//! maintenance, and the grace period of `grace.rs` for unlinked subtrees.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use pgwalk::geometry::Level;
use pgwalk::{Ipa, MemoryOps, PhysAddr};

use crate::layout::{self, PAGE};
use crate::stats::{count, STATS};
use crate::{arch, grace};

/// Pages in the pool (layout.ld's HV_POOL_SIZE; checked at start-up).
pub const POOL_PAGES: usize = (layout::HV_POOL_SIZE / PAGE) as usize;

/// Table pages: which are in use, and each page's reference count.
struct Pool {
    used: spin::Mutex<[u64; POOL_PAGES / 64]>,
    refs: [AtomicU32; POOL_PAGES],
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

static POOL: Pool = Pool {
    used: spin::Mutex::new([0; POOL_PAGES / 64]),
    refs: [const { AtomicU32::new(0) }; POOL_PAGES],
    in_use: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

fn pool_base() -> u64 {
    let (start, end) = layout::pool();
    assert_eq!(
        (end - start) / PAGE,
        POOL_PAGES as u64,
        "pool size disagrees with layout.ld"
    );
    start
}

fn index(pa: PhysAddr) -> usize {
    let idx = pa.get().wrapping_sub(pool_base()) / PAGE;
    assert!(idx < POOL_PAGES as u64, "{pa:?} is not a pool page");
    idx as usize
}

/// Whether `pa` is a page of the pool (what `phys_to_virt` maps): the
/// final table check follows no table descriptor pointing elsewhere.
pub fn in_pool(pa: PhysAddr) -> bool {
    pa.get().wrapping_sub(pool_base()) / PAGE < POOL_PAGES as u64 && pa.get() % PAGE == 0
}

fn page_pa(idx: usize) -> PhysAddr {
    PhysAddr(pool_base() + idx as u64 * PAGE)
}

/// Takes `n` free pages aligned to `n` pages, zeroes them and gives each a
/// count of 1.
fn take(n: usize) -> Option<PhysAddr> {
    let mut used = POOL.used.lock();
    let is_used = |used: &[u64], i: usize| used[i / 64] & (1 << (i % 64)) != 0;
    let mut start = 0;
    while start + n <= POOL_PAGES {
        if let Some(busy) = (start..start + n).rev().find(|&i| is_used(&*used, i)) {
            start = (busy + 1).next_multiple_of(n);
            continue;
        }
        for i in start..start + n {
            used[i / 64] |= 1 << (i % 64);
        }
        drop(used);
        let pa = page_pa(start);
        assert!(
            pa.is_aligned(n as u64 * PAGE),
            "the pool is not aligned (link.ld)"
        );
        // SAFETY: the pages were free (nobody references a free page) and
        // are ours now; the pool is mapped read-write at EL2, identity.
        unsafe { (pa.get() as *mut u8).write_bytes(0, n * PAGE as usize) };
        for r in &POOL.refs[start..start + n] {
            r.store(1, Ordering::Release);
        }
        let now = POOL.in_use.fetch_add(n, Ordering::Relaxed) + n;
        POOL.peak.fetch_max(now, Ordering::Relaxed);
        STATS.pages_allocated.fetch_add(n as u64, Ordering::Relaxed);
        return Some(pa);
    }
    None
}

fn release(idx: usize) {
    let mut used = POOL.used.lock();
    assert!(
        used[idx / 64] & (1 << (idx % 64)) != 0,
        "pool page {idx} freed twice"
    );
    used[idx / 64] &= !(1 << (idx % 64));
    POOL.in_use.fetch_sub(1, Ordering::Relaxed);
    count(&STATS.pages_freed);
}

/// Pool pages in use, and the most ever in use.
pub fn pool_usage() -> (usize, usize) {
    (
        POOL.in_use.load(Ordering::Relaxed),
        POOL.peak.load(Ordering::Relaxed),
    )
}

/// The stage-2 table's host: a handle on the global pool.
pub struct HvMemory;

// SAFETY: `take` hands out zeroed, size-aligned pages of the pool that no
// one else uses until `release`, with a count of 1; the pool is
// identity-mapped read-write at EL2, so `phys_to_virt` is valid for every
// allocated page; `put_page` releases only at zero and counts are atomic;
// nothing else frees; `free_unlinked_table` queues the subtree in
// `grace.rs`, which frees it only after every vCPU has passed a quiescent
// point outside any walk (`shared_walk` marks the walks).
unsafe impl MemoryOps for HvMemory {
    type PagePool = ();

    fn zalloc_page(&self, _cache: &mut ()) -> Option<PhysAddr> {
        take(1)
    }

    fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
        take(size.div_ceil(PAGE as usize))
    }

    unsafe fn free_pages_exact(&self, pa: PhysAddr, size: usize) {
        let first = index(pa);
        for idx in first..first + size.div_ceil(PAGE as usize) {
            POOL.refs[idx].store(0, Ordering::Release);
            release(idx);
        }
    }

    unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
        count(&STATS.deferred_frees);
        grace::defer_free(table, level);
    }

    unsafe fn get_page(&self, pa: PhysAddr) {
        // SAFETY: pgwalk takes the reference for an entry it stores, as
        // `get_pages` asks.
        unsafe { self.get_pages(pa, 1) }
    }

    unsafe fn get_pages(&self, pa: PhysAddr, n: usize) {
        // A table page has at most 512 entries: a count that would leave
        // the range is a bug, and a wrapped count would free a linked page.
        let n = u32::try_from(n).expect("reference count overflow");
        let prev = POOL.refs[index(pa)].fetch_add(n, Ordering::Relaxed);
        assert!(prev < u32::MAX / 2, "reference count overflow");
    }

    unsafe fn put_page(&self, pa: PhysAddr) {
        let idx = index(pa);
        let prev = POOL.refs[idx].fetch_sub(1, Ordering::AcqRel);
        assert!(prev != 0, "put_page on free pool page {idx}");
        if prev == 1 {
            release(idx);
        }
    }

    fn page_count(&self, pa: PhysAddr) -> usize {
        POOL.refs[index(pa)].load(Ordering::Acquire) as usize
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        index(pa);
        NonNull::new(pa.get() as *mut u8).expect("the pool is not at address 0")
    }

    fn dcache_clean_inval_poc(&self, pa: PhysAddr, size: u64) {
        count(&STATS.dcache_ops);
        arch::dcache_clean_inval_poc(pa.get(), size);
    }

    fn icache_inval_pou(&self, pa: PhysAddr, size: u64) {
        count(&STATS.icache_ops);
        arch::icache_inval_pou(pa.get(), size);
    }

    #[inline(always)]
    fn shared_walk<R>(&self, walk: impl FnOnce() -> R) -> R {
        grace::read_side(walk)
    }

    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, _level: Level) {
        count(&STATS.tlbi_ipa);
        arch::tlbi_ipa(ipa.get());
    }

    fn tlb_flush_vmid_range(&self, ipa: Ipa, size: u64) {
        // Beyond a few hundred pages one whole-VMID invalidation is cheaper
        // than the loop (KVM's MAX_TLBI_OPS idea).
        if size / PAGE > 512 {
            self.tlb_flush_vmid();
            return;
        }
        count(&STATS.tlbi_range);
        arch::tlbi_ipa_range(ipa.get(), size);
    }

    fn tlb_flush_vmid(&self) {
        count(&STATS.tlbi_vmid);
        arch::tlbi_vmid();
    }
}

/// Frees an unlinked subtree whose grace period is over.
///
/// # Safety
///
/// `table` was handed to [`MemoryOps::free_unlinked_table`] with `level`,
/// once, and every walk that might have been reading it has finished.
pub unsafe fn free_subtree(table: PhysAddr, level: Level) {
    // SAFETY: the caller's contract is pgwalk's: unlinked, unreachable,
    // freed once.
    unsafe { pgwalk::free_unlinked(&HvMemory, table, level) };
}

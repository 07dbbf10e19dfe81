//! The memory behind [`HeapMemory`](super::HeapMemory): one heap block of
//! pages, their reference counts, a free list and the statistics.

use std::alloc::{dealloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::grace::Snapshot;
use crate::addr::PhysAddr;
use crate::geometry::{Level, TableFormat};

#[derive(Default)]
pub(super) struct Counters {
    pub(super) pages_allocated: AtomicU64,
    pub(super) pages_freed: AtomicU64,
    pub(super) double_frees: AtomicU64,
    pub(super) alloc_failures: AtomicU64,
    pub(super) tlbi_ipa: AtomicU64,
    pub(super) tlbi_range: AtomicU64,
    pub(super) tlbi_vmid: AtomicU64,
    pub(super) dcache_cleans: AtomicU64,
    pub(super) icache_invals: AtomicU64,
    pub(super) deferred_frees: AtomicU64,
    pub(super) hyp_flush_va: AtomicU64,
    pub(super) hyp_flush_va_walks: AtomicU64,
    pub(super) hyp_publishes: AtomicU64,
}

pub(super) struct Pool {
    pub(super) base: NonNull<u8>,
    /// The format of the tables the pool serves; its pages are the
    /// granule's size.
    pub(super) format: TableFormat,
    /// log2 of a page's size.
    pub(super) shift: u32,
    pub(super) pages: usize,
    pub(super) phys_base: u64,
    pub(super) counts: Box<[AtomicU32]>,
    pub(super) free: Mutex<Vec<u32>>,
    pub(super) next: AtomicUsize,
    pub(super) limit: AtomicUsize,
    pub(super) counting: AtomicBool,
    pub(super) retry_limit: AtomicU32,
    pub(super) live: AtomicUsize,
    pub(super) pending: AtomicUsize,
    /// Subtrees waiting for their grace period.
    pub(super) retired: Mutex<Vec<Retired>>,
    pub(super) stats: Counters,
}

/// An unlinked subtree and the walks it waits for.
pub(super) struct Retired {
    pub(super) table: PhysAddr,
    pub(super) level: Level,
    pub(super) walks: Snapshot,
}

// SAFETY: `base` points to a heap block owned by the pool; every access to
// page contents goes through atomics (the walker's entries) or happens on
// pages handed to one owner at a time (zeroing on allocation), and the
// bookkeeping is atomic or behind a mutex.
unsafe impl Send for Pool {}
// SAFETY: as above; shared access is through atomics and the mutex only.
unsafe impl Sync for Pool {}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc_zeroed` with this same layout.
        unsafe { dealloc(self.base.as_ptr(), Pool::layout(self.shift, self.pages)) };
    }
}

impl Pool {
    /// Counts one maintenance operation, when counting is on.
    #[inline]
    pub(super) fn count(&self, counter: &AtomicU64) {
        if self.counting.load(Ordering::Relaxed) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn layout(shift: u32, pages: usize) -> Layout {
        let page = 1usize << shift;
        pages
            .checked_mul(page)
            .and_then(|size| Layout::from_size_align(size, page).ok())
            .expect("pool size overflows")
    }

    /// Bytes in one page.
    #[inline(always)]
    pub(super) fn page(&self) -> usize {
        1 << self.shift
    }

    /// The pool page holding `pa`. Every reference-count and phys-to-virt
    /// call goes through here, once per entry a walk changes, so the bounds
    /// check is a single comparison (an address below the pool wraps round
    /// to a huge offset) and the panic is out of line.
    #[inline]
    pub(super) fn index(&self, pa: PhysAddr) -> usize {
        let idx = pa.get().wrapping_sub(self.phys_base) >> self.shift;
        if idx >= self.pages as u64 {
            self.out_of_pool(pa);
        }
        idx as usize
    }

    #[cold]
    #[inline(never)]
    pub(super) fn out_of_pool(&self, pa: PhysAddr) -> ! {
        if pa.get() < self.phys_base {
            panic!("physical address below the pool");
        }
        panic!("physical address {pa:?} beyond the pool");
    }

    /// The whole block, as the words that table entries are.
    ///
    /// Every access to the pool's memory goes through these atomics — the
    /// walker's (through `phys_to_virt`), zeroing on allocation, and
    /// [`HeapMemory::bytes`] — so that no interleaving of them is a data
    /// race, whatever walkers and readers do at the same time.
    pub(super) fn words(&self) -> &[AtomicU64] {
        // SAFETY: `base` is a live allocation of `pages` pages, aligned to
        // a page (hence to 8), initialised (zeroed) by
        // `alloc_zeroed`, and freed only when the pool is dropped, which the
        // borrow of `self` rules out meanwhile. `AtomicU64` has the size and
        // alignment of `u64` and allows shared mutation, and the memory is
        // only ever accessed through such atomics.
        unsafe {
            core::slice::from_raw_parts(
                self.base.as_ptr().cast::<AtomicU64>(),
                (self.pages << self.shift) / 8,
            )
        }
    }

    pub(super) fn zero(&self, idx: usize, n: usize) {
        let words = self.page() / 8;
        for w in &self.words()[idx * words..(idx + n) * words] {
            w.store(0, Ordering::Relaxed);
        }
    }

    pub(super) fn take(&self, n: usize, align_pages: usize) -> Option<usize> {
        if self.live.load(Ordering::Relaxed) + n > self.limit.load(Ordering::Relaxed) {
            return None;
        }
        if n == 1 {
            if let Some(idx) = self.free.lock().unwrap().pop() {
                return Some(idx as usize);
            }
        }
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let start = cur.next_multiple_of(align_pages);
            if start + n > self.pages {
                return None;
            }
            match self
                .next
                .compare_exchange(cur, start + n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    // Pages skipped for alignment go to the free list.
                    let mut free = self.free.lock().unwrap();
                    free.extend((cur..start).map(|i| i as u32));
                    return Some(start);
                }
                Err(actual) => cur = actual,
            }
        }
    }

    pub(super) fn release(&self, idx: usize) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.stats.pages_freed.fetch_add(1, Ordering::Relaxed);
        self.free.lock().unwrap().push(idx as u32);
    }
}

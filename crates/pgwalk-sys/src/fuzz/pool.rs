//! The fuzzer's host: 4 KiB table pages behind a C `struct
//! kvm_pgtable_mm_ops` implemented in Rust, which fails allocations on a
//! seeded schedule and records every contract breach of the library (a
//! page freed twice, a reference on a free page, an address outside the
//! pool) instead of panicking, which an `extern "C"` callback must not.
//!
//! The C callbacks take no context, so the pool is a process-wide static;
//! [`Pool::lock`] serialises the tests that use it.

use core::ffi::{c_int, c_void};
use std::alloc::{alloc_zeroed, Layout};
use std::sync::{Mutex, MutexGuard};

use super::Rng;
use crate::abi::*;
use crate::compat::kvm_pgtable_stage2_free_unlinked;

/// Table page size (the 4 KiB granule).
pub(super) const PAGE: usize = 4096;
/// Pages in the pool: enough for both tables of a case with room to spare,
/// few enough that running out is one of the failures a case meets.
pub(super) const PAGES: usize = 256;
/// The physical address of the pool's first page, as the library sees it
/// (below the 40-bit PS of the fuzzed tables).
pub(super) const PHYS_BASE: u64 = 0x4_0000_0000;

struct State {
    /// Virtual address of page 0 (aligned to 64 KiB for concatenated roots).
    base: usize,
    refs: [i32; PAGES],
    /// Allocation failures per 1000 calls.
    fail_per_mille: u64,
    /// Allocations from this one on (counted from 0) fail.
    fail_from: u64,
    /// Which allocations fail: the seed's schedule alone.
    rng: Rng,
    allocs: u64,
    failed_allocs: u64,
    /// The first contract breach seen, if any.
    breach: Option<String>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
/// Held by each test that uses the pool.
static SERIAL: Mutex<()> = Mutex::new(());

fn state() -> MutexGuard<'static, Option<State>> {
    // A panic while the lock is held (a failing check) leaves the state as
    // valid as it was; the next test resets it.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut g = state();
    let s = g.get_or_insert_with(|| {
        let layout = Layout::from_size_align(PAGES * PAGE, 64 << 10).expect("pool layout");
        // SAFETY: a non-zero size. The memory is never freed: the pool
        // lives as long as the process, as the static that owns it.
        let base = unsafe { alloc_zeroed(layout) };
        assert!(!base.is_null(), "no memory for the fuzz pool");
        State {
            base: base as usize,
            refs: [0; PAGES],
            fail_per_mille: 0,
            fail_from: u64::MAX,
            rng: Rng::new(1),
            allocs: 0,
            failed_allocs: 0,
            breach: None,
        }
    });
    f(s)
}

impl State {
    fn breach(&mut self, what: String) {
        self.breach.get_or_insert(what);
    }

    fn index(&mut self, addr: *mut c_void, what: &str) -> Option<usize> {
        let off = (addr as usize).checked_sub(self.base);
        match off {
            Some(off) if off < PAGES * PAGE => Some(off / PAGE),
            _ => {
                self.breach(format!("{what}({addr:p}): outside the pool"));
                None
            }
        }
    }

    fn fails(&mut self) -> bool {
        self.rng.below(1000) < self.fail_per_mille
    }

    /// `n` zeroed free pages aligned to `n`, counted once each.
    fn alloc(&mut self, n: usize) -> *mut c_void {
        self.allocs += 1;
        if self.allocs > self.fail_from || self.fails() {
            self.failed_allocs += 1;
            return core::ptr::null_mut();
        }
        let mut i = 0;
        while i + n <= PAGES {
            if self.refs[i..i + n].iter().all(|&r| r == 0) {
                let p = (self.base + i * PAGE) as *mut u8;
                // SAFETY: pages `i..i + n` are free and inside the pool: no
                // table links them and nothing else reads them.
                unsafe { p.write_bytes(0, n * PAGE) };
                self.refs[i..i + n].fill(1);
                return p.cast();
            }
            i += n;
        }
        self.failed_allocs += 1;
        core::ptr::null_mut()
    }
}

unsafe extern "C" fn zalloc_page(_mc: *mut c_void) -> *mut c_void {
    with(|s| s.alloc(1))
}

unsafe extern "C" fn zalloc_pages_exact(size: usize) -> *mut c_void {
    with(|s| {
        if size == 0 || size % PAGE != 0 || !(size / PAGE).is_power_of_two() {
            s.breach(format!("zalloc_pages_exact({size:#x})"));
            return core::ptr::null_mut();
        }
        s.alloc(size / PAGE)
    })
}

unsafe extern "C" fn free_pages_exact(addr: *mut c_void, size: usize) {
    with(|s| {
        let Some(i) = s.index(addr, "free_pages_exact") else {
            return;
        };
        for j in i..(i + size / PAGE).min(PAGES) {
            if s.refs[j] <= 0 {
                s.breach(format!("free_pages_exact: page {j} is free already"));
            }
            s.refs[j] = 0;
        }
    })
}

unsafe extern "C" fn free_unlinked_table(addr: *mut c_void, level: i8) {
    // One thread walks at a time here: the grace period is over at once.
    // SAFETY: `addr` is the unlinked table the library just handed over,
    // at the level it said, bound to `MM_OPS`'s format.
    unsafe { kvm_pgtable_stage2_free_unlinked(mm_ops(), addr, level) }
}

unsafe extern "C" fn get_page(addr: *mut c_void) {
    with(|s| {
        if let Some(i) = s.index(addr, "get_page") {
            if s.refs[i] <= 0 {
                s.breach(format!("get_page on free page {i}"));
            }
            s.refs[i] += 1;
        }
    })
}

unsafe extern "C" fn put_page(addr: *mut c_void) {
    with(|s| {
        if let Some(i) = s.index(addr, "put_page") {
            if s.refs[i] <= 0 {
                s.breach(format!("put_page on free page {i} (a double free)"));
                return;
            }
            s.refs[i] -= 1;
        }
    })
}

unsafe extern "C" fn page_count(addr: *mut c_void) -> c_int {
    with(|s| s.index(addr, "page_count").map_or(0, |i| s.refs[i]))
}

unsafe extern "C" fn phys_to_virt(phys: u64) -> *mut c_void {
    with(|s| match phys.checked_sub(PHYS_BASE) {
        Some(off) if off < (PAGES * PAGE) as u64 => (s.base + off as usize) as *mut c_void,
        _ => {
            s.breach(format!("phys_to_virt({phys:#x}): outside the pool"));
            core::ptr::null_mut()
        }
    })
}

unsafe extern "C" fn virt_to_phys(addr: *mut c_void) -> u64 {
    with(|s| {
        s.index(addr, "virt_to_phys")
            .map_or(0, |_| PHYS_BASE + (addr as usize - s.base) as u64)
    })
}

static MM_OPS: kvm_pgtable_mm_ops = kvm_pgtable_mm_ops {
    zalloc_page: Some(zalloc_page),
    zalloc_pages_exact: Some(zalloc_pages_exact),
    free_pages_exact: Some(free_pages_exact),
    free_unlinked_table: Some(free_unlinked_table),
    get_page: Some(get_page),
    put_page: Some(put_page),
    page_count: Some(page_count),
    phys_to_virt: Some(phys_to_virt),
    virt_to_phys: Some(virt_to_phys),
    dcache_clean_inval_poc: None,
    icache_inval_pou: None,
};

/// The pool's `mm_ops`. The library only reads through the pointer.
pub(super) fn mm_ops() -> *mut kvm_pgtable_mm_ops {
    core::ptr::from_ref(&MM_OPS).cast_mut()
}

/// Exclusive use of the pool for one test.
pub(super) struct Pool {
    _serial: MutexGuard<'static, ()>,
}

impl Pool {
    /// Takes the pool, every page free, with no allocation failing.
    pub(super) fn lock() -> Pool {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        with(|s| {
            s.refs = [0; PAGES];
            s.fail_per_mille = 0;
            s.fail_from = u64::MAX;
            s.allocs = 0;
            s.failed_allocs = 0;
            s.breach = None;
        });
        Pool { _serial: serial }
    }

    /// From now on `per_mille` of 1000 allocations fail, in the order
    /// `seed` gives.
    pub(super) fn fail(&self, per_mille: u64, seed: u64) {
        with(|s| {
            s.fail_per_mille = per_mille;
            s.rng = Rng::new(seed);
        });
    }

    /// From now on, every allocation after the next `n` fails.
    pub(super) fn fail_after(&self, n: u64) {
        with(|s| s.fail_from = s.allocs + n);
    }

    /// Pages with a reference.
    pub(super) fn live(&self) -> usize {
        with(|s| s.refs.iter().filter(|&&r| r > 0).count())
    }

    /// Whether `pa` is a page of the pool.
    pub(super) fn holds(pa: u64) -> bool {
        pa.checked_sub(PHYS_BASE)
            .is_some_and(|off| off < (PAGES * PAGE) as u64)
    }

    /// The first contract breach the library committed, if any.
    pub(super) fn breach(&self) -> Option<String> {
        with(|s| s.breach.clone())
    }

    /// Allocations asked for, and how many failed.
    pub(super) fn allocs(&self) -> (u64, u64) {
        with(|s| (s.allocs, s.failed_allocs))
    }
}

/// Where the library's page at `pa` lies, for reading a table directly.
pub(super) fn virt(pa: u64) -> *const u64 {
    with(|s| (s.base as u64 + (pa - PHYS_BASE)) as *const u64)
}

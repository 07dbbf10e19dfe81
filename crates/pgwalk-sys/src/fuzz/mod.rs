//! A seeded fuzzer of the C ABI: random `kvm_pgtable_*` calls (stage 2,
//! the fault path, hyp tables, walks with C visitors), the typed
//! `pgw_stage2_fault_map` (or `pgw_bound_fault_map` on a fresh binding)
//! and `pgw_walk_leaf_runs` (held to a LEAF walk of the same pages)
//! through their `extern "C"` signatures, on the pool of `pool.rs`, whose allocations fail
//! on a seeded schedule. After every call it checks the core's invariants
//! (`Handle::check`), the pool (nothing freed twice, nothing leaked), that
//! the return code is one the function may return, and what each page of
//! the fuzzed window translates to against what the call may have done to
//! it (`model.rs`).
//!
//! One case is an operation sequence on a fresh pair of tables, fully
//! determined by its seed. Cases run until the time budget is spent:
//! `PGWALK_FUZZ_SECS` (default 5; `scripts/test` gives 45 in release),
//! from `PGWALK_FUZZ_SEED` (default fixed). A failure names the case's
//! seed; `PGWALK_FUZZ_SEED=<it> PGWALK_FUZZ_CASES=1` replays it alone.

mod model;
mod pool;
mod regressions;

use core::ffi::{c_int, c_void};
use core::ptr;
use std::time::{Duration, Instant};

use crate::abi::*;
use crate::compat::*;
use crate::errno::*;
use crate::host::{with_view, Needs, TablePtr};
use crate::hyp::*;
use model::{Op, Snapshot};
use pool::Pool;

/// 40-bit IPA, 4 KiB granule, start level 1 (a two-page root), PS 40 bits.
const VTCR: u64 = 0x8002_3558;
/// The fuzzed IPA (and hyp VA) window: 4 MiB from 1 GiB, two 2 MiB blocks.
const WBASE: u64 = 0x4000_0000;
const WSIZE: u64 = 4 << 20;
const WPAGES: usize = (WSIZE / 0x1000) as usize;
/// Guest memory the maps point at.
const RAM: u64 = 0x8_0000_0000;
/// VA size of the hyp table.
const HYP_VA_BITS: u32 = 39;
/// Operations per case.
const OPS: usize = 120;

unsafe extern "C" fn tlb_ipa(_: *mut kvm_s2_mmu, _: u64, _: c_int) {}
unsafe extern "C" fn tlb_range(_: *mut kvm_s2_mmu, _: u64, _: u64) {}
unsafe extern "C" fn tlb_vmid(_: *mut kvm_s2_mmu) {}
unsafe extern "C" fn hyp_flush(_: *mut c_void, _: u64, _: i8) {}
unsafe extern "C" fn hyp_publish(_: *mut c_void) {}

/// A seeded generator (splitmix64).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(super) fn chance(&mut self, per_cent: u64) -> bool {
        self.below(100) < per_cent
    }
}

/// A stage-2 table and a hyp table, initialised through the C ABI.
pub(super) struct Tables {
    pub(super) s2: Box<kvm_pgtable>,
    /// Read by the library through `s2.mmu` (TLB callbacks), never here.
    _mmu: Box<kvm_s2_mmu>,
    pub(super) hyp: Box<kvm_pgtable>,
}

fn empty_pgt() -> Box<kvm_pgtable> {
    Box::new(kvm_pgtable {
        ia_bits: 0,
        start_level: 0,
        pgd: ptr::null_mut(),
        mm_ops: ptr::null_mut(),
        mmu: ptr::null_mut(),
        flags: 0,
        force_pte_cb: None,
    })
}

impl Tables {
    /// Both tables, or `None` when the pool failed the roots' allocation.
    pub(super) fn new() -> Option<Tables> {
        let mut mmu = Box::new(kvm_s2_mmu {
            vtcr: VTCR,
            pgd_phys: 0,
            pgt: ptr::null_mut(),
            tlb_flush_vmid_ipa: Some(tlb_ipa),
            tlb_flush_vmid_range: Some(tlb_range),
            tlb_flush_vmid: Some(tlb_vmid),
            tlb_flush_vmid_ipa_nsh: None,
        });
        let mut s2 = empty_pgt();
        // SAFETY: the boxes outlive the tables (destroyed in `drop`); the
        // pool's `mm_ops` is a static.
        let r = unsafe { kvm_pgtable_stage2_init(&mut *s2, &mut *mmu, pool::mm_ops()) };
        if r == -PGW_ENOMEM {
            return None;
        }
        assert_eq!(r, 0, "kvm_pgtable_stage2_init");
        let ops = pgw_hyp_tlb_ops {
            flush_va: Some(hyp_flush),
            flush_va_walks: Some(hyp_flush),
            publish: Some(hyp_publish),
            arg: ptr::null_mut(),
        };
        // SAFETY: the callbacks do nothing, from any thread.
        assert_eq!(unsafe { pgw_hyp_set_tlb_ops(&ops) }, 0);
        let mut hyp = empty_pgt();
        // SAFETY: as for the stage-2 table.
        let r = unsafe { kvm_pgtable_hyp_init(&mut *hyp, HYP_VA_BITS, pool::mm_ops()) };
        let t = Tables { s2, _mmu: mmu, hyp };
        if r == -PGW_ENOMEM {
            return None;
        }
        assert_eq!(r, 0, "kvm_pgtable_hyp_init");
        Some(t)
    }

    pub(super) fn s2(&mut self) -> *mut kvm_pgtable {
        &mut *self.s2
    }

    pub(super) fn hyp(&mut self) -> *mut kvm_pgtable {
        &mut *self.hyp
    }

    /// The core's check of the stage-2 table: what it holds, empty tables
    /// (which the kernel's map may leave) included.
    pub(super) fn check(&mut self) -> Result<pgwalk::check::TableReport, String> {
        // SAFETY: an initialised table, used by no other call.
        let pgt = unsafe { TablePtr::new(self.s2()) };
        // The check reads page counts, as unmap does.
        let report = with_view(pgt, Needs::Unmap, |v| {
            Ok(v.table.exclusive().check_with(|pa| Pool::holds(pa.get())))
        })
        .map_err(|e| format!("no view of the table: {e}"))?
        .map_err(|e| format!("invariant broken: {e}"))?;
        Ok(report)
    }

    /// Table pages of the hyp table below its root, by walking it.
    pub(super) fn hyp_table_pages(&self) -> usize {
        model::hyp_table_pages(&self.hyp)
    }
}

impl Drop for Tables {
    fn drop(&mut self) {
        // SAFETY: tables initialised above; no call runs on them.
        unsafe {
            if !self.s2.pgd.is_null() {
                kvm_pgtable_stage2_destroy(&mut *self.s2);
            }
            if !self.hyp.pgd.is_null() {
                kvm_pgtable_hyp_destroy(&mut *self.hyp);
            }
        }
    }
}

/// After every call: the invariants, the pool, and no page leaked.
fn check_after(pool: &Pool, t: &mut Tables) -> Result<(), String> {
    if let Some(b) = pool.breach() {
        return Err(format!("pool: {b}"));
    }
    let s2_pages = t.check()?.table_pages;
    let hyp_pages = t.hyp_table_pages();
    // Roots: two concatenated stage-2 pages and one hyp page.
    let reachable = 3 + s2_pages + hyp_pages;
    let live = pool.live();
    if live != reachable {
        return Err(format!(
            "{live} live pages, the tables reach {reachable} (stage 2: {s2_pages} below the root, hyp: {hyp_pages})"
        ));
    }
    Ok(())
}

/// One case: `OPS` random calls from `seed`. Returns the calls made.
pub(super) fn run_case(seed: u64) -> (usize, u64) {
    let pool = Pool::lock();
    let mut rng = Rng::new(seed);
    let rate = [0, 0, 20, 100, 400][rng.below(5) as usize];
    pool.fail(rate, rng.next());
    let Some(mut t) = Tables::new() else {
        return (1, pool.allocs().1);
    };
    let mut calls = 0;
    for i in 0..OPS {
        let op = Op::random(&mut rng);
        let before = Snapshot::take(&mut t);
        let got = op.call(&mut t);
        let after = Snapshot::take(&mut t);
        calls += 1;
        let verdict = check_after(&pool, &mut t).and_then(|()| op.judge(got, &before, &after));
        if let Err(e) = verdict {
            panic!(
                "fuzz case {seed:#x}, call {i}: {op:?} returned {got:?}: {e}\n\
                 replay: PGWALK_FUZZ_SEED={seed:#x} PGWALK_FUZZ_CASES=1"
            );
        }
    }
    drop(t);
    if let Some(b) = pool.breach() {
        panic!("fuzz case {seed:#x}, destroying the tables: {b}");
    }
    assert_eq!(
        pool.live(),
        0,
        "fuzz case {seed:#x}: pages leaked after destroy"
    );
    (calls, pool.allocs().1)
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v}: not a number")))
}

#[test]
fn c_abi() {
    let seed = env_u64("PGWALK_FUZZ_SEED").unwrap_or(0x5eed_cab1);
    let budget = Duration::from_secs(env_u64("PGWALK_FUZZ_SECS").unwrap_or(5));
    let max_cases = env_u64("PGWALK_FUZZ_CASES").unwrap_or(u64::MAX);
    let start = Instant::now();
    let (mut cases, mut calls, mut failed) = (0u64, 0usize, 0u64);
    let mut case_rng = Rng::new(seed);
    while cases < max_cases && start.elapsed() < budget {
        // The first case is the seed itself, so that a failing case's seed
        // replays it.
        let case = if cases == 0 { seed } else { case_rng.next() };
        let (c, f) = run_case(case);
        calls += c;
        failed += f;
        cases += 1;
    }
    println!(
        "fuzz: seed {seed:#x}: {cases} cases, {calls} calls ({failed} allocations failed on purpose) in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(cases > 0);
}

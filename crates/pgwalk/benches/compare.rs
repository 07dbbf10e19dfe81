//! pgwalk side by side with aarch64-paging on the same work, in one run.
//!
//! A plain binary (`harness = false`) rather than criterion: the point is one
//! table with both libraries and their ratio, measured interleaved so that
//! noise from other processes on the machine hits both sides alike. Each
//! operation runs `reps` times per library, alternating, and the median
//! ns/page of each side is reported.
//!
//! The work (1 GiB of 4 KiB pages at IPA/VA 0x4000_0000; a 39-bit input
//! space whose root is at level 1, so the minimum is one root page, one
//! level-2 table and 512 level-3 tables):
//!
//! | row | pgwalk | aarch64-paging |
//! |---|---|---|
//! | map | `Handle<Exclusive>::map` of 1 GiB, PA offset by 4 KiB so no block fits | `IdMap::map_range_with_constraints(NO_BLOCK_MAPPINGS)` on an inactive table |
//! | walk | `walk(LEAF)` counting valid leaves | `walk_range` counting valid level-3 entries |
//! | wrprotect, bulk | `Handle<Exclusive>::wrprotect` (plain stores, as dirty logging holds the write lock) + `TlbFlush::flush` | `modify_range` clearing S2AP write, after `mark_active` |
//! | fault-in | 262,144 × `Handle<HandlesFault>::map` of one page | 262,144 × `map_range` of one page, after `mark_active` |
//! | wrprotect, per page | 262,144 × `wrprotect` + flush of one page | 262,144 × `modify_range` of one page, after `mark_active` |
//! | unmap | `Handle<Exclusive>::unmap_with` | `map_range` with invalid attributes, after `mark_active` |
//!
//! pgwalk runs with `MapOptions::skip_cmo`: aarch64-paging does no cache
//! maintenance at all. Both sides call their (here empty or counting) TLB
//! invalidation hooks.
//!
//! A third column runs pgwalk's side again with the 64 KiB granule over the
//! same number of pages: 16 GiB of 64 KiB pages (262,144 leaves, in 32 leaf
//! tables of 8192 entries under a one-page level-2 root of a 42-bit input
//! space), mapped 64 KiB past a 512 MiB boundary so that no block fits.
//! aarch64-paging has no 64 KiB stage 2 to compare with; the column is
//! there to show that a walk costs the same per entry whatever the granule.
//!
//! Options: `--quick` (7 repetitions instead of 31), `--reps N`,
//! `--c-walk NS` and `--c-typed-walk NS` (the C API's walk figures, measured
//! by `ffi-tests/bench.sh` over the same 1 GiB, folded into the table by
//! `scripts/bench`), `--only ROW` (one row, for profiling: the timed work
//! of each column is its own function, `pg_*`, `pg64_*` and `ap_*`, for
//! `valgrind --tool=callgrind --toggle-collect='*pg64_walk*'`).

mod common;

use std::hint::black_box;
use std::time::Instant;

use aarch64_paging::descriptor::Stage2Attributes;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{Constraints, MemoryRegion, Stage2 as PagingStage2};
use common::median;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::HeapMemory;
use pgwalk::visit::{Action, WalkFlags, Walked};
use pgwalk::{Ipa, MapOptions, PhysAddr, Prot, Stage2, UnmapOptions};

/// Where the 1 GiB starts: 1 GiB-aligned, so one level-2 table covers it.
const BASE: u64 = 0x4000_0000;
const SIZE: u64 = 1 << 30;
const PAGE: u64 = 4096;
const PAGES: u64 = SIZE / PAGE;
/// pgwalk maps IPA `BASE` to this: 4 KiB past a 2 MiB boundary, so no block
/// fits anywhere and every leaf is a page, as with NO_BLOCK_MAPPINGS.
const PHYS: u64 = 0x8_0000_1000;
/// Root at level 1 (39-bit input): the same shape on both sides.
const IA_BITS: u8 = 39;
/// 1 root + 1 level-2 table + 512 level-3 tables.
const MIN_TABLE_PAGES: usize = 1 + 1 + 512;

/// The work of one pgwalk column: `PAGES` pages of its granule from
/// `BASE`, mapped to `phys`.
struct Col {
    granule: Granule,
    ia_bits: u8,
    page: u64,
    phys: u64,
}

impl Col {
    const fn size(&self) -> u64 {
        PAGES * self.page
    }
}

/// 4 KiB: the comparison with aarch64-paging.
const COL_4K: Col = Col {
    granule: Granule::Size4KiB,
    ia_bits: IA_BITS,
    page: PAGE,
    phys: PHYS,
};

/// 64 KiB: 16 GiB, 64 KiB past a 512 MiB boundary.
const COL_64K: Col = Col {
    granule: Granule::Size64KiB,
    ia_bits: 42,
    page: 64 << 10,
    phys: 0x8_0001_0000,
};

fn geometry(c: &Col) -> Geometry {
    Geometry::for_ia_bits_in(c.granule, c.ia_bits, 44).expect("the benchmark's geometry")
}

/// One table pool for the whole run: pages freed by one repetition are
/// reused by the next, so steady state is measured rather than the OS
/// faulting in fresh heap pages (aarch64-paging's allocator reuses freed
/// pages the same way).
fn pool(granule: Granule) -> HeapMemory {
    let mm = HeapMemory::with_format(granule, 4096);
    // No statistics: a TLB invalidation or cache clean then costs a call,
    // as a host's own instruction would, not a shared atomic increment.
    mm.set_counting(false);
    mm
}

/// The pools of both columns.
struct Pools {
    k4: HeapMemory,
    k64: HeapMemory,
}

fn pg_table(mm: &HeapMemory, c: &Col) -> Stage2<HeapMemory> {
    Stage2::with_geometry(geometry(c), mm.clone()).expect("root")
}

fn pg_mapped(mm: &HeapMemory, c: &Col) -> Stage2<HeapMemory> {
    let mut t = pg_table(mm, c);
    t.exclusive()
        .map_with(
            Ipa(BASE),
            c.size(),
            PhysAddr(c.phys),
            Prot::RW,
            &mut (),
            MapOptions::new().skip_cmo(),
        )
        .expect("map");
    t
}

type Ap = IdMap<PagingStage2>;

fn ap_attrs() -> Stage2Attributes {
    Stage2Attributes::VALID
        | Stage2Attributes::MEMATTR_NORMAL_INNER_WB
        | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
        | Stage2Attributes::S2AP_ACCESS_RW
        | Stage2Attributes::SH_INNER
        | Stage2Attributes::ACCESS_FLAG
}

fn region(start: u64, size: u64) -> MemoryRegion {
    MemoryRegion::new(start as usize, (start + size) as usize)
}

fn ap_table() -> Ap {
    IdMap::new(1, PagingStage2)
}

fn ap_mapped() -> Ap {
    let mut t = ap_table();
    t.map_range_with_constraints(
        &region(BASE, SIZE),
        ap_attrs(),
        Constraints::NO_BLOCK_MAPPINGS,
    )
    .expect("map");
    t
}

/// Drops an active aarch64-paging table (it refuses to drop while active).
fn ap_drop(mut t: Ap) {
    t.mark_inactive();
    drop(t);
}

/// Runs `f` once and returns its duration in ns per page of the 1 GiB.
fn per_page(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / PAGES as f64
}

// The timed work of each row, one function per column, kept out of line
// so that a profiler (`valgrind --tool=callgrind --toggle-collect=...`)
// can count exactly one side: `pg_*` (4 KiB), `pg64_*` (64 KiB), `ap_*`.

#[inline(always)]
fn pg_map_in(t: &mut Stage2<HeapMemory>, c: &Col) {
    t.exclusive()
        .map_with(
            Ipa(BASE),
            c.size(),
            PhysAddr(c.phys),
            Prot::RW,
            &mut (),
            MapOptions::new().skip_cmo(),
        )
        .expect("map");
}

#[inline(never)]
fn pg_map(t: &mut Stage2<HeapMemory>) {
    pg_map_in(t, &COL_4K)
}

#[inline(never)]
fn pg64_map(t: &mut Stage2<HeapMemory>) {
    pg_map_in(t, &COL_64K)
}

#[inline(never)]
fn ap_map(a: &mut Ap) {
    a.map_range_with_constraints(
        &region(BASE, SIZE),
        ap_attrs(),
        Constraints::NO_BLOCK_MAPPINGS,
    )
    .expect("map");
}

#[inline(always)]
fn pg_walk_in(t: &mut Stage2<HeapMemory>, c: &Col) -> u64 {
    let mut seen = 0u64;
    let Walked::Completed = t
        .exclusive()
        .walk(Ipa(BASE), c.size(), WalkFlags::LEAF, |ctx| {
            seen += ctx.old().is_valid() as u64;
            Ok(Action::Continue)
        })
        .expect("walk");
    seen
}

#[inline(never)]
fn pg_walk(t: &mut Stage2<HeapMemory>) -> u64 {
    pg_walk_in(t, &COL_4K)
}

#[inline(never)]
fn pg64_walk(t: &mut Stage2<HeapMemory>) -> u64 {
    pg_walk_in(t, &COL_64K)
}

#[inline(never)]
fn ap_walk(a: &Ap) -> u64 {
    let mut seen = 0u64;
    a.walk_range(&region(BASE, SIZE), &mut |_, d, level| {
        seen += (level == 3 && d.is_valid()) as u64;
        Ok(())
    })
    .expect("walk");
    seen
}

#[inline(always)]
fn pg_wrprotect_bulk_in(t: &mut Stage2<HeapMemory>, c: &Col) {
    t.exclusive()
        .wrprotect(Ipa(BASE), c.size())
        .expect("wrprotect")
        .flush();
}

#[inline(never)]
fn pg_wrprotect_bulk(t: &mut Stage2<HeapMemory>) {
    pg_wrprotect_bulk_in(t, &COL_4K)
}

#[inline(never)]
fn pg64_wrprotect_bulk(t: &mut Stage2<HeapMemory>) {
    pg_wrprotect_bulk_in(t, &COL_64K)
}

#[inline(never)]
fn ap_wrprotect_bulk(a: &mut Ap) {
    a.modify_range(&region(BASE, SIZE), &|_, d| {
        if d.level() == 3 {
            d.modify_flags(Stage2Attributes::empty(), Stage2Attributes::S2AP_ACCESS_WO)
        } else {
            Ok(())
        }
    })
    .expect("modify");
}

#[inline(always)]
fn pg_fault_in_in(t: &Stage2<HeapMemory>, c: &Col) {
    let fh = t.fault_handler();
    for i in 0..PAGES {
        let outcome = fh
            .map_with(
                Ipa(BASE + i * c.page),
                c.page,
                PhysAddr(c.phys + i * c.page),
                Prot::RW,
                &mut (),
                MapOptions::new().skip_cmo(),
            )
            .expect("fault-in");
        debug_assert_eq!(outcome, TableOutcome::Fixed);
        let _ = black_box(outcome);
    }
}

#[inline(never)]
fn pg_fault_in(t: &Stage2<HeapMemory>) {
    pg_fault_in_in(t, &COL_4K)
}

#[inline(never)]
fn pg64_fault_in(t: &Stage2<HeapMemory>) {
    pg_fault_in_in(t, &COL_64K)
}

#[inline(never)]
fn ap_fault_in(a: &mut Ap) {
    for i in 0..PAGES {
        a.map_range(&region(BASE + i * PAGE, PAGE), ap_attrs())
            .expect("map");
    }
}

#[inline(always)]
fn pg_wrprotect_page_in(t: &Stage2<HeapMemory>, c: &Col) {
    let shared = t.shared();
    for i in 0..PAGES {
        shared
            .wrprotect(Ipa(BASE + i * c.page), c.page)
            .expect("wrprotect")
            .flush();
    }
}

#[inline(never)]
fn pg_wrprotect_page(t: &Stage2<HeapMemory>) {
    pg_wrprotect_page_in(t, &COL_4K)
}

#[inline(never)]
fn pg64_wrprotect_page(t: &Stage2<HeapMemory>) {
    pg_wrprotect_page_in(t, &COL_64K)
}

#[inline(never)]
fn ap_wrprotect_page(a: &mut Ap) {
    for i in 0..PAGES {
        a.modify_range(&region(BASE + i * PAGE, PAGE), &|_, d| {
            d.modify_flags(Stage2Attributes::empty(), Stage2Attributes::S2AP_ACCESS_WO)
        })
        .expect("modify");
    }
}

#[inline(always)]
fn pg_unmap_in(t: &mut Stage2<HeapMemory>, c: &Col) {
    t.exclusive()
        .unmap_with(Ipa(BASE), c.size(), UnmapOptions::new().skip_cmo())
        .expect("unmap");
}

#[inline(never)]
fn pg_unmap(t: &mut Stage2<HeapMemory>) {
    pg_unmap_in(t, &COL_4K)
}

#[inline(never)]
fn pg64_unmap(t: &mut Stage2<HeapMemory>) {
    pg_unmap_in(t, &COL_64K)
}

#[inline(never)]
fn ap_unmap(a: &mut Ap) {
    a.map_range(&region(BASE, SIZE), Stage2Attributes::empty())
        .expect("unmap");
}

/// One repetition of a row, in ns/page: pgwalk with 4 KiB pages,
/// aarch64-paging, pgwalk with 64 KiB pages.
type Rep = fn(&Pools) -> [f64; 3];

fn rep_map(p: &Pools) -> [f64; 3] {
    let mut t = pg_table(&p.k4, &COL_4K);
    let pg = per_page(|| pg_map(&mut t));
    drop(t);
    let mut a = ap_table();
    let ap = per_page(|| ap_map(&mut a));
    drop(a);
    let mut t = pg_table(&p.k64, &COL_64K);
    let pg64 = per_page(|| pg64_map(&mut t));
    drop(t);
    [pg, ap, pg64]
}

fn rep_walk(p: &Pools) -> [f64; 3] {
    let mut t = pg_mapped(&p.k4, &COL_4K);
    let mut seen = 0;
    let pg = per_page(|| seen = pg_walk(&mut t));
    assert_eq!(seen, PAGES);
    drop(t);
    let a = ap_mapped();
    let ap = per_page(|| seen = ap_walk(&a));
    assert_eq!(seen, PAGES);
    drop(a);
    let mut t = pg_mapped(&p.k64, &COL_64K);
    let pg64 = per_page(|| seen = pg64_walk(&mut t));
    assert_eq!(seen, PAGES);
    drop(t);
    [pg, ap, pg64]
}

fn rep_wrprotect_bulk(p: &Pools) -> [f64; 3] {
    let mut t = pg_mapped(&p.k4, &COL_4K);
    let pg = per_page(|| pg_wrprotect_bulk(&mut t));
    drop(t);
    let mut a = ap_mapped();
    a.mark_active();
    let ap = per_page(|| ap_wrprotect_bulk(&mut a));
    ap_drop(a);
    let mut t = pg_mapped(&p.k64, &COL_64K);
    let pg64 = per_page(|| pg64_wrprotect_bulk(&mut t));
    drop(t);
    [pg, ap, pg64]
}

/// pgwalk's fault-in, both granules, around aarch64-paging's (`active`:
/// on a table marked active, as a live fault path has).
fn fault_in_rep(p: &Pools, active: bool) -> [f64; 3] {
    let t = pg_table(&p.k4, &COL_4K);
    let pg = per_page(|| pg_fault_in(&t));
    drop(t);
    let mut a = ap_table();
    if active {
        a.mark_active();
    }
    let ap = per_page(|| ap_fault_in(&mut a));
    if active {
        ap_drop(a);
    } else {
        drop(a);
    }
    let t = pg_table(&p.k64, &COL_64K);
    let pg64 = per_page(|| pg64_fault_in(&t));
    drop(t);
    [pg, ap, pg64]
}

fn rep_fault_in(p: &Pools) -> [f64; 3] {
    fault_in_rep(p, true)
}

/// The same pgwalk fault-in against aarch64-paging mapping single pages
/// into a table *not* marked active: no break-before-make checks and no
/// TLB walk on its side, which no live fault path could skip.
fn rep_fault_in_inactive(p: &Pools) -> [f64; 3] {
    fault_in_rep(p, false)
}

fn rep_wrprotect_page(p: &Pools) -> [f64; 3] {
    let t = pg_mapped(&p.k4, &COL_4K);
    let pg = per_page(|| pg_wrprotect_page(&t));
    drop(t);
    let mut a = ap_mapped();
    a.mark_active();
    let ap = per_page(|| ap_wrprotect_page(&mut a));
    ap_drop(a);
    let t = pg_mapped(&p.k64, &COL_64K);
    let pg64 = per_page(|| pg64_wrprotect_page(&t));
    drop(t);
    [pg, ap, pg64]
}

fn rep_unmap(p: &Pools) -> [f64; 3] {
    let mut t = pg_mapped(&p.k4, &COL_4K);
    let pg = per_page(|| pg_unmap(&mut t));
    assert_eq!(
        p.k4.live_pages(),
        1,
        "unmap freed every table below the root"
    );
    drop(t);
    let mut a = ap_mapped();
    a.mark_active();
    let ap = per_page(|| ap_unmap(&mut a));
    ap_drop(a);
    let mut t = pg_mapped(&p.k64, &COL_64K);
    let pg64 = per_page(|| pg64_unmap(&mut t));
    assert_eq!(
        p.k64.live_pages(),
        1,
        "unmap freed every table below the root"
    );
    drop(t);
    [pg, ap, pg64]
}

const ROWS: [(&str, &str, Rep); 7] = [
    ("map", "map 1 GiB of 4 KiB pages", rep_map),
    ("walk", "walk (read-only, every leaf)", rep_walk),
    (
        "wrprotect",
        "attribute change, bulk (live)",
        rep_wrprotect_bulk,
    ),
    ("fault", "fault-in, one page per call (live)", rep_fault_in),
    (
        "fault-inactive",
        "  fault-in, aarch64-paging not active",
        rep_fault_in_inactive,
    ),
    (
        "page-attr",
        "attribute change, per page (live)",
        rep_wrprotect_page,
    ),
    ("unmap", "unmap 1 GiB (live)", rep_unmap),
];

struct Options {
    reps: usize,
    c_walk: Option<f64>,
    c_typed_walk: Option<f64>,
    only: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        reps: 31,
        c_walk: None,
        c_typed_walk: None,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.reps = 7,
            "--reps" => o.reps = args.next().and_then(|n| n.parse().ok()).expect("--reps N"),
            "--c-walk" => o.c_walk = args.next().and_then(|n| n.parse().ok()),
            "--c-typed-walk" => o.c_typed_walk = args.next().and_then(|n| n.parse().ok()),
            "--only" => o.only = args.next(),
            // `cargo bench` passes `--bench`; anything else is for other
            // harnesses and is ignored.
            _ => {}
        }
    }
    o
}

/// Keeps freed heap memory in the process. Without this, glibc returns the
/// top of the heap to the OS when aarch64-paging frees its 514 tables, and
/// the next repetition pays a kernel page fault and page clear per table:
/// that is the allocator's cost, not the page-table library's, and pgwalk's
/// pool (allocated once, pages reused) never pays it.
fn keep_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        // SAFETY: glibc's `mallopt` takes two ints and only changes malloc
        // tuning; it is called before any other thread exists.
        let ok = unsafe { mallopt(M_TRIM_THRESHOLD, i32::MAX) };
        assert_eq!(ok, 1, "mallopt(M_TRIM_THRESHOLD) failed");
    }
}

fn main() {
    let o = options();
    keep_heap();
    let pools = Pools {
        k4: pool(Granule::Size4KiB),
        k64: pool(Granule::Size64KiB),
    };

    // Memory: table pages for the 1 GiB of 4 KiB pages (and the 16 GiB of
    // 64 KiB pages).
    let t = pg_mapped(&pools.k4, &COL_4K);
    let pg_pages = pools.k4.live_pages();
    drop(t);
    let t = pg_mapped(&pools.k64, &COL_64K);
    let pg64_pages = pools.k64.live_pages();
    drop(t);

    println!(
        "pgwalk vs aarch64-paging 0.12: 1 GiB of 4 KiB pages ({PAGES} pages), median of {} runs",
        o.reps
    );
    println!();
    println!(
        "| {:<36} | {:>16} | {:>24} | {:>8} | {:>23} |",
        "operation", "pgwalk ns/page", "aarch64-paging ns/page", "ratio", "pgwalk 64 KiB ns/page"
    );
    println!(
        "|{:-<38}|{:->18}|{:->26}|{:->10}|{:->25}|",
        "", "", "", "", ""
    );
    let mut walk_ns = None;
    for (key, name, rep) in ROWS {
        if o.only.as_deref().is_some_and(|only| only != key) {
            continue;
        }
        // One untimed round to warm caches and the allocators.
        rep(&pools);
        let mut runs: [Vec<f64>; 3] = Default::default();
        for _ in 0..o.reps {
            for (col, ns) in runs.iter_mut().zip(rep(&pools)) {
                col.push(ns);
            }
        }
        let [pg, ap, pg64] = runs.map(median);
        if key == "walk" {
            walk_ns = Some(pg);
        }
        println!(
            "| {:<36} | {:>16.2} | {:>24.2} | {:>7.1}× | {:>23.2} |",
            name,
            pg,
            ap,
            ap / pg,
            pg64
        );
    }
    for (name, ns) in [
        ("C callback walk (kvm_pgtable_walk)", o.c_walk),
        ("C typed walk (pgw_*)", o.c_typed_walk),
    ] {
        let Some(ns) = ns else { continue };
        let ratio = walk_ns.map_or("—".to_string(), |w| format!("{:.1}×", ns / w));
        println!(
            "| {:<36} | {:>16.2} | {:>24} | {:>8} | {:>23} |",
            name, ns, "—", ratio, "—"
        );
    }
    println!();
    println!("ratio: aarch64-paging time / pgwalk time (higher is better for pgwalk);");
    println!("pgwalk 64 KiB: the same 262,144 pages, of 64 KiB (16 GiB), with the 64 KiB granule;");
    if o.c_walk.is_some() || o.c_typed_walk.is_some() {
        println!("C rows (ffi-tests/bench.sh, same table shape): ratio = C walk time / pgwalk's typed walk time above (lower is better).");
    }
    println!();
    println!(
        "table pages for 1 GiB of 4 KiB pages: pgwalk {pg_pages}, minimum {MIN_TABLE_PAGES} (512 leaf tables + 1 level-2 table + 1 root)"
    );
    println!(
        "table pages for 16 GiB of 64 KiB pages: pgwalk {pg64_pages}, minimum {} (32 leaf tables + 1 root)",
        1 + 32
    );
}

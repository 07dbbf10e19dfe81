//! Real threads racing on one table under its read lock: fault-ins (pages
//! and blocks that replace page tables), wrprotect, test_clear_young,
//! relax_perms, mkyoung and leaf-table scans (`take_leaf_table`, checking
//! every entry it reads), with allocations failing now and then, for
//! every table format (4, 16 and 64 KiB; LPA2 with 4 and 16 KiB, output
//! addresses above 48 bits where the format has them). Bounded: a fixed
//! number of operations per vCPU, fewer in debug builds, so it finishes in
//! seconds on a two-core CI machine.
//!
//! What must hold afterwards:
//! - every page a vCPU faulted in is mapped, to the right physical page;
//! - with the permissions applied last: in region A each page's permission
//!   changes come from one vCPU (its owner) in program order, while every
//!   other thread races on the same entries and table pages, so the owner's
//!   model is exact; region B ends with a concurrent final phase
//!   (wrprotect everything, add execute to every eighth page) whose result
//!   is fixed;
//! - reference counts are 1 + non-zero entries in every table page, no
//!   entry is left locked (`check_invariants`), no child table is empty
//!   (its `empty_tables`);
//! - after the grace periods, the host holds exactly the reachable table
//!   pages, frees every page when the table is dropped, and saw no double
//!   free.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pgwalk::descriptor::Exec;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Granule, TableFormat};
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::visit::{Action, VisitKind, WalkFlags};
use pgwalk::{Error, Ipa, PhysAddr, Prot, SpinStage2, Stage2};

/// Region A: pages whose permissions each belong to one vCPU.
const A_IPA: u64 = 0x4000_0000;
const A_PA: u64 = 0x1_0000_0000;
const A_PAGES: u64 = 1024;
/// Region B: block-sized chunks faulted in by pages, collapsed into blocks
/// by block faults (the page tables they replace are freed after a grace
/// period), split again by page faults into the blocks.
const B_IPA: u64 = 0x100_0000_0000;
const B_PA: u64 = 0x200_0000_0000;
const B_CHUNKS: u64 = 4;

/// One table format's sizes and addresses.
#[derive(Clone, Copy, Debug)]
struct Shape {
    format: TableFormat,
    /// A page, and a level-2 block.
    page: u64,
    block: u64,
    /// Pages per block.
    per_block: u64,
    /// Added to every output address: above 48 bits for the formats that
    /// reach 52.
    pa_top: u64,
}

impl Shape {
    fn new(format: TableFormat) -> Shape {
        let page = format.granule().size();
        let per_block = 1 << format.granule().bits_per_level();
        let pa_top = if format.max_oa_bits() == 52 {
            0xc_0000_0000_0000
        } else {
            0
        };
        Shape {
            format,
            page,
            block: page * per_block,
            per_block,
            pa_top,
        }
    }

    fn b_pages(&self) -> u64 {
        B_CHUNKS * self.per_block
    }

    fn a_pa(&self, p: u64) -> u64 {
        self.pa_top + A_PA + p * self.page
    }

    fn b_pa(&self, p: u64) -> u64 {
        self.pa_top + B_PA + p * self.page
    }

    /// A table with a 44-bit input space (several root pages, or a
    /// partial root page), the host's pool of the format's pages.
    fn table(&self, pages: usize) -> (HeapMemory, Table) {
        let mm = HeapMemory::with_format(self.format, pages);
        let oa_bits = self.format.max_oa_bits();
        let geometry = Geometry::for_ia_bits_in(self.format, 44, oa_bits).unwrap();
        let table = SpinStage2::new(Stage2::with_geometry(geometry, mm.clone()).unwrap());
        (mm, table)
    }
}

fn shapes() -> [Shape; 5] {
    let lpa2 = |g| TableFormat::new(g, true).unwrap();
    [
        Shape::new(TableFormat::FOUR_KIB),
        Shape::new(Granule::Size16KiB.into()),
        Shape::new(Granule::Size64KiB.into()),
        Shape::new(lpa2(Granule::Size4KiB)),
        Shape::new(lpa2(Granule::Size16KiB)),
    ]
}

const VCPUS: usize = 4;

fn ops_per_vcpu() -> usize {
    if cfg!(debug_assertions) {
        8_000
    } else {
        150_000
    }
}

/// A small deterministic generator, one per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a region-A page's owner knows it applied last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Perms {
    w: bool,
    x: bool,
}

type Table = SpinStage2<HeapMemory>;

#[derive(Default)]
struct Counters {
    fixed: AtomicU64,
    spurious: AtomicU64,
    retried: AtomicU64,
    no_memory: AtomicU64,
    blocks: AtomicU64,
}

/// A vCPU's fault: retried while another walker wins the race or memory
/// runs out, as a vCPU faults again after resuming or refilling its cache.
fn fault(table: &Table, ipa: u64, size: u64, pa: u64, c: &Counters) -> TableOutcome {
    loop {
        let guard = table.read();
        let r = guard
            .fault_handler()
            .map(Ipa(ipa), size, PhysAddr(pa), Prot::RW, &mut ());
        drop(guard);
        match r {
            Ok(TableOutcome::Retry) => {
                c.retried.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
            Ok(o @ (TableOutcome::Fixed | TableOutcome::Spurious)) => {
                let n = if o == TableOutcome::Fixed {
                    &c.fixed
                } else {
                    &c.spurious
                };
                n.fetch_add(1, Ordering::Relaxed);
                return o;
            }
            Err(Error::NoMemory) => {
                c.no_memory.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
            Err(e) => panic!("fault-in failed: {e}"),
        }
    }
}

/// A fault whose outcome does not matter beyond "now mapped": [`fault`]
/// returns only once the mapping is there, fixed by this call or another.
fn fault_in(table: &Table, ipa: u64, size: u64, pa: u64, c: &Counters) {
    let outcome = fault(table, ipa, size, pa, c);
    assert!(matches!(
        outcome,
        TableOutcome::Fixed | TableOutcome::Spurious
    ));
}

/// One vCPU: owner of the region-A pages `p % VCPUS == me`, and one of
/// several faulting region B in.
fn vcpu(
    s: &Shape,
    me: usize,
    table: &Table,
    owned: &mut [Option<Perms>],
    faulted_b: &[AtomicBool],
    c: &Counters,
) {
    let (page, block, per_block) = (s.page, s.block, s.per_block);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((me as u64 + 1) * 0x1234_5678_9abc_def1));
    for _ in 0..ops_per_vcpu() {
        let roll = rng.below(100);
        if roll < 55 {
            let slot = rng.below(owned.len() as u64) as usize;
            let p = (slot * VCPUS + me) as u64;
            owner_op(s, table, &mut rng, p, &mut owned[slot], c);
        } else if roll < 95 {
            let p = rng.below(s.b_pages());
            fault_in(table, B_IPA + p * page, page, s.b_pa(p), c);
            faulted_b[p as usize].store(true, Ordering::Relaxed);
        } else {
            // Fault a page into a chunk, then the whole chunk as a block:
            // the block replaces the page table, which goes to the host's
            // grace period.
            let chunk = rng.below(B_CHUNKS);
            let p = chunk * per_block + rng.below(per_block);
            fault_in(table, B_IPA + p * page, page, s.b_pa(p), c);
            let first = chunk * per_block;
            fault_in(table, B_IPA + chunk * block, block, s.b_pa(first), c);
            c.blocks.fetch_add(1, Ordering::Relaxed);
            for f in &faulted_b[first as usize..][..per_block as usize] {
                f.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// A permission-changing operation on an owned region-A page, and what the
/// owner learns from its outcome.
fn owner_op(
    s: &Shape,
    table: &Table,
    rng: &mut Rng,
    p: u64,
    model: &mut Option<Perms>,
    c: &Counters,
) {
    let ipa = Ipa(A_IPA + p * s.page);
    match rng.below(6) {
        0 | 1 => {
            // A fault installs RW (or finds the page there: spurious, and
            // then permissions stay as they were).
            if fault(table, ipa.get(), s.page, s.a_pa(p), c) == TableOutcome::Fixed {
                *model = Some(Perms { w: true, x: false });
            } else {
                assert!(model.is_some(), "spurious fault on a page never mapped");
            }
        }
        2 => {
            let guard = table.read();
            let h = guard.shared();
            h.wrprotect(ipa, s.page).unwrap().flush();
            if let Some(m) = model {
                m.w = false;
            }
        }
        3 => {
            // Relaxing from the fault path: no retry inside pgwalk.
            let (prot, w) = if rng.below(2) == 0 {
                (Prot::W, true)
            } else {
                (Prot::X, false)
            };
            let outcome = table.read().fault_handler().relax_perms(ipa, prot).unwrap();
            match (outcome, model.as_mut()) {
                (TableOutcome::Fixed, Some(m)) => {
                    m.w |= w;
                    m.x |= !w;
                }
                (TableOutcome::Spurious, Some(m)) => {
                    assert!(
                        if w { m.w } else { m.x },
                        "spurious relax of {prot:?} on {m:?}"
                    );
                }
                (TableOutcome::Retry, _) => {}
                (o, m) => panic!("relax_perms answered {} on a page modelled {m:?}", o.name()),
            }
        }
        4 => {
            // Relaxing as a shared walker: retried until it lands.
            table.read().shared().relax_perms(ipa, Prot::X).unwrap();
            if let Some(m) = model {
                m.x = true;
            }
        }
        _ => {
            let outcome = table.read().fault_handler().mkyoung(ipa).unwrap();
            if model.is_none() {
                assert_eq!(outcome, TableOutcome::Retry, "mkyoung on an unmapped page");
            }
        }
    }
}

/// Page aging over both regions until told to stop; also checks, on the
/// fly, that every valid leaf it reads maps the right physical page.
fn ager(s: &Shape, table: &Table, stop: &AtomicBool, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let page = s.page;
    let mut passes = 0;
    while !stop.load(Ordering::Relaxed) {
        let guard = table.read();
        let h = guard.shared();
        let (base, pages, pa) = if rng.below(2) == 0 {
            (A_IPA, A_PAGES, s.a_pa(0))
        } else {
            (B_IPA, s.b_pages(), s.b_pa(0))
        };
        let len = 1 + rng.below(64);
        let start = rng.below(pages - len);
        h.clear_young(Ipa(base + start * page), len * page).unwrap();
        let p = rng.below(pages);
        let (leaf, level) = h.get_leaf(Ipa(base + p * page)).unwrap();
        assert!(!leaf.is_locked(), "get_leaf returned the locked marker");
        if leaf.is_valid() {
            let size = h.geometry().entry_size(level);
            let expect = (pa + p * page) & !(size - 1);
            assert_eq!(leaf.output_address(s.format).get(), expect);
        }
        passes += 1;
    }
    passes
}

/// Leaf-table scans (`take_leaf_table`) over both regions until told to
/// stop: every valid entry of a table taken whole, and every valid leaf
/// above the last level, maps the right physical page for its address.
/// In region B the tables it takes are replaced by blocks meanwhile, and
/// freed after a grace period that its walk holds off.
fn scanner(s: &Shape, table: &Table, stop: &AtomicBool, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    // Leaf tables taken whole.
    let mut taken = 0;
    while !stop.load(Ordering::Relaxed) {
        let guard = table.read();
        let mut h = guard.shared();
        let (base, pages, pa) = if rng.below(2) == 0 {
            (A_IPA, A_PAGES, s.a_pa(0))
        } else {
            (B_IPA, s.b_pages(), s.b_pa(0))
        };
        let len = 1 + rng.below(pages / 2);
        let start = rng.below(pages - len);
        let expect = |addr: u64, size: u64| (pa + (addr - base)) & !(size - 1);
        let flags = WalkFlags::TABLE_PRE | WalkFlags::LEAF;
        let walked = h
            .walk(Ipa(base + start * s.page), len * s.page, flags, |ctx| {
                if let Some(t) = ctx.take_leaf_table() {
                    taken += 1;
                    for (i, d) in t.iter().enumerate() {
                        let addr = t.addr().get() + i as u64 * t.entry_size();
                        if d.is_valid() {
                            assert_eq!(d.output_address(s.format).get(), expect(addr, s.page));
                        }
                    }
                } else if ctx.kind() == VisitKind::Leaf && ctx.old().is_valid() {
                    let (addr, size) = (ctx.entry_addr().get(), ctx.entry_size());
                    assert_eq!(
                        ctx.old().output_address(s.format).get(),
                        expect(addr.max(base), size)
                    );
                }
                Ok(Action::Continue)
            })
            .unwrap();
        assert!(walked.is_completed());
    }
    taken
}

/// Dirty logging over region B until told to stop.
fn logger(s: &Shape, table: &Table, stop: &AtomicBool) -> u64 {
    let mut rng = Rng(0x5151_7777);
    let mut passes = 0;
    while !stop.load(Ordering::Relaxed) {
        let guard = table.read();
        let h = guard.shared();
        let len = 1 + rng.below(256);
        let start = rng.below(s.b_pages() - len);
        h.wrprotect(Ipa(B_IPA + start * s.page), len * s.page)
            .unwrap()
            .flush();
        passes += 1;
    }
    passes
}

/// Makes allocations fail now and then: caps live pages just above what is
/// in use for a moment, then lifts the cap.
fn oom_injector(mm: &HeapMemory, stop: &AtomicBool) -> u64 {
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        mm.set_page_limit(mm.live_pages());
        std::thread::sleep(Duration::from_micros(300));
        mm.set_page_limit(usize::MAX);
        std::thread::sleep(Duration::from_millis(2));
        rounds += 1;
    }
    mm.set_page_limit(usize::MAX);
    rounds
}

#[test]
fn racing_fault_ins_and_attribute_changes() {
    for s in shapes() {
        racing_fault_ins_and_attribute_changes_in(&s);
    }
}

fn racing_fault_ins_and_attribute_changes_in(s: &Shape) {
    let started = Instant::now();
    let (page, block) = (s.page, s.block);
    let (mm, table) = s.table(1 << 14);
    let counters = Counters::default();
    let faulted_b: Vec<AtomicBool> = (0..s.b_pages()).map(|_| AtomicBool::new(false)).collect();
    let per_owner = (A_PAGES as usize) / VCPUS;
    let mut models: Vec<Vec<Option<Perms>>> = vec![vec![None; per_owner]; VCPUS];
    let stop = AtomicBool::new(false);
    let vcpus_left = AtomicUsize::new(VCPUS);

    let (aged, logged, oom_rounds) = std::thread::scope(|scope| {
        for (me, owned) in models.iter_mut().enumerate() {
            let (table, faulted_b, c, stop, left) =
                (&table, &faulted_b, &counters, &stop, &vcpus_left);
            scope.spawn(move || {
                vcpu(s, me, table, owned, faulted_b, c);
                if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    stop.store(true, Ordering::Release);
                }
            });
        }
        let aged = scope.spawn(|| ager(s, &table, &stop, 0xa9e5));
        let logged = scope.spawn(|| logger(s, &table, &stop));
        let scanned = scope.spawn(|| scanner(s, &table, &stop, 0x5ca4));
        let oom = scope.spawn(|| oom_injector(&mm, &stop));
        assert!(
            scanned.join().unwrap() > 0,
            "the scanner took no leaf table"
        );
        (
            aged.join().unwrap(),
            logged.join().unwrap(),
            oom.join().unwrap(),
        )
    });
    let racing = started.elapsed();

    // Region A: every owned page as its owner last left it.
    {
        let guard = table.read();
        let h = guard.shared();
        for (me, owned) in models.iter().enumerate() {
            for (slot, m) in owned.iter().enumerate() {
                let p = (slot * VCPUS + me) as u64;
                let (leaf, level) = h.get_leaf(Ipa(A_IPA + p * page)).unwrap();
                let Some(m) = m else {
                    assert!(!leaf.is_valid(), "page {p} mapped but never faulted in");
                    continue;
                };
                assert!(leaf.is_valid(), "page {p} faulted in but not mapped");
                assert_eq!(level.get(), 3);
                assert_eq!(leaf.output_address(s.format).get(), s.a_pa(p));
                assert!(leaf.readable());
                assert_eq!(leaf.writable(), m.w, "page {p}: write permission lost");
                let exec = if m.x { Exec::Both } else { Exec::Never };
                assert_eq!(leaf.exec(), exec, "page {p}: execute permission lost");
            }
        }
    }
    assert!(mm.quiesce(), "deferred frees still pending");
    let report =
        check_invariants(&mut table.write()).unwrap_or_else(|e| panic!("after racing: {e}"));
    // pgwalk's own operations free every table they empty.
    assert_eq!(report.empty_tables, 0, "after racing");

    // Region B: split it under the write lock, then a final concurrent
    // phase whose outcome is fixed: every page write-protected, every
    // eighth page executable, with aging racing both.
    table
        .write()
        .exclusive()
        .split(Ipa(B_IPA), B_CHUNKS * block, &mut ())
        .unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let ager = scope.spawn(|| ager(s, &table, &stop, 0x77));
        let mut workers = Vec::new();
        for q in 0..VCPUS as u64 {
            let table = &table;
            workers.push(scope.spawn(move || {
                let quarter = s.b_pages() / VCPUS as u64;
                let guard = table.read();
                let h = guard.shared();
                for p in q * quarter..(q + 1) * quarter {
                    let ipa = Ipa(B_IPA + p * page);
                    if p % 8 == 0 {
                        h.relax_perms(ipa, Prot::X).unwrap();
                    }
                    if p % 2 == 0 {
                        h.wrprotect(ipa, page).unwrap().flush();
                    }
                }
                // And the odd pages in one range walk per quarter.
                h.wrprotect(Ipa(B_IPA + q * quarter * page), quarter * page)
                    .unwrap()
                    .flush();
            }));
        }
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Release);
        ager.join().unwrap();
    });
    {
        let guard = table.read();
        let h = guard.shared();
        for (p, faulted) in faulted_b.iter().enumerate() {
            let p = p as u64;
            let (leaf, level) = h.get_leaf(Ipa(B_IPA + p * page)).unwrap();
            if !faulted.load(Ordering::Relaxed) && !leaf.is_valid() {
                continue;
            }
            assert!(
                leaf.is_valid(),
                "page {p} of region B faulted in but not mapped"
            );
            assert_eq!(level.get(), 3, "region B was split");
            assert_eq!(leaf.output_address(s.format).get(), s.b_pa(p));
            assert!(leaf.readable() && !leaf.writable(), "page {p}: {leaf:?}");
            let exec = if p % 8 == 0 { Exec::Both } else { Exec::Never };
            assert_eq!(leaf.exec(), exec, "page {p}");
        }
    }

    assert!(mm.quiesce());
    let report = check_invariants(&mut table.write()).unwrap_or_else(|e| panic!("at the end: {e}"));
    assert_eq!(report.empty_tables, 0, "at the end");
    let stats = mm.stats();
    assert_eq!(stats.double_frees, 0);
    assert!(
        stats.deferred_frees > 0,
        "no block replaced a page table: {stats:?}"
    );
    let c = &counters;
    eprintln!(
        "stress ({}): {racing:?} racing, {:?} in all; faults fixed {} spurious {} retried {} \
         out-of-memory {}; block faults {}; aging passes {aged}, dirty-log passes {logged}, \
         allocation caps {oom_rounds}; {} deferred frees, {} allocation failures; {report:?}",
        s.format,
        started.elapsed(),
        c.fixed.load(Ordering::Relaxed),
        c.spurious.load(Ordering::Relaxed),
        c.retried.load(Ordering::Relaxed),
        c.no_memory.load(Ordering::Relaxed),
        c.blocks.load(Ordering::Relaxed),
        stats.deferred_frees,
        stats.alloc_failures,
    );

    drop(table);
    assert!(mm.quiesce());
    let stats = mm.stats();
    assert_eq!(mm.live_pages(), 0, "pages leaked: {stats:?}");
    assert_eq!(stats.pages_allocated, stats.pages_freed);
    assert_eq!(stats.double_frees, 0);
}

/// Waits until `n` threads have arrived at round `round` of `arrived`.
/// Gives up once a thread has failed (it will never arrive).
fn rendezvous(arrived: &AtomicUsize, failed: &AtomicBool, n: usize, round: usize) {
    arrived.fetch_add(1, Ordering::AcqRel);
    while arrived.load(Ordering::Acquire) < n * (round + 1) {
        assert!(!failed.load(Ordering::Relaxed), "another thread failed");
        std::thread::yield_now();
    }
}

/// Raises `failed` if the thread panics while this is alive.
struct FailFlag<'a>(&'a AtomicBool);

impl Drop for FailFlag<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn racing_installs_and_remaps_of_one_page() {
    for s in shapes() {
        racing_installs_and_remaps_of_one_page_in(&s);
    }
}

fn racing_installs_and_remaps_of_one_page_in(s: &Shape) {
    // Two vCPUs fault the first page of a fresh block-sized chunk to different
    // physical pages at the same moment: one installs it over the empty
    // entry, the other breaks that entry and makes its own. The new page
    // table holds that single entry, so its count must already include the
    // first install when the second breaks it (it used to fall to zero and
    // the page table was freed while linked). Meanwhile a reader looks the
    // page up and must never see the break in progress.
    let rounds = if cfg!(debug_assertions) { 300 } else { 3_000 };
    let (page, block) = (s.page, s.block);
    let (mm, table) = s.table(1 << 13);
    let arrived = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let remaps = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for who in 0..2u64 {
            let (table, arrived, failed, remaps) = (&table, &arrived, &failed, &remaps);
            scope.spawn(move || {
                let _flag = FailFlag(failed);
                for round in 0..rounds {
                    let ipa = A_IPA + round as u64 * block;
                    let pa = if who == 0 { s.a_pa(0) } else { s.b_pa(0) } + round as u64 * page;
                    rendezvous(arrived, failed, 3, round);
                    // The first fault races the other vCPU's install; the
                    // others remap the page it left, each a break-before-make.
                    let c = Counters::default();
                    for _ in 0..8 {
                        fault_in(table, ipa, page, pa, &c);
                    }
                    remaps.fetch_add(c.fixed.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            });
        }
        let (table, arrived, failed) = (&table, &arrived, &failed);
        scope.spawn(move || {
            let _flag = FailFlag(failed);
            for round in 0..rounds {
                let ipa = A_IPA + round as u64 * block;
                rendezvous(arrived, failed, 3, round);
                let mut seen_mapped = false;
                for _ in 0..256 {
                    let (leaf, _) = table.read().shared().get_leaf(Ipa(ipa)).unwrap();
                    assert!(!leaf.is_locked(), "get_leaf reported a break in progress");
                    assert!(
                        leaf.is_valid() || !seen_mapped,
                        "a mapped page looked unmapped during a remap"
                    );
                    seen_mapped |= leaf.is_valid();
                }
            }
        });
    });
    assert!(mm.quiesce());
    let report = check_invariants(&mut table.write()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.empty_tables, 0);
    assert_eq!(report.leaves[3], rounds);
    assert_eq!(mm.stats().double_frees, 0);
    assert!(remaps.load(Ordering::Relaxed) >= rounds as u64);
    drop(table);
    assert_eq!(mm.live_pages(), 0);
    assert_eq!(mm.stats().double_frees, 0);
}

//! A loom model of the real operations racing on one real table.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p pgwalk --test loom --release`.
//!
//! Built with `--cfg loom`, pgwalk's entries are loom's `AtomicU64` (see
//! `src/sync.rs`), so the walker, the entry protocol of `stage2/pte.rs` and
//! the operations themselves (`Handle::map` on the fault path, `wrprotect`,
//! `relax_perms`, `clear_young`, `get_leaf`) run here as they run in a
//! hypervisor, on a [`Stage2`] whose host ([`LoomHost`]) keeps its table
//! pages as arrays of loom atomics and its reference counts in loom
//! atomics. Loom explores every interleaving of two walkers (up to its
//! preemption bound) and every value the memory orderings let a load
//! return.
//!
//! Checked in every interleaving:
//! - no page's count falls to zero while the page is linked: a freed page
//!   is never walked again, never has its count changed, and the table
//!   reaches none; at the end every page's count is 1 + its counted entries
//!   ([`Handle::check`]), and after the deferred frees and the table's
//!   destruction every count is exactly zero;
//! - no locked marker is left behind ([`Handle::check`]);
//! - no lost update: the final leaves and each operation's result are
//!   those of one serial order of the operations that took effect, run on
//!   the same table one after the other (an operation that resumed the
//!   guest took none, and it resumed only because the other changed the
//!   table);
//! - a translation that went away (or lost a permission) was invalidated
//!   in the TLB;
//! - a table published with release ordering is seen filled: loom reports
//!   any access to an atomic that does not happen after its creation, and
//!   a lookup that follows a freshly split block must find the block's
//!   translation in it.

#![cfg(loom)]

use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Granule, Level, TableFormat};
use pgwalk::{free_unlinked, Ipa, MemoryOps, PhysAddr, Prot, Stage2};

/// Where the host's table pages start, in its made-up physical space
/// (aligned to every granule).
const POOL_BASE: u64 = 0x1000_0000;
/// Guest memory the mappings point at.
const RAM: u64 = 0x8000_0000;

/// The table format a race runs in, and its sizes.
#[derive(Debug, Clone, Copy)]
struct Shape {
    format: TableFormat,
    /// A page: the granule.
    page: u64,
    /// A level-2 block.
    block: u64,
}

impl Shape {
    const fn new(format: TableFormat) -> Shape {
        let shift = format.granule().shift();
        Shape {
            format,
            page: 1 << shift,
            block: 1 << (shift + shift - 3),
        }
    }

    /// An IPA space from level 2 with the fewest input bits pgwalk allows
    /// (25, T0SZ 39) or a root of two level-2 entries, whichever is more:
    /// walks are as short as a stage-2 walk gets. The output size is 32
    /// bits, the smallest PS.
    fn geometry(self) -> Geometry {
        let two_blocks = self.block.trailing_zeros() as u8 + 1;
        Geometry::new(self.format, two_blocks.max(25), Level::new(2).unwrap(), 32).unwrap()
    }

    fn entries(self) -> usize {
        self.format.granule().entries()
    }
}

/// The formats every race runs in: 4 KiB, LPA2 with 4 KiB (the descriptor
/// keeps PA\[51:50\] where shareability was), 16 KiB (2048 entries a
/// page, 32 MiB blocks) and 64 KiB (8192 entries, 512 MiB blocks). The
/// races are the same; the walk's per-level arithmetic, the block and
/// page sizes and the descriptor layout are the format's. 64 KiB pages
/// cost the most (the final checks read every one of their 8192 loom
/// atomics): the four formats take under a second together.
const SHAPES: [Shape; 4] = [
    Shape::new(TableFormat::FOUR_KIB),
    Shape::new(match TableFormat::new(Granule::Size4KiB, true) {
        Ok(f) => f,
        Err(_) => panic!("LPA2 exists for 4 KiB"),
    }),
    Shape::new(TableFormat::without_lpa2(Granule::Size16KiB)),
    Shape::new(TableFormat::without_lpa2(Granule::Size64KiB)),
];

/// One table page of the loom host.
struct Page {
    entries: Box<[AtomicU64]>,
    count: AtomicUsize,
    /// The host's own bookkeeping, outside the model: loom runs one thread
    /// at a time, so a plain flag is exact.
    freed: AtomicBool,
}

/// A host whose table pages are loom atomics. Pages are never reused
/// within an execution, so a freed page that a walker still reached would
/// be caught; frees the walker defers (`free_unlinked_table`) wait for the
/// end of the model, after both walkers are gone: the grace period.
///
/// A handle on the pool, so that the model can still look at the pool
/// once the table (which owns its host) is destroyed.
#[derive(Clone)]
struct LoomHost(std::sync::Arc<Pool>);

struct Pool {
    shape: Shape,
    // Host bookkeeping outside the model: no loom operation runs while
    // one of these locks is held (a loom operation may switch threads, and
    // the next one would block on the lock for good).
    pages: Mutex<Vec<std::sync::Arc<Page>>>,
    /// At most this many pages (the root included) may be allocated.
    limit: usize,
    deferred: Mutex<Vec<(PhysAddr, Level)>>,
    /// Every range the TLB was told to forget: (start, size).
    tlbi: Mutex<Vec<(u64, u64)>>,
}

impl std::ops::Deref for LoomHost {
    type Target = Pool;

    fn deref(&self) -> &Pool {
        &self.0
    }
}

impl LoomHost {
    fn new(shape: Shape, limit: usize) -> LoomHost {
        LoomHost(std::sync::Arc::new(Pool {
            shape,
            pages: Mutex::new(Vec::new()),
            limit,
            deferred: Mutex::new(Vec::new()),
            tlbi: Mutex::new(Vec::new()),
        }))
    }

    fn alloc(&self) -> Option<PhysAddr> {
        if self.pages.lock().unwrap().len() >= self.limit {
            return None;
        }
        // Fresh atomics: created by this thread, so loom checks that every
        // other thread's access to them happens after (the release store
        // that links the page is what orders them). Creating them is no
        // scheduling point, so nobody allocates in between.
        let page = std::sync::Arc::new(Page {
            entries: (0..self.shape.entries())
                .map(|_| AtomicU64::new(0))
                .collect(),
            count: AtomicUsize::new(1),
            freed: AtomicBool::new(false),
        });
        let mut pages = self.pages.lock().unwrap();
        pages.push(page);
        Some(PhysAddr(
            POOL_BASE + (pages.len() as u64 - 1) * self.shape.page,
        ))
    }

    /// Runs `f` on the page holding `pa`, which must be live.
    fn with_page<R>(&self, pa: PhysAddr, what: &str, f: impl FnOnce(&Page) -> R) -> R {
        let idx = (pa.get() - POOL_BASE) / self.shape.page;
        // Out of the lock before `f` runs loom operations, which are
        // scheduling points: another walker may then need the lock.
        let page = self.pages.lock().unwrap().get(idx as usize).cloned();
        let page = page.unwrap_or_else(|| panic!("{what}: {pa:?} is no page of the pool"));
        assert!(
            !page.freed.load(std::sync::atomic::Ordering::Relaxed),
            "{what}: table page {pa:?} was already freed"
        );
        f(&page)
    }

    fn invalidated(&self, ipa: u64) -> bool {
        let tlbi = self.tlbi.lock().unwrap();
        tlbi.iter()
            .any(|&(start, size)| start <= ipa && ipa - start < size)
    }

    /// Pages still allocated.
    fn live_pages(&self) -> usize {
        let pages = self.pages.lock().unwrap();
        pages
            .iter()
            .filter(|p| !p.freed.load(std::sync::atomic::Ordering::Relaxed))
            .count()
    }

    /// Ends the grace period: frees every subtree the walkers unlinked.
    fn drain_deferred(&self) {
        let deferred = std::mem::take(&mut *self.deferred.lock().unwrap());
        for (table, level) in deferred {
            // SAFETY: the walker handed the unlinked subtree over once, and
            // both walkers have been joined: nobody can reach it.
            unsafe { free_unlinked(self, table, level) };
        }
    }
}

// SAFETY: pages are zeroed (fresh atomics), of the shape's granule and
// aligned to it in the host's physical space, start at count 1 and are
// never reused within a model execution; `phys_to_virt` maps every page to
// its granule's worth of atomics, which
// live as long as the host (pages are boxed and never dropped before it);
// counts cannot wrap (a page has at most 513 references); unlinked tables
// are freed only once both walkers are gone (`drain_deferred`).
unsafe impl MemoryOps for LoomHost {
    type PagePool = ();

    fn table_format(&self) -> TableFormat {
        self.shape.format
    }

    fn zalloc_page(&self, _: &mut ()) -> Option<PhysAddr> {
        self.alloc()
    }

    fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
        // The model's roots are one page.
        (size as u64 == self.shape.page)
            .then(|| self.alloc())
            .flatten()
    }

    unsafe fn free_pages_exact(&self, pa: PhysAddr, _: usize) {
        self.with_page(pa, "free_pages_exact", |p| {
            assert_eq!(
                p.count.swap(0, Ordering::AcqRel),
                1,
                "the root is freed with entries still counted"
            );
            p.freed.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }

    unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
        self.with_page(table, "free_unlinked_table", |_| {});
        self.deferred.lock().unwrap().push((table, level));
    }

    unsafe fn get_page(&self, pa: PhysAddr) {
        self.with_page(pa, "get_page", |p| {
            p.count.fetch_add(1, Ordering::Relaxed);
        });
    }

    unsafe fn put_page(&self, pa: PhysAddr) {
        self.with_page(pa, "put_page", |p| {
            let before = p.count.fetch_sub(1, Ordering::AcqRel);
            assert!(before >= 1, "the count of {pa:?} went below zero");
            if before == 1 {
                p.freed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }

    fn page_count(&self, pa: PhysAddr) -> usize {
        self.with_page(pa, "page_count", |p| p.count.load(Ordering::Acquire))
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        // A walker reaching a freed page: its count fell to zero while it
        // was linked (or the grace period ended too early).
        // The page stays in the pool (which never drops a page before the
        // host goes), so the pointer outlives the `Arc` handed to the
        // closure.
        self.with_page(pa, "walked", |p| NonNull::from(&p.entries[0]).cast())
    }

    fn dcache_clean_inval_poc(&self, _: PhysAddr, _: u64) {}

    fn icache_inval_pou(&self, _: PhysAddr, _: u64) {}

    fn retry_limit(&self) -> u32 {
        // Loom hands over at every retry: a walker that retries this often
        // waits for something nobody does.
        1000
    }

    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, level: Level) {
        let size = self.shape.geometry().entry_size(level);
        self.tlbi.lock().unwrap().push((ipa.get(), size));
    }

    fn tlb_flush_vmid_range(&self, ipa: Ipa, size: u64) {
        self.tlbi.lock().unwrap().push((ipa.get(), size));
    }

    fn tlb_flush_vmid(&self) {
        self.tlbi.lock().unwrap().push((0, u64::MAX));
    }
}

/// An operation one walker runs.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// The fault path's `map` (`HandlesFault`).
    FaultMap {
        ipa: u64,
        size: u64,
        pa: u64,
        prot: Prot,
    },
    /// `wrprotect` (`Shared`), its TLB flush spent at once.
    Wrprotect { ipa: u64, size: u64 },
    /// The fault path's `relax_perms`.
    FaultRelax { ipa: u64, prot: Prot },
    /// `relax_perms` (`Shared`): a race is retried, not resumed.
    Relax { ipa: u64, prot: Prot },
    /// `clear_young` (`Shared`).
    ClearYoung { ipa: u64, size: u64 },
    /// `get_leaf` (`Shared`).
    Lookup { ipa: u64 },
}

/// What an operation answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Fault(TableOutcome),
    Done,
    Young(bool),
    Leaf { bits: u64, level: i8 },
}

impl Op {
    fn run(self, t: &Stage2<LoomHost>) -> Answer {
        match self {
            Op::FaultMap {
                ipa,
                size,
                pa,
                prot,
            } => Answer::Fault(
                t.fault_handler()
                    .map(Ipa(ipa), size, PhysAddr(pa), prot, &mut ())
                    .unwrap(),
            ),
            Op::Wrprotect { ipa, size } => {
                t.shared().wrprotect(Ipa(ipa), size).unwrap().flush();
                Answer::Done
            }
            Op::FaultRelax { ipa, prot } => {
                Answer::Fault(t.fault_handler().relax_perms(Ipa(ipa), prot).unwrap())
            }
            Op::Relax { ipa, prot } => {
                t.shared().relax_perms(Ipa(ipa), prot).unwrap();
                Answer::Done
            }
            Op::ClearYoung { ipa, size } => {
                Answer::Young(t.shared().clear_young(Ipa(ipa), size).unwrap())
            }
            Op::Lookup { ipa } => {
                let (d, level) = t.shared().get_leaf(Ipa(ipa)).unwrap();
                Answer::Leaf {
                    bits: d.bits(),
                    level: level.get(),
                }
            }
        }
    }

    /// Whether the answer says the operation gave up and resumed the guest
    /// (it then changed nothing a serial order must account for).
    fn resumed(answer: Answer) -> bool {
        answer == Answer::Fault(TableOutcome::Retry)
    }
}

/// The translation of one address: the leaf's output address for it and
/// the leaf's permissions, or `None` where nothing is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Translation {
    pa: u64,
    readable: bool,
    writable: bool,
    executable: bool,
}

/// What a run left: each operation's answer, and the leaf (bits and level)
/// at each watched address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    answers: Vec<Answer>,
    leaves: Vec<(u64, i8)>,
}

/// A race: the table the walkers start from, the two operations, and the
/// addresses whose leaves say who won.
struct Race {
    shape: Shape,
    /// Exclusive setup: maps of (ipa, size, pa, prot).
    setup: Vec<(u64, u64, u64, Prot)>,
    ops: [Op; 2],
    watch: Vec<u64>,
    /// Pages the host may hand out, the root included.
    pages: usize,
}

/// Runs the race `race` builds for each of the [`SHAPES`].
fn for_each_shape(race: impl Fn(Shape) -> Race) {
    for shape in SHAPES {
        // Loom's models outlive no test, but want `'static` data.
        let race: &'static Race = Box::leak(Box::new(race(shape)));
        eprintln!("{}:", shape.format);
        race.check();
    }
}

fn translation(t: &Stage2<LoomHost>, ipa: u64) -> Option<Translation> {
    let (d, level) = t.shared().get_leaf(Ipa(ipa)).unwrap();
    d.is_valid().then(|| {
        let size = t.geometry().entry_size(level);
        Translation {
            pa: d.output_address(t.geometry().format()).get() + (ipa & (size - 1)),
            readable: d.readable(),
            writable: d.writable(),
            executable: d.is_executable(),
        }
    })
}

fn leaves(t: &Stage2<LoomHost>, watch: &[u64]) -> Vec<(u64, i8)> {
    watch
        .iter()
        .map(|&ipa| {
            let (d, level) = t.shared().get_leaf(Ipa(ipa)).unwrap();
            (d.bits(), level.get())
        })
        .collect()
}

impl Race {
    fn table(&self) -> Stage2<LoomHost> {
        let host = LoomHost::new(self.shape, self.pages);
        let mut t = Stage2::with_geometry(self.shape.geometry(), host).unwrap();
        for &(ipa, size, pa, prot) in &self.setup {
            t.exclusive()
                .map(Ipa(ipa), size, PhysAddr(pa), prot, &mut ())
                .unwrap();
        }
        t
    }

    /// The checks every run ends with, once the walkers are gone: the
    /// table's invariants, the deferred frees, and the table's destruction,
    /// after which nothing may be left.
    fn finish(&self, mut t: Stage2<LoomHost>) {
        let report = t
            .exclusive()
            .check()
            .unwrap_or_else(|e| panic!("after the race: {e}"));
        // Nothing the walkers freed is reachable (the check would have
        // walked it, and the host refuses freed pages).
        let deferred: Vec<_> = t.mm().deferred.lock().unwrap().clone();
        t.mm().drain_deferred();
        assert_eq!(
            t.mm().live_pages(),
            1 + report.table_pages,
            "pages leaked: the table reaches {} tables, {} subtrees were deferred",
            report.table_pages,
            deferred.len()
        );
        let host = t.mm().clone();
        drop(t);
        assert_eq!(host.live_pages(), 0, "the destroyed table left pages");
    }

    /// Runs the operations one after the other, in `order`, on a fresh
    /// table (one loom execution, one thread).
    fn serial(&'static self, order: &'static [usize]) -> Observed {
        let out = std::sync::Arc::new(Mutex::new(None));
        let result = out.clone();
        builder().check(move || {
            let t = self.table();
            let mut answers = vec![Answer::Done; 2];
            for &i in order {
                answers[i] = self.ops[i].run(&t);
            }
            *result.lock().unwrap() = Some(Observed {
                answers,
                leaves: leaves(&t, &self.watch),
            });
            self.finish(t);
        });
        let observed = out.lock().unwrap().take();
        observed.unwrap()
    }

    /// Races the two operations in every interleaving loom finds.
    fn check(&'static self) {
        let serial = [
            (&[0, 1][..], self.serial(&[0, 1])),
            (&[1, 0][..], self.serial(&[1, 0])),
            (&[0][..], self.serial(&[0])),
            (&[1][..], self.serial(&[1])),
            (&[][..], self.serial(&[])),
        ];
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = runs.clone();
        builder().check(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let t = Arc::new(self.table());
            let before: Vec<_> = self.watch.iter().map(|&a| translation(&t, a)).collect();
            let other = {
                let t = t.clone();
                let op = self.ops[1];
                thread::spawn(move || op.run(&t))
            };
            let mine = self.ops[0].run(&t);
            let theirs = other.join().unwrap();
            let t = Arc::try_unwrap(t).ok().unwrap();
            let got = Observed {
                answers: vec![mine, theirs],
                leaves: leaves(&t, &self.watch),
            };
            // An operation that resumed the guest took no effect, unless it
            // resumes alone too.
            let solo = |i: usize| &serial[2 + i].1;
            let took_effect =
                |i: usize| !Op::resumed(got.answers[i]) || Op::resumed(solo(i).answers[i]);
            let explained = serial.iter().any(|(order, s)| {
                order.len() == (0..2).filter(|&i| took_effect(i)).count()
                    && order.iter().all(|&i| took_effect(i))
                    && order.iter().all(|&i| s.answers[i] == got.answers[i])
                    && s.leaves == got.leaves
            });
            assert!(
                explained,
                "no serial order of {:?} explains {got:?}",
                self.ops
            );
            // A walker resumes the guest only when the other changed what
            // it was about to change.
            for i in 0..2 {
                if !took_effect(i) {
                    assert!(
                        took_effect(1 - i) && solo(1 - i).leaves != serial[4].1.leaves,
                        "{:?} resumed without a conflicting change: {got:?}",
                        self.ops[i]
                    );
                }
            }
            // What the guest could reach before and cannot now (another
            // address, or a permission fewer) left the TLB.
            for (&ipa, was) in self.watch.iter().zip(before) {
                let Some(was) = was else { continue };
                let now = translation(&t, ipa);
                let lost = match now {
                    None => true,
                    Some(now) => {
                        now.pa != was.pa
                            || (was.readable && !now.readable)
                            || (was.writable && !now.writable)
                            || (was.executable && !now.executable)
                    }
                };
                if lost {
                    assert!(
                        t.mm().invalidated(ipa),
                        "{ipa:#x}: {was:?} became {now:?} without a TLB invalidation"
                    );
                }
            }
            self.finish(t);
        });
        let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("{:?}: {runs} executions", self.ops);
        assert!(runs > 1, "loom found no interleaving to explore");
    }
}

/// Loom's settings for every model here.
fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    // Each race needs a walker stopped between its read and its update,
    // and once more inside a break: three preemptions reach them all with
    // one to spare, and the whole model still runs in well under a second
    // (five take twice as long and find nothing more).
    // `LOOM_MAX_PREEMPTIONS` overrides it for a deeper run.
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    // The final check and the table's destruction read every entry of
    // every table page: far more loom operations than the race itself.
    builder.max_branches = 100_000;
    builder
}

#[test]
fn two_fault_maps_of_the_same_page() {
    // Two vCPUs fault on one page (the table below exists): one installs
    // it, the other finds it there (spurious) or loses the swap (resumes).
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(s.page, s.page, RAM + s.page, Prot::RW)],
        ops: [
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM,
                prot: Prot::RW,
            },
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM,
                prot: Prot::R,
            },
        ],
        watch: vec![0],
        pages: 2,
    });
}

#[test]
fn two_fault_maps_of_different_pages_at_one_address() {
    // The loser of the install finds the winner's page and breaks it to
    // install its own: the winner's count must already be taken by then.
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(s.page, s.page, RAM + s.page, Prot::RW)],
        ops: [
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM,
                prot: Prot::RW,
            },
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM + s.block,
                prot: Prot::R,
            },
        ],
        watch: vec![0],
        pages: 2,
    });
}

#[test]
fn fault_map_vs_wrprotect_on_an_empty_entry() {
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(s.page, s.page, RAM + s.page, Prot::RW)],
        ops: [
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM,
                prot: Prot::RW,
            },
            Op::Wrprotect {
                ipa: 0,
                size: s.page,
            },
        ],
        watch: vec![0],
        pages: 2,
    });
}

#[test]
fn fault_map_with_a_break_vs_wrprotect() {
    // The map moves the page (break-before-make); wrprotect retries on the
    // locked marker and must not be lost, nor land on the old page.
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(0, s.page, RAM, Prot::RW)],
        ops: [
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM + s.block,
                prot: Prot::RW,
            },
            Op::Wrprotect {
                ipa: 0,
                size: s.page,
            },
        ],
        watch: vec![0],
        pages: 2,
    });
}

#[test]
fn a_block_replaces_a_page_table_while_a_shared_walker_updates_inside_it() {
    // The fault path replaces the level-3 table with a 2 MiB block (break,
    // make, the table handed to the grace period) while wrprotect, which
    // may already have followed the table, write-protects a page in it:
    // the unlinked table stays readable, and frees to exactly zero after
    // the grace period whatever the interleaving.
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(0, s.page, RAM, Prot::RW)],
        ops: [
            Op::FaultMap {
                ipa: 0,
                size: s.block,
                pa: RAM + s.block,
                prot: Prot::RW,
            },
            Op::Wrprotect {
                ipa: 0,
                size: s.page,
            },
        ],
        watch: vec![0, s.page],
        pages: 2,
    });
}

#[test]
fn fault_relax_perms_vs_wrprotect() {
    // An execute fault relaxes X while dirty logging takes W away: both
    // land, or the relax resumes the guest because wrprotect changed the
    // entry under it.
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(0, s.page, RAM, Prot::RW)],
        ops: [
            Op::FaultRelax {
                ipa: 0,
                prot: Prot::X,
            },
            Op::Wrprotect {
                ipa: 0,
                size: s.page,
            },
        ],
        watch: vec![0],
        pages: 2,
    });
}

#[test]
fn a_break_vs_relax_perms_shared() {
    // The fault path moves a read-only page while a shared walker relaxes
    // W on it: the relax retries on the marker and lands on the new page,
    // or lands first and the move replaces it.
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(0, s.page, RAM, Prot::R)],
        ops: [
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM + s.block,
                prot: Prot::R.union(Prot::X),
            },
            Op::Relax {
                ipa: 0,
                prot: Prot::W,
            },
        ],
        watch: vec![0],
        pages: 2,
    });
}

#[test]
fn a_break_vs_relax_perms_on_the_fault_path() {
    // The same on the fault path: the relax resumes the guest instead of
    // retrying.
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(0, s.page, RAM, Prot::R)],
        ops: [
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM + s.block,
                prot: Prot::R.union(Prot::X),
            },
            Op::FaultRelax {
                ipa: 0,
                prot: Prot::W,
            },
        ],
        watch: vec![0],
        pages: 2,
    });
}

#[test]
fn two_fault_maps_of_different_pages_need_the_same_new_table() {
    // Both vCPUs find the 2 MiB entry empty and build a level-3 table for
    // it: one link wins, the loser frees its page (never seen by anyone)
    // and resumes the guest, or finds the winner's table and maps into it.
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![],
        ops: [
            Op::FaultMap {
                ipa: 0,
                size: s.page,
                pa: RAM,
                prot: Prot::RW,
            },
            Op::FaultMap {
                ipa: s.page,
                size: s.page,
                pa: RAM + s.page,
                prot: Prot::R,
            },
        ],
        watch: vec![0, s.page],
        pages: 3,
    });
}

#[test]
fn clear_young_vs_wrprotect_loses_neither() {
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(0, s.page, RAM, Prot::RW)],
        ops: [
            Op::ClearYoung {
                ipa: 0,
                size: s.page,
            },
            Op::Wrprotect {
                ipa: 0,
                size: s.page,
            },
        ],
        watch: vec![0],
        pages: 2,
    });
}

#[test]
fn a_split_block_is_seen_filled() {
    // The fault path maps one page over a 2 MiB block: it fills a level-3
    // table with the block's pages (relaxed stores to a private page) and
    // links it with release ordering. A lookup of another page that
    // follows the new table must find the block's translation there, never
    // the zeroed page.
    for_each_shape(|s| Race {
        shape: s,
        setup: vec![(0, s.block, RAM, Prot::RW)],
        ops: [
            Op::FaultMap {
                ipa: s.page,
                size: s.page,
                pa: RAM + s.block + s.page,
                prot: Prot::RW,
            },
            Op::Lookup { ipa: 3 * s.page },
        ],
        watch: vec![s.page, 3 * s.page],
        pages: 3,
    });
}

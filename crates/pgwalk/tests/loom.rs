//! A loom model of the entry protocol: two walkers racing on one entry.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p pgwalk --test loom --release`.
//!
//! The code under test is pgwalk's own: `pgwalk::loom_entry` (only built
//! under `cfg(loom)`) is the module the walker's `VisitCtx` calls for every
//! read, compare-and-swap, break, make and reference-count step. Here it runs
//! on loom's `AtomicU64`, so loom explores every interleaving of the two
//! walkers and every value the memory orderings let a load return. The
//! visitors are the stage-2 ones reduced to one entry (the fault path's
//! `map`, `update_leaves` behind wrprotect / mkold / relax_perms), and the
//! driver does with their typed answers what the walk engine does: retry
//! the entry under `Shared`, stop and resume the guest under `HandlesFault`.
//!
//! Checked in every interleaving:
//! - the page's reference count never falls to zero while the page is
//!   linked, and ends at 1 + its counted entries;
//! - no locked marker is left behind;
//! - no lost update: the final entry and each walker's reported outcome are
//!   those of one of the serial orders of the operations that took effect
//!   (a fault handler that resumed the guest took none, and it resumed only
//!   because the other walker changed the entry);
//! - a translation that went away was invalidated in the TLB;
//! - a table published with release ordering is seen filled by a walker
//!   that reads the entry with acquire.

#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use pgwalk::descriptor::{Descriptor, LeafAttrs};
use pgwalk::geometry::Level;
use pgwalk::loom_entry::{self as entry, EntryCell, EntrySite};
use pgwalk::visit::{Action, Conflict, ResumeReason, Unfinished, Visit};
use pgwalk::{Capability, Concurrent, HandlesFault, PhysAddr, Prot, Shared};

/// Loom's atomic, as the cell the protocol updates.
struct Cell(AtomicU64);

impl EntryCell for Cell {
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }

    fn store(&self, value: u64, order: Ordering) {
        self.0.store(value, order)
    }

    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        self.0.compare_exchange(current, new, success, failure)
    }
}

/// A table page whose one interesting entry the walkers race on, with its
/// reference count and the TLB invalidations asked for it.
struct Page {
    entry: Cell,
    count: AtomicUsize,
    tlbi: AtomicUsize,
}

impl Page {
    /// A linked page holding `initial`: its count is 1 + its counted entries.
    fn new(initial: Descriptor) -> Arc<Page> {
        Arc::new(Page {
            entry: Cell(AtomicU64::new(initial.bits())),
            count: AtomicUsize::new(1 + usize::from(initial.is_counted())),
            tlbi: AtomicUsize::new(0),
        })
    }

    fn read(&self) -> Descriptor {
        entry::load(&self.entry, Ordering::Acquire)
    }

    /// The invariants that hold once both walkers are done.
    fn check_quiescent(&self) -> Descriptor {
        let last = self.read();
        assert!(!last.is_locked(), "a locked marker was left behind");
        assert_eq!(
            self.count.load(Ordering::Acquire),
            1 + usize::from(last.is_counted()),
            "count is not 1 + counted entries (entry {last:?})"
        );
        last
    }
}

impl EntrySite for Page {
    unsafe fn get(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    unsafe fn put(&self) {
        let before = self.count.fetch_sub(1, Ordering::AcqRel);
        assert!(
            before >= 2,
            "the count of a linked table page fell to {}",
            before - 1
        );
    }

    fn invalidate(&self, old: Descriptor) {
        if old.is_valid() {
            self.tlbi.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn maintain_caches(&self, _old: Descriptor, _new: Descriptor) {}
}

fn page(pa: u64, prot: Prot) -> Descriptor {
    Descriptor::leaf(
        PhysAddr(pa),
        Level::LAST,
        LeafAttrs::from_prot(prot).unwrap(),
    )
}

const PA1: u64 = 0x8000_0000;
const PA2: u64 = 0x9000_0000;

/// What an operation reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Fault path: installed or changed the entry.
    Fixed,
    /// Fault path: the entry already held it (up to permissions).
    Spurious,
    /// Fault path: resumed the guest after a race; no effect.
    Resumed,
    /// Shared update: changed the entry.
    Changed,
    /// Shared update: the entry already had it.
    Unchanged,
    /// Shared update: no valid leaf.
    Absent,
}

/// An operation on the entry: how it runs against the protocol, and what
/// it does when it runs alone.
#[derive(Clone, Copy)]
enum Op {
    /// The fault path's `map` of this leaf (HandlesFault).
    FaultMap(Descriptor),
    /// `update_leaves` with this change, as wrprotect, mkold and
    /// relax_perms run it under Shared (a race is retried).
    Update(fn(Descriptor) -> Descriptor),
    /// The same under HandlesFault (a race resumes the guest), as the fault
    /// path's relax_perms and mkyoung run it.
    FaultUpdate(fn(Descriptor) -> Descriptor),
}

fn wrprotect(d: Descriptor) -> Descriptor {
    d.with_writable(false)
}

fn mkold(d: Descriptor) -> Descriptor {
    d.with_young(false)
}

fn relax_w(d: Descriptor) -> Descriptor {
    d.with_writable(true)
}

/// What the walk engine does with a visitor's answers for one leaf: visit
/// it, and on `Retry` read it again and visit again; stop on
/// `ResumeGuest`.
fn drive<C: Capability>(
    page: &Page,
    mut visit: impl FnMut(Descriptor) -> Visit<C>,
) -> Result<(), C::Resume> {
    loop {
        let old = page.read();
        match visit(old) {
            Ok(Action::Continue) | Ok(Action::Skip(_)) => return Ok(()),
            Err(Unfinished::Retry(_)) => thread::yield_now(),
            Err(Unfinished::ResumeGuest(r)) => return Err(r),
            Err(Unfinished::Stop(e)) => panic!("walk stopped: {e}"),
        }
    }
}

/// The fault path's map visitor at a leaf it covers (stage2/fault_map.rs).
fn fault_map(page: &Page, new: Descriptor) -> Outcome {
    let mut installed = false;
    let walked = drive::<HandlesFault>(page, |old| {
        if old.is_locked() {
            return Err(Conflict::Raced.into());
        }
        if old.is_valid() && !new.differs_beyond_perms(old) {
            return Ok(Action::Continue);
        }
        entry::try_update(&page.entry, page, old, new)?;
        installed = true;
        Ok(Action::Continue)
    });
    match walked {
        Ok(()) if installed => Outcome::Fixed,
        Ok(()) => Outcome::Spurious,
        Err(ResumeReason::Raced | ResumeReason::Gone) => Outcome::Resumed,
        Err(ResumeReason::Spurious) => Outcome::Spurious,
    }
}

/// The attribute-change visitor (stage2/attr.rs `update_leaves`).
fn update<C: Concurrent>(page: &Page, f: fn(Descriptor) -> Descriptor) -> Outcome {
    let mut result = Outcome::Unchanged;
    let walked = drive::<C>(page, |old| {
        if old.is_locked() {
            return Err(Conflict::Raced.into());
        }
        if !old.is_valid() {
            result = Outcome::Absent;
            return Ok(Action::Continue);
        }
        let new = f(old);
        if new != old {
            entry::try_update(&page.entry, page, old, new)?;
            result = Outcome::Changed;
        } else {
            result = Outcome::Unchanged;
        }
        Ok(Action::Continue)
    });
    match walked {
        Ok(()) => result,
        Err(_) => Outcome::Resumed,
    }
}

fn run(page: &Page, op: Op) -> Outcome {
    match op {
        Op::FaultMap(new) => fault_map(page, new),
        Op::Update(f) => update::<Shared>(page, f),
        Op::FaultUpdate(f) => match update::<HandlesFault>(page, f) {
            // The fault path reports an absent leaf as a race too.
            Outcome::Absent => Outcome::Resumed,
            o => o,
        },
    }
}

/// The operation alone on an entry holding `d`: what it leaves and reports.
fn serial(op: Op, d: Descriptor) -> (Descriptor, Outcome) {
    match op {
        Op::FaultMap(new) if d.is_valid() && !new.differs_beyond_perms(d) => (d, Outcome::Spurious),
        Op::FaultMap(new) => (new, Outcome::Fixed),
        Op::Update(_) if !d.is_valid() => (d, Outcome::Absent),
        Op::FaultUpdate(_) if !d.is_valid() => (d, Outcome::Resumed),
        Op::Update(f) | Op::FaultUpdate(f) if f(d) == d => (d, Outcome::Unchanged),
        Op::Update(f) | Op::FaultUpdate(f) => (f(d), Outcome::Changed),
    }
}

/// Whether `last` and the outcomes are those of a serial order of the
/// operations that took effect.
fn linearizable(initial: Descriptor, ops: [Op; 2], got: [Outcome; 2], last: Descriptor) -> bool {
    let took_effect =
        |i: usize| got[i] != Outcome::Resumed || serial(ops[i], initial).1 == Outcome::Resumed;
    let orders: [&[usize]; 2] = [&[0, 1], &[1, 0]];
    orders.iter().any(|order| {
        let mut d = initial;
        for &i in order.iter().filter(|&&i| took_effect(i)) {
            let (next, outcome) = serial(ops[i], d);
            if outcome != got[i] {
                return false;
            }
            d = next;
        }
        d == last
    })
}

/// Races `a` against `b` on an entry holding `initial`, in every
/// interleaving loom finds, and checks the invariants of each.
fn race(initial: Descriptor, a: Op, b: Op) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(move || {
        let p = Page::new(initial);
        let other = {
            let p = p.clone();
            thread::spawn(move || run(&p, b))
        };
        let got_a = run(&p, a);
        let got_b = other.join().unwrap();
        let last = p.check_quiescent();
        let got = [got_a, got_b];
        assert!(
            linearizable(initial, [a, b], got, last),
            "no serial order explains {got:?} ending in {last:?} from {initial:?}"
        );
        // A walker resumes the guest only when the other changed the entry.
        for (i, g) in got.iter().enumerate() {
            if *g == Outcome::Resumed && serial([a, b][i], initial).1 != Outcome::Resumed {
                assert!(
                    matches!(got[1 - i], Outcome::Fixed | Outcome::Changed),
                    "resumed without a conflicting change: {got:?}"
                );
            }
        }
        if initial.is_valid()
            && last.output_address(pgwalk::geometry::Granule::Size4KiB)
                != initial.output_address(pgwalk::geometry::Granule::Size4KiB)
        {
            assert!(
                p.tlbi.load(Ordering::Relaxed) >= 1,
                "the old translation was never invalidated"
            );
        }
    });
}

#[test]
fn map_vs_wrprotect_on_an_empty_entry() {
    race(
        Descriptor::INVALID,
        Op::FaultMap(page(PA1, Prot::RW)),
        Op::Update(wrprotect),
    );
}

#[test]
fn map_with_break_vs_wrprotect() {
    // The map moves the page (break-before-make); wrprotect retries on the
    // locked marker and must not be lost.
    race(
        page(PA1, Prot::RW),
        Op::FaultMap(page(PA2, Prot::RW)),
        Op::Update(wrprotect),
    );
}

#[test]
fn map_vs_map_of_different_pages() {
    // The loser of the install breaks the winner's entry: the winner's
    // count must already be taken (this found the count falling to zero).
    race(
        Descriptor::INVALID,
        Op::FaultMap(page(PA1, Prot::RW)),
        Op::FaultMap(page(PA2, Prot::R)),
    );
}

#[test]
fn map_vs_map_of_the_same_page() {
    // Two vCPUs fault the same page: one installs it, the other finds it
    // there (spurious) or loses the swap (resumes).
    race(
        Descriptor::INVALID,
        Op::FaultMap(page(PA1, Prot::RW)),
        Op::FaultMap(page(PA1, Prot::R)),
    );
}

#[test]
fn break_vs_relax_perms_shared() {
    race(
        page(PA1, Prot::R),
        Op::FaultMap(page(PA2, Prot::R | Prot::X)),
        Op::Update(relax_w),
    );
}

#[test]
fn break_vs_relax_perms_on_the_fault_path() {
    race(
        page(PA1, Prot::R),
        Op::FaultMap(page(PA2, Prot::R | Prot::X)),
        Op::FaultUpdate(relax_w),
    );
}

#[test]
fn wrprotect_vs_mkold_loses_neither() {
    race(
        page(PA1, Prot::RW),
        Op::Update(wrprotect),
        Op::Update(mkold),
    );
}

/// A table page below the raced entry, filled before it is linked.
struct Child {
    entry: Cell,
}

const CHILD_PA: u64 = 0x5000_0000;

#[test]
fn a_linked_table_is_seen_filled() {
    // A fault handler links a table it filled with relaxed stores; another
    // walker that reads the entry with acquire and follows it must see the
    // leaf, never the zeroed page.
    let level2 = Level::new(2).unwrap();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(move || {
        let parent = Page::new(Descriptor::INVALID);
        let child = Arc::new(Child {
            entry: Cell(AtomicU64::new(0)),
        });
        let leaf = page(PA1, Prot::RW);
        let reader = {
            let (parent, child) = (parent.clone(), child.clone());
            thread::spawn(move || {
                // The walker's own ordering for reading entries; the
                // child is read relaxed so that only the parent's
                // acquire/release pair can make its contents visible.
                let d = entry::load(&parent.entry, <HandlesFault as Capability>::LOAD);
                if d.is_table(level2) {
                    assert_eq!(
                        d.output_address(pgwalk::geometry::Granule::Size4KiB).get(),
                        CHILD_PA
                    );
                    let seen = entry::load(&child.entry, Ordering::Relaxed);
                    assert_eq!(seen, leaf, "followed a table before its contents");
                }
            })
        };
        // Filling a private page: relaxed, as fill_from does.
        child.entry.store(leaf.bits(), Ordering::Relaxed);
        let table = Descriptor::from_bits(CHILD_PA | 0b11);
        entry::try_update(&parent.entry, &*parent, Descriptor::INVALID, table).unwrap();
        reader.join().unwrap();
        parent.check_quiescent();
    });
}

#[test]
fn two_links_one_wins_the_loser_keeps_its_page() {
    // Two fault handlers race to hang their own table on an empty entry:
    // one links it, the other's swap fails without touching the entry or
    // the count, and it frees its private page itself.
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(|| {
        let parent = Page::new(Descriptor::INVALID);
        let link = |parent: &Page, pa: u64| {
            let table = Descriptor::from_bits(pa | 0b11);
            entry::try_update(&parent.entry, parent, Descriptor::INVALID, table)
        };
        let other = {
            let parent = parent.clone();
            thread::spawn(move || link(&parent, CHILD_PA + 0x1000))
        };
        let mine = link(&parent, CHILD_PA);
        let theirs = other.join().unwrap();
        assert!(
            mine.is_ok() != theirs.is_ok(),
            "exactly one link wins: {mine:?} {theirs:?}"
        );
        let last = parent.check_quiescent();
        let winner = if mine.is_ok() {
            CHILD_PA
        } else {
            CHILD_PA + 0x1000
        };
        assert_eq!(last.bits(), winner | 0b11);
        assert_eq!(mine.err().or(theirs.err()), Some(Conflict::Raced));
    });
}

#[test]
fn block_over_table_vs_update_inside_the_table() {
    // A fault handler replaces a table with a block (break, defer the free,
    // make) while a shared walker that already followed the table
    // write-protects a leaf in it. After the grace period the unlinked
    // child must free to exactly zero whatever the interleaving: its count
    // followed its entries.
    let level2 = Level::new(2).unwrap();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(move || {
        let table = Descriptor::from_bits(CHILD_PA | 0b11);
        let parent = Page::new(table);
        let child = Page::new(page(PA1, Prot::RW));
        let block = Descriptor::leaf(
            PhysAddr(0x4000_0000),
            level2,
            LeafAttrs::from_prot(Prot::RW).unwrap(),
        );
        let walker = {
            let (parent, child) = (parent.clone(), child.clone());
            thread::spawn(move || {
                // The walk read the table entry and descends: the grace
                // period keeps the child readable even once unlinked.
                let d = parent.read();
                if d.is_table(level2) {
                    update::<Shared>(&child, wrprotect)
                } else {
                    update::<Shared>(&parent, wrprotect)
                }
            })
        };
        let broken = entry::try_break(&parent.entry, &*parent, table);
        let replaced = broken.is_ok();
        if let Ok(broken) = broken {
            entry::make(&parent.entry, &*parent, broken, block);
        }
        let walked = walker.join().unwrap();
        assert!(replaced, "nobody else changes the table entry");
        assert_eq!(walked, Outcome::Changed);
        let last = parent.check_quiescent();
        assert!(last == block || last == wrprotect(block), "{last:?}");
        assert_eq!(
            parent.tlbi.load(Ordering::Relaxed),
            1,
            "the table's range was invalidated"
        );
        // The grace period is over: free the unlinked child as
        // free_unlinked does, one put per counted entry and one for the page.
        let left = child.check_quiescent();
        let puts = usize::from(left.is_counted()) + 1;
        assert_eq!(child.count.load(Ordering::Acquire), puts);
    });
}

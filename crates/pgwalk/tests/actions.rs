//! Each typed action does what the return-code table in DESIGN.md says,
//! for each walker kind.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use pgwalk::fault::FaultOutcome;
use pgwalk::geometry::{Geometry, Granule, Level};
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::visit::{
    Action, Conflict, ResumeReason, RetryEntry, Unfinished, VisitKind, WalkFlags, Walked,
};
use pgwalk::{Error, Ipa, MemoryOps, PhysAddr, Prot, Stage2};

const K4: u64 = 4 << 10;

fn table_with_pages(n: u64) -> Stage2<HeapMemory> {
    let mut t = Stage2::with_geometry(
        Geometry::for_ia_bits(40, 48).unwrap(),
        HeapMemory::new(4096),
    )
    .unwrap();
    if n > 0 {
        t.exclusive()
            .map(Ipa(0), n * K4, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap();
    }
    t
}

#[test]
fn exclusive_continue_visits_everything() {
    let mut t = table_with_pages(4);
    let mut n = 0;
    let w = t.exclusive().walk(Ipa(0), 4 * K4, WalkFlags::LEAF, |_| {
        n += 1;
        Ok(Action::Continue)
    });
    assert!(matches!(w, Ok(Walked::Completed)));
    assert_eq!(n, 4);
}

#[test]
fn exclusive_stop_returns_the_error() {
    let mut t = table_with_pages(4);
    let w = t.exclusive().walk(Ipa(0), 4 * K4, WalkFlags::LEAF, |_| {
        Err(Unfinished::Stop(Error::EmptyRange))
    });
    assert_eq!(w.unwrap_err(), Error::EmptyRange);
}

#[test]
fn shared_retry_visits_the_same_entry_again() {
    let t = table_with_pages(3);
    let mut visits = Vec::new();
    let mut retried = false;
    let w = t.shared().walk(Ipa(0), 3 * K4, WalkFlags::LEAF, |ctx| {
        visits.push(ctx.addr().get());
        if ctx.addr() == Ipa(K4) && !retried {
            retried = true;
            return Err(Unfinished::Retry(RetryEntry(Conflict::Raced)));
        }
        Ok(Action::Continue)
    });
    assert!(w.unwrap().is_completed());
    assert_eq!(visits, [0, K4, K4, 2 * K4]);
}

#[test]
fn shared_skip_does_not_descend() {
    let t = table_with_pages(3);
    let mut leaves = 0;
    let w = t.shared().walk(
        Ipa(0),
        3 * K4,
        WalkFlags::LEAF | WalkFlags::TABLE_PRE,
        |ctx| {
            if ctx.kind() == VisitKind::TablePre && ctx.level().get() == 2 {
                return Ok(Action::SKIP);
            }
            if ctx.kind() == VisitKind::Leaf {
                leaves += 1;
            }
            Ok(Action::Continue)
        },
    );
    assert!(w.unwrap().is_completed());
    assert_eq!(leaves, 0, "the level-2 table's subtree was skipped");
}

#[test]
fn shared_conflict_with_question_mark_becomes_retry() {
    let t = table_with_pages(1);
    let mut attempts = 0;
    let w = t.shared().walk(Ipa(0), K4, WalkFlags::LEAF, |ctx| {
        attempts += 1;
        if attempts == 1 {
            // Pretend another walker won: the `?` must retry this entry.
            Err(Conflict::Raced)?;
        }
        let old = ctx.old();
        ctx.try_set(old.with_writable(false))?;
        Ok(Action::Continue)
    });
    assert!(w.unwrap().is_completed());
    assert_eq!(attempts, 2);
    assert!(!t.shared().get_leaf(Ipa(0)).unwrap().0.writable());
}

#[test]
fn fault_handler_resume_stops_and_reports_why() {
    let t = table_with_pages(3);
    let mut visits = 0;
    let w = t
        .fault_handler()
        .walk(Ipa(0), 3 * K4, WalkFlags::LEAF, |ctx| {
            visits += 1;
            if ctx.addr() == Ipa(K4) {
                Err(Conflict::Gone)?;
            }
            Ok(Action::Continue)
        });
    assert_eq!(w.unwrap(), Walked::ResumeGuest(ResumeReason::Gone));
    assert_eq!(visits, 2);
}

#[test]
fn fault_handler_stop_returns_the_error() {
    let t = table_with_pages(1);
    let w = t.fault_handler().walk(Ipa(0), K4, WalkFlags::LEAF, |_| {
        Err(Unfinished::Stop(Error::EmptyRange))
    });
    assert_eq!(w.unwrap_err(), Error::EmptyRange);
}

#[test]
fn fault_map_fixed_then_spurious() {
    let mut t = table_with_pages(0);
    let h = t.fault_handler();
    let r = h
        .map(Ipa(0x10_0000), K4, PhysAddr(0x9000_0000), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(r, FaultOutcome::Fixed);
    let r = h
        .map(Ipa(0x10_0000), K4, PhysAddr(0x9000_0000), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(r, FaultOutcome::Spurious);
    // Permissions alone differ: the map leaves it to relax_perms.
    let r = h
        .map(Ipa(0x10_0000), K4, PhysAddr(0x9000_0000), Prot::R, &mut ())
        .unwrap();
    assert_eq!(r, FaultOutcome::Spurious);
    check_invariants(&mut t).unwrap();
}

#[test]
fn attribute_changes_under_shared() {
    let mut t = table_with_pages(4);
    let h = t.shared();
    let flush = h.wrprotect(Ipa(0), 4 * K4).unwrap();
    let before = t.mm().stats().tlbi_range;
    flush.flush();
    assert_eq!(t.mm().stats().tlbi_range, before + 1);
    assert!(!h.get_leaf(Ipa(K4)).unwrap().0.writable());
    assert!(
        h.clear_young(Ipa(0), 4 * K4).unwrap(),
        "new leaves are young"
    );
    assert!(!h.test_young(Ipa(0), 4 * K4).unwrap(), "and were made old");
    assert!(h.mkyoung(Ipa(K4)).unwrap());
    assert!(h.test_young(Ipa(K4), K4).unwrap());
    h.relax_perms(Ipa(2 * K4), Prot::W).unwrap();
    assert!(h.get_leaf(Ipa(2 * K4)).unwrap().0.writable());
    assert!(h.relax_perms(Ipa(0), Prot::DEVICE).is_err());
    check_invariants(&mut t).unwrap();
}

#[test]
fn fault_relax_and_mkyoung_outcomes() {
    let t = table_with_pages(2);
    let f = t.fault_handler();
    f.as_shared().wrprotect(Ipa(0), K4).unwrap().flush();
    assert_eq!(f.relax_perms(Ipa(0), Prot::W).unwrap(), FaultOutcome::Fixed);
    assert_eq!(
        f.relax_perms(Ipa(0), Prot::W).unwrap(),
        FaultOutcome::Spurious
    );
    assert_eq!(
        f.relax_perms(Ipa(0x40_0000), Prot::W).unwrap(),
        FaultOutcome::Retry,
        "no leaf"
    );
    assert_eq!(
        f.mkyoung(Ipa(K4)).unwrap(),
        FaultOutcome::Spurious,
        "already young"
    );
    assert_eq!(f.mkyoung(Ipa(0x40_0000)).unwrap(), FaultOutcome::Retry);
}

#[test]
fn fault_map_block_over_table_defers_the_free() {
    let mm = HeapMemory::new(4096);
    let mut t = Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), mm.clone()).unwrap();
    let f = t.fault_handler();
    assert_eq!(
        f.map(Ipa(0), K4, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap(),
        FaultOutcome::Fixed
    );
    assert_eq!(
        f.map(Ipa(0), 2 << 20, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap(),
        FaultOutcome::Fixed
    );
    assert_eq!(mm.stats().deferred_frees, 1);
    assert!(mm.quiesce());
    check_invariants(&mut t).unwrap();
}

// ---- The rest of the table in DESIGN.md section 1, variant by variant ----

/// Every entry of a walk over `n` mapped pages, with pre and post visits:
/// (kind, level, address).
type Trace = Vec<(VisitKind, i8, u64)>;

const ALL_VISITS: WalkFlags = WalkFlags::LEAF
    .union(WalkFlags::TABLE_PRE)
    .union(WalkFlags::TABLE_POST);

fn trace<C: pgwalk::Capability>(
    ctx: &pgwalk::visit::VisitCtx<'_, C, HeapMemory>,
) -> (VisitKind, i8, u64) {
    (ctx.kind(), ctx.level().get(), ctx.addr().get())
}

#[test]
fn exclusive_stop_ends_the_walk_at_once_keeping_earlier_changes() {
    let mut t = table_with_pages(4);
    let mut visited = Vec::new();
    let w = t.exclusive().walk(Ipa(0), 4 * K4, WalkFlags::LEAF, |ctx| {
        visited.push(ctx.addr().get());
        if ctx.addr() == Ipa(2 * K4) {
            return Err(Unfinished::Stop(Error::EmptyRange));
        }
        let old = ctx.old();
        ctx.set(old.with_writable(false));
        Ok(Action::Continue)
    });
    assert_eq!(w.unwrap_err(), Error::EmptyRange);
    assert_eq!(
        visited,
        [0, K4, 2 * K4],
        "nothing after the stop is visited"
    );
    let h = t.shared();
    assert!(!h.get_leaf(Ipa(0)).unwrap().0.writable());
    assert!(!h.get_leaf(Ipa(K4)).unwrap().0.writable());
    assert!(h.get_leaf(Ipa(2 * K4)).unwrap().0.writable());
    assert!(h.get_leaf(Ipa(3 * K4)).unwrap().0.writable());
    check_invariants(&mut t).unwrap();
}

#[test]
fn exclusive_stop_in_table_visits() {
    for stop_at in [VisitKind::TablePre, VisitKind::TablePost] {
        let mut t = table_with_pages(2);
        let mut seen: Trace = Vec::new();
        let w = t.exclusive().walk(Ipa(0), 2 * K4, ALL_VISITS, |ctx| {
            seen.push(trace(ctx));
            if ctx.kind() == stop_at {
                return Err(Unfinished::Stop(Error::EmptyRange));
            }
            Ok(Action::Continue)
        });
        assert_eq!(w.unwrap_err(), Error::EmptyRange);
        assert_eq!(seen.last().unwrap().0, stop_at);
        assert_eq!(seen.iter().filter(|v| v.0 == stop_at).count(), 1);
    }
}

#[test]
fn exclusive_error_of_the_callers_type() {
    #[derive(Debug, PartialEq)]
    enum Mine {
        Table(Error),
        Refused(u64),
    }
    impl From<Error> for Mine {
        fn from(e: Error) -> Self {
            Mine::Table(e)
        }
    }
    let mut t = table_with_pages(2);
    let w = t
        .exclusive()
        .walk_with::<Mine, _>(Ipa(0), 2 * K4, WalkFlags::LEAF, |ctx| {
            Err(Unfinished::Stop(Mine::Refused(ctx.addr().get())))
        });
    assert_eq!(w.unwrap_err(), Mine::Refused(0));
    // A walk that cannot start reports pgwalk's error in the caller's type.
    let w = t
        .exclusive()
        .walk_with::<Mine, _>(Ipa(1 << 40), K4, WalkFlags::LEAF, |_| Ok(Action::Continue));
    assert!(matches!(w, Err(Mine::Table(Error::OutOfRange { .. }))));
}

#[test]
fn shared_continue_visits_everything_in_order() {
    let t = table_with_pages(2);
    let mut seen: Trace = Vec::new();
    let w = t.shared().walk(Ipa(0), 2 * K4, ALL_VISITS, |ctx| {
        seen.push(trace(ctx));
        Ok(Action::Continue)
    });
    assert!(w.unwrap().is_completed());
    let start = t.geometry().start_level().get();
    let mut expect: Trace = Vec::new();
    for l in start..3 {
        expect.push((VisitKind::TablePre, l, 0));
    }
    expect.push((VisitKind::Leaf, 3, 0));
    expect.push((VisitKind::Leaf, 3, K4));
    for l in (start..3).rev() {
        expect.push((VisitKind::TablePost, l, 0));
    }
    assert_eq!(seen, expect);
}

#[test]
fn shared_retry_on_table_post_visits_it_again() {
    let t = table_with_pages(2);
    let mut posts = Vec::new();
    let mut leaves = 0;
    let w = t.shared().walk(Ipa(0), 2 * K4, ALL_VISITS, |ctx| {
        match ctx.kind() {
            VisitKind::TablePost => {
                posts.push(ctx.level().get());
                if posts.len() == 1 {
                    return Err(Unfinished::Retry(RetryEntry(Conflict::Raced)));
                }
            }
            VisitKind::Leaf => leaves += 1,
            VisitKind::TablePre => {}
        }
        Ok(Action::Continue)
    });
    assert!(w.unwrap().is_completed());
    // The level-2 post-visit ran twice; its children were not walked again.
    assert_eq!(posts[0], posts[1]);
    assert_eq!(
        posts.len(),
        3 - t.geometry().start_level().get() as usize + 1
    );
    assert_eq!(leaves, 2);
}

#[test]
fn shared_retry_on_table_pre_visits_it_again_then_descends() {
    let t = table_with_pages(2);
    let mut pre = 0;
    let mut leaves = 0;
    let w = t.shared().walk(
        Ipa(0),
        2 * K4,
        WalkFlags::LEAF | WalkFlags::TABLE_PRE,
        |ctx| {
            if ctx.kind() == VisitKind::TablePre && ctx.level().get() == 2 {
                pre += 1;
                if pre == 1 {
                    Err(Conflict::Raced)?;
                }
            }
            if ctx.kind() == VisitKind::Leaf {
                leaves += 1;
            }
            Ok(Action::Continue)
        },
    );
    assert!(w.unwrap().is_completed());
    assert_eq!((pre, leaves), (2, 2));
}

#[test]
fn shared_skip_at_a_leaf_moves_to_the_next_entry() {
    let t = table_with_pages(3);
    let mut visited = Vec::new();
    let w = t.shared().walk(Ipa(0), 3 * K4, WalkFlags::LEAF, |ctx| {
        visited.push(ctx.addr().get());
        Ok(Action::SKIP)
    });
    assert!(w.unwrap().is_completed());
    assert_eq!(visited, [0, K4, 2 * K4]);
}

#[test]
fn shared_skip_at_a_block_does_not_split_or_descend() {
    let mut t = table_with_pages(0);
    t.exclusive()
        .map(Ipa(0), 2 << 20, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap();
    let mut visits = 0;
    let w = t.shared().walk(Ipa(0), 4 << 20, WalkFlags::LEAF, |_| {
        visits += 1;
        Ok(Action::SKIP)
    });
    assert!(w.unwrap().is_completed());
    assert_eq!(visits, 2, "the block and the empty entry after it");
}

#[test]
fn shared_stop_returns_the_error() {
    let t = table_with_pages(3);
    let mut visits = 0;
    let w = t.shared().walk(Ipa(0), 3 * K4, WalkFlags::LEAF, |_| {
        visits += 1;
        if visits == 2 {
            return Err(Unfinished::Stop(Error::EmptyRange));
        }
        Ok(Action::Continue)
    });
    assert_eq!(w.unwrap_err(), Error::EmptyRange);
    assert_eq!(visits, 2);
}

#[test]
fn fault_handler_continue_visits_everything() {
    let t = table_with_pages(3);
    let mut seen: Trace = Vec::new();
    let w = t.fault_handler().walk(Ipa(0), 3 * K4, ALL_VISITS, |ctx| {
        seen.push(trace(ctx));
        Ok(Action::Continue)
    });
    assert_eq!(w.unwrap(), Walked::Completed);
    assert_eq!(seen.iter().filter(|v| v.0 == VisitKind::Leaf).count(), 3);
}

#[test]
fn fault_handler_resume_from_table_visits() {
    for at in [VisitKind::TablePre, VisitKind::TablePost] {
        let t = table_with_pages(2);
        let mut leaves = 0;
        let w = t.fault_handler().walk(Ipa(0), 2 * K4, ALL_VISITS, |ctx| {
            if ctx.kind() == VisitKind::Leaf {
                leaves += 1;
            }
            if ctx.kind() == at {
                return Err(Unfinished::ResumeGuest(ResumeReason::Spurious));
            }
            Ok(Action::Continue)
        });
        assert_eq!(w.unwrap(), Walked::ResumeGuest(ResumeReason::Spurious));
        // Resuming at the first pre-visit stops before any leaf; at the
        // first post-visit, after the leaves below it.
        assert_eq!(leaves, if at == VisitKind::TablePre { 0 } else { 2 });
    }
}

#[test]
fn fault_handler_conflict_raced_becomes_resume_raced() {
    let t = table_with_pages(1);
    let w = t.fault_handler().walk(Ipa(0), K4, WalkFlags::LEAF, |_| {
        Err(Conflict::Raced)?;
        Ok(Action::Continue)
    });
    assert_eq!(w.unwrap(), Walked::ResumeGuest(ResumeReason::Raced));
    assert_eq!(
        FaultOutcome::from_resume(ResumeReason::Raced),
        FaultOutcome::Retry
    );
    assert_eq!(
        FaultOutcome::from_resume(ResumeReason::Gone),
        FaultOutcome::Retry
    );
    assert_eq!(
        FaultOutcome::from_resume(ResumeReason::Spurious),
        FaultOutcome::Spurious
    );
}

// ---- A walker that meets a break in progress treats it as a race ----

/// A host that can hold the first per-entry TLB invalidation it is asked
/// for: a walker doing break-before-make then waits with the locked marker
/// in the entry, between the break and the make.
#[derive(Clone)]
struct Gated {
    mm: HeapMemory,
    armed: Arc<AtomicBool>,
    holding: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl Gated {
    fn new() -> Gated {
        Gated {
            mm: HeapMemory::new(256),
            armed: Arc::new(AtomicBool::new(false)),
            holding: Arc::new(AtomicBool::new(false)),
            release: Arc::new(AtomicBool::new(false)),
        }
    }

    fn wait_until_holding(&self) {
        while !self.holding.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }
}

// SAFETY: every method forwards to a HeapMemory, which upholds the
// contract; holding a TLB invalidation only delays the caller.
unsafe impl MemoryOps for Gated {
    type PagePool = ();

    fn zalloc_page(&self, cache: &mut ()) -> Option<PhysAddr> {
        self.mm.zalloc_page(cache)
    }
    fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
        self.mm.zalloc_pages_exact(size)
    }
    unsafe fn free_pages_exact(&self, pa: PhysAddr, size: usize) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.free_pages_exact(pa, size) }
    }
    unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.free_unlinked_table(table, level) }
    }
    unsafe fn get_page(&self, pa: PhysAddr) {
        // SAFETY: forwarded with the caller's promise.
        unsafe { self.mm.get_page(pa) }
    }
    unsafe fn put_page(&self, pa: PhysAddr) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.put_page(pa) }
    }
    fn page_count(&self, pa: PhysAddr) -> usize {
        self.mm.page_count(pa)
    }
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        self.mm.phys_to_virt(pa)
    }
    fn dcache_clean_inval_poc(&self, pa: PhysAddr, size: u64) {
        self.mm.dcache_clean_inval_poc(pa, size)
    }
    fn icache_inval_pou(&self, pa: PhysAddr, size: u64) {
        self.mm.icache_inval_pou(pa, size)
    }
    fn shared_walk<R>(&self, walk: impl FnOnce() -> R) -> R {
        self.mm.shared_walk(walk)
    }
    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, level: Level) {
        if self.armed.swap(false, Ordering::AcqRel) {
            self.holding.store(true, Ordering::Release);
            while !self.release.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }
        self.mm.tlb_flush_vmid_ipa(ipa, level)
    }
    fn tlb_flush_vmid_range(&self, ipa: Ipa, size: u64) {
        self.mm.tlb_flush_vmid_range(ipa, size)
    }
    fn tlb_flush_vmid(&self) {
        self.mm.tlb_flush_vmid()
    }
}

#[test]
fn a_locked_entry_is_a_race_for_every_capability() {
    const OLD: u64 = 0x8000_0000;
    const NEW: u64 = 0x9000_0000;
    let gated = Gated::new();
    let mut t =
        Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), gated.clone()).unwrap();
    t.exclusive()
        .map(Ipa(0), K4, PhysAddr(OLD), Prot::RW, &mut ())
        .unwrap();
    let t = &t;
    let finished = AtomicUsize::new(0);
    gated.armed.store(true, Ordering::Release);
    std::thread::scope(|s| {
        // A vCPU remaps the page: break, then held in the TLB invalidation.
        let remap = s.spawn(|| {
            t.fault_handler()
                .map(Ipa(0), K4, PhysAddr(NEW), Prot::RW, &mut ())
                .unwrap()
        });
        gated.wait_until_holding();
        // Whatever fails below, let the held walker finish so the scope ends.
        let _release = ReleaseOnDrop(&gated.release);

        // The fault path resumes the guest: it will fault again.
        let f = t.fault_handler();
        let again = f.map(Ipa(0), K4, PhysAddr(OLD), Prot::RW, &mut ()).unwrap();
        assert_eq!(again, FaultOutcome::Retry);
        assert_eq!(f.relax_perms(Ipa(0), Prot::X).unwrap(), FaultOutcome::Retry);
        assert_eq!(f.mkyoung(Ipa(0)).unwrap(), FaultOutcome::Retry);
        let w = t.fault_handler().walk(Ipa(0), K4, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            // The marker holds the count of the entry it stands in for.
            assert!(old.is_locked() && !old.is_valid() && old.is_counted());
            ctx.try_set(old.with_writable(false))?;
            Ok(Action::Continue)
        });
        assert_eq!(w.unwrap(), Walked::ResumeGuest(ResumeReason::Raced));

        // Shared walkers retry the entry until the make: they finish only
        // after it, on the new value (never the marker).
        let finished = &finished;
        let wrprotect = s.spawn(move || {
            let h = t.shared();
            h.wrprotect(Ipa(0), K4).unwrap().flush();
            finished.fetch_add(1, Ordering::AcqRel);
        });
        let lookup = s.spawn(move || {
            let leaf = t.shared().get_leaf(Ipa(0)).unwrap().0;
            finished.fetch_add(1, Ordering::AcqRel);
            leaf
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(
            finished.load(Ordering::Acquire),
            0,
            "a shared walker went past a locked entry"
        );
        gated.release.store(true, Ordering::Release);
        assert_eq!(remap.join().unwrap(), FaultOutcome::Fixed);
        wrprotect.join().unwrap();
        let seen = lookup.join().unwrap();
        assert!(!seen.is_locked(), "get_leaf reported the marker");
        assert_eq!(seen.output_address(Granule::Size4KiB), PhysAddr(NEW));
        let leaf = t.shared().get_leaf(Ipa(0)).unwrap().0;
        assert_eq!(leaf.output_address(Granule::Size4KiB), PhysAddr(NEW));
        assert!(!leaf.writable(), "the wrprotect landed on the new entry");
    });
    check_invariants_of(t);
}

struct ReleaseOnDrop<'a>(&'a AtomicBool);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The host checks of `check_invariants`, for a table over a `Gated` host:
/// counts and leaks through the inner `HeapMemory`.
fn check_invariants_of(t: &Stage2<Gated>) {
    let h = t.shared();
    let (leaf, level) = h.get_leaf(Ipa(0)).unwrap();
    assert!(leaf.is_valid() && level.is_last());
    let mm = &t.mm().mm;
    assert!(mm.quiesce());
    assert_eq!(mm.stats().double_frees, 0);
    // Root, level-2 and level-3 tables (40-bit IPA starts at level 1).
    assert_eq!(mm.live_pages(), t.geometry().root_pages() + 2);
}

#[test]
#[should_panic(expected = "need the Exclusive capability")]
fn shared_visitor_cannot_unmap_through_try_set() {
    let t = table_with_pages(1);
    let _ = t.shared().walk(Ipa(0), K4, WalkFlags::LEAF, |ctx| {
        ctx.try_set(pgwalk::descriptor::Descriptor::INVALID)?;
        Ok(Action::Continue)
    });
}

/// Found by the Rust hypervisor (dirty logging): a fault-path map of one
/// page over a write-protected block split the block but answered
/// `Spurious`, as if nothing had changed. A split is a change: `Fixed`, and
/// the split keeps the block's permissions for `relax_perms` to widen.
#[test]
fn a_fault_path_map_that_splits_a_block_is_fixed() {
    let mut t = table_with_pages(0);
    let m2 = 2 << 20;
    t.exclusive()
        .map(Ipa(0), m2, PhysAddr(0x8000_0000), Prot::RW, &mut ())
        .unwrap();
    t.shared().wrprotect(Ipa(0), m2).unwrap().flush();
    let f = t.fault_handler();
    let outcome = f
        .map_with(
            Ipa(K4),
            K4,
            PhysAddr(0x8000_0000 + K4),
            Prot::RW,
            &mut (),
            pgwalk::MapOptions::new().pages_only(),
        )
        .unwrap();
    assert_eq!(outcome, FaultOutcome::Fixed);
    let (leaf, level) = f.get_leaf(Ipa(K4)).unwrap();
    assert_eq!(level.get(), 3, "the block is split");
    assert!(!leaf.writable(), "with the block's permissions");
    assert_eq!(
        f.relax_perms(Ipa(K4), Prot::W).unwrap(),
        FaultOutcome::Fixed
    );
    // The same map again changes nothing.
    assert_eq!(
        f.map(Ipa(K4), K4, PhysAddr(0x8000_0000 + K4), Prot::RW, &mut ())
            .unwrap(),
        FaultOutcome::Spurious
    );
    check_invariants(&mut t).unwrap();
}

//! The walk and the capability model (`src/walk/`, `src/capability.rs`):
//! what each typed action does under each capability, as the return-code
//! table in DESIGN.md says, visit order, range rounding, and visitors'
//! own updates.

mod common;

use common::*;
use pgwalk::descriptor::Descriptor;
use pgwalk::fault::TableOutcome;
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::visit::{
    Action, Conflict, ResumeReason, RetryEntry, Unfinished, VisitKind, WalkFlags, Walked,
};
use pgwalk::{Error, Ipa, PhysAddr, Prot, Stage2};

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

// ---- The rest of the table in DESIGN.md section 1, variant by variant ----

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
        TableOutcome::from_resume(ResumeReason::Raced),
        TableOutcome::Retry
    );
    assert_eq!(
        TableOutcome::from_resume(ResumeReason::Gone),
        TableOutcome::Retry
    );
    assert_eq!(
        TableOutcome::from_resume(ResumeReason::Spurious),
        TableOutcome::Spurious
    );
}

// ---- Order, range and the exclusive visitor's own updates ----

#[test]
fn walk_visits_pre_leaf_post_in_order() {
    let mut t = table(40);
    map(&mut t, 0, 2 * K4, 0x8000_0000, Prot::R).unwrap();
    let mut seen = Vec::new();
    let flags = WalkFlags::LEAF | WalkFlags::TABLE_PRE | WalkFlags::TABLE_POST;
    let walked = t
        .exclusive()
        .walk(Ipa(0), 2 * K4, flags, |ctx| {
            seen.push((ctx.kind(), ctx.level().get(), ctx.addr().get()));
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    use pgwalk::visit::VisitKind::*;
    assert_eq!(
        seen,
        [
            (TablePre, 1, 0),
            (TablePre, 2, 0),
            (Leaf, 3, 0),
            (Leaf, 3, K4),
            (TablePost, 2, 0),
            (TablePost, 1, 0)
        ]
    );
}

#[test]
fn walk_page_aligns_and_rejects_out_of_range() {
    let mut t = table(32);
    let mut n = 0;
    let w = t
        .exclusive()
        .walk(Ipa(0x1800), 0x1000, WalkFlags::LEAF, |_| {
            n += 1;
            Ok(Action::Continue)
        });
    assert!(w.is_ok());
    // 0x1800..0x2800 widens to 0x1000..0x3000; empty table: one level-2 leaf
    // (invalid) covers both pages.
    assert_eq!(n, 1);
    let e = t
        .exclusive()
        .walk(Ipa(0xffff_f000), 0x2000, WalkFlags::LEAF, |_| {
            Ok(Action::Continue)
        });
    assert!(matches!(e, Err(Error::OutOfRange { .. })));
}

#[test]
fn stop_ends_the_walk_with_the_visitors_error() {
    let mut t = table(40);
    map(&mut t, 0, 4 * K4, 0x8000_0000, Prot::R).unwrap();
    let mut visits = 0;
    let r = t.exclusive().walk(Ipa(0), 4 * K4, WalkFlags::LEAF, |ctx| {
        visits += 1;
        if ctx.addr() == Ipa(2 * K4) {
            return Err(pgwalk::visit::Unfinished::Stop(Error::NoRegion {
                addr: 2 * K4,
            }));
        }
        Ok(Action::Continue)
    });
    assert_eq!(r.unwrap_err(), Error::NoRegion { addr: 2 * K4 });
    assert_eq!(visits, 3);
}

#[test]
fn visitor_set_keeps_counts() {
    let mut t = table(40);
    map(&mut t, 0, 4 * K4, 0x8000_0000, Prot::RW).unwrap();
    // Clear two pages and write-protect another through a custom visitor.
    let w = t.exclusive().walk(Ipa(0), 3 * K4, WalkFlags::LEAF, |ctx| {
        let old = ctx.old();
        if ctx.addr().get() < 2 * K4 {
            ctx.set(Descriptor::INVALID);
        } else {
            ctx.set(old.with_writable(false));
        }
        Ok(Action::Continue)
    });
    assert!(w.unwrap().is_completed());
    assert_eq!(check(&mut t).leaves[3], 2);
}

#[test]
#[should_panic(expected = "visitors may change leaves only")]
fn visitor_cannot_overwrite_a_table_entry() {
    let mut t = table(40);
    map(&mut t, 0, K4, 0x8000_0000, Prot::RW).unwrap();
    let _ = t.exclusive().walk(Ipa(0), K4, WalkFlags::TABLE_PRE, |ctx| {
        ctx.set(Descriptor::INVALID);
        Ok(Action::Continue)
    });
}

#[test]
fn a_walk_that_panics_still_makes_the_invalidation_it_owes() {
    // With SKIP_BBM_TLBI the leaves' invalidations are left to the end of
    // the walk. A visitor that panics after clearing a leaf must not leave
    // the cleared page reachable through a stale TLB entry once the panic
    // is caught (a C boundary catches every one): the walk's range is
    // invalidated while it unwinds.
    let mut t = table(40);
    map(&mut t, 0, 2 * K4, 0x8000_0000, Prot::RW).unwrap();
    let (range0, ipa0) = (t.mm().stats().tlbi_range, t.mm().stats().tlbi_ipa);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let flags = WalkFlags::LEAF | WalkFlags::SKIP_BBM_TLBI;
        let _ = t.exclusive().walk(Ipa(0), 2 * K4, flags, |ctx| {
            if ctx.addr().get() == K4 {
                panic!("the visitor fails after its first update");
            }
            ctx.set(Descriptor::INVALID);
            Ok(Action::Continue)
        });
    }));
    assert!(caught.is_err());
    let stats = t.mm().stats();
    assert_eq!(
        stats.tlbi_ipa, ipa0,
        "the leaf's own invalidation was skipped"
    );
    assert_eq!(
        stats.tlbi_range,
        range0 + 1,
        "the walk's range is invalidated"
    );
    // And a walk that ends normally makes it once, as before.
    let flags = WalkFlags::LEAF | WalkFlags::SKIP_BBM_TLBI;
    let w = t.exclusive().walk(Ipa(K4), K4, flags, |ctx| {
        ctx.set(Descriptor::INVALID);
        Ok(Action::Continue)
    });
    assert!(w.unwrap().is_completed());
    assert_eq!(t.mm().stats().tlbi_range, range0 + 2);
}

/// The one invalidation a `SKIP_BBM_TLBI` walk owes covers exactly the
/// walk's page-aligned range: its start and its length, not just "some
/// range", so that a walk not starting at 0 neither leaves the end of its
/// range stale nor invalidates beyond it.
#[test]
fn a_skip_bbm_walk_invalidates_exactly_its_range_once() {
    use common::watched::{Call, Watch, Watched};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Ranges(Arc<Mutex<Vec<(u64, u64)>>>);
    impl Watch for Ranges {
        fn see(&self, _: &HeapMemory, call: Call) {
            if let Call::TlbiRange(ipa, size) = call {
                self.0.lock().unwrap().push((ipa.get(), size));
            }
        }
    }
    let ranges = Ranges::default();
    let mm = Watched {
        mm: HeapMemory::new(64),
        watch: ranges.clone(),
    };
    let mut t = Stage2::with_geometry(geometry(), mm).unwrap();
    map(&mut t, 0, 8 * K4, RAM, Prot::RW).unwrap();
    ranges.0.lock().unwrap().clear();
    let flags = WalkFlags::LEAF | WalkFlags::SKIP_BBM_TLBI;
    // 3 KiB into page 2 for 2 pages: page-aligned outwards to pages 2..5.
    let w = t
        .exclusive()
        .walk(Ipa(2 * K4 + 0xc00), 2 * K4, flags, |ctx| {
            ctx.set(Descriptor::INVALID);
            Ok(Action::Continue)
        });
    assert!(w.unwrap().is_completed());
    assert_eq!(*ranges.0.lock().unwrap(), [(2 * K4, 3 * K4)]);
}

/// A walk that visits tables but not leaves still steps over the leaf
/// tables it does not enter: the next table it meets is visited at the
/// address where its range starts, and the walk reaches the end of its
/// range.
#[test]
fn a_walk_without_leaves_visits_the_next_table_where_its_range_starts() {
    let mut t = Stage2::with_geometry(geometry(), HeapMemory::new(64)).unwrap();
    // One page in each of two 2 MiB regions: two leaf tables under one
    // level-2 table.
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    map(&mut t, M2, K4, RAM + K4, Prot::RW).unwrap();
    let mut seen = Vec::new();
    let flags = WalkFlags::TABLE_PRE | WalkFlags::TABLE_POST;
    // From inside the first leaf table, so that the step over it starts
    // part-way in.
    let w = t
        .exclusive()
        .walk(Ipa(3 * K4), 2 * M2 - 3 * K4, flags, |ctx| {
            seen.push((ctx.kind(), ctx.level().get(), ctx.addr().get()));
            Ok(Action::Continue)
        });
    assert!(w.unwrap().is_completed());
    use VisitKind::{TablePost as Post, TablePre as Pre};
    assert_eq!(
        seen,
        [
            (Pre, 1, 3 * K4),
            (Pre, 2, 3 * K4),
            (Post, 2, 3 * K4),
            (Pre, 2, M2),
            (Post, 2, M2),
            (Post, 1, 3 * K4),
        ]
    );
}

/// A one-page walk whose visitor keeps retrying an entry above the last
/// level names that entry in its error: its address and level, as the range
/// walk does, so that a livelock report points at the entry that caused it.
#[test]
fn a_one_page_walk_that_retries_too_often_names_the_entry() {
    let mm = HeapMemory::new(64);
    mm.set_retry_limit(8);
    let mut t = Stage2::with_geometry(geometry(), mm).unwrap();
    map(&mut t, G1, K4, RAM, Prot::RW).unwrap();
    // 4 MiB above it the level-2 entry is empty: a leaf visit at level 2,
    // for a page that is not the entry's first.
    let mut visits = 0;
    let w = t
        .shared()
        .walk(Ipa(G1 + 2 * M2 + K4), K4, WalkFlags::LEAF, |_| {
            visits += 1;
            Err(Unfinished::Retry(RetryEntry(Conflict::Raced)))
        });
    match w {
        Err(Error::RetryLimit { addr, level }) => {
            assert_eq!((addr, level.get()), (G1 + 2 * M2, 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(visits, 8, "as many visits as the limit");
}

/// A table entry a shared visitor skips is stepped over whole: the walk
/// resumes at the next entry's first address, entering that entry's table
/// at the place its range starts, and visits nothing under the skipped one.
#[test]
fn a_skipped_table_entry_resumes_the_walk_at_the_next_entry() {
    let mut t = Stage2::with_geometry(geometry(), HeapMemory::new(64)).unwrap();
    // Two leaf tables under one level-2 table, as above.
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    map(&mut t, M2, 2 * K4, RAM + K4, Prot::RW).unwrap();
    let mut seen = Vec::new();
    // From part-way into the first leaf table, so that the entry skipped
    // is not entered at its first address.
    let w = t.shared().walk(
        Ipa(3 * K4),
        M2 - K4,
        WalkFlags::LEAF | WalkFlags::TABLE_PRE,
        |ctx| {
            seen.push((ctx.kind(), ctx.level().get(), ctx.addr().get()));
            if ctx.kind() == VisitKind::TablePre && ctx.level().get() == 2 && ctx.addr().get() < M2
            {
                return Ok(Action::SKIP);
            }
            Ok(Action::Continue)
        },
    );
    assert!(w.unwrap().is_completed());
    use VisitKind::{Leaf, TablePre as Pre};
    assert_eq!(
        seen,
        [
            (Pre, 1, 3 * K4),
            (Pre, 2, 3 * K4),
            (Pre, 2, M2),
            (Leaf, 3, M2),
            (Leaf, 3, M2 + K4),
        ]
    );
}

/// A post-order visit that keeps retrying names its table entry in the
/// `RetryLimit` error: the entry's first address, not the walk's, which may
/// start part-way into it.
#[test]
fn a_table_post_visit_that_retries_too_often_names_the_entry() {
    let mm = HeapMemory::new(64);
    mm.set_retry_limit(8);
    let mut t = Stage2::with_geometry(geometry(), mm).unwrap();
    map(&mut t, G1 + 2 * M2, K4, RAM, Prot::RW).unwrap();
    let mut posts = 0;
    let w = t.shared().walk(
        Ipa(G1 + 2 * M2 + 3 * K4),
        K4,
        WalkFlags::LEAF | WalkFlags::TABLE_POST,
        |ctx| {
            if ctx.kind() == VisitKind::TablePost {
                posts += 1;
                return Err(Unfinished::Retry(RetryEntry(Conflict::Raced)));
            }
            Ok(Action::Continue)
        },
    );
    match w {
        Err(Error::RetryLimit { addr, level }) => {
            assert_eq!((addr, level.get()), (G1 + 2 * M2, 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(posts, 8, "as many post-order visits as the limit");
}

/// Every visit's context reports the flags its walk was given, whatever
/// the kind of visit.
#[test]
fn every_visit_reports_the_walks_flags() {
    let mut t = table_with_pages(2);
    for flags in [
        WalkFlags::LEAF,
        WalkFlags::TABLE_PRE,
        WalkFlags::LEAF | WalkFlags::TABLE_POST,
        ALL_VISITS,
    ] {
        let mut visits = 0;
        let w = t.exclusive().walk(Ipa(0), 2 * K4, flags, |ctx| {
            assert_eq!(ctx.flags(), flags, "in a {:?} visit", ctx.kind());
            visits += 1;
            Ok(Action::Continue)
        });
        assert!(w.unwrap().is_completed());
        assert!(visits > 0, "{flags:?}: something was visited");
    }
}

/// What a visit says of its entry's place: level, address, entry start,
/// entry size, and whether the walk covers the entry.
fn place<C: pgwalk::Capability>(
    ctx: &pgwalk::visit::VisitCtx<'_, C, HeapMemory>,
) -> (i8, u64, u64, u64, bool) {
    (
        ctx.level().get(),
        ctx.addr().get(),
        ctx.entry_addr().get(),
        ctx.entry_size(),
        ctx.covers_entry(),
    )
}

/// What a visit says of its entry's place, on a walk that starts and ends
/// inside pages and inside a block: the walk is paged outwards, so every
/// page it visits is its entry's start and wholly covered, while a block
/// it starts inside is not covered and starts before the walk.
#[test]
fn a_visit_names_its_entrys_start_and_size_and_whether_the_walk_covers_it() {
    let mut t = Stage2::with_geometry(geometry(), HeapMemory::new(64)).unwrap();
    // Pages 1..4 of the first 2 MiB, and a 2 MiB block after them.
    map(&mut t, K4, 3 * K4, RAM + K4, Prot::RW).unwrap();
    map(&mut t, M2, M2, RAM + M2, Prot::RW).unwrap();
    let mut seen = Vec::new();
    // From 1.5 KiB into page 1 to 3 KiB into the block's second page.
    let w = t.exclusive().walk(
        Ipa(K4 + 0x600),
        M2 + K4 + 0xc00 - (K4 + 0x600),
        WalkFlags::LEAF,
        |ctx| {
            if ctx.old().is_valid() {
                seen.push(place(ctx));
            }
            Ok(Action::Continue)
        },
    );
    assert!(w.unwrap().is_completed());
    assert_eq!(
        seen,
        [
            (3, K4, K4, K4, true),
            (3, 2 * K4, 2 * K4, K4, true),
            (3, 3 * K4, 3 * K4, K4, true),
            // Paged out to the end of the block's second page: the block
            // is visited where its range starts, and not covered.
            (2, M2, M2, M2, false),
        ]
    );
    // A one-page walk from inside a page and from inside the block.
    for (ipa, want) in [
        (2 * K4 + 0x10, (3, 2 * K4, 2 * K4, K4, true)),
        (M2 + 5 * K4 + 0x10, (2, M2 + 5 * K4, M2, M2, false)),
    ] {
        let mut got = None;
        let w = t.exclusive().walk(Ipa(ipa), 1, WalkFlags::LEAF, |ctx| {
            got = Some(place(ctx));
            Ok(Action::Continue)
        });
        assert!(w.unwrap().is_completed());
        assert_eq!(got, Some(want), "one-page walk at {ipa:#x}");
    }
}

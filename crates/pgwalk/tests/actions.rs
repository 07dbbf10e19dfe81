//! Each typed action does what the return-code table in DESIGN.md says,
//! for each walker kind.

use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::{
    Action, Conflict, Error, FaultOutcome, Geometry, Ipa, PhysAddr, Prot, ResumeReason, RetryEntry,
    Stage2, Unfinished, VisitKind, WalkFlags, Walked,
};

const K4: u64 = 4 << 10;

fn table_with_pages(n: u64) -> Stage2<HeapMemory> {
    let mut t = Stage2::with_geometry(
        Geometry::for_ia_bits(40, 48).unwrap(),
        HeapMemory::new(4096),
    )
    .unwrap();
    if n > 0 {
        t.exclusive()
            .map(
                Ipa(0),
                n * K4,
                PhysAddr(0x8000_0000),
                Prot::RW,
                &mut (),
                WalkFlags::empty(),
            )
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
    let t = table_with_pages(0);
    let h = t.fault_handler();
    let r = h
        .map(
            Ipa(0x10_0000),
            K4,
            PhysAddr(0x9000_0000),
            Prot::RW,
            &mut (),
            WalkFlags::empty(),
        )
        .unwrap();
    assert_eq!(r, FaultOutcome::Fixed);
    let r = h
        .map(
            Ipa(0x10_0000),
            K4,
            PhysAddr(0x9000_0000),
            Prot::RW,
            &mut (),
            WalkFlags::empty(),
        )
        .unwrap();
    assert_eq!(r, FaultOutcome::Spurious);
    // Permissions alone differ: the map leaves it to relax_perms.
    let r = h
        .map(
            Ipa(0x10_0000),
            K4,
            PhysAddr(0x9000_0000),
            Prot::R,
            &mut (),
            WalkFlags::empty(),
        )
        .unwrap();
    assert_eq!(r, FaultOutcome::Spurious);
    check_invariants(&t).unwrap();
}

#[test]
fn attribute_changes_under_shared() {
    let t = table_with_pages(4);
    let h = t.shared();
    let flush = h.wrprotect(Ipa(0), 4 * K4).unwrap();
    let before = t.mm().stats().tlbi_range;
    flush.flush(&h);
    assert_eq!(t.mm().stats().tlbi_range, before + 1);
    assert!(!h.get_leaf(Ipa(K4)).unwrap().0.writable());
    assert!(
        h.test_clear_young(Ipa(0), 4 * K4, true).unwrap(),
        "new leaves are young"
    );
    assert!(
        !h.test_clear_young(Ipa(0), 4 * K4, false).unwrap(),
        "and were made old"
    );
    assert!(h.mkyoung(Ipa(K4)).unwrap());
    assert!(h.test_clear_young(Ipa(K4), K4, false).unwrap());
    h.relax_perms(Ipa(2 * K4), Prot::W).unwrap();
    assert!(h.get_leaf(Ipa(2 * K4)).unwrap().0.writable());
    assert!(h.relax_perms(Ipa(0), Prot::DEVICE).is_err());
    check_invariants(&t).unwrap();
}

#[test]
fn fault_relax_and_mkyoung_outcomes() {
    let t = table_with_pages(2);
    let f = t.fault_handler();
    f.as_shared().wrprotect(Ipa(0), K4).unwrap().flush(&f);
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
    let t = Stage2::with_geometry(Geometry::for_ia_bits(40, 48).unwrap(), mm.clone()).unwrap();
    let f = t.fault_handler();
    assert_eq!(
        f.map(
            Ipa(0),
            K4,
            PhysAddr(0x8000_0000),
            Prot::RW,
            &mut (),
            WalkFlags::empty()
        )
        .unwrap(),
        FaultOutcome::Fixed
    );
    assert_eq!(
        f.map(
            Ipa(0),
            2 << 20,
            PhysAddr(0x8000_0000),
            Prot::RW,
            &mut (),
            WalkFlags::empty()
        )
        .unwrap(),
        FaultOutcome::Fixed
    );
    assert_eq!(mm.stats().deferred_frees, 1);
    assert!(mm.quiesce());
    check_invariants(&t).unwrap();
}

//! The passing twins of the compile-fail suite (`tests/ui`): for every
//! mistake the compiler must reject, the correct version of the same code,
//! which compiles and does what the hypervisor engineer meant. A twin keeps
//! the case honest: if the correct code stopped compiling too, the case
//! would prove nothing about the rule it names.
//!
//! Each test is named after its case in `tests/ui`.

use pgwalk::descriptor::Descriptor;
use pgwalk::fault::{
    FaultOutcome, HostFault, HostPages, MayWrite, PageAnswer, PageRequest, ReadOnly, TableOutcome,
    WriteIntent,
};
use pgwalk::geometry::Geometry;
use pgwalk::host::HeapMemory;
use pgwalk::idmap::MemoryRegion;
use pgwalk::visit::{Action, Conflict, ResumeReason, RetryEntry, Unfinished, WalkFlags, Walked};
use pgwalk::{
    Capability, Error, Handle, HandlesFault, Ipa, PhysAddr, Prot, Shared, SpinStage2, Stage2,
};

const PAGE: u64 = 0x1000;
const RAM: Ipa = Ipa(0x4000_0000);
const HOST_PA: PhysAddr = PhysAddr(0x8000_0000);

/// The cases' table: 40-bit IPA, 4 KiB granule.
fn table() -> Stage2<HeapMemory> {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap()
}

/// A table with `size` bytes of RAM mapped at [`RAM`].
fn table_with_ram(size: u64) -> Stage2<HeapMemory> {
    let mut t = table();
    t.exclusive()
        .map(RAM, size, HOST_PA, Prot::RW, &mut ())
        .unwrap();
    t
}

fn leaf(t: &Stage2<HeapMemory>, ipa: Ipa) -> (Descriptor, i8) {
    let (d, level) = t.shared().get_leaf(ipa).unwrap();
    (d, level.get())
}

/// Twin of `exclusive_visitor_retries`: under the write lock nothing races,
/// so an entry is never found locked and there is nothing to retry.
#[test]
fn exclusive_visitor_retries() {
    let mut t = table_with_ram(PAGE);
    let mut leaves = 0;
    let walked = t
        .exclusive()
        .walk(RAM, PAGE, WalkFlags::LEAF, |ctx| {
            assert!(!ctx.old().is_locked());
            leaves += 1;
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    assert_eq!(leaves, 1);
}

/// Twin of `exclusive_visitor_resumes_guest`: an exclusive walker that
/// cannot go on stops with an error; the caller decides what it means.
#[test]
fn exclusive_visitor_resumes_guest() {
    let mut t = table_with_ram(PAGE);
    let walked = t.exclusive().walk(RAM, PAGE, WalkFlags::LEAF, |ctx| {
        if ctx.old().is_valid() {
            return Err(Unfinished::Stop(Error::AlreadyMapped {
                addr: ctx.addr().get(),
            }));
        }
        Ok(Action::Continue)
    });
    assert_eq!(
        walked.unwrap_err(),
        Error::AlreadyMapped { addr: RAM.get() }
    );
}

/// Twin of `exclusive_visitor_skips`: an exclusive walker continues past an
/// annotated entry (a leaf-level marker, with nothing below it to skip).
#[test]
fn exclusive_visitor_skips() {
    let mut t = table();
    t.exclusive().annotate(RAM, PAGE, 7, &mut ()).unwrap();
    let mut owners = Vec::new();
    let walked = t
        .exclusive()
        .walk(
            RAM,
            1 << 30,
            WalkFlags::LEAF | WalkFlags::TABLE_PRE,
            |ctx| {
                if let Some(owner) = ctx.old().owner() {
                    owners.push(owner);
                }
                Ok(Action::Continue)
            },
        )
        .unwrap();
    assert!(walked.is_completed());
    assert_eq!(owners, [7]);
}

/// Twin of `shared_visitor_resumes_guest`: a walker under the read lock
/// answers a lost race by retrying the entry.
#[test]
fn shared_visitor_resumes_guest() {
    let t = table_with_ram(PAGE);
    let mut attempts = 0;
    let walked = t
        .shared()
        .walk(RAM, PAGE, WalkFlags::LEAF, |ctx| {
            attempts += 1;
            let old = ctx.old();
            // The first attempt plays the loser of a race with another walker.
            let update = if attempts == 1 {
                Err(Conflict::Raced)
            } else {
                ctx.try_set(old.with_writable(false))
            };
            if update.is_err() {
                return Err(Unfinished::Retry(RetryEntry(Conflict::Raced)));
            }
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    assert_eq!(attempts, 2, "the entry was visited again after the retry");
    assert!(!leaf(&t, RAM).0.writable());
}

/// Twin of `fault_handler_visitor_retries`: a fault handler that loses a
/// race resumes the guest, which faults again if it still needs to.
#[test]
fn fault_handler_visitor_retries() {
    let t = table_with_ram(PAGE);
    let age = |lose_race: bool| {
        let mut visits = 0;
        let walked = t
            .fault_handler()
            .walk(RAM, PAGE, WalkFlags::LEAF, |ctx| {
                visits += 1;
                let old = ctx.old();
                // `lose_race` plays the vCPU that another one beat to the entry.
                let update = if lose_race {
                    Err(Conflict::Raced)
                } else {
                    ctx.try_set(old.with_young(true))
                };
                if update.is_err() {
                    return Err(Unfinished::ResumeGuest(ResumeReason::Raced));
                }
                Ok(Action::Continue)
            })
            .unwrap();
        (walked, visits)
    };

    let (walked, visits) = age(true);
    assert_eq!(visits, 1, "a fault handler does not retry the entry");
    assert_eq!(walked, Walked::ResumeGuest(ResumeReason::Raced));
    let outcome = match walked {
        Walked::Completed => TableOutcome::Fixed,
        Walked::ResumeGuest(reason) => TableOutcome::from_resume(reason),
    };
    assert_eq!(outcome, TableOutcome::Retry);

    // The guest faults again; this time nobody races.
    assert_eq!(age(false), (Walked::Completed, 1));
    assert!(leaf(&t, RAM).0.young());
}

/// Twin of `exclusive_visitor_try_set`: the exclusive walker writes with a
/// plain store.
#[test]
fn exclusive_visitor_try_set() {
    let mut t = table_with_ram(PAGE);
    let walked = t
        .exclusive()
        .walk(RAM, PAGE, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            ctx.set(old.with_writable(false));
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    let (d, _) = leaf(&t, RAM);
    assert!(d.is_valid() && !d.writable());
}

/// Race check shared with the concurrent code paths, as in
/// `exclusive_visitor_question_mark_on_conflict`.
fn check_unlocked(d: Descriptor) -> Result<(), Conflict> {
    if d.is_locked() {
        Err(Conflict::Raced)
    } else {
        Ok(())
    }
}

/// Twin of `exclusive_visitor_question_mark_on_conflict`: the race check
/// belongs to concurrent walkers, where `?` turns it into a retry; the
/// exclusive walker needs no such check.
#[test]
fn exclusive_visitor_question_mark_on_conflict() {
    let mut t = table_with_ram(2 * PAGE);
    let mut shared_leaves = 0;
    let walked = t
        .shared()
        .walk(RAM, 2 * PAGE, WalkFlags::LEAF, |ctx| {
            check_unlocked(ctx.old())?;
            shared_leaves += 1;
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    assert_eq!(shared_leaves, 2);

    let mut exclusive_leaves = 0;
    let walked = t
        .exclusive()
        .walk(RAM, 2 * PAGE, WalkFlags::LEAF, |_ctx| {
            exclusive_leaves += 1;
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    assert_eq!(exclusive_leaves, 2);
}

/// Twin of `shared_visitor_plain_store`: under the read lock the entry is
/// updated with compare-and-swap, and a lost race retries it.
#[test]
fn shared_visitor_plain_store() {
    let t = table_with_ram(PAGE);
    let walked = t
        .shared()
        .walk(RAM, PAGE, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            ctx.try_set(old.with_writable(false))?;
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    let (d, _) = leaf(&t, RAM);
    assert!(d.is_valid() && !d.writable());
}

/// Twin of `unmap_through_shared_handle`: unmap under the write lock.
#[test]
fn unmap_through_shared_handle() {
    let lock = SpinStage2::new(table_with_ram(PAGE));
    {
        let mut guard = lock.write();
        guard.exclusive().unmap(RAM, PAGE).unwrap();
    }
    let guard = lock.read();
    assert!(!guard.shared().get_leaf(RAM).unwrap().0.is_valid());
}

/// Twin of `split_through_fault_handler`: split the block under the write
/// lock; what it mapped stays mapped, now by pages.
#[test]
fn split_through_fault_handler() {
    let lock = SpinStage2::new(table_with_ram(2 << 20));
    assert_eq!(leaf(&lock.read(), RAM).1, 2, "a 2 MiB block to start with");
    {
        let mut guard = lock.write();
        let mut exclusive = guard.exclusive();
        exclusive.split(RAM, 2 << 20, &mut ()).unwrap();
    }
    let (d, level) = leaf(&lock.read(), Ipa(RAM.get() + PAGE));
    assert_eq!(level, 3);
    assert_eq!(
        d.output_address(lock.read().geometry().granule()),
        PhysAddr(HOST_PA.get() + PAGE)
    );
}

fn fault_in(t: &Stage2<HeapMemory>, ipa: Ipa) -> Result<TableOutcome, Error> {
    t.fault_handler().map(ipa, PAGE, HOST_PA, Prot::RW, &mut ())
}

/// Twin of `fault_outcome_ignored`: the fault path acts on what happened.
#[test]
fn fault_outcome_ignored() {
    let t = table();
    let mut resumed = Vec::new();
    for _vcpu in 0..2 {
        match fault_in(&t, RAM).unwrap() {
            TableOutcome::Fixed | TableOutcome::Spurious => resumed.push("mapped"),
            TableOutcome::Retry => resumed.push("fault again"),
        }
    }
    assert_eq!(resumed, ["mapped", "mapped"]);
    assert!(leaf(&t, RAM).0.is_valid());
}

/// Twin of `walk_result_ignored`: a fault handler's walk that stopped early
/// is told apart from one that visited everything.
#[test]
fn walk_result_ignored() {
    let t = table_with_ram(PAGE);
    let age = |ipa: Ipa| -> Result<Walked<HandlesFault>, Error> {
        t.fault_handler().walk(ipa, PAGE, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            if !old.is_valid() {
                return Err(Unfinished::ResumeGuest(ResumeReason::Gone));
            }
            ctx.try_set(old.with_young(true))?;
            Ok(Action::Continue)
        })
    };
    assert_eq!(age(RAM).unwrap(), Walked::Completed);
    assert!(leaf(&t, RAM).0.young());
    let unmapped = Ipa(RAM.get() + PAGE);
    assert_eq!(
        age(unmapped).unwrap(),
        Walked::ResumeGuest(ResumeReason::Gone)
    );
}

/// Twin of `fault_outcome_compared_with_zero`: compare with the outcome
/// meant, by name.
#[test]
fn fault_outcome_compared_with_zero() {
    let t = table();
    let outcome = fault_in(&t, RAM).unwrap();
    assert!(outcome == TableOutcome::Fixed);
    assert_eq!(outcome.name(), "fixed");
}

/// Twin of `fault_outcome_as_bool`: ask the question meant ("must the vCPU
/// fault again?") with a match.
#[test]
fn fault_outcome_as_bool() {
    let t = table();
    let first = fault_in(&t, RAM).unwrap();
    let again = fault_in(&t, RAM).unwrap();
    let must_retry = |o: TableOutcome| matches!(o, TableOutcome::Retry);
    assert!(!must_retry(first));
    assert!(!must_retry(again));
    assert_eq!(
        (first, again),
        (TableOutcome::Fixed, TableOutcome::Spurious)
    );
}

/// Twin of `fault_map_answers_emulate`: the table's outcomes are handled
/// with exactly their arms, and emulation comes from `fault_in`, which asks
/// the host.
#[test]
fn fault_map_answers_emulate() {
    let t = table();
    let fault = t.fault_handler();
    let answered = match fault.map(RAM, 0x1000, HOST_PA, Prot::RW, &mut ()).unwrap() {
        TableOutcome::Fixed | TableOutcome::Spurious => "resume",
        TableOutcome::Retry => "fault again",
    };
    assert_eq!(answered, "resume");
    struct NoMemslot;
    impl HostPages for NoMemslot {
        fn page<W: WriteIntent>(&self, _: PageRequest<W>) -> PageAnswer<W> {
            PageAnswer::Fault(HostFault::NoMemory)
        }
    }
    let mmio = fault
        .fault_in(
            &NoMemslot,
            PageRequest::<ReadOnly>::new(Ipa(0x9000_0000), false),
            Prot::RW,
            &mut (),
        )
        .unwrap();
    assert_eq!(mmio, Ok(FaultOutcome::Emulate));
}

/// Counts the valid leaves in a range through a handle of any capability:
/// generic code over the crate's own capabilities, which is how a user crate
/// shares a visitor between walkers.
fn count_leaves<C: Capability>(
    h: &mut Handle<'_, C, HeapMemory>,
    size: u64,
) -> (usize, &'static str) {
    let mut leaves = 0;
    let walked = h
        .walk(RAM, size, WalkFlags::LEAF, |ctx| {
            if ctx.old().is_valid() {
                leaves += 1;
            }
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    (leaves, C::NAME)
}

/// Twin of `capability_implemented_outside`: a user crate writes code
/// generic over the three capabilities instead of inventing a fourth.
#[test]
fn capability_implemented_outside() {
    let mut t = table_with_ram(3 * PAGE);
    assert_eq!(count_leaves(&mut t.exclusive(), 4 * PAGE), (3, "exclusive"));
    assert_eq!(count_leaves(&mut t.shared(), 4 * PAGE), (3, "shared"));
    assert_eq!(
        count_leaves(&mut t.fault_handler(), 4 * PAGE),
        (3, "fault handler")
    );
}

/// Twin of `handle_outlives_write_guard`: bind the guard, so the lock is
/// held for as long as the handle is used.
#[test]
fn handle_outlives_write_guard() {
    let lock = SpinStage2::new(table_with_ram(PAGE));
    {
        let mut guard = lock.write();
        let mut exclusive = guard.exclusive();
        exclusive.unmap(RAM, PAGE).unwrap();
    }
    assert!(!leaf(&lock.read(), RAM).0.is_valid());
}

/// Twin of `handle_used_after_guard_dropped`: copy out what is needed
/// while the lock is held, then release it.
#[test]
fn handle_used_after_guard_dropped() {
    let lock = SpinStage2::new(table_with_ram(PAGE));
    let guard = lock.read();
    let (found, _level) = guard.shared().get_leaf(RAM).unwrap();
    drop(guard);
    assert!(found.is_valid());
    // The lock is free again: a writer can take it.
    assert!(lock.try_write().is_some());
}

/// Twin of `exclusive_while_shared_alive`: the shared walker is done before
/// exclusive access is taken.
#[test]
fn exclusive_while_shared_alive() {
    let mut t = table_with_ram(PAGE);
    let before = t.shared().get_leaf(RAM).unwrap().0;
    t.exclusive().unmap(RAM, PAGE).unwrap();
    let after = t.shared().get_leaf(RAM).unwrap().0;
    assert!(before.is_valid() && !after.is_valid());
}

/// Twin of `idmap_range_used_after_guard_dropped`: the range is found and
/// mapped under one hold of the write lock.
#[test]
fn idmap_range_used_after_guard_dropped() {
    let lock = SpinStage2::new(table());
    let regions = [MemoryRegion {
        start: PhysAddr(0x8000_0000),
        end: PhysAddr(0xc000_0000),
        prot: Prot::RWX,
    }];
    let range = {
        let mut guard = lock.write();
        let mut exclusive = guard.exclusive();
        let mut range = exclusive.idmap_range(Ipa(0x8000_1000), &regions).unwrap();
        range.map(&mut ()).unwrap();
        range.range()
    };
    // The whole 1 GiB region fits one level-1 block around the address.
    assert_eq!(range, (Ipa(0x8000_0000), 1 << 30));
    let guard = lock.read();
    let (d, level) = guard.shared().get_leaf(Ipa(0x8000_1000)).unwrap();
    assert_eq!(level.get(), 1);
    assert_eq!(
        d.output_address(guard.geometry().granule()),
        PhysAddr(0x8000_0000)
    );
}

/// Twin of `tlb_flush_dropped`: the TLB flush that write-protection owes is
/// issued.
#[test]
fn tlb_flush_dropped() {
    let t = table_with_ram(2 << 20);
    let before = t.mm().stats().tlbi_range;
    let shared = t.shared();
    shared.wrprotect(RAM, 2 << 20).unwrap().flush();
    assert_eq!(t.mm().stats().tlbi_range, before + 1);
    assert!(!leaf(&t, RAM).0.writable());
}

/// Twin of `tlb_flush_spent_on_another_table`: each token invalidates the
/// table that issued it, and only that one.
#[test]
fn tlb_flush_spent_on_another_table() {
    let (a, b) = (table_with_ram(2 << 20), table_with_ram(2 << 20));
    let (a0, b0) = (a.mm().stats().tlbi_range, b.mm().stats().tlbi_range);
    a.shared().wrprotect(RAM, 2 << 20).unwrap().flush();
    assert_eq!(a.mm().stats().tlbi_range, a0 + 1);
    assert_eq!(b.mm().stats().tlbi_range, b0);
}

/// Twin of `raise_page_count_from_safe_code`: safe code may read a page's
/// count; only the walker, for entries it stores, changes it.
#[test]
fn raise_page_count_from_safe_code() {
    use pgwalk::MemoryOps;
    let t = table_with_ram(PAGE);
    let h = t.shared();
    // The root's count is 1 + its one entry (the level-1 table).
    assert_eq!(h.mm().page_count(t.root()), 2);
}

/// A host whose pages are all resident and writable.
struct WritableHost;

impl HostPages for WritableHost {
    fn page<W: WriteIntent>(&self, request: PageRequest<W>) -> PageAnswer<W> {
        PageAnswer::Present {
            pa: PhysAddr(HOST_PA.get() + (request.ipa.get() & !(PAGE - 1)) - RAM.get()),
            writable: W::writable(true),
        }
    }
}

/// Twin of `host_page_writable_read_for_read_only_request`: only a request
/// that allowed writing gets (and reads) an answer about writability.
#[test]
fn host_page_writable_read_for_read_only_request() {
    fn stage2_prot(answer: &PageAnswer<MayWrite>) -> Prot {
        match *answer {
            PageAnswer::Present { writable, .. } if writable => Prot::RW,
            _ => Prot::R,
        }
    }
    let answer = WritableHost.page(PageRequest::<MayWrite>::new(RAM, false));
    assert_eq!(stage2_prot(&answer), Prot::RW);

    // End to end: the same host, asked read-only, yields a read-only leaf.
    let t = table();
    let fault = t.fault_handler();
    let request = PageRequest::<ReadOnly>::new(RAM, false);
    let outcome = fault
        .fault_in(&WritableHost, request, Prot::RW, &mut ())
        .unwrap();
    assert_eq!(outcome, Ok(FaultOutcome::Fixed));
    let (d, _) = leaf(&t, RAM);
    assert!(d.readable() && !d.writable());
}

/// What the vCPU does with the host's answer.
#[derive(Debug, PartialEq)]
enum NextStep {
    Map(PhysAddr),
    WaitForIo,
    Inject(HostFault),
}

/// Twin of `host_page_needs_io_not_handled`: I/O in flight is its own
/// outcome, neither a page nor an error.
#[test]
fn host_page_needs_io_not_handled() {
    fn next_step(answer: PageAnswer<MayWrite>) -> NextStep {
        match answer {
            PageAnswer::Present { pa, .. } => NextStep::Map(pa),
            PageAnswer::NeedsIo => NextStep::WaitForIo,
            PageAnswer::Fault(fault) => NextStep::Inject(fault),
        }
    }
    assert_eq!(next_step(PageAnswer::NeedsIo), NextStep::WaitForIo);
    assert_eq!(
        next_step(PageAnswer::Fault(HostFault::Poisoned)),
        NextStep::Inject(HostFault::Poisoned)
    );
    let answer = WritableHost.page(PageRequest::<MayWrite>::new(RAM, true));
    assert_eq!(next_step(answer), NextStep::Map(HOST_PA));
}

/// The conversion the `?` cases rely on: a lost race becomes a retry under
/// `Shared` and resuming the guest under `HandlesFault` (and, as
/// `exclusive_visitor_question_mark_on_conflict` shows, nothing under
/// `Exclusive`).
#[test]
fn conflict_converts_per_capability() {
    let shared: Unfinished<Shared> = Conflict::Raced.into();
    assert!(matches!(
        shared,
        Unfinished::Retry(RetryEntry(Conflict::Raced))
    ));
    let fault: Unfinished<HandlesFault> = Conflict::Gone.into();
    assert!(matches!(fault, Unfinished::ResumeGuest(ResumeReason::Gone)));
}

/// An EL2 table for the hyp cases: 39-bit VA, 4 KiB granule.
fn hyp_table() -> pgwalk::hyp::HypTable<HeapMemory> {
    let g = Geometry::for_va_bits(pgwalk::geometry::Granule::Size4KiB, 39, 40).unwrap();
    pgwalk::hyp::HypTable::with_geometry(g, HeapMemory::new(8), &mut ()).unwrap()
}

/// Twin of `hyp_shared_handle`: the helper takes the exclusive hyp handle
/// (the write lock, Linux's hyp spinlock), the one kind there is.
#[test]
fn hyp_shared_handle() {
    fn map_uart(h: &mut pgwalk::hyp::HypHandle<'_, HeapMemory>) -> Result<(), Error> {
        h.map(
            pgwalk::Va(0x900_0000),
            PAGE,
            PhysAddr(0x900_0000),
            Prot::RW | Prot::DEVICE,
            &mut (),
        )
    }
    let mut t = hyp_table();
    map_uart(&mut t.exclusive()).unwrap();
    let (d, _) = t.exclusive().get_leaf(pgwalk::Va(0x900_0000)).unwrap();
    assert!(d.is_valid() && d.writable());
}

/// Twin of `hyp_fault_handler_handle`: the hypervisor maps what it needs
/// up front, through the exclusive handle; nothing of EL2 faults in.
#[test]
fn hyp_fault_handler_handle() {
    let mut t = hyp_table();
    let mut h = t.exclusive();
    h.map(
        pgwalk::Va(0x4000_0000),
        0x20_0000,
        PhysAddr(0x4000_0000),
        Prot::R | Prot::X,
        &mut (),
    )
    .unwrap();
    assert!(h.get_leaf(pgwalk::Va(0x4010_0000)).unwrap().0.executable());
}

/// Twin of `hyp_visitor_retries`: an exclusive hyp visitor continues (or
/// stops with an error); an invalid entry is simply not mapped.
#[test]
fn hyp_visitor_retries() {
    let mut t = hyp_table();
    let mut holes = 0;
    let walked = t
        .exclusive()
        .walk(pgwalk::Va(0), PAGE, WalkFlags::LEAF, |ctx| {
            holes += usize::from(!ctx.old().is_valid());
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    assert_eq!(holes, 1);
}

/// Twin of `hyp_visitor_try_set`: the exclusive `set`, which cannot lose a
/// race.
#[test]
fn hyp_visitor_try_set() {
    use pgwalk::descriptor::{HypAttrs, HypDescriptor};
    let mut t = hyp_table();
    t.exclusive()
        .map(
            pgwalk::Va(0),
            PAGE,
            PhysAddr(0x8000_0000),
            Prot::RW,
            &mut (),
        )
        .unwrap();
    let walked = t
        .exclusive()
        .walk(pgwalk::Va(0), PAGE, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            let granule = ctx.geometry().granule();
            let ro = HypAttrs::from_prot(Prot::R)?;
            ctx.set(HypDescriptor::leaf(
                old.output_address(granule),
                ctx.level(),
                granule,
                ro,
            ));
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    assert!(!t.exclusive().get_leaf(pgwalk::Va(0)).unwrap().0.writable());
    pgwalk::host::check_hyp_invariants(&mut t).unwrap();
}

/// Twin of `hyp_stage2_descriptor`: a hyp leaf, from the hyp format's own
/// attributes.
#[test]
fn hyp_stage2_descriptor() {
    use pgwalk::descriptor::{HypAttrs, HypDescriptor};
    let mut t = hyp_table();
    let walked = t
        .exclusive()
        .walk(pgwalk::Va(0), PAGE, WalkFlags::LEAF, |ctx| {
            let attrs = HypAttrs::from_prot(Prot::RW)?;
            let granule = ctx.geometry().granule();
            ctx.set(HypDescriptor::leaf(
                PhysAddr(0x8000_0000),
                ctx.level(),
                granule,
                attrs,
            ));
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    let (d, _) = t.exclusive().get_leaf(pgwalk::Va(0)).unwrap();
    assert_eq!(d.prot(), Prot::RW);
    pgwalk::host::check_hyp_invariants(&mut t).unwrap();
}

/// Twin of `hyp_handle_outlives_table`: the handle's last use comes before
/// the table goes.
#[test]
fn hyp_handle_outlives_table() {
    let mut t = hyp_table();
    let mut h = t.exclusive();
    h.map(pgwalk::Va(0), PAGE, PhysAddr(0), Prot::R, &mut ())
        .unwrap();
    drop(t);
}

/// Twin of `leaf_table_escapes_the_visit`: what the visitor needs from the
/// leaf table leaves the visit as values.
#[test]
fn leaf_table_escapes_the_visit() {
    let mut t = table_with_ram(PAGE);
    let mut h = t.exclusive();
    let mut kept = None;
    let walked = h
        .walk(RAM, PAGE, WalkFlags::TABLE_PRE, |ctx| {
            if let Some(t) = ctx.take_leaf_table() {
                kept = Some(t.get(0));
            }
            Ok(Action::Continue)
        })
        .unwrap();
    assert!(walked.is_completed());
    h.unmap(RAM, PAGE).unwrap();
    assert!(kept.is_some_and(|d| d.is_valid()));
}

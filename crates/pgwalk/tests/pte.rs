//! The entry protocol (`src/stage2/pte.rs`) as walkers meet it: a break
//! in progress is a race for every capability, and what a visitor may not
//! store.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::watched::{Call, Watch, Watched};
use common::*;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::HeapMemory;
use pgwalk::visit::{Action, ResumeReason, WalkFlags, Walked};
use pgwalk::{Ipa, PhysAddr, Prot, Stage2};

// ---- A walker that meets a break in progress treats it as a race ----

// ---- A walker that meets a break in progress treats it as a race ----

/// What makes a [`Watched`] host hold the first per-entry TLB invalidation
/// it is asked for: a walker doing break-before-make then waits with the
/// locked marker in the entry, between the break and the make.
#[derive(Clone, Default)]
struct Gate {
    armed: Arc<AtomicBool>,
    holding: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl Watch for Gate {
    fn see(&self, _: &HeapMemory, call: Call) {
        if let Call::TlbiIpa(..) = call {
            if self.armed.swap(false, Ordering::AcqRel) {
                self.holding.store(true, Ordering::Release);
                while !self.release.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
            }
        }
    }
}

type Gated = Watched<Gate>;

impl Gated {
    fn new() -> Gated {
        Watched {
            mm: HeapMemory::new(256),
            watch: Gate::default(),
        }
    }

    fn wait_until_holding(&self) {
        while !self.watch.holding.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
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
    gated.watch.armed.store(true, Ordering::Release);
    std::thread::scope(|s| {
        // A vCPU remaps the page: break, then held in the TLB invalidation.
        let remap = s.spawn(|| {
            t.fault_handler()
                .map(Ipa(0), K4, PhysAddr(NEW), Prot::RW, &mut ())
                .unwrap()
        });
        gated.wait_until_holding();
        // Whatever fails below, let the held walker finish so the scope ends.
        let _release = ReleaseOnDrop(&gated.watch.release);

        // The fault path resumes the guest: it will fault again.
        let f = t.fault_handler();
        let again = f.map(Ipa(0), K4, PhysAddr(OLD), Prot::RW, &mut ()).unwrap();
        assert_eq!(again, TableOutcome::Retry);
        assert_eq!(f.relax_perms(Ipa(0), Prot::X).unwrap(), TableOutcome::Retry);
        assert_eq!(f.mkyoung(Ipa(0)).unwrap(), TableOutcome::Retry);
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
        gated.watch.release.store(true, Ordering::Release);
        assert_eq!(remap.join().unwrap(), TableOutcome::Fixed);
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

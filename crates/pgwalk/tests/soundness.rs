//! Regression tests for the holes an adversarial review found (issue 10):
//! what safe code, a visitor, or a host callback that panics could do to a
//! table before, and cannot any more. Each test failed (or hung) on the code
//! before its fix.
//!
//! Three moved next to what they concern, each with its item's comment:
//! item 5's token in `tlb_flush.rs`, the batched invalidation of item 4 in
//! `options.rs`, and the misaligned root in `stage2.rs`.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

use common::watched::{Call, Watch, Watched};
use common::*;
use pgwalk::descriptor::Descriptor;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Level};
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::visit::{Action, RetryEntry, Unfinished, WalkFlags};
use pgwalk::{Error, Ipa, MapOptions, MemoryOps, PhysAddr, Prot, Stage2, UnmapOptions};

/// A walk's result, checked to have visited the whole range.
fn done<C: pgwalk::Capability>(w: pgwalk::visit::Walked<C>) {
    assert!(w.is_completed());
}

// Item 1: `get_pages` is `unsafe` to call now (the compile-fail suite has
// `raise_page_count_from_safe_code`); the host that ships with the crate
// also refuses a count that would wrap, which is how a wrapped count made
// a linked page look empty.
#[test]
#[should_panic(expected = "would overflow")]
fn heap_memory_refuses_a_count_that_would_wrap() {
    let mut t = Stage2::with_geometry(geometry(), HeapMemory::new(64)).unwrap();
    map(&mut t, 0, 2 * K4, RAM, Prot::RW).unwrap();
    // The last table entry on the way down links the level-3 table.
    let mut leaf_table = None;
    t.exclusive()
        .walk(Ipa(0), K4, WalkFlags::TABLE_PRE, |ctx| {
            leaf_table = Some(
                ctx.old()
                    .output_address(pgwalk::geometry::Granule::Size4KiB),
            );
            Ok(Action::Continue)
        })
        .map(done)
        .unwrap();
    let leaf_table = leaf_table.unwrap();
    // The review's exploit: raise the level-3 table's count by
    // `u32::MAX - 1` so that it wraps to 1 ("empty").
    // SAFETY: none: this is the misuse the host must refuse before any
    // count wraps; the call panics without changing the count.
    unsafe { t.mm().get_pages(leaf_table, u32::MAX as usize - 1) };
}

#[test]
fn a_refused_count_is_left_as_it_was() {
    let mm = HeapMemory::new(4);
    let page = mm.zalloc_page(&mut ()).unwrap();
    let refused = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host refuses before changing anything, which is what
        // is tested; the page is no table, so nothing trusts its count.
        unsafe { mm.get_pages(page, usize::MAX) }
    }));
    assert!(refused.is_err());
    assert_eq!(mm.count(page), 1);
}

// Item 2: `HeapMemory::bytes` built a misaligned `&AtomicU64` for an
// unaligned start, and read past the pool for a short tail (Miri reports
// both as undefined behaviour).
#[test]
fn bytes_reads_any_range_inside_the_pool_exactly() {
    let mm = HeapMemory::new(16);
    let mut t = Stage2::with_geometry(Geometry::for_ia_bits(32, 40).unwrap(), mm.clone()).unwrap();
    map(&mut t, 0, K4, 0x12_3456_7000, Prot::RW).unwrap();
    let root = t.root();
    let whole = mm.bytes(root, 32);
    let entry = u64::from_le_bytes(whole[..8].try_into().unwrap());
    assert_ne!(entry, 0, "the root holds a table entry");
    for (off, len) in [(1, 7), (3, 2), (5, 11), (0, 0), (7, 1)] {
        assert_eq!(
            mm.bytes(PhysAddr(root.get() + off as u64), len),
            whole[off..off + len],
            "{len} bytes at offset {off}"
        );
    }
    // The last three bytes of the pool, which ends 64 KiB after its start.
    let end = mm.phys_base().get() + 16 * K4;
    assert_eq!(mm.bytes(PhysAddr(end - 3), 3).len(), 3);
    assert_eq!(mm.bytes(PhysAddr(end), 0).len(), 0);
}

#[test]
#[should_panic(expected = "run beyond the pool")]
fn bytes_refuses_a_range_beyond_the_pool() {
    let mm = HeapMemory::new(1);
    let _ = mm.bytes(PhysAddr(mm.phys_base().get() + K4 - 3), 4);
}

// Item 4: see also tests/map.rs
// (`remapping_changes_attributes_and_address_with_break_before_make`).
#[test]
fn every_restriction_of_a_live_leaf_ends_in_an_invalidation() {
    let mm = HeapMemory::new(64);
    let mut t = Stage2::with_geometry(geometry(), mm.clone()).unwrap();
    map(&mut t, 0, 4 * K4, RAM, Prot::RWX).unwrap();
    let tlbi = || {
        let s = mm.stats();
        s.tlbi_ipa + s.tlbi_range + s.tlbi_vmid
    };
    // Exclusive remaps: taking write away, then execution.
    for (i, prot) in [Prot::R | Prot::X, Prot::RW].into_iter().enumerate() {
        let before = tlbi();
        map(&mut t, i as u64 * K4, K4, RAM + i as u64 * K4, prot).unwrap();
        assert_eq!(tlbi(), before + 1, "remap to {prot:?}");
    }
    // An exclusive visitor of the caller's own.
    let before = tlbi();
    t.exclusive()
        .walk(Ipa(2 * K4), K4, WalkFlags::LEAF, |ctx| {
            ctx.set(ctx.old().with_readable(false));
            Ok(Action::Continue)
        })
        .map(done)
        .unwrap();
    assert_eq!(tlbi(), before + 1, "exclusive visitor taking read away");
    // A shared visitor's compare-and-swap.
    let before = tlbi();
    t.shared()
        .walk(Ipa(3 * K4), K4, WalkFlags::LEAF, |ctx| {
            ctx.try_set(ctx.old().with_writable(false))?;
            Ok(Action::Continue)
        })
        .map(done)
        .unwrap();
    assert_eq!(tlbi(), before + 1, "shared visitor taking write away");
    // Adding permissions and aging need none.
    let before = tlbi();
    t.shared()
        .walk(Ipa(3 * K4), K4, WalkFlags::LEAF, |ctx| {
            ctx.try_set(ctx.old().with_writable(true).with_young(false))?;
            Ok(Action::Continue)
        })
        .map(done)
        .unwrap();
    assert_eq!(tlbi(), before);
}

// Item 6: the locked marker stored through `set` made every later walker
// spin, a single-threaded exclusive unmap included.
#[test]
#[should_panic(expected = "locked marker")]
fn a_visitor_cannot_store_the_locked_marker() {
    let mut t = Stage2::with_geometry(geometry(), HeapMemory::new(64)).unwrap();
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    let locked = Descriptor::from_bits(1 << 10);
    assert!(locked.is_locked());
    let _ = t.exclusive().walk(Ipa(0), K4, WalkFlags::LEAF, |ctx| {
        ctx.set(locked);
        Ok(Action::Continue)
    });
}

/// A host whose callback of one kind panics once, when armed: a
/// [`Watched`] host with this as its watcher.
#[derive(Clone, Default)]
struct Fail {
    /// The kind of callback that is to panic (`NONE` when disarmed).
    armed: Arc<AtomicU8>,
    /// Calls of the armed kind to let through before the panic.
    skip: Arc<AtomicU32>,
}

const NONE: u8 = 0;
const TLBI_IPA: u8 = 1;
const TLBI_RANGE: u8 = 2;
const DCACHE: u8 = 3;
const FREE_UNLINKED: u8 = 4;

impl Watch for Fail {
    fn see(&self, _: &HeapMemory, call: Call) {
        let which = match call {
            Call::TlbiIpa(..) => TLBI_IPA,
            Call::TlbiRange(..) => TLBI_RANGE,
            Call::Dcache(..) => DCACHE,
            Call::FreeUnlinked(..) => FREE_UNLINKED,
            Call::TlbiVmid | Call::Put(..) | Call::Entry(..) => return,
        };
        if self.armed.load(Ordering::Acquire) != which {
            return;
        }
        if self
            .skip
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return;
        }
        if self
            .armed
            .compare_exchange(which, NONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            panic!("host callback {which} failed");
        }
    }
}

type Faulty = Watched<Fail>;

impl Faulty {
    fn new() -> Faulty {
        Watched {
            mm: HeapMemory::new(256),
            watch: Fail::default(),
        }
    }

    fn arm(&self, which: u8) {
        self.arm_after(which, 0);
    }

    /// Arms `which` to fail once `skip` calls of its kind have gone
    /// through.
    fn arm_after(&self, which: u8, skip: u32) {
        self.watch.skip.store(skip, Ordering::Release);
        self.watch.armed.store(which, Ordering::Release);
    }
}

/// Checks the table a panicking callback left: no entry locked (every
/// lookup returns at once), counts that match the entries.
fn assert_consistent(t: &Stage2<Faulty>, ipa: u64) -> (Descriptor, Level) {
    let found = t
        .shared()
        .get_leaf(Ipa(ipa))
        .expect("no entry is left locked");
    // `check_invariants` wants the HeapMemory table; rebuild the view.
    let (g, pgd, mm) = (*t.geometry(), t.root(), t.mm().mm.clone());
    assert!(mm.quiesce());
    // SAFETY: the view is never dropped (its parts are taken back below),
    // so the table keeps its one owner; it is only read, while nothing
    // else runs.
    let mut view = std::mem::ManuallyDrop::new(unsafe { Stage2::from_raw_parts(g, pgd, mm) });
    let checked = check_invariants(&mut view);
    // The host handle goes back (a forgotten clone would keep the pool
    // alive for ever, which Miri reports as a leak); the table does not.
    drop(std::mem::ManuallyDrop::into_inner(view).into_raw_parts());
    if let Err(e) = checked {
        panic!("after the panic: {e}");
    }
    found
}

// Item 7: a panic between break and make left the locked marker (and an
// extra reference count) behind.
#[test]
fn a_host_panic_inside_a_shared_break_leaves_the_old_entry() {
    let host = Faulty::new();
    let mut t = Stage2::with_geometry(geometry(), host.clone()).unwrap();
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    host.arm(TLBI_IPA);
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        // A new output address needs break-before-make.
        t.fault_handler()
            .map(Ipa(0), K4, PhysAddr(RAM + M2), Prot::RW, &mut ())
    }));
    assert!(unwound.is_err());
    let (leaf, _) = assert_consistent(&t, 0);
    assert_eq!(
        leaf.output_address(pgwalk::geometry::Granule::Size4KiB),
        PhysAddr(RAM)
    );
    // And the table works on.
    let again = t
        .fault_handler()
        .map(Ipa(0), K4, PhysAddr(RAM + M2), Prot::RW, &mut ())
        .unwrap();
    assert_eq!(again, TableOutcome::Fixed);
}

#[test]
fn a_host_panic_inside_cache_maintenance_of_a_make_leaves_the_old_entry() {
    let host = Faulty::new();
    let mut t = Stage2::with_geometry(geometry(), host.clone()).unwrap();
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    host.arm(DCACHE);
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        t.fault_handler()
            .map(Ipa(0), K4, PhysAddr(RAM + M2), Prot::RW, &mut ())
    }));
    assert!(unwound.is_err());
    let (leaf, _) = assert_consistent(&t, 0);
    assert_eq!(
        leaf.output_address(pgwalk::geometry::Granule::Size4KiB),
        PhysAddr(RAM)
    );
}

#[test]
fn a_host_panic_inside_an_exclusive_break_leaves_the_old_entry() {
    let host = Faulty::new();
    let mut t = Stage2::with_geometry(geometry(), host.clone()).unwrap();
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    host.arm(TLBI_IPA);
    let unwound = catch_unwind(AssertUnwindSafe(|| t.exclusive().unmap(Ipa(0), K4)));
    assert!(unwound.is_err());
    let (leaf, _) = assert_consistent(&t, 0);
    assert!(leaf.is_valid(), "the page is still mapped");
    t.exclusive().unmap(Ipa(0), K4).unwrap();
    assert!(!assert_consistent(&t, 0).0.is_counted());
}

#[test]
fn a_host_panic_handing_over_a_replaced_table_leaves_the_new_block() {
    let host = Faulty::new();
    let mut t = Stage2::with_geometry(geometry(), host.clone()).unwrap();
    // A page table under the 2 MiB entry, which a block replaces.
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    host.arm(FREE_UNLINKED);
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        t.fault_handler()
            .map(Ipa(0), M2, PhysAddr(RAM), Prot::RW, &mut ())
    }));
    assert!(unwound.is_err());
    // The subtree leaked (the host never took it), but the table is whole:
    // the block is in and nothing is locked.
    let (leaf, level) = t.shared().get_leaf(Ipa(K4)).unwrap();
    assert!(leaf.is_valid() && level.get() == 2, "{leaf:?} at {level}");
}

#[test]
fn a_host_panic_in_a_range_invalidation_leaves_a_consistent_table() {
    let host = Faulty::new();
    let mut t = Stage2::with_geometry(geometry(), host.clone()).unwrap();
    map(&mut t, 0, 4 * K4, RAM, Prot::RW).unwrap();
    host.arm(TLBI_RANGE);
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        t.exclusive().map_with(
            Ipa(0),
            4 * K4,
            PhysAddr(RAM),
            Prot::R,
            &mut (),
            MapOptions::new().batch_tlbi(),
        )
    }));
    assert!(unwound.is_err());
    assert!(!assert_consistent(&t, 0).0.writable());
}

// Item 8: a shared visitor that always asks to retry never returned.
#[test]
fn a_visitor_that_always_retries_ends_the_walk_with_an_error() {
    let mm = HeapMemory::new(64);
    mm.set_retry_limit(1000);
    let mut t = Stage2::with_geometry(geometry(), mm).unwrap();
    map(&mut t, 0, 2 * K4, RAM, Prot::RW).unwrap();
    let mut visits = 0u32;
    let walked = t.shared().walk(Ipa(0), 2 * K4, WalkFlags::LEAF, |ctx| {
        visits += 1;
        if ctx.addr() == Ipa(K4) {
            return Err(Unfinished::Retry(RetryEntry(
                pgwalk::visit::Conflict::Raced,
            )));
        }
        Ok(Action::Continue)
    });
    match walked {
        Err(Error::RetryLimit { addr, level }) => {
            assert_eq!((addr, level.get()), (K4, 3));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        visits,
        1 + 1000,
        "the first page once, the second to the limit"
    );
    // The same bound holds at table levels (a pre-order visit of a table).
    let walked = t.shared().walk(Ipa(0), M2, WalkFlags::TABLE_PRE, |_| {
        Err(Unfinished::Retry(RetryEntry(
            pgwalk::visit::Conflict::Raced,
        )))
    });
    assert!(
        matches!(walked, Err(Error::RetryLimit { .. })),
        "{walked:?}"
    );
}

#[test]
fn the_default_retry_limit_still_ends_a_livelock() {
    let mut t = Stage2::with_geometry(geometry(), HeapMemory::new(64)).unwrap();
    map(&mut t, 0, K4, RAM, Prot::RW).unwrap();
    assert_eq!(t.mm().retry_limit(), pgwalk::visit::RETRY_LIMIT);
    if cfg!(miri) {
        // Sixteen million visits are beyond Miri's patience; the bound
        // itself is the previous test's.
        return;
    }
    let walked = t.shared().walk(Ipa(0), K4, WalkFlags::LEAF, |_| {
        Err(Unfinished::Retry(RetryEntry(
            pgwalk::visit::Conflict::Raced,
        )))
    });
    assert!(matches!(walked, Err(Error::RetryLimit { .. })));
}

// An unmap covering a whole last-level table clears its leaves first and
// gives their references back at once: a panic on the way must still
// leave counts that match the entries.
#[test]
fn a_host_panic_while_unmapping_a_whole_page_table_leaves_a_consistent_table() {
    let host = Faulty::new();
    let mut t = Stage2::with_geometry(geometry(), host.clone()).unwrap();
    map(&mut t, 0, M2, RAM + K4, Prot::RW).unwrap();
    // The invalidation of the first run of leaves fails (their pages are
    // cleaned after it): that run is cleared, the leaves after it stay.
    host.arm(TLBI_RANGE);
    let unwound = catch_unwind(AssertUnwindSafe(|| t.exclusive().unmap(Ipa(0), M2)));
    assert!(unwound.is_err());
    assert!(!assert_consistent(&t, 0).0.is_valid());
    assert!(assert_consistent(&t, M2 - K4).0.is_valid());
    // Every leaf cleared (without cleaning, so without an invalidation by
    // runs), then the invalidation of the table entry fails: the emptied
    // table stays linked (as a post-order free that fails leaves it),
    // holding its own reference only, so that the next unmap frees it and
    // everything above it.
    host.arm(TLBI_RANGE);
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        t.exclusive()
            .unmap_with(Ipa(0), M2, UnmapOptions::new().skip_cmo())
    }));
    assert!(unwound.is_err());
    for ipa in [0, M2 - K4] {
        let (leaf, level) = t.shared().get_leaf(Ipa(ipa)).unwrap();
        assert!(
            !leaf.is_counted() && level.get() == 3,
            "{leaf:?} at {level}"
        );
    }
    t.exclusive().unmap(Ipa(0), M2).unwrap();
    assert_consistent(&t, 0);
    assert_eq!(t.mm().mm.live_pages(), t.geometry().root_pages());
    assert_eq!(t.mm().mm.stats().double_frees, 0);
}

// Without a bulk `put_pages` (this host's), the same unmap gives each
// cleaned page's reference back beside its clean, the rest when the table
// goes: a panic among a run's cleans must leave counts that match the
// entries, with some of the run's references given back and the others
// still owed.
#[test]
fn a_host_panic_among_the_cleans_of_a_whole_table_unmap_leaves_a_consistent_table() {
    const { assert!(!<Faulty as MemoryOps>::BULK_PUT_PAGES) };
    let host = Faulty::new();
    let mut t = Stage2::with_geometry(geometry(), host.clone()).unwrap();
    map(&mut t, 0, M2, RAM + K4, Prot::RW).unwrap();
    // The first run (pages 0 to 63) goes through; the second is cleared,
    // and its seventh clean fails after six references went back.
    host.arm_after(DCACHE, 64 + 6);
    let unwound = catch_unwind(AssertUnwindSafe(|| t.exclusive().unmap(Ipa(0), M2)));
    assert!(unwound.is_err());
    assert!(!assert_consistent(&t, 127 * K4).0.is_valid());
    assert!(assert_consistent(&t, 128 * K4).0.is_valid());
    t.exclusive().unmap(Ipa(0), M2).unwrap();
    assert_consistent(&t, 0);
    assert_eq!(t.mm().mm.live_pages(), t.geometry().root_pages());
    assert_eq!(t.mm().mm.stats().double_frees, 0);
}

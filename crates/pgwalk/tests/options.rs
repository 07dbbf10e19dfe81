//! Map and unmap options (`src/stage2/options.rs`): batched TLB
//! invalidation.

mod common;

use std::sync::{Arc, Mutex};

use common::watched::{Call, Watch, Watched};
use common::*;
use pgwalk::host::HeapMemory;
use pgwalk::visit::{Action, WalkFlags};
use pgwalk::{Ipa, MapOptions, MemoryOps, PhysAddr, Prot, Stage2, UnmapOptions};

#[test]
fn skipping_per_entry_invalidations_costs_one_for_the_range() {
    let mm = HeapMemory::new(64);
    let mut t = Stage2::with_geometry(geometry(), mm.clone()).unwrap();
    map(&mut t, 0, 16 * K4, RAM, Prot::RW).unwrap();
    let before = mm.stats();
    t.exclusive()
        .map_with(
            Ipa(0),
            16 * K4,
            PhysAddr(RAM),
            Prot::R,
            &mut (),
            MapOptions::new().batch_tlbi(),
        )
        .unwrap();
    let after = mm.stats();
    assert_eq!(after.tlbi_ipa, before.tlbi_ipa, "no per-page invalidation");
    assert_eq!(after.tlbi_range, before.tlbi_range + 1, "one for the range");
    // Without data-cache maintenance (FEAT_S2FWB): a leaf whose page is
    // cleaned is invalidated before its clean, batched or not (see
    // `a_clean_follows_the_invalidation_of_what_it_cleans`).
    t.exclusive()
        .unmap_with(Ipa(0), 16 * K4, UnmapOptions::new().skip_cmo().batch_tlbi())
        .unwrap();
    let end = mm.stats();
    assert_eq!(end.tlbi_ipa, before.tlbi_ipa, "no per-page invalidation");
    // One for the leaves, and one for each table the unmap emptied and
    // freed (the last-level table and the one above it), which is never
    // left to the end (see below).
    assert_eq!(end.tlbi_range, after.tlbi_range + 3);
}

/// What [`Ordered`] saw, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// A TLB invalidation of `size` bytes at `addr` (`u64::MAX`: the VMID).
    Tlbi { addr: u64, size: u64 },
    /// A table page freed: its last reference put, or handed to
    /// `free_unlinked_table`.
    Freed(u64),
    /// A data-cache clean of guest memory at this address.
    Clean(u64),
}

/// A watcher that logs TLB invalidations, cache cleans and table-page
/// frees, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Watch for Log {
    fn see(&self, mm: &HeapMemory, call: Call) {
        let seen = match call {
            Call::TlbiIpa(ipa, _) => Seen::Tlbi {
                addr: ipa.get(),
                size: 1,
            },
            Call::TlbiRange(ipa, size) => Seen::Tlbi {
                addr: ipa.get(),
                size,
            },
            Call::TlbiVmid => Seen::Tlbi {
                addr: 0,
                size: u64::MAX,
            },
            Call::Dcache(pa, _) => Seen::Clean(pa.get()),
            Call::FreeUnlinked(pa) => Seen::Freed(pa.get()),
            // The last references go: the page is freed.
            Call::Put(pa, n) if n > 0 && mm.page_count(pa) == n => Seen::Freed(pa.get()),
            Call::Put(..) | Call::Entry(..) => return,
        };
        self.0.lock().unwrap().push(seen);
    }
}

type Ordered = Watched<Log>;

fn ordered() -> Ordered {
    Watched {
        mm: HeapMemory::new(64),
        watch: Log::default(),
    }
}

/// Whether `s` invalidates the TLB entries of the page at `ipa`.
fn invalidates(s: &Seen, ipa: u64) -> bool {
    match *s {
        Seen::Tlbi { size: u64::MAX, .. } => true,
        // By IPA: the page that holds the address.
        Seen::Tlbi { addr, size: 1 } => addr & !(K4 - 1) == ipa & !(K4 - 1),
        Seen::Tlbi { addr, size } => addr <= ipa && ipa < addr + size,
        _ => false,
    }
}

/// Checks that every table page freed while `f` ran was freed after a TLB
/// invalidation of the range it translated (`ranges`: each freed table's
/// range, found by the caller before `f`): the MMU may cache walks through
/// a table until then, and must never walk a page the host reuses.
fn frees_follow_invalidations(
    t: &mut Stage2<Ordered>,
    tables: &[(u64, u64, u64)],
    f: impl FnOnce(&mut Stage2<Ordered>),
) {
    t.mm().watch.0.lock().unwrap().clear();
    f(t);
    let log = t.mm().watch.0.lock().unwrap().clone();
    let mut freed = 0;
    for (i, s) in log.iter().enumerate() {
        let Seen::Freed(pa) = *s else { continue };
        let &(_, start, size) = tables
            .iter()
            .find(|(table, ..)| *table == pa)
            .unwrap_or_else(|| panic!("freed {pa:#x}, not one of the tables: {log:?}"));
        let covered = log[..i].iter().any(|s| match *s {
            Seen::Tlbi {
                addr: 0,
                size: u64::MAX,
            } => true,
            Seen::Tlbi { addr, size: n } if n > 1 => addr <= start && start + size <= addr + n,
            _ => false,
        });
        assert!(covered, "table {pa:#x} ({start:#x}, {size:#x} bytes) freed before its range was invalidated: {log:?}");
        freed += 1;
    }
    assert_eq!(freed, tables.len(), "every table freed: {log:?}");
}

/// The tables below the root under `ipa..ipa + size` (their page, and
/// the start and size of what they translate), for
/// `frees_follow_invalidations`.
fn tables_under(t: &Stage2<Ordered>, ipa: u64, size: u64) -> Vec<(u64, u64, u64)> {
    let mut found = Vec::new();
    let walked = t
        .shared()
        .walk(Ipa(ipa), size, WalkFlags::TABLE_PRE, |ctx| {
            let table = ctx.old().output_address(ctx.geometry().format()).get();
            found.push((table, ctx.entry_addr().get(), ctx.entry_size()));
            Ok(Action::Continue)
        });
    assert!(walked.is_ok());
    found
}

#[test]
fn batched_invalidation_still_invalidates_a_table_before_freeing_it() {
    let mut t = Stage2::with_geometry(geometry(), ordered()).unwrap();
    // Two last-level tables: one the unmap covers whole, one it empties
    // although it covers only the part that is mapped.
    map(&mut t, K4, M2 - K4, RAM, Prot::RW).unwrap();
    map(&mut t, M2, 16 * K4, RAM, Prot::RW).unwrap();
    let tables = tables_under(&t, 0, 2 * M2);
    assert_eq!(tables.len(), 3, "two last-level tables and the one above");
    frees_follow_invalidations(&mut t, &tables, |t| {
        t.exclusive()
            .unmap_with(Ipa(0), M2 + 16 * K4, UnmapOptions::new().batch_tlbi())
            .unwrap();
    });
    // A block mapped over a table, batched: the table goes too.
    map(&mut t, 0, 16 * K4, RAM, Prot::RW).unwrap();
    let tables: Vec<_> = tables_under(&t, 0, M2)
        .into_iter()
        .filter(|&(_, _, size)| size == M2)
        .collect();
    frees_follow_invalidations(&mut t, &tables, |t| {
        t.exclusive()
            .map_with(
                Ipa(0),
                M2,
                PhysAddr(RAM),
                Prot::RW,
                &mut (),
                MapOptions::new().batch_tlbi(),
            )
            .unwrap();
    });
}

#[test]
fn a_clean_follows_the_invalidation_of_what_it_cleans() {
    // Unmapping cacheable memory cleans it so that the guest's last writes
    // reach memory; a vCPU still holding the translation could write after
    // the clean, so the leaf's invalidation comes first. A table covered
    // whole (its leaves invalidated by runs) and one covered in part (leaf
    // by leaf), batched and not.
    for opts in [UnmapOptions::new(), UnmapOptions::new().batch_tlbi()] {
        let mut t = Stage2::with_geometry(geometry(), ordered()).unwrap();
        map(&mut t, K4, M2 - K4, RAM + K4, Prot::RW).unwrap();
        map(&mut t, M2, 16 * K4, RAM + M2, Prot::RW).unwrap();
        t.mm().watch.0.lock().unwrap().clear();
        t.exclusive().unmap_with(Ipa(0), M2 + 8 * K4, opts).unwrap();
        let log = t.mm().watch.0.lock().unwrap().clone();
        let mut cleans = 0;
        for (i, s) in log.iter().enumerate() {
            let Seen::Clean(pa) = *s else { continue };
            let ipa = pa - RAM;
            assert!(
                log[..i].iter().any(|s| invalidates(s, ipa)),
                "{opts:?}: {ipa:#x} cleaned before it was invalidated: {log:?}"
            );
            cleans += 1;
        }
        assert_eq!(cleans, 511 + 8, "{opts:?}: every page cleaned once");
    }
}

/// An unmap that clears a last-level table whole, cleaning its pages,
/// invalidates its leaves run by run, each invalidation covering exactly
/// its run, cleaned right after it (neighbours beyond the run are not
/// invalidated early for nothing).
#[test]
fn a_cleaned_table_is_invalidated_run_by_run() {
    let mut t = Stage2::with_geometry(geometry(), ordered()).unwrap();
    map(&mut t, 0, M2, RAM + K4, Prot::RW).unwrap();
    t.mm().watch.0.lock().unwrap().clear();
    t.exclusive().unmap(Ipa(0), M2).unwrap();
    let log = t.mm().watch.0.lock().unwrap().clone();
    let run = 64 * K4;
    let mut expected = Vec::new();
    for first in (0..M2).step_by(run as usize) {
        expected.push(Seen::Tlbi {
            addr: first,
            size: run,
        });
        expected.extend(
            (first..first + run)
                .step_by(K4 as usize)
                .map(|ipa| Seen::Clean(RAM + K4 + ipa)),
        );
    }
    assert_eq!(log[..expected.len()], expected[..]);
    assert!(
        !log[expected.len()..]
            .iter()
            .any(|s| matches!(s, Seen::Clean(_))),
        "every page cleaned once: {log:?}"
    );
}

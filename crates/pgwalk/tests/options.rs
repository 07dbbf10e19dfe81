//! Map and unmap options (`src/stage2/options.rs`): batched TLB
//! invalidation.

mod common;

use core::ptr::NonNull;

use common::*;
use pgwalk::geometry::Level;
use pgwalk::host::HeapMemory;
use pgwalk::visit::Action;
use pgwalk::visit::WalkFlags;
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

/// A HeapMemory that logs TLB invalidations and table-page frees.
#[derive(Clone)]
struct Ordered {
    mm: HeapMemory,
    log: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Ordered {
    fn seen(&self, s: Seen) {
        self.log.lock().unwrap().push(s);
    }
}

// SAFETY: every method forwards to a HeapMemory, which upholds the
// contract; logging changes nothing of the host's.
unsafe impl MemoryOps for Ordered {
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
        self.seen(Seen::Freed(table.get()));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.free_unlinked_table(table, level) }
    }
    unsafe fn get_page(&self, pa: PhysAddr) {
        // SAFETY: forwarded with the caller's promise.
        unsafe { self.mm.get_page(pa) }
    }
    unsafe fn put_page(&self, pa: PhysAddr) {
        if self.mm.page_count(pa) == 1 {
            self.seen(Seen::Freed(pa.get()));
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.put_page(pa) }
    }
    unsafe fn put_pages(&self, pa: PhysAddr, n: usize) {
        if n > 0 && self.mm.page_count(pa) == n {
            self.seen(Seen::Freed(pa.get()));
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.put_pages(pa, n) }
    }
    fn page_count(&self, pa: PhysAddr) -> usize {
        self.mm.page_count(pa)
    }
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        self.mm.phys_to_virt(pa)
    }
    fn dcache_clean_inval_poc(&self, pa: PhysAddr, size: u64) {
        self.seen(Seen::Clean(pa.get()));
        self.mm.dcache_clean_inval_poc(pa, size)
    }
    fn icache_inval_pou(&self, pa: PhysAddr, size: u64) {
        self.mm.icache_inval_pou(pa, size)
    }
    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, level: Level) {
        self.seen(Seen::Tlbi {
            addr: ipa.get(),
            size: 1,
        });
        self.mm.tlb_flush_vmid_ipa(ipa, level)
    }
    fn tlb_flush_vmid_range(&self, ipa: Ipa, size: u64) {
        self.seen(Seen::Tlbi {
            addr: ipa.get(),
            size,
        });
        self.mm.tlb_flush_vmid_range(ipa, size)
    }
    fn tlb_flush_vmid(&self) {
        self.seen(Seen::Tlbi {
            addr: 0,
            size: u64::MAX,
        });
        self.mm.tlb_flush_vmid()
    }
}

/// Whether an entry of `log` invalidates the TLB entries of the IPA `ipa`.
fn invalidates(s: &Seen, ipa: u64) -> bool {
    match *s {
        Seen::Tlbi { addr, size } => {
            size == u64::MAX || (addr & !(K4 - 1) <= ipa && ipa < addr.max(1) + size.max(K4))
        }
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
    t.mm().log.lock().unwrap().clear();
    f(t);
    let log = t.mm().log.lock().unwrap().clone();
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
    let host = Ordered {
        mm: HeapMemory::new(64),
        log: Default::default(),
    };
    let mut t = Stage2::with_geometry(geometry(), host).unwrap();
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
        let host = Ordered {
            mm: HeapMemory::new(64),
            log: Default::default(),
        };
        let mut t = Stage2::with_geometry(geometry(), host).unwrap();
        map(&mut t, K4, M2 - K4, RAM + K4, Prot::RW).unwrap();
        map(&mut t, M2, 16 * K4, RAM + M2, Prot::RW).unwrap();
        t.mm().log.lock().unwrap().clear();
        t.exclusive().unmap_with(Ipa(0), M2 + 8 * K4, opts).unwrap();
        let log = t.mm().log.lock().unwrap().clone();
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

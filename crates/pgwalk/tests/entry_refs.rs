//! `MemoryOps::get_page_at` and `put_page_at`: every reference taken or
//! given back for an entry names that entry by its address in the host's
//! mapping of the table page, which a host may rely on (the C host hands
//! it to the kernel-style `get_page`, as the kernel's walker hands over
//! `ctx->ptep`).

mod common;

use std::sync::{Arc, Mutex};

use common::watched::{Call, Watch, Watched};
use common::*;
use pgwalk::fault::TableOutcome;
use pgwalk::host::HeapMemory;
use pgwalk::kvm::KvmMapOptions;
use pgwalk::{Ipa, MemoryOps, PhysAddr, Prot, Stage2};

/// Checks each `Call::Entry` against the page it names, and keeps the
/// entries' offsets in their pages.
#[derive(Clone, Default)]
struct Entries(Arc<Mutex<Vec<usize>>>);

impl Watch for Entries {
    fn see(&self, mm: &HeapMemory, call: Call) {
        let Call::Entry(pa, entry) = call else { return };
        let page = mm.phys_to_virt(pa).as_ptr() as usize;
        let at = entry.as_ptr() as usize;
        let size = mm.table_format().granule().size() as usize;
        assert!(
            (page..page + size).contains(&at) && at % 8 == 0,
            "entry {at:#x} is not an entry of the table page {pa:?} (mapped at {page:#x})"
        );
        self.0.lock().unwrap().push(at - page);
    }
}

fn watched() -> Stage2<Watched<Entries>> {
    let mm = Watched {
        mm: HeapMemory::new(256),
        watch: Entries::default(),
    };
    Stage2::with_geometry(geometry(), mm).unwrap()
}

/// The offsets seen since the last call, emptied.
fn take(t: &Stage2<Watched<Entries>>) -> Vec<usize> {
    std::mem::take(&mut *t.mm().watch.0.lock().unwrap())
}

#[test]
fn references_name_the_entry_they_are_for() {
    let mut t = watched();
    // Pages 5 to 7 of a last-level table: entries 5, 6 and 7.
    let ipa = 0x4000_0000 + 5 * K4;
    t.exclusive()
        .map(Ipa(ipa), 3 * K4, PhysAddr(RAM), Prot::RW, &mut ())
        .unwrap();
    let mapped = take(&t);
    for i in 5..8 {
        assert!(mapped.contains(&(i * 8)), "entry {i}: {mapped:?}");
    }

    // The fault path: one page, entry 9.
    let fixed = t
        .fault_handler()
        .map(
            Ipa(0x4000_0000 + 9 * K4),
            K4,
            PhysAddr(RAM + M2),
            Prot::RW,
            &mut (),
        )
        .unwrap();
    assert_eq!(fixed, TableOutcome::Fixed);
    assert_eq!(take(&t), [9 * 8]);

    // Unmapping one page gives back the reference of its entry.
    t.exclusive().unmap(Ipa(ipa + K4), K4).unwrap();
    assert_eq!(take(&t), [6 * 8]);

    // The kernel's own map and unmap, entry 12.
    let kvm_ipa = 0x4000_0000 + 12 * K4;
    t.exclusive()
        .kvm()
        .map(
            Ipa(kvm_ipa),
            K4,
            PhysAddr(RAM + 2 * M2),
            Prot::RW,
            &mut (),
            KvmMapOptions::default(),
        )
        .unwrap();
    assert_eq!(take(&t), [12 * 8]);
    t.exclusive().kvm().unmap(Ipa(kvm_ipa), K4).unwrap();
    assert_eq!(take(&t), [12 * 8]);

    // An annotation is counted too: entry 20.
    t.exclusive()
        .kvm()
        .set_owner(Ipa(0x4000_0000 + 20 * K4), K4, 1, &mut ())
        .unwrap();
    assert_eq!(take(&t), [20 * 8]);

    // Whatever went through the entry addresses, the counts still add up:
    // the unmap empties and frees every table below the two-page root.
    t.exclusive().unmap(Ipa(0x4000_0000), M2).unwrap();
    let stats = t.mm().mm.stats();
    assert_eq!(stats.double_frees, 0);
    assert_eq!(stats.pages_allocated - stats.pages_freed, 2, "{stats:?}");
}

/// An unmap that empties a whole last-level table, on a host whose
/// `put_pages` is not one update, gives each cleaned page's reference back
/// beside its clean, by its entry: every entry of the table, in order,
/// before anything above it.
#[test]
fn a_whole_table_unmap_gives_each_cleaned_pages_reference_back_by_its_entry() {
    const { assert!(!<Watched<Entries> as MemoryOps>::BULK_PUT_PAGES) };
    let mut t = watched();
    // Off a block boundary: a table of 512 pages.
    map(&mut t, 0, M2, RAM + K4, Prot::RW).unwrap();
    take(&t);
    t.exclusive().unmap(Ipa(0), M2).unwrap();
    let seen = take(&t);
    let leaves: Vec<usize> = (0..512).map(|i| i * 8).collect();
    assert_eq!(seen[..512], leaves[..], "{seen:?}");
    let stats = t.mm().mm.stats();
    assert_eq!(stats.double_frees, 0);
    assert_eq!(stats.pages_allocated - stats.pages_freed, 2, "{stats:?}");
}

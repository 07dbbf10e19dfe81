//! The host identity map: find the largest range and map it under one
//! exclusive hold, with a second try after running out of memory.

mod common;

use common::{G1, K4, M2};
use pgwalk::geometry::Geometry;
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::idmap::MemoryRegion;
use pgwalk::{Error, Ipa, PhysAddr, Prot, Stage2};

fn table() -> Stage2<HeapMemory> {
    Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), HeapMemory::new(256)).unwrap()
}

const RAM: MemoryRegion = MemoryRegion {
    start: PhysAddr(G1),
    end: PhysAddr(3 * G1),
    prot: Prot::RWX,
};
const MMIO: MemoryRegion = MemoryRegion {
    start: PhysAddr(0x0900_0000),
    end: PhysAddr(0x0900_3000),
    prot: Prot::RW.union(Prot::DEVICE),
};

#[test]
fn largest_block_inside_the_region() {
    let mut t = table();
    let mut h = t.exclusive();
    let mut range = h.idmap_range(Ipa(G1 + 0x1234_5678), &[MMIO, RAM]).unwrap();
    assert_eq!(range.range(), (Ipa(G1), G1), "a whole 1 GiB block");
    range.map(&mut ()).unwrap();
    let (leaf, level) = h.get_leaf(Ipa(G1 + 0x1234_5000)).unwrap();
    assert_eq!(level.get(), 1);
    assert_eq!(
        leaf.output_address(pgwalk::geometry::Granule::Size4KiB),
        PhysAddr(G1),
        "identity"
    );
    // Exactly the range: nothing on either side of the block.
    for outside in [G1 - K4, 2 * G1] {
        assert!(
            !h.get_leaf(Ipa(outside)).unwrap().0.is_valid(),
            "{outside:#x}"
        );
    }
    check_invariants(&mut t).unwrap();
}

#[test]
fn small_region_gets_pages() {
    let mut t = table();
    let mut h = t.exclusive();
    let mut range = h.idmap_range(Ipa(0x0900_1010), &[MMIO, RAM]).unwrap();
    assert_eq!(range.range(), (Ipa(0x0900_1000), K4));
    assert_eq!(range.prot(), MMIO.prot);
    range.map(&mut ()).unwrap();
    assert!(h.get_leaf(Ipa(0x0900_1000)).unwrap().0.is_valid());
}

#[test]
fn existing_entries_bound_the_range() {
    let mut t = table();
    let mut h = t.exclusive();
    // Something already mapped in the same 1 GiB: the range shrinks to 2 MiB.
    h.map(
        Ipa(G1 + 4 * M2),
        K4,
        PhysAddr(G1 + 4 * M2),
        Prot::R,
        &mut (),
    )
    .unwrap();
    let range = h.idmap_range(Ipa(G1 + M2 + 5), &[RAM]).unwrap();
    assert_eq!(range.range(), (Ipa(G1 + M2), M2));
}

/// A region's end is one past its last byte: the address there is in no
/// region (and not "misaligned" in this one).
#[test]
fn a_region_ends_before_its_end_address() {
    assert!(RAM.contains(PhysAddr(3 * G1 - 1)));
    assert!(!RAM.contains(PhysAddr(3 * G1)));
    assert!(!RAM.contains(PhysAddr(G1 - 1)));
    let mut t = table();
    let mut h = t.exclusive();
    assert!(matches!(
        h.idmap_range(Ipa(3 * G1), &[RAM]),
        Err(Error::NoRegion { addr }) if addr == 3 * G1
    ));
    let range = h.idmap_range(Ipa(3 * G1 - K4), &[RAM]).unwrap();
    assert_eq!(range.range(), (Ipa(2 * G1), G1));
}

#[test]
fn mapped_owned_and_unknown_addresses() {
    let mut t = table();
    let mut h = t.exclusive();
    h.map(Ipa(G1), K4, PhysAddr(G1), Prot::R, &mut ()).unwrap();
    assert!(matches!(
        h.idmap_range(Ipa(G1), &[RAM]),
        Err(Error::AlreadyMapped { .. })
    ));
    h.annotate(Ipa(2 * G1), M2, 3, &mut ()).unwrap();
    assert!(matches!(
        h.idmap_range(Ipa(2 * G1 + K4), &[RAM]),
        Err(Error::Owned { owner: 3, .. })
    ));
    assert!(matches!(
        h.idmap_range(Ipa(0x10), &[RAM]),
        Err(Error::NoRegion { .. })
    ));
}

#[test]
fn out_of_memory_keeps_the_range_for_a_second_try() {
    let mut t = table();
    let live = t.mm().live_pages();
    t.mm().set_page_limit(live);
    let mm = t.mm().clone();
    let mut h = t.exclusive();
    let mut range = h.idmap_range(Ipa(0x0900_0000), &[MMIO]).unwrap();
    assert_eq!(range.map(&mut ()), Err(Error::NoMemory));
    // Still holding the range (and so the exclusive handle): refill, retry.
    mm.set_page_limit(usize::MAX);
    range.map(&mut ()).unwrap();
    assert!(h.get_leaf(Ipa(0x0900_0000)).unwrap().0.is_valid());
    check_invariants(&mut t).unwrap();
}

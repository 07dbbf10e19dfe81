//! `create_unlinked` (`src/stage2/unlinked.rs`) and `free_unlinked`: a
//! subtree built off to the side, mapping what one entry would, freed
//! whole.

mod common;

use common::*;
use pgwalk::descriptor::Descriptor;
use pgwalk::geometry::{Granule, Level};
use pgwalk::{free_unlinked, Error, PhysAddr, Prot};

/// Entry `idx` of the table page at `pa`, read through the host.
fn entry(t: &pgwalk::Stage2<pgwalk::host::HeapMemory>, pa: PhysAddr, idx: u64) -> Descriptor {
    let bytes = t.mm().bytes(PhysAddr(pa.get() + idx * 8), 8);
    Descriptor::from_bits(u64::from_le_bytes(bytes.try_into().unwrap()))
}

#[test]
fn a_level_one_entry_becomes_blocks_or_pages_and_frees_whole() {
    let mut t = table(40);
    let live = t.mm().live_pages();
    let l1 = Level::new(1).unwrap();
    let blocks = t
        .exclusive()
        .create_unlinked(PhysAddr(0x4000_0000), l1, Prot::RW, &mut ())
        .unwrap();
    assert_eq!(t.mm().live_pages(), live + 1, "one page of 2 MiB blocks");
    let d = entry(&t, blocks, 3);
    assert!(d.is_valid() && !d.is_table(Level::new(2).unwrap()));
    assert_eq!(
        d.output_address(Granule::Size4KiB),
        PhysAddr(0x4000_0000 + 3 * M2)
    );
    assert_eq!(t.mm().count(blocks), 1 + 512);

    let pages = t
        .exclusive()
        .create_unlinked_pages(PhysAddr(0x4000_0000), l1, Prot::R, &mut ())
        .unwrap();
    assert_eq!(
        t.mm().live_pages(),
        live + 1 + 1 + 512,
        "pages all the way down"
    );
    // SAFETY: both subtrees were built here and never linked.
    unsafe {
        free_unlinked(t.mm(), blocks, l1);
        free_unlinked(t.mm(), pages, l1);
    }
    assert_eq!(t.mm().live_pages(), live);
    assert_eq!(t.mm().stats().double_frees, 0);
    check(&mut t);
}

#[test]
fn bad_levels_and_addresses_are_refused_without_allocating() {
    let mut t = table(40);
    let live = t.mm().live_pages();
    let mut h = t.exclusive();
    assert!(matches!(
        h.create_unlinked(PhysAddr(RAM), Level::LAST, Prot::RW, &mut ()),
        Err(Error::Geometry(_))
    ));
    assert!(matches!(
        h.create_unlinked(
            PhysAddr(RAM + K4),
            Level::new(2).unwrap(),
            Prot::RW,
            &mut ()
        ),
        Err(Error::Misaligned { .. })
    ));
    assert_eq!(t.mm().live_pages(), live);
}

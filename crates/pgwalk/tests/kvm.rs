//! The kernel-compatible operations (`pgwalk::kvm`), where they differ from
//! pgwalk's own. `kernel-parity/` checks them against Linux 6.12's
//! `pgtable.c` itself; these tests pin each difference down.

use pgwalk::fault::TableOutcome;
use pgwalk::geometry::Geometry;
use pgwalk::host::HeapMemory;
use pgwalk::kvm::KvmMapOptions;
use pgwalk::{Ipa, PhysAddr, Prot, Stage2};

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const RAM: u64 = 0x8000_0000;

fn table() -> Stage2<HeapMemory> {
    Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), HeapMemory::new(256)).unwrap()
}

fn leaf(t: &Stage2<HeapMemory>, ipa: u64) -> (pgwalk::descriptor::Descriptor, i8) {
    let (d, l) = t.shared().get_leaf(Ipa(ipa)).unwrap();
    (d, l.get())
}

#[test]
fn a_remap_that_changes_only_permissions_leaves_the_leaf() {
    let mut t = table();
    let opts = KvmMapOptions::default();
    t.exclusive()
        .kvm()
        .map(Ipa(0), K4, PhysAddr(RAM), Prot::RW, &mut (), opts)
        .unwrap();
    let before = leaf(&t, 0).0;
    t.exclusive()
        .kvm()
        .map(Ipa(0), K4, PhysAddr(RAM), Prot::R, &mut (), opts)
        .unwrap();
    assert_eq!(leaf(&t, 0).0, before, "still writable, as in the kernel");
    // pgwalk's own map applies the new permissions.
    t.exclusive()
        .map(Ipa(0), K4, PhysAddr(RAM), Prot::R, &mut ())
        .unwrap();
    assert!(!leaf(&t, 0).0.writable());
    // The fault path stops there and resumes the guest.
    let outcome = t
        .fault_handler()
        .kvm()
        .map(Ipa(0), K4, PhysAddr(RAM), Prot::RW, &mut (), opts)
        .unwrap();
    assert_eq!(outcome, TableOutcome::Spurious);
}

#[test]
fn a_map_into_part_of_a_block_drops_the_rest_of_it() {
    let mut t = table();
    let opts = KvmMapOptions::default();
    t.exclusive()
        .kvm()
        .map(Ipa(0), M2, PhysAddr(RAM), Prot::RW, &mut (), opts)
        .unwrap();
    assert_eq!(leaf(&t, K4).1, 2);
    t.exclusive()
        .kvm()
        .map(Ipa(K4), K4, PhysAddr(RAM + M2), Prot::RW, &mut (), opts)
        .unwrap();
    let (page, level) = leaf(&t, K4);
    assert!(page.is_valid() && level == 3);
    assert!(!leaf(&t, 0).0.is_valid(), "the rest faults back in lazily");
    assert!(!leaf(&t, 2 * K4).0.is_valid());
}

#[test]
fn an_unmap_that_cuts_a_block_removes_it_whole() {
    let mut t = table();
    t.exclusive()
        .kvm()
        .map(
            Ipa(0),
            M2,
            PhysAddr(RAM),
            Prot::RW,
            &mut (),
            KvmMapOptions::default(),
        )
        .unwrap();
    // pgwalk's own unmap refuses to cut a block.
    assert!(t.exclusive().unmap(Ipa(K4), K4).is_err());
    t.exclusive().kvm().unmap(Ipa(K4), K4).unwrap();
    assert!(!leaf(&t, 0).0.is_valid());
    assert!(!leaf(&t, M2 - K4).0.is_valid());
}

#[test]
fn set_owner_writes_pages_and_owner_zero_leaves_tables() {
    let mut t = table();
    t.exclusive()
        .kvm()
        .set_owner(Ipa(0), M2, 1, &mut ())
        .unwrap();
    let (d, level) = leaf(&t, M2 - K4);
    assert_eq!((d.owner(), level), (Some(1), 3), "annotations page by page");
    assert!(t
        .exclusive()
        .kvm()
        .set_owner(Ipa(0), K4, 2, &mut ())
        .is_err());
    t.exclusive()
        .kvm()
        .set_owner(Ipa(0), M2, 0, &mut ())
        .unwrap();
    // The level-3 table stays linked, with nothing in it, until an unmap.
    assert_eq!(leaf(&t, 0).1, 3);
    t.exclusive().kvm().unmap(Ipa(0), M2).unwrap();
    assert!(leaf(&t, 0).1 < 3);
    let mut t = t;
    pgwalk::host::check_invariants(&mut t).unwrap();
}

#[test]
fn mkyoung_answers_the_entry_as_it_was() {
    let mut t = table();
    t.exclusive()
        .kvm()
        .map(
            Ipa(0),
            K4,
            PhysAddr(RAM),
            Prot::RW,
            &mut (),
            KvmMapOptions::default(),
        )
        .unwrap();
    t.shared().clear_young(Ipa(0), K4).unwrap();
    let old = leaf(&t, 0).0;
    let (outcome, was) = t.fault_handler().kvm().mkyoung(Ipa(0)).unwrap();
    assert_eq!((outcome, was), (TableOutcome::Fixed, old));
    assert!(leaf(&t, 0).0.young());
    let (outcome, was) = t.fault_handler().kvm().mkyoung(Ipa(M2)).unwrap();
    assert_eq!(outcome, TableOutcome::Retry);
    assert!(!was.is_valid());
}

/// A range that could hold a block, mapped to an output address that is
/// only page-aligned: as in the kernel (`kvm_block_mapping_supported`), no
/// block fits the output, so every page is a page, each translating to its
/// own frame; from an exclusive map and from the fault path.
#[test]
fn a_block_sized_range_with_a_page_aligned_output_maps_pages() {
    let opts = KvmMapOptions::default();
    let out = RAM + K4;
    let mut t = table();
    t.exclusive()
        .kvm()
        .map(Ipa(M2), M2, PhysAddr(out), Prot::RW, &mut (), opts)
        .unwrap();
    let f = table();
    let outcome = f
        .fault_handler()
        .kvm()
        .map(Ipa(M2), M2, PhysAddr(out), Prot::RW, &mut (), opts)
        .unwrap();
    assert_eq!(outcome, TableOutcome::Fixed);
    for t in [&t, &f] {
        for i in [0, 1, 511] {
            let (d, l) = leaf(t, M2 + i * K4);
            assert_eq!(l, 3, "page {i} is a page");
            assert_eq!(
                d.output_address(t.geometry().format()),
                PhysAddr(out + i * K4)
            );
        }
    }
}

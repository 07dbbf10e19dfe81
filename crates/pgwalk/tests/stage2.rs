//! The table itself (`src/stage2/mod.rs`): its root, concatenated or
//! refused when the host hands out a misaligned one.

mod common;

use std::ptr::NonNull;

use common::*;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, Level};
use pgwalk::host::HeapMemory;
use pgwalk::{Error, Ipa, MemoryOps, PhysAddr, Prot, Stage2};

#[test]
fn concatenated_root_covers_the_whole_input_space() {
    // 40 bits from level 1: a two-page root.
    let mut t = table(40);
    assert_eq!(t.geometry().root_pages(), 2);
    map(&mut t, (1 << 40) - M2, M2, 0x8000_0000, Prot::R).unwrap();
    map(&mut t, 0, M2, 0x8000_0000, Prot::R).unwrap();
    assert_eq!(leaf(&mut t, (1 << 40) - K4).1, 2);
    check(&mut t);
}

/// The one-page descent (the fault path's map, relax_perms, mkyoung)
/// finds the root page holding its entry by arithmetic of its own: a table
/// it links from the second page of a concatenated root must be counted
/// there, and unmapping it must give the count back there.
#[test]
fn a_one_page_walk_counts_in_the_root_page_holding_its_entry() {
    let mut t = table(40);
    let second = PhysAddr(t.root().get() + K4);
    let top = (1 << 40) - K4;
    let outcome = t
        .fault_handler()
        .map(Ipa(top), K4, PhysAddr(0x8000_0000), Prot::R, &mut ())
        .unwrap();
    assert_eq!(outcome, TableOutcome::Fixed);
    assert_eq!(t.mm().page_count(t.root()), 1);
    assert_eq!(t.mm().page_count(second), 2);
    let relaxed = t.fault_handler().relax_perms(Ipa(top), Prot::W).unwrap();
    assert_eq!(relaxed, TableOutcome::Fixed);
    assert_eq!(leaf(&mut t, top).1, 3);
    check(&mut t);
    t.exclusive().unmap(Ipa(top), K4).unwrap();
    assert_eq!(t.mm().page_count(second), 1);
    check(&mut t);
}

/// A root beyond what the format's table descriptors can name (48 bits
/// with 4 KiB pages and no LPA2) is refused, and given back: a host whose
/// memory sits up there loses nothing by trying.
#[test]
fn a_root_beyond_the_output_size_is_refused_and_given_back() {
    let mm = HeapMemory::at(1 << 48, 8);
    let refused = Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), mm.clone());
    // Named by its last byte, as a map names the end of its output range.
    assert_eq!(
        refused.err(),
        Some(Error::OutputTooLarge {
            pa: (1 << 48) + 2 * K4 - 1,
            oa_bits: 48
        })
    );
    assert_eq!(mm.live_pages(), 0);
    // Just below the limit the same pool serves a table.
    let low = HeapMemory::at((1 << 48) - 8 * K4, 8);
    let t = Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), low.clone()).unwrap();
    assert_eq!(low.live_pages(), 2);
    drop(t);
    assert_eq!(low.live_pages(), 0);
}

/// The same for a table page below the root: the map is refused, naming
/// the page's last byte, and the page is given back.
#[test]
fn a_table_page_beyond_the_output_size_is_refused_and_given_back() {
    // The root takes the last two pages below 2^48; the next page is above.
    let mm = HeapMemory::at((1 << 48) - 2 * K4, 8);
    let mut t = Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), mm.clone()).unwrap();
    assert_eq!(t.root(), PhysAddr((1 << 48) - 2 * K4));
    let refused = t
        .exclusive()
        .map(Ipa(0), K4, PhysAddr(RAM), Prot::R, &mut ());
    assert_eq!(
        refused,
        Err(Error::OutputTooLarge {
            pa: (1 << 48) + K4 - 1,
            oa_bits: 48
        })
    );
    assert_eq!(mm.live_pages(), 2, "only the root");
    assert!(!leaf(&mut t, 0).0.is_valid());
}

/// A host that hands out a root not aligned to its size (the contract says
/// it must be): the table used to take it, and the MMU, which ignores the
/// low bits of VTTBR_EL2.BADDR, would have walked another table.
#[test]
fn a_misaligned_root_is_refused_and_given_back() {
    struct Misaligned(HeapMemory);
    // SAFETY: forwards to HeapMemory, except that the root it hands out is
    // the second page of a two-page block, which is what the test refuses;
    // the refused block is given back whole.
    unsafe impl MemoryOps for Misaligned {
        type PagePool = ();
        fn zalloc_page(&self, pool: &mut ()) -> Option<PhysAddr> {
            self.0.zalloc_page(pool)
        }
        fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
            let pa = self.0.zalloc_pages_exact(size)?;
            Some(PhysAddr(pa.get() + K4))
        }
        unsafe fn free_pages_exact(&self, pa: PhysAddr, size: usize) {
            // SAFETY: the block this host handed out, K4 below `pa`.
            unsafe { self.0.free_pages_exact(PhysAddr(pa.get() - K4), size) }
        }
        unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.0.free_unlinked_table(table, level) }
        }
        unsafe fn get_page(&self, pa: PhysAddr) {
            // SAFETY: forwarded with the caller's promise.
            unsafe { self.0.get_page(pa) }
        }
        unsafe fn put_page(&self, pa: PhysAddr) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.0.put_page(pa) }
        }
        fn page_count(&self, pa: PhysAddr) -> usize {
            self.0.page_count(pa)
        }
        fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
            self.0.phys_to_virt(pa)
        }
        fn dcache_clean_inval_poc(&self, _: PhysAddr, _: u64) {}
        fn icache_inval_pou(&self, _: PhysAddr, _: u64) {}
        fn tlb_flush_vmid_ipa(&self, _: Ipa, _: Level) {}
        fn tlb_flush_vmid_range(&self, _: Ipa, _: u64) {}
        fn tlb_flush_vmid(&self) {}
    }
    let mm = HeapMemory::new(16);
    // A 40-bit IPA from level 1: a two-page root, 8 KiB aligned.
    let r = Stage2::with_geometry(geometry_40(), Misaligned(mm.clone()));
    assert!(
        matches!(r, Err(Error::Misaligned { .. })),
        "{:?}",
        r.as_ref().err()
    );
    assert_eq!(mm.live_pages(), 0, "the block went back");
}

fn geometry_40() -> Geometry {
    Geometry::for_ia_bits(40, 40).unwrap()
}

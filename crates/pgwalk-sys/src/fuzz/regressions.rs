//! What the fuzzer found, each replayed as a plain test through the C ABI.

use super::pool::Pool;
use super::{Tables, RAM, WBASE};
use crate::abi::*;
use crate::compat::*;
use crate::errno::*;
use crate::hyp::*;

const K4: u64 = 0x1000;
const M2: u64 = 2 << 20;
const RW: u64 = KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W;

fn mc() -> *mut core::ffi::c_void {
    static MC: u8 = 0;
    core::ptr::from_ref(&MC).cast_mut().cast()
}

/// The stage-2 leaf for `addr`: its entry and level.
fn leaf(t: &mut Tables, addr: u64) -> (u64, i8) {
    let (mut pte, mut level) = (0, 0);
    // SAFETY: an initialised table; the out-pointers are locals.
    let r = unsafe { kvm_pgtable_get_leaf(t.s2(), addr, &mut pte, &mut level) };
    assert_eq!(r, 0);
    (pte, level)
}

fn hyp_leaf(t: &mut Tables, addr: u64) -> u64 {
    let (mut pte, mut level) = (0, 0);
    // SAFETY: as above.
    let r = unsafe { pgw_hyp_get_leaf(t.hyp(), addr, &mut pte, &mut level) };
    assert_eq!(r, 0);
    pte
}

#[test]
fn hyp_map_rounds_its_end_from_the_aligned_address() {
    let _pool = Pool::lock();
    let mut t = Tables::new().unwrap();
    // 6.12: from 0x...800 aligned down, plus one page: one page, not two.
    // SAFETY: an initialised hyp table, used by this call only.
    let r = unsafe { kvm_pgtable_hyp_map(t.hyp(), WBASE + 0x800, K4, RAM, RW) };
    assert_eq!(r, 0);
    assert_eq!(hyp_leaf(&mut t, WBASE) & KVM_PTE_ADDR_MASK, RAM);
    assert_eq!(hyp_leaf(&mut t, WBASE + K4) & KVM_PTE_VALID, 0);
    // And unmap rounds the same way: one page.
    // SAFETY: as above.
    let r = unsafe { kvm_pgtable_hyp_map(t.hyp(), WBASE + K4, K4, RAM + K4, RW) };
    assert_eq!(r, 0);
    // SAFETY: as above.
    let unmapped = unsafe { kvm_pgtable_hyp_unmap(t.hyp(), WBASE + 0x800, K4) };
    assert_eq!(unmapped, K4);
    assert_eq!(hyp_leaf(&mut t, WBASE + K4) & KVM_PTE_ADDR_MASK, RAM + K4);
}

#[test]
fn a_map_with_table_post_stops_after_the_first_table_as_6_12() {
    let _pool = Pool::lock();
    let mut t = Tables::new().unwrap();
    let flags = WALK_TABLE_POST;
    // Two pages in two leaf tables: 6.12's map walker answers the first
    // post-order visit (the first leaf table's) with -EINVAL.
    // SAFETY: an initialised table, used by this call only.
    let r =
        unsafe { kvm_pgtable_stage2_map(t.s2(), WBASE + M2 - K4, 2 * K4, RAM, RW, mc(), flags) };
    assert_eq!(r, -PGW_EINVAL);
    assert_eq!(
        leaf(&mut t, WBASE + M2 - K4),
        (leaf(&mut t, WBASE + M2 - K4).0, 3)
    );
    assert_eq!(leaf(&mut t, WBASE + M2 - K4).0 & KVM_PTE_ADDR_MASK, RAM);
    assert_eq!(leaf(&mut t, WBASE + M2).0 & KVM_PTE_VALID, 0);
    // A block: mapped, then the level-2 table's post-order visit stops it.
    // SAFETY: as above.
    let r = unsafe {
        kvm_pgtable_stage2_map(t.s2(), WBASE + 2 * M2, M2, RAM + 2 * M2, RW, mc(), flags)
    };
    assert_eq!(r, -PGW_EINVAL);
    assert_eq!(leaf(&mut t, WBASE + 2 * M2).1, 2);
    // The fault path stops the same way.
    let fault = flags | WALK_SHARED | WALK_HANDLE_FAULT;
    // SAFETY: as above.
    let r = unsafe { kvm_pgtable_stage2_map(t.s2(), WBASE + M2, K4, RAM + M2, RW, mc(), fault) };
    assert_eq!(r, -PGW_EINVAL);
    assert_eq!(leaf(&mut t, WBASE + M2).0 & KVM_PTE_ADDR_MASK, RAM + M2);
    t.check().unwrap();
}

/// What the README promises of a `kvm_pgtable_stage2_map` that runs out of
/// table pages in the middle.
#[test]
fn a_map_out_of_memory_keeps_what_it_mapped_before_and_loses_no_page() {
    let pool = Pool::lock();
    let mut t = Tables::new().unwrap();
    let live = pool.live();
    // Three pages across a 2 MiB boundary need a level-2 table and two
    // leaf tables; the second leaf table is not to be had.
    let start = WBASE + M2 - 2 * K4;
    pool.fail_after(2);
    // SAFETY: an initialised table, used by this call only.
    let r = unsafe { kvm_pgtable_stage2_map(t.s2(), start, 3 * K4, RAM, RW, mc(), 0) };
    assert_eq!(r, -PGW_ENOMEM);
    // The pages before the failing entry are mapped, as asked.
    for i in 0..2 {
        let (pte, level) = leaf(&mut t, start + i * K4);
        assert_eq!((pte & KVM_PTE_ADDR_MASK, level), (RAM + i * K4, 3));
    }
    // The entry that needed the table, and all after it, are as they were.
    assert_eq!(leaf(&mut t, WBASE + M2), (0, 2));
    // Nothing half-written, every page taken is linked: none lost.
    let report = t.check().unwrap();
    assert_eq!(
        (report.table_pages, report.empty_tables, report.leaves),
        (2, 0, [0, 0, 0, 2])
    );
    assert_eq!(pool.live(), live + 2);

    // A failure right below a table the map just linked leaves that table
    // empty, linked: a legitimate state, which the retry fills.
    pool.fail_after(0);
    // SAFETY: as above.
    let r = unsafe { kvm_pgtable_stage2_map(t.s2(), WBASE + 8 * M2, K4, RAM, RW, mc(), 0) };
    assert_eq!(r, -PGW_ENOMEM);
    assert_eq!(t.check().unwrap().empty_tables, 0);
    pool.fail_after(1);
    // SAFETY: as above.
    let r = unsafe { kvm_pgtable_stage2_map(t.s2(), WBASE + 1024 * M2, K4, RAM, RW, mc(), 0) };
    assert_eq!(r, -PGW_ENOMEM);
    let report = t.check().unwrap();
    assert_eq!((report.table_pages, report.empty_tables), (3, 1));
    assert_eq!(pool.live(), live + 3);

    // The retry with memory completes both maps.
    pool.fail_after(u64::MAX / 2);
    // SAFETY: as above.
    let r = unsafe { kvm_pgtable_stage2_map(t.s2(), start, 3 * K4, RAM, RW, mc(), 0) };
    assert_eq!(r, 0);
    // SAFETY: as above.
    let r = unsafe { kvm_pgtable_stage2_map(t.s2(), WBASE + 1024 * M2, K4, RAM, RW, mc(), 0) };
    assert_eq!(r, 0);
    assert_eq!(leaf(&mut t, WBASE + M2).0 & KVM_PTE_ADDR_MASK, RAM + 2 * K4);
    let report = t.check().unwrap();
    assert_eq!(
        (report.table_pages, report.empty_tables, report.leaves),
        (5, 0, [0, 0, 0, 4])
    );
}

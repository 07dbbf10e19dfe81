//! The hypervisor's own EL2 stage-1 translation: an identity map in a
//! pgwalk hyp table (`pgwalk::hyp`), 4 KiB granule, 32-bit VA (start at
//! level 1), PS 40 bits, with table pages from a small static pool of its
//! own (so that the stage-2 pool's accounting in `check.rs` stays the
//! guest's alone).
//!
//! The interface: [`map`] a range with [`Attr`]s while the MMU is off
//! ([`build`] maps everything the hypervisor uses), then [`enable`] on each
//! CPU.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use pgwalk::descriptor::HYP_MAIR;
use pgwalk::geometry::{Geometry, Granule, Level};
use pgwalk::hyp::{HypTable, HypTlb};
use pgwalk::{Ipa, MemoryOps, PhysAddr, Prot, Va};

use crate::arch::{self, isb, read_sysreg, tlbi_el2_local, write_sysreg};
use crate::layout::{self, PAGE};

/// What a mapping allows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// Normal write-back, read-only, executable: code.
    Code,
    /// Normal write-back, read-only, never executable.
    ReadOnly,
    /// Normal write-back, read-write, never executable.
    ReadWrite,
    /// Device-nGnRE, read-write, never executable.
    Device,
}

impl Attr {
    fn prot(self) -> Prot {
        match self {
            Attr::Code => Prot::R | Prot::X,
            Attr::ReadOnly => Prot::R,
            Attr::ReadWrite => Prot::RW,
            Attr::Device => Prot::RW | Prot::DEVICE,
        }
    }
}

const TABLE_PAGES: usize = 16;
const VA_BITS: u8 = 32;
const PA_BITS: u8 = 40;

#[repr(C, align(4096))]
struct Page([AtomicU64; 512]);

static PAGES: [Page; TABLE_PAGES] =
    [const { Page([const { AtomicU64::new(0) }; 512]) }; TABLE_PAGES];
/// Each page's reference count; 0 = free.
static REFS: [AtomicU32; TABLE_PAGES] = [const { AtomicU32::new(0) }; TABLE_PAGES];

/// The table, built by [`build`] on CPU 0 before any other CPU runs.
static TABLE: spin::Mutex<Option<HypTable<El2Pages>>> = spin::Mutex::new(None);
/// TTBR0_EL2 and TCR_EL2 of the table, for [`enable`] on every CPU.
static TTBR0: AtomicU64 = AtomicU64::new(0);
static TCR: AtomicU64 = AtomicU64::new(0);

fn page_pa(idx: usize) -> PhysAddr {
    PhysAddr(&PAGES[idx] as *const Page as u64)
}

fn index(pa: PhysAddr) -> usize {
    let idx = pa.get().wrapping_sub(page_pa(0).get()) / PAGE;
    assert!(
        idx < TABLE_PAGES as u64,
        "el2_mmu: {pa:?} is not an EL2 table page"
    );
    idx as usize
}

/// The hyp table's host: the static pool above, identity phys<->virt, and
/// EL2 TLB maintenance.
///
/// Counts are read and written with plain loads and stores, never
/// read-modify-write: the table changes on one CPU under [`TABLE`]'s lock,
/// and while the MMU is off memory is Device-nGnRnE, where exclusive
/// accesses are not guaranteed to work.
struct El2Pages;

// SAFETY: `zalloc_page` hands out a free page of `PAGES` (count 0),
// zeroed, 4 KiB-aligned, with a count of 1, and nothing else uses it until
// `put_page` takes its count back to 0; `phys_to_virt` is the identity on
// those pages, which are statics (always valid, 8-byte aligned); counts
// change only through `get_page`/`put_page` and cannot wrap (a table page
// has at most 513 references). Hyp tables use none of the stage-2 methods
// (exact blocks, deferred frees, cache and stage-2 TLB maintenance): they
// panic, which only a pgwalk bug could reach.
unsafe impl MemoryOps for El2Pages {
    type PagePool = ();

    fn zalloc_page(&self, _pool: &mut ()) -> Option<PhysAddr> {
        let idx = REFS.iter().position(|r| r.load(Ordering::Relaxed) == 0)?;
        for e in &PAGES[idx].0 {
            e.store(0, Ordering::Relaxed);
        }
        REFS[idx].store(1, Ordering::Release);
        Some(page_pa(idx))
    }

    fn zalloc_pages_exact(&self, _size: usize) -> Option<PhysAddr> {
        None
    }

    unsafe fn free_pages_exact(&self, pa: PhysAddr, _size: usize) {
        unreachable!("el2_mmu: hyp tables allocate no exact blocks ({pa:?})")
    }

    unsafe fn free_unlinked_table(&self, table: PhysAddr, _level: Level) {
        unreachable!("el2_mmu: hyp tables unlink nothing under shared walkers ({table:?})")
    }

    unsafe fn get_page(&self, pa: PhysAddr) {
        let r = &REFS[index(pa)];
        let count = r.load(Ordering::Relaxed);
        assert!(
            count != 0 && count < 1024,
            "el2_mmu: bad count {count} on {pa:?}"
        );
        r.store(count + 1, Ordering::Relaxed);
    }

    unsafe fn put_page(&self, pa: PhysAddr) {
        let r = &REFS[index(pa)];
        let count = r.load(Ordering::Relaxed);
        assert!(count != 0, "el2_mmu: put_page on free page {pa:?}");
        r.store(count - 1, Ordering::Release);
    }

    fn page_count(&self, pa: PhysAddr) -> usize {
        REFS[index(pa)].load(Ordering::Acquire) as usize
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        NonNull::from(&PAGES[index(pa)]).cast()
    }

    fn dcache_clean_inval_poc(&self, pa: PhysAddr, _size: u64) {
        unreachable!("el2_mmu: hyp tables do no cache maintenance ({pa:?})")
    }

    fn icache_inval_pou(&self, pa: PhysAddr, _size: u64) {
        unreachable!("el2_mmu: hyp tables do no cache maintenance ({pa:?})")
    }

    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, _level: Level) {
        unreachable!("el2_mmu: no stage-2 TLB maintenance for EL2 tables ({ipa:?})")
    }

    fn tlb_flush_vmid_range(&self, ipa: Ipa, _size: u64) {
        unreachable!("el2_mmu: no stage-2 TLB maintenance for EL2 tables ({ipa:?})")
    }

    fn tlb_flush_vmid(&self) {
        unreachable!("el2_mmu: no stage-2 TLB maintenance for EL2 tables")
    }
}

impl HypTlb for El2Pages {
    fn flush_va(&self, va: Va, _level: Level) {
        arch::tlbi_el2_va(va.get());
    }

    fn flush_va_walks(&self, va: Va, _level: Level) {
        arch::tlbi_el2_va_walks(va.get());
    }

    fn publish(&self) {
        arch::publish_tables();
    }
}

/// Identity-maps `va..va + size` (page-aligned) with `attr`, using 2 MiB
/// and 1 GiB blocks where they fit. Only before [`enable`], on one CPU.
pub fn map(va: u64, size: u64, attr: Attr) {
    let mut table = TABLE.lock();
    let table = table.as_mut().expect("el2_mmu: map before build");
    table
        .exclusive()
        .map(Va(va), size, PhysAddr(va), attr.prot(), &mut ())
        .unwrap_or_else(|e| panic!("el2_mmu: mapping {va:#x}+{size:#x}: {e}"));
}

/// Builds the hypervisor's map: code, read-only data, the rest of its
/// memory read-write, all guest RAM read-write (for cache maintenance by
/// address), the UART.
pub fn build() {
    let geometry = Geometry::for_va_bits(Granule::Size4KiB, VA_BITS, PA_BITS)
        .expect("el2_mmu: the EL2 geometry");
    let table =
        HypTable::with_geometry(geometry, El2Pages, &mut ()).expect("el2_mmu: the EL2 root");
    TTBR0.store(table.ttbr0_el2(), Ordering::Relaxed);
    TCR.store(table.tcr_el2(), Ordering::Relaxed);
    *TABLE.lock() = Some(table);

    let hv = layout::HV_BASE;
    map(hv, layout::text_end() - hv, Attr::Code);
    map(
        layout::text_end(),
        layout::rodata_end() - layout::text_end(),
        Attr::ReadOnly,
    );
    let rw_end = layout::hv_end().next_multiple_of(PAGE);
    map(
        layout::rodata_end(),
        rw_end - layout::rodata_end(),
        Attr::ReadWrite,
    );
    map(
        layout::GUEST_RAM_BASE,
        layout::GUEST_RAM_SIZE,
        Attr::ReadWrite,
    );
    map(0x0900_0000, PAGE, Attr::Device);
    check(&[
        (hv, Attr::Code),
        (layout::text_end(), Attr::ReadOnly),
        (layout::rodata_end(), Attr::ReadWrite),
        (layout::pool().0, Attr::ReadWrite),
        (layout::GUEST_RAM_END - PAGE, Attr::ReadWrite),
        (0x0900_0000, Attr::Device),
    ]);
}

/// Reads back, through pgwalk's own lookup, what a few addresses map to:
/// themselves, with the attributes asked for.
fn check(expected: &[(u64, Attr)]) {
    let mut table = TABLE.lock();
    let h = table
        .as_mut()
        .expect("el2_mmu: check before build")
        .exclusive();
    for &(va, attr) in expected {
        let (leaf, level) = h
            .get_leaf(Va(va))
            .unwrap_or_else(|e| panic!("el2_mmu: {va:#x}: {e}"));
        let size = h.geometry().entry_size(level);
        let pa = leaf.output_address(Granule::Size4KiB).get() + (va & (size - 1));
        assert!(
            leaf.is_valid() && pa == va && leaf.prot() == attr.prot(),
            "el2_mmu: {va:#x} maps {leaf:?} at level {level}"
        );
    }
}

/// EL2 table pages in use (the root included).
pub fn table_pages() -> usize {
    REFS.iter()
        .filter(|r| r.load(Ordering::Relaxed) != 0)
        .count()
}

/// Turns this CPU's EL2 MMU and caches on with the table [`build`] made.
pub fn enable() {
    // SAFETY: these describe the table `build` made (HYP_MAIR is the
    // MAIR_EL2 its leaves index, TCR_EL2 its geometry with write-back
    // inner-shareable walks), which the MMU uses only once SCTLR_EL2.M is
    // set below.
    unsafe {
        write_sysreg!("mair_el2", HYP_MAIR);
        write_sysreg!("tcr_el2", TCR.load(Ordering::Relaxed));
        write_sysreg!("ttbr0_el2", TTBR0.load(Ordering::Relaxed));
    }
    isb();
    tlbi_el2_local();
    // SCTLR_EL2: M, C, SA, I on; A (alignment checks) and WXN off; RES1
    // bits 4, 5, 11, 16, 18, 22, 23, 28, 29.
    let res1 =
        1 << 4 | 1 << 5 | 1 << 11 | 1 << 16 | 1 << 18 | 1 << 22 | 1 << 23 | 1 << 28 | 1 << 29;
    let sctlr = read_sysreg!("sctlr_el2") & !(1 << 1 | 1 << 19 | 1 << 25)
        | res1
        | 1
        | 1 << 2
        | 1 << 3
        | 1 << 12;
    // SAFETY: the table maps every address the hypervisor uses (its image,
    // stacks, pools, guest RAM, the UART) to itself, so translation on
    // changes no address. What was written with the MMU off went around
    // the data cache, which has held nothing since the CPU came out of
    // reset (or PSCI CPU_OFF, which cleans it), so no stale line can hide it.
    unsafe { write_sysreg!("sctlr_el2", sctlr) };
    isb();
}

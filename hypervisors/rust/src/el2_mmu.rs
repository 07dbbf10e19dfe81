//! The hypervisor's own EL2 stage-1 translation: identity-mapped, 4 KiB
//! granule, 32-bit VA (start at level 1).
//!
//! TEMPORARY until pgwalk's hyp tables land (issue 14): this hand-written
//! table builder is the one piece of page-table code outside pgwalk. Its
//! interface is what the replacement must offer: [`map`] a range with
//! [`Attr`]s while the MMU is off, then [`enable`] on each CPU.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::arch::{isb, read_sysreg, tlbi_el2_local, write_sysreg};
use crate::layout;

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

const ENTRIES: usize = 512;
const TABLES: usize = 16;
const VA_BITS: u64 = 32;

/// MAIR_EL2: index 0 Device-nGnRE, index 1 Normal write-back
/// read/write-allocate (inner and outer).
const MAIR: u64 = 0x04 | 0xff << 8;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;

const VALID: u64 = 1 << 0;
const TABLE: u64 = 1 << 1;
const PAGE: u64 = 1 << 1;
/// AP\[2:1\] at non-VHE EL2: 0b01 read-write, 0b11 read-only (AP\[1\] is RES1).
const AP_RW: u64 = 0b01 << 6;
const AP_RO: u64 = 0b11 << 6;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const XN: u64 = 1 << 54;

#[repr(C, align(4096))]
struct Table([AtomicU64; ENTRIES]);

static POOL: [Table; TABLES] = [const { Table([const { AtomicU64::new(0) }; ENTRIES]) }; TABLES];
/// Table pages in use; `POOL[0]` is the root (level 1).
static USED: AtomicUsize = AtomicUsize::new(1);

fn table_pa(t: &Table) -> u64 {
    t as *const Table as u64
}

fn table_at(pa: u64) -> &'static Table {
    let base = table_pa(&POOL[0]);
    let idx = ((pa - base) / 4096) as usize;
    &POOL[idx]
}

fn new_table() -> &'static Table {
    let idx = USED.fetch_add(1, Ordering::Relaxed);
    assert!(idx < TABLES, "el2_mmu: out of table pages");
    &POOL[idx]
}

fn leaf_bits(attr: Attr) -> u64 {
    let base = AF | SH_INNER;
    match attr {
        Attr::Code => base | ATTR_NORMAL | AP_RO,
        Attr::ReadOnly => base | ATTR_NORMAL | AP_RO | XN,
        Attr::ReadWrite => base | ATTR_NORMAL | AP_RW | XN,
        Attr::Device => ATTR_DEVICE | AF | AP_RW | XN,
    }
}

/// Identity-maps `va..va + size` (page-aligned) with `attr`, using 2 MiB
/// and 1 GiB blocks where they fit. Only before [`enable`], on one CPU.
pub fn map(va: u64, size: u64, attr: Attr) {
    assert!(va % 4096 == 0 && size % 4096 == 0 && va + size <= 1 << VA_BITS);
    let mut addr = va;
    while addr < va + size {
        addr = map_one(&POOL[0], 1, addr, va + size, attr);
    }
}

/// Maps the largest piece at `addr` that `level` and below can hold;
/// returns where the next piece starts.
fn map_one(table: &Table, level: u32, addr: u64, end: u64, attr: Attr) -> u64 {
    let shift = 12 + 9 * (3 - level);
    let size = 1u64 << shift;
    let idx = ((addr >> shift) & 511) as usize;
    let entry = &table.0[idx];
    let old = entry.load(Ordering::Relaxed);
    if level == 3 || (addr % size == 0 && end - addr >= size && old & VALID == 0) {
        assert!(old & VALID == 0, "el2_mmu: {addr:#x} mapped twice");
        let kind = if level == 3 { PAGE } else { 0 };
        entry.store(addr | leaf_bits(attr) | kind | VALID, Ordering::Relaxed);
        return addr + size;
    }
    let child = if old & VALID != 0 {
        assert!(old & TABLE != 0, "el2_mmu: {addr:#x} inside a block");
        table_at(old & 0x0000_ffff_ffff_f000)
    } else {
        let t = new_table();
        entry.store(table_pa(t) | TABLE | VALID, Ordering::Relaxed);
        t
    };
    let child_end = ((addr >> shift) + 1) << shift;
    let mut a = addr;
    while a < end.min(child_end) {
        a = map_one(child, level + 1, a, end.min(child_end), attr);
    }
    a
}

/// Builds the hypervisor's map: code, read-only data, the rest of its
/// memory read-write, all guest RAM read-write (for cache maintenance by
/// address), the UART.
pub fn build() {
    let hv = layout::HV_BASE;
    map(hv, layout::text_end() - hv, Attr::Code);
    map(
        layout::text_end(),
        layout::rodata_end() - layout::text_end(),
        Attr::ReadOnly,
    );
    let rw_end = (layout::hv_end() + 4095) & !4095;
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
    map(0x0900_0000, 0x1000, Attr::Device);
}

/// Turns this CPU's EL2 MMU and caches on with the table [`build`] made.
pub fn enable() {
    // TCR_EL2: T0SZ, IRGN0/ORGN0 write-back write-allocate, SH0 inner,
    // TG0 4 KiB, PS 40 bits, RES1 bits 31 and 23.
    let tcr =
        (64 - VA_BITS) | 0b01 << 8 | 0b01 << 10 | 0b11 << 12 | 0b010 << 16 | 1 << 31 | 1 << 23;
    // SAFETY: these describe the table `build` made, which the MMU uses
    // only once SCTLR_EL2.M is set below.
    unsafe {
        write_sysreg!("mair_el2", MAIR);
        write_sysreg!("tcr_el2", tcr);
        write_sysreg!("ttbr0_el2", table_pa(&POOL[0]));
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
    // stacks, pool, guest RAM, the UART) to itself, so translation on
    // changes no address. What was written with the MMU off went around
    // the data cache, which has held nothing since the CPU came out of
    // reset (or PSCI CPU_OFF, which cleans it), so no stale line can hide it.
    unsafe { write_sysreg!("sctlr_el2", sctlr) };
    isb();
}

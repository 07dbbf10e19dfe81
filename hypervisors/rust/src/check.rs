//! The end of a run: what the guest touched, the final check of the
//! stage-2 table, and the statistics.
//!
//! The check, with the table's write lock held: every table page's
//! reference count is 1 plus its non-zero entries, no child table is empty,
//! no locked marker is left, every leaf is an identity mapping of guest
//! RAM (Normal write-back) or of a device (Device, never executable), every
//! page the guest faulted on is mapped so, and the pool holds exactly the
//! table's pages.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use pgwalk::descriptor::{Descriptor, MemAttr};
use pgwalk::visit::{Action, VisitKind, WalkFlags};
use pgwalk::{Ipa, MemoryOps, PhysAddr};

use crate::layout::{GUEST_RAM_BASE, GUEST_RAM_SIZE, HV_BASE, HV_SIZE, PAGE};
use crate::memmap::{self, Region};
use crate::memops::{self, HvMemory};
use crate::{arch, dirty, grace, hvprintln, stats, vm};

const RAM_WORDS: usize = (GUEST_RAM_SIZE / PAGE / 64) as usize;
static TOUCHED_RAM: [AtomicU64; RAM_WORDS] = [const { AtomicU64::new(0) }; RAM_WORDS];
const DEVICE_SLOTS: usize = 128;
static TOUCHED_DEVICE: [AtomicU64; DEVICE_SLOTS] = [const { AtomicU64::new(0) }; DEVICE_SLOTS];
static DEVICE_USED: AtomicUsize = AtomicUsize::new(0);
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Records a RAM page the guest faulted on.
pub fn touched_ram(ipa: u64) {
    let page = (ipa - GUEST_RAM_BASE) / PAGE;
    TOUCHED_RAM[(page / 64) as usize].fetch_or(1 << (page % 64), Ordering::Relaxed);
}

/// Records a device page the guest faulted on and got mapped.
pub fn touched_device(ipa: u64) {
    let slot = DEVICE_USED.fetch_add(1, Ordering::Relaxed);
    if slot < DEVICE_SLOTS {
        TOUCHED_DEVICE[slot].store(ipa & !(PAGE - 1) | 1, Ordering::Relaxed);
    }
}

/// Whether the run is ending (no new dirty-logging round starts).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Acquire)
}

/// Problems found, and the first few of them.
struct Findings {
    count: usize,
}

impl Findings {
    fn fail(&mut self, args: core::fmt::Arguments<'_>) {
        self.count += 1;
        if self.count <= 12 {
            hvprintln!("pgwalk-hv: table check: {args}");
        }
    }
}

// PGWALK: pgwalk has no invariant check a host can run on its own table
// (reference count = 1 + non-zero entries, no empty child, no locked
// marker), so this reads the table pages raw through `phys_to_virt`; a
// `Handle<Exclusive>::check()` (for the C hypervisor too) would replace it.
fn entries(pa: PhysAddr) -> &'static [AtomicU64; 512] {
    let p = HvMemory.phys_to_virt(pa).cast::<[AtomicU64; 512]>();
    // SAFETY: `pa` is a table page of the pool (phys_to_virt checks it),
    // mapped at EL2, 4 KiB aligned; with the write lock held nobody changes
    // it, and atomics make the reads sound regardless.
    unsafe { p.as_ref() }
}

/// Non-zero entries of a table page; reports locked markers.
fn counted(pa: PhysAddr, f: &mut Findings) -> usize {
    let mut n = 0;
    for e in entries(pa) {
        let d = Descriptor::from_bits(e.load(Ordering::Acquire));
        if d.is_locked() {
            f.fail(format_args!(
                "locked marker left in table page {:#x}",
                pa.get()
            ));
        }
        if d.bits() != 0 {
            n += 1;
        }
    }
    n
}

/// Leaves found by the check.
#[derive(Default)]
struct Leaves {
    blocks: u64,
    pages: u64,
    device_pages: u64,
    tables: usize,
}

/// Ends the run: stops dirty logging, takes the write lock, checks the
/// table and prints the statistics. Returns whether the check passed.
pub fn finish() -> bool {
    STOPPING.store(true, Ordering::Release);
    let elapsed_ms = (arch::counter() - stats::STATS.start.load(Ordering::Relaxed)) * 1000
        / arch::counter_freq();
    let mut guard = vm::table().write();
    // SAFETY: the write lock is held: no walk runs or can start, so every
    // queued subtree is unreachable and unread.
    unsafe { grace::drain() };
    let mut f = Findings { count: 0 };
    let mut leaves = Leaves::default();

    let geometry = *guard.geometry();
    let granule = geometry.granule();
    let pgd = guard.root();
    for page in 0..geometry.root_pages() {
        let pa = PhysAddr(pgd.get() + page as u64 * PAGE);
        let n = counted(pa, &mut f);
        let c = HvMemory.page_count(pa);
        if c != 1 + n {
            f.fail(format_args!(
                "root page {:#x}: count {c}, {n} entries",
                pa.get()
            ));
        }
    }
    let mut h = guard.exclusive();
    let walked = h.walk(
        Ipa(0),
        geometry.ia_limit(),
        WalkFlags::TABLE_PRE | WalkFlags::LEAF,
        |ctx| {
            let d = ctx.old();
            let ipa = ctx.entry_addr().get();
            match ctx.kind() {
                VisitKind::TablePre => {
                    let child = d.output_address(granule);
                    let n = counted(child, &mut f);
                    let c = HvMemory.page_count(child);
                    leaves.tables += 1;
                    if n == 0 {
                        f.fail(format_args!(
                            "empty table at {ipa:#x} level {}",
                            ctx.level().next()
                        ));
                    }
                    if c != 1 + n {
                        f.fail(format_args!(
                            "table page {:#x} (for {ipa:#x}): count {c}, {n} entries",
                            child.get()
                        ));
                    }
                }
                VisitKind::Leaf if d.is_valid() => {
                    let size = ctx.entry_size();
                    let pa = d.output_address(granule).get();
                    if pa != ipa {
                        f.fail(format_args!("{ipa:#x} maps {pa:#x}, not itself"));
                    }
                    if ipa < HV_BASE + HV_SIZE && ipa + size > HV_BASE {
                        f.fail(format_args!("{ipa:#x} maps the hypervisor's memory"));
                    }
                    match (memmap::lookup(ipa), ctx.level().get()) {
                        (Some(Region::Ram), level @ (2 | 3)) => {
                            if !memmap::is_ram(ipa, size)
                                || d.mem_attr() != Ok(MemAttr::NormalWriteBack)
                            {
                                f.fail(format_args!("RAM leaf {ipa:#x} (level {level}): {d:?}"));
                            }
                            if level == 2 {
                                leaves.blocks += 1;
                            } else {
                                leaves.pages += 1;
                            }
                        }
                        (Some(Region::Device(name)), 3) => {
                            if d.mem_attr() != Ok(MemAttr::DeviceNGnRE) || d.is_executable() {
                                f.fail(format_args!("{name} page {ipa:#x}: {d:?}"));
                            }
                            leaves.device_pages += 1;
                        }
                        (region, level) => f.fail(format_args!(
                            "unexpected leaf {ipa:#x} level {level} in {region:?}: {d:?}"
                        )),
                    }
                }
                VisitKind::Leaf if d.bits() != 0 => {
                    f.fail(format_args!("stray invalid entry at {ipa:#x}: {d:?}"))
                }
                _ => {}
            }
            Ok(Action::Continue)
        },
    );
    if let Err(e) = walked {
        f.fail(format_args!("the walk failed: {e}"));
    }

    // Every page the guest faulted on is mapped as intended.
    let mut touched = 0;
    for (w, word) in TOUCHED_RAM.iter().enumerate() {
        let mut bits = word.load(Ordering::Relaxed);
        while bits != 0 {
            let b = bits.trailing_zeros() as u64;
            bits &= bits - 1;
            touched += 1;
            let ipa = GUEST_RAM_BASE + (w as u64 * 64 + b) * PAGE;
            match h.get_leaf(Ipa(ipa)) {
                Ok((d, level))
                    if d.is_valid()
                        && d.readable()
                        && d.output_address(granule).get()
                            == ipa & !(geometry.entry_size(level) - 1)
                        && d.mem_attr() == Ok(MemAttr::NormalWriteBack) => {}
                other => f.fail(format_args!(
                    "touched RAM page {ipa:#x} not mapped as RAM: {other:?}"
                )),
            }
        }
    }
    let devices = DEVICE_USED.load(Ordering::Relaxed).min(DEVICE_SLOTS);
    for slot in &TOUCHED_DEVICE[..devices] {
        let ipa = slot.load(Ordering::Relaxed) & !1;
        match h.get_leaf(Ipa(ipa)) {
            Ok((d, _))
                if d.is_valid()
                    && d.output_address(granule).get() == ipa
                    && d.mem_attr() == Ok(MemAttr::DeviceNGnRE) => {}
            other => f.fail(format_args!(
                "touched device page {ipa:#x} not mapped as a device: {other:?}"
            )),
        }
    }

    let (in_use, peak) = memops::pool_usage();
    let table_pages = geometry.root_pages() + leaves.tables;
    if in_use != table_pages {
        f.fail(format_args!(
            "pool: {in_use} pages in use, the table has {table_pages}"
        ));
    }
    drop(guard);

    stats::print(elapsed_ms);
    hvprintln!(
        "pgwalk-hv: final table: {} RAM blocks (2 MiB), {} RAM pages (4 KiB), {} device pages, {} table pages (peak {peak})",
        leaves.blocks,
        leaves.pages,
        leaves.device_pages,
        table_pages
    );
    let mut rounds = 0;
    let mut with_writes = 0;
    for (i, pages) in dirty::counts().enumerate() {
        rounds += 1;
        if pages > 0 {
            with_writes += 1;
        }
        hvprintln!("pgwalk-hv: dirty round {}: {} pages", i + 1, pages);
    }
    hvprintln!("pgwalk-hv: dirty rounds: {rounds} counted, {with_writes} with writes");
    hvprintln!(
        "pgwalk-hv: vCPUs that ran the guest: {}",
        crate::vcpu::all()
            .iter()
            .filter(|v| v.boots.load(Ordering::Relaxed) > 0)
            .count()
    );
    if f.count == 0 {
        hvprintln!(
            "pgwalk-hv: TABLE CHECK PASSED ({} tables, {touched} touched RAM pages, {devices} device pages checked)",
            leaves.tables
        );
        true
    } else {
        hvprintln!("pgwalk-hv: TABLE CHECK FAILED: {} problems", f.count);
        false
    }
}

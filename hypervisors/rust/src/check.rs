//! The end of a run: what the guest touched, the final check of the
//! stage-2 table, and the statistics.
//!
//! The check, with the table's write lock held: pgwalk's own structural
//! check (`Handle::check`: every table page's reference count is 1 plus its
//! non-zero entries, no child table is empty, no locked marker is left, no
//! leaf at a level that cannot hold one), then this hypervisor's: every
//! leaf is an identity mapping of guest RAM (Normal write-back) or of a
//! device (Device, never executable), nothing is annotated, every page the
//! guest faulted on is mapped so, and the pool holds exactly the table's
//! pages.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use pgwalk::descriptor::MemAttr;
use pgwalk::visit::{Action, VisitKind, WalkFlags, Walked};
use pgwalk::Ipa;

use crate::layout::{GUEST_RAM_BASE, GUEST_RAM_SIZE, HV_BASE, HV_SIZE, PAGE};
use crate::memmap::{self, Region};
use crate::memops;
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

/// Leaves found by the check.
#[derive(Default)]
struct Leaves {
    blocks: u64,
    pages: u64,
    device_pages: u64,
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
    let mut h = guard.exclusive();
    // Tables outside the pool are reported, not followed; the walk below
    // follows every table, so it runs only on a table found sound.
    let checked = h.check_with(memops::in_pool);
    if let Err(broken) = &checked {
        f.fail(format_args!("{broken}"));
    }
    let report = checked.unwrap_or_default();
    if report.annotations != 0 {
        f.fail(format_args!(
            "{} annotated entries: this hypervisor annotates none",
            report.annotations
        ));
    }
    let mut walked = Ok(Walked::Completed);
    if f.count == 0 {
        walked = h.walk(Ipa(0), geometry.ia_limit(), WalkFlags::LEAF, |ctx| {
            let d = ctx.old();
            let ipa = ctx.entry_addr().get();
            match ctx.kind() {
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
        });
    }
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
    let table_pages = geometry.root_pages() + report.table_pages;
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
            report.table_pages
        );
        true
    } else {
        hvprintln!("pgwalk-hv: TABLE CHECK FAILED: {} problems", f.count);
        false
    }
}

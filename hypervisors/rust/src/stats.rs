//! Counters of what the hypervisor did, printed when the run ends.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::hvprintln;

/// The kinds of stage-2 fault, from ESR_EL2's fault status code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultKind {
    /// No valid entry at some level.
    Translation = 0,
    /// The leaf's access flag is clear.
    AccessFlag = 1,
    /// The leaf does not allow the access.
    Permission = 2,
    /// Anything else (an address-size fault: an IPA beyond 40 bits).
    Other = 3,
}

impl FaultKind {
    const NAMES: [&'static str; 4] = ["translation", "access-flag", "permission", "other"];
}

/// Every counter.
pub struct Stats {
    /// Faults by kind (rows) and outcome (columns: fixed, spurious, retry,
    /// abort injected).
    pub faults: [[AtomicU64; 4]; 4],
    /// 4 KiB pages of RAM mapped by a fault.
    pub ram_pages_mapped: AtomicU64,
    /// 2 MiB blocks of RAM mapped by a fault.
    pub ram_blocks_mapped: AtomicU64,
    /// Device pages mapped.
    pub device_pages_mapped: AtomicU64,
    /// Blocks split into pages by a write fault during dirty logging.
    pub blocks_split: AtomicU64,
    /// Page tables replaced by a block again after dirty logging.
    pub blocks_recovered: AtomicU64,
    /// Write faults that recorded a dirty page.
    pub dirty_faults: AtomicU64,
    /// `tlbi ipas2e1is` by one IPA.
    pub tlbi_ipa: AtomicU64,
    /// Range invalidations (by IPA, page by page).
    pub tlbi_range: AtomicU64,
    /// Whole-VMID invalidations.
    pub tlbi_vmid: AtomicU64,
    /// Data-cache clean+invalidate calls and bytes.
    pub dcache_ops: AtomicU64,
    /// Instruction-cache invalidation calls.
    pub icache_ops: AtomicU64,
    /// Table pages allocated from the pool, and freed back.
    pub pages_allocated: AtomicU64,
    /// Table pages freed.
    pub pages_freed: AtomicU64,
    /// Subtrees handed to `free_unlinked_table`.
    pub deferred_frees: AtomicU64,
    /// Of those, freed after their grace period.
    pub deferred_done: AtomicU64,
    /// SMCs, HVCs and WFIs trapped.
    pub smc: AtomicU64,
    /// HVCs.
    pub hvc: AtomicU64,
    /// WFIs.
    pub wfi: AtomicU64,
    /// Undefined-instruction exceptions injected.
    pub undef_injected: AtomicU64,
    /// PSCI calls answered with an error code.
    pub psci_errors: AtomicU64,
    /// Counter ticks spent handling stage-2 faults (from the trap's
    /// decoding to the outcome).
    pub fault_ticks: AtomicU64,
    /// Counter value when the guest was first entered.
    pub start: AtomicU64,
}

/// The counters.
pub static STATS: Stats = Stats {
    faults: [const { [const { AtomicU64::new(0) }; 4] }; 4],
    ram_pages_mapped: AtomicU64::new(0),
    ram_blocks_mapped: AtomicU64::new(0),
    device_pages_mapped: AtomicU64::new(0),
    blocks_split: AtomicU64::new(0),
    blocks_recovered: AtomicU64::new(0),
    dirty_faults: AtomicU64::new(0),
    tlbi_ipa: AtomicU64::new(0),
    tlbi_range: AtomicU64::new(0),
    tlbi_vmid: AtomicU64::new(0),
    dcache_ops: AtomicU64::new(0),
    icache_ops: AtomicU64::new(0),
    pages_allocated: AtomicU64::new(0),
    pages_freed: AtomicU64::new(0),
    deferred_frees: AtomicU64::new(0),
    deferred_done: AtomicU64::new(0),
    smc: AtomicU64::new(0),
    hvc: AtomicU64::new(0),
    wfi: AtomicU64::new(0),
    undef_injected: AtomicU64::new(0),
    psci_errors: AtomicU64::new(0),
    fault_ticks: AtomicU64::new(0),
    start: AtomicU64::new(0),
};

/// Adds one.
#[inline]
pub fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Counts a fault of `kind` with outcome column `outcome`.
pub fn fault(kind: FaultKind, outcome: usize) {
    count(&STATS.faults[kind as usize][outcome]);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Total stage-2 faults handled.
pub fn total_faults() -> u64 {
    STATS.faults.iter().flatten().map(get).sum()
}

/// Prints every counter; `seconds_x1000` is the run's length in ms.
pub fn print(elapsed_ms: u64) {
    let s = &STATS;
    hvprintln!("pgwalk-hv: ---- statistics ----");
    for (kind, row) in s.faults.iter().enumerate() {
        hvprintln!(
            "pgwalk-hv: faults {:<11}: {:>7} fixed, {:>6} spurious, {:>5} retry (race), {:>4} abort injected",
            FaultKind::NAMES[kind],
            get(&row[0]),
            get(&row[1]),
            get(&row[2]),
            get(&row[3])
        );
    }
    let total = total_faults();
    let races: u64 = s.faults.iter().map(|r| get(&r[2])).sum();
    let handling_us = get(&s.fault_ticks) * 1_000_000 / crate::arch::counter_freq();
    hvprintln!(
        "pgwalk-hv: faults total: {total} in {elapsed_ms} ms of guest run ({} faults/s), races resumed: {races}",
        total * 1000 / elapsed_ms.max(1)
    );
    hvprintln!(
        "pgwalk-hv: fault handling: {} ms in all, {} ns per fault, {} faults/s of handling time",
        handling_us / 1000,
        handling_us * 1000 / total.max(1),
        total * 1_000_000 / handling_us.max(1)
    );
    hvprintln!(
        "pgwalk-hv: mapped by faults: {} RAM blocks (2 MiB), {} RAM pages (4 KiB), {} device pages",
        get(&s.ram_blocks_mapped),
        get(&s.ram_pages_mapped),
        get(&s.device_pages_mapped)
    );
    hvprintln!(
        "pgwalk-hv: dirty logging: {} blocks split, {} dirty write faults, {} blocks recovered after logging",
        get(&s.blocks_split),
        get(&s.dirty_faults),
        get(&s.blocks_recovered)
    );
    hvprintln!(
        "pgwalk-hv: TLB invalidations: {} by IPA, {} ranges, {} whole VMID; cache maintenance: {} D-cache, {} I-cache",
        get(&s.tlbi_ipa),
        get(&s.tlbi_range),
        get(&s.tlbi_vmid),
        get(&s.dcache_ops),
        get(&s.icache_ops)
    );
    hvprintln!(
        "pgwalk-hv: table pages: {} allocated, {} freed; unlinked subtrees: {} deferred, {} freed after a grace period",
        get(&s.pages_allocated),
        get(&s.pages_freed),
        get(&s.deferred_frees),
        get(&s.deferred_done)
    );
    hvprintln!(
        "pgwalk-hv: traps: {} SMC, {} HVC, {} WFI, {} undefined injected, {} PSCI errors returned",
        get(&s.smc),
        get(&s.hvc),
        get(&s.wfi),
        get(&s.undef_injected),
        get(&s.psci_errors)
    );
    for v in crate::vcpu::all() {
        hvprintln!(
            "pgwalk-hv: vCPU {}: {} boots, {} traps, {} stage-2 faults",
            v.index,
            get(&v.boots),
            get(&v.traps),
            get(&v.faults)
        );
    }
}

//! Dirty logging: rounds that write-protect all guest RAM through pgwalk's
//! shared walker while the guest runs, with write faults recorded in a
//! bitmap (one bit per 4 KiB page) and counted per round.
//!
//! When: the guest's init marks the start of its memory workload by taking
//! CPU 1 offline and online again (PSCI CPU_OFF, CPU_ON); the CPU_ON arms
//! logging. Rounds are then driven by the generic counter, checked on
//! every trap (WFI traps, so an idle vCPU still comes back): every
//! [`ROUND_MS`], whichever vCPU traps first counts the round that ended
//! and write-protects RAM for the next, for [`ROUNDS`] rounds. After the
//! last one, logging stops and writes recover 2 MiB blocks (fault.rs).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::layout::{GUEST_RAM_BASE, GUEST_RAM_SIZE, PAGE};
use crate::{arch, hvprintln, vm};

/// Rounds per logging session.
pub const ROUNDS: usize = 8;
/// Length of a round.
pub const ROUND_MS: u64 = 400;

const WORDS: usize = (GUEST_RAM_SIZE / PAGE / 64) as usize;

static BITMAP: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];
static ARMED: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicBool = AtomicBool::new(false);
static DONE: AtomicBool = AtomicBool::new(false);
static DRIVING: AtomicBool = AtomicBool::new(false);
/// Rounds started, and rounds counted.
static ROUND: AtomicU32 = AtomicU32::new(0);
static COUNTED: AtomicU32 = AtomicU32::new(0);
/// Changes whenever logging starts a round or stops.
static GENERATION: AtomicU64 = AtomicU64::new(0);
static DEADLINE: AtomicU64 = AtomicU64::new(0);
static STARTED_AT: AtomicU64 = AtomicU64::new(0);
/// Dirty pages of each round.
static COUNTS: [AtomicU64; ROUNDS] = [const { AtomicU64::new(0) }; ROUNDS];

/// Starts logging at the next trap (once per run).
pub fn arm() {
    if !ARMED.swap(true, Ordering::AcqRel) {
        DEADLINE.store(0, Ordering::Release);
    }
}

/// Whether a round is in progress.
pub fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// The current round's generation: a fault that saw another value before
/// it made a page writable may have raced with a round's write-protect.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Records `size` bytes of RAM at `ipa` as dirty.
pub fn mark(ipa: u64, size: u64) {
    let first = (ipa - GUEST_RAM_BASE) / PAGE;
    for page in first..first + size / PAGE {
        let (w, b) = ((page / 64) as usize, page % 64);
        if w < WORDS {
            BITMAP[w].fetch_or(1 << b, Ordering::Relaxed);
        }
    }
}

/// Clears the bitmap and returns how many pages it had.
fn take() -> u64 {
    BITMAP
        .iter()
        .map(|w| u64::from(w.swap(0, Ordering::AcqRel).count_ones()))
        .sum()
}

fn ms(ticks: u64) -> u64 {
    ticks * 1000 / arch::counter_freq()
}

/// Advances the rounds if the current one is over. Called on every trap,
/// outside any walk.
pub fn tick() {
    if !ARMED.load(Ordering::Acquire) || DONE.load(Ordering::Acquire) || crate::check::stopping() {
        return;
    }
    let now = arch::counter();
    if now < DEADLINE.load(Ordering::Acquire) || DRIVING.swap(true, Ordering::AcqRel) {
        return;
    }
    if now >= DEADLINE.load(Ordering::Acquire) && !DONE.load(Ordering::Acquire) {
        advance(now);
    }
    DRIVING.store(false, Ordering::Release);
}

fn advance(now: u64) {
    let round = ROUND.load(Ordering::Relaxed) as usize;
    if round > 0 {
        // KVM's order: take the round's bits, then write-protect again.
        let pages = take();
        COUNTS[round - 1].store(pages, Ordering::Relaxed);
        COUNTED.store(round as u32, Ordering::Release);
        hvprintln!(
            "pgwalk-hv: dirty round {round}: {pages} pages ({} KiB) written in {} ms",
            pages * 4,
            ms(now - STARTED_AT.load(Ordering::Relaxed))
        );
    }
    if round == ROUNDS {
        ACTIVE.store(false, Ordering::SeqCst);
        GENERATION.fetch_add(1, Ordering::SeqCst);
        DONE.store(true, Ordering::Release);
        hvprintln!("pgwalk-hv: dirty logging off after {ROUNDS} rounds");
        return;
    }
    ACTIVE.store(true, Ordering::SeqCst);
    GENERATION.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = vm::wrprotect_ram() {
        panic!("dirty logging: write-protecting guest RAM failed: {e}");
    }
    let start = arch::counter();
    STARTED_AT.store(start, Ordering::Relaxed);
    ROUND.store(round as u32 + 1, Ordering::Relaxed);
    DEADLINE.store(
        start + ROUND_MS * arch::counter_freq() / 1000,
        Ordering::Release,
    );
    if round == 0 {
        hvprintln!(
            "pgwalk-hv: dirty logging on: {ROUNDS} rounds of {ROUND_MS} ms (write-protect took {} ms)",
            ms(start - now)
        );
    }
}

/// Dirty pages per finished round.
pub fn counts() -> impl Iterator<Item = u64> {
    let done = COUNTED.load(Ordering::Acquire) as usize;
    COUNTS.iter().take(done).map(|c| c.load(Ordering::Relaxed))
}

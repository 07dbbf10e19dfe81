//! The grace period for table subtrees unlinked under concurrent walkers:
//! a quiescent-state scheme.
//!
//! Every vCPU counts the quiescent points it passes: places outside any
//! pgwalk walk (entering a trap, leaving it). A subtree handed to
//! `free_unlinked_table` is queued with a snapshot of the counters of the
//! vCPUs online at that moment; it is freed once each of them has counted
//! past its snapshot (or gone offline, which passes one), so no walk that
//! could have seen the subtree is still running.

use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

use pgwalk::geometry::Level;
use pgwalk::PhysAddr;

use crate::layout::MAX_CPUS;
use crate::stats::{count, STATS};
use crate::{memops, vcpu};

const QUEUE_LEN: usize = 256;
const OFFLINE: u64 = u64::MAX;

static QS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static IN_WALK: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

#[derive(Clone, Copy)]
struct Deferred {
    table: PhysAddr,
    level: Level,
    snapshot: [u64; MAX_CPUS],
}

static QUEUE: spin::Mutex<[Option<Deferred>; QUEUE_LEN]> = spin::Mutex::new([None; QUEUE_LEN]);

/// Runs a walk inside this vCPU's read-side critical section.
#[inline(always)]
pub fn read_side<R>(walk: impl FnOnce() -> R) -> R {
    let cpu = vcpu::current_index();
    IN_WALK[cpu].fetch_add(1, Ordering::Relaxed);
    // Pairs with the fence in `defer_free`: either that snapshot sees the
    // quiescent count we had before this walk, or this walk sees the
    // unlinking that preceded it.
    fence(Ordering::SeqCst);
    let r = walk();
    IN_WALK[cpu].fetch_sub(1, Ordering::Release);
    r
}

/// `cpu` is at a quiescent point: outside any walk.
pub fn quiescent(cpu: usize) {
    assert_eq!(
        IN_WALK[cpu].load(Ordering::Relaxed),
        0,
        "quiescent point inside a walk"
    );
    QS[cpu].fetch_add(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
}

/// `cpu` comes online (boot or CPU_ON).
pub fn online(cpu: usize) {
    QS[cpu].fetch_add(1, Ordering::SeqCst);
    ONLINE[cpu].store(true, Ordering::SeqCst);
}

/// `cpu` goes offline: quiescent from now on.
pub fn offline(cpu: usize) {
    quiescent(cpu);
    ONLINE[cpu].store(false, Ordering::SeqCst);
}

/// Queues an unlinked subtree until every online vCPU has passed a
/// quiescent point.
pub fn defer_free(table: PhysAddr, level: Level) {
    fence(Ordering::SeqCst);
    let mut snapshot = [OFFLINE; MAX_CPUS];
    for (c, s) in snapshot.iter_mut().enumerate() {
        if ONLINE[c].load(Ordering::SeqCst) {
            *s = QS[c].load(Ordering::SeqCst);
        }
    }
    let mut queue = QUEUE.lock();
    let slot = queue
        .iter_mut()
        .find(|d| d.is_none())
        .expect("grace: more unlinked subtrees pending than the queue holds");
    *slot = Some(Deferred {
        table,
        level,
        snapshot,
    });
}

fn expired(d: &Deferred) -> bool {
    d.snapshot.iter().enumerate().all(|(c, &snap)| {
        snap == OFFLINE || !ONLINE[c].load(Ordering::SeqCst) || QS[c].load(Ordering::SeqCst) > snap
    })
}

/// Frees every queued subtree whose grace period is over. Called at
/// quiescent points.
pub fn poll() {
    let Some(mut queue) = QUEUE.try_lock() else {
        return;
    };
    for slot in queue.iter_mut() {
        if let Some(d) = slot {
            if expired(d) {
                let d = slot.take().unwrap();
                // SAFETY: handed over once by free_unlinked_table, and every
                // vCPU that was online then has since left every walk.
                unsafe { memops::free_subtree(d.table, d.level) };
                count(&STATS.deferred_done);
            }
        }
    }
}

/// Frees everything queued, regardless of the vCPUs.
///
/// # Safety
///
/// No walk of the table may be running or start meanwhile (the caller
/// holds its write lock).
pub unsafe fn drain() {
    let mut queue = QUEUE.lock();
    for slot in queue.iter_mut() {
        if let Some(d) = slot.take() {
            // SAFETY: handed over once; with no walker running none can be
            // inside the subtree (the caller's contract).
            unsafe { memops::free_subtree(d.table, d.level) };
            count(&STATS.deferred_done);
        }
    }
}

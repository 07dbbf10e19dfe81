//! The grace period behind [`HeapMemory`](super::HeapMemory)'s deferred
//! frees: a read side that costs what a hypervisor's own does (a few plain
//! stores), and a write side that pays for it instead.
//!
//! Every thread that runs a shared walk owns a [`Slot`], a sequence number
//! that is odd while the thread is inside a walk (the outermost one, walks
//! nest) and that only the thread itself writes. Entering a walk is a
//! thread-local lookup, a plain store of the next (odd) number and a
//! *light* barrier; leaving it is a release store of the next (even) one.
//!
//! A table page unlinked under shared walkers is retired with a *heavy*
//! barrier and a snapshot of every slot that was odd then. It is freed once
//! each of those slots has moved on: the walk that was running then has
//! ended. Nothing blocks: whoever finds a retired page's walks over frees
//! it, the next walk to end on any thread or
//! [`quiesce`](super::HeapMemory::quiesce).
//!
//! Why that suffices is the store-buffering pattern: the walker stores its
//! odd number, passes its barrier, then loads table entries; the retiring
//! thread unlinks the page (a store), passes its barrier, then loads the
//! slots. With both barriers sequentially consistent, one side sees the
//! other's store: either the retiring thread sees the walk (and waits for
//! it), or the walk sees the page already unlinked (and never reaches it).
//!
//! The two barriers are asymmetric where the system allows: on Linux (not
//! under Miri), the light one is a compiler fence and the heavy one is
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every CPU
//! running the process execute a full barrier (measured here: about half a
//! microsecond per call, once per retired subtree). Elsewhere, or when the
//! kernel refuses to register the process for it, both are
//! `fence(SeqCst)`: the read side then costs one full barrier per walk.

use std::cell::Cell;
use std::sync::atomic::{compiler_fence, fence, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// One thread's read-side state: odd while inside a shared walk.
pub(super) struct Slot {
    seq: AtomicU64,
}

/// Every thread's slot. A slot whose thread has exited is even forever and
/// is dropped from here at the next snapshot.
static SLOTS: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());

fn register() -> Arc<Slot> {
    let slot = Arc::new(Slot {
        seq: AtomicU64::new(0),
    });
    SLOTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(slot.clone());
    slot
}

/// This thread's slot and how deeply its walks nest.
struct Local {
    slot: Arc<Slot>,
    depth: Cell<u32>,
    /// [`light_is_enough`], read once for the thread.
    light: bool,
}

impl Local {
    /// Enters a walk: the outermost makes the slot odd, then passes the
    /// read side's barrier before the walk loads any table entry.
    #[inline(always)]
    fn enter(&self) {
        let depth = self.depth.get();
        if depth == 0 {
            let seq = &self.slot.seq;
            seq.store(seq.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            light_barrier(self.light);
        }
        self.depth.set(depth + 1);
    }
}

thread_local! {
    static LOCAL: Local = Local {
        slot: register(),
        depth: Cell::new(0),
        light: light_is_enough(),
    };
}

/// Whether the read side may use the light barrier: only once the heavy
/// one is known to work, decided once for the process, before any walk
/// that relies on it.
fn light_is_enough() -> bool {
    static LIGHT: OnceLock<bool> = OnceLock::new();
    *LIGHT.get_or_init(membarrier::register)
}

/// The read side's barrier, between its odd store and its first load of a
/// table entry.
#[inline(always)]
fn light_barrier(light: bool) {
    if light {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The write side's barrier, between an unlink and the snapshot of the
/// slots: a full barrier on every CPU running a thread of the process when
/// the read side uses the light barrier.
fn heavy_barrier() {
    fence(Ordering::SeqCst);
    if light_is_enough() {
        membarrier::expedited();
    }
}

/// Runs `f` inside a read-side critical section of this thread.
#[inline(always)]
pub(super) fn read<R>(f: impl FnOnce() -> R) -> R {
    /// Leaves the section, even when `f` unwinds (a host callback may
    /// panic): a slot left odd would hold every retired page forever.
    struct Exit<'a>(&'a Local);
    impl Drop for Exit<'_> {
        #[inline(always)]
        fn drop(&mut self) {
            let depth = self.0.depth.get() - 1;
            self.0.depth.set(depth);
            if depth == 0 {
                let seq = &self.0.slot.seq;
                // Release: the walk's loads are done before a retiring
                // thread that sees the new number frees anything.
                seq.store(seq.load(Ordering::Relaxed) + 1, Ordering::Release);
            }
        }
    }
    let own;
    let local: &Local = match LOCAL.try_with(|local| local as *const Local) {
        // SAFETY: `LOCAL` lives until this thread's thread-local
        // destructors run, and this call is not one of them (`try_with`
        // succeeded, and nothing below starts them).
        Ok(local) => unsafe { &*local },
        // Called from a thread-local destructor: a slot of its own, for
        // this one walk.
        Err(_) => {
            own = Local {
                slot: register(),
                depth: Cell::new(0),
                light: false,
            };
            &own
        }
    };
    local.enter();
    let _exit = Exit(local);
    // One call site, so that the walk inlines here: called from each
    // branch above, it was a function of its own with its state passed
    // through memory.
    f()
}

/// The walks a retired page waits for: the slots that were odd when it
/// was retired, with the number each held.
pub(super) struct Snapshot(Vec<(Arc<Slot>, u64)>);

impl Snapshot {
    /// Call it after unlinking what is retired (on the same thread).
    pub(super) fn take() -> Snapshot {
        heavy_barrier();
        let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        // A slot only its list still holds belongs to a thread that exited.
        slots.retain(|s| Arc::strong_count(s) > 1);
        Snapshot(
            slots
                .iter()
                .filter_map(|s| {
                    let seq = s.seq.load(Ordering::Relaxed);
                    (seq & 1 == 1).then(|| (s.clone(), seq))
                })
                .collect(),
        )
    }

    /// Whether every walk it waits for has ended.
    pub(super) fn passed(&mut self) -> bool {
        // Acquire: pairs with the release store that ended the walk.
        self.0
            .retain(|(slot, seq)| slot.seq.load(Ordering::Acquire) == *seq);
        self.0.is_empty()
    }
}

#[cfg(all(target_os = "linux", not(miri)))]
mod membarrier {
    use std::ffi::c_long;

    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: c_long = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: c_long = 1 << 4;

    #[cfg(target_arch = "x86_64")]
    const SYS_MEMBARRIER: c_long = 324;
    #[cfg(target_arch = "aarch64")]
    const SYS_MEMBARRIER: c_long = 283;

    extern "C" {
        fn syscall(number: c_long, ...) -> c_long;
    }

    /// Registers the process for expedited barriers; false if refused.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(super) fn register() -> bool {
        // SAFETY: membarrier takes (cmd, flags, cpu_id) and touches no
        // memory of ours; an unknown or refused command returns -1.
        unsafe {
            syscall(
                SYS_MEMBARRIER,
                MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                0 as c_long,
                0 as c_long,
            ) == 0
        }
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub(super) fn register() -> bool {
        false
    }

    /// A full barrier on every CPU running a thread of this process.
    pub(super) fn expedited() {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            // SAFETY: as in `register`; the process is registered (this is
            // only called once `register` returned true).
            let r = unsafe {
                syscall(
                    SYS_MEMBARRIER,
                    MEMBARRIER_CMD_PRIVATE_EXPEDITED,
                    0 as c_long,
                    0 as c_long,
                )
            };
            // Registered, the command cannot fail; if it ever did, the read
            // side's compiler fences would not be enough.
            assert_eq!(r, 0, "membarrier failed after registration");
        }
    }
}

/// Without membarrier, both barriers are full fences.
#[cfg(not(all(target_os = "linux", not(miri))))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn expedited() {}
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::{read, Snapshot, LOCAL};
    use crate::geometry::Level;
    use crate::host::HeapMemory;
    use crate::memory::MemoryOps;

    /// Whether `snapshot` passes within ten seconds: walks of other tests
    /// of this process may run when it is taken, and they end soon.
    fn passes(snapshot: &mut Snapshot) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !snapshot.passed() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// Holds a walk open on another thread: `walk` enters it and calls
    /// `hold` inside, which returns once the returned sender is sent to;
    /// the join handle ends that thread. Returns once the walk is entered.
    fn held_walk(
        walk: impl FnOnce(&dyn Fn()) + Send + 'static,
    ) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (entered, inside) = mpsc::channel();
        let (leave, left) = mpsc::channel::<()>();
        let walker = std::thread::spawn(move || {
            walk(&|| {
                entered.send(()).unwrap();
                left.recv().unwrap();
            })
        });
        inside.recv().unwrap();
        (leave, walker)
    }

    #[test]
    fn a_snapshot_waits_for_the_walks_running_when_it_was_taken_and_no_others() {
        let (leave, walker) = held_walk(|hold| read(hold));
        let mut snapshot = Snapshot::take();
        // This thread's own walks, before or after, do not matter.
        read(|| {});
        assert!(!snapshot.passed(), "freed under a running walk");
        leave.send(()).unwrap();
        walker.join().unwrap();
        assert!(passes(&mut snapshot));
    }

    #[test]
    fn nested_walks_end_with_the_outermost() {
        let (leave, walker) = held_walk(|hold| {
            read(|| {
                read(|| {});
                hold();
            })
        });
        let mut snapshot = Snapshot::take();
        assert!(!snapshot.passed(), "the inner walk ended the outer one");
        leave.send(()).unwrap();
        walker.join().unwrap();
        assert!(passes(&mut snapshot));
    }

    #[test]
    fn a_walk_that_unwinds_still_ends() {
        let walker = std::thread::spawn(|| {
            let _ = std::panic::catch_unwind(|| read(|| panic!("a host callback panicked")));
            LOCAL.with(|l| {
                (
                    l.depth.get(),
                    l.slot.seq.load(std::sync::atomic::Ordering::Relaxed),
                )
            })
        });
        let (depth, seq) = walker.join().unwrap();
        assert_eq!(depth, 0);
        assert_eq!(seq % 2, 0, "the slot still says the walk runs");
    }

    #[test]
    fn a_walk_from_a_thread_local_destructor_has_a_slot_of_its_own() {
        use std::cell::RefCell;
        use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
        /// What the destructor saw: 1 once its walk ran, 2 added if the
        /// thread's own slot was gone by then, 4 if a snapshot taken
        /// inside the walk waited for it.
        static SEEN: AtomicU8 = AtomicU8::new(0);
        struct Probe;
        impl Drop for Probe {
            fn drop(&mut self) {
                if LOCAL.try_with(|_| ()).is_err() {
                    SEEN.fetch_or(2, SeqCst);
                }
                read(|| {
                    SEEN.fetch_or(1, SeqCst);
                    if !Snapshot::take().passed() {
                        SEEN.fetch_or(4, SeqCst);
                    }
                });
            }
        }
        std::thread_local! {
            static PROBE: RefCell<Option<Probe>> = const { RefCell::new(None) };
        }
        std::thread::spawn(|| {
            // Registered before `LOCAL`, so destroyed after it (thread-local
            // destructors run in reverse order of registration).
            PROBE.with(|p| *p.borrow_mut() = Some(Probe));
            read(|| {});
        })
        .join()
        .unwrap();
        assert_eq!(SEEN.load(SeqCst), 1 | 2 | 4);
        // And the slot it used ended even: nothing waits for it now.
        assert!(passes(&mut Snapshot::take()));
    }

    #[test]
    fn heap_memory_frees_a_retired_table_once_the_walks_of_its_time_are_over() {
        let mm = HeapMemory::new(8);
        let table = mm.zalloc_page(&mut ()).unwrap();
        let walking = mm.clone();
        let (leave, walker) = held_walk(move |hold| walking.shared_walk(hold));
        // SAFETY: `table` is an empty table page of `mm` that nothing links
        // (it never was), handed over once; its entries would be level 3.
        unsafe { mm.free_unlinked_table(table, Level::new(2).unwrap()) };
        // Walks ending on this thread free nothing the other one may read.
        mm.shared_walk(|| {});
        assert_eq!(mm.pending_frees(), 1);
        assert_eq!(mm.count(table), 1, "freed under a running walk");
        leave.send(()).unwrap();
        walker.join().unwrap();
        assert!(mm.quiesce());
        assert_eq!(mm.count(table), 0);
        assert_eq!(mm.stats().pages_freed, 1);
    }
}

//! The stage-2 entry protocol: how one entry of a live table changes, and
//! the visit context's updates built on it.
//!
//! Everything that decides how an entry changes under a concurrent walker
//! lives here: reading it, compare-and-swap against the value read, the
//! break to the locked marker and the release store that makes the new
//! value, the reference-count bookkeeping, and when a break is needed at
//! all. [`VisitCtx`]'s `set` and `try_set` (below) call these functions
//! on the table's `AtomicU64` entries.
//!
//! The functions are generic over the cell that holds the entry
//! ([`EntryCell`]) and over what the host does beside it ([`EntrySite`]),
//! so that unit tests can record, step by step, what an update does. The
//! table's own cell is [`crate::sync`]'s `AtomicU64`, which is loom's under
//! `--cfg loom`: the loom model (`tests/loom.rs`) runs this very code,
//! inside the real walker and operations. Every function is
//! `#[inline(always)]` and monomorphised: the walk pays nothing for the
//! indirection.
//!
//! Reference counts follow one rule: an entry that counts is counted in its
//! table page *before* any other walker can see it, and stops being counted
//! only *after* no walker can see it any more. A concurrent walker that
//! removes an entry (a break) may then drop the count it finds without ever
//! taking a linked page's count to zero.

use core::sync::atomic::Ordering;

use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Capability, Concurrent, Conflict, Exclusive};
use crate::descriptor::Descriptor;
use crate::geometry::{Geometry, Level};
use crate::memory::MemoryOps;
use crate::sync::AtomicU64;
use crate::walk::{VisitCtx, WalkFlags};

/// A cell holding one 64-bit table entry.
///
/// Implemented for the table's entries ([`crate::sync`]'s `AtomicU64`:
/// `core`'s, or loom's under `--cfg loom`), and by the unit tests' recorder.
pub trait EntryCell {
    /// Atomically writes the entry.
    fn store(&self, value: u64, order: Ordering);
    /// Writes `new` if the entry holds `current`; returns what it held.
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
}

impl EntryCell for AtomicU64 {
    #[inline(always)]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }

    #[inline(always)]
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        AtomicU64::compare_exchange(self, current, new, success, failure)
    }
}

/// What an entry update asks of the host besides the entry: the reference
/// count of the table page holding it, TLB invalidation and cache
/// maintenance, all for this entry's place in the table.
pub trait EntrySite {
    /// One more counted entry in the table page.
    ///
    /// # Safety
    ///
    /// The reference is for a counted entry the caller is storing in the
    /// page, given back with [`put`](Self::put) when the entry goes.
    unsafe fn get(&self);
    /// One counted entry fewer in the table page.
    ///
    /// # Safety
    ///
    /// The caller gives back a reference it owns: one taken with
    /// [`get`](Self::get), or the one of a counted entry it has just removed
    /// from the page. The page stays linked, so this never drops its last
    /// reference.
    unsafe fn put(&self);
    /// Invalidates what the TLB may hold for `old` at this entry.
    fn invalidate(&self, old: Descriptor);
    /// Cache maintenance owed before `new` replaces `old` at this entry.
    fn maintain_caches(&self, old: Descriptor, new: Descriptor);
}

/// Proof that this walker broke an entry and must now make it.
///
/// The locked marker keeps the reference count of the entry it replaced,
/// so that the page's count stays 1 + its non-zero entries throughout. If
/// the walker never gets to [`make`] (a host callback in between panicked
/// and is unwinding), dropping this puts the old entry back: the table is
/// as it was before the break, and nobody spins on a marker forever.
#[must_use = "a broken entry stays locked until `make` publishes its new value"]
pub struct Broken<'c, P: EntryCell + ?Sized> {
    cell: &'c P,
    pub(crate) old: Descriptor,
}

impl<P: EntryCell + ?Sized> Drop for Broken<'_, P> {
    #[cold]
    fn drop(&mut self) {
        // Reached only when `make` never ran. The old value is still
        // counted (the marker kept its reference), and restoring a
        // translation that was invalidated is harmless: the TLB may cache it
        // again, as it could before the break.
        publish(self.cell, self.old);
    }
}

/// Publishes `new`, with release ordering so that what it points to (a
/// table page's contents) or what was done for it (cache maintenance) is
/// visible to whoever reads it with acquire.
#[inline(always)]
pub fn publish<P: EntryCell + ?Sized>(cell: &P, new: Descriptor) {
    cell.store(new.bits(), Ordering::Release);
}

/// Whether going from `old` to `new` needs break-before-make, by the
/// architecture's rule ([`Descriptor::needs_break_to`]).
#[inline(always)]
pub fn needs_break(old: Descriptor, new: Descriptor) -> bool {
    old.needs_break_to(new)
}

/// Whether a concurrent walker must break the entry to go from `old` to
/// `new`: where the architecture requires it, and wherever a valid entry
/// becomes invalid (the TLB must be invalidated before anyone reuses what
/// it mapped).
#[inline(always)]
pub fn must_break(old: Descriptor, new: Descriptor) -> bool {
    needs_break(old, new) || (old.is_valid() && !new.is_valid())
}

/// Takes the page's reference for a counted `new` replacing an uncounted
/// `old`, before `new` becomes visible.
///
/// # Safety
///
/// `new` is about to replace `old` in the entry that `site` counts for, and
/// [`uncount_after`] runs for the step once it is done or abandoned.
#[inline(always)]
unsafe fn count_before<S: EntrySite + ?Sized>(site: &S, old: Descriptor, new: Descriptor) {
    if !old.is_counted() && new.is_counted() {
        // SAFETY: the reference is for `new`, a counted entry the caller is
        // storing in the page (this function's contract).
        unsafe { site.get() };
    }
}

/// Drops the page's reference of a counted `old` that an uncounted `new`
/// replaced, once nobody can see `old` any more.
///
/// # Safety
///
/// The entry that `site` counts for held `old` and now holds `new` (or, to
/// undo a [`count_before`] whose store never happened, the arguments are
/// swapped).
#[inline(always)]
unsafe fn uncount_after<S: EntrySite + ?Sized>(site: &S, old: Descriptor, new: Descriptor) {
    if old.is_counted() && !new.is_counted() {
        // SAFETY: `old`, which this step removed, was counted: its
        // reference is the caller's to give back, and the page, which still
        // holds the entry just written, keeps its own.
        unsafe { site.put() };
    }
}

/// Replaces `old`, the value this walker read, with `new` if nobody changed
/// the entry meanwhile. A locked `old` is another walker's break in
/// progress: a race, without touching the entry.
///
/// The reference count follows the rule of the [module](self): taken before
/// the swap makes a counted `new` visible (and given back if the swap
/// loses), dropped after the swap removed a counted `old`.
#[inline(always)]
pub fn try_swap<P, S>(cell: &P, site: &S, old: Descriptor, new: Descriptor) -> Result<(), Conflict>
where
    P: EntryCell + ?Sized,
    S: EntrySite + ?Sized,
{
    if old.is_locked() {
        return Err(Conflict::Raced);
    }
    // SAFETY: `new` is to replace `old` in this entry; both outcomes of
    // the swap end with an `uncount_after`.
    unsafe { count_before(site, old, new) };
    match cell.compare_exchange(old.bits(), new.bits(), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: the swap succeeded: the entry held `old`, holds `new`.
            unsafe { uncount_after(site, old, new) };
            Ok(())
        }
        Err(_) => {
            // SAFETY: `new` never reached the entry: undo what
            // `count_before` did, as if `new` had gone and `old` stayed.
            unsafe { uncount_after(site, new, old) };
            Err(Conflict::Raced)
        }
    }
}

/// Break: swaps `old` for the locked marker and invalidates the TLB for
/// what it held. The marker keeps `old`'s reference count. Other walkers
/// that meet the marker see a race. Follow with [`make`]; if the walker
/// unwinds before it does, the returned guard restores `old`.
#[inline(always)]
pub fn try_break<'c, P, S>(
    cell: &'c P,
    site: &S,
    old: Descriptor,
) -> Result<Broken<'c, P>, Conflict>
where
    P: EntryCell + ?Sized,
    S: EntrySite + ?Sized,
{
    if old.is_locked() {
        return Err(Conflict::Raced);
    }
    let locked = Descriptor::LOCKED.bits();
    if cell
        .compare_exchange(old.bits(), locked, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(Conflict::Raced);
    }
    let broken = Broken { cell, old };
    site.invalidate(old);
    Ok(broken)
}

/// [`try_break`] for an exclusive walker: the marker goes in by a plain
/// store, as the kernel's `stage2_try_set_pte` writes it without
/// `KVM_PGTABLE_WALK_SHARED`. Nobody else writes the entry, so the
/// compare-and-swap could not fail: the store spares a locked
/// read-modify-write per break. A locked `old` is still refused, as the
/// kernel refuses it (with a warning it cannot reach under exclusive
/// access).
///
/// # Safety
///
/// `cell` holds `old`, and nobody else writes it until the returned guard
/// is made or dropped (the caller is an exclusive walker).
#[inline(always)]
pub unsafe fn break_exclusive<'c, P, S>(
    cell: &'c P,
    site: &S,
    old: Descriptor,
) -> Result<Broken<'c, P>, Conflict>
where
    P: EntryCell + ?Sized,
    S: EntrySite + ?Sized,
{
    if old.is_locked() {
        return Err(Conflict::Raced);
    }
    publish(cell, Descriptor::LOCKED);
    let broken = Broken { cell, old };
    site.invalidate(old);
    Ok(broken)
}

/// Make: publishes `new` over an entry this walker broke, after the cache
/// maintenance it needs, with the count moved from the old value to the new
/// (taken before a counted `new` is visible, dropped after an uncounted one
/// is).
#[inline(always)]
pub fn make<P, S>(cell: &P, site: &S, broken: Broken<'_, P>, new: Descriptor)
where
    P: EntryCell + ?Sized,
    S: EntrySite + ?Sized,
{
    let old = broken.old;
    site.maintain_caches(old, new);
    // SAFETY: the marker stands in for `old` (it kept `old`'s count), and
    // `new` replaces it just below; `uncount_after` follows the store.
    unsafe { count_before(site, old, new) };
    // From here on the entry is `new`'s, not the guard's to restore.
    core::mem::forget(broken);
    publish(cell, new);
    // SAFETY: the entry went from `old` (through the marker) to `new`.
    unsafe { uncount_after(site, old, new) };
}

/// The concurrent update of an entry from `old` (as read) to `new`: a
/// single compare-and-swap where the architecture allows it, otherwise
/// break, invalidate, maintain caches, make. `Err(Conflict::Raced)` when
/// another walker changed or locked the entry first; the entry is then as
/// that walker left it.
///
/// Linking a private, filled table page is the same update (a valid leaf
/// becoming a table needs the break); release ordering on both paths
/// publishes the table's contents with it.
///
/// A change that only removes permissions needs no break, and is not
/// invalidated here: the caller invalidates (see
/// [`Descriptor::removes_permissions`]).
#[inline(always)]
pub fn try_update<P, S>(
    cell: &P,
    site: &S,
    old: Descriptor,
    new: Descriptor,
) -> Result<(), Conflict>
where
    P: EntryCell + ?Sized,
    S: EntrySite + ?Sized,
{
    if old.is_locked() {
        return Err(Conflict::Raced);
    }
    if old == new {
        return Ok(());
    }
    if must_break(old, new) {
        let broken = try_break(cell, site, old)?;
        make(cell, site, broken, new);
    } else {
        site.maintain_caches(old, new);
        try_swap(cell, site, old, new)?;
    }
    Ok(())
}

/// Puts `old` back if dropped before being disarmed: the exclusive
/// break's counterpart of [`Broken`].
struct Restore<'c, P: EntryCell + ?Sized> {
    cell: &'c P,
    old: Descriptor,
}

impl<P: EntryCell + ?Sized> Drop for Restore<'_, P> {
    #[cold]
    fn drop(&mut self) {
        publish(self.cell, self.old);
    }
}

/// The exclusive update of an entry from `old` to `new`: plain stores, with
/// the entry invalidated and the TLB flushed in between where
/// break-before-make is needed, and the TLB flushed after a change that
/// removes permissions. No other walker runs, so there is no race.
///
/// # Safety
///
/// `cell` holds `old` and is the entry that `site` counts for, and nobody
/// else writes it until this returns (the caller is an exclusive walker):
/// the reference counts follow from `old` without a compare-and-swap to
/// confirm it.
#[inline(always)]
pub unsafe fn set<P, S>(cell: &P, site: &S, old: Descriptor, new: Descriptor)
where
    P: EntryCell + ?Sized,
    S: EntrySite + ?Sized,
{
    // SAFETY: the caller's contract, which is `set_owing_tlbi`'s.
    if unsafe { set_owing_tlbi(cell, site, old, new) } {
        // No break invalidated the TLB, and a stale entry would still
        // grant what `new` takes away.
        site.invalidate(old);
    }
}

/// [`set`] without the TLB invalidation after a change that removes
/// permissions, for a caller that invalidates the whole range once
/// instead. Returns whether that invalidation is owed (`old` still granted
/// more than `new`, and no break invalidated it).
///
/// # Safety
///
/// As [`set`].
#[inline(always)]
pub unsafe fn set_owing_tlbi<P, S>(cell: &P, site: &S, old: Descriptor, new: Descriptor) -> bool
where
    P: EntryCell + ?Sized,
    S: EntrySite + ?Sized,
{
    if old == new {
        return false;
    }
    if must_break(old, new) {
        publish(cell, Descriptor::INVALID);
        // Should a host callback unwind before `new` is written, the entry
        // goes back to `old`, whose count it still holds.
        let restore = Restore { cell, old };
        site.invalidate(old);
        site.maintain_caches(old, new);
        // SAFETY: the entry goes from `old` (the caller's word, which the
        // invalid value in between keeps the count of) to `new` below.
        unsafe { count_before(site, old, new) };
        core::mem::forget(restore);
        publish(cell, new);
        // SAFETY: as above; the store is done.
        unsafe { uncount_after(site, old, new) };
        false
    } else {
        site.maintain_caches(old, new);
        // SAFETY: the entry holds `old` (the caller's word) and gets `new`.
        unsafe { count_before(site, old, new) };
        publish(cell, new);
        // SAFETY: as above; the store is done.
        unsafe { uncount_after(site, old, new) };
        old.removes_permissions(new)
    }
}

impl<'a, C: Capability, M: MemoryOps> VisitCtx<'a, C, M> {
    /// This entry's place in the table, as the entry protocol sees it.
    #[inline(always)]
    fn site(&self) -> Site<'a, M> {
        Site {
            mm: self.mm,
            table: self.table,
            entry: self.ptep,
            geometry: self.geometry,
            addr: self.addr,
            level: self.level,
            flags: self.flags,
            owed: self.owed,
        }
    }

    /// Panics unless `new` may be written here by a visitor: leaves only,
    /// at levels that hold leaves, over an entry that is not a table, and
    /// never the locked marker (which only a break in progress may hold:
    /// every walker that met one would wait for a make that never comes).
    #[inline(always)]
    fn check_leaf_update(&self, new: Descriptor) {
        assert!(
            !self.cur.is_table(self.level) && !new.is_table(self.level),
            "visitors may change leaves only; table entries belong to the walker"
        );
        assert!(
            !new.is_locked(),
            "the locked marker belongs to break-before-make; a visitor may not store it"
        );
        assert!(
            !new.is_valid() || self.geometry.leaf_allowed(self.level),
            "no block mapping is allowed at level {} of a {} table (blocks from level {} to 2, \
             as Linux 6.12's KVM_PGTABLE_MIN_BLOCK_LEVEL)",
            self.level,
            self.geometry.format(),
            self.geometry.granule().min_block_level()
        );
    }
}

impl<M: MemoryOps> VisitCtx<'_, Exclusive, M> {
    /// Writes `new` over this leaf entry: break-before-make where the
    /// architecture requires it (invalidate, TLBI, write), cache maintenance
    /// for a new cacheable or executable leaf, a TLB invalidation after a
    /// change that removes permissions, and the table page's reference count
    /// kept. With [`WalkFlags::SKIP_BBM_TLBI`] the invalidations are left to
    /// the walk, which invalidates its whole range once when it ends.
    ///
    /// # Panics
    ///
    /// If the entry or `new` is a table descriptor (the walker owns the
    /// table structure), or `new` is a valid leaf at a level that cannot hold
    /// one. These are bugs in the visitor, like an index out of bounds.
    #[inline(always)]
    pub fn set(&mut self, new: Descriptor) {
        self.check_leaf_update(new);
        self.replace(new);
    }

    /// [`set`](Self::set) without the TLB invalidation after a change that
    /// removes permissions: for operations that hand the caller a
    /// [`TlbFlush`](crate::TlbFlush) for the whole range instead. The
    /// exclusive twin of [`try_set_owing_tlbi`](VisitCtx::try_set_owing_tlbi).
    #[inline(always)]
    pub(crate) fn set_owing_tlbi(&mut self, new: Descriptor) {
        self.check_leaf_update(new);
        if self.cur == new {
            return;
        }
        // SAFETY: as in `replace`: the entry holds `self.cur`, nobody else
        // writes the table, and `site()` counts for this entry's page.
        // Whether an invalidation is owed is this caller's `TlbFlush`.
        let _owed = unsafe { set_owing_tlbi(self.ptep, &self.site(), self.cur, new) };
        self.written = true;
        self.cur = new;
    }

    /// [`set`](Self::set) without its leaf-only check, for the operations
    /// that own the table structure: linking, replacing and clearing table
    /// entries. Freeing a subtree this unlinks is the caller's job.
    #[inline(always)]
    pub(crate) fn replace(&mut self, new: Descriptor) {
        if self.cur == new {
            return;
        }
        // SAFETY: `self.cur` is what the entry holds: the walker read it
        // (or this context wrote it), and under `Exclusive` nobody else
        // writes the table; `site()` counts for this entry's page.
        unsafe { set(self.ptep, &self.site(), self.cur, new) };
        self.written = true;
        self.cur = new;
    }

    /// Clears every entry of the last-level table this table entry links,
    /// then unlinks the table and frees it; with `clean`, cleans the data
    /// cache of every cacheable page it unmapped (so that the guest's last
    /// writes reach memory before the host reuses it).
    ///
    /// What unmap's leaf visits and its post-order visit do for a table
    /// the walk covers whole, with fewer host calls: on a host whose
    /// [`MemoryOps::put_pages`] is one update
    /// ([`MemoryOps::BULK_PUT_PAGES`]), one call for the page instead of a
    /// reference-count update per entry (an exclusive walker is alone, so
    /// nobody can tell the counts lag behind the entries until the page
    /// goes), and TLB invalidations by range instead of one per page.
    /// Unlinking the table invalidates its whole range, which covers every
    /// leaf, so without `clean` that is the only one. With it, the leaves
    /// go in runs of [`CLEAR_RUN`] entries, each run invalidated before its
    /// pages are cleaned: a vCPU writing through a stale translation after
    /// the clean would leave the write in the cache.
    ///
    /// Call it on a table entry one level above the last.
    pub(crate) fn clear_leaf_table(&mut self, clean: bool) {
        /// The references of the entries cleared so far, given back
        /// however this ends: a host callback that unwinds leaves the
        /// counts matching the entries.
        struct Owed<'m, M: MemoryOps> {
            mm: &'m M,
            page: PhysAddr,
            n: core::cell::Cell<usize>,
        }
        impl<M: MemoryOps> Drop for Owed<'_, M> {
            fn drop(&mut self) {
                // SAFETY: one reference per counted entry cleared from
                // `page` (or, last, the page's own once it is unlinked),
                // each owned by this walk and not given back yet.
                unsafe { self.mm.put_pages(self.page, self.n.get()) };
            }
        }
        /// A site whose `put` is left to `Owed` (or, on a host without
        /// `BULK_PUT_PAGES`, to the run's cleans), and whose leaves' TLB
        /// invalidations to the run (see above).
        struct Deferred<'s, 'm, M: MemoryOps> {
            site: Site<'m, M>,
            owed: &'s Owed<'m, M>,
            tlbi: &'s core::cell::Cell<bool>,
        }
        impl<M: MemoryOps> EntrySite for Deferred<'_, '_, M> {
            #[inline(always)]
            unsafe fn get(&self) {
                // SAFETY: the caller's contract, which is `Site::get`'s.
                unsafe { self.site.get() }
            }
            #[inline(always)]
            unsafe fn put(&self) {
                self.owed.n.set(self.owed.n.get() + 1);
            }
            #[inline(always)]
            fn invalidate(&self, old: Descriptor) {
                // Only leaves are cleared here.
                if old.is_valid() {
                    self.tlbi.set(true);
                }
            }
            #[inline(always)]
            fn maintain_caches(&self, old: Descriptor, new: Descriptor) {
                self.site.maintain_caches(old, new)
            }
        }

        debug_assert!(self.cur.is_table(self.level) && self.level.next().is_last());
        let level = self.level.next();
        let child = self.cur.output_address(self.geometry.format());
        let entries = self.geometry.granule().entries();
        let size = self.geometry.entry_size(level);
        let start = self.entry_addr().get();
        // SAFETY: `child` is linked by this entry, which this exclusive walk
        // read: a table page of `mm`, one granule of entries, that nobody
        // else frees while the walk runs.
        let page = unsafe { crate::table_page::TablePage::new(self.mm, child, entries) };
        let owed = Owed {
            mm: self.mm,
            page: child,
            n: core::cell::Cell::new(0),
        };
        let format = self.geometry.format();
        let mut run = [Descriptor::INVALID; CLEAR_RUN];
        // Where each of `run`'s entries sits in the page.
        let mut run_idx = [0usize; CLEAR_RUN];
        // Whether leaves were cleared since the last invalidation.
        let tlbi = core::cell::Cell::new(false);
        let mut first = 0;
        while first < entries {
            let last = entries.min(first + CLEAR_RUN);
            let mut n = 0;
            for idx in first..last {
                let old: Descriptor = page.load(idx, Exclusive::LOAD);
                if !old.is_counted() {
                    continue;
                }
                let entry = page.entry(idx);
                let cleans = clean && old.is_valid() && old.is_cacheable();
                let site = Deferred {
                    site: Site {
                        mm: self.mm,
                        table: child,
                        entry,
                        geometry: self.geometry,
                        addr: start + idx as u64 * size,
                        level,
                        flags: self.flags,
                        owed: self.owed,
                    },
                    owed: &owed,
                    tlbi: &tlbi,
                };
                // SAFETY: under `Exclusive` the entry holds what was just
                // read; the reference it gives up goes to `owed`, which
                // returns it, and the invalidation it owes is the run's or
                // the table's, below.
                unsafe { set(entry, &site, old, Descriptor::INVALID) };
                if cleans {
                    run[n] = old;
                    run_idx[n] = idx;
                    n += 1;
                }
            }
            if n > 0 {
                if tlbi.replace(false) {
                    let addr = start + first as u64 * size;
                    self.mm
                        .tlb_flush_vmid_range(Ipa(addr), (last - first) as u64 * size);
                }
                for (old, &idx) in run[..n].iter().zip(&run_idx[..n]) {
                    self.mm
                        .dcache_clean_inval_poc(old.output_address(format), size);
                    // Without a bulk `put_pages`, a cleaned page's
                    // reference goes back beside its clean, where the
                    // host's count updates overlap the cleans; left to
                    // `owed`, they ran in a row at the end, each waiting
                    // for the last.
                    if !M::BULK_PUT_PAGES {
                        owed.n.set(owed.n.get() - 1);
                        // SAFETY: the reference `owed` took for this
                        // cleared entry, given back once; never the page's
                        // last, since the page keeps its own until it is
                        // unlinked below.
                        unsafe { put_entry_page(self.mm, child, page.entry(idx)) };
                    }
                }
            }
            first = last;
        }
        // Every entry is empty: the page holds its own reference only,
        // plus those `owed` keeps. Unlinking it invalidates the table's
        // whole range at once (never deferred), which covers the leaves no
        // run invalidated.
        self.replace(Descriptor::INVALID);
        // The page's own reference, now that nothing links it (its TLB
        // entries were invalidated with the break): `owed` drops the lot,
        // the last one freeing it.
        owed.n.set(owed.n.get() + 1);
        self.mark_complete();
    }
}

/// Entries [`VisitCtx::clear_leaf_table`] clears between TLB
/// invalidations when it cleans what it unmaps: 64 pages, 256 KiB of 4 KiB
/// pages, a run's old entries in 512 bytes of stack.
const CLEAR_RUN: usize = 64;

impl<'a, C: Concurrent, M: MemoryOps> VisitCtx<'a, C, M> {
    /// Replaces this leaf entry with `new` if no other walker changed it
    /// since it was read. Where the architecture requires break-before-make,
    /// it swaps in a locked marker first, invalidates the TLB, does cache
    /// maintenance, then publishes `new` with release ordering; other
    /// walkers that meet the marker see a race. The reference count is kept.
    ///
    /// A lost race is `Err(Conflict::Raced)`; `?` turns it into a retry
    /// under [`Shared`](crate::Shared) and into resuming the guest under
    /// [`HandlesFault`](crate::HandlesFault).
    ///
    /// A change that removes permissions is followed by a TLB invalidation
    /// of the entry (left to the end of the walk with
    /// [`WalkFlags::SKIP_BBM_TLBI`]), as [`set`](VisitCtx::set) does.
    ///
    /// # Panics
    ///
    /// As [`VisitCtx::set`], and if `new` is not a valid leaf: removing or
    /// annotating a mapping is a structural change that needs the
    /// [`Exclusive`] capability.
    #[inline(always)]
    pub fn try_set(&mut self, new: Descriptor) -> Result<(), Conflict> {
        let old = self.cur;
        self.try_set_owing_tlbi(new)?;
        // A break already invalidated the TLB; a plain swap did not.
        if !must_break(old, new) && old.removes_permissions(new) {
            self.site().invalidate(old);
        }
        Ok(())
    }

    /// [`try_set`](Self::try_set) without the invalidation after a change
    /// that removes permissions: for operations that hand the caller a
    /// [`TlbFlush`](crate::TlbFlush) for the whole range instead.
    #[inline(always)]
    pub(crate) fn try_set_owing_tlbi(&mut self, new: Descriptor) -> Result<(), Conflict> {
        let old = self.cur;
        if old.is_locked() {
            // Another walker's break in progress: a race, whatever `new` is.
            return Err(Conflict::Raced);
        }
        self.check_leaf_update(new);
        // Removing a mapping (or annotating over one) is structural: it can
        // leave a table empty, which only an exclusive walker may free.
        assert!(
            new.is_valid(),
            "a concurrent visitor may install or change valid leaves only; unmapping and \
             annotating need the Exclusive capability"
        );
        if old == new {
            return Ok(());
        }
        try_update(self.ptep, &self.site(), old, new)?;
        self.written = true;
        self.cur = new;
        Ok(())
    }

    /// Break: swaps the entry for the locked marker and invalidates the TLB
    /// for what it held. The caller must follow with [`make`](Self::make);
    /// should it unwind first, the guard puts the old entry back.
    #[inline(always)]
    pub(crate) fn try_break(&mut self) -> Result<Broken<'a, AtomicU64>, Conflict> {
        let broken = try_break(self.ptep, &self.site(), self.cur)?;
        self.written = true;
        Ok(broken)
    }

    /// Links the private, filled table page `child` in place of the leaf
    /// read: by compare-and-swap over an invalid entry, by break-before-make
    /// over a valid one.
    #[inline(always)]
    pub(crate) fn try_link_table(&mut self, child: PhysAddr) -> Result<(), Conflict> {
        let new = Descriptor::table(child, self.geometry.format());
        try_update(self.ptep, &self.site(), self.cur, new)?;
        self.written = true;
        self.cur = new;
        Ok(())
    }

    /// Make: publishes `new` over a broken entry.
    #[inline(always)]
    pub(crate) fn make(&mut self, broken: Broken<'a, AtomicU64>, new: Descriptor) {
        make(self.ptep, &self.site(), broken, new);
        self.written = true;
        self.cur = new;
    }
}

/// Where `entry` is in the host's mapping of its table page, for
/// [`MemoryOps::get_page_at`] and [`MemoryOps::put_page_at`]; `None` under
/// `--cfg loom`, whose atomics live outside the table page.
#[inline(always)]
fn entry_address(entry: &AtomicU64) -> Option<core::ptr::NonNull<u64>> {
    #[cfg(not(loom))]
    return Some(core::ptr::NonNull::from(entry).cast());
    #[cfg(loom)]
    {
        let _ = entry;
        None
    }
}

/// `mm.get_page(table)` for the entry `entry` of that page, through
/// [`MemoryOps::get_page_at`] with the entry's address.
///
/// # Safety
///
/// As [`MemoryOps::get_page`], and `entry` is an entry of the table page at
/// `table`, as the walker reached it through the host's `phys_to_virt`.
#[inline(always)]
pub(crate) unsafe fn get_entry_page<M: MemoryOps>(mm: &M, table: PhysAddr, entry: &AtomicU64) {
    match entry_address(entry) {
        // SAFETY: the caller's contract; `at` is the entry's address in the
        // host's mapping of the page.
        Some(at) => unsafe { mm.get_page_at(table, at) },
        // SAFETY: the caller's contract.
        None => unsafe { mm.get_page(table) },
    }
}

/// `mm.put_page(table)` for the entry `entry` of that page, through
/// [`MemoryOps::put_page_at`] with the entry's address.
///
/// # Safety
///
/// As [`MemoryOps::put_page`], and `entry` is an entry of the table page at
/// `table`, as the walker reached it through the host's `phys_to_virt`.
#[inline(always)]
pub(crate) unsafe fn put_entry_page<M: MemoryOps>(mm: &M, table: PhysAddr, entry: &AtomicU64) {
    match entry_address(entry) {
        // SAFETY: as in `get_entry_page`.
        Some(at) => unsafe { mm.put_page_at(table, at) },
        // SAFETY: the caller's contract.
        None => unsafe { mm.put_page(table) },
    }
}

/// The host's side of one entry's updates: its table page's reference
/// count, TLB invalidation for its range, cache maintenance for its leaf.
struct Site<'a, M> {
    mm: &'a M,
    table: PhysAddr,
    entry: &'a AtomicU64,
    geometry: &'a Geometry,
    addr: u64,
    level: Level,
    flags: WalkFlags,
    owed: &'a core::cell::Cell<bool>,
}

impl<M: MemoryOps> Site<'_, M> {
    #[inline(always)]
    fn entry_size(&self) -> u64 {
        self.geometry.entry_size(self.level)
    }

    #[inline(always)]
    fn entry_addr(&self) -> Ipa {
        Ipa(self.addr & !(self.entry_size() - 1))
    }
}

impl<M: MemoryOps> EntrySite for Site<'_, M> {
    #[inline(always)]
    unsafe fn get(&self) {
        // SAFETY: the caller takes the reference for a counted entry it is
        // storing in this table page (the contract of `EntrySite::get`),
        // which is what `MemoryOps::get_page` asks; `entry` is that entry.
        unsafe { get_entry_page(self.mm, self.table, self.entry) };
    }

    #[inline(always)]
    unsafe fn put(&self) {
        // SAFETY: the caller gives back a reference it owns to a page that
        // stays linked (the contract of `EntrySite::put`), so this is never
        // the page's last reference; `entry` is an entry of the page.
        unsafe { put_entry_page(self.mm, self.table, self.entry) };
    }

    #[inline(always)]
    fn invalidate(&self, old: Descriptor) {
        if old.is_table(self.level) {
            // A table may hold many cached walks: invalidate its whole range.
            // Never left to the end of the walk, even with SKIP_BBM_TLBI:
            // the table that went is freed before then (at once, or after a
            // grace period that knows nothing of the TLB), and the MMU must
            // not walk a page the host has taken back. Linux's unmap does
            // the same with its deferred invalidations.
            self.mm
                .tlb_flush_vmid_range(self.entry_addr(), self.entry_size());
        } else if self.flags.contains(WalkFlags::SKIP_BBM_TLBI) {
            // The walk makes up for it, once for its range, when it ends.
            if old.is_valid() {
                self.owed.set(true);
            }
        } else if old.is_valid() {
            // Any address the leaf translates names it; the walk's, as the
            // kernel's break uses.
            self.mm.tlb_flush_vmid_ipa(Ipa(self.addr), self.level);
        }
    }

    #[inline(always)]
    fn maintain_caches(&self, old: Descriptor, new: Descriptor) {
        if self.flags.contains(WalkFlags::SKIP_CMO) || !new.is_leaf(self.level) {
            return;
        }
        // A table descriptor's address is a table page, never guest memory.
        // Comparing the address bits themselves spares a decode per entry
        // on the common path (a permission or access-flag change).
        let same_page = old.is_leaf(self.level) && new.same_output_bits(old);
        // A page the guest saw uncached was never cleaned: the host's lines
        // for it may still be dirty, so becoming cacheable owes a clean.
        // Two branches rather than one expression: a new page (a fault)
        // then tests `new` alone, where `old`'s tests cost it ten
        // instructions.
        let (clean, inval) = if same_page {
            (
                new.is_cacheable() && !old.is_cacheable(),
                new.is_executable() && !old.is_executable(),
            )
        } else {
            (new.is_cacheable(), new.is_executable())
        };
        if !clean && !inval {
            return;
        }
        let pa = new.output_address(self.geometry.format());
        let size = self.entry_size();
        if clean {
            self.mm.dcache_clean_inval_poc(pa, size);
        }
        if inval {
            self.mm.icache_inval_pou(pa, size);
        }
    }
}

#[cfg(test)]
mod tests {
    use core::cell::RefCell;

    use super::*;
    use crate::addr::PhysAddr;
    use crate::descriptor::LeafAttrs;
    use crate::geometry::{Level, TableFormat};
    use crate::prot::Prot;

    /// Records, in order, what the protocol did to the entry and the host.
    #[derive(Default)]
    struct Recorder {
        value: RefCell<u64>,
        /// A value another walker swaps in just before the next
        /// compare-and-swap, to lose it on purpose.
        interfere: RefCell<Option<u64>>,
        /// Makes the next TLB invalidation panic, as a broken host might.
        panic_on_tlbi: core::cell::Cell<bool>,
        events: RefCell<Log>,
    }

    /// A fixed-size event log (the crate may be built without `std`).
    #[derive(Default)]
    struct Log {
        events: [Option<Event>; 8],
        len: usize,
    }

    impl Log {
        fn push(&mut self, e: Event) {
            self.events[self.len] = Some(e);
            self.len += 1;
        }

        fn is_empty(&self) -> bool {
            self.len == 0
        }
    }

    impl<const N: usize> PartialEq<[Event; N]> for Log {
        fn eq(&self, other: &[Event; N]) -> bool {
            self.len == N
                && self.events[..N]
                    .iter()
                    .zip(other)
                    .all(|(a, b)| *a == Some(*b))
        }
    }

    impl core::fmt::Debug for Log {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_list()
                .entries(self.events[..self.len].iter().flatten())
                .finish()
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Event {
        Visible(u64),
        CasLost,
        Get,
        Put,
        Tlbi,
        Cmo,
    }

    impl EntryCell for Recorder {
        fn store(&self, value: u64, _: Ordering) {
            *self.value.borrow_mut() = value;
            self.events.borrow_mut().push(Event::Visible(value));
        }
        fn compare_exchange(
            &self,
            cur: u64,
            new: u64,
            _: Ordering,
            _: Ordering,
        ) -> Result<u64, u64> {
            if let Some(v) = self.interfere.borrow_mut().take() {
                *self.value.borrow_mut() = v;
            }
            let held = *self.value.borrow();
            if held != cur {
                self.events.borrow_mut().push(Event::CasLost);
                return Err(held);
            }
            *self.value.borrow_mut() = new;
            self.events.borrow_mut().push(Event::Visible(new));
            Ok(held)
        }
    }

    impl EntrySite for Recorder {
        unsafe fn get(&self) {
            self.events.borrow_mut().push(Event::Get);
        }
        unsafe fn put(&self) {
            self.events.borrow_mut().push(Event::Put);
        }
        fn invalidate(&self, _: Descriptor) {
            if self.panic_on_tlbi.replace(false) {
                panic!("the host's TLB invalidation failed");
            }
            self.events.borrow_mut().push(Event::Tlbi);
        }
        fn maintain_caches(&self, _: Descriptor, _: Descriptor) {
            self.events.borrow_mut().push(Event::Cmo);
        }
    }

    fn page(pa: u64, prot: Prot) -> Descriptor {
        Descriptor::leaf(
            PhysAddr(pa),
            Level::LAST,
            LeafAttrs::from_prot(prot).unwrap(),
        )
    }

    // Regression: the count used to be taken after the swap had made the
    // entry visible, so a walker breaking it in between could drop the
    // page's count to zero while it was still linked.
    #[test]
    fn a_new_counted_entry_is_counted_before_it_is_visible() {
        let r = Recorder::default();
        let new = page(0x8000_0000, Prot::RW);
        try_update(&r, &r, Descriptor::INVALID, new).unwrap();
        assert_eq!(
            *r.events.borrow(),
            [Event::Cmo, Event::Get, Event::Visible(new.bits())]
        );
    }

    #[test]
    fn a_lost_swap_gives_the_count_back_and_leaves_the_entry() {
        let r = Recorder::default();
        let theirs = page(0x9000_0000, Prot::R);
        *r.interfere.borrow_mut() = Some(theirs.bits());
        let new = page(0x8000_0000, Prot::RW);
        assert_eq!(
            try_update(&r, &r, Descriptor::INVALID, new),
            Err(Conflict::Raced)
        );
        assert_eq!(
            *r.events.borrow(),
            [Event::Cmo, Event::Get, Event::CasLost, Event::Put]
        );
        assert_eq!(*r.value.borrow(), theirs.bits());
    }

    #[test]
    fn break_before_make_order() {
        let old = page(0x8000_0000, Prot::RW);
        let r = Recorder::default();
        *r.value.borrow_mut() = old.bits();
        let new = page(0x9000_0000, Prot::RW);
        try_update(&r, &r, old, new).unwrap();
        assert_eq!(
            *r.events.borrow(),
            [
                Event::Visible(Descriptor::LOCKED.bits()),
                Event::Tlbi,
                Event::Cmo,
                Event::Visible(new.bits()),
            ],
            "the locked marker carries the old entry's count over to the new"
        );
    }

    #[test]
    fn breaking_to_invalid_drops_the_count_after_the_make() {
        let old = page(0x8000_0000, Prot::RW);
        let r = Recorder::default();
        *r.value.borrow_mut() = old.bits();
        let broken = try_break(&r, &r, old).unwrap();
        make(&r, &r, broken, Descriptor::INVALID);
        assert_eq!(
            *r.events.borrow(),
            [
                Event::Visible(Descriptor::LOCKED.bits()),
                Event::Tlbi,
                Event::Cmo,
                Event::Visible(0),
                Event::Put,
            ]
        );
    }

    // Regression (issue 10, item 7): a break whose make never ran, because
    // a host callback in between panicked, left the locked marker behind,
    // and every later walker spun on it.
    #[cfg(feature = "std")]
    #[test]
    fn a_break_unwinding_before_its_make_restores_the_entry() {
        let old = page(0x8000_0000, Prot::RW);
        let r = Recorder::default();
        *r.value.borrow_mut() = old.bits();
        r.panic_on_tlbi.set(true);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            try_update(&r, &r, old, page(0x9000_0000, Prot::RW))
        }));
        assert!(unwound.is_err());
        assert_eq!(*r.value.borrow(), old.bits(), "the old entry is back");
        assert_eq!(
            *r.events.borrow(),
            [
                Event::Visible(Descriptor::LOCKED.bits()),
                Event::Visible(old.bits()),
            ],
            "and its count was never touched"
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn an_exclusive_break_unwinding_restores_the_entry() {
        let old = page(0x8000_0000, Prot::RW);
        let r = Recorder::default();
        *r.value.borrow_mut() = old.bits();
        r.panic_on_tlbi.set(true);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: the recorder holds `old`, and only this test writes it.
            unsafe { set(&r, &r, old, Descriptor::INVALID) }
        }));
        assert!(unwound.is_err());
        assert_eq!(*r.value.borrow(), old.bits());
        assert_eq!(
            *r.events.borrow(),
            [Event::Visible(0), Event::Visible(old.bits())]
        );
    }

    // Regression (issue 10, item 4): an exclusive change that took write
    // permission away left the writable translation in the TLB.
    #[test]
    fn an_exclusive_restriction_is_invalidated_after_the_store() {
        let old = page(0x8000_0000, Prot::RW | Prot::X);
        for new in [
            old.with_writable(false),
            old.with_readable(false),
            old.with_exec(crate::descriptor::Exec::Never),
            old.with_exec(crate::descriptor::Exec::El0Only),
        ] {
            let r = Recorder::default();
            *r.value.borrow_mut() = old.bits();
            // SAFETY: the recorder holds `old`, and only this test writes it.
            unsafe { set(&r, &r, old, new) };
            assert_eq!(
                *r.events.borrow(),
                [Event::Cmo, Event::Visible(new.bits()), Event::Tlbi],
                "{new:?}"
            );
        }
        // Adding permissions, or clearing the access flag, leaves nothing
        // stale that grants too much.
        for new in [old.with_young(false), page(0x8000_0000, Prot::RWX)] {
            let r = Recorder::default();
            // SAFETY: the recorder holds `old`, and only this test writes it.
            unsafe { set(&r, &r, old, new) };
            assert!(!r.events.borrow().events.contains(&Some(Event::Tlbi)));
        }
    }

    #[test]
    fn permission_changes_swap_without_a_break() {
        let old = page(0x8000_0000, Prot::RW);
        let r = Recorder::default();
        *r.value.borrow_mut() = old.bits();
        let new = old.with_writable(false).with_young(false);
        assert!(!must_break(old, new));
        try_update(&r, &r, old, new).unwrap();
        assert_eq!(*r.events.borrow(), [Event::Cmo, Event::Visible(new.bits())]);
    }

    #[test]
    fn a_locked_entry_is_a_race_and_is_not_touched() {
        let r = Recorder::default();
        *r.value.borrow_mut() = Descriptor::LOCKED.bits();
        let new = page(0x8000_0000, Prot::RW);
        assert_eq!(
            try_update(&r, &r, Descriptor::LOCKED, new),
            Err(Conflict::Raced)
        );
        assert!(try_break(&r, &r, Descriptor::LOCKED).is_err());
        assert!(r.events.borrow().is_empty());
    }

    #[test]
    fn which_changes_need_a_break() {
        let old = page(0x8000_0000, Prot::RW);
        assert!(needs_break(old, page(0x8000_1000, Prot::RW)));
        assert!(needs_break(old, page(0x8000_0000, Prot::RW | Prot::DEVICE)));
        assert!(!needs_break(old, page(0x8000_0000, Prot::R | Prot::X)));
        assert!(!needs_break(Descriptor::INVALID, old));
        // A block and the table that replaces it, at the same address.
        let block = Descriptor::leaf(
            PhysAddr(0x8000_0000),
            Level::new(2).unwrap(),
            LeafAttrs::from_prot(Prot::RW).unwrap(),
        );
        let table = Descriptor::table(PhysAddr(0x8000_0000), TableFormat::FOUR_KIB);
        assert!(needs_break(block, table) && needs_break(table, block));
        assert!(must_break(old, Descriptor::INVALID));
        assert!(!must_break(Descriptor::INVALID, old));
    }
}

//! The visit context: one entry, what the walker read from it, and the
//! updates its capability allows.
//!
//! Every capability can read. Only an [`Exclusive`] context has
//! [`set`](VisitCtx::set), a plain store; only a [`Concurrent`] context has
//! [`try_set`](VisitCtx::try_set), a compare-and-swap whose lost race is a
//! [`Conflict`] for `?` to turn into the capability's answer.

use core::marker::PhantomData;
use core::sync::atomic::AtomicU64;

use super::entry::{self, EntrySite};
use super::flags::{VisitKind, WalkFlags};
use crate::action::Conflict;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Capability, Concurrent, Exclusive};
use crate::descriptor::Descriptor;
use crate::geometry::{Geometry, Level};
use crate::memory::MemoryOps;

/// One entry under visit.
pub struct VisitCtx<'a, C: Capability, M> {
    pub(super) ptep: &'a AtomicU64,
    pub(super) table: PhysAddr,
    pub(super) old: Descriptor,
    pub(super) addr: u64,
    pub(super) end: u64,
    pub(super) level: Level,
    pub(super) kind: VisitKind,
    pub(super) mm: &'a M,
    pub(super) geometry: &'a Geometry,
    pub(super) flags: WalkFlags,
    pub(super) written: bool,
    pub(super) complete: bool,
    pub(super) _cap: PhantomData<C>,
}

impl<'a, C: Capability, M: MemoryOps> VisitCtx<'a, C, M> {
    /// The entry as the walker read it before calling the visitor.
    #[inline(always)]
    pub fn old(&self) -> Descriptor {
        self.old
    }

    /// The walk's current address; inside the entry's range, at its start
    /// except for the first entry of an unaligned walk.
    #[inline(always)]
    pub fn addr(&self) -> Ipa {
        Ipa(self.addr)
    }

    /// First address of the range this entry maps.
    #[inline(always)]
    pub fn entry_addr(&self) -> Ipa {
        Ipa(self.addr & !(self.entry_size() - 1))
    }

    /// Bytes this entry maps.
    #[inline(always)]
    pub fn entry_size(&self) -> u64 {
        self.geometry.entry_size(self.level)
    }

    /// One past the last address of the walk.
    #[inline(always)]
    pub fn end(&self) -> Ipa {
        Ipa(self.end)
    }

    /// Whether the walk covers this entry's whole range.
    #[inline(always)]
    pub fn covers_entry(&self) -> bool {
        let size = self.entry_size();
        self.addr & (size - 1) == 0 && self.end - self.addr >= size
    }

    /// The entry's level.
    #[inline(always)]
    pub fn level(&self) -> Level {
        self.level
    }

    /// Which visit this is.
    #[inline(always)]
    pub fn kind(&self) -> VisitKind {
        self.kind
    }

    /// The walk's flags.
    #[inline(always)]
    pub fn flags(&self) -> WalkFlags {
        self.flags
    }

    /// The table's geometry.
    #[inline(always)]
    pub fn geometry(&self) -> &'a Geometry {
        self.geometry
    }

    /// The host's operations.
    #[inline(always)]
    pub fn mm(&self) -> &'a M {
        self.mm
    }

    /// Physical address of the table page holding this entry.
    #[inline(always)]
    pub(crate) fn table_page(&self) -> PhysAddr {
        self.table
    }

    /// The entry itself, for visitors written in another language (the C
    /// ABI's `kvm_pgtable_visit_ctx::ptep`), which update entries the way
    /// the kernel's visitors do: plain stores or compare-and-swap of their
    /// own, keeping reference counts and TLBs themselves.
    ///
    /// Because a write through the pointer cannot be seen, asking for it
    /// makes the walker read the entry again after the visit, so that a
    /// table installed through it is descended into.
    #[inline(always)]
    pub fn entry_ptr(&mut self) -> *mut u64 {
        self.written = true;
        self.ptep.as_ptr()
    }

    /// Reads the entry again (it may have changed under a concurrent walker)
    /// and makes that the value updates compare against.
    #[inline(always)]
    pub fn reload(&mut self) -> Descriptor {
        self.old = entry::load(self.ptep, C::LOAD);
        self.old
    }

    /// Tells the walker that this visit has already built everything below
    /// the entry (a table it linked, filled), so it need neither descend
    /// nor post-visit. Internal: the public capability contract has no
    /// "skip" for exclusive walkers.
    #[inline(always)]
    pub(crate) fn mark_complete(&mut self) {
        self.complete = true;
    }

    /// This entry's place in the table, as the entry protocol sees it.
    #[inline(always)]
    fn site(&self) -> Site<'a, M> {
        Site {
            mm: self.mm,
            table: self.table,
            geometry: self.geometry,
            addr: self.addr,
            level: self.level,
            flags: self.flags,
        }
    }

    /// Panics unless `new` may be written here by a visitor: leaves only,
    /// at levels that hold leaves, over an entry that is not a table, and
    /// never the locked marker (which only a break in progress may hold:
    /// every walker that met one would wait for a make that never comes).
    #[inline(always)]
    fn check_leaf_update(&self, new: Descriptor) {
        assert!(
            !self.old.is_table(self.level) && !new.is_table(self.level),
            "visitors may change leaves only; table entries belong to the walker"
        );
        assert!(
            !new.is_locked(),
            "the locked marker belongs to break-before-make; a visitor may not store it"
        );
        assert!(
            !new.is_valid() || self.geometry.leaf_allowed(self.level),
            "no block mapping is allowed at level {}",
            self.level
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

    /// [`set`](Self::set) without its leaf-only check, for the operations
    /// that own the table structure: linking, replacing and clearing table
    /// entries. Freeing a subtree this unlinks is the caller's job.
    #[inline(always)]
    pub(crate) fn replace(&mut self, new: Descriptor) {
        if self.old == new {
            return;
        }
        // SAFETY: `self.old` is what the entry holds: the walker read it
        // (or this context wrote it), and under `Exclusive` nobody else
        // writes the table; `site()` counts for this entry's page.
        unsafe { entry::set(self.ptep, &self.site(), self.old, new) };
        self.written = true;
        self.old = new;
    }
}

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
        let old = self.old;
        self.try_set_owing_tlbi(new)?;
        // A break already invalidated the TLB; a plain swap did not.
        if !entry::must_break(old, new) && old.removes_permissions(new) {
            self.site().invalidate(old);
        }
        Ok(())
    }

    /// [`try_set`](Self::try_set) without the invalidation after a change
    /// that removes permissions: for operations that hand the caller a
    /// [`TlbFlush`](crate::TlbFlush) for the whole range instead.
    #[inline(always)]
    pub(crate) fn try_set_owing_tlbi(&mut self, new: Descriptor) -> Result<(), Conflict> {
        let old = self.old;
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
        entry::try_update(self.ptep, &self.site(), old, new)?;
        self.written = true;
        self.old = new;
        Ok(())
    }

    /// Break: swaps the entry for the locked marker and invalidates the TLB
    /// for what it held. The caller must follow with [`make`](Self::make);
    /// should it unwind first, the guard puts the old entry back.
    #[inline(always)]
    pub(crate) fn try_break(&mut self) -> Result<Broken<'a, AtomicU64>, Conflict> {
        let broken = entry::try_break(self.ptep, &self.site(), self.old)?;
        self.written = true;
        Ok(broken)
    }

    /// Links the private, filled table page `child` in place of the leaf
    /// read: by compare-and-swap over an invalid entry, by break-before-make
    /// over a valid one.
    #[inline(always)]
    pub(crate) fn try_link_table(&mut self, child: PhysAddr) -> Result<(), Conflict> {
        let new = Descriptor::table(child);
        entry::try_update(self.ptep, &self.site(), self.old, new)?;
        self.written = true;
        self.old = new;
        Ok(())
    }

    /// Make: publishes `new` over a broken entry.
    #[inline(always)]
    pub(crate) fn make(&mut self, broken: Broken<'a, AtomicU64>, new: Descriptor) {
        entry::make(self.ptep, &self.site(), broken, new);
        self.written = true;
        self.old = new;
    }
}

/// The host's side of one entry's updates: its table page's reference
/// count, TLB invalidation for its range, cache maintenance for its leaf.
struct Site<'a, M> {
    mm: &'a M,
    table: PhysAddr,
    geometry: &'a Geometry,
    addr: u64,
    level: Level,
    flags: WalkFlags,
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
        // which is what `MemoryOps::get_page` asks.
        unsafe { self.mm.get_page(self.table) };
    }

    #[inline(always)]
    unsafe fn put(&self) {
        // SAFETY: the caller gives back a reference it owns to a page that
        // stays linked (the contract of `EntrySite::put`), so this is never
        // the page's last reference.
        unsafe { self.mm.put_page(self.table) };
    }

    #[inline(always)]
    fn invalidate(&self, old: Descriptor) {
        if self.flags.contains(WalkFlags::SKIP_BBM_TLBI) {
            return;
        }
        if old.is_table(self.level) {
            // A table may hold many cached walks: invalidate its whole range.
            self.mm
                .tlb_flush_vmid_range(self.entry_addr(), self.entry_size());
        } else if old.is_valid() {
            self.mm.tlb_flush_vmid_ipa(self.entry_addr(), self.level);
        }
    }

    #[inline(always)]
    fn maintain_caches(&self, old: Descriptor, new: Descriptor) {
        if self.flags.contains(WalkFlags::SKIP_CMO) || !new.is_leaf(self.level) {
            return;
        }
        let granule = self.geometry.granule();
        let pa = new.output_address(granule);
        let size = self.entry_size();
        // A table descriptor's address is a table page, never guest memory.
        let same_page = old.is_leaf(self.level) && old.output_address(granule) == pa;
        if new.is_cacheable() && !same_page {
            self.mm.dcache_clean_inval_poc(pa, size);
        }
        if new.is_executable() && !(same_page && old.is_executable()) {
            self.mm.icache_inval_pou(pa, size);
        }
    }
}

pub(crate) use entry::Broken;

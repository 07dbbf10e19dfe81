//! The visit context: one entry, what the walker read from it, and the
//! updates its capability allows.
//!
//! Every capability can read. Only an [`Exclusive`] context has
//! [`set`](VisitCtx::set), a plain store; only a [`Concurrent`] context has
//! [`try_set`](VisitCtx::try_set), a compare-and-swap whose lost race is a
//! [`Conflict`] for `?` to turn into the capability's answer.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};

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

    /// Reads the entry again (it may have changed under a concurrent walker)
    /// and makes that the value updates compare against.
    #[inline(always)]
    pub fn reload(&mut self) -> Descriptor {
        self.old = Descriptor::from_bits(self.ptep.load(C::LOAD));
        self.old
    }

    /// Publishes `new`, with release ordering so that a table page's zeroed
    /// contents, or a guest page's cache maintenance, are visible first.
    #[inline(always)]
    pub(crate) fn store(&mut self, new: Descriptor) {
        self.ptep.store(new.bits(), Ordering::Release);
        self.written = true;
    }

    /// Replaces the value read with `new` if nobody changed it meanwhile.
    #[inline(always)]
    pub(crate) fn cas(&mut self, new: Descriptor) -> Result<(), Conflict> {
        if self.old.is_locked() {
            return Err(Conflict::Raced);
        }
        match self.ptep.compare_exchange(
            self.old.bits(),
            new.bits(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                self.written = true;
                Ok(())
            }
            Err(_) => Err(Conflict::Raced),
        }
    }

    /// Keeps the table page's reference count at 1 + its non-zero entries
    /// when this entry goes from `old` to `new`.
    #[inline(always)]
    pub(crate) fn account(&self, old: Descriptor, new: Descriptor) {
        match (old.is_counted(), new.is_counted()) {
            (false, true) => self.mm.get_page(self.table),
            // SAFETY: `old` was counted, so the page's count is at least
            // 1 + this entry: dropping this entry's reference cannot free the
            // page, which still holds the entry being written.
            (true, false) => unsafe { self.mm.put_page(self.table) },
            _ => {}
        }
    }

    /// Invalidates TLB entries for what `old` mapped at this entry, unless
    /// the walk asked to skip it.
    #[inline(always)]
    pub(crate) fn invalidate(&self, old: Descriptor) {
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

    /// Cache maintenance for a new leaf before it is published: clean the
    /// data cache for cacheable memory, invalidate the instruction cache
    /// for newly executable memory.
    #[inline(always)]
    pub(crate) fn maintain_caches(&self, old: Descriptor, new: Descriptor) {
        if self.flags.contains(WalkFlags::SKIP_CMO) || !new.is_leaf(self.level) {
            return;
        }
        let granule = self.geometry.granule();
        let pa = new.output_address(granule);
        let size = self.entry_size();
        let same_page = old.is_valid() && old.output_address(granule) == pa;
        if new.is_cacheable() && !same_page {
            self.mm.dcache_clean_inval_poc(pa, size);
        }
        if new.is_executable() && !(same_page && old.is_executable()) {
            self.mm.icache_inval_pou(pa, size);
        }
    }

    /// Panics unless `new` may be written here by a visitor: leaves only,
    /// at levels that hold leaves, over an entry that is not a table.
    #[inline(always)]
    fn check_leaf_update(&self, new: Descriptor) {
        assert!(
            !self.old.is_table(self.level) && !new.is_table(self.level),
            "visitors may change leaves only; table entries belong to the walker"
        );
        assert!(
            !new.is_valid() || self.geometry.leaf_allowed(self.level),
            "no block mapping is allowed at level {}",
            self.level
        );
    }
}

/// Whether going from `old` to `new` needs break-before-make: both valid,
/// and the output address, memory type or shareability change.
#[inline(always)]
pub(crate) fn needs_break(old: Descriptor, new: Descriptor) -> bool {
    const BREAK_BITS: u64 = 0x0000_ffff_ffff_f000 | 0xf << 2 | 0b11 << 8;
    old.is_valid() && new.is_valid() && (old.bits() ^ new.bits()) & BREAK_BITS != 0
}

impl<M: MemoryOps> VisitCtx<'_, Exclusive, M> {
    /// Writes `new` over this leaf entry: break-before-make where the
    /// architecture requires it (invalidate, TLBI, write), cache maintenance
    /// for a new cacheable or executable leaf, and the table page's reference
    /// count kept. Restricting permissions leaves stale TLB entries behind:
    /// the caller invalidates the range afterwards.
    ///
    /// # Panics
    ///
    /// If the entry or `new` is a table descriptor (the walker owns the
    /// table structure), or `new` is a valid leaf at a level that cannot hold
    /// one. These are bugs in the visitor, like an index out of bounds.
    #[inline(always)]
    pub fn set(&mut self, new: Descriptor) {
        self.check_leaf_update(new);
        let old = self.old;
        if old == new {
            return;
        }
        if needs_break(old, new) || (old.is_valid() && !new.is_valid()) {
            self.store(Descriptor::INVALID);
            self.invalidate(old);
        }
        self.maintain_caches(old, new);
        self.account(old, new);
        self.store(new);
        self.old = new;
    }
}

impl<C: Concurrent, M: MemoryOps> VisitCtx<'_, C, M> {
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
    /// # Panics
    ///
    /// As [`VisitCtx::set`].
    #[inline(always)]
    pub fn try_set(&mut self, new: Descriptor) -> Result<(), Conflict> {
        self.check_leaf_update(new);
        let old = self.old;
        if old.is_locked() {
            return Err(Conflict::Raced);
        }
        if old == new {
            return Ok(());
        }
        if needs_break(old, new) || (old.is_valid() && !new.is_valid()) {
            let broken = self.try_break()?;
            self.make(broken, new);
        } else {
            self.maintain_caches(old, new);
            self.cas(new)?;
            self.account(old, new);
            self.old = new;
        }
        Ok(())
    }

    /// Break: swaps the entry for the locked marker, invalidates the TLB for
    /// what it held and drops its reference. The caller must follow with
    /// [`make`](Self::make).
    #[inline(always)]
    pub(crate) fn try_break(&mut self) -> Result<Broken, Conflict> {
        let old = self.old;
        self.cas(Descriptor::LOCKED)?;
        self.invalidate(old);
        self.account(old, Descriptor::LOCKED);
        Ok(Broken { old })
    }

    /// Links the private, filled table page `child` in place of the leaf
    /// read: by compare-and-swap over an invalid entry, by break-before-make
    /// over a valid one.
    #[inline(always)]
    pub(crate) fn try_link_table(&mut self, child: PhysAddr) -> Result<(), Conflict> {
        let new = Descriptor::table(child);
        let old = self.old;
        if old.is_valid() {
            let broken = self.try_break()?;
            self.make(broken, new);
        } else {
            self.cas(new)?;
            self.account(old, new);
            self.old = new;
        }
        Ok(())
    }

    /// Make: publishes `new` over a broken entry.
    #[inline(always)]
    pub(crate) fn make(&mut self, broken: Broken, new: Descriptor) {
        self.maintain_caches(broken.old, new);
        self.account(Descriptor::LOCKED, new);
        self.store(new);
        self.old = new;
    }
}

/// Proof that this walker broke an entry and must now make it.
#[must_use = "a broken entry stays locked until `make` publishes its new value"]
pub(crate) struct Broken {
    pub(crate) old: Descriptor,
}

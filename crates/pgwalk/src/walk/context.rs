//! The visit context: one entry, what the walker read from it, and where
//! it sits.
//!
//! Every capability can read. What a visitor may write depends on the
//! capability and on the descriptor format, so the updates live with the
//! format: for stage 2, only an [`Exclusive`](crate::Exclusive) context has
//! `set`, a plain store, and only a [`Concurrent`](crate::Concurrent)
//! context has `try_set`, a compare-and-swap whose lost race is a
//! [`Conflict`](crate::Conflict) for `?` to turn into the capability's
//! answer (see `stage2/pte.rs`).

use core::marker::PhantomData;

use super::flags::{VisitKind, WalkFlags};
use super::leaf_table::LeafTable;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::Capability;
use crate::descriptor::{Descriptor, Pte};
use crate::geometry::{Geometry, Level};
use crate::memory::MemoryOps;
use crate::sync::AtomicU64;

/// One entry under visit, of a table whose entries are `D`s (stage-2
/// [`Descriptor`]s unless said otherwise).
pub struct VisitCtx<'a, C: Capability, M, D: Pte = Descriptor> {
    pub(crate) ptep: &'a AtomicU64,
    pub(crate) table: PhysAddr,
    /// What the walker read, before the visitor ran.
    pub(crate) read: D,
    /// What the entry holds as far as this visit knows: `read`, or what its
    /// own last update wrote. Concurrent updates compare against it.
    pub(crate) cur: D,
    pub(crate) addr: u64,
    pub(crate) end: u64,
    pub(crate) level: Level,
    pub(crate) kind: VisitKind,
    pub(crate) mm: &'a M,
    pub(crate) geometry: &'a Geometry,
    pub(crate) flags: WalkFlags,
    pub(crate) written: bool,
    pub(crate) complete: bool,
    /// The walk's "an invalidation was skipped" flag (`SKIP_BBM_TLBI`).
    pub(crate) owed: &'a core::cell::Cell<bool>,
    pub(crate) _cap: PhantomData<C>,
}

impl<'a, C: Capability, M: MemoryOps, D: Pte> VisitCtx<'a, C, M, D> {
    /// The entry as the walker read it before calling the visitor. It does
    /// not change when the visitor updates the entry: see
    /// [`current`](Self::current).
    #[inline(always)]
    pub fn old(&self) -> D {
        self.read
    }

    /// The entry as this visit last knew it: what the walker read, or what
    /// the visitor's own last update wrote (or [`reload`](Self::reload)
    /// read). Updates compare against this value.
    #[inline(always)]
    pub fn current(&self) -> D {
        self.cur
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
        // A walk's addresses are page-aligned, so at the last level the
        // address is the entry's. Where the level is known, as in the
        // walker's leaf loop, that leaves the geometry unread.
        if self.level.is_last() {
            debug_assert_eq!(self.addr & (self.entry_size() - 1), 0);
            return Ipa(self.addr);
        }
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
        // A page-aligned walk covers every page it visits.
        if self.level.is_last() {
            debug_assert!(self.addr & (self.entry_size() - 1) == 0 && self.addr < self.end);
            return true;
        }
        let size = self.entry_size();
        self.addr & (size - 1) == 0 && self.end - self.addr >= size
    }

    /// Whether a leaf here may map the output address `pa`: `pa` is
    /// aligned to the entry's size. For a page it is not tested: every map
    /// checks its output address against the page size, and the walk's
    /// addresses are page-aligned, so a page's output is aligned already
    /// (debug builds assert it).
    #[inline(always)]
    pub(crate) fn output_aligned(&self, pa: u64) -> bool {
        if self.level.is_last() {
            debug_assert_eq!(pa & (self.entry_size() - 1), 0);
            return true;
        }
        pa & (self.entry_size() - 1) == 0
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
    ///
    /// Not built with `--cfg loom`, whose atomics are no memory a pointer
    /// could reach.
    #[cfg(not(loom))]
    #[inline(always)]
    pub fn entry_ptr(&mut self) -> *mut u64 {
        self.written = true;
        self.ptep.as_ptr()
    }

    /// Reads the entry again (it may have changed under a concurrent walker)
    /// and makes that the value updates compare against.
    #[inline(always)]
    pub fn reload(&mut self) -> D {
        self.cur = D::from_bits(self.ptep.load(C::LOAD));
        self.cur
    }

    /// On the [`TablePre`](VisitKind::TablePre) visit of an entry that
    /// links a last-level table, the part of that table the walk covers,
    /// for the visitor to read in one loop; the walk then moves past the
    /// entry without descending (no leaf visits below it, no post-order
    /// visit of it). `None`, and the walk goes on as usual, for any other
    /// visit.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use pgwalk::host::HeapMemory;
    /// use pgwalk::visit::{Action, VisitKind, WalkFlags};
    /// use pgwalk::{geometry::Geometry, Ipa, PhysAddr, Prot, Stage2};
    ///
    /// let mut table = Stage2::with_geometry(Geometry::for_ia_bits(40, 40)?, HeapMemory::new(64))?;
    /// let mut h = table.exclusive();
    /// h.map(Ipa(0x1000), 3 << 12, PhysAddr(0x8000_0000), Prot::RW, &mut ())?;
    ///
    /// // Count the valid pages of the first 2 MiB, a leaf table at a time.
    /// let (mut valid, mut leaf_visits) = (0, 0);
    /// h.walk(Ipa(0), 2 << 20, WalkFlags::TABLE_PRE | WalkFlags::LEAF, |ctx| {
    ///     if let Some(t) = ctx.take_leaf_table() {
    ///         valid += t.iter().filter(|d| d.is_valid()).count();
    ///     } else if ctx.kind() == VisitKind::Leaf {
    ///         leaf_visits += 1;
    ///     }
    ///     Ok(Action::Continue)
    /// })?;
    /// assert_eq!((valid, leaf_visits), (3, 0));
    /// # }
    /// # Ok::<(), pgwalk::Error>(())
    /// ```
    #[inline(always)]
    pub fn take_leaf_table(&mut self) -> Option<LeafTable<'a, C, D>> {
        if self.kind != VisitKind::TablePre
            || !self.level.next().is_last()
            || !self.cur.is_table(self.level)
        {
            return None;
        }
        let level = self.level.next();
        let entries = self.geometry.granule().entries();
        let (first, last) = super::covered(self.geometry, self.addr, self.end, level, entries);
        let size = self.geometry.entry_size(level);
        let child = self.cur.table_address(self.geometry.format());
        // SAFETY: `child` is what a table descriptor of this walk's table
        // links (the value the walker read, or this visit's own update), a
        // table page of `mm` of one granule's entries, which stays
        // allocated for `'a` as every page the walker descends into does:
        // an exclusive walker is alone and frees nothing under its visitor,
        // a concurrent one runs inside `shared_walk`, whose grace period
        // keeps unlinked pages alive.
        let page = unsafe { crate::table_page::TablePage::new(self.mm, child, entries) };
        self.mark_complete();
        Some(LeafTable::new(
            &page.entries()[first..last],
            self.addr & !(size - 1),
            size,
        ))
    }

    /// Tells the walker that this visit has already built everything below
    /// the entry (a table it linked, filled), so it need neither descend
    /// nor post-visit. Internal: the public capability contract has no
    /// "skip" for exclusive walkers.
    #[inline(always)]
    pub(crate) fn mark_complete(&mut self) {
        self.complete = true;
    }
}

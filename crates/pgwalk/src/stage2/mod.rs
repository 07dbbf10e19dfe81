//! The stage-2 table and the handles through which it is changed.
//!
//! A [`Stage2`] owns its root and its host operations. It is changed only
//! through a [`Handle`], whose capability says which operations exist:
//!
//! | operation | [`Exclusive`] | [`Shared`] | [`HandlesFault`] |
//! |-----------|:---:|:---:|:---:|
//! | `walk`, `get_leaf`, `for_each_mapping` | ✓ | ✓ | ✓ |
//! | `check` (the table's invariants) | ✓ | | |
//! | `map`, `unmap`, `annotate`, `split`, `create_unlinked` | ✓ | | |
//! | `wrprotect`, `test_young`, `clear_young` | ✓ (plain stores) | ✓ | via [`Handle::as_shared`] |
//! | `clean_dcache` | via [`Handle::as_shared`] | ✓ | via [`Handle::as_shared`] |
//! | `mkyoung`, `relax_perms` | via [`Handle::as_shared`] | ✓ | ✓ (a [`TableOutcome`](crate::fault::TableOutcome)) |
//! | `map` on the fault path | | | ✓ (a [`TableOutcome`](crate::fault::TableOutcome)) |
//!
//! An exclusive handle borrows the table mutably (`&mut Stage2`, or a write
//! guard of [`LockedStage2`](crate::LockedStage2)); shared and fault-handler
//! handles borrow it immutably (`&Stage2`, or a read guard). The borrow
//! checker then enforces what the lock does: no shared walker runs while an
//! exclusive one does, and no handle outlives its guard.
//!
//! Each operation is one visitor in a file of its own; what they share
//! lives beside them: the entry protocol ([`pte`]), building and freeing
//! table pages off to the side (`tables`), and argument checks (`args`).

mod annotate;
pub(crate) mod args;
mod check;
mod dcache;
mod destroy;
mod fault_map;
mod idmap;
mod leaf;
pub(crate) mod leaf_update;
mod map;
mod mappings;
mod options;
pub(crate) mod pte;
mod relax;
mod split;
pub(crate) mod tables;
mod tlb_flush;
mod unlinked;
mod unmap;
mod wrprotect;
mod young;

use core::marker::PhantomData;

pub use check::{BrokenInvariant, TableReport};
pub use idmap::{IdmapRange, MemoryRegion};
pub use mappings::Mapping;
pub use options::{MapOptions, UnmapOptions};
pub use tables::free_unlinked;

pub(crate) use args::{check_map, check_range};
pub use tlb_flush::TlbFlush;

use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Capability, Exclusive, HandlesFault, Shared, Visit, Walked};
use crate::error::Error;
use crate::geometry::Geometry;
use crate::memory::MemoryOps;
use crate::walk::{self, Root, Span, VisitCtx, WalkFlags};

/// A stage-2 translation table: its geometry, its root and the host's
/// operations (`struct kvm_pgtable`).
///
/// Dropping it frees every table page through the host's operations
/// (`kvm_pgtable_stage2_destroy`).
pub struct Stage2<M: MemoryOps> {
    geometry: Geometry,
    root: PhysAddr,
    mm: M,
}

impl<M: MemoryOps> Stage2<M> {
    /// A new, empty table with the geometry VTCR_EL2 describes
    /// (`kvm_pgtable_stage2_init`).
    pub fn new(vtcr: u64, mm: M) -> Result<Stage2<M>, Error> {
        Stage2::with_geometry(Geometry::from_vtcr(vtcr)?, mm)
    }

    /// A new, empty table with `geometry`: its root, of
    /// [`Geometry::root_size`] bytes, comes from
    /// [`MemoryOps::zalloc_pages_exact`].
    ///
    /// The host must serve tables of the geometry's format
    /// ([`MemoryOps::table_format`]: its pages are the granule's size), or
    /// the table is refused with [`Error::Geometry`]. A root that is not
    /// aligned to its size (which VTTBR_EL2.BADDR needs, and
    /// `zalloc_pages_exact` promises) is given back and refused with
    /// [`Error::Misaligned`]; one beyond what the format's addresses reach
    /// (48 bits, or 52 with 64 KiB and LPA2) with [`Error::OutputTooLarge`].
    /// Table pages must also lie below PS for the MMU to walk them: that
    /// is the host's to arrange.
    pub fn with_geometry(geometry: Geometry, mm: M) -> Result<Stage2<M>, Error> {
        if mm.table_format() != geometry.format() {
            return Err(Error::Geometry(
                "the host serves tables of another format (MemoryOps::table_format): its pages are not this granule's size, or its LPA2 setting differs",
            ));
        }
        let size = geometry.root_size();
        let root = mm.zalloc_pages_exact(size).ok_or(Error::NoMemory)?;
        let refused = if !root.is_aligned(size as u64) {
            Error::Misaligned {
                what: "root from zalloc_pages_exact",
                value: root.get(),
                granule: size as u64,
            }
        } else if root.get() >> geometry.format().max_oa_bits() != 0 {
            Error::OutputTooLarge {
                pa: root.get() + (size as u64 - 1),
                oa_bits: geometry.format().max_oa_bits(),
            }
        } else {
            return Ok(Stage2 { geometry, root, mm });
        };
        // SAFETY: the block just came from `zalloc_pages_exact(size)`, and
        // nothing links or walks it.
        unsafe { mm.free_pages_exact(root, size) };
        Err(refused)
    }

    /// Reassembles a table from [`into_raw_parts`](Self::into_raw_parts).
    ///
    /// # Safety
    ///
    /// `root` must be a root allocated by `mm` for `geometry`, holding a
    /// table that only pgwalk changed (or that follows pgwalk's invariants:
    /// table descriptors point at table pages from `mm`, whose reference
    /// counts are 1 plus their non-zero entries), `mm` must serve tables of
    /// `geometry`'s format, and no other `Stage2` may own it.
    pub unsafe fn from_raw_parts(geometry: Geometry, root: PhysAddr, mm: M) -> Stage2<M> {
        debug_assert_eq!(mm.table_format(), geometry.format());
        Stage2 { geometry, root, mm }
    }

    /// Takes the table apart without freeing it.
    pub fn into_raw_parts(self) -> (Geometry, PhysAddr, M) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used again or dropped, so moving `mm` out
        // of it cannot lead to a double drop; the other fields are `Copy`.
        let mm = unsafe { core::ptr::read(&this.mm) };
        (this.geometry, this.root, mm)
    }

    /// The table's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Physical address of the root, for VTTBR_EL2.BADDR (the kernel's
    /// `pgd`).
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The host's operations.
    pub fn mm(&self) -> &M {
        &self.mm
    }

    /// The handle of the table's sole owner.
    pub fn exclusive(&mut self) -> Handle<'_, Exclusive, M> {
        Handle::new(self)
    }

    /// A handle for a walker that may run beside others.
    pub fn shared(&self) -> Handle<'_, Shared, M> {
        Handle::new(self)
    }

    /// A handle for a vCPU's fault path.
    pub fn fault_handler(&self) -> Handle<'_, HandlesFault, M> {
        Handle::new(self)
    }

    fn walk_root(&self) -> Root<'_, M> {
        Root {
            geometry: &self.geometry,
            pgd: self.root,
            mm: &self.mm,
        }
    }
}

impl<M: MemoryOps> Drop for Stage2<M> {
    fn drop(&mut self) {
        destroy::destroy(self);
    }
}

/// Access to a [`Stage2`] with capability `C`, for as long as the borrow
/// (or lock guard) it came from.
///
/// An exclusive handle is neither `Clone` nor `Copy`, and its operations take
/// `&mut self`: there is only ever one. Shared and fault-handler handles are
/// `Copy`.
pub struct Handle<'t, C: Capability, M: MemoryOps> {
    table: &'t Stage2<M>,
    _cap: PhantomData<C>,
}

impl<'t, C: Capability, M: MemoryOps> Handle<'t, C, M> {
    pub(crate) fn new(table: &'t Stage2<M>) -> Self {
        Handle {
            table,
            _cap: PhantomData,
        }
    }

    /// The table this handle is on.
    pub(crate) fn table(&self) -> &'t Stage2<M> {
        self.table
    }

    /// The table's geometry.
    pub fn geometry(&self) -> &'t Geometry {
        &self.table.geometry
    }

    /// The host's operations.
    pub fn mm(&self) -> &'t M {
        &self.table.mm
    }

    /// Walks `addr..addr + size` (widened to whole pages), calling `visitor`
    /// for the entries `flags` selects, in address order, and doing what it
    /// answers (`kvm_pgtable_walk`).
    ///
    /// The visitor's error type is pgwalk's [`Error`]; use
    /// [`walk_with`](Self::walk_with) for another.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use pgwalk::host::HeapMemory;
    /// use pgwalk::visit::{Action, WalkFlags};
    /// use pgwalk::{geometry::Geometry, Ipa, PhysAddr, Prot, Stage2};
    ///
    /// let mut table = Stage2::with_geometry(Geometry::for_ia_bits(40, 40)?, HeapMemory::new(64))?;
    /// let mut h = table.exclusive();
    /// h.map(Ipa(0), 3 << 12, PhysAddr(0x8000_0000), Prot::RW, &mut ())?;
    ///
    /// // Count the valid leaves of the first 16 KiB.
    /// let mut valid = 0;
    /// let walked = h.walk(Ipa(0), 16 << 10, WalkFlags::LEAF, |ctx| {
    ///     valid += usize::from(ctx.old().is_valid());
    ///     Ok(Action::Continue)
    /// })?;
    /// assert!(walked.is_completed());
    /// assert_eq!(valid, 3);
    /// # }
    /// # Ok::<(), pgwalk::Error>(())
    /// ```
    pub fn walk<F>(
        &mut self,
        addr: Ipa,
        size: u64,
        flags: WalkFlags,
        visitor: F,
    ) -> Result<Walked<C>, Error>
    where
        F: FnMut(&mut VisitCtx<'_, C, M>) -> Visit<C>,
    {
        self.run(addr, size, flags, visitor)
    }

    /// [`walk`](Self::walk), with a visitor error type of the caller's
    /// (anything pgwalk's [`Error`] converts into, for the walk's own
    /// errors).
    pub fn walk_with<E, F>(
        &mut self,
        addr: Ipa,
        size: u64,
        flags: WalkFlags,
        visitor: F,
    ) -> Result<Walked<C>, E>
    where
        E: From<Error>,
        F: FnMut(&mut VisitCtx<'_, C, M>) -> Visit<C, E>,
    {
        self.run(addr, size, flags, visitor)
    }

    /// The one body of every walk, the operations' included. Public walks
    /// take `&mut self` (a visitor cannot start another walk through the
    /// same handle); the operations need only `&self`.
    #[inline(always)]
    pub(crate) fn run<E, F>(
        &self,
        addr: Ipa,
        size: u64,
        flags: WalkFlags,
        visitor: F,
    ) -> Result<Walked<C>, E>
    where
        E: From<Error>,
        F: FnMut(&mut VisitCtx<'_, C, M>) -> Visit<C, E>,
    {
        self.run_span(Span::Range(addr, size), flags, visitor)
    }

    /// [`run`](Self::run) of a [`Span`]: for the one-page operations,
    /// [`Span::Page`].
    #[inline(always)]
    pub(crate) fn run_span<E, F>(
        &self,
        span: Span,
        flags: WalkFlags,
        visitor: F,
    ) -> Result<Walked<C>, E>
    where
        E: From<Error>,
        F: FnMut(&mut VisitCtx<'_, C, M>) -> Visit<C, E>,
    {
        walk::walk_span(self.table.walk_root(), span, flags, visitor)
    }
}

impl<'t, M: MemoryOps> Handle<'t, Exclusive, M> {
    /// This handle used as a shared one, for attribute changes: the owner
    /// of the write lock may do what readers do.
    pub fn as_shared(&self) -> Handle<'_, Shared, M> {
        Handle::new(self.table)
    }
}

impl<'t, M: MemoryOps> Handle<'t, HandlesFault, M> {
    /// This handle used as a shared one: a fault handler holds the read lock
    /// and may do what other readers do.
    pub fn as_shared(&self) -> Handle<'t, Shared, M> {
        Handle::new(self.table)
    }
}

impl<M: MemoryOps> Clone for Handle<'_, Shared, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M: MemoryOps> Copy for Handle<'_, Shared, M> {}
impl<M: MemoryOps> Clone for Handle<'_, HandlesFault, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M: MemoryOps> Copy for Handle<'_, HandlesFault, M> {}

#[cfg(test)]
mod tests {
    use crate::geometry::Geometry;
    use crate::host::HeapMemory;
    use crate::visit::Action;
    use crate::walk::{Span, WalkFlags};
    use crate::{Error, Ipa, PhysAddr, Prot, Stage2};

    /// `Span::Page`, the one-page operations' shortcut, is the walk of that
    /// page as a range: every visit sees the same context (the end of the
    /// walk included, which its present visitors happen not to read), and
    /// a page beyond the input size is refused as the range is.
    #[test]
    fn a_page_span_walks_as_its_one_page_range() {
        let mut t =
            Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), HeapMemory::new(64))
                .unwrap();
        let page = 0x4020_3000;
        t.exclusive()
            .map(Ipa(page), 0x1000, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap();
        let h = t.exclusive();
        let flags = WalkFlags::LEAF | WalkFlags::TABLE_PRE;
        let visits = |span| {
            let mut seen = Vec::new();
            let walked = h.run_span::<Error, _>(span, flags, |ctx| {
                seen.push((ctx.kind(), ctx.level().get(), ctx.addr(), ctx.end()));
                Ok(Action::Continue)
            });
            assert!(walked.unwrap().is_completed());
            seen
        };
        let by_page = visits(Span::Page(Ipa(page + 0x123)));
        assert_eq!(by_page, visits(Span::Range(Ipa(page + 0x123), 1)));
        assert_eq!(by_page.len(), 3, "levels 1 and 2 before the leaf");
        assert!(by_page.iter().all(|v| v.3 == Ipa(page + 0x1000)));
        let beyond = |span| h.run_span::<Error, _>(span, flags, |_| Ok(Action::Continue));
        assert_eq!(
            beyond(Span::Page(Ipa(1 << 40))),
            beyond(Span::Range(Ipa(1 << 40), 0x1000))
        );
    }
}

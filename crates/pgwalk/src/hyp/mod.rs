//! EL2 stage-1 tables: the hypervisor's own page tables (Linux's
//! `kvm_pgtable_hyp_*`), through the same walk engine as stage 2.
//!
//! A non-VHE hypervisor maps itself — its text, data, stacks, the UART,
//! the memory it shares with its host — in one table that TTBR0_EL2 points
//! at, with the attributes of [`HypDescriptor`] and the memory types of
//! [`HYP_MAIR`](crate::descriptor::HYP_MAIR). Linux changes these tables
//! only under a spinlock: every hyp walker is exclusive. Here that is a type
//! fact: a [`HypTable`] hands out a [`HypHandle`] whose capability must be a
//! [`HypCapability`], which only [`Exclusive`] is. There is no shared or
//! fault-handler handle to ask for, so no visitor of a hyp walk can be
//! asked to retry, skip or resume a guest.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use pgwalk::descriptor::HYP_MAIR;
//! use pgwalk::geometry::{Geometry, Granule};
//! use pgwalk::host::HeapMemory;
//! use pgwalk::hyp::HypTable;
//! use pgwalk::{PhysAddr, Prot, Va};
//!
//! // A 39-bit EL2 VA space, 4 KiB granule, 40-bit PAs: start at level 1.
//! let geometry = Geometry::for_va_bits(Granule::Size4KiB, 39, 40)?;
//! let mut table = HypTable::with_geometry(geometry, HeapMemory::new(16), &mut ())?;
//! let mut h = table.exclusive();
//! // The hypervisor's text (read-only, executable) and a UART page.
//! h.map(Va(0x4000_0000), 0x20_0000, PhysAddr(0x4000_0000), Prot::R | Prot::X, &mut ())?;
//! h.map(Va(0x900_0000), 0x1000, PhysAddr(0x900_0000), Prot::RW | Prot::DEVICE, &mut ())?;
//! let (leaf, level) = h.get_leaf(Va(0x4000_3000))?;
//! assert!(leaf.executable() && !leaf.writable() && level.get() == 2);
//! // W^X, as Linux refuses it.
//! assert!(h.map(Va(0x8000_0000), 0x1000, PhysAddr(0), Prot::RWX, &mut ()).is_err());
//! // What the hypervisor loads before it sets SCTLR_EL2.M:
//! let (mair, tcr, ttbr) = (HYP_MAIR, table.tcr_el2(), table.ttbr0_el2());
//! # let _ = (mair, tcr, ttbr);
//! # }
//! # Ok::<(), pgwalk::Error>(())
//! ```
//!
//! What the EL2 regime needs of the host beside table pages is in
//! [`HypTlb`]: TLB invalidation by VA (the regime has no ASID or VMID), and
//! the barrier that makes new entries visible to the table walker.
//!
//! Deliberate differences from Linux 6.12's hyp walkers are listed on the
//! operations: [`HypHandle::map`] refuses, before changing anything, a range
//! that overlaps a different mapping; [`HypHandle::unmap`] also stops at a
//! block that starts before the range, and frees the tables it emptied
//! even when it stops early.

mod destroy;
mod leaf;
mod map;
mod pte;
mod tcr;
mod unmap;

use core::marker::PhantomData;

pub use unmap::{HypUnmapStop, HypUnmapped};

use crate::addr::{Ipa, PhysAddr, Va};
use crate::capability::{Capability, Exclusive, Visit, Walked};
use crate::descriptor::HypDescriptor;
use crate::error::Error;
use crate::geometry::{Geometry, Level};
use crate::memory::MemoryOps;
use crate::stage2::tables::alloc_table;
use crate::walk::{self, Root, Span, VisitCtx, WalkFlags};

/// What the EL2 translation regime asks of the host besides table pages:
/// TLB maintenance by virtual address and the barrier after new entries.
///
/// A non-VHE EL2 regime has no ASID and no VMID: its TLB entries are the
/// hypervisor's alone, tagged by nothing but their address, on every CPU of
/// the inner-shareable domain that runs it. Each method must have finished
/// its effect on every CPU before it returns (a `dsb ish` after the `tlbi`),
/// since the table pages and memory involved may be reused right after.
pub trait HypTlb {
    /// The leaf for `va` at `level` was removed or lost a permission:
    /// invalidate the translations cached for it (on arm64, `dsb ishst;
    /// tlbi vale2is, va >> 12` with `level` as the TTL hint; `dsb ish;
    /// isb`).
    fn flush_va(&self, va: Va, level: Level);

    /// The table entry at `level` that covered `va` was removed: invalidate
    /// the walks cached through it too (`dsb ishst; tlbi vae2is, va >> 12;
    /// dsb ish; isb`).
    fn flush_va_walks(&self, va: Va, level: Level);

    /// Entries were stored into live tables: make them visible to the
    /// table walker before the new mappings are used (`dsb ishst; isb`).
    fn publish(&self);
}

mod sealed {
    pub trait Sealed {}
}

/// The capabilities a [`HypHandle`] may have: [`Exclusive`] only. Sealed.
///
/// Linux changes EL2 tables under a spinlock and has no shared or
/// fault-handler hyp walker; this trait makes that a type fact, so
/// `HypHandle<'_, M, Shared>` does not compile.
pub trait HypCapability: Capability + sealed::Sealed {}

impl sealed::Sealed for Exclusive {}
impl HypCapability for Exclusive {}

/// An EL2 stage-1 translation table: its geometry, its root (one table
/// page, as TTBR0_EL2 holds it) and the host's operations (Linux's
/// `struct kvm_pgtable` after `kvm_pgtable_hyp_init`).
///
/// Dropping it frees every table page (`kvm_pgtable_hyp_destroy`), without
/// TLB maintenance: the MMU must no longer use it.
pub struct HypTable<M: MemoryOps + HypTlb> {
    geometry: Geometry,
    root: PhysAddr,
    mm: M,
}

impl<M: MemoryOps + HypTlb> HypTable<M> {
    /// A new, empty table with the geometry TCR_EL2 describes (see
    /// [`Geometry::from_tcr_el2`]); the root page comes from `pool`.
    pub fn new(tcr_el2: u64, mm: M, pool: &mut M::PagePool) -> Result<HypTable<M>, Error> {
        HypTable::with_geometry(Geometry::from_tcr_el2(tcr_el2)?, mm, pool)
    }

    /// A new, empty table with `geometry`, which must be an EL2 stage-1 one
    /// (what [`Geometry::for_va_bits`] makes: the start level the input size
    /// implies, a root of one page); its root comes from
    /// [`MemoryOps::zalloc_page`], as Linux's `kvm_pgtable_hyp_init` takes
    /// it.
    ///
    /// As for a [`Stage2`](crate::Stage2), the host must serve tables of
    /// the geometry's format ([`MemoryOps::table_format`]: pages of its
    /// granule, and the same LPA2 setting, as the kernel's hyp tables use
    /// its `PAGE_SIZE` and its system-wide LPA2), or the table is refused
    /// with [`Error::Geometry`]. A root (or later a table page) that is not
    /// aligned to the granule is given back and refused with
    /// [`Error::Misaligned`]; one beyond what the format's descriptors
    /// reach with [`Error::OutputTooLarge`].
    pub fn with_geometry(
        geometry: Geometry,
        mm: M,
        pool: &mut M::PagePool,
    ) -> Result<HypTable<M>, Error> {
        let stage1 =
            Geometry::for_va_bits(geometry.format(), geometry.ia_bits(), geometry.oa_bits())?;
        if stage1 != geometry {
            return Err(Error::Geometry(
                "not an EL2 stage-1 geometry: the start level must be the one the VA size \
                 implies, with a root of one page (see Geometry::for_va_bits)",
            ));
        }
        if mm.table_format() != geometry.format() {
            return Err(Error::Geometry(
                "the host serves tables of another format (MemoryOps::table_format): its pages \
                 are not this granule's size, or its LPA2 setting differs",
            ));
        }
        let root = alloc_table(&mm, pool, &geometry)?;
        Ok(HypTable { geometry, root, mm })
    }

    /// Reassembles a table from [`into_raw_parts`](Self::into_raw_parts).
    ///
    /// # Safety
    ///
    /// `root` must be a root page allocated by `mm` for `geometry` (an EL2
    /// stage-1 one), holding a table that only pgwalk changed (or that
    /// follows its invariants: table descriptors point at table pages from
    /// `mm`, whose reference counts are 1 plus their valid entries), and no
    /// other `HypTable` may own it.
    pub unsafe fn from_raw_parts(geometry: Geometry, root: PhysAddr, mm: M) -> HypTable<M> {
        HypTable { geometry, root, mm }
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

    /// Physical address of the root page.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// TTBR0_EL2 for this table: the root's address (no ASID, CnP clear).
    pub fn ttbr0_el2(&self) -> u64 {
        self.root.get()
    }

    /// TCR_EL2 for this table (see [`Geometry::tcr_el2`]).
    pub fn tcr_el2(&self) -> u64 {
        self.geometry.tcr_el2()
    }

    /// The host's operations.
    pub fn mm(&self) -> &M {
        &self.mm
    }

    /// The handle of the table's owner, the only kind there is.
    pub fn exclusive(&mut self) -> HypHandle<'_, M> {
        HypHandle {
            table: self,
            _cap: PhantomData,
        }
    }

    fn walk_root(&self) -> Root<'_, M> {
        Root {
            geometry: &self.geometry,
            pgd: self.root,
            mm: &self.mm,
        }
    }
}

impl<M: MemoryOps + HypTlb> Drop for HypTable<M> {
    fn drop(&mut self) {
        destroy::destroy(self);
    }
}

/// Access to a [`HypTable`] for as long as the `&mut` borrow it came from,
/// with capability `C`, which can only be [`Exclusive`] (see
/// [`HypCapability`]). Neither `Clone` nor `Copy`: there is only ever one.
pub struct HypHandle<'t, M: MemoryOps + HypTlb, C: HypCapability = Exclusive> {
    table: &'t HypTable<M>,
    _cap: PhantomData<C>,
}

/// Flags a hyp walk never keeps: EL2 entry updates invalidate the TLB as
/// they go (there is no range flush to defer to) and do no cache
/// maintenance (there is no guest memory to clean).
const HYP_IGNORED_FLAGS: WalkFlags = WalkFlags::SKIP_BBM_TLBI.union(WalkFlags::SKIP_CMO);

impl<'t, M: MemoryOps + HypTlb> HypHandle<'t, M> {
    /// The table's geometry.
    pub fn geometry(&self) -> &'t Geometry {
        &self.table.geometry
    }

    /// The host's operations.
    pub fn mm(&self) -> &'t M {
        &self.table.mm
    }

    /// Walks `va..va + size` (widened to whole pages), calling `visitor` for
    /// the entries `flags` selects, in address order, and doing what it
    /// answers (`kvm_pgtable_walk` on a hyp table). The visitor's context
    /// is exclusive: it reads, and changes entries with
    /// [`VisitCtx::set`](crate::visit::VisitCtx) for [`HypDescriptor`]s.
    ///
    /// [`WalkFlags::SKIP_BBM_TLBI`] and [`WalkFlags::SKIP_CMO`] are
    /// ignored (see [`HypTlb`]). If the visitor changed an entry, the walk
    /// ends with [`HypTlb::publish`].
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use pgwalk::geometry::{Geometry, Granule};
    /// use pgwalk::host::HeapMemory;
    /// use pgwalk::hyp::HypTable;
    /// use pgwalk::visit::{Action, WalkFlags};
    /// use pgwalk::{PhysAddr, Prot, Va};
    ///
    /// let g = Geometry::for_va_bits(Granule::Size4KiB, 48, 48)?;
    /// let mut table = HypTable::with_geometry(g, HeapMemory::new(16), &mut ())?;
    /// let mut h = table.exclusive();
    /// h.map(Va(0x1000), 0x3000, PhysAddr(0x8000_0000), Prot::R, &mut ())?;
    /// let mut read_only = 0;
    /// h.walk(Va(0), 0x10000, WalkFlags::LEAF, |ctx| {
    ///     let d = ctx.old();
    ///     read_only += usize::from(d.is_valid() && !d.writable());
    ///     Ok(Action::Continue)
    /// })?;
    /// assert_eq!(read_only, 3);
    /// # }
    /// # Ok::<(), pgwalk::Error>(())
    /// ```
    pub fn walk<F>(
        &mut self,
        va: Va,
        size: u64,
        flags: WalkFlags,
        visitor: F,
    ) -> Result<Walked<Exclusive>, Error>
    where
        F: FnMut(&mut VisitCtx<'_, Exclusive, M, HypDescriptor>) -> Visit<Exclusive>,
    {
        self.walk_with(va, size, flags, visitor)
    }

    /// [`walk`](Self::walk), with a visitor error type of the caller's
    /// (anything pgwalk's [`Error`] converts into).
    pub fn walk_with<E, F>(
        &mut self,
        va: Va,
        size: u64,
        flags: WalkFlags,
        mut visitor: F,
    ) -> Result<Walked<Exclusive>, E>
    where
        E: From<Error>,
        F: FnMut(&mut VisitCtx<'_, Exclusive, M, HypDescriptor>) -> Visit<Exclusive, E>,
    {
        let mut wrote = false;
        let walked = self.run(va, size, flags, |ctx| {
            let answer = visitor(ctx);
            wrote |= ctx.written;
            answer
        });
        if wrote {
            self.mm().publish();
        }
        walked
    }

    /// A hyp walk of `size` bytes at `va`, page-aligned outwards.
    #[inline(always)]
    fn run<E, F>(
        &self,
        va: Va,
        size: u64,
        flags: WalkFlags,
        visitor: F,
    ) -> Result<Walked<Exclusive>, E>
    where
        E: From<Error>,
        F: FnMut(&mut VisitCtx<'_, Exclusive, M, HypDescriptor>) -> Visit<Exclusive, E>,
    {
        self.run_span(Span::Range(Ipa(va.get()), size), flags, visitor)
    }

    /// The one body of every hyp walk: the engine, with the flags a hyp
    /// walk keeps.
    #[inline(always)]
    fn run_span<E, F>(
        &self,
        span: Span,
        flags: WalkFlags,
        visitor: F,
    ) -> Result<Walked<Exclusive>, E>
    where
        E: From<Error>,
        F: FnMut(&mut VisitCtx<'_, Exclusive, M, HypDescriptor>) -> Visit<Exclusive, E>,
    {
        walk::walk_span(
            self.table.walk_root(),
            span,
            flags.difference(HYP_IGNORED_FLAGS),
            visitor,
        )
    }
}

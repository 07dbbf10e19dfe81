//! Table pages off to the side of a walk: building a subtree that maps what
//! a block mapped, linking it, and freeing subtrees that nothing links any
//! more — at once when nobody else can be reading them, through the host's
//! grace period when someone may.

use core::sync::atomic::Ordering;

use super::Handle;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Action, Exclusive};
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::geometry::{Geometry, Level, TableFormat};
use crate::memory::MemoryOps;
use crate::table_page::TablePage;
use crate::walk::{VisitCtx, WalkFlags};

/// Frees a table subtree that is no longer linked into any table: every
/// table page below `table` and `table` itself, through `put_page`. The
/// guest pages its leaves map are not touched. The table is read in the
/// host's [`MemoryOps::table_format`]: its granule (how many entries a page
/// holds) and LPA2 (where table descriptors keep the child's address).
///
/// `level` is the level of the entry that linked `table` (its entries are
/// one level down), as in the kernel's `kvm_pgtable_stage2_free_unlinked`
/// and in [`MemoryOps::free_unlinked_table`], whose hosts call this once
/// the grace period has passed.
///
/// # Safety
///
/// `table` must be a table page of `mm` that hung below an entry of
/// `level`, that no table links to, that no walker can reach any more, and
/// that is freed only once.
pub unsafe fn free_unlinked<M: MemoryOps>(mm: &M, table: PhysAddr, level: Level) {
    // SAFETY: the caller's contract.
    unsafe { free_subtree(mm, mm.table_format(), table, level) }
}

/// [`free_unlinked`], with the format read once for the whole subtree.
///
/// # Safety
///
/// As [`free_unlinked`], and `format` is `mm`'s.
unsafe fn free_subtree<M: MemoryOps>(mm: &M, format: TableFormat, table: PhysAddr, level: Level) {
    let entries_per_page = format.granule().entries();
    // SAFETY: `table` is a table page of `mm` (the caller's contract), one
    // granule of entries, that nobody else reaches any more and that stays
    // allocated until its last reference goes, at the end.
    let page = unsafe { TablePage::new(mm, table, entries_per_page) };
    let entries = level.next();
    for idx in 0..entries_per_page {
        let d: Descriptor = page.load(idx, Ordering::Acquire);
        if !d.is_counted() {
            continue;
        }
        if d.is_table(entries) {
            // SAFETY: a table descriptor inside an unlinked subtree points at
            // a child of that subtree, unlinked with it and reached only here.
            unsafe { free_subtree(mm, format, d.output_address(format), entries) };
        }
        // SAFETY: this counted entry owned one reference; the page's own
        // reference, dropped last below, keeps the page alive meanwhile.
        unsafe { mm.put_page(table) };
    }
    // SAFETY: the caller handed over the unlinked, unreachable subtree: its
    // last reference goes.
    unsafe { mm.put_page(table) };
}

/// Frees a subtree that nobody else can be reading: one an exclusive
/// walker just unlinked, or one a walker built and never linked.
///
/// # Safety
///
/// As [`free_unlinked`]: `table` is a table page of `mm` that hung below an
/// entry of `level`, no table links to it, no other walker can reach it,
/// and it is freed once. (An exclusive walker that has just replaced the only
/// descriptor linking it, and invalidated the TLB for it, has all that.)
pub(crate) unsafe fn free_now<M: MemoryOps>(
    mm: &M,
    geometry: &Geometry,
    table: PhysAddr,
    level: Level,
) {
    // SAFETY: the caller's contract is `free_unlinked`'s, and the table is
    // read in its own geometry's format.
    unsafe { free_subtree(mm, geometry.format(), table, level) }
}

/// Fills the zeroed table page `table` (entries of `level`) so that it maps
/// exactly what `template`, a leaf or annotation one level up, mapped: the
/// same attributes, output addresses stepping by the entry size. With
/// `pages_only`, blocks are themselves split down to pages.
///
/// On `NoMemory` the pages allocated so far are freed and `table` is left
/// zeroed; its reference count is back to 1.
///
/// # Safety
///
/// `table` is an empty table page of `mm` (entries of `level`) that only
/// the caller reaches: allocated and not linked.
pub(crate) unsafe fn fill_from<M: MemoryOps>(
    mm: &M,
    pool: &mut M::PagePool,
    geometry: &Geometry,
    table: PhysAddr,
    level: Level,
    template: Descriptor,
    pages_only: bool,
) -> Result<(), Error> {
    let granule = geometry.granule();
    let format = geometry.format();
    // SAFETY: the caller's: an unlinked table page of `mm` only we reach.
    let page = unsafe { TablePage::new(mm, table, granule.entries()) };
    let step = geometry.entry_size(level);
    let block_ok = geometry.leaf_allowed(level) && (!pages_only || level.is_last());
    for idx in 0..granule.entries() {
        let entry = if !template.is_valid() {
            // An annotation covers every page of its range.
            template
        } else {
            let pa = PhysAddr(template.output_address(format).get() + idx as u64 * step);
            let leaf = Descriptor::leaf_in(format, pa, level, template.attrs());
            if block_ok {
                leaf
            } else {
                match alloc_table(mm, pool, geometry) {
                    Ok(child) => {
                        // SAFETY: `child` was just allocated, so it is empty
                        // and only we reach it.
                        let filled = unsafe {
                            fill_from(mm, pool, geometry, child, level.next(), leaf, pages_only)
                        };
                        if let Err(e) = filled {
                            // SAFETY: `child` was allocated here and never
                            // linked, and `fill_from` left it empty: the only
                            // reference is ours. `table`'s first `idx`
                            // entries are the ones this call filled.
                            unsafe {
                                mm.put_page(child);
                                undo_fill(mm, geometry, table, level, idx);
                            }
                            return Err(e);
                        }
                        Descriptor::table(child, format)
                    }
                    Err(e) => {
                        // SAFETY: as above, for the first `idx` entries.
                        unsafe { undo_fill(mm, geometry, table, level, idx) };
                        return Err(e);
                    }
                }
            }
        };
        page.store_private(idx, entry);
        if entry.is_counted() {
            // SAFETY: the reference is the counted entry's, just stored.
            unsafe { mm.get_page(table) };
        }
    }
    Ok(())
}

/// A table page to hang at an entry of `level` holding the non-table
/// `old`: empty, or mapping what `old` mapped (a block, an annotation) one
/// level finer, so that linking it loses nothing. Once per table page, so
/// out of the walk loop.
#[inline(never)]
pub(crate) fn table_for<M: MemoryOps>(
    mm: &M,
    pool: &mut M::PagePool,
    geometry: &Geometry,
    level: Level,
    old: Descriptor,
) -> Result<PhysAddr, Error> {
    let child = alloc_table(mm, pool, geometry)?;
    if old.is_counted() {
        // SAFETY: `child` was just allocated: empty, and only we reach it.
        let filled = unsafe { fill_from(mm, pool, geometry, child, level.next(), old, false) };
        if let Err(e) = filled {
            // SAFETY: allocated above and never linked: the only reference
            // is ours.
            unsafe { mm.put_page(child) };
            return Err(e);
        }
    }
    Ok(child)
}

/// A zeroed table page from the host, checked: aligned to the granule
/// (which `MemoryOps` promises, and a table descriptor cannot express
/// otherwise) and at an address the format's descriptors can hold (below
/// 2^48, or 2^52 with 64 KiB and LPA2), so that no table descriptor ever
/// points somewhere else than the page. A page that is neither is given
/// back and refused. (That the page also lies below PS, where the MMU can
/// walk it, is the host's to arrange: hosts that never hand the table to
/// an MMU, as tests on the host do, may use any address.)
pub(crate) fn alloc_table<M: MemoryOps>(
    mm: &M,
    pool: &mut M::PagePool,
    geometry: &Geometry,
) -> Result<PhysAddr, Error> {
    let page = mm.zalloc_page(pool).ok_or(Error::NoMemory)?;
    let granule = geometry.granule().size();
    let refused = if !page.is_aligned(granule) {
        Error::Misaligned {
            what: "table page from zalloc_page",
            value: page.get(),
            granule,
        }
    } else if page.get() >> geometry.format().max_oa_bits() != 0 {
        Error::OutputTooLarge {
            pa: page.get() + granule - 1,
            oa_bits: geometry.format().max_oa_bits(),
        }
    } else {
        return Ok(page);
    };
    // SAFETY: the page was just allocated and nothing links it: its only
    // reference is the allocation's.
    unsafe { mm.put_page(page) };
    Err(refused)
}

/// Undoes the first `filled` entries of a partly filled, unlinked table.
///
/// # Safety
///
/// `table` is a table page of `mm` (entries of `level`) that only the
/// caller reaches, and its first `filled` entries were stored by
/// [`fill_from`], each with its reference taken and any child table built
/// for it alone.
unsafe fn undo_fill<M: MemoryOps>(
    mm: &M,
    geometry: &Geometry,
    table: PhysAddr,
    level: Level,
    filled: usize,
) {
    let format = geometry.format();
    // SAFETY: the caller's: an unlinked table page of `mm` only we reach.
    let page = unsafe { TablePage::new(mm, table, format.granule().entries()) };
    for idx in 0..filled {
        let d = Descriptor::from_bits(page.entry(idx).swap(0, Ordering::Relaxed));
        if d.is_table(level) {
            // SAFETY: `fill_from` built this child for this table alone; it
            // hung below this entry, of `level`.
            unsafe { free_subtree(mm, format, d.output_address(format), level) };
        }
        if d.is_counted() {
            // SAFETY: the entry owned a reference to this unlinked page; its own
            // reference (the caller's) keeps it alive.
            unsafe { mm.put_page(table) };
        }
    }
}

/// Replaces a table entry with a leaf and frees the subtree below it.
#[inline(always)]
pub(crate) fn replace_table<M: MemoryOps>(ctx: &mut VisitCtx<'_, Exclusive, M>, new: Descriptor) {
    let old = ctx.old();
    // Break (the table's whole range leaves the TLB), then make.
    ctx.replace(new);
    // SAFETY: `replace` just overwrote the only descriptor linking the
    // child (invalidating the TLB for its range), and this walker is
    // exclusive: nobody else holds a way into the subtree.
    unsafe {
        free_now(
            ctx.mm(),
            ctx.geometry(),
            old.output_address(ctx.geometry().format()),
            ctx.level(),
        )
    };
}

/// Links the (filled) table page `child` in place of the leaf at this entry.
#[inline(always)]
pub(crate) fn link_table<M: MemoryOps>(ctx: &mut VisitCtx<'_, Exclusive, M>, child: PhysAddr) {
    ctx.replace(Descriptor::table(child, ctx.geometry().format()));
}

/// At a table entry's post-visit: unlinks and frees the child table if
/// nothing is left in it (reference count 1).
#[inline(always)]
pub(crate) fn free_if_empty<M: MemoryOps>(ctx: &mut VisitCtx<'_, Exclusive, M>) {
    let old = ctx.old();
    let child = old.output_address(ctx.geometry().format());
    if ctx.mm().page_count(child) == 1 {
        ctx.replace(Descriptor::INVALID);
        // SAFETY: the child's count is 1 (no entries), the entry that linked
        // it is cleared and its TLB entries invalidated, and an exclusive
        // walker has no company: this drops the last reference to an
        // unreachable page.
        unsafe { ctx.mm().put_page(child) };
    }
}

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Unlinks and frees child tables left empty in the range.
    pub(crate) fn prune_empty(&mut self, ipa: Ipa, size: u64) {
        let pruned = self.run::<Error, _>(ipa, size, WalkFlags::TABLE_POST, |ctx| {
            free_if_empty(ctx);
            Ok(Action::Continue)
        });
        // The range was checked by the caller and this visitor never stops.
        debug_assert!(pruned.is_ok());
    }
}

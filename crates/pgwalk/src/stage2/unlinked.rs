//! Table subtrees that are not (or no longer) linked into a table: building
//! one from a block, and freeing one.

use core::sync::atomic::Ordering;

use super::{Handle, Stage2};
use crate::addr::PhysAddr;
use crate::capability::Exclusive;
use crate::descriptor::{Descriptor, LeafAttrs};
use crate::error::Error;
use crate::geometry::{Geometry, Granule, Level};
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::table_page::TablePage;

/// Frees a table subtree that is no longer linked into any table: every
/// table page below `table` (which holds entries of `level`) and `table`
/// itself, through `put_page`. The guest pages its leaves map are not
/// touched.
///
/// Hosts call this from their [`MemoryOps::free_unlinked_table`] once the
/// grace period has passed (`kvm_pgtable_stage2_free_unlinked`).
///
/// # Safety
///
/// `table` must be a table page of `mm` holding entries of `level` that no
/// table links to, that no walker can reach any more, and that is freed only
/// once.
pub unsafe fn free_unlinked<M: MemoryOps>(mm: &M, granule: Granule, table: PhysAddr, level: Level) {
    // SAFETY: `table` is a table page of `mm` (the caller's contract), one
    // granule of entries, that nobody else reaches any more and that stays
    // allocated until its last reference goes, at the end.
    let page = unsafe { TablePage::new(mm, table, granule.entries()) };
    for idx in 0..granule.entries() {
        let d = page.load(idx, Ordering::Acquire);
        if !d.is_counted() {
            continue;
        }
        if d.is_table(level) {
            // SAFETY: a table descriptor inside an unlinked subtree points at
            // a child of that subtree, unlinked with it and reached only here.
            unsafe { free_unlinked(mm, granule, d.output_address(granule), level.next()) };
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
/// As [`free_unlinked`]: `table` is a table page of `mm` holding entries of
/// `level`, no table links to it, no other walker can reach it, and it is
/// freed once. (An exclusive walker that has just replaced the only
/// descriptor linking it, and invalidated the TLB for it, has all that.)
pub(crate) unsafe fn free_now<M: MemoryOps>(
    mm: &M,
    geometry: &Geometry,
    table: PhysAddr,
    level: Level,
) {
    // SAFETY: the caller's contract is `free_unlinked`'s.
    unsafe { free_unlinked(mm, geometry.granule(), table, level) }
}

/// Fills the zeroed table page `table` (entries of `level`) so that it maps
/// exactly what `template`, a leaf or annotation one level up, mapped: the
/// same attributes, output addresses stepping by the entry size. With
/// `force_pte`, blocks are themselves split down to pages.
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
    cache: &mut M::Cache,
    geometry: &Geometry,
    table: PhysAddr,
    level: Level,
    template: Descriptor,
    force_pte: bool,
) -> Result<(), Error> {
    let granule = geometry.granule();
    // SAFETY: the caller's: an unlinked table page of `mm` only we reach.
    let page = unsafe { TablePage::new(mm, table, granule.entries()) };
    let step = geometry.entry_size(level);
    let block_ok = geometry.leaf_allowed(level) && (!force_pte || level.is_last());
    for idx in 0..granule.entries() {
        let entry = if !template.is_valid() {
            // An annotation covers every page of its range.
            template
        } else {
            let pa = PhysAddr(template.output_address(granule).get() + idx as u64 * step);
            let leaf = Descriptor::leaf(pa, level, template.attrs());
            if block_ok {
                leaf
            } else {
                match mm.zalloc_page(cache) {
                    Some(child) => {
                        // SAFETY: `child` was just allocated, so it is empty
                        // and only we reach it.
                        let filled = unsafe {
                            fill_from(mm, cache, geometry, child, level.next(), leaf, force_pte)
                        };
                        if let Err(e) = filled {
                            // SAFETY: `child` was allocated here and never
                            // linked, and `fill_from` left it empty: the only
                            // reference is ours. `table`'s first `idx`
                            // entries are the ones this call filled.
                            unsafe {
                                mm.put_page(child);
                                undo_fill(mm, granule, table, level, idx);
                            }
                            return Err(e);
                        }
                        Descriptor::table(child)
                    }
                    None => {
                        // SAFETY: as above, for the first `idx` entries.
                        unsafe { undo_fill(mm, granule, table, level, idx) };
                        return Err(Error::NoMemory);
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
    cache: &mut M::Cache,
    geometry: &Geometry,
    level: Level,
    old: Descriptor,
) -> Result<PhysAddr, Error> {
    let child = mm.zalloc_page(cache).ok_or(Error::NoMemory)?;
    if old.is_counted() {
        // SAFETY: `child` was just allocated: empty, and only we reach it.
        let filled = unsafe { fill_from(mm, cache, geometry, child, level.next(), old, false) };
        if let Err(e) = filled {
            // SAFETY: allocated above and never linked: the only reference
            // is ours.
            unsafe { mm.put_page(child) };
            return Err(e);
        }
    }
    Ok(child)
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
    granule: Granule,
    table: PhysAddr,
    level: Level,
    filled: usize,
) {
    // SAFETY: the caller's: an unlinked table page of `mm` only we reach.
    let page = unsafe { TablePage::new(mm, table, granule.entries()) };
    for idx in 0..filled {
        let d = Descriptor::from_bits(page.entry(idx).swap(0, Ordering::Relaxed));
        if d.is_table(level) {
            // SAFETY: `fill_from` built this child for this table alone.
            unsafe { free_unlinked(mm, granule, d.output_address(granule), level.next()) };
        }
        if d.is_counted() {
            // SAFETY: the entry owned a reference to this unlinked page; its own
            // reference (the caller's) keeps it alive.
            unsafe { mm.put_page(table) };
        }
    }
}

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Builds an unlinked subtree mapping the `level` entry's worth of memory
    /// from `phys` with `prot`: a table page whose entries are `level + 1`
    /// blocks, or, with `force_pte`, pages all the way down
    /// (`kvm_pgtable_stage2_create_unlinked`). Link it with a
    /// break-before-make of your own, or free it with [`free_unlinked`].
    pub fn create_unlinked(
        &mut self,
        phys: PhysAddr,
        level: Level,
        prot: Prot,
        cache: &mut M::Cache,
        force_pte: bool,
    ) -> Result<PhysAddr, Error> {
        let geometry = self.table.geometry;
        if level.is_last() || level < geometry.start_level() {
            return Err(Error::Geometry(
                "an unlinked table hangs below levels 0 to 2 only",
            ));
        }
        let size = geometry.entry_size(level);
        if !phys.is_aligned(size) {
            return Err(Error::Misaligned {
                what: "physical address",
                value: phys.get(),
                granule: size,
            });
        }
        check_output(&geometry, phys, size)?;
        let attrs = LeafAttrs::from_prot(prot)?;
        let mm = &self.table.mm;
        let table = mm.zalloc_page(cache).ok_or(Error::NoMemory)?;
        // A template one level up: `fill_from` only reads its address and
        // attributes.
        let template = Descriptor::leaf(phys, level, attrs);
        // SAFETY: `table` was just allocated: empty, and only we reach it.
        let filled = unsafe {
            fill_from(
                mm,
                cache,
                &geometry,
                table,
                level.next(),
                template,
                force_pte,
            )
        };
        if let Err(e) = filled {
            // SAFETY: allocated above and never linked: the only reference
            // is ours.
            unsafe { mm.put_page(table) };
            return Err(e);
        }
        Ok(table)
    }
}

/// Checks that `phys..phys + size` fits the output address size.
pub(crate) fn check_output(geometry: &Geometry, phys: PhysAddr, size: u64) -> Result<(), Error> {
    let last = phys.get().checked_add(size - 1);
    match last {
        Some(last) if last >> geometry.oa_bits() == 0 => Ok(()),
        _ => Err(Error::OutputTooLarge {
            pa: last.unwrap_or(u64::MAX),
            oa_bits: geometry.oa_bits(),
        }),
    }
}

#[allow(dead_code)]
fn _assert_stage2_is_send_sync<M: MemoryOps + Send + Sync>(t: Stage2<M>) -> impl Send + Sync {
    t
}

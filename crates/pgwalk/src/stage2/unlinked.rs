//! Table subtrees that are not (or no longer) linked into a table: building
//! one from a block, and freeing one.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{Handle, Stage2};
use crate::addr::PhysAddr;
use crate::capability::Exclusive;
use crate::descriptor::{Descriptor, LeafAttrs};
use crate::error::Error;
use crate::geometry::{Geometry, Granule, Level};
use crate::memory::MemoryOps;
use crate::prot::Prot;

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
    let base = mm.phys_to_virt(table).cast::<AtomicU64>();
    for idx in 0..granule.entries() {
        // SAFETY: `table` is a table page of `mm` (caller's contract), so
        // it maps `granule.entries()` aligned entries; nobody else reaches it.
        let entry = unsafe { &*base.as_ptr().add(idx) };
        let d = Descriptor::from_bits(entry.load(Ordering::Acquire));
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

/// Frees a subtree this exclusive walker just unlinked: nobody else can be
/// reading it, so it goes at once.
pub(crate) fn free_now<M: MemoryOps>(mm: &M, geometry: &Geometry, table: PhysAddr, level: Level) {
    // SAFETY: the caller (an exclusive walker) has just replaced the only
    // descriptor linking `table` and invalidated the TLB for it; with
    // exclusive access no other software walker holds a reference into it.
    unsafe { free_unlinked(mm, geometry.granule(), table, level) }
}

/// Fills the zeroed table page `table` (entries of `level`) so that it maps
/// exactly what `template`, a leaf or annotation one level up, mapped: the
/// same attributes, output addresses stepping by the entry size. With
/// `force_pte`, blocks are themselves split down to pages.
///
/// On `NoMemory` the pages allocated so far are freed and `table` is left
/// zeroed; its reference count is back to 1.
pub(crate) fn fill_from<M: MemoryOps>(
    mm: &M,
    cache: &mut M::Cache,
    geometry: &Geometry,
    table: PhysAddr,
    level: Level,
    template: Descriptor,
    force_pte: bool,
) -> Result<(), Error> {
    let granule = geometry.granule();
    let base = mm.phys_to_virt(table).cast::<AtomicU64>();
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
                        if let Err(e) =
                            fill_from(mm, cache, geometry, child, level.next(), leaf, force_pte)
                        {
                            // SAFETY: allocated here and never linked: the only reference is ours.
                            unsafe { mm.put_page(child) };
                            undo_fill(mm, granule, table, level, idx);
                            return Err(e);
                        }
                        Descriptor::table(child)
                    }
                    None => {
                        undo_fill(mm, granule, table, level, idx);
                        return Err(Error::NoMemory);
                    }
                }
            }
        };
        // SAFETY: `table` is a table page of `mm` that the caller owns
        // alone (just allocated, not linked), `idx < entries`.
        unsafe { &*base.as_ptr().add(idx) }.store(entry.bits(), Ordering::Relaxed);
        if entry.is_counted() {
            mm.get_page(table);
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
        if let Err(e) = fill_from(mm, cache, geometry, child, level.next(), old, false) {
            // SAFETY: allocated above and never linked: the only reference
            // is ours.
            unsafe { mm.put_page(child) };
            return Err(e);
        }
    }
    Ok(child)
}

/// Undoes the first `filled` entries of a partly filled, unlinked table.
fn undo_fill<M: MemoryOps>(mm: &M, granule: Granule, table: PhysAddr, level: Level, filled: usize) {
    let base = mm.phys_to_virt(table).cast::<AtomicU64>();
    for idx in 0..filled {
        // SAFETY: as in `fill_from`: an unlinked table page only we hold.
        let entry = unsafe { &*base.as_ptr().add(idx) };
        let d = Descriptor::from_bits(entry.swap(0, Ordering::Relaxed));
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
        if let Err(e) = fill_from(
            mm,
            cache,
            &geometry,
            table,
            level.next(),
            template,
            force_pte,
        ) {
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

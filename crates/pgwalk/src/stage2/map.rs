//! Mapping a range (`kvm_pgtable_stage2_map`), the exclusive way.
//!
//! One visitor, for table entries before their children and for leaves:
//! where a block or page fits (size, alignment of both addresses, a level
//! that holds leaves) it is installed, replacing whatever was there — a
//! smaller-grained subtree included, which is freed. Where nothing fits, a
//! table is installed and the walker descends into it. A block that is only
//! partly remapped is first split into the next level, so that the rest of
//! it stays mapped.

use super::args::check_map;
use super::options::MapOptions;
use super::tables::{link_table, replace_table, table_for};
use super::Handle;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Action, Visit};
use crate::capability::{Capability, Exclusive};
use crate::descriptor::{Descriptor, LeafAttrs};
use crate::error::Error;
use crate::geometry::{Geometry, Level, TableFormat};
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::table_page::TablePage;
use crate::walk::{CheckedRange, Span, VisitCtx, WalkFlags};

/// What a map or annotate walk installs.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    /// Valid leaves mapping `phys` (for the walk's first address) onward;
    /// pages only, if asked.
    Map {
        start: u64,
        phys: u64,
        attrs: LeafAttrs,
        /// Where the leaves keep their output address.
        format: TableFormat,
        pages_only: bool,
    },
    /// The same invalid descriptor everywhere (an annotation, or zero).
    Annotate(Descriptor),
}

impl Target {
    /// What mapping `size` bytes at `ipa` to `phys` with `prot` installs,
    /// once the arguments are checked: page-aligned, non-empty, inside the
    /// input space, output addresses within PS, a protection stage 2 can
    /// express. With it, the range as checked, for the walk.
    #[inline(always)]
    pub(crate) fn map(
        geometry: &Geometry,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        opts: &MapOptions,
    ) -> Result<(Target, CheckedRange), Error> {
        let range = check_map(geometry, ipa, size, phys)?;
        let target = Target::Map {
            start: ipa.get(),
            phys: phys.get(),
            attrs: LeafAttrs::from_prot(prot)?,
            format: geometry.format(),
            pages_only: opts.is_pages_only(),
        };
        Ok((target, range))
    }

    /// The leaf to install at this entry, if one fits here.
    #[inline(always)]
    pub(crate) fn leaf_for<C: Capability, M: MemoryOps>(
        &self,
        ctx: &VisitCtx<'_, C, M>,
    ) -> Option<Descriptor> {
        let level = ctx.level();
        // The cheaper test first: above the last level, a page's map (the
        // fault path's) fails it without the granule's block levels.
        if !ctx.covers_entry() || !ctx.geometry().leaf_allowed(level) {
            return None;
        }
        match *self {
            Target::Map {
                start,
                phys,
                attrs,
                format,
                pages_only,
            } => {
                if pages_only && !level.is_last() {
                    return None;
                }
                let pa = phys + (ctx.addr().get() - start);
                if !ctx.output_aligned(pa) {
                    return None;
                }
                Some(Descriptor::leaf_in(format, PhysAddr(pa), level, attrs))
            }
            Target::Annotate(d) => Some(d),
        }
    }
}

/// The exclusive map visitor, shared by `map` and `annotate`. Inlined into
/// the walk loop, which calls it once per entry of the range. Nothing here
/// hands `ctx` to a function that is not inlined: the compiler then keeps
/// the context in registers and folds what it knows (at the last level, the
/// level itself and everything derived from it).
#[inline(always)]
pub(crate) fn install<M: MemoryOps>(
    ctx: &mut VisitCtx<'_, Exclusive, M>,
    target: &Target,
    pool: &mut M::PagePool,
) -> Visit<Exclusive> {
    let old = ctx.old();
    let level = ctx.level();
    if let Some(new) = target.leaf_for(ctx) {
        if old.is_table(level) {
            replace_table(ctx, new);
        } else if new != old {
            // (`set` would find an entry that already holds its leaf, as
            // every entry of a `prefill`ed page does, and do nothing.)
            ctx.set(new);
        }
        return Ok(Action::Continue);
    }
    if old.is_table(level) {
        return Ok(Action::Continue);
    }
    // Nothing fits at this level: hang a table here and let the walker
    // descend into it. What the entry mapped before stays mapped, one
    // level finer.
    let covered = ctx.covers_entry().then(|| ctx.entry_addr().get());
    let (child, filled) = new_table(
        ctx.mm(),
        pool,
        ctx.geometry(),
        level,
        old,
        target,
        covered,
        ctx.flags(),
    )?;
    link_table(ctx, child);
    if filled {
        // Every entry below already holds its leaf: no need to visit them.
        ctx.mark_complete();
    }
    Ok(Action::Continue)
}

/// The table page to hang at an entry of `level` holding the non-table
/// `old`: what `old` mapped, one level finer; or, over an empty entry the
/// walk covers from `covered` on, already holding `target`'s leaves if they
/// fit one level down (see [`prefill`]). Once per table page, so out of
/// the walk loop.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn new_table<M: MemoryOps>(
    mm: &M,
    pool: &mut M::PagePool,
    geometry: &Geometry,
    level: Level,
    old: Descriptor,
    target: &Target,
    covered: Option<u64>,
    flags: WalkFlags,
) -> Result<(PhysAddr, bool), Error> {
    let child = table_for(mm, pool, geometry, level, old)?;
    let filled = match covered {
        // SAFETY: `child` was just allocated (and, `old` being empty, left
        // empty by `table_for`); it is linked only after this returns.
        Some(addr) if !old.is_counted() => unsafe {
            prefill(mm, geometry, level.next(), target, addr, flags, child)
        },
        _ => false,
    };
    Ok((child, filled))
}

/// Fills the fresh table page `child` (entries of `level`, mapping from
/// `addr` on) with the leaves `target` installs at every one of its
/// entries, if they all fit there.
///
/// The walker would install the same leaves one by one after descending;
/// doing it here, on a page nobody else can see yet, needs neither
/// release stores nor one reference-count update per entry (an atomic
/// operation with most hosts), only one [`MemoryOps::get_pages`]; and the
/// walker need not descend at all. Returns whether it filled the page.
///
/// # Safety
///
/// `child` is an empty table page of `mm`, holding entries of `level`, that
/// nobody else can reach yet: allocated by the caller and not linked.
unsafe fn prefill<M: MemoryOps>(
    mm: &M,
    geometry: &Geometry,
    level: Level,
    target: &Target,
    addr: u64,
    flags: WalkFlags,
    child: PhysAddr,
) -> bool {
    let Target::Map {
        start,
        phys,
        attrs,
        format,
        pages_only,
    } = *target
    else {
        return false;
    };
    if !geometry.leaf_allowed(level) || (pages_only && !level.is_last()) {
        return false;
    }
    let size = geometry.entry_size(level);
    let first = phys + (addr - start);
    if first & (size - 1) != 0 {
        return false;
    }
    let cmo = !flags.contains(WalkFlags::SKIP_CMO);
    let entries = geometry.granule().entries();
    // SAFETY: the caller's: `child` is a table page of `mm`, one granule of
    // entries, that only we reach until it is linked.
    let page = unsafe { TablePage::new(mm, child, entries) };
    // A page's leaves differ from its first by their offset alone, unless
    // their addresses cross the boundary above which the format keeps
    // address bits elsewhere (2^48 with 64 KiB, 2^50 with LPA2): then each
    // is encoded on its own.
    let first_leaf = Descriptor::leaf_in(format, PhysAddr(first), level, attrs);
    let span = (entries as u64 - 1) * size;
    let linear = format.encode(first + span) == format.encode(first) + span;
    for idx in 0..entries {
        let offset = idx as u64 * size;
        let pa = PhysAddr(first + offset);
        let leaf = if linear {
            Descriptor::from_bits(first_leaf.bits() + offset)
        } else {
            Descriptor::leaf_in(format, pa, level, attrs)
        };
        if cmo {
            // What `VisitCtx::set` does for a new leaf over an empty entry.
            if leaf.is_cacheable() {
                mm.dcache_clean_inval_poc(pa, size);
            }
            if leaf.is_executable() {
                mm.icache_inval_pou(pa, size);
            }
        }
        page.store_private(idx, leaf);
    }
    // SAFETY: one reference for each of the `entries` counted leaves just
    // stored in `child`.
    unsafe { mm.get_pages(child, entries) };
    true
}

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Maps `size` bytes at `ipa` to `phys` with `prot`, using the largest
    /// blocks that size and alignment allow (`kvm_pgtable_stage2_map`).
    ///
    /// Whatever the range mapped before is replaced, break-before-make where
    /// needed (and a TLB invalidation where only permissions shrink);
    /// subtrees a block replaces are freed, and blocks only partly covered
    /// are split so their remainder stays mapped. New table pages come from
    /// `pool`.
    ///
    /// On [`Error::NoMemory`] the part of the range before the failing entry
    /// is mapped and the rest is as it was; mapping again after topping up
    /// the pool finishes the job.
    pub fn map(
        &mut self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
    ) -> Result<(), Error> {
        self.map_with(ipa, size, phys, prot, pool, MapOptions::new())
    }

    /// [`map`](Self::map), with [`MapOptions`] other than the defaults.
    pub fn map_with(
        &mut self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
        opts: MapOptions,
    ) -> Result<(), Error> {
        let (target, range) = Target::map(self.geometry(), ipa, size, phys, prot, &opts)?;
        self.install_range(range, target, pool, opts.walk_flags())
    }

    pub(crate) fn install_range(
        &mut self,
        range: CheckedRange,
        target: Target,
        pool: &mut M::PagePool,
        flags: WalkFlags,
    ) -> Result<(), Error> {
        let flags = flags & (WalkFlags::SKIP_CMO | WalkFlags::SKIP_BBM_TLBI)
            | WalkFlags::LEAF
            | WalkFlags::TABLE_PRE;
        let walked = self.run_span(
            Span::Checked(range),
            flags,
            // Inlined into both of the walker's loops: see `install`.
            #[inline(always)]
            |ctx| install(ctx, &target, pool),
        );
        if walked.is_err() {
            // Tables installed before the failure may have stayed empty.
            self.prune_empty(range.start(), range.len());
        }
        let crate::capability::Walked::Completed = walked?;
        Ok(())
    }
}

//! The kernel's map walker (`stage2_map_walker`), behind map, set_owner and
//! the fault path's map.
//!
//! At a table entry before its children, a block that fits replaces the
//! table (break-before-make, the subtree to the host's
//! `free_unlinked_table`). At a leaf, the leaf that fits is installed:
//! nothing when only permissions differ, in place when only software bits
//! do (exclusive only), break-before-make otherwise. Where nothing fits, an
//! empty table replaces the entry, a block included, and the walk descends
//! into it: what the block mapped beyond the range is gone.

use super::site::KvmSite;
use super::Kvm;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Action, Capability, Conflict, Exclusive, HandlesFault, ResumeReason};
use crate::capability::{Unfinished, Visit};
use crate::descriptor::{Descriptor, LeafAttrs};
use crate::error::Error;
use crate::fault::TableOutcome;
use crate::geometry::{Geometry, Level};
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::stage2::args::{check_map, check_range};
use crate::stage2::pte::{self, EntrySite};
use crate::stage2::tables::alloc_table;
use crate::visit::{VisitCtx, VisitKind, WalkFlags};
use crate::walk::{CheckedRange, Span};

/// How a kernel-compatible map runs: the kernel's `force_pte` and the two
/// maintenance flags of `enum kvm_pgtable_walk_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KvmMapOptions {
    /// Pages only (`force_pte`, as the table's `force_pte_cb` decides, and
    /// always for `set_owner`).
    pub force_pte: bool,
    /// No cache maintenance for new leaves (`KVM_PGTABLE_WALK_SKIP_CMO`).
    pub skip_cmo: bool,
    /// No TLB invalidation per break (`KVM_PGTABLE_WALK_SKIP_BBM_TLBI`):
    /// the walk invalidates its whole range once when it ends instead (the
    /// kernel leaves that to the caller).
    pub skip_bbm_tlbi: bool,
    /// Post-order visits too (`KVM_PGTABLE_WALK_TABLE_POST` in the caller's
    /// flags, which 6.12 passes on to its walker): the kernel's map walker
    /// answers one with `-EINVAL`, so the map stops with
    /// [`Error::UnsupportedVisit`] after the first table whose entries in
    /// the range it finished, keeping what it mapped up to there.
    pub table_post: bool,
}

impl KvmMapOptions {
    fn walk_flags(&self) -> WalkFlags {
        let mut flags = WalkFlags::LEAF | WalkFlags::TABLE_PRE;
        if self.skip_cmo {
            flags |= WalkFlags::SKIP_CMO;
        }
        if self.skip_bbm_tlbi {
            flags |= WalkFlags::SKIP_BBM_TLBI;
        }
        if self.table_post {
            flags |= WalkFlags::TABLE_POST;
        }
        flags
    }
}

/// What the walk installs: valid leaves from `phys` on, or an owner
/// annotation (zero for owner 0) everywhere.
#[derive(Clone, Copy)]
enum Install {
    Leaves {
        start: u64,
        phys: u64,
        attrs: LeafAttrs,
    },
    Owner(Descriptor),
}

/// The kernel's `stage2_map_data`, for one walk.
struct MapData<'p, P: ?Sized> {
    install: Install,
    /// The coarsest level a leaf may take: the last with `force_pte`, else
    /// the largest block level the walk's size can fill. Tested once per
    /// entry in place of the kernel's level, granule and size checks, which
    /// never pass above it.
    coarsest: Level,
    pool: &'p mut P,
    /// Whether the walk changed anything (for the fault path's outcome).
    changed: bool,
}

impl<'p, P: ?Sized> MapData<'p, P> {
    fn new(
        geometry: &Geometry,
        install: Install,
        size: u64,
        force_pte: bool,
        pool: &'p mut P,
    ) -> Self {
        MapData {
            install,
            coarsest: if force_pte {
                Level::LAST
            } else {
                geometry.coarsest_leaf(size)
            },
            pool,
            changed: false,
        }
    }

    /// The leaf for this entry, if one may sit here (the kernel's
    /// `stage2_leaf_mapping_allowed` and `kvm_block_mapping_supported`).
    #[inline(always)]
    fn leaf_for<C: Capability, M: MemoryOps>(
        &self,
        ctx: &VisitCtx<'_, C, M>,
    ) -> Option<Descriptor> {
        let level = ctx.level();
        // `coarsest` is never finer than the last level: said first, it
        // folds the test away in the leaf loop, where the level is known.
        if !level.is_last() && level < self.coarsest {
            return None;
        }
        if !ctx.covers_entry() {
            return None;
        }
        match self.install {
            Install::Leaves { start, phys, attrs } => {
                let pa = phys + (ctx.addr().get() - start);
                if !ctx.output_aligned(pa) {
                    return None;
                }
                Some(Descriptor::leaf_in(
                    ctx.geometry().format(),
                    PhysAddr(pa),
                    level,
                    attrs,
                ))
            }
            Install::Owner(d) => Some(d),
        }
    }
}

/// Whether replacing `old` with `new` is no update at all: both valid and
/// equal but for permissions (`!stage2_pte_needs_update`).
#[inline(always)]
fn same_but_permissions(old: Descriptor, new: Descriptor) -> bool {
    old.is_valid() && new.is_valid() && !new.differs_beyond_perms(old)
}

/// Break-before-make of this entry with the kernel's invalidation and cache
/// maintenance: by compare-and-swap against the value read for concurrent
/// walkers, by plain stores for an exclusive one (as the kernel does).
#[inline(always)]
fn break_make<C: Capability, M: MemoryOps>(
    ctx: &mut VisitCtx<'_, C, M>,
    new: Descriptor,
) -> Result<(), Conflict> {
    let site = KvmSite::of(ctx);
    let broken = if C::CONCURRENT {
        pte::try_break(ctx.ptep, &site, ctx.cur)?
    } else {
        // SAFETY: the walker read `ctx.cur` from this entry (or wrote it),
        // and without `CONCURRENT` it holds `Exclusive`: nobody else
        // writes the table.
        unsafe { pte::break_exclusive(ctx.ptep, &site, ctx.cur)? }
    };
    pte::make(ctx.ptep, &site, broken, new);
    ctx.written = true;
    ctx.cur = new;
    Ok(())
}

/// The kernel's `stage2_map_walker_try_leaf`: `Ok(true)` when it installed
/// `new` (or found nothing to do), `Err` for "not an update" or a lost race,
/// which the capability reads.
#[inline(always)]
fn try_leaf<C: Capability, M: MemoryOps>(
    ctx: &mut VisitCtx<'_, C, M>,
    new: Descriptor,
) -> Result<(), Conflict> {
    let old = ctx.cur;
    if same_but_permissions(old, new) {
        // The vCPU faults again if it still needs more, into relax_perms.
        return Err(Conflict::Gone);
    }
    if !C::CONCURRENT && (old.bits() ^ new.bits()) & !Prot::SW.bits() == 0 {
        // Only software bits change (the MMU ignores them): one store, no
        // break, no maintenance. Nothing else writes the entry under
        // `Exclusive`, so no race either.
        let site = KvmSite::of(ctx);
        let counted = (old.is_counted(), new.is_counted());
        if counted == (false, true) {
            // SAFETY: the reference is for `new`, stored just below.
            unsafe { site.get() };
        }
        pte::publish(ctx.ptep, new);
        if counted == (true, false) {
            // SAFETY: `old`, counted, is gone; the page keeps its own
            // reference.
            unsafe { site.put() };
        }
        ctx.written = true;
        ctx.cur = new;
        return Ok(());
    }
    break_make(ctx, new)
}

/// The visitor, for every capability: what the kernel's walker does with
/// its answer is up to `on`, the capability's reading of "not an update" and
/// "raced".
#[inline(always)]
fn visit<C: Capability, M: MemoryOps, E: From<Error>>(
    ctx: &mut VisitCtx<'_, C, M>,
    data: &mut MapData<'_, M::PagePool>,
    on: fn(Conflict) -> Visit<C, E>,
) -> Visit<C, E> {
    let old = ctx.cur;
    let level = ctx.level();
    if ctx.kind() == VisitKind::TablePost {
        // `stage2_map_walker`'s `default:` case.
        return Err(Unfinished::Stop(
            Error::UnsupportedVisit {
                addr: ctx.entry_addr().get(),
                level,
            }
            .into(),
        ));
    }
    if old.is_table(level) {
        // Table pre-order: a block that fits replaces the subtree.
        let Some(new) = data.leaf_for(ctx) else {
            return Ok(Action::Continue);
        };
        if let Err(c) = try_leaf(ctx, new) {
            return on(c);
        }
        data.changed = true;
        let child = old.output_address(ctx.geometry().format());
        // SAFETY: the block replaced the only descriptor linking `child`,
        // its range invalidated first; walkers that may still be inside it
        // are what the host's grace period waits for.
        unsafe { ctx.mm().free_unlinked_table(child, level) };
        return Ok(Action::Continue);
    }
    if let Some(new) = data.leaf_for(ctx) {
        if let Err(c) = try_leaf(ctx, new) {
            return on(c);
        }
        data.changed = true;
        return Ok(Action::Continue);
    }
    if level.is_last() {
        // A last-level entry always fits a page; reaching this is a bug.
        return Err(Unfinished::Stop(
            Error::Geometry("no page fits a last-level entry").into(),
        ));
    }
    // Nothing fits: an empty table in place of the entry, and down. The
    // page is checked as stage 2's own map checks it (a page the format's
    // descriptors cannot address would be linked as another one).
    let child = match alloc_table(ctx.mm(), data.pool, ctx.geometry()) {
        Ok(child) => child,
        Err(e) => return Err(Unfinished::Stop(e.into())),
    };
    if let Err(c) = break_make(ctx, Descriptor::table(child, ctx.geometry().format())) {
        // SAFETY: `child` was never linked: the only reference is ours.
        unsafe { ctx.mm().put_page(child) };
        return on(c);
    }
    data.changed = true;
    Ok(Action::Continue)
}

impl<M: MemoryOps> Kvm<'_, Exclusive, M> {
    /// `kvm_pgtable_stage2_map` without `SHARED`: maps `size` bytes at `ipa`
    /// to `phys` with `prot`, the kernel's way (see the [module](super)
    /// documentation). `ipa`, `size` and `phys` are page-aligned and the
    /// range non-empty, as the kernel's walker sees them.
    pub fn map(
        &mut self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
        opts: KvmMapOptions,
    ) -> Result<(), Error> {
        let (install, range) = leaves(&self.handle, ipa, size, phys, prot)?;
        self.run(range, install, opts, pool)
    }

    /// `kvm_pgtable_stage2_set_owner`: annotates `size` bytes at `ipa` as
    /// `owner`'s, page by page (owner 0 writes zero entries).
    pub fn set_owner(
        &mut self,
        ipa: Ipa,
        size: u64,
        owner: u32,
        pool: &mut M::PagePool,
    ) -> Result<(), Error> {
        let range = check_range(self.handle.geometry(), ipa, size)?;
        if owner > KVM_MAX_OWNER_ID {
            return Err(Error::InvalidOwner {
                id: owner,
                max: KVM_MAX_OWNER_ID,
            });
        }
        let install = Install::Owner(Descriptor::annotation(owner)?);
        let opts = KvmMapOptions {
            force_pte: true,
            ..KvmMapOptions::default()
        };
        self.run(range, install, opts, pool)
    }

    fn run(
        &mut self,
        range: CheckedRange,
        install: Install,
        opts: KvmMapOptions,
        pool: &mut M::PagePool,
    ) -> Result<(), Error> {
        let geometry = self.handle.geometry();
        let mut data = MapData::new(geometry, install, range.len(), opts.force_pte, pool);
        let walked = self.handle.run_span::<Error, _>(
            Span::Checked(range),
            opts.walk_flags(),
            #[inline(always)]
            |ctx| visit(ctx, &mut data, |_| Ok(Action::Continue)),
        );
        // Tables installed before a failure, or left with nothing but zero
        // entries (owner 0), stay linked, as in the kernel: the retry uses
        // them, and an unmap of the range frees them.
        let crate::capability::Walked::Completed = walked?;
        Ok(())
    }
}

impl<M: MemoryOps> Kvm<'_, Exclusive, M> {
    /// `kvm_pgtable_stage2_map` with `HANDLE_FAULT` but not `SHARED` (the
    /// kernel allows it; no caller uses it): plain stores, and the fault
    /// path's reading of "nothing to update" — the walk stops there.
    /// [`TableOutcome::Fixed`] when the walk went through,
    /// [`TableOutcome::Spurious`] when it stopped (the kernel's `-EAGAIN`).
    pub fn map_stopping(
        &mut self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
        opts: KvmMapOptions,
    ) -> Result<TableOutcome, Error> {
        let (install, range) = leaves(&self.handle, ipa, size, phys, prot)?;
        let mut data = MapData::new(self.handle.geometry(), install, size, opts.force_pte, pool);
        let walked = self.handle.run_span::<Halt, _>(
            Span::Checked(range),
            opts.walk_flags(),
            #[inline(always)]
            |ctx| visit(ctx, &mut data, |_| Err(Unfinished::Stop(Halt::Again))),
        );
        match walked {
            Ok(_) => Ok(TableOutcome::Fixed),
            // Where the fault path resumes the guest, this walker, which
            // cannot, stops.
            Err(Halt::Again) => Ok(TableOutcome::Spurious),
            Err(Halt::Failed(e)) => Err(e),
        }
    }
}

/// How a walk that stops at the first leaf needing no update ends early.
enum Halt {
    Again,
    Failed(Error),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Halt {
        Halt::Failed(e)
    }
}

impl<M: MemoryOps> Kvm<'_, crate::capability::Shared, M> {
    /// `kvm_pgtable_stage2_map` with `SHARED` but not `HANDLE_FAULT` (the
    /// kernel allows it; no caller uses it): compare-and-swap updates beside
    /// other walkers, and, as for any walker outside a fault handler, a leaf
    /// needing no update or a lost race is passed over.
    pub fn map(
        &self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
        opts: KvmMapOptions,
    ) -> Result<(), Error> {
        let (install, range) = leaves(&self.handle, ipa, size, phys, prot)?;
        let mut data = MapData::new(self.handle.geometry(), install, size, opts.force_pte, pool);
        let walked = self.handle.run_span::<Error, _>(
            Span::Checked(range),
            opts.walk_flags(),
            #[inline(always)]
            |ctx| visit(ctx, &mut data, |_| Ok(Action::Continue)),
        )?;
        let crate::capability::Walked::Completed = walked;
        Ok(())
    }
}

/// The kernel's largest owner id (`KVM_MAX_OWNER_ID`).
pub(crate) const KVM_MAX_OWNER_ID: u32 = 1;

impl<M: MemoryOps> Kvm<'_, HandlesFault, M> {
    /// `kvm_pgtable_stage2_map` with `SHARED | HANDLE_FAULT`: the fault
    /// path's map, the kernel's way. [`TableOutcome::Fixed`] when the walk
    /// went through (the kernel's 0); [`TableOutcome::Spurious`] when it
    /// stopped at a leaf that differs only in permissions, and
    /// [`TableOutcome::Retry`] when it lost a race (both the kernel's
    /// `-EAGAIN`: resume the guest).
    pub fn map(
        &self,
        ipa: Ipa,
        size: u64,
        phys: PhysAddr,
        prot: Prot,
        pool: &mut M::PagePool,
        opts: KvmMapOptions,
    ) -> Result<TableOutcome, Error> {
        let (install, range) = leaves(&self.handle, ipa, size, phys, prot)?;
        let mut data = MapData::new(self.handle.geometry(), install, size, opts.force_pte, pool);
        let walked = self.handle.run_span::<Error, _>(
            Span::Checked(range),
            opts.walk_flags(),
            #[inline(always)]
            |ctx| {
                visit(ctx, &mut data, |c| {
                    Err(Unfinished::ResumeGuest(match c {
                        Conflict::Raced => ResumeReason::Raced,
                        Conflict::Gone => ResumeReason::Spurious,
                    }))
                })
            },
        )?;
        Ok(match walked {
            crate::capability::Walked::Completed => TableOutcome::Fixed,
            crate::capability::Walked::ResumeGuest(r) => TableOutcome::from_resume(r),
        })
    }
}

/// What a map of `size` bytes at `ipa` to `phys` installs, checked as far
/// as the kernel's walker needs: a page-aligned, non-empty range inside the
/// input space, an output range within PS, a protection stage 2 can
/// express.
#[inline(always)]
fn leaves<C: Capability, M: MemoryOps>(
    handle: &crate::stage2::Handle<'_, C, M>,
    ipa: Ipa,
    size: u64,
    phys: PhysAddr,
    prot: Prot,
) -> Result<(Install, CheckedRange), Error> {
    let geometry = handle.geometry();
    let range = check_map(geometry, ipa, size, phys)?;
    let install = Install::Leaves {
        start: ipa.get(),
        phys: phys.get(),
        attrs: LeafAttrs::from_prot(prot)?,
    };
    Ok((install, range))
}

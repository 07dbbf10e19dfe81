//! Unmapping a range (`kvm_pgtable_stage2_unmap`).
//!
//! Leaves are cleared with a TLB invalidation (and, for cacheable memory,
//! then a data-cache clean so the guest's last writes reach memory before
//! the host reuses the page). On the way back up, a child table left with
//! nothing in it (reference count 1) is unlinked and freed. A last-level
//! table the range covers whole goes in one visit, its leaves invalidated
//! by range (`VisitCtx::clear_leaf_table`).

use super::args::check_range;
use super::options::UnmapOptions;
use super::tables::free_if_empty;
use super::Handle;
use crate::addr::Ipa;
use crate::capability::Action;
use crate::capability::Exclusive;
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::walk::{Span, VisitKind, WalkFlags};

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Removes every mapping and annotation in `size` bytes at `ipa`, and
    /// frees the table pages left empty.
    ///
    /// A range that starts or ends inside a block is refused with
    /// [`Error::SplitsBlock`] before anything changes: unmapping part of a
    /// block would either unmap memory outside the range or need memory to
    /// split it. Split it first with [`split`](Self::split).
    pub fn unmap(&mut self, ipa: Ipa, size: u64) -> Result<(), Error> {
        self.unmap_with(ipa, size, UnmapOptions::new())
    }

    /// [`unmap`](Self::unmap), with [`UnmapOptions`] other than the
    /// defaults.
    pub fn unmap_with(&mut self, ipa: Ipa, size: u64, opts: UnmapOptions) -> Result<(), Error> {
        let range = check_range(self.geometry(), ipa, size)?;
        self.check_block_boundary(ipa)?;
        self.check_block_boundary(Ipa(ipa.get() + size))?;
        let flags =
            opts.walk_flags() | WalkFlags::LEAF | WalkFlags::TABLE_PRE | WalkFlags::TABLE_POST;
        let cmo = !flags.contains(WalkFlags::SKIP_CMO);
        let batched = flags.contains(WalkFlags::SKIP_BBM_TLBI);
        let format = self.geometry().format();
        let walked = self.run_span::<Error, _>(Span::Checked(range), flags, |ctx| {
            let old = ctx.old();
            match ctx.kind() {
                VisitKind::Leaf => {
                    if old.is_counted() {
                        ctx.set(Descriptor::INVALID);
                        // What a cleared leaf still owes: the guest's last
                        // writes reach memory before the host reuses the
                        // page. After the leaf's invalidation, even in a
                        // batched unmap: a vCPU writing through a stale
                        // translation after the clean would leave the
                        // write in the cache.
                        if cmo && old.is_valid() && old.is_cacheable() {
                            if batched {
                                ctx.mm().tlb_flush_vmid_ipa(ctx.addr(), ctx.level());
                            }
                            ctx.mm().dcache_clean_inval_poc(
                                old.output_address(format),
                                ctx.entry_size(),
                            );
                        }
                    }
                }
                VisitKind::TablePre => {
                    if ctx.level().next().is_last() && ctx.covers_entry() {
                        // A last-level table the range covers whole: its
                        // leaves and then the table go in one visit.
                        ctx.clear_leaf_table(cmo);
                    }
                }
                VisitKind::TablePost => free_if_empty(ctx),
            }
            Ok(Action::Continue)
        })?;
        let crate::capability::Walked::Completed = walked;
        Ok(())
    }

    /// Refuses a range boundary that falls inside a block or a block-sized
    /// annotation.
    pub(crate) fn check_block_boundary(&self, addr: Ipa) -> Result<(), Error> {
        if addr.get() >= self.geometry().ia_limit() {
            return Ok(());
        }
        let (leaf, level) = self.get_leaf(addr)?;
        if leaf.is_counted()
            && !level.is_last()
            && !addr.is_aligned(self.geometry().entry_size(level))
        {
            return Err(Error::SplitsBlock {
                addr: addr.get(),
                level,
            });
        }
        Ok(())
    }
}

//! The kernel's unmap walker (`stage2_unmap_walker`): every leaf the range
//! touches goes, a block included whole (the rest of it is faulted back
//! lazily), annotations go, and a table left with nothing in it is freed on
//! the way back up.

use super::Kvm;
use crate::addr::Ipa;
use crate::capability::{Action, Exclusive};
use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::stage2::args::check_range;
use crate::stage2::pte;
use crate::visit::{VisitCtx, VisitKind, WalkFlags};
use crate::walk::Span;

/// Clears the entry and drops its count (the kernel's
/// `stage2_unmap_put_pte`). A valid one is invalidated by IPA at the walk's
/// address: with its level for a leaf, with none for a table (whose walks
/// the TLB may cache at any level below).
// Inlined, as the visitor is: both run once per page unmapped, and as
// calls of their own they passed the context through memory.
#[inline(always)]
fn clear<M: MemoryOps>(ctx: &mut VisitCtx<'_, Exclusive, M>) {
    let old = ctx.cur;
    pte::publish(ctx.ptep, Descriptor::INVALID);
    if old.is_table(ctx.level) {
        ctx.mm.tlb_flush_vmid_ipa_unknown_level(Ipa(ctx.addr));
    } else if old.is_valid() {
        ctx.mm.tlb_flush_vmid_ipa(Ipa(ctx.addr), ctx.level);
    }
    // SAFETY: the entry held the counted `old`, which is gone: its
    // reference is ours to give back, and the page keeps its own; `ptep`
    // is the entry, in that page.
    unsafe { pte::put_entry_page(ctx.mm, ctx.table, ctx.ptep) };
    ctx.written = true;
    ctx.cur = Descriptor::INVALID;
}

impl<M: MemoryOps> Kvm<'_, Exclusive, M> {
    /// `kvm_pgtable_stage2_unmap`: removes every mapping and annotation the
    /// page-aligned, non-empty range touches, blocks whole, and frees the
    /// tables it empties.
    pub fn unmap(&mut self, ipa: Ipa, size: u64) -> Result<(), Error> {
        let range = check_range(self.handle.geometry(), ipa, size)?;
        let flags = WalkFlags::LEAF | WalkFlags::TABLE_POST;
        let walked = self.handle.run_span::<Error, _>(
            Span::Checked(range),
            flags,
            #[inline(always)]
            |ctx| {
                let old = ctx.cur;
                if !old.is_valid() {
                    if old.is_counted() {
                        clear(ctx);
                    }
                    return Ok(Action::Continue);
                }
                if ctx.kind() == VisitKind::TablePost {
                    let child = old.output_address(ctx.geometry().format());
                    if ctx.mm().page_count(child) != 1 {
                        return Ok(Action::Continue);
                    }
                    clear(ctx);
                    // SAFETY: the child's count was 1 (no entries left), the
                    // entry that linked it is cleared and invalidated, and an
                    // exclusive walker has no company: its last reference goes.
                    unsafe { ctx.mm().put_page(child) };
                    return Ok(Action::Continue);
                }
                let cacheable = old.is_cacheable();
                clear(ctx);
                if cacheable && !ctx.flags().contains(WalkFlags::SKIP_CMO) {
                    // The guest's last writes reach memory before the host
                    // reuses the page.
                    let pa = old.output_address(ctx.geometry().format());
                    ctx.mm().dcache_clean_inval_poc(pa, ctx.entry_size());
                }
                Ok(Action::Continue)
            },
        )?;
        let crate::capability::Walked::Completed = walked;
        Ok(())
    }
}

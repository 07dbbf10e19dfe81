//! Freeing a whole hyp table (`kvm_pgtable_hyp_destroy`).

use super::{HypTable, HypTlb};
use crate::capability::Action;
use crate::memory::MemoryOps;
use crate::walk::{VisitKind, WalkFlags};
use crate::Va;

/// Drops every reference the table holds and frees every table page, then
/// the root, as Linux's `hyp_free_walker` does. No TLB maintenance: the
/// MMU no longer uses the table (the kernel's contract too).
pub(super) fn destroy<M: MemoryOps + HypTlb>(table: &mut HypTable<M>) {
    let limit = table.geometry.ia_limit();
    let flags = WalkFlags::LEAF | WalkFlags::TABLE_POST;
    let walked = table
        .exclusive()
        .run::<crate::Error, _>(Va(0), limit, flags, |ctx| {
            let old = ctx.old();
            let mm = ctx.mm();
            match ctx.kind() {
                // SAFETY: every valid entry owns one reference to its page;
                // the page's own reference is dropped only after all its
                // entries (by its parent's post-visit, or last for the
                // root), so this cannot free a page the walk still reads.
                VisitKind::Leaf if old.is_counted() => unsafe { mm.put_page(ctx.table_page()) },
                VisitKind::TablePost => {
                    let child = old.output_address(ctx.geometry().format());
                    // SAFETY: as above for the parent's entry. The child's
                    // entries have all been dropped while the walk was
                    // inside it, and the walk has left it for good: its
                    // last reference goes, and the table is being destroyed
                    // under `&mut`, so nothing reaches it again.
                    unsafe {
                        mm.put_page(ctx.table_page());
                        mm.put_page(child);
                    }
                }
                _ => {}
            }
            Ok(Action::Continue)
        });
    // The whole input space is always in range and the visitor never
    // stops, so the walk cannot fail.
    debug_assert!(walked.is_ok());
    // SAFETY: the root came from `zalloc_page` in `with_geometry` (or the
    // `from_raw_parts` caller promised as much), its entries' references
    // are all gone, and the table is being dropped: nothing walks it again.
    unsafe { table.mm.put_page(table.root) };
}

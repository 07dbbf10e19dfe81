//! Freeing a whole table (`kvm_pgtable_stage2_destroy`).

use super::Stage2;
use crate::addr::Ipa;
use crate::capability::Action;
use crate::memory::MemoryOps;
use crate::walk::{VisitKind, WalkFlags};

/// Drops every reference the table holds and frees every table page, then
/// the root. No TLB maintenance: the VMID is being retired with the table.
pub(super) fn destroy<M: MemoryOps>(table: &mut Stage2<M>) {
    let limit = table.geometry.ia_limit();
    let flags = WalkFlags::LEAF | WalkFlags::TABLE_POST;
    let walked = table
        .exclusive()
        .run::<crate::Error, _>(Ipa(0), limit, flags, |ctx| {
            let old = ctx.old();
            let mm = ctx.mm();
            match ctx.kind() {
                // SAFETY: every counted entry owns one reference to its page; the
                // page's own reference is dropped only after all its entries
                // (below, by its parent's post-visit), so this cannot free a page
                // the walk is still reading.
                VisitKind::Leaf if old.is_counted() => unsafe { mm.put_page(ctx.table_page()) },
                VisitKind::TablePost => {
                    let child = old.output_address(ctx.geometry().format());
                    // SAFETY: as above for the parent's entry. The child's entries
                    // have all been dropped while the walk was inside it, and the
                    // walk has left it for good: its last reference goes, and the
                    // table is being destroyed under `&mut`, so nothing reaches it
                    // again.
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
    // SAFETY: the root came from `zalloc_pages_exact(root_size)` in
    // `with_geometry` (or the `from_raw_parts` caller promised as much), and
    // the table is being dropped: nothing walks it again.
    unsafe {
        table
            .mm
            .free_pages_exact(table.root, table.geometry.root_size())
    };
}

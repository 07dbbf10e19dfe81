//! Freeing a whole table (`kvm_pgtable_stage2_destroy`).

use super::Stage2;
use crate::action::Action;
use crate::addr::Ipa;
use crate::memory::MemoryOps;
use crate::walk::{VisitKind, WalkFlags};

/// Drops every reference the table holds and frees every table page, then
/// the root. No TLB maintenance: the VMID is being retired with the table.
pub(super) fn destroy<M: MemoryOps>(table: &mut Stage2<M>) {
    let limit = table.geometry.ia_limit();
    let flags = WalkFlags::LEAF | WalkFlags::TABLE_POST;
    let walked = table.exclusive().walk(Ipa(0), limit, flags, |ctx| {
        let old = ctx.old();
        match ctx.kind() {
            VisitKind::Leaf if old.is_counted() => ctx.mm().put_page(ctx.table_page()),
            VisitKind::TablePost => {
                ctx.mm().put_page(ctx.table_page());
                ctx.mm()
                    .put_page(old.output_address(ctx.geometry().granule()));
            }
            _ => {}
        }
        Ok(Action::Continue)
    });
    // The whole input space is always in range and the visitor never
    // stops, so the walk cannot fail.
    debug_assert!(walked.is_ok());
    table
        .mm
        .free_pages_exact(table.pgd, table.geometry.root_size());
}

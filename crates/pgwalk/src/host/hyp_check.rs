//! Checking an EL2 table built on [`HeapMemory`] against its host, with the
//! walk engine itself, as [`check_invariants`](super::check_invariants)
//! does for stage 2.

use std::collections::BTreeMap;

use super::{HeapMemory, TableReport};
use crate::addr::{PhysAddr, Va};
use crate::capability::{Action, Unfinished};
use crate::error::Error;
use crate::hyp::HypTable;
use crate::walk::{VisitKind, WalkFlags};

/// Why the check stopped: a broken invariant, or the walk's own error.
enum Broken {
    Invariant(String),
    Walk(Error),
}

impl From<Error> for Broken {
    fn from(e: Error) -> Broken {
        Broken::Walk(e)
    }
}

/// Checks a hyp table's structural invariants against its host: every
/// table page's reference count is 1 plus its valid entries, no child table
/// is empty, every invalid entry is zero, every leaf sits at a level that
/// may hold one and is never both writable and executable, and the pages
/// the host holds alive are exactly the root and the reachable tables
/// (nothing leaked). [`TableReport::annotations`] is always 0.
pub fn check_hyp_invariants(table: &mut HypTable<HeapMemory>) -> Result<TableReport, String> {
    let g = *table.geometry();
    let root = table.root();
    let mm = table.mm().clone();
    let page_size = g.granule().size();
    let pool_end = mm.phys_base().get() + mm.pool_pages() as u64 * page_size;
    let mut report = TableReport::default();
    let mut counted: BTreeMap<PhysAddr, usize> = BTreeMap::from([(root, 0)]);
    let flags = WalkFlags::LEAF | WalkFlags::TABLE_PRE;
    let walked = table
        .exclusive()
        .walk_with(Va(0), g.ia_limit(), flags, |ctx| {
            let d = ctx.old();
            let level = ctx.level();
            let at = ctx.entry_va();
            let fail = |what: String| Err(Unfinished::Stop(Broken::Invariant(what)));
            if d.is_counted() {
                *counted.entry(ctx.table_page()).or_insert(0) += 1;
            }
            if ctx.kind() == VisitKind::TablePre {
                let child = d.output_address(g.format());
                if child.get() < mm.phys_base().get() || child.get() >= pool_end {
                    return fail(format!(
                        "the table entry for {at:?} at level {level} points at {child:?}, \
                         outside the pool"
                    ));
                }
                report.table_pages += 1;
                counted.insert(child, 0);
            } else if d.is_valid() {
                if !g.leaf_allowed(level) {
                    return fail(format!("a leaf at level {level}, where none is allowed"));
                }
                if d.writable() && d.executable() {
                    return fail(format!("the leaf for {at:?} is writable and executable"));
                }
                report.leaves[level.get() as usize] += 1;
            } else if d.bits() != 0 {
                return fail(format!(
                    "the invalid entry for {at:?} at level {level} is not zero: {d:?}"
                ));
            }
            Ok(Action::Continue)
        });
    match walked {
        Ok(w) => debug_assert!(w.is_completed()),
        Err(Broken::Invariant(what)) => return Err(what),
        Err(Broken::Walk(e)) => return Err(format!("the check's walk failed: {e}")),
    }
    for (&page, &n) in &counted {
        if page != root && n == 0 {
            return Err(format!("empty child table {page:?}"));
        }
        let count = mm.count(page) as usize;
        if count != 1 + n {
            return Err(format!(
                "table page {page:?}: count {count}, expected 1 + {n} valid entries"
            ));
        }
    }
    let live = mm.live_pages();
    let expected = 1 + report.table_pages;
    if live != expected {
        return Err(format!(
            "host holds {live} live pages, the table reaches {expected} (root + {} tables)",
            report.table_pages
        ));
    }
    Ok(report)
}

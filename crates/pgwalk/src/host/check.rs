//! Checking a table built on [`HeapMemory`] against its host, with the
//! walk engine itself: every entry the table reaches is visited once.

use std::collections::BTreeMap;

use super::HeapMemory;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Action, Unfinished};
use crate::error::Error;
use crate::stage2::Stage2;
use crate::walk::{VisitKind, WalkFlags};

/// What [`check_invariants`] found in a healthy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableReport {
    /// Table pages below the root.
    pub table_pages: usize,
    /// Valid leaves, by level 0..=3.
    pub leaves: [usize; 4],
    /// Annotated (owned) invalid entries.
    pub annotations: usize,
}

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

/// Checks the table's structural invariants against its host: every table
/// page's reference count is 1 plus its non-zero entries, no child table is
/// empty, no entry is left locked, every leaf sits at a level that may hold
/// one, every non-zero invalid entry is an annotation, and the pages the
/// host holds alive are exactly the root and the reachable tables (nothing
/// leaked).
///
/// It takes the table by `&mut`, so that no walker runs while it looks
/// (through a lock, pass the write guard: `check_invariants(&mut guard)`);
/// call [`HeapMemory::quiesce`] first, so that no deferred free is still
/// waiting. A table descriptor pointing outside the pool is reported, not
/// followed.
pub fn check_invariants(table: &mut Stage2<HeapMemory>) -> Result<TableReport, String> {
    let g = *table.geometry();
    let root = table.root();
    let root_pages = g.root_pages();
    let mm = table.mm().clone();
    let mut report = TableReport::default();
    // Non-zero entries per table page, the root's pages included.
    let mut counted: BTreeMap<PhysAddr, usize> = (0..root_pages)
        .map(|p| (PhysAddr(root.get() + (p as u64) * g.granule().size()), 0))
        .collect();
    let flags = WalkFlags::LEAF | WalkFlags::TABLE_PRE;
    let walked = table
        .exclusive()
        .walk_with(Ipa(0), g.ia_limit(), flags, |ctx| {
            let d = ctx.old();
            let level = ctx.level();
            let fail = |what: String| Err(Unfinished::Stop(Broken::Invariant(what)));
            if d.is_locked() {
                return fail(format!(
                    "the entry for {:?} at level {level} is left locked",
                    ctx.entry_addr()
                ));
            }
            if d.is_counted() {
                *counted.entry(ctx.table_page()).or_insert(0) += 1;
            }
            if ctx.kind() == VisitKind::TablePre {
                let child = d.output_address(g.format());
                if !mm.holds(child) {
                    return fail(format!(
                        "the table entry for {:?} at level {level} points at {child:?}, \
                         outside the pool",
                        ctx.entry_addr()
                    ));
                }
                report.table_pages += 1;
                counted.insert(child, 0);
            } else if d.is_valid() {
                if !g.leaf_allowed(level) {
                    return fail(format!("a leaf at level {level}, where none is allowed"));
                }
                report.leaves[level.get() as usize] += 1;
            } else if d.owner().is_some() {
                report.annotations += 1;
            } else if d.is_counted() {
                return fail(format!(
                    "the entry for {:?} at level {level} has an unknown invalid shape {d:?}",
                    ctx.entry_addr()
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
        let is_root = page.get().wrapping_sub(root.get()) < g.root_size() as u64;
        if !is_root && n == 0 {
            return Err(format!("empty child table {page:?}"));
        }
        let count = mm.count(page) as usize;
        if count != 1 + n {
            return Err(format!(
                "table page {page:?}: count {count}, expected 1 + {n} non-zero entries"
            ));
        }
    }
    let live = mm.live_pages();
    let expected = root_pages + report.table_pages;
    if live != expected {
        return Err(format!(
            "host holds {live} live pages, the table reaches {expected} (root {root_pages} + {} tables)",
            report.table_pages
        ));
    }
    Ok(report)
}

impl HeapMemory {
    /// Whether `pa` lies in a page of the pool.
    fn holds(&self, pa: PhysAddr) -> bool {
        let base = self.phys_base().get();
        pa.get()
            .checked_sub(base)
            .is_some_and(|off| off < (self.pool_pages() as u64) * self.page_size() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Geometry;
    use crate::memory::MemoryOps;
    use crate::{Ipa, PhysAddr, Prot};

    #[test]
    fn a_count_that_disagrees_with_the_entries_is_reported() {
        let mm = HeapMemory::new(16);
        let mut t =
            Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), mm.clone()).unwrap();
        t.exclusive()
            .map(Ipa(0), 0x1000, PhysAddr(0x8000_0000), Prot::RW, &mut ())
            .unwrap();
        assert_eq!(check_invariants(&mut t).unwrap().leaves, [0, 0, 0, 1]);
        // SAFETY: a deliberate extra reference on the root, given back below.
        unsafe { mm.get_page(t.root()) };
        let e = check_invariants(&mut t).unwrap_err();
        assert!(e.contains("count 3, expected 1 + 1"), "{e}");
        // SAFETY: gives back the reference taken above.
        unsafe { mm.put_page(t.root()) };
        check_invariants(&mut t).unwrap();
    }
}

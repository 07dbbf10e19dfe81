//! Checking a table built on [`HeapMemory`] against its host: the core's
//! [`Handle::check`](crate::Handle::check), which follows only tables
//! inside the pool, and a leak check against the pool's live pages.

use super::HeapMemory;
use crate::addr::PhysAddr;
use crate::stage2::{Stage2, TableReport};

/// Checks the table's structural invariants against its host: every table
/// page's reference count is 1 plus its non-zero entries, no entry is left
/// locked, every leaf sits at a level that may hold one, every non-zero
/// invalid entry is an annotation (all of which
/// [`Handle::check`](crate::Handle::check) checks on any host), and the
/// pages the host holds alive are exactly the root and the reachable
/// tables, empty ones included (nothing leaked). Empty child tables are
/// counted in [`TableReport::empty_tables`], not refused.
///
/// It takes the table by `&mut`, so that no walker runs while it looks
/// (through a lock, pass the write guard: `check_invariants(&mut guard)`);
/// call [`HeapMemory::quiesce`] first, so that no deferred free is still
/// waiting. A table descriptor pointing outside the pool is reported, not
/// followed.
pub fn check_invariants(table: &mut Stage2<HeapMemory>) -> Result<TableReport, String> {
    let root_pages = table.geometry().root_pages();
    let mm = table.mm().clone();
    let report = table
        .exclusive()
        .check_with(|child| mm.holds(child))
        .map_err(|broken| broken.to_string())?;
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

//! Checking a table's structure against the invariants the walker relies
//! on, from any host: no allocation, no `std`, one walk.
//!
//! Every entry is visited once, in address order. A non-zero entry is
//! counted for the table page that holds it; a page's count is complete at
//! its parent's post-order visit (or, for the root, at the end), where it
//! is compared with the host's reference count. Below the root only one
//! table per level is open at a time, so one counter per level is enough;
//! the root's pages (up to 16, concatenated) each have their own.

use super::Handle;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::{Action, Exclusive, Unfinished, Visit};
use crate::descriptor::Pte;
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::walk::{VisitKind, WalkFlags};

/// What [`Handle::check`] found in a healthy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableReport {
    /// Table pages below the root.
    pub table_pages: usize,
    /// Valid leaves, by level 0..=3.
    pub leaves: [usize; 4],
    /// Annotated (owned) invalid entries.
    pub annotations: usize,
    /// Tables below the root that hold no entry. A legitimate state, not a
    /// broken invariant: the kernel-compatible map (`pgwalk::kvm`, the C
    /// `kvm_pgtable_stage2_map`) links a table before it fills it, so one
    /// stopped by a failed allocation below it leaves it empty, and its
    /// `set_owner` with owner 0 leaves tables of zero entries, both as
    /// Linux 6.12 does (an unmap of the range frees them). pgwalk's own
    /// operations never leave one.
    pub empty_tables: usize,
}

/// The invariant [`Handle::check`] found broken, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokenInvariant {
    /// A table page's reference count is not 1 plus its non-zero entries.
    #[error("table page {table:?}: count {count}, expected 1 + {entries} non-zero entries")]
    Count {
        /// The table page (one page of a concatenated root).
        table: PhysAddr,
        /// Its reference count, as the host reports it.
        count: usize,
        /// Its non-zero entries.
        entries: usize,
    },
    /// An entry holds the locked marker of a break-before-make that never
    /// finished.
    #[error("the entry for {addr:?} at level {level} is left locked")]
    Locked {
        /// First address of the entry.
        addr: Ipa,
        /// Its level.
        level: Level,
    },
    /// A valid leaf at a level that cannot hold one.
    #[error("a leaf for {addr:?} at level {level}, where none is allowed")]
    LeafLevel {
        /// First address of the entry.
        addr: Ipa,
        /// Its level.
        level: Level,
    },
    /// A non-zero invalid entry that is neither an annotation nor the
    /// locked marker.
    #[error("the entry for {addr:?} at level {level} has an unknown invalid shape {bits:#x}")]
    UnknownInvalid {
        /// First address of the entry.
        addr: Ipa,
        /// Its level.
        level: Level,
        /// The entry.
        bits: u64,
    },
    /// A table descriptor the caller's filter refused to follow (for
    /// instance, one pointing outside the host's pool).
    #[error(
        "the table entry for {addr:?} at level {level} points at {table:?}, which the host refused"
    )]
    ForeignTable {
        /// First address of the entry.
        addr: Ipa,
        /// Its level.
        level: Level,
        /// Where it points.
        table: PhysAddr,
    },
    /// The check's walk itself failed.
    #[error("the check's walk failed: {0}")]
    Walk(Error),
}

impl From<Error> for BrokenInvariant {
    fn from(e: Error) -> Self {
        BrokenInvariant::Walk(e)
    }
}

/// Most levels a table has: -1 (with LPA2) to 3.
const MAX_LEVELS: usize = 5;
/// Most pages a concatenated root spans.
const MAX_ROOT_PAGES: usize = 16;

impl<M: MemoryOps> Handle<'_, Exclusive, M> {
    /// Checks the table's structural invariants: every table page's
    /// reference count is 1 plus its non-zero entries (an annotation
    /// counts), no entry is left locked,
    /// every valid leaf sits at a level that may hold one, and every
    /// non-zero invalid entry is an annotation. Returns what the table
    /// holds (empty tables below the root counted, not refused: see
    /// [`TableReport::empty_tables`]), or the first invariant found broken.
    ///
    /// It runs on an exclusive handle, so that no walker changes the table
    /// while it looks; a host whose `free_unlinked_table` defers frees
    /// should end the grace period first, or the pages still waiting are
    /// nobody's (the check sees only what the table links). Neither
    /// allocates nor needs `std`.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use pgwalk::{geometry::Geometry, host::HeapMemory, Ipa, PhysAddr, Prot, Stage2};
    ///
    /// let mut table = Stage2::with_geometry(Geometry::for_ia_bits(40, 40)?, HeapMemory::new(64))?;
    /// let mut h = table.exclusive();
    /// h.map(Ipa(0), (2 << 20) + 0x1000, PhysAddr(0x8000_0000), Prot::RW, &mut ())?;
    /// let report = h.check().expect("a table pgwalk built is healthy");
    /// assert_eq!(report.leaves, [0, 0, 1, 1]); // a 2 MiB block and a page
    /// assert_eq!(report.table_pages, 2);       // a level-2 and a level-3 table
    /// # }
    /// # Ok::<(), pgwalk::Error>(())
    /// ```
    pub fn check(&mut self) -> Result<TableReport, BrokenInvariant> {
        self.check_with(|_| true)
    }

    /// [`check`](Self::check), asking `follow` about each table descriptor
    /// before following it: a host whose `phys_to_virt` would not map an
    /// address it never handed out refuses it here, and the check reports
    /// [`BrokenInvariant::ForeignTable`] instead of reading it.
    pub fn check_with(
        &mut self,
        mut follow: impl FnMut(PhysAddr) -> bool,
    ) -> Result<TableReport, BrokenInvariant> {
        let geometry = *self.geometry();
        let granule = geometry.granule();
        let format = geometry.format();
        let root = self.table.root();
        let start = geometry.start_level().get();
        let mut report = TableReport::default();
        // Non-zero entries of each root page, and of the open table at each
        // level below the root (index: level - start level).
        let mut root_counts = [0usize; MAX_ROOT_PAGES];
        let mut open = [0usize; MAX_LEVELS];
        let mm = self.mm();
        let flags = WalkFlags::LEAF | WalkFlags::TABLE_PRE | WalkFlags::TABLE_POST;
        let walked = self.run::<BrokenInvariant, _>(Ipa(0), geometry.ia_limit(), flags, |ctx| {
            let d = ctx.old();
            let level = ctx.level();
            let addr = ctx.entry_addr();
            let depth = (level.get() - start) as usize;
            if ctx.kind() == VisitKind::TablePost {
                // The child's entries are all counted now.
                let child = d.table_address(format);
                let entries = core::mem::take(&mut open[depth + 1]);
                if entries == 0 {
                    report.empty_tables += 1;
                }
                return expect_count(mm, child, entries);
            }
            if d.is_locked() {
                return Err(Unfinished::Stop(BrokenInvariant::Locked { addr, level }));
            }
            if d.is_counted() {
                if depth == 0 {
                    let page = (ctx.table_page().get() - root.get()) >> granule.shift();
                    root_counts[page as usize] += 1;
                } else {
                    open[depth] += 1;
                }
            }
            if ctx.kind() == VisitKind::TablePre {
                let child = d.table_address(format);
                if !follow(child) {
                    return Err(Unfinished::Stop(BrokenInvariant::ForeignTable {
                        addr,
                        level,
                        table: child,
                    }));
                }
                report.table_pages += 1;
                open[depth + 1] = 0;
            } else if d.is_valid() {
                if !geometry.leaf_allowed(level) {
                    return Err(Unfinished::Stop(BrokenInvariant::LeafLevel { addr, level }));
                }
                // `leaf_allowed` keeps level -1 (4 KiB with LPA2, where
                // no format has blocks) out.
                report.leaves[level.get().max(0) as usize] += 1;
            } else if d.owner().is_some() {
                report.annotations += 1;
            } else if d.is_counted() {
                return Err(Unfinished::Stop(BrokenInvariant::UnknownInvalid {
                    addr,
                    level,
                    bits: d.bits(),
                }));
            }
            Ok(Action::Continue)
        })?;
        // The whole input space is in range and only `Stop` ends an
        // exclusive walk early.
        debug_assert!(walked.is_completed());
        for (page, &entries) in root_counts[..geometry.root_pages()].iter().enumerate() {
            let pa = PhysAddr(root.get() + ((page as u64) << granule.shift()));
            if let Err(Unfinished::Stop(e)) = expect_count(mm, pa, entries) {
                return Err(e);
            }
        }
        Ok(report)
    }
}

/// Compares the host's count of `table` with 1 + its `entries` non-zero
/// entries.
fn expect_count<M: MemoryOps>(
    mm: &M,
    table: PhysAddr,
    entries: usize,
) -> Visit<Exclusive, BrokenInvariant> {
    let count = mm.page_count(table);
    if count != 1 + entries {
        return Err(Unfinished::Stop(BrokenInvariant::Count {
            table,
            count,
            entries,
        }));
    }
    Ok(Action::Continue)
}

//! The walk engine: one walker, many small visitors.
//!
//! It knows what [`Pte`] says of a descriptor format (is this entry a table,
//! and where is it) and nothing else: no attribute, no software convention,
//! no break-before-make rule. It visits the entries that cover a
//! range in address order, calls the visitor for the kinds of entry the
//! flags ask for, and does what the visitor's typed answer says. The visitor
//! is a generic closure: it is monomorphised and inlined into the loop, so a
//! walk pays no indirect call per entry.

mod context;
mod flags;
mod leaf_table;

use core::cell::Cell;
use core::marker::PhantomData;

pub use context::VisitCtx;
pub use flags::{VisitKind, WalkFlags};
pub use leaf_table::LeafTable;

use crate::addr::{Ipa, PhysAddr};
use crate::capability::Capability;
use crate::capability::{Action, Unfinished, Visit, Walked};
use crate::descriptor::Pte;
use crate::error::Error;
use crate::geometry::{Geometry, Level};
use crate::memory::MemoryOps;
use crate::sync::AtomicU64;
use crate::table_page::TablePage;

/// The default of [`MemoryOps::retry_limit`]: how many times in a row a
/// [`Shared`](crate::Shared) visitor may ask to retry one entry before the
/// walk gives up with [`Error::RetryLimit`].
///
/// Another walker's update (a compare-and-swap, or a break-before-make
/// with its TLB invalidation) is over in far fewer tries than this; a
/// visitor that asks for more is waiting for something that is not coming.
/// The bound turns that livelock into an error the caller sees.
pub const RETRY_LIMIT: u32 = 1 << 24;

/// Where a table hangs: what a walk needs besides the visitor.
pub(crate) struct Root<'a, M> {
    pub(crate) geometry: &'a Geometry,
    pub(crate) pgd: PhysAddr,
    pub(crate) mm: &'a M,
}

/// The error for `start..start + size` beyond `geometry`'s input size:
/// the range as given, its end saturated.
#[inline]
fn out_of_range(geometry: &Geometry, start: u64, size: u64) -> Error {
    Error::OutOfRange {
        start,
        end: start.saturating_add(size),
        ia_bits: geometry.ia_bits(),
    }
}

/// Page-aligns `addr..addr + size` and checks it against the input size.
#[inline]
pub(crate) fn page_range(geometry: &Geometry, addr: Ipa, size: u64) -> Result<(u64, u64), Error> {
    let page = geometry.granule().size();
    let out_of_range = || out_of_range(geometry, addr.get(), size);
    let end = addr.get().checked_add(size).ok_or_else(out_of_range)?;
    let start = addr.get() & !(page - 1);
    let end = end.checked_add(page - 1).ok_or_else(out_of_range)? & !(page - 1);
    if end > geometry.ia_limit() {
        return Err(out_of_range());
    }
    Ok((start, end))
}

/// A range of whole pages inside a geometry's input size, as an operation
/// that has checked its arguments knows it: its walk takes the range as it
/// is, where [`Span::Range`] aligns it and checks it again: a fault-path
/// map, checked twice, paid for it on every call.
///
/// Nothing unsafe rests on it: a walk masks every index it computes to its
/// table, so a range checked against another geometry would walk the wrong
/// entries, never outside a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CheckedRange {
    start: u64,
    end: u64,
}

impl CheckedRange {
    /// `addr..addr + size`, if it is not empty, page-aligned at both ends
    /// and inside `geometry`'s input size.
    #[inline]
    pub(crate) fn new(geometry: &Geometry, addr: Ipa, size: u64) -> Result<Self, Error> {
        let granule = geometry.granule().size();
        if size == 0 {
            return Err(Error::EmptyRange);
        }
        if !addr.is_aligned(granule) {
            return Err(Error::Misaligned {
                what: "IPA",
                value: addr.get(),
                granule,
            });
        }
        if size & (granule - 1) != 0 {
            return Err(Error::Misaligned {
                what: "size",
                value: size,
                granule,
            });
        }
        // Both ends are aligned already: what is left of `page_range` is
        // its bound, with the same error.
        match addr.get().checked_add(size) {
            Some(end) if end <= geometry.ia_limit() => Ok(CheckedRange {
                start: addr.get(),
                end,
            }),
            _ => Err(out_of_range(geometry, addr.get(), size)),
        }
    }

    /// The first address.
    #[inline(always)]
    pub(crate) fn start(self) -> Ipa {
        Ipa(self.start)
    }

    /// Bytes covered.
    #[inline(always)]
    pub(crate) fn len(self) -> u64 {
        self.end - self.start
    }
}

/// What a walk covers.
#[derive(Clone, Copy)]
pub(crate) enum Span {
    /// `addr..addr + size`, page-aligned outwards.
    Range(Ipa, u64),
    /// A range already checked.
    Checked(CheckedRange),
    /// The page holding the address: what the calls a running VM makes
    /// most (a fault, a permission change) walk, known to be one page
    /// where the walk is written, so that neither the range arithmetic and
    /// its overflow checks nor the choice between the one-page descent and
    /// the range walk is left for run time.
    Page(Ipa),
}

/// Walks `span` of the table at `root` (a range page-aligned outwards).
/// A page beyond the input size is the same [`Error::OutOfRange`] as the
/// range of that page.
///
/// With [`WalkFlags::SKIP_BBM_TLBI`], entry updates skip their own TLB
/// invalidations and the walk, if one was skipped, invalidates its whole
/// range once when it ends: finished, stopped, or unwinding from a
/// visitor's panic.
// Inlined into each operation (each has its own visitor type, so its own
// copy of this function anyway): its flags are then constants, and the
// one-page descent keeps its walker and the visitor's state in registers.
#[inline(always)]
pub(crate) fn walk_span<C, M, D, E, F>(
    root: Root<'_, M>,
    span: Span,
    flags: WalkFlags,
    visitor: F,
) -> Result<Walked<C>, E>
where
    C: Capability,
    M: MemoryOps,
    D: Pte,
    E: From<Error>,
    F: FnMut(&mut VisitCtx<'_, C, M, D>) -> Visit<C, E>,
{
    let page = root.geometry.granule().size();
    let (start, end, one) = match span {
        Span::Range(addr, size) => {
            let (start, end) = page_range(root.geometry, addr, size)?;
            // A walk of one page with no post-order visit descends
            // straight to its entry, without the range loop and the
            // recursion.
            (start, end, end - start == page)
        }
        Span::Checked(CheckedRange { start, end }) => (start, end, end - start == page),
        Span::Page(addr) => {
            let start = addr.get() & !(page - 1);
            // Both ends are page-aligned, so the page fits below the
            // limit exactly when it starts below it; and it cannot wrap
            // around (the limit is far below the top of the address space).
            if start >= root.geometry.ia_limit() {
                return Err(out_of_range(root.geometry, start, page).into());
            }
            (start, start + page, true)
        }
    };
    let one = one && !flags.contains(WalkFlags::TABLE_POST);
    let owed = Cell::new(false);
    // Only an update of a SKIP_BBM_TLBI walk sets `owed`: other walks
    // (their flags are constants here) carry no guard at all.
    let _flush = flags
        .contains(WalkFlags::SKIP_BBM_TLBI)
        .then_some(OwedFlush {
            owed: &owed,
            mm: root.mm,
            start,
            len: end - start,
        });
    let walker = |visitor| Walker {
        geometry: root.geometry,
        mm: root.mm,
        addr: start,
        end,
        flags,
        visitor,
        owed: &owed,
        retry_limit: root.mm.retry_limit(),
        _marker: PhantomData,
    };
    let level = root.geometry.start_level();
    let entries = root.geometry.root_entries();
    let run = || {
        // Each branch has a walker of its own: the range walk hands its
        // walker to a function that is not inlined (it recurses), and a
        // walker shared with it would live in memory for the one-page
        // descent too, its flags and visitor reloaded after every host
        // call instead of folding into the code.
        if one {
            walker(visitor).walk_one(root.pgd, entries)
        } else {
            walker(visitor).walk_table(root.pgd, level, entries)
        }
    };
    let flow = if C::CONCURRENT {
        root.mm.shared_walk(run)
    } else {
        run()
    };
    // `_flush` makes the invalidation the walk owes as it goes out of
    // scope: here, or while a visitor's panic unwinds.
    Ok(match flow? {
        Flow::Continue => Walked::Completed,
        Flow::Resume(r) => Walked::ResumeGuest(r),
    })
}

/// The invalidation a walk owes (`SKIP_BBM_TLBI`), made when the walk
/// ends however it ends: a visitor that panics after an update whose
/// invalidation was skipped would otherwise leave the old translation in
/// the TLB behind a panic the caller catches (the C boundary catches every
/// one), the page it named perhaps already given back.
struct OwedFlush<'a, M: MemoryOps> {
    /// Set by an entry update that skipped an invalidation it needed.
    owed: &'a Cell<bool>,
    mm: &'a M,
    start: u64,
    len: u64,
}

impl<M: MemoryOps> Drop for OwedFlush<'_, M> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.owed.get() {
            self.mm.tlb_flush_vmid_range(Ipa(self.start), self.len);
        }
    }
}

enum Flow<C: Capability> {
    Continue,
    Resume(C::Resume),
}

/// Where an entry's visits before its children leave the walk.
enum Pre<C: Capability> {
    /// The entry is done with (a leaf, skipped, or built complete); the
    /// walk goes on with the next entry, or stops with this flow.
    Done(Flow<C>),
    /// The entry links this table: descend into it.
    Descend(PhysAddr),
}

/// The page of a (possibly concatenated) table holding its entry `idx`:
/// entries of a concatenated root live in different pages, and each page
/// keeps its own reference count.
#[inline(always)]
fn holder(
    table: PhysAddr,
    idx: usize,
    entries: usize,
    granule: crate::geometry::Granule,
) -> PhysAddr {
    if entries > granule.entries() {
        PhysAddr(table.get() + (((idx >> granule.bits_per_level()) as u64) << granule.shift()))
    } else {
        table
    }
}

/// The entries `first..last` of a table at `level`, `entries` long, that a
/// walk now at `addr` covers before its `end`.
///
/// Each visit moves the walk to the next entry's first address (a descent
/// moves it to the end of the child's range, or to the walk's end), so the
/// entries covered are known up front: from the one holding `addr` up to
/// the one holding the walk's last address, or the table's last.
#[inline(always)]
pub(crate) fn covered(
    geometry: &Geometry,
    addr: u64,
    end: u64,
    level: Level,
    entries: usize,
) -> (usize, usize) {
    let shift = geometry.level_shift(level);
    let first = geometry.index(addr, level, entries);
    let count = ((end - 1) >> shift) - (addr >> shift) + 1;
    (first, entries.min(first.saturating_add(count as usize)))
}

struct Walker<'a, C, M, D, F> {
    geometry: &'a Geometry,
    mm: &'a M,
    addr: u64,
    end: u64,
    flags: WalkFlags,
    visitor: F,
    /// Set by an entry update that skipped an invalidation it needed
    /// (`SKIP_BBM_TLBI`): the walk then owes one for its range.
    owed: &'a Cell<bool>,
    /// `MemoryOps::retry_limit`, read once per walk.
    retry_limit: u32,
    _marker: PhantomData<(C, D)>,
}

/// Counts one more retry of the entry at `addr`, refusing at `limit`.
#[inline(always)]
fn count_retry(retries: &mut u32, limit: u32, addr: u64, level: Level) -> Result<(), Error> {
    *retries += 1;
    if *retries >= limit {
        return Err(Error::RetryLimit { addr, level });
    }
    crate::sync::spin_hint();
    Ok(())
}

impl<'a, C, M, D, E, F> Walker<'a, C, M, D, F>
where
    C: Capability,
    M: MemoryOps,
    D: Pte,
    E: From<Error>,
    F: FnMut(&mut VisitCtx<'_, C, M, D>) -> Visit<C, E>,
{
    fn walk_table(&mut self, table: PhysAddr, level: Level, entries: usize) -> Result<Flow<C>, E> {
        if self.addr >= self.end {
            return Ok(Flow::Continue);
        }
        // SAFETY: `table` is the root or was read from a table descriptor
        // that this walk found linked, so it is a table page the host gave
        // pgwalk, `entries` entries long. It stays allocated for this walk:
        // an exclusive walker is the only one that could free it and does so
        // only after leaving it (unmap frees a child in TABLE_POST, after its
        // walk), and a concurrent walker runs inside `shared_walk`, whose
        // grace period keeps unlinked pages alive.
        let page = unsafe { TablePage::new(self.mm, table, entries) };
        let (first, last) = covered(self.geometry, self.addr, self.end, level, entries);
        if level.is_last() {
            return self.walk_leaves(page, first, last);
        }
        let granule = self.geometry.granule();
        for (idx, ptep) in page.entries()[first..last].iter().enumerate() {
            let holder = holder(table, first + idx, entries, granule);
            if let Flow::Resume(r) = self.visit_entry(ptep, holder, level)? {
                return Ok(Flow::Resume(r));
            }
        }
        Ok(Flow::Continue)
    }

    /// [`walk_table`](Self::walk_table) for a walk of one page without
    /// post-order visits: one entry per level, so a loop down the levels
    /// instead of a range loop per table and a recursion per level.
    #[inline(always)]
    fn walk_one(&mut self, root: PhysAddr, entries: usize) -> Result<Flow<C>, E> {
        let granule = self.geometry.granule();
        // What a level costs is kept to what a kernel walker does: the
        // shift moves down by the granule's bits per level instead of being
        // computed from the level (the root's is kept in the geometry), and
        // only the root can be concatenated.
        let bits = granule.bits_per_level();
        let mut level = self.geometry.start_level();
        let mut shift = self.geometry.root_shift();
        let root_idx = ((self.addr >> shift) as usize) & (entries - 1);
        // `holder` without its test: below a root of one page the shift
        // leaves nothing of the index, and a one-page walk has no loop to
        // hoist the test out of.
        let mut counted_in = PhysAddr(
            root.get() + (((root_idx >> granule.bits_per_level()) as u64) << granule.shift()),
        );
        let mut entries = entries;
        // SAFETY: as in `walk_table`, `root` being the table's root. The
        // host may know its address without a conversion, as the kernel's
        // walker does (it starts from `pgd`).
        let mut page = unsafe { TablePage::new_root(self.mm, root, entries) };
        loop {
            let idx = ((self.addr >> shift) as usize) & (entries - 1);
            if level.is_last() {
                return self.walk_leaves(page, idx, idx + 1);
            }
            match self.pre_visit(page.entry(idx), counted_in, level, 1 << shift)? {
                Pre::Done(flow) => return Ok(flow),
                Pre::Descend(child) => {
                    counted_in = child;
                    level = level.next();
                    entries = granule.entries();
                    shift -= bits;
                    // SAFETY: as in `walk_table`: `child` was read from a
                    // table descriptor this walk found linked, a full
                    // table, and stays allocated for the walk.
                    page = unsafe { TablePage::new(self.mm, child, entries) };
                }
            }
        }
    }

    /// The last level, where every entry is a leaf (a page or an invalid
    /// entry) and nothing is descended into: the loop that runs once per
    /// page of a walk, so it does only what a leaf needs. No re-read after
    /// the visitor (a last-level entry never becomes a table), no table
    /// checks, no post-order visit.
    #[inline(always)]
    fn walk_leaves(
        &mut self,
        page: TablePage<'a>,
        first: usize,
        last: usize,
    ) -> Result<Flow<C>, E> {
        let level = Level::LAST;
        let table = page.pa();
        let size = self.geometry.entry_size(level);
        let start = self.addr & !(size - 1);
        if !self.flags.contains(WalkFlags::LEAF) {
            // Nothing here is visited: move past what the walk covers.
            self.addr = start + (last - first) as u64 * size;
            return Ok(Flow::Continue);
        }
        let mut addr = start;
        // Where the walk goes on from, stored before the loop, not copied
        // from `addr` after it: the address is then dead in the loop when
        // the visitor never reads it. Only an exit that stops early at an
        // entry overwrites it.
        self.addr = start + (last - first) as u64 * size;
        for ptep in &page.entries()[first..last] {
            let mut cur = D::from_bits(ptep.load(C::LOAD));
            let mut retries = 0;
            loop {
                // A fresh context per visit: what it holds is then known to
                // the compiler as the visitor inlines, the level above all,
                // so that what visitors derive from it folds away.
                let mut ctx = self.ctx(ptep, table, cur, level, VisitKind::Leaf);
                ctx.addr = addr;
                let answer = (self.visitor)(&mut ctx);
                match answer {
                    Ok(Action::Continue) | Ok(Action::Skip(_)) => break,
                    Err(Unfinished::Retry(_)) => {
                        if let Err(e) = count_retry(&mut retries, self.retry_limit, addr, level) {
                            self.addr = addr;
                            return Err(e.into());
                        }
                        cur = D::from_bits(ptep.load(C::LOAD));
                    }
                    Err(Unfinished::ResumeGuest(r)) => {
                        self.addr = addr;
                        return Ok(Flow::Resume(r));
                    }
                    Err(Unfinished::Stop(e)) => {
                        self.addr = addr;
                        return Err(e);
                    }
                }
            }
            addr += size;
        }
        Ok(Flow::Continue)
    }

    /// An entry's visit as a leaf, or as a table before its children
    /// (entries at `level` map `size` bytes): whether the walk descends
    /// into it.
    #[inline(always)]
    fn pre_visit(
        &mut self,
        ptep: &'a AtomicU64,
        table: PhysAddr,
        level: Level,
        size: u64,
    ) -> Result<Pre<C>, E> {
        let entry_addr = self.addr & !(size - 1);
        let mut cur = D::from_bits(ptep.load(C::LOAD));
        let mut retries = 0;
        loop {
            let is_table = cur.is_table(level);
            let wanted = if is_table {
                WalkFlags::TABLE_PRE
            } else {
                WalkFlags::LEAF
            };
            if self.flags.contains(wanted) {
                let kind = if is_table {
                    VisitKind::TablePre
                } else {
                    VisitKind::Leaf
                };
                let mut ctx = self.ctx(ptep, table, cur, level, kind);
                let answer = (self.visitor)(&mut ctx);
                match answer {
                    Ok(Action::Continue) => {
                        if ctx.complete {
                            self.addr = entry_addr + size;
                            return Ok(Pre::Done(Flow::Continue));
                        }
                        if ctx.written {
                            // The visitor may have installed a table (map
                            // needing finer pages) or replaced one with a
                            // block: follow what is there now.
                            cur = D::from_bits(ptep.load(C::LOAD));
                        }
                    }
                    Ok(Action::Skip(_)) => {
                        self.addr = entry_addr + size;
                        return Ok(Pre::Done(Flow::Continue));
                    }
                    Err(Unfinished::Retry(_)) => {
                        count_retry(&mut retries, self.retry_limit, entry_addr, level)?;
                        cur = D::from_bits(ptep.load(C::LOAD));
                        continue;
                    }
                    Err(Unfinished::ResumeGuest(r)) => return Ok(Pre::Done(Flow::Resume(r))),
                    Err(Unfinished::Stop(e)) => return Err(e),
                }
            }
            if !cur.is_table(level) {
                self.addr = entry_addr + size;
                return Ok(Pre::Done(Flow::Continue));
            }
            return Ok(Pre::Descend(cur.table_address(self.geometry.format())));
        }
    }

    #[inline(always)]
    fn visit_entry(
        &mut self,
        ptep: &'a AtomicU64,
        table: PhysAddr,
        level: Level,
    ) -> Result<Flow<C>, E> {
        let pre_addr = self.addr;
        let size = self.geometry.entry_size(level);
        let child = match self.pre_visit(ptep, table, level, size)? {
            Pre::Done(flow) => return Ok(flow),
            Pre::Descend(child) => child,
        };
        let entries = self.geometry.granule().entries();
        if let Flow::Resume(r) = self.walk_table(child, level.next(), entries)? {
            return Ok(Flow::Resume(r));
        }
        let entry_addr = pre_addr & !(size - 1);
        if self.flags.contains(WalkFlags::TABLE_POST) {
            let mut retries = 0;
            loop {
                let old = D::from_bits(ptep.load(C::LOAD));
                let mut ctx = self.ctx(ptep, table, old, level, VisitKind::TablePost);
                ctx.addr = pre_addr;
                let answer = (self.visitor)(&mut ctx);
                match answer {
                    Ok(_) => break,
                    Err(Unfinished::Retry(_)) => {
                        count_retry(&mut retries, self.retry_limit, entry_addr, level)?
                    }
                    Err(Unfinished::ResumeGuest(r)) => return Ok(Flow::Resume(r)),
                    Err(Unfinished::Stop(e)) => return Err(e),
                }
            }
        }
        Ok(Flow::Continue)
    }

    #[inline(always)]
    fn ctx<'c>(
        &self,
        ptep: &'c AtomicU64,
        table: PhysAddr,
        old: D,
        level: Level,
        kind: VisitKind,
    ) -> VisitCtx<'c, C, M, D>
    where
        'a: 'c,
    {
        VisitCtx {
            ptep,
            table,
            read: old,
            cur: old,
            addr: self.addr,
            end: self.end,
            level,
            kind,
            mm: self.mm,
            geometry: self.geometry,
            flags: self.flags,
            written: false,
            complete: false,
            owed: self.owed,
            _cap: PhantomData,
        }
    }
}

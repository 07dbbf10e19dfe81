//! The hyp entry protocol: how one entry of a live EL2 table changes under
//! its only (exclusive) walker, and the visit context's updates built on it.
//!
//! The hypervisor runs on these tables while they change, so the
//! architecture's break-before-make rule applies as at stage 2: an entry
//! whose output address, memory type, shareability or kind changes is
//! invalidated, its TLB entries flushed, and only then written. There is
//! no other walker, so plain (release) stores do, and no locked marker.
//!
//! Reference counts follow Linux's hyp rule: a table page holds 1 plus its
//! valid entries. A count is taken before a valid entry becomes visible
//! and dropped after it is gone and invalidated.

use core::sync::atomic::Ordering;

use super::HypTlb;
use crate::addr::Va;
use crate::capability::Exclusive;
use crate::descriptor::HypDescriptor;
use crate::memory::MemoryOps;
use crate::sync::AtomicU64;
use crate::walk::VisitCtx;

/// Puts `old` back if dropped before being disarmed: a host callback that
/// unwinds between the break and the make leaves the entry as it was, with
/// the count it still holds.
struct Restore<'c> {
    cell: &'c AtomicU64,
    old: HypDescriptor,
}

impl Drop for Restore<'_> {
    #[cold]
    fn drop(&mut self) {
        self.cell.store(self.old.bits(), Ordering::Release);
    }
}

impl<M: MemoryOps + HypTlb> VisitCtx<'_, Exclusive, M, HypDescriptor> {
    /// The walk's current address, as an EL2 virtual address (what
    /// [`addr`](Self::addr) returns, typed for the hyp regime).
    #[inline(always)]
    pub fn va(&self) -> Va {
        Va(self.addr)
    }

    /// First address of the range this entry maps.
    #[inline(always)]
    pub fn entry_va(&self) -> Va {
        Va(self.entry_addr().get())
    }

    /// Writes `new` over this leaf entry: break-before-make where the
    /// architecture requires it (clear, [`HypTlb::flush_va`], write), a TLB
    /// flush after a change that takes write or execute permission away,
    /// and the table page's reference count kept (1 plus its valid
    /// entries).
    ///
    /// # Panics
    ///
    /// If the entry or `new` is a table descriptor (the walker owns the
    /// table structure), if `new` is a valid leaf at a level that cannot
    /// hold one or is both writable and executable (W^X, which no hyp table
    /// built by pgwalk ever holds), or if `new` is invalid but not zero
    /// (hyp tables keep no software state in invalid entries). These are
    /// bugs in the visitor, like an index out of bounds.
    #[inline(always)]
    pub fn set(&mut self, new: HypDescriptor) {
        assert!(
            !self.cur.is_table(self.level) && !new.is_table(self.level),
            "visitors may change leaves only; table entries belong to the walker"
        );
        if new.is_valid() {
            assert!(
                self.geometry.leaf_allowed(self.level),
                "no block mapping is allowed at level {}",
                self.level
            );
            assert!(
                !(new.writable() && new.executable()),
                "W^X: a hyp leaf may not be both writable and executable"
            );
        } else {
            assert!(
                new == HypDescriptor::INVALID,
                "an invalid hyp entry is zero: hyp tables keep no software state in one"
            );
        }
        self.replace(new);
    }

    /// [`set`](Self::set) without its leaf-only checks, for the operations
    /// that own the table structure: linking and clearing table entries.
    /// Freeing a subtree this unlinks is the caller's job.
    #[inline(always)]
    pub(crate) fn replace(&mut self, new: HypDescriptor) {
        let old = self.cur;
        if old == new {
            return;
        }
        let cell = self.ptep;
        if old.needs_break_to(new) || (old.is_valid() && !new.is_valid()) {
            cell.store(0, Ordering::Release);
            let restore = Restore { cell, old };
            self.invalidate(old);
            core::mem::forget(restore);
            if new.is_valid() {
                // `old` was valid (counted) and so is `new`: the count moves.
                cell.store(new.bits(), Ordering::Release);
            } else {
                // SAFETY: the valid `old`, which held a reference to this
                // table page, is gone and invalidated; the page stays
                // linked, so this is not its last reference. `cell` is the
                // entry, in that page.
                unsafe { crate::stage2::pte::put_entry_page(self.mm, self.table, cell) };
            }
        } else {
            if !old.is_counted() && new.is_counted() {
                // SAFETY: the reference is for `new`, a valid entry stored
                // in this table page just below, at `cell`.
                unsafe { crate::stage2::pte::get_entry_page(self.mm, self.table, cell) };
            }
            cell.store(new.bits(), Ordering::Release);
            if old.removes_permissions(new) {
                self.mm.flush_va(self.entry_va(), self.level);
            }
        }
        self.written = true;
        self.cur = new;
    }

    /// Flushes what the TLB may hold for `old` at this entry.
    #[inline(always)]
    fn invalidate(&self, old: HypDescriptor) {
        if old.is_table(self.level) {
            self.mm.flush_va_walks(self.entry_va(), self.level);
        } else if old.is_valid() {
            self.mm.flush_va(self.entry_va(), self.level);
        }
    }
}

//! The host's side of an entry update, the kernel's way: which TLB
//! invalidation a break issues, and which cache maintenance a new leaf gets.

use crate::addr::{Ipa, PhysAddr};
use crate::descriptor::Descriptor;
use crate::geometry::{Geometry, Level};
use crate::memory::MemoryOps;
use crate::stage2::pte::EntrySite;
use crate::visit::{VisitCtx, WalkFlags};
use crate::Capability;

/// One entry's place, as the kernel's `stage2_try_break_pte` and map walker
/// see it.
pub(super) struct KvmSite<'a, M> {
    mm: &'a M,
    table: PhysAddr,
    entry: &'a crate::sync::AtomicU64,
    geometry: &'a Geometry,
    /// The walk's address when it reached the entry: the kernel's
    /// `ctx->addr`, which is where it invalidates (not the entry's start).
    addr: u64,
    level: Level,
    flags: WalkFlags,
    owed: &'a core::cell::Cell<bool>,
}

impl<'a, M: MemoryOps> KvmSite<'a, M> {
    pub(super) fn of<C: Capability>(ctx: &VisitCtx<'a, C, M>) -> Self {
        KvmSite {
            mm: ctx.mm,
            table: ctx.table,
            entry: ctx.ptep,
            geometry: ctx.geometry,
            addr: ctx.addr,
            level: ctx.level,
            flags: ctx.flags,
            owed: ctx.owed,
        }
    }
}

impl<M: MemoryOps> EntrySite for KvmSite<'_, M> {
    #[inline(always)]
    unsafe fn get(&self) {
        // SAFETY: the reference is for a counted entry the caller stores in
        // this table page (`EntrySite::get`'s contract), which holds `entry`.
        unsafe { crate::stage2::pte::get_entry_page(self.mm, self.table, self.entry) };
    }

    #[inline(always)]
    unsafe fn put(&self) {
        // SAFETY: the caller gives back a reference it owns to a page that
        // stays linked (`EntrySite::put`'s contract), which holds `entry`.
        unsafe { crate::stage2::pte::put_entry_page(self.mm, self.table, self.entry) };
    }

    /// `stage2_try_break_pte`'s invalidation: a table's whole range (the
    /// kernel's `kvm_tlb_flush_vmid_range` from the entry's start), a valid
    /// leaf by IPA at the walk's address and the entry's level, nothing for
    /// an invalid entry.
    #[inline(always)]
    fn invalidate(&self, old: Descriptor) {
        if self.flags.contains(WalkFlags::SKIP_BBM_TLBI) {
            if old.is_valid() {
                self.owed.set(true);
            }
            return;
        }
        let size = self.geometry.entry_size(self.level);
        if old.is_table(self.level) {
            self.mm
                .tlb_flush_vmid_range(Ipa(self.addr & !(size - 1)), size);
        } else if old.is_valid() {
            self.mm.tlb_flush_vmid_ipa(Ipa(self.addr), self.level);
        }
    }

    /// The map walker's cache maintenance before a new leaf: clean the
    /// data cache for a cacheable leaf, invalidate the instruction cache for
    /// an executable one, whatever the entry held before.
    #[inline(always)]
    fn maintain_caches(&self, _old: Descriptor, new: Descriptor) {
        if self.flags.contains(WalkFlags::SKIP_CMO) || !new.is_leaf(self.level) {
            return;
        }
        let pa = new.output_address(self.geometry.format());
        let size = self.geometry.entry_size(self.level);
        if new.is_cacheable() {
            self.mm.dcache_clean_inval_poc(pa, size);
        }
        if new.is_executable() {
            self.mm.icache_inval_pou(pa, size);
        }
    }
}

//! Attribute changes on valid leaves: write-protect, access flag, relaxing
//! permissions. Allowed beside other walkers: each update is one
//! compare-and-swap, and a lost race is the capability's business.

use super::{check_range, Handle};
use crate::action::{Action, Walked};
use crate::addr::Ipa;
use crate::capability::{Concurrent, Shared};
use crate::descriptor::{Descriptor, Exec};
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::walk::WalkFlags;

/// A TLB invalidation owed after restricting permissions, for the table
/// it came from.
///
/// Stale TLB entries keep granting the old permissions until invalidated.
/// The token borrows the table that issued it and invalidates *that*
/// table's range: [`flush`](Self::flush) does it now, and dropping the token
/// does it too, so that a token forgotten in a variable still flushes.
/// [`ignore`](Self::ignore) is the one way out, for a caller that
/// invalidates more widely itself (a whole-VMID flush after a batch).
///
/// ```
/// # #[cfg(feature = "std")] {
/// use pgwalk::{host::HeapMemory, Geometry, Ipa, PhysAddr, Prot, Stage2, WalkFlags};
///
/// let mut table = Stage2::with_geometry(Geometry::for_ia_bits(40, 40)?, HeapMemory::new(64))?;
/// table.exclusive().map(Ipa(0), 0x1000, PhysAddr(0x8000_0000), Prot::RW, &mut (), WalkFlags::empty())?;
/// let before = table.mm().stats().tlbi_range;
/// let shared = table.shared();
/// shared.wrprotect(Ipa(0), 0x1000)?.flush();
/// assert_eq!(table.mm().stats().tlbi_range, before + 1);
/// # }
/// # Ok::<(), pgwalk::Error>(())
/// ```
#[must_use = "stale TLB entries keep the old permissions until flushed"]
pub struct TlbFlush<'t, M: MemoryOps> {
    mm: &'t M,
    ipa: Ipa,
    size: u64,
}

impl<M: MemoryOps> TlbFlush<'_, M> {
    /// The range whose TLB entries are stale.
    pub fn range(&self) -> (Ipa, u64) {
        (self.ipa, self.size)
    }

    /// Invalidates the range, through the host operations of the table
    /// that issued the token.
    pub fn flush(self) {
        // `Drop` does the work.
    }

    /// Drops the obligation without invalidating: the caller invalidates
    /// more widely itself.
    pub fn ignore(self) {
        core::mem::forget(self);
    }
}

impl<M: MemoryOps> Drop for TlbFlush<'_, M> {
    fn drop(&mut self) {
        self.mm.tlb_flush_vmid_range(self.ipa, self.size);
    }
}

impl<M: MemoryOps> core::fmt::Debug for TlbFlush<'_, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlbFlush")
            .field("ipa", &self.ipa)
            .field("size", &self.size)
            .finish()
    }
}

impl<'t, C: Concurrent, M: MemoryOps> Handle<'t, C, M> {
    /// Applies `update` to every valid leaf in the range; `seen` gets each
    /// leaf as it was. Returns the walk's end and whether anything changed.
    ///
    /// An `update` that removes permissions leaves the TLB stale: its
    /// caller hands out a [`TlbFlush`] for the range.
    pub(crate) fn update_leaves(
        &self,
        ipa: Ipa,
        size: u64,
        flags: WalkFlags,
        update: impl Fn(Descriptor) -> Descriptor,
        mut seen: impl FnMut(Descriptor, Level),
    ) -> Result<(Walked<C>, bool), Error> {
        let mut changed = false;
        let flags = flags & (WalkFlags::SKIP_CMO | WalkFlags::SKIP_BBM_TLBI) | WalkFlags::LEAF;
        let walked = self.walk_internal::<Error, _>(
            ipa,
            size,
            flags,
            // Inlined into the walker's leaf loop: it runs once per page.
            #[inline(always)]
            |ctx| {
                let old = ctx.old();
                if old.is_locked() {
                    return Err(crate::action::Conflict::Raced.into());
                }
                if !old.is_valid() {
                    return C::on_absent();
                }
                seen(old, ctx.level());
                let new = update(old);
                if new != old {
                    ctx.try_set_owing_tlbi(new)?;
                    changed = true;
                }
                Ok(Action::Continue)
            },
        )?;
        Ok((walked, changed))
    }

    /// Relaxes permissions on the leaf at `ipa`, then invalidates its TLB
    /// entry so the faulting vCPU sees the change.
    pub(crate) fn relax(&self, ipa: Ipa, prot: Prot) -> Result<(Walked<C>, bool), Error> {
        if prot.intersects(!(Prot::RW | Prot::X)) {
            return Err(Error::InvalidProt("relax_perms adds R, W and X only"));
        }
        let page = self.geometry().granule().size();
        let mut level = None;
        let (walked, changed) = self.update_leaves(
            Ipa(ipa.get() & !(page - 1)),
            page,
            WalkFlags::empty(),
            |d| relaxed(d, prot),
            |_, l| level = Some(l),
        )?;
        if let Some(level) = level {
            self.mm().tlb_flush_vmid_ipa(ipa, level);
        }
        Ok((walked, changed))
    }
}

/// `d` with the permissions in `prot` added.
fn relaxed(d: Descriptor, prot: Prot) -> Descriptor {
    let mut d = d;
    if prot.contains(Prot::R) {
        d = d.with_readable(true);
    }
    if prot.contains(Prot::W) {
        d = d.with_writable(true);
    }
    let px = prot.contains(Prot::PX) || matches!(d.exec(), Exec::Both | Exec::El1Only);
    let ux = prot.contains(Prot::UX) || matches!(d.exec(), Exec::Both | Exec::El0Only);
    d.with_exec(match (px, ux) {
        (true, true) => Exec::Both,
        (true, false) => Exec::El1Only,
        (false, true) => Exec::El0Only,
        (false, false) => Exec::Never,
    })
}

impl<'t, M: MemoryOps> Handle<'t, Shared, M> {
    /// Removes write permission from every leaf in `size` bytes at `ipa`
    /// (`kvm_pgtable_stage2_wrprotect`). The TLB still holds writable
    /// entries: the returned [`TlbFlush`] invalidates them, at once or when
    /// dropped. On an error, the leaves before the failure may be
    /// write-protected, and their range is invalidated before returning.
    pub fn wrprotect(&self, ipa: Ipa, size: u64) -> Result<TlbFlush<'t, M>, Error> {
        check_range(self.geometry(), ipa, size)?;
        let flush = TlbFlush {
            mm: self.mm(),
            ipa,
            size,
        };
        let (Walked::Completed, _) = self.update_leaves(
            ipa,
            size,
            WalkFlags::empty(),
            |d| d.with_writable(false),
            |_, _| {},
        )?;
        Ok(flush)
    }

    /// Sets the access flag on the leaf at `ipa` (`kvm_pgtable_stage2_mkyoung`).
    /// Returns whether a valid leaf was there.
    pub fn mkyoung(&self, ipa: Ipa) -> Result<bool, Error> {
        let page = self.geometry().granule().size();
        let mut found = false;
        let (Walked::Completed, _) = self.update_leaves(
            Ipa(ipa.get() & !(page - 1)),
            page,
            WalkFlags::empty(),
            |d| d.with_young(true),
            |_, _| found = true,
        )?;
        Ok(found)
    }

    /// Whether any leaf in `size` bytes at `ipa` has its access flag set;
    /// with `mkold`, clears them (`kvm_pgtable_stage2_test_clear_young`).
    /// No TLB invalidation: a stale young entry only delays the next aging.
    pub fn test_clear_young(&self, ipa: Ipa, size: u64, mkold: bool) -> Result<bool, Error> {
        check_range(self.geometry(), ipa, size)?;
        let mut young = false;
        let (Walked::Completed, _) = self.update_leaves(
            ipa,
            size,
            WalkFlags::empty(),
            |d| if mkold { d.with_young(false) } else { d },
            |d, _| young |= d.young(),
        )?;
        Ok(young)
    }

    /// Adds the permissions in `prot` (R, W, X only) to the leaf at `ipa`
    /// and invalidates its TLB entry (`kvm_pgtable_stage2_relax_perms`).
    pub fn relax_perms(&self, ipa: Ipa, prot: Prot) -> Result<(), Error> {
        let (Walked::Completed, _) = self.relax(ipa, prot)?;
        Ok(())
    }
}

//! Write protection (`kvm_pgtable_stage2_wrprotect`), as dirty logging
//! starts a round.

use super::args::check_range;
use super::{Handle, TlbFlush};
use crate::addr::Ipa;
use crate::capability::{Exclusive, Shared, Walked};
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::walk::Span;

impl<'t, M: MemoryOps> Handle<'t, Shared, M> {
    /// Removes write permission from every leaf in `size` bytes at `ipa`
    /// (`kvm_pgtable_stage2_wrprotect`), beside other walkers: one
    /// compare-and-swap per leaf. The TLB still holds writable entries: the
    /// returned [`TlbFlush`] invalidates them, at once or when dropped. On
    /// an error, the leaves before the failure may be write-protected, and
    /// their range is invalidated before returning.
    pub fn wrprotect(&self, ipa: Ipa, size: u64) -> Result<TlbFlush<'t, M>, Error> {
        let range = check_range(self.geometry(), ipa, size)?;
        let flush = TlbFlush::new(self.mm(), ipa, size);
        let (Walked::Completed, _) =
            self.update_leaves(Span::Checked(range), |d| d.with_writable(false), |_, _| {})?;
        Ok(flush)
    }
}

impl<'t, M: MemoryOps> Handle<'t, Exclusive, M> {
    /// The shared handle's `wrprotect`, for the holder of the
    /// write lock, as the kernel's dirty logging runs it: a plain store per
    /// leaf instead of a compare-and-swap, which a walker that is alone
    /// does not need. The same result, the same [`TlbFlush`].
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use pgwalk::{geometry::Geometry, host::HeapMemory, Ipa, PhysAddr, Prot, Stage2};
    ///
    /// let mut table = Stage2::with_geometry(Geometry::for_ia_bits(40, 40)?, HeapMemory::new(64))?;
    /// let mut h = table.exclusive();
    /// h.map(Ipa(0), 4 << 12, PhysAddr(0x8000_0000), Prot::RW, &mut ())?;
    /// h.wrprotect(Ipa(0), 4 << 12)?.flush();
    /// assert!(!h.get_leaf(Ipa(0x3000))?.0.writable());
    /// # }
    /// # Ok::<(), pgwalk::Error>(())
    /// ```
    pub fn wrprotect(&mut self, ipa: Ipa, size: u64) -> Result<TlbFlush<'t, M>, Error> {
        let range = check_range(self.geometry(), ipa, size)?;
        let flush = TlbFlush::new(self.mm(), ipa, size);
        self.update_leaves_alone(range, |d| d.with_writable(false), |_| {})?;
        Ok(flush)
    }
}

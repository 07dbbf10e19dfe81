//! The host's identity map, faulted in lazily (pKVM's `host_stage2_idmap`).
//!
//! On a host fault, find the largest range around the address that can be
//! mapped by one leaf (inside the memory region, not overlapping any entry
//! already there), then map it. Both steps must happen under one hold of
//! the write lock, or another CPU could map part of the range in between.
//! [`IdmapRange`] borrows the exclusive handle, so it cannot be used after
//! the lock is dropped; when the map runs out of memory it stays valid for
//! a second try once the page pool is refilled.

use super::Handle;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::Exclusive;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::prot::Prot;

/// A range of host physical memory and how to map it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First address.
    pub start: PhysAddr,
    /// One past the last address.
    pub end: PhysAddr,
    /// Protection for identity mappings inside it.
    pub prot: Prot,
}

impl MemoryRegion {
    /// Whether `pa` lies inside the region.
    pub fn contains(&self, pa: PhysAddr) -> bool {
        self.start <= pa && pa < self.end
    }
}

/// The range an identity-map fault may map, found under the exclusive
/// handle it borrows.
#[must_use = "the range was found to be mapped: map it"]
pub struct IdmapRange<'h, 't, M: MemoryOps> {
    handle: &'h mut Handle<'t, Exclusive, M>,
    start: u64,
    end: u64,
    prot: Prot,
}

impl<'h, 't, M: MemoryOps> IdmapRange<'h, 't, M> {
    /// The range: first address and size.
    pub fn range(&self) -> (Ipa, u64) {
        (Ipa(self.start), self.end - self.start)
    }

    /// The protection it will be mapped with.
    pub fn prot(&self) -> Prot {
        self.prot
    }

    /// Maps the range as an identity map. On [`Error::NoMemory`] the range
    /// is still valid (the lock is still held): refill the pool and call
    /// again.
    pub fn map(&mut self, pool: &mut M::PagePool) -> Result<(), Error> {
        let size = self.end - self.start;
        self.handle
            .map(Ipa(self.start), size, PhysAddr(self.start), self.prot, pool)
    }
}

impl<'t, M: MemoryOps> Handle<'t, Exclusive, M> {
    /// Finds the largest range around `addr` that one leaf can identity-map
    /// within the region containing `addr`, without overlapping an existing
    /// entry. Errors if `addr` is already mapped ([`Error::AlreadyMapped`]:
    /// another CPU fixed it), annotated as someone else's
    /// ([`Error::Owned`]), or in no region ([`Error::NoRegion`]).
    pub fn idmap_range<'h>(
        &'h mut self,
        ipa: Ipa,
        regions: &[MemoryRegion],
    ) -> Result<IdmapRange<'h, 't, M>, Error> {
        let addr = ipa.get();
        let region = regions
            .iter()
            .find(|r| r.contains(PhysAddr(addr)))
            .ok_or(Error::NoRegion { addr })?;
        let (leaf, level) = self.get_leaf(ipa)?;
        if leaf.is_valid() {
            return Err(Error::AlreadyMapped { addr });
        }
        if let Some(owner) = leaf.owner() {
            return Err(Error::Owned { addr, owner });
        }
        // The empty entry at `level` bounds the range; inside it, take the
        // largest leaf size whose aligned block around `addr` fits the region.
        let geometry = *self.geometry();
        let mut level = level;
        loop {
            if geometry.leaf_allowed(level) {
                let size = geometry.entry_size(level);
                let start = addr & !(size - 1);
                if start >= region.start.get() && start + size <= region.end.get() {
                    return Ok(IdmapRange {
                        handle: self,
                        start,
                        end: start + size,
                        prot: region.prot,
                    });
                }
            }
            if level.is_last() {
                // Even a page does not fit: the region is not page-aligned.
                return Err(Error::Misaligned {
                    what: "memory region",
                    value: region.start.get(),
                    granule: geometry.granule().size(),
                });
            }
            level = level.next();
        }
    }
}

//! How an operation maps or unmaps, where the default is not wanted.
//!
//! The defaults are what a hypervisor almost always wants: the largest
//! blocks that fit, cache maintenance for new cacheable or executable
//! leaves, and a TLB invalidation per entry that needs one. Each option
//! turns one of those off, for a caller that does the work its own way.

use crate::walk::WalkFlags;

/// Options for `map`, on the exclusive and the fault path, and for
/// `create_unlinked`. `MapOptions::default()` is [`MapOptions::new`].
///
/// ```
/// use pgwalk::MapOptions;
///
/// // A map that skips cache maintenance (FEAT_S2FWB) and uses pages only.
/// let opts = MapOptions::new().skip_cmo().pages_only();
/// assert!(opts.is_pages_only());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapOptions {
    flags: WalkFlags,
    pages_only: bool,
}

impl MapOptions {
    /// The defaults: blocks where they fit, cache maintenance, per-entry
    /// TLB invalidation.
    pub const fn new() -> MapOptions {
        MapOptions {
            flags: WalkFlags::empty(),
            pages_only: false,
        }
    }

    /// No cache maintenance for new leaves: the caller has cleaned the
    /// memory, or the hardware has FEAT_S2FWB and coherent instruction
    /// caches (`KVM_PGTABLE_WALK_SKIP_CMO`).
    #[must_use]
    pub const fn skip_cmo(self) -> MapOptions {
        MapOptions {
            flags: self.flags.union(WalkFlags::SKIP_CMO),
            ..self
        }
    }

    /// One TLB invalidation of the whole range when the walk ends, instead
    /// of one per entry that needs it (`KVM_PGTABLE_WALK_SKIP_BBM_TLBI`).
    /// A table the map replaces with a block is still invalidated at once,
    /// before it is freed.
    #[must_use]
    pub const fn batch_tlbi(self) -> MapOptions {
        MapOptions {
            flags: self.flags.union(WalkFlags::SKIP_BBM_TLBI),
            ..self
        }
    }

    /// Pages only, never blocks: what the kernel's `force_pte_cb` asks for
    /// (memory that dirty logging tracks page by page, say).
    #[must_use]
    pub const fn pages_only(self) -> MapOptions {
        MapOptions {
            pages_only: true,
            ..self
        }
    }

    /// Whether [`pages_only`](Self::pages_only) is set.
    pub const fn is_pages_only(&self) -> bool {
        self.pages_only
    }

    /// The maintenance flags the walk runs with.
    pub(crate) const fn walk_flags(&self) -> WalkFlags {
        self.flags
    }
}

/// Options for `unmap`. `UnmapOptions::default()` is
/// [`UnmapOptions::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnmapOptions {
    flags: WalkFlags,
}

impl UnmapOptions {
    /// The defaults: a data-cache clean of cacheable memory as it is
    /// unmapped, a TLB invalidation per leaf.
    pub const fn new() -> UnmapOptions {
        UnmapOptions {
            flags: WalkFlags::empty(),
        }
    }

    /// No data-cache clean of what is unmapped.
    #[must_use]
    pub const fn skip_cmo(self) -> UnmapOptions {
        UnmapOptions {
            flags: self.flags.union(WalkFlags::SKIP_CMO),
        }
    }

    /// One TLB invalidation of the whole range when the walk ends, instead
    /// of one per leaf. A table the unmap empties is still invalidated at
    /// once, before it is freed, and a leaf whose data cache is cleaned
    /// (cacheable memory, without [`skip_cmo`](Self::skip_cmo)) before its
    /// clean: batching pays with `skip_cmo` (FEAT_S2FWB).
    #[must_use]
    pub const fn batch_tlbi(self) -> UnmapOptions {
        UnmapOptions {
            flags: self.flags.union(WalkFlags::SKIP_BBM_TLBI),
        }
    }

    /// The maintenance flags the walk runs with.
    pub(crate) const fn walk_flags(&self) -> WalkFlags {
        self.flags
    }
}

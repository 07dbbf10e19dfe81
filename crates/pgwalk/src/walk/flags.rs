//! What a walk visits, and what it leaves out.

use bitflags::bitflags;

bitflags! {
    /// Which entries a walk visits, and which maintenance its updates skip.
    ///
    /// Bit values are those of `enum kvm_pgtable_walk_flags`. `SHARED` and
    /// `HANDLE_FAULT` are absent: in Rust they are the walker's
    /// [`Capability`](crate::Capability).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct WalkFlags: u32 {
        /// Visit leaves: blocks, pages and invalid entries.
        const LEAF = 1 << 0;
        /// Visit table entries before their children.
        const TABLE_PRE = 1 << 1;
        /// Visit table entries after their children.
        const TABLE_POST = 1 << 2;
        /// Entry updates skip their own TLB invalidations; the walk, if it
        /// changed anything, invalidates its whole range once when it ends,
        /// however it ends (a visitor's panic unwinding through it
        /// included).
        const SKIP_BBM_TLBI = 1 << 5;
        /// Install leaves without cache maintenance: the caller has done it,
        /// or the hardware has FEAT_S2FWB and coherent instruction caches.
        const SKIP_CMO = 1 << 6;
    }
}

/// Which visit a visitor is being called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisitKind {
    /// A block, page or invalid entry.
    Leaf,
    /// A table entry, before its children.
    TablePre,
    /// A table entry, after its children.
    TablePost,
}

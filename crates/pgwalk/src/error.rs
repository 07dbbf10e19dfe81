//! Errors a page-table operation reports.

use crate::geometry::Level;

/// Why a page-table operation failed. Every variant leaves the table as it
/// was before the call, except where the variant says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host's `zalloc_page` (or `zalloc_pages_exact`) returned nothing.
    /// A map that needed several new tables may have installed some of
    /// them (empty, or covering what it mapped before the failure): the
    /// table stays consistent and a retry after topping up the cache
    /// completes the job.
    #[error("out of memory: the host could not provide a zeroed table page")]
    NoMemory,
    /// The range does not fit in the table's input address space.
    #[error("range {start:#x}..{end:#x} is outside the {ia_bits}-bit input address space")]
    OutOfRange {
        /// First address of the range.
        start: u64,
        /// One past the last address of the range (saturated on overflow).
        end: u64,
        /// Input address size of the table.
        ia_bits: u8,
    },
    /// An address or size is not a multiple of the page granule.
    #[error("{what} {value:#x} is not aligned to the {granule:#x}-byte granule")]
    Misaligned {
        /// Which argument ("IPA", "physical address", "size").
        what: &'static str,
        /// The argument.
        value: u64,
        /// The granule size it must be a multiple of.
        granule: u64,
    },
    /// A size of zero: almost always a caller's arithmetic gone wrong.
    #[error("the range is empty")]
    EmptyRange,
    /// An output address above the physical address size in VTCR_EL2.PS.
    #[error("output address {pa:#x} does not fit in the {oa_bits}-bit physical address size")]
    OutputTooLarge {
        /// The highest output address the call would have mapped.
        pa: u64,
        /// Output address size of the table.
        oa_bits: u8,
    },
    /// The VTCR_EL2 value (or the geometry asked for) is not one this
    /// library or the architecture supports.
    #[error("unsupported geometry: {0}")]
    Geometry(&'static str),
    /// A protection that cannot be expressed in a stage-2 descriptor.
    #[error("invalid protection: {0}")]
    InvalidProt(&'static str),
    /// The range starts or ends inside a block mapping; unmapping or
    /// annotating it would change memory outside the range.
    #[error("range boundary {addr:#x} lies inside a level-{level} block; split the block first")]
    SplitsBlock {
        /// The boundary address.
        addr: u64,
        /// Level of the block that straddles it.
        level: Level,
    },
    /// An owner id that does not fit in an invalid descriptor's owner field.
    #[error("owner id {id} is out of range (at most {max})")]
    InvalidOwner {
        /// The id asked for.
        id: u32,
        /// The largest id the descriptor can hold.
        max: u32,
    },
    /// The address is already mapped (identity-map fault on a mapped page:
    /// another CPU got there first; or a hyp table's `map` over a different
    /// mapping).
    #[error("{addr:#x} is already mapped")]
    AlreadyMapped {
        /// The address looked up.
        addr: u64,
    },
    /// The address is annotated as owned by someone else.
    #[error("{addr:#x} is owned by id {owner}")]
    Owned {
        /// The address looked up.
        addr: u64,
        /// The owner recorded in the annotation.
        owner: u32,
    },
    /// A [`Shared`](crate::Shared) visitor asked to retry one entry
    /// [`MemoryOps::retry_limit`](crate::MemoryOps::retry_limit) times in a
    /// row (or a lookup met an entry locked that long): it is waiting for a
    /// change no other walker is making. The walk stopped at that entry;
    /// entries before it were visited.
    #[error("a visitor asked to retry the level-{level} entry at {addr:#x} too many times")]
    RetryLimit {
        /// First address of the entry.
        addr: u64,
        /// Its level.
        level: Level,
    },
    /// A kernel-compatible map was asked for post-order visits
    /// ([`KvmMapOptions::table_post`](crate::kvm::KvmMapOptions::table_post)),
    /// which the kernel's map walker refuses (`-EINVAL`): the walk stopped
    /// after the children of this table entry; what it mapped before stays
    /// mapped.
    #[error(
        "the map walker refuses the post-order visit of the level-{level} table entry at {addr:#x}"
    )]
    UnsupportedVisit {
        /// First address of the table entry.
        addr: u64,
        /// Its level.
        level: Level,
    },
    /// The address lies in none of the memory regions given.
    #[error("{addr:#x} is in no memory region")]
    NoRegion {
        /// The address looked up.
        addr: u64,
    },
}

//! arm64 stage-2 page tables for hypervisors, with the walker's capability
//! as a type.
//!
//! pgwalk builds, changes and walks VMSAv8-64 stage-2 translation tables,
//! after the arm64 KVM page-table code. Where the C walker multiplexes
//! everything through `int` return codes whose meaning depends on run-time
//! flags, pgwalk makes the walker's capability — [`Exclusive`], [`Shared`],
//! [`HandlesFault`] — a type parameter, so a visitor cannot return, and a
//! caller cannot receive, an outcome the capability does not allow.
//!
//! # A table in five lines
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use pgwalk::{host::HeapMemory, Ipa, PhysAddr, Prot, Stage2, WalkFlags};
//!
//! // 40-bit IPA, 4 KiB granule, start at level 1: a two-page root.
//! let vtcr = 0x8002_3558;
//! let mut table = Stage2::new(vtcr, HeapMemory::new(256)).unwrap();
//! let mut h = table.exclusive();
//! // 4 MiB of RAM at IPA 1 GiB: two 2 MiB blocks.
//! h.map(Ipa(0x4000_0000), 4 << 20, PhysAddr(0x8000_0000), Prot::RWX, &mut (), WalkFlags::empty())?;
//! let (leaf, level) = h.get_leaf(Ipa(0x4020_1000))?;
//! assert_eq!((leaf.output_address(h.geometry().granule()).get(), level.get()), (0x8020_0000, 2));
//! # }
//! # Ok::<(), pgwalk::Error>(())
//! ```
//!
//! # How it fits together
//!
//! - [`Capability`] and its three markers say what a walker may do;
//!   [`Action`], [`Unfinished`] and [`Walked`] are what visitors and walks
//!   report, typed by capability.
//! - [`Descriptor`], [`Prot`], [`Geometry`]: the arm64 format.
//! - [`MemoryOps`]: what the host provides (pages, reference counts, cache
//!   and TLB maintenance, grace periods).
//! - The walk engine ([`VisitCtx`], [`WalkFlags`]) knows nothing about
//!   stage 2; each stage-2 operation is a visitor of its own, reached
//!   through a [`Handle`] of the capability it needs.
//! - [`FaultOutcome`]: what a fault handler did, never an integer.
//!
//! # Features
//!
//! - `std` (default): [`host::HeapMemory`], a ready host for tests and
//!   user-space VMMs. Without it the crate is `#![no_std]` and allocates
//!   nothing of its own.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod action;
mod addr;
mod capability;
mod descriptor;
mod error;
mod fault;
mod geometry;
mod host_pages;
mod lock;
mod memory;
mod prot;
mod stage2;
mod table_page;
mod walk;

#[cfg(feature = "std")]
pub mod host;

pub use action::{
    Action, Conflict, ResumeReason, RetryEntry, SkipEntry, Unfinished, Visit, Walked,
};
pub use addr::{Ipa, PhysAddr};
pub use capability::{Capability, Concurrent, Exclusive, HandlesFault, Shared};
pub use descriptor::{Descriptor, Exec, LeafAttrs, MemAttr, Shareability, MAX_OWNER_ID};
pub use error::Error;
pub use fault::FaultOutcome;
pub use geometry::{Geometry, Granule, Level, MAX_ROOT_PAGES};
pub use host_pages::{
    HostFault, HostPages, IntoWritable, MayWrite, MustWrite, NotAsked, PageAnswer, PageRequest,
    ReadOnly, WriteIntent,
};
pub use lock::{LockedStage2, SpinStage2};
pub use memory::MemoryOps;
pub use prot::Prot;
pub use stage2::{free_unlinked, Handle, IdmapRange, Mapping, MemoryRegion, Stage2, TlbFlush};
pub use walk::{VisitCtx, VisitKind, WalkFlags, RETRY_LIMIT};

/// The single-entry protocol on its own, for the loom model
/// (`tests/loom.rs`) only: built with `RUSTFLAGS="--cfg loom"`, never part
/// of the API.
#[cfg(loom)]
#[doc(hidden)]
pub use walk::entry as loom_entry;

/// The README's Rust examples, compiled and run as doctests so they cannot
/// rot.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

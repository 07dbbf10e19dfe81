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
//! use pgwalk::{host::HeapMemory, Ipa, PhysAddr, Prot, Stage2};
//!
//! // 40-bit IPA, 4 KiB granule, start at level 1: a two-page root.
//! let vtcr = 0x8002_3558;
//! let mut table = Stage2::new(vtcr, HeapMemory::new(256))?;
//! let mut h = table.exclusive();
//! // 4 MiB of RAM at IPA 1 GiB: two 2 MiB blocks.
//! h.map(Ipa(0x4000_0000), 4 << 20, PhysAddr(0x8000_0000), Prot::RWX, &mut ())?;
//! let (leaf, level) = h.get_leaf(Ipa(0x4020_1000))?;
//! assert_eq!((leaf.output_address(h.geometry().format()).get(), level.get()), (0x8020_0000, 2));
//! # }
//! # Ok::<(), pgwalk::Error>(())
//! ```
//!
//! # Where things are
//!
//! At the root, what every user needs: the table ([`Stage2`]) and its
//! capability-typed [`Handle`]s, the host's side ([`MemoryOps`]), the
//! capability markers, [`Prot`], [`Error`], the address types ([`Ipa`],
//! [`PhysAddr`], and [`Va`] for EL2 tables), the lock
//! wrappers ([`LockedStage2`], [`SpinStage2`]), the options of `map` and
//! `unmap`, and the [`TlbFlush`] token.
//!
//! Then one module per audience:
//!
//! - [`visit`]: for visitor authors. What a visitor sees ([`visit::VisitCtx`])
//!   and answers ([`visit::Action`], [`visit::Unfinished`]), and what a walk
//!   returns ([`visit::Walked`]), all typed by capability.
//! - [`descriptor`]: the stage-2 descriptor format, bit by bit, and the
//!   policy that turns a [`Prot`] into it.
//! - [`geometry`]: granule, levels, input and output sizes, the root, as
//!   VTCR_EL2 describes them.
//! - [`fault`]: the fault path's typed outcome ([`fault::FaultOutcome`],
//!   never an integer) and the host-page requests it makes.
//! - [`idmap`]: the host's identity map, faulted in lazily under one lock
//!   hold.
//! - [`hyp`]: the hypervisor's own EL2 stage-1 tables ([`hyp::HypTable`],
//!   Linux's `kvm_pgtable_hyp_*`), on the same walk engine, with an
//!   exclusive-only handle.
//! - [`kvm`]: Linux 6.12's stage-2 operations with the kernel's exact
//!   semantics (whole-block unmap, `force_pte`, owner annotations, the
//!   kernel's TLB and cache maintenance), for code that must behave as
//!   `kvm_pgtable_stage2_*` does; `pgwalk-sys` builds its C API on it.
//! - [`check`]: the table's structural invariants, checked from any host.
//! - `host` (feature `std`): a ready heap-backed host for tests and
//!   user-space VMMs.
//!
//! # Features
//!
//! - `std` (default): `host::HeapMemory`, a ready host for tests and
//!   user-space VMMs. Without it the crate is `#![no_std]` and allocates
//!   nothing of its own.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod addr;
mod capability;
mod error;
mod lock;
mod memory;
mod prot;
mod stage2;
mod sync;
mod table_page;
mod walk;

pub mod descriptor;
pub mod fault;
pub mod geometry;
pub mod hyp;
pub mod kvm;

// Not under loom: `HeapMemory`'s pages are `core` atomics, and a walker
// built on loom's must never be handed them (see `sync`).
#[cfg(all(feature = "std", not(loom)))]
pub mod host;

pub use addr::{Ipa, PhysAddr, Va};
pub use capability::{Capability, Concurrent, Exclusive, HandlesFault, Shared};
pub use error::Error;
pub use lock::{LockedStage2, SpinStage2};
pub use memory::MemoryOps;
pub use prot::Prot;
pub use stage2::{free_unlinked, Handle, MapOptions, Mapping, Stage2, TlbFlush, UnmapOptions};

/// For visitor authors: what a visitor sees and answers, and what a walk
/// returns, all typed by the walker's capability.
///
/// ```
/// # #[cfg(feature = "std")] {
/// use pgwalk::visit::{Action, VisitCtx, WalkFlags};
/// use pgwalk::{geometry::Geometry, host::HeapMemory, Ipa, PhysAddr, Prot, Shared, Stage2};
///
/// let mut table = Stage2::with_geometry(Geometry::for_ia_bits(40, 40)?, HeapMemory::new(64))?;
/// table.exclusive().map(Ipa(0), 0x2000, PhysAddr(0x8000_0000), Prot::RW, &mut ())?;
///
/// // A shared visitor that write-protects by compare-and-swap. `try_set`
/// // returns a `Conflict` when another walker got there first, and `?`
/// // turns it into "retry this entry", the only answer that makes sense
/// // beside other walkers (under `HandlesFault`, it would resume the guest).
/// let wrprotect = |ctx: &mut VisitCtx<'_, Shared, HeapMemory>| {
///     let old = ctx.old();
///     if old.is_valid() {
///         ctx.try_set(old.with_writable(false))?;
///     }
///     Ok(Action::Continue)
/// };
/// let mut shared = table.shared();
/// assert!(shared.walk(Ipa(0), 0x2000, WalkFlags::LEAF, wrprotect)?.is_completed());
/// assert!(!shared.get_leaf(Ipa(0x1000))?.0.writable());
/// # }
/// # Ok::<(), pgwalk::Error>(())
/// ```
pub mod visit {
    pub use crate::capability::{
        Action, Conflict, ResumeReason, RetryEntry, SkipEntry, Unfinished, Visit, Walked,
    };
    pub use crate::walk::{LeafTable, VisitCtx, VisitKind, WalkFlags, RETRY_LIMIT};
}

/// The host's identity map (pKVM's `host_stage2_idmap`): find the largest
/// range around a faulting address that one leaf can map, and map it, under
/// one hold of the write lock.
pub mod idmap {
    pub use crate::stage2::{IdmapRange, MemoryRegion};
}

/// Checking a table against the invariants the walker relies on, from any
/// host and without allocating: [`Handle::check`] returns a
/// [`TableReport`](check::TableReport) of what the table holds, or the
/// [`BrokenInvariant`](check::BrokenInvariant) it found first.
pub mod check {
    pub use crate::stage2::{BrokenInvariant, TableReport};
}

/// The README's Rust examples, compiled and run as doctests so they cannot
/// rot.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

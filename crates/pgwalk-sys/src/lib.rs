//! The C ABI of pgwalk: a static or shared library (`libpgwalk.a`,
//! `libpgwalk.so`) and the header `include/pgwalk.h`, generated from this
//! crate by cbindgen.
//!
//! Two APIs over the one Rust walker, with no page-table logic of their own:
//!
//! - **The kernel-compatible API** (`kvm_pgtable_*`, `struct kvm_pgtable`,
//!   `struct kvm_pgtable_mm_ops`, ...), with the names, field orders,
//!   constant values, signatures and behaviour of Linux 6.12 LTS's
//!   `kvm_pgtable.h` and `pgtable.c` (checked against the kernel's own code
//!   by `kernel-parity/`). A legacy visitor's `int` is read as the kernel's
//!   `kvm_pgtable_walk_continue` reads it, by turning it into the core's
//!   typed action for the walker's capability; the operations are the
//!   core's kernel-compatible ones (`pgwalk::kvm`).
//! - **The typed API** (`pgw_*`): a visitor's return value is only ever an
//!   error of its own, and what it does to the walk is a `pgw_action` in an
//!   out-field, refused with `-PGW_EPROTO` where the walker's capability does
//!   not allow it. Fault-path operations answer with a `pgw_fault_outcome`,
//!   whose values are all non-zero.
//! - **EL2 stage-1 tables** (`kvm_pgtable_hyp_*`, Linux 6.12's signatures),
//!   over `pgwalk::hyp`, with the EL2 TLB maintenance registered once by
//!   `pgw_hyp_set_tlb_ops` (see `hyp.rs`).
//!
//! # The boundary
//!
//! - Every argument from C is checked before the table is touched: NULL
//!   pointers, ranges, prot and flag bits, enum values. Integers from C are
//!   never reinterpreted as Rust enums; they are matched or converted with
//!   `TryFrom`. Errors are negated Linux errno values (`PGW_E*`).
//! - A `struct kvm_pgtable` is the caller's memory. Each call builds a
//!   `pgwalk::Stage2` over it (`Stage2::from_raw_parts`) inside a
//!   `ManuallyDrop`, so that only `kvm_pgtable_stage2_destroy` frees the
//!   table.
//! - Panics never unwind into C. In the hosted build (feature `std`, the
//!   default) every exported function runs under `std::panic::catch_unwind`
//!   and returns `-PGW_ENOTRECOVERABLE` (or its neutral value, for functions
//!   that return none) after one. The freestanding build (`no_std`, for
//!   `aarch64-unknown-none`) cannot unwind: its panic handler hands the
//!   location and message to the hook the C side registered
//!   (`pgw_set_panic_hook`, see `panic.rs`) and never returns. Panics come
//!   from host callbacks that break their contract, which are checked
//!   where it is cheap (`phys_to_virt` returning NULL or misaligned memory,
//!   allocations not aligned to their size).
//! - TLB invalidation reaches the hypervisor through the callbacks in
//!   `struct kvm_s2_mmu`, which initialisation requires.
//!
//! # Regenerating the header
//!
//! `include/pgwalk.h` is checked in; a unit test fails when it differs from
//! what cbindgen makes of this crate. After changing the API:
//!
//! ```sh
//! PGWALK_BLESS=1 cargo test -p pgwalk-sys header
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod abi;
mod bound;
mod compat;
mod convert;
mod errno;
mod formats;
mod host;
mod hyp;
mod leaf_runs;
mod needs;
mod panic;
mod reentry;
mod typed;
mod view_cache;
mod vtcr_cache;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod header;

pub use abi::*;
pub use bound::*;
pub use compat::*;
pub use errno::*;
pub use formats::PGW_MAX_MM_OPS;
pub use hyp::*;
pub use leaf_runs::pgw_walk_leaf_runs;
pub use panic::*;
pub use reentry::{pgw_reentry_slot_fn, pgw_set_reentry_slot};
pub use typed::*;

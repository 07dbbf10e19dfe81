//! A ready host for tests, benchmarks and user-space VMMs (feature `std`).
//!
//! [`HeapMemory`] hands out table pages from one heap allocation whose
//! "physical" addresses start at a base of the caller's choosing (so tables
//! can be built for another machine's memory map, as the QEMU conformance
//! test does). It keeps reference counts, counts TLB and cache maintenance,
//! detects leaks and double frees, and gives shared walkers a real grace
//! period of its own (a read side of a few plain stores, see `grace`). [`check_invariants`] checks a table
//! built on it, and [`check_hyp_invariants`] an EL2 table.

mod check;
mod grace;
mod heap;
mod hyp_check;
mod pool;

pub use crate::stage2::TableReport;
pub use check::check_invariants;
pub use heap::{HeapMemory, Stats};
pub use hyp_check::check_hyp_invariants;

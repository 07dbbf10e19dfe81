//! The fault path's answers: what handling a guest's stage-2 fault came to
//! ([`FaultOutcome`], and [`TableOutcome`] for the operations that only
//! touch the table, which can never say "emulate"), and asking the host for the page behind a faulting
//! guest frame ([`HostPages`], [`PageRequest`], [`PageAnswer`]).
//!
//! The fault path's operations themselves are methods of
//! [`Handle<HandlesFault, _>`](crate::Handle): `map`, `relax_perms`,
//! `mkyoung` and [`fault_in`](crate::Handle::fault_in).

mod host_pages;
mod outcome;

pub use host_pages::{
    HostFault, HostPages, IntoWritable, MayWrite, MustWrite, NotAsked, PageAnswer, PageRequest,
    ReadOnly, WriteIntent,
};
pub use outcome::{FaultOutcome, TableOutcome};

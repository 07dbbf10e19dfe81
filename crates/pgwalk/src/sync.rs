//! The atomic that table entries are made of.
//!
//! Everything that touches an entry names it through here, so that the
//! loom model (`tests/loom.rs`, built with `--cfg loom`) can swap in loom's
//! atomic and run the real walker and the real visitors under its
//! scheduler.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::AtomicU64;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU64;

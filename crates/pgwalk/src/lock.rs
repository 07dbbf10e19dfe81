//! Tying a handle's capability to the lock really held.
//!
//! A table behind a reader/writer lock hands out an [`Exclusive`] handle
//! only through a write guard, and [`Shared`] or [`HandlesFault`] handles
//! only through a read guard: the guard dereferences to the [`Stage2`], and
//! the handle borrows the guard, so it cannot outlive it.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use pgwalk::{geometry::Geometry, host::HeapMemory, Ipa, PhysAddr, Prot, SpinStage2, Stage2};
//!
//! let geometry = Geometry::for_ia_bits(40, 40).unwrap();
//! let table = SpinStage2::new(Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap());
//! {
//!     let mut guard = table.write();
//!     let mut h = guard.exclusive();
//!     h.map(Ipa(0x8000_0000), 0x1000, PhysAddr(0x4000_0000), Prot::RW, &mut ()).unwrap();
//! }
//! let guard = table.read();
//! let flush = guard.shared().wrprotect(Ipa(0x8000_0000), 0x1000).unwrap();
//! flush.flush();
//! # }
//! ```
//!
//! [`Exclusive`]: crate::Exclusive
//! [`Shared`]: crate::Shared
//! [`HandlesFault`]: crate::HandlesFault

use crate::stage2::Stage2;

/// A [`Stage2`] behind the host's reader/writer lock (any
/// [`lock_api::RawRwLock`]).
pub type LockedStage2<R, M> = lock_api::RwLock<R, Stage2<M>>;

/// A [`Stage2`] behind a spinning reader/writer lock, for `no_std` hosts
/// without a lock of their own.
pub type SpinStage2<M> = LockedStage2<spin::RwLock<()>, M>;

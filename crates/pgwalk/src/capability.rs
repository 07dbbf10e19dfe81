//! What a walker is allowed to do, as a type.
//!
//! The C walker learns at run time, from `KVM_PGTABLE_WALK_SHARED` and
//! `KVM_PGTABLE_WALK_HANDLE_FAULT`, whether `-EAGAIN` means "retry", "resume
//! the guest" or nothing at all. Here the walker's capability is a type
//! parameter, and each capability names, through associated types, which
//! [`Action`](crate::Action) and [`Unfinished`](crate::Unfinished) variants
//! exist for it. Where a variant has no meaning its payload is
//! [`Infallible`], so the variant cannot be constructed:
//!
//! | capability       | lock held | entry updates            | a visitor may report |
//! |------------------|-----------|--------------------------|----------------------|
//! | [`Exclusive`]    | write     | plain stores             | continue, stop |
//! | [`Shared`]       | read      | compare-and-swap, BBM    | continue, skip, retry, stop |
//! | [`HandlesFault`] | read      | compare-and-swap, BBM    | continue, resume the guest, stop |
//!
//! The trait is sealed: a capability outside this crate could claim rights
//! the walker cannot honour.

use core::convert::Infallible;
use core::sync::atomic::Ordering;

use crate::action::{Conflict, ResumeReason, RetryEntry, SkipEntry};

mod sealed {
    pub trait Sealed {}
}

/// A walker capability. Sealed: implemented by [`Exclusive`], [`Shared`] and
/// [`HandlesFault`] only.
pub trait Capability: sealed::Sealed + Sized + Send + Sync + 'static {
    /// Payload of [`Action::Skip`](crate::Action::Skip); [`Infallible`] where
    /// skipping an entry means nothing.
    type Skip: core::fmt::Debug;
    /// Payload of [`Unfinished::Retry`](crate::Unfinished::Retry);
    /// [`Infallible`] where retrying an entry means nothing.
    type Retry: core::fmt::Debug;
    /// Payload of [`Unfinished::ResumeGuest`](crate::Unfinished::ResumeGuest)
    /// and [`Walked::ResumeGuest`](crate::Walked::ResumeGuest); [`Infallible`]
    /// outside a fault handler.
    type Resume: core::fmt::Debug + Copy;

    /// A short name for traces and messages.
    const NAME: &'static str;

    /// Whether other walkers may run at the same time, so entries are
    /// updated with compare-and-swap and unlinked pages are freed late.
    #[doc(hidden)]
    const CONCURRENT: bool;

    /// The ordering for reading entries. Concurrent walkers follow table
    /// pointers published by others, so they need acquire.
    #[doc(hidden)]
    const LOAD: Ordering;
}

/// Capabilities under which other walkers run concurrently: entries are
/// changed only by compare-and-swap, and a lost race is a [`Conflict`] that
/// `?` turns into what this capability does about it.
pub trait Concurrent: Capability {
    /// What a visitor reports when an update lost a race.
    #[doc(hidden)]
    fn on_conflict<E>(conflict: Conflict) -> crate::Unfinished<Self, E>;

    /// What a visitor that updates valid leaves does on an invalid one:
    /// nothing under [`Shared`], resume the guest under [`HandlesFault`]
    /// (the fault it was handling is not what the table says any more).
    #[doc(hidden)]
    fn on_absent<E>() -> crate::Visit<Self, E>;
}

/// Sole owner of the table (a write lock, or `&mut`). Plain stores; no race
/// to report, so a visitor can only continue or stop.
#[derive(Debug)]
pub enum Exclusive {}

/// One of several walkers under a read lock (dirty logging, aging,
/// attribute changes). Updates race, so a visitor may ask to retry an entry,
/// or to skip it (and the subtree below it).
#[derive(Debug)]
pub enum Shared {}

/// A shared walker on a vCPU's fault path. A lost race is not retried:
/// the guest is resumed and faults again if it still needs to, so a visitor
/// may ask to resume the guest, with the reason.
#[derive(Debug)]
pub enum HandlesFault {}

impl sealed::Sealed for Exclusive {}
impl sealed::Sealed for Shared {}
impl sealed::Sealed for HandlesFault {}

impl Capability for Exclusive {
    type Skip = Infallible;
    type Retry = Infallible;
    type Resume = Infallible;
    const NAME: &'static str = "exclusive";
    const CONCURRENT: bool = false;
    const LOAD: Ordering = Ordering::Relaxed;
}

impl Capability for Shared {
    type Skip = SkipEntry;
    type Retry = RetryEntry;
    type Resume = Infallible;
    const NAME: &'static str = "shared";
    const CONCURRENT: bool = true;
    const LOAD: Ordering = Ordering::Acquire;
}

impl Capability for HandlesFault {
    type Skip = Infallible;
    type Retry = Infallible;
    type Resume = ResumeReason;
    const NAME: &'static str = "fault handler";
    const CONCURRENT: bool = true;
    const LOAD: Ordering = Ordering::Acquire;
}

impl Concurrent for Shared {
    #[inline(always)]
    fn on_conflict<E>(conflict: Conflict) -> crate::Unfinished<Self, E> {
        crate::Unfinished::Retry(RetryEntry(conflict))
    }

    #[inline(always)]
    fn on_absent<E>() -> crate::Visit<Self, E> {
        Ok(crate::Action::Continue)
    }
}

impl Concurrent for HandlesFault {
    #[inline(always)]
    fn on_conflict<E>(conflict: Conflict) -> crate::Unfinished<Self, E> {
        crate::Unfinished::ResumeGuest(match conflict {
            Conflict::Raced => ResumeReason::Raced,
            Conflict::Gone => ResumeReason::Gone,
        })
    }

    #[inline(always)]
    fn on_absent<E>() -> crate::Visit<Self, E> {
        Err(crate::Unfinished::ResumeGuest(ResumeReason::Gone))
    }
}

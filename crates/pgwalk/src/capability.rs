//! The capability model: what a walker is allowed to do, as a type, and
//! what its visitors and walks may report.
//!
//! The C walker learns at run time, from `KVM_PGTABLE_WALK_SHARED` and
//! `KVM_PGTABLE_WALK_HANDLE_FAULT`, whether `-EAGAIN` means "retry", "resume
//! the guest" or nothing at all. Here the walker's capability is a type
//! parameter, and each capability names, through associated types, which
//! [`Action`] and [`Unfinished`] variants
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
//!
//! A visitor returns [`Visit<C, E>`]: `Ok` when the visit finished (and how
//! the walk proceeds), `Err` when it did not (retry the entry, resume the
//! guest, or stop with an error). The split exists so that `?` works: a
//! concurrent update that lost a race returns `Err(Conflict)`, and `?`
//! converts it into [`Unfinished::Retry`] under [`Shared`] and into
//! [`Unfinished::ResumeGuest`] under [`HandlesFault`]. Under [`Exclusive`]
//! there is no conversion, because there is no race.
//!
//! "Keep going" is [`Action::Continue`], a variant like any other: there is
//! no zero that also means "success" or "fixed".

use core::convert::Infallible;
use core::fmt;
use core::sync::atomic::Ordering;

use crate::error::Error;

mod sealed {
    pub trait Sealed {}
}

/// A walker capability. Sealed: implemented by [`Exclusive`], [`Shared`] and
/// [`HandlesFault`] only.
pub trait Capability: sealed::Sealed + Sized + Send + Sync + 'static {
    /// Payload of [`Action::Skip`]; [`Infallible`] where
    /// skipping an entry means nothing.
    type Skip: core::fmt::Debug;
    /// Payload of [`Unfinished::Retry`];
    /// [`Infallible`] where retrying an entry means nothing.
    type Retry: core::fmt::Debug;
    /// Payload of [`Unfinished::ResumeGuest`]
    /// and [`Walked::ResumeGuest`]; [`Infallible`]
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
    fn on_conflict<E>(conflict: Conflict) -> Unfinished<Self, E>;

    /// What a visitor that updates valid leaves does on an invalid one:
    /// nothing under [`Shared`], resume the guest under [`HandlesFault`]
    /// (the fault it was handling is not what the table says any more).
    #[doc(hidden)]
    fn on_absent<E>() -> Visit<Self, E>;
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
    fn on_conflict<E>(conflict: Conflict) -> Unfinished<Self, E> {
        Unfinished::Retry(RetryEntry(conflict))
    }

    #[inline(always)]
    fn on_absent<E>() -> Visit<Self, E> {
        Ok(Action::Continue)
    }
}

impl Concurrent for HandlesFault {
    #[inline(always)]
    fn on_conflict<E>(conflict: Conflict) -> Unfinished<Self, E> {
        Unfinished::ResumeGuest(match conflict {
            Conflict::Raced => ResumeReason::Raced,
            Conflict::Gone => ResumeReason::Gone,
        })
    }

    #[inline(always)]
    fn on_absent<E>() -> Visit<Self, E> {
        Err(Unfinished::ResumeGuest(ResumeReason::Gone))
    }
}

/// How the walk proceeds after a visit that finished.
#[must_use = "the walker must be told how to proceed"]
pub enum Action<C: Capability> {
    /// Go on: descend into the entry if it is a table, else move to the next.
    Continue,
    /// Do not descend below this entry; move to the next one. Only under
    /// [`Shared`] (`-ENOENT` in the C table).
    Skip(C::Skip),
}

/// Why a visit did not finish.
#[must_use = "the walker must be told why the visit did not finish"]
pub enum Unfinished<C: Capability, E = Error> {
    /// Visit the same entry again, after re-reading it. Only under
    /// [`Shared`] (`-EAGAIN` in the C table).
    Retry(C::Retry),
    /// Stop the walk and let the vCPU return to the guest; if it still needs
    /// the mapping it faults again. Only under [`HandlesFault`].
    ResumeGuest(C::Resume),
    /// Stop the walk and return this error.
    Stop(E),
}

/// What a visitor returns.
pub type Visit<C, E = Error> = Result<Action<C>, Unfinished<C, E>>;

/// Payload of [`Action::Skip`], the one value that exists under [`Shared`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkipEntry;

/// Payload of [`Unfinished::Retry`] under [`Shared`]: the conflict that made
/// the visitor ask for another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryEntry(pub Conflict);

/// Why a concurrent update did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The entry changed between the walker's read and the update
    /// (compare-and-swap lost), or another walker holds it locked for
    /// break-before-make.
    #[error("another walker changed the entry first")]
    Raced,
    /// The entry the update relies on is not a valid mapping (any more).
    #[error("the entry is not a valid mapping")]
    Gone,
}

/// Why a fault handler resumed the guest without finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResumeReason {
    /// Another walker changed the entry first; the guest faults again if it
    /// still needs to.
    Raced,
    /// The entry the fault handler meant to update is not a valid mapping.
    Gone,
    /// The entry already holds what the fault handler would install.
    Spurious,
}

impl ResumeReason {
    /// A stable name for traces.
    pub const fn name(self) -> &'static str {
        match self {
            ResumeReason::Raced => "raced",
            ResumeReason::Gone => "gone",
            ResumeReason::Spurious => "spurious",
        }
    }
}

impl Action<Shared> {
    /// [`Action::Skip`]: do not descend below this entry.
    pub const SKIP: Self = Action::Skip(SkipEntry);
}

impl<C: Concurrent, E> From<Conflict> for Unfinished<C, E> {
    #[inline(always)]
    fn from(conflict: Conflict) -> Self {
        C::on_conflict(conflict)
    }
}

impl<C: Capability, E: From<Error>> From<Error> for Unfinished<C, E> {
    #[inline(always)]
    fn from(err: Error) -> Self {
        Unfinished::Stop(E::from(err))
    }
}

/// How a walk ended, when it did not end with an error.
#[must_use = "a fault handler's walk may have resumed the guest instead of finishing"]
pub enum Walked<C: Capability> {
    /// Every entry in the range was visited.
    Completed,
    /// A visitor asked to resume the guest; the walk stopped there. Only under
    /// [`HandlesFault`].
    ResumeGuest(C::Resume),
}

impl<C: Capability> Walked<C> {
    /// Whether the walk visited the whole range.
    pub fn is_completed(&self) -> bool {
        matches!(self, Walked::Completed)
    }
}

impl<C: Capability> fmt::Debug for Action<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Continue => f.write_str("Continue"),
            Action::Skip(s) => f.debug_tuple("Skip").field(s).finish(),
        }
    }
}

impl<C: Capability, E: fmt::Debug> fmt::Debug for Unfinished<C, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfinished::Retry(r) => f.debug_tuple("Retry").field(r).finish(),
            Unfinished::ResumeGuest(r) => f.debug_tuple("ResumeGuest").field(r).finish(),
            Unfinished::Stop(e) => f.debug_tuple("Stop").field(e).finish(),
        }
    }
}

impl<C: Capability> fmt::Debug for Walked<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Walked::Completed => f.write_str("Completed"),
            Walked::ResumeGuest(r) => f.debug_tuple("ResumeGuest").field(r).finish(),
        }
    }
}

impl<C: Capability> PartialEq for Walked<C>
where
    C::Resume: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Walked::Completed, Walked::Completed) => true,
            (Walked::ResumeGuest(a), Walked::ResumeGuest(b)) => a == b,
            _ => false,
        }
    }
}

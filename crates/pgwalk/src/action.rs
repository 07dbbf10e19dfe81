//! What a visitor tells the walker, typed by the walker's capability.
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

use core::fmt;

use crate::capability::{Capability, Concurrent};
#[allow(unused_imports)] // used by intra-doc links
use crate::capability::{Exclusive, HandlesFault, Shared};
use crate::error::Error;

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

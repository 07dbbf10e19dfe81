//! Asking the host for the page behind a faulting guest frame (after
//! Linux's `__kvm_follow_pfn`).
//!
//! The C interface grew a row of booleans and out-pointers (`write_fault`,
//! `async`, `writable`, `map_writable`...) whose combinations mean
//! different things. Here the request is one value, the answer is an enum
//! whose "needs I/O" case is distinct from a failure, and whether the page
//! is writable exists in the answer only when the request allowed a
//! writable mapping: asking read-only and then reading `writable` does not
//! compile.

use core::fmt;

use super::FaultOutcome;
use crate::addr::{Ipa, PhysAddr};
use crate::capability::HandlesFault;
use crate::error::Error;
use crate::memory::MemoryOps;
use crate::prot::Prot;
use crate::stage2::Handle;

mod sealed {
    pub trait Sealed {}
}

/// Whether a request allows a writable mapping, as a type.
pub trait WriteIntent: sealed::Sealed + Copy + fmt::Debug + PartialEq {
    /// What the answer says about writability: [`NotAsked`] when the
    /// request was read-only, `bool` when it allowed writing.
    type Writable: Copy + fmt::Debug + PartialEq + IntoWritable;
    /// Whether the host must make the page writable now (a write fault
    /// breaks copy-on-write here).
    #[doc(hidden)]
    const WRITE_FAULT: bool;

    /// The answer's writability, built by the host from whether its page is
    /// writable: dropped for a read-only request.
    fn writable(page_is_writable: bool) -> Self::Writable;
}

/// A read fault that will be mapped read-only whatever the host could
/// give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnly {}

/// A read fault that may be mapped writable if the host's page is
/// writable already (saving the write fault that would follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MayWrite {}

/// A write fault: the page must be writable (the host breaks copy-on-write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MustWrite {}

impl sealed::Sealed for ReadOnly {}
impl sealed::Sealed for MayWrite {}
impl sealed::Sealed for MustWrite {}

impl WriteIntent for ReadOnly {
    type Writable = NotAsked;
    const WRITE_FAULT: bool = false;
    fn writable(_: bool) -> NotAsked {
        NotAsked
    }
}

impl WriteIntent for MayWrite {
    type Writable = bool;
    const WRITE_FAULT: bool = false;
    fn writable(page_is_writable: bool) -> bool {
        page_is_writable
    }
}

impl WriteIntent for MustWrite {
    type Writable = bool;
    const WRITE_FAULT: bool = true;
    fn writable(page_is_writable: bool) -> bool {
        page_is_writable
    }
}

/// The answer's writability for a read-only request: there is none to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAsked;

/// What a fault handler asks the host for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<W: WriteIntent> {
    /// The faulting guest address (page-aligned by the host as it needs).
    pub ipa: Ipa,
    /// Whether the host may start I/O and answer [`PageAnswer::NeedsIo`]
    /// instead of waiting (an asynchronous page fault).
    pub allow_async: bool,
    _intent: core::marker::PhantomData<W>,
}

impl<W: WriteIntent> PageRequest<W> {
    /// A request for the page behind `ipa`.
    pub const fn new(ipa: Ipa, allow_async: bool) -> Self {
        PageRequest {
            ipa,
            allow_async,
            _intent: core::marker::PhantomData,
        }
    }

    /// Whether the host must hand out a writable page (a write fault).
    pub const fn write_fault(&self) -> bool {
        W::WRITE_FAULT
    }
}

/// Why the host has no page to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostFault {
    /// The address is backed by no memory: an MMIO access to emulate.
    NoMemory,
    /// The page is poisoned (memory failure): the guest gets an abort.
    Poisoned,
    /// A write to memory the host maps read-only for this guest.
    ReadOnlyMemory,
}

/// The host's answer to a [`PageRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the answer says whether there is a page to map"]
pub enum PageAnswer<W: WriteIntent> {
    /// The page is resident at `pa`.
    Present {
        /// Host physical address of the page.
        pa: PhysAddr,
        /// Whether it may be mapped writable; exists only when asked.
        writable: W::Writable,
    },
    /// The host started I/O for the page; the vCPU waits (or runs
    /// something else) and faults again later. Not a failure.
    NeedsIo,
    /// There is no page to give.
    Fault(HostFault),
}

/// The host's side: resolves guest frames to host pages.
pub trait HostPages {
    /// Finds (and pins, if the host pins) the page behind `request.ipa`.
    fn page<W: WriteIntent>(&self, request: PageRequest<W>) -> PageAnswer<W>;
}

impl<M: MemoryOps> Handle<'_, HandlesFault, M> {
    /// Handles a translation fault at `ipa` end to end: asks `host` for the
    /// page, then maps it with `prot` — writable only if the request's
    /// intent and the host's answer both allow it.
    ///
    /// [`PageAnswer::NeedsIo`] becomes [`FaultOutcome::Retry`] (the vCPU
    /// faults again once the I/O is done), a missing page becomes
    /// [`FaultOutcome::Emulate`], other host faults are returned as errors
    /// for the caller to inject.
    pub fn fault_in<W: WriteIntent, H: HostPages>(
        &self,
        host: &H,
        request: PageRequest<W>,
        prot: Prot,
        pool: &mut M::PagePool,
    ) -> Result<Result<FaultOutcome, HostFault>, Error> {
        let page = self.geometry().granule().size();
        let ipa = Ipa(request.ipa.get() & !(page - 1));
        let (pa, writable) = match host.page(request) {
            PageAnswer::Present { pa, writable } => (pa, writable.into_writable()),
            PageAnswer::NeedsIo => return Ok(Ok(FaultOutcome::Retry)),
            PageAnswer::Fault(HostFault::NoMemory) => return Ok(Ok(FaultOutcome::Emulate)),
            PageAnswer::Fault(f) => return Ok(Err(f)),
        };
        let prot = if writable { prot } else { prot - Prot::W };
        self.map(ipa, page, pa, prot, pool)
            .map(|o| Ok(FaultOutcome::from(o)))
    }
}

/// How an answer's writability reads as a plain yes or no: a read-only
/// request's [`NotAsked`] is always no.
pub trait IntoWritable {
    /// Whether the page may be mapped writable.
    fn into_writable(self) -> bool;
}

impl IntoWritable for NotAsked {
    fn into_writable(self) -> bool {
        false
    }
}

impl IntoWritable for bool {
    fn into_writable(self) -> bool {
        self
    }
}

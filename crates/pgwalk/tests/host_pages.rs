//! The host-page request: one request value, "needs I/O" distinct from a
//! failure, and writability only where the request allowed it.

use std::cell::Cell;

use pgwalk::fault::{
    FaultOutcome, HostFault, HostPages, MayWrite, MustWrite, PageAnswer, PageRequest, ReadOnly,
    WriteIntent,
};
use pgwalk::geometry::Geometry;
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, PhysAddr, Prot, Stage2};

/// A host whose pages are all writable except where told otherwise.
struct Host {
    answer: Cell<Option<PageAnswer<MustWrite>>>,
    writable: bool,
    asked_write: Cell<bool>,
}

impl HostPages for Host {
    fn page<W: WriteIntent>(&self, request: PageRequest<W>) -> PageAnswer<W> {
        self.asked_write.set(request.write_fault());
        match self.answer.get() {
            Some(PageAnswer::NeedsIo) => PageAnswer::NeedsIo,
            Some(PageAnswer::Fault(f)) => PageAnswer::Fault(f),
            _ => PageAnswer::Present {
                pa: PhysAddr(0x9000_0000 + (request.ipa.get() & !0xfff)),
                writable: W::writable(self.writable),
            },
        }
    }
}

fn host(writable: bool) -> Host {
    Host {
        answer: Cell::new(None),
        writable,
        asked_write: Cell::new(false),
    }
}

fn table() -> Stage2<HeapMemory> {
    Stage2::with_geometry(Geometry::for_ia_bits(40, 40).unwrap(), HeapMemory::new(64)).unwrap()
}

#[test]
fn read_only_request_maps_read_only_even_if_the_page_is_writable() {
    let t = table();
    let f = t.fault_handler();
    let r = f.fault_in(
        &host(true),
        PageRequest::<ReadOnly>::new(Ipa(0x1234), false),
        Prot::RW,
        &mut (),
    );
    assert_eq!(r.unwrap(), Ok(FaultOutcome::Fixed));
    let (d, _) = f.get_leaf(Ipa(0x1000)).unwrap();
    assert!(d.readable() && !d.writable());
}

#[test]
fn may_write_maps_writable_when_the_host_says_so() {
    let t = table();
    let f = t.fault_handler();
    let h = host(true);
    assert_eq!(
        f.fault_in(
            &h,
            PageRequest::<MayWrite>::new(Ipa(0x1000), false),
            Prot::RW,
            &mut ()
        )
        .unwrap(),
        Ok(FaultOutcome::Fixed)
    );
    assert!(
        !h.asked_write.get(),
        "a read fault does not ask the host to break COW"
    );
    assert!(f.get_leaf(Ipa(0x1000)).unwrap().0.writable());
    let h = host(false);
    let r = f.fault_in(
        &h,
        PageRequest::<MayWrite>::new(Ipa(0x2000), false),
        Prot::RW,
        &mut (),
    );
    assert_eq!(r.unwrap(), Ok(FaultOutcome::Fixed));
    assert!(!f.get_leaf(Ipa(0x2000)).unwrap().0.writable());
}

#[test]
fn write_fault_asks_for_a_writable_page() {
    let t = table();
    let f = t.fault_handler();
    let h = host(true);
    let r = f.fault_in(
        &h,
        PageRequest::<MustWrite>::new(Ipa(0x3000), false),
        Prot::RW,
        &mut (),
    );
    assert_eq!(r.unwrap(), Ok(FaultOutcome::Fixed));
    assert!(h.asked_write.get());
    assert!(f.get_leaf(Ipa(0x3000)).unwrap().0.writable());
}

#[test]
fn needs_io_is_a_retry_not_a_failure_and_maps_nothing() {
    let t = table();
    let f = t.fault_handler();
    let h = host(true);
    h.answer.set(Some(PageAnswer::NeedsIo));
    let r = f.fault_in(
        &h,
        PageRequest::<MustWrite>::new(Ipa(0x4000), true),
        Prot::RW,
        &mut (),
    );
    assert_eq!(r.unwrap(), Ok(FaultOutcome::Retry));
    assert!(!f.get_leaf(Ipa(0x4000)).unwrap().0.is_valid());
}

#[test]
fn host_faults_become_emulation_or_errors() {
    let t = table();
    let f = t.fault_handler();
    let h = host(true);
    h.answer.set(Some(PageAnswer::Fault(HostFault::NoMemory)));
    let r = f.fault_in(
        &h,
        PageRequest::<ReadOnly>::new(Ipa(0x5000), false),
        Prot::R,
        &mut (),
    );
    assert_eq!(r.unwrap(), Ok(FaultOutcome::Emulate));
    h.answer.set(Some(PageAnswer::Fault(HostFault::Poisoned)));
    let r = f.fault_in(
        &h,
        PageRequest::<ReadOnly>::new(Ipa(0x5000), false),
        Prot::R,
        &mut (),
    );
    assert_eq!(r.unwrap(), Err(HostFault::Poisoned));
    assert!(!f.get_leaf(Ipa(0x5000)).unwrap().0.is_valid());
}

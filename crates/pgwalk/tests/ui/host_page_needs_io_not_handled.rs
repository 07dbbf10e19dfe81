// Mistake: handling the host's answer as "page or error", forgetting that
// an asynchronous request may come back with I/O in flight.
use pgwalk::PhysAddr;
use pgwalk::fault::{HostFault, MayWrite, PageAnswer};

fn page_or_error(answer: PageAnswer<MayWrite>) -> Result<PhysAddr, HostFault> {
    match answer {
        PageAnswer::Present { pa, .. } => Ok(pa),
        PageAnswer::Fault(fault) => Err(fault),
    }
}

fn main() {
    let _ = page_or_error(PageAnswer::NeedsIo);
}

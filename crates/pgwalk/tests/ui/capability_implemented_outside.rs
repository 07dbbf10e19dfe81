// Mistake: a user crate invents its own capability ("shared but may also
// unmap"), claiming rights the walker cannot honour.
use core::convert::Infallible;

use pgwalk::Capability;
use pgwalk::visit::{ResumeReason, RetryEntry, SkipEntry};

pub enum SharedUnmapper {}

impl Capability for SharedUnmapper {
    type Skip = SkipEntry;
    type Retry = RetryEntry;
    type Resume = Infallible;
    const NAME: &'static str = "shared unmapper";
    const CONCURRENT: bool = true;
    const LOAD: core::sync::atomic::Ordering = core::sync::atomic::Ordering::Relaxed;
}

fn main() {
    let _ = ResumeReason::Raced;
}

// Mistake: an exclusive walker (not on a vCPU's fault path) asks to resume
// the guest, as if it were a fault handler.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, ResumeReason, Unfinished, WalkFlags};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let mut table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let _ = table
        .exclusive()
        .walk(Ipa(0), 0x1000, WalkFlags::LEAF, |ctx| {
            if ctx.old().is_valid() {
                return Err(Unfinished::ResumeGuest(ResumeReason::Spurious));
            }
            Ok(Action::Continue)
        });
}

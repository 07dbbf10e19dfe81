// Mistake: a dirty-logging walker under the read lock (not a fault handler)
// answers a lost race with "resume the guest" instead of "retry".
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, ResumeReason, Unfinished, WalkFlags};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let _ = table.shared().walk(Ipa(0), 0x1000, WalkFlags::LEAF, |ctx| {
        let old = ctx.old();
        if ctx.try_set(old.with_writable(false)).is_err() {
            return Err(Unfinished::ResumeGuest(ResumeReason::Raced));
        }
        Ok(Action::Continue)
    });
}

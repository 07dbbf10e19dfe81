// Mistake: porting a C visitor that returns -EAGAIN to an exclusive walk,
// where nothing races and "retry this entry" has no meaning.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, Conflict, RetryEntry, Unfinished, WalkFlags};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let mut table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let _ = table
        .exclusive()
        .walk(Ipa(0), 0x1000, WalkFlags::LEAF, |ctx| {
            if ctx.old().is_locked() {
                return Err(Unfinished::Retry(RetryEntry(Conflict::Raced)));
            }
            Ok(Action::Continue)
        });
}

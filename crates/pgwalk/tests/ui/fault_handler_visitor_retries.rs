// Mistake: a fault handler retries the entry after losing a race, when on
// the fault path a lost race means "resume the guest and let it fault again".
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, Conflict, RetryEntry, Unfinished, WalkFlags};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let _ = table
        .fault_handler()
        .walk(Ipa(0), 0x1000, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            if ctx.try_set(old.with_young(true)).is_err() {
                return Err(Unfinished::Retry(RetryEntry(Conflict::Raced)));
            }
            Ok(Action::Continue)
        });
}

// Mistake: an exclusive visitor forwards a race signal with `?`, as if
// something could race a walker that holds the write lock.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::descriptor::Descriptor;
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, Conflict, WalkFlags};

// A helper shared with the concurrent code paths: a locked entry is a race.
fn check_unlocked(d: Descriptor) -> Result<(), Conflict> {
    if d.is_locked() {
        Err(Conflict::Raced)
    } else {
        Ok(())
    }
}

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let mut table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let _ = table
        .exclusive()
        .walk(Ipa(0), 0x1000, WalkFlags::LEAF, |ctx| {
            check_unlocked(ctx.old())?;
            Ok(Action::Continue)
        });
}

// Mistake: an exclusive walker copies shared-walker code and updates the
// entry with compare-and-swap, as if another walker could race it.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, WalkFlags};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let mut table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let _ = table
        .exclusive()
        .walk(Ipa(0), 0x1000, WalkFlags::LEAF, |ctx| {
            let old = ctx.old();
            ctx.try_set(old.with_writable(false))?;
            Ok(Action::Continue)
        });
}

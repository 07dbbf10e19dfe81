// Mistake: a walker under the read lock writes the entry with a plain store,
// which would overwrite another walker's concurrent update.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, WalkFlags};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let _ = table.shared().walk(Ipa(0), 0x1000, WalkFlags::LEAF, |ctx| {
        let old = ctx.old();
        ctx.set(old.with_writable(false));
        Ok(Action::Continue)
    });
}

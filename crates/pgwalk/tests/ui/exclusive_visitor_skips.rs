// Mistake: porting a C visitor that returns -ENOENT ("skip this entry") to
// an exclusive walk, where the C walker treats it as "continue" anyway.
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, WalkFlags};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let mut table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    let _ = table.exclusive().walk(
        Ipa(0x4000_0000),
        1 << 30,
        WalkFlags::LEAF | WalkFlags::TABLE_PRE,
        |ctx| {
            if ctx.old().owner().is_some() {
                return Ok(Action::SKIP);
            }
            Ok(Action::Continue)
        },
    );
}

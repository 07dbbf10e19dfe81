// Mistake: updating a hyp entry by compare-and-swap, as a concurrent
// stage-2 visitor does. A hyp context has only the exclusive `set`.
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::HeapMemory;
use pgwalk::hyp::HypTable;
use pgwalk::visit::{Action, WalkFlags};
use pgwalk::Va;

fn main() {
    let g = Geometry::for_va_bits(Granule::Size4KiB, 39, 40).unwrap();
    let mut table = HypTable::with_geometry(g, HeapMemory::new(8), &mut ()).unwrap();
    let _ = table.exclusive().walk(Va(0), 0x1000, WalkFlags::LEAF, |ctx| {
        let old = ctx.old();
        ctx.try_set(old)?;
        Ok(Action::Continue)
    });
}

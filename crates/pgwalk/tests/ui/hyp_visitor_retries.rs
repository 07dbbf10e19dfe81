// Mistake: a hyp walk visitor that asks to retry an entry, as a shared
// stage-2 visitor may. A hyp walker is exclusive: nothing races it.
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::HeapMemory;
use pgwalk::hyp::HypTable;
use pgwalk::visit::{Action, Conflict, RetryEntry, Unfinished, WalkFlags};
use pgwalk::Va;

fn main() {
    let g = Geometry::for_va_bits(Granule::Size4KiB, 39, 40).unwrap();
    let mut table = HypTable::with_geometry(g, HeapMemory::new(8), &mut ()).unwrap();
    let _ = table.exclusive().walk(Va(0), 0x1000, WalkFlags::LEAF, |ctx| {
        if !ctx.old().is_valid() {
            return Err(Unfinished::Retry(RetryEntry(Conflict::Raced)));
        }
        Ok(Action::Continue)
    });
}

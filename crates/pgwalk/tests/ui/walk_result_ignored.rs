// Mistake: a fault handler's walk result is dropped, so a walk that stopped
// early to resume the guest is taken as one that visited everything.
#![deny(unused_must_use)]

use pgwalk::host::HeapMemory;
use pgwalk::{Error, Ipa, Stage2};
use pgwalk::geometry::Geometry;
use pgwalk::visit::{Action, WalkFlags};

fn age(table: &Stage2<HeapMemory>, ipa: Ipa) -> Result<(), Error> {
    let mut fault = table.fault_handler();
    fault.walk(ipa, 0x1000, WalkFlags::LEAF, |ctx| {
        let old = ctx.old();
        ctx.try_set(old.with_young(true))?;
        Ok(Action::Continue)
    })?;
    Ok(())
}

fn main() {
    let geometry = Geometry::for_ia_bits(40, 40).unwrap();
    let table = Stage2::with_geometry(geometry, HeapMemory::new(64)).unwrap();
    age(&table, Ipa(0x4000_0000)).unwrap();
}

// Mistake: a hypervisor engineer, used to stage 2, writes a helper that
// changes the EL2 tables from beside other walkers (under a read lock).
// Linux has no shared hyp walker, and neither does pgwalk: the handle type
// does not exist.
use pgwalk::host::HeapMemory;
use pgwalk::hyp::HypHandle;
use pgwalk::Shared;

fn map_uart_from_a_reader(_h: HypHandle<'_, HeapMemory, Shared>) {}

fn main() {}

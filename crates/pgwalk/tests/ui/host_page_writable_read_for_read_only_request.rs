// Mistake: the fault handler asked the host for a read-only page, then maps
// it writable because the host's page happens to be writable.
use pgwalk::Prot;
use pgwalk::fault::{PageAnswer, ReadOnly};

fn stage2_prot(answer: &PageAnswer<ReadOnly>) -> Prot {
    match *answer {
        PageAnswer::Present { writable, .. } if writable => Prot::RW,
        _ => Prot::R,
    }
}

fn main() {
    let answer = PageAnswer::<ReadOnly>::NeedsIo;
    let _ = stage2_prot(&answer);
}

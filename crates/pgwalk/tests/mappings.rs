//! `for_each_mapping` (`src/stage2/mappings.rs`): a table read back as runs
//! of leaves with contiguous outputs and equal attributes.

mod common;

use common::*;
use pgwalk::{Ipa, Mapping, PhysAddr, Prot};

fn runs(t: &pgwalk::Stage2<pgwalk::host::HeapMemory>, ipa: u64, size: u64) -> Vec<Mapping> {
    let mut seen = Vec::new();
    t.shared()
        .for_each_mapping(Ipa(ipa), size, |m| seen.push(*m))
        .unwrap();
    seen
}

#[test]
fn contiguous_leaves_of_one_level_form_one_run() {
    let mut t = table(40);
    map(&mut t, 0, 4 * K4, RAM, Prot::RW).unwrap();
    // Another attribute, then another output address: two more runs.
    map(&mut t, 4 * K4, K4, RAM + 4 * K4, Prot::R).unwrap();
    map(&mut t, 5 * K4, K4, RAM + M2, Prot::R).unwrap();
    let seen = runs(&t, 0, M2);
    let summary: Vec<_> = seen
        .iter()
        .map(|m| (m.ipa.get(), m.pa, m.size, m.level.get()))
        .collect();
    assert_eq!(
        summary,
        [
            (0, PhysAddr(RAM), 4 * K4, 3),
            (4 * K4, PhysAddr(RAM + 4 * K4), K4, 3),
            (5 * K4, PhysAddr(RAM + M2), K4, 3),
        ]
    );
    assert!(seen[0].leaf.writable() && !seen[1].leaf.writable());
}

#[test]
fn blocks_and_annotations_are_runs_of_their_own() {
    let mut t = table(40);
    map(&mut t, 2 * M2, 2 * M2, RAM, Prot::RW).unwrap();
    t.exclusive().annotate(Ipa(0), 2 * K4, 9, &mut ()).unwrap();
    let seen = runs(&t, 0, G1);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].ipa, seen[0].pa, seen[0].size, seen[0].leaf.owner()),
        (Ipa(0), PhysAddr(0), 2 * K4, Some(9))
    );
    assert_eq!(
        (seen[1].ipa, seen[1].size, seen[1].level.get()),
        (Ipa(2 * M2), 2 * M2, 2),
        "two 2 MiB blocks, contiguous"
    );
}

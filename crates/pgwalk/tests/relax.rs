//! `relax_perms` (`src/stage2/relax.rs`): permissions added under the
//! shared capability, and its outcomes on the fault path.

mod common;

use common::*;
use pgwalk::fault::TableOutcome;
use pgwalk::host::check_invariants;
use pgwalk::{Ipa, Prot};

// Split from the shared attribute-change test (wrprotect, young, relax)
// when the tests moved to one file per operation.
#[test]
fn relax_perms_under_shared() {
    let mut t = table_with_pages(4);
    let h = t.shared();
    h.wrprotect(Ipa(0), 4 * K4).unwrap().flush();
    h.relax_perms(Ipa(2 * K4), Prot::W).unwrap();
    assert!(h.get_leaf(Ipa(2 * K4)).unwrap().0.writable());
    assert!(h.relax_perms(Ipa(0), Prot::DEVICE).is_err());
    check_invariants(&mut t).unwrap();
}

// Split from the fault path's relax_perms and mkyoung test.
#[test]
fn fault_relax_perms_outcomes() {
    let t = table_with_pages(2);
    let f = t.fault_handler();
    f.as_shared().wrprotect(Ipa(0), K4).unwrap().flush();
    assert_eq!(f.relax_perms(Ipa(0), Prot::W).unwrap(), TableOutcome::Fixed);
    assert_eq!(
        f.relax_perms(Ipa(0), Prot::W).unwrap(),
        TableOutcome::Spurious
    );
    assert_eq!(
        f.relax_perms(Ipa(0x40_0000), Prot::W).unwrap(),
        TableOutcome::Retry,
        "no leaf"
    );
}

/// The exception levels a prot lets execute from, as a set: bit 1 EL1,
/// bit 0 EL0.
fn exec_levels(p: Prot) -> u8 {
    u8::from(p.el1_exec()) << 1 | u8::from(p.el0_exec())
}

// Execution is granted per exception level (FEAT_XNX): relaxing adds the
// levels asked for to those the leaf had, from every XN state, and takes
// none away.
#[test]
fn relax_perms_adds_execution_per_exception_level() {
    use pgwalk::descriptor::Exec;
    use pgwalk::PhysAddr;

    let execs = [Prot::empty(), Prot::PX, Prot::UX, Prot::X];
    // One table, its leaf remapped before each case (a pool per case made
    // this the slowest file under Miri).
    let mut t = table(40);
    for from in execs {
        for add in execs {
            for rw in [Prot::empty(), Prot::R, Prot::W] {
                t.exclusive()
                    .map(Ipa(0), K4, PhysAddr(RAM), Prot::R | from, &mut ())
                    .unwrap();
                let f = t.fault_handler();
                let outcome = f.relax_perms(Ipa(0), add | rw).unwrap();
                let (d, _) = f.as_shared().get_leaf(Ipa(0)).unwrap();
                let got = match d.exec() {
                    Exec::Both => 0b11,
                    Exec::El1Only => 0b10,
                    Exec::El0Only => 0b01,
                    Exec::Never => 0b00,
                };
                let want = exec_levels(from) | exec_levels(add);
                assert_eq!(got, want, "{from:?} + {add:?}");
                assert!(d.readable());
                assert_eq!(d.writable(), rw == Prot::W, "{from:?} + {add:?} + {rw:?}");
                let added = want != exec_levels(from) || rw == Prot::W;
                let expected = if added {
                    TableOutcome::Fixed
                } else {
                    TableOutcome::Spurious
                };
                assert_eq!(outcome, expected, "{from:?} + {add:?} + {rw:?}");
            }
        }
    }
}

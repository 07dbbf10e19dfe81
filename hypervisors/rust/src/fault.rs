//! Stage-2 faults: decoding ESR_EL2, FAR_EL2 and HPFAR_EL2, and the policy
//! that turns a fault into a pgwalk fault-path call, whose typed outcome
//! decides what the vCPU does next.
//!
//! - RAM, translation fault: identity-map the 2 MiB block around the
//!   address (a page while dirty logging runs), read-write, executable
//!   only for an instruction fetch.
//! - RAM, permission fault: relax the leaf's permissions; during dirty
//!   logging a write to a block first splits it (fault-path map of one
//!   page), after logging a write to a page recovers the block.
//! - Device: identity-map the page as Device memory.
//! - Anywhere else: a synchronous external abort for the guest.

use pgwalk::fault::TableOutcome;
use pgwalk::Error;

use crate::arch::read_sysreg;
use crate::layout::BLOCK;
use crate::memmap::{self, Region};
use crate::stats::{self, count, FaultKind, STATS};
use crate::trap::Frame;
use crate::vm::{self, Perms, Size};
use crate::{dirty, guest, vcpu};

/// Outcome columns of the statistics.
const FIXED: usize = 0;
const SPURIOUS: usize = 1;
const RETRY: usize = 2;
const ABORT: usize = 3;

/// A decoded stage-2 abort.
#[derive(Clone, Copy, Debug)]
struct Abort {
    ipa: u64,
    kind: FaultKind,
    /// Level of the fault (for a permission fault: of the leaf).
    level: i8,
    write: bool,
    exec: bool,
}

fn decode(esr: u64, instruction: bool) -> Abort {
    let fsc = esr & 0x3f;
    let kind = match fsc >> 2 {
        0b0001 => FaultKind::Translation,
        0b0010 => FaultKind::AccessFlag,
        0b0011 => FaultKind::Permission,
        _ => FaultKind::Other,
    };
    // HPFAR_EL2.FIPA (bits 43:4) holds IPA bits 51:12; FAR_EL2 the offset.
    let hpfar = read_sysreg!("hpfar_el2");
    let far = read_sysreg!("far_el2");
    let ipa = (hpfar & 0x0000_0fff_ffff_fff0) << 8 | far & 0xfff;
    // A fault on the guest's own stage-1 table walk (S1PTW) is an access
    // to a table page, not to the instruction or data: count it as a write,
    // as KVM does, since the walker may update descriptors (hardware
    // access flag and dirty state); a read-only answer would fault forever.
    let s1ptw = esr & (1 << 7) != 0;
    Abort {
        ipa,
        kind,
        level: (fsc & 3) as i8,
        // WnR; cache maintenance reports WnR = 1 and is treated as a write.
        write: s1ptw || (!instruction && esr & (1 << 6) != 0),
        exec: instruction && !s1ptw,
    }
}

/// Handles a data or instruction abort from the guest.
pub fn handle(frame: &mut Frame, esr: u64, instruction: bool) {
    let start = crate::arch::counter();
    let a = decode(esr, instruction);
    count(&vcpu::current().faults);
    let region = match a.kind {
        FaultKind::Other => None,
        _ => memmap::lookup(a.ipa),
    };
    let column = match region {
        Some(Region::Ram) => ram_fault(&a),
        Some(Region::Device(_)) if !a.exec => device_fault(&a),
        // Nothing there, or code fetched from a device: what the machine
        // would answer.
        _ => {
            guest::inject_external_abort(frame, esr, instruction);
            ABORT
        }
    };
    stats::fault(a.kind, column);
    STATS.fault_ticks.fetch_add(
        crate::arch::counter() - start,
        core::sync::atomic::Ordering::Relaxed,
    );
}

fn device_fault(a: &Abort) -> usize {
    let perms = Perms {
        write: true,
        exec: false,
        device: true,
    };
    let outcome = match a.kind {
        FaultKind::Translation => vm::fault_map(a.ipa, Size::Page, perms),
        FaultKind::AccessFlag => vm::fault_mkyoung(a.ipa),
        _ => vm::fault_relax(a.ipa, true, false),
    };
    let column = column(outcome, a);
    if column == FIXED && a.kind == FaultKind::Translation {
        count(&STATS.device_pages_mapped);
        crate::check::touched_device(a.ipa);
    }
    column
}

fn ram_fault(a: &Abort) -> usize {
    crate::check::touched_ram(a.ipa);
    let round = dirty::generation();
    let logging = dirty::active();
    let block_fits = memmap::is_ram(a.ipa & !(BLOCK - 1), BLOCK);
    // What this fault makes writable, for the dirty bitmap.
    let mut made_writable = None;
    let outcome = match a.kind {
        FaultKind::Translation => {
            let size = if block_fits && !logging {
                Size::Block
            } else {
                Size::Page
            };
            // While logging, read faults map read-only, so that the first
            // write faults and is recorded.
            let write = !logging || a.write;
            let outcome = vm::fault_map(
                a.ipa,
                size,
                Perms {
                    write,
                    exec: a.exec,
                    device: false,
                },
            );
            if let Ok(TableOutcome::Fixed) = outcome {
                count(match size {
                    Size::Block => &STATS.ram_blocks_mapped,
                    Size::Page => &STATS.ram_pages_mapped,
                });
            }
            if write {
                made_writable = Some(size);
            }
            outcome
        }
        FaultKind::Permission if a.write && logging && a.level < 3 => {
            made_writable = Some(Size::Page);
            split_for_write(a)
        }
        FaultKind::Permission if a.write && !logging && a.level == 3 && block_fits => {
            // After logging: the block comes back, writable.
            let outcome = vm::fault_map(
                a.ipa,
                Size::Block,
                Perms {
                    write: true,
                    exec: false,
                    device: false,
                },
            );
            if let Ok(TableOutcome::Fixed) = outcome {
                count(&STATS.blocks_recovered);
            }
            made_writable = Some(Size::Block);
            outcome
        }
        FaultKind::Permission => {
            if a.write {
                made_writable = Some(Size::Page);
            }
            vm::fault_relax(a.ipa, a.write, a.exec)
        }
        _ => vm::fault_mkyoung(a.ipa),
    };
    let column = column(outcome, a);
    if let Some(size) = made_writable {
        // A round that started during this fault may have write-protected
        // the range before this fault made it writable: count it dirty.
        if column != RETRY && (logging || dirty::generation() != round) {
            dirty::mark(a.ipa & !(size.bytes() - 1), size.bytes());
            count(&STATS.dirty_faults);
        }
    }
    column
}

// A write to a write-protected block while logging: one fault-path map of
// the page splits the block (the rest keeps the block's read-only
// mapping) and installs the page writable.
fn split_for_write(a: &Abort) -> Result<TableOutcome, Error> {
    let outcome = vm::fault_map(
        a.ipa,
        Size::Page,
        Perms {
            write: true,
            exec: false,
            device: false,
        },
    );
    if let Ok(TableOutcome::Fixed) = outcome {
        count(&STATS.blocks_split);
        count(&STATS.ram_pages_mapped);
    }
    outcome
}

/// The statistics column for a fault-path outcome. An error is a
/// hypervisor bug.
fn column(outcome: Result<TableOutcome, Error>, a: &Abort) -> usize {
    match outcome {
        Ok(TableOutcome::Fixed) => FIXED,
        Ok(TableOutcome::Spurious) => SPURIOUS,
        // Another vCPU changed the entry first: resume, the guest faults
        // again if it still needs to.
        Ok(TableOutcome::Retry) => RETRY,
        Err(e) => panic!("stage-2 fault {a:?}: {e}"),
    }
}

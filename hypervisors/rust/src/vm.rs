//! The guest's stage-2 table and every operation the hypervisor runs on
//! it: the one place (with `memops.rs` and `check.rs`) that uses pgwalk.
//!
//! The table sits behind pgwalk's spinning reader/writer lock: fault
//! handlers and dirty-logging rounds take the read lock and run beside
//! each other (pgwalk's `HandlesFault` and `Shared` handles); only the
//! final check takes the write lock.

use pgwalk::fault::TableOutcome;
use pgwalk::geometry::Geometry;
use pgwalk::{Error, Ipa, PhysAddr, Prot, SpinStage2, Stage2};

use crate::layout::{self, PAGE};
use crate::memops::HvMemory;

/// The VMID the guest runs under.
pub const VMID: u64 = 1;
/// Input (IPA) and output address sizes.
const IPA_BITS: u8 = 40;

static TABLE: spin::Once<SpinStage2<HvMemory>> = spin::Once::new();

/// The table (after [`init`]).
pub fn table() -> &'static SpinStage2<HvMemory> {
    TABLE.get().expect("stage-2 table used before vm::init")
}

/// Builds the empty stage-2 table: 40-bit IPA, 4 KiB granule.
pub fn init() {
    let geometry = Geometry::for_ia_bits(IPA_BITS, IPA_BITS).expect("a 40-bit IPA geometry");
    let stage2 = Stage2::with_geometry(geometry, HvMemory).expect("the stage-2 root");
    TABLE.call_once(|| SpinStage2::new(stage2));
    crate::hvprintln!(
        "pgwalk-hv: stage-2 table: {}-bit IPA, start level {}, root {:#x} ({} pages), VTCR_EL2 {:#x}",
        IPA_BITS,
        geometry.start_level(),
        table().read().root().get(),
        geometry.root_pages(),
        vtcr()
    );
}

/// VTCR_EL2 for the table.
pub fn vtcr() -> u64 {
    table().read().geometry().vtcr()
}

/// VTTBR_EL2: the root and the VMID.
pub fn vttbr() -> u64 {
    table().read().root().get() | VMID << 48
}

/// How much a fault maps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Size {
    /// One 4 KiB page.
    Page,
    /// The 2 MiB block around the address.
    Block,
}

impl Size {
    /// Bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            Size::Page => PAGE,
            Size::Block => layout::BLOCK,
        }
    }
}

/// What a mapping allows and what memory it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Perms {
    /// Writable.
    pub write: bool,
    /// Executable (at EL1 and EL0).
    pub exec: bool,
    /// Device memory (else Normal write-back).
    pub device: bool,
}

fn prot(p: Perms) -> Prot {
    let mut prot = Prot::R;
    if p.write {
        prot |= Prot::W;
    }
    if p.exec {
        prot |= Prot::X;
    }
    if p.device {
        prot |= Prot::DEVICE;
    }
    prot
}

/// The fault path's map: identity-maps the page or block around `ipa`
/// (`Handle<HandlesFault>::map`).
pub fn fault_map(ipa: u64, size: Size, perms: Perms) -> Result<TableOutcome, Error> {
    let base = ipa & !(size.bytes() - 1);
    let guard = table().read();
    guard.fault_handler().map(
        Ipa(base),
        size.bytes(),
        PhysAddr(base),
        prot(perms),
        &mut (),
    )
}

/// The fault path's permission relaxation for the leaf at `ipa`.
pub fn fault_relax(ipa: u64, write: bool, exec: bool) -> Result<TableOutcome, Error> {
    let mut add = Prot::R;
    if write {
        add |= Prot::W;
    }
    if exec {
        add |= Prot::X;
    }
    let guard = table().read();
    guard
        .fault_handler()
        .relax_perms(Ipa(ipa & !(PAGE - 1)), add)
}

/// The fault path's access-flag update for the leaf at `ipa`.
pub fn fault_mkyoung(ipa: u64) -> Result<TableOutcome, Error> {
    let guard = table().read();
    guard.fault_handler().mkyoung(Ipa(ipa & !(PAGE - 1)))
}

/// Write-protects all guest RAM through a shared walker and flushes the
/// TLB it leaves stale (a dirty-logging round).
pub fn wrprotect_ram() -> Result<(), Error> {
    let guard = table().read();
    let shared = guard.shared();
    let flush = shared.wrprotect(Ipa(layout::GUEST_RAM_BASE), layout::GUEST_RAM_SIZE)?;
    flush.flush();
    Ok(())
}

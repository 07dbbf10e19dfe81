//! What the test needs of QEMU's CPU, read from ID_AA64MMFR0_EL1.

use pgwalk_conformance::Machine;

/// Fails, naming what is missing, unless QEMU's CPU implements every
/// granule at stage 2, 52-bit addresses with LPA2 for 4 and 16 KiB, and
/// 52-bit PAs: what the test asks its MMU about (QEMU 7.2's `-cpu max`
/// reads 0x0000032310201126).
pub(crate) fn require_features(machine: &Machine) {
    let mmfr0 = machine
        .id_aa64mmfr0()
        .unwrap_or_else(|e| panic!("reading ID_AA64MMFR0_EL1 from QEMU: {e}"));
    let field = |at: u32| mmfr0 >> at & 0xf;
    // Stage 2 support on the TGranX_2 scale: 1 none, 2 yes, 3 52-bit.
    let stage2 = |s2: u32, s1: u32, from_s1: fn(u64) -> u64| match field(s2) {
        0 => from_s1(field(s1)),
        f => f,
    };
    let g4 = stage2(40, 28, |f| match f {
        0 => 2,
        1 => 3,
        _ => 1,
    });
    let g16 = stage2(32, 20, |f| f + 1);
    let g64 = stage2(36, 24, |f| if f == 0 { 2 } else { 1 });
    let missing: Vec<&str> = [
        (
            g4 == 3,
            "4 KiB pages with 52-bit addresses (FEAT_LPA2) at stage 2",
        ),
        (
            g16 == 3,
            "16 KiB pages with 52-bit addresses (FEAT_LPA2) at stage 2",
        ),
        (g64 >= 2, "64 KiB pages at stage 2"),
        (
            field(0) == 6,
            "52-bit physical addresses (PARange, FEAT_LPA)",
        ),
    ]
    .into_iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, what)| what)
    .collect();
    assert!(
        missing.is_empty(),
        "QEMU's CPU (ID_AA64MMFR0_EL1 = {mmfr0:#018x}) lacks {missing:?}: the conformance test \
         needs qemu-system-aarch64 7.2 or later with -cpu max"
    );
}

//! Proves the harness against hand-built stage-2 tables (no pgwalk).
//!
//! The expectations here come from the architecture, not from QEMU, so a
//! failure means either the harness or the emulated MMU disagrees with the
//! Arm ARM; both would make the harness useless as an oracle.

use pgwalk_conformance::{HarnessError, Machine, Par, ParPair, TABLE_WINDOW_PA};

const PAGE: usize = 4096;

// VTCR_EL2 fields.
const VTCR_RES1: u64 = 1 << 31;
const VTCR_SL0_SHIFT: u64 = 6;
const VTCR_IRGN0_WBWA: u64 = 0b01 << 8;
const VTCR_ORGN0_WBWA: u64 = 0b01 << 10;
const VTCR_SH0_INNER: u64 = 0b11 << 12;
const VTCR_TG0_4K: u64 = 0b00 << 14;
const VTCR_PS_40BIT: u64 = 0b010 << 16;

// Stage-2 descriptor fields.
const VALID: u64 = 1 << 0;
/// Table descriptor at levels 0-2, page descriptor at level 3.
const TABLE_OR_PAGE: u64 = 1 << 1;
const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
const MEMATTR_NORMAL_NC: u64 = 0b0101 << 2;
const MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2;
const S2AP_R: u64 = 1 << 6;
const S2AP_W: u64 = 1 << 7;
const SH_NON: u64 = 0b00 << 8;
const SH_OUTER: u64 = 0b10 << 8;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;

// PAR_EL1 values for the attributes above, as MAIR-style bytes.
const ATTR_NORMAL_WB: u8 = 0xff;
const ATTR_NORMAL_NC: u8 = 0x44;
const ATTR_DEVICE_NGNRE: u8 = 0x04;
const PAR_SH_NON: u8 = 0b00;
const PAR_SH_OUTER: u8 = 0b10;
const PAR_SH_INNER: u8 = 0b11;

/// Byte image of table pages that will sit at [`TABLE_WINDOW_PA`].
struct Tables {
    image: Vec<u8>,
}

impl Tables {
    fn new(pages: usize) -> Tables {
        Tables {
            image: vec![0; pages * PAGE],
        }
    }

    fn page_pa(page: usize) -> u64 {
        TABLE_WINDOW_PA + (page * PAGE) as u64
    }

    fn set(&mut self, page: usize, index: usize, descriptor: u64) {
        let at = page * PAGE + index * 8;
        self.image[at..at + 8].copy_from_slice(&descriptor.to_le_bytes());
    }

    fn link(&mut self, page: usize, index: usize, next_page: usize) {
        self.set(
            page,
            index,
            Tables::page_pa(next_page) | TABLE_OR_PAGE | VALID,
        );
    }
}

fn machine() -> Machine {
    Machine::new().unwrap_or_else(|e| panic!("{e}"))
}

fn vtcr(t0sz: u64, sl0: u64) -> u64 {
    VTCR_RES1
        | VTCR_PS_40BIT
        | VTCR_TG0_4K
        | VTCR_SH0_INNER
        | VTCR_ORGN0_WBWA
        | VTCR_IRGN0_WBWA
        | (sl0 << VTCR_SL0_SHIFT)
        | t0sz
}

fn assert_ok(p: Par, pa: u64, attr: u8, sh: u8, what: &str) {
    assert!(!p.fault(), "{what}: expected success, got {p:?}");
    assert_eq!(p.pa(), Some(pa), "{what}: output address, {p:?}");
    assert_eq!(p.attr(), Some(attr), "{what}: attributes, {p:?}");
    assert_eq!(p.sh(), Some(sh), "{what}: shareability, {p:?}");
}

fn assert_s2_fault(p: Par, kind: fn(Par) -> Option<i8>, level: i8, what: &str) {
    assert_eq!(kind(p), Some(level), "{what}: {p:?}");
    assert_eq!(p.stage2(), Some(true), "{what}: S bit, {p:?}");
    // Stage 1 is off, so no stage-1 walk can be the victim.
    assert_eq!(p.ptw(), Some(false), "{what}: PTW bit, {p:?}");
}

/// 39-bit IPA space, 4 KiB granule, walk starting at level 1 with a single
/// root page.
#[test]
fn hand_built_4k_tables() {
    const L1: usize = 0;
    const L2: usize = 1;
    const L3: usize = 2;
    let mut t = Tables::new(3);

    // IPA 0..1G -> L2; IPA 1G..2G is left unmapped at level 1.
    t.link(L1, 0, L2);
    // IPA 0..2M: RW Normal WB block, inner shareable.
    let block_oa = 0x12_3440_0000;
    t.set(
        L2,
        0,
        block_oa | MEMATTR_NORMAL_WB | S2AP_R | S2AP_W | SH_INNER | AF | VALID,
    );
    // IPA 2M..4M -> L3; IPA 4M..6M unmapped at level 2.
    t.link(L2, 1, L3);

    let l3_base = 0x20_0000;
    let page_oa = |i: u64| 0x55_0000_0000 + i * 0x1000;
    let normal = MEMATTR_NORMAL_WB | AF | TABLE_OR_PAGE | VALID;
    t.set(L3, 0, page_oa(0) | normal | S2AP_R | SH_INNER);
    t.set(
        L3,
        1,
        (page_oa(1) | normal | S2AP_R | S2AP_W | SH_INNER) & !AF,
    );
    t.set(
        L3,
        2,
        page_oa(2) | MEMATTR_DEVICE_NGNRE | S2AP_R | S2AP_W | AF | TABLE_OR_PAGE | VALID,
    );
    // L3 index 3 stays invalid.
    t.set(
        L3,
        4,
        page_oa(4) | MEMATTR_NORMAL_NC | S2AP_R | S2AP_W | SH_INNER | AF | TABLE_OR_PAGE | VALID,
    );
    t.set(L3, 5, page_oa(5) | normal | SH_INNER);
    t.set(L3, 6, page_oa(6) | normal | S2AP_W | SH_INNER);
    t.set(L3, 7, page_oa(7) | normal | S2AP_R | S2AP_W | SH_OUTER);
    t.set(L3, 8, page_oa(8) | normal | S2AP_R | S2AP_W | SH_NON);

    let probes = [
        0x0000,           // 0: block, first page
        0x1f_f123,        // 1: block, last page, unaligned offset
        l3_base,          // 2: read-only page
        l3_base + 0x1000, // 3: AF=0
        l3_base + 0x2008, // 4: device
        l3_base + 0x3000, // 5: L3 hole
        0x40_0000,        // 6: L2 hole
        0x4000_0000,      // 7: L1 hole
        l3_base + 0x4000, // 8: Normal NC
        l3_base + 0x5000, // 9: no access
        l3_base + 0x6000, // 10: write-only
        l3_base + 0x7000, // 11: outer shareable
        l3_base + 0x8000, // 12: non-shareable
        0x7f_ffff_f000,   // 13: last IPA page, L1 hole
    ];
    let vttbr = Tables::page_pa(L1) | (5 << 48);
    let r = machine()
        .translate(vtcr(25, 0b01), vttbr, TABLE_WINDOW_PA, &t.image, &probes)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.len(), probes.len());
    for (ipa, ParPair { read, write }) in probes.iter().zip(&r) {
        println!("{ipa:#012x}: R {read:?} / W {write:?}");
    }

    let wb = ATTR_NORMAL_WB;
    assert_ok(r[0].read, block_oa, wb, PAR_SH_INNER, "block R");
    assert_ok(r[0].write, block_oa, wb, PAR_SH_INNER, "block W");
    assert_ok(
        r[1].read,
        block_oa + 0x1f_f000,
        wb,
        PAR_SH_INNER,
        "block end",
    );
    assert_ok(
        r[1].write,
        block_oa + 0x1f_f000,
        wb,
        PAR_SH_INNER,
        "block end W",
    );

    assert_ok(r[2].read, page_oa(0), wb, PAR_SH_INNER, "RO page R");
    assert_s2_fault(r[2].write, Par::is_permission_fault, 3, "RO page W");

    assert_s2_fault(r[3].read, Par::is_access_flag_fault, 3, "AF=0 R");
    assert_s2_fault(r[3].write, Par::is_access_flag_fault, 3, "AF=0 W");

    // Device memory is always reported outer shareable, whatever SH says.
    assert_ok(
        r[4].read,
        page_oa(2),
        ATTR_DEVICE_NGNRE,
        PAR_SH_OUTER,
        "dev R",
    );
    assert_ok(
        r[4].write,
        page_oa(2),
        ATTR_DEVICE_NGNRE,
        PAR_SH_OUTER,
        "dev W",
    );

    for (i, level, what) in [(5, 3, "L3 hole"), (6, 2, "L2 hole"), (7, 1, "L1 hole")] {
        assert_s2_fault(r[i].read, Par::is_translation_fault, level, what);
        assert_s2_fault(r[i].write, Par::is_translation_fault, level, what);
    }

    // Non-cacheable Normal memory is likewise reported outer shareable.
    assert_ok(r[8].read, page_oa(4), ATTR_NORMAL_NC, PAR_SH_OUTER, "NC R");
    assert_ok(r[8].write, page_oa(4), ATTR_NORMAL_NC, PAR_SH_OUTER, "NC W");

    assert_s2_fault(r[9].read, Par::is_permission_fault, 3, "no-access R");
    assert_s2_fault(r[9].write, Par::is_permission_fault, 3, "no-access W");

    assert_s2_fault(r[10].read, Par::is_permission_fault, 3, "WO page R");
    assert_ok(r[10].write, page_oa(6), wb, PAR_SH_INNER, "WO page W");

    assert_ok(r[11].read, page_oa(7), wb, PAR_SH_OUTER, "outer shareable");
    assert_ok(r[12].read, page_oa(8), wb, PAR_SH_NON, "non-shareable");

    assert_s2_fault(r[13].read, Par::is_translation_fault, 1, "last IPA page");
}

/// 40-bit IPA space starting at level 1 needs two concatenated root pages;
/// the second root page must be reached for IPAs with bit 39 set.
#[test]
fn concatenated_root() {
    // Pages 0-1: concatenated L1 root (must be 8 KiB aligned), 2: L2.
    let mut t = Tables::new(3);
    let block = MEMATTR_NORMAL_WB | S2AP_R | S2AP_W | SH_INNER | AF | VALID;
    // Root index 512 is the first entry of the second page: IPA 512 GiB.
    t.link(1, 0, 2);
    t.set(2, 3, 0x7_0000_0000 | block);
    // Root index 0 maps a 1 GiB block directly.
    t.set(0, 0, 0x8000_0000 | block);

    let probes = [
        0x80_0060_0000,
        0x80_0000_0000,
        0x0,
        0x3fff_f000,
        0x4000_0000,
    ];
    let r = machine()
        .translate(
            vtcr(24, 0b01),
            Tables::page_pa(0),
            TABLE_WINDOW_PA,
            &t.image,
            &probes,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let wb = ATTR_NORMAL_WB;
    assert_ok(r[0].read, 0x7_0000_0000, wb, PAR_SH_INNER, "2nd root page");
    assert_s2_fault(r[1].read, Par::is_translation_fault, 2, "L2 hole");
    assert_ok(r[2].read, 0x8000_0000, wb, PAR_SH_INNER, "1G block");
    assert_ok(r[3].read, 0xbfff_f000, wb, PAR_SH_INNER, "1G block end");
    assert_s2_fault(r[4].read, Par::is_translation_fault, 1, "L1 hole");
}

/// More probes than one boot takes: the harness must split the batch and
/// keep the results in order.
#[test]
fn batches_over_several_boots() {
    let mut t = Tables::new(2);
    t.link(0, 0, 1);
    for i in 0..512u64 {
        if i % 3 != 0 {
            let oa = 0x10_0000_0000 + i * 0x20_0000;
            t.set(
                1,
                i as usize,
                oa | MEMATTR_NORMAL_WB | S2AP_R | SH_INNER | AF | VALID,
            );
        }
    }
    let probes: Vec<u64> = (0..2500u64).map(|i| (i % 512) * 0x20_0000 + i).collect();
    let r = machine()
        .with_max_probes_per_boot(1000)
        .translate(
            vtcr(25, 0b01),
            Tables::page_pa(0),
            TABLE_WINDOW_PA,
            &t.image,
            &probes,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.len(), probes.len());
    for (ipa, pair) in probes.iter().zip(&r) {
        let slot = ipa >> 21;
        if slot % 3 == 0 {
            assert_s2_fault(pair.read, Par::is_translation_fault, 2, "hole");
        } else {
            let oa = 0x10_0000_0000 + slot * 0x20_0000 + (ipa & 0x1f_f000);
            assert_ok(pair.read, oa, ATTR_NORMAL_WB, PAR_SH_INNER, "block");
            assert_s2_fault(pair.write, Par::is_permission_fault, 2, "RO block");
        }
    }
}

/// Tables outside the window QEMU loads them into must be refused up front.
#[test]
fn table_outside_window_is_rejected() {
    let err = machine()
        .translate(vtcr(25, 0b01), 0, 0x4000_0000, &[0; 8], &[0])
        .unwrap_err();
    assert!(err.to_string().contains("table window"), "{err}");
}

/// The harness must cope with tens of thousands of probes in one boot.
#[test]
fn forty_thousand_probes_in_one_boot() {
    let mut t = Tables::new(3);
    t.link(0, 0, 1);
    t.link(1, 0, 2);
    for i in 0..512u64 {
        let oa = 0x30_0000_0000 + (i ^ 0x1ff) * 0x1000;
        t.set(
            2,
            i as usize,
            oa | MEMATTR_NORMAL_WB | S2AP_R | S2AP_W | SH_INNER | AF | TABLE_OR_PAGE | VALID,
        );
    }
    let probes: Vec<u64> = (0..40_000u64).map(|i| (i * 0x1000) % 0x40_0000).collect();
    let start = std::time::Instant::now();
    let r = machine()
        .with_max_probes_per_boot(40_000)
        .translate(
            vtcr(25, 0b01),
            Tables::page_pa(0),
            TABLE_WINDOW_PA,
            &t.image,
            &probes,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    println!("40000 probes took {:?}", start.elapsed());
    for (ipa, pair) in probes.iter().zip(&r) {
        if *ipa < 0x20_0000 {
            let oa = 0x30_0000_0000 + ((ipa >> 12) ^ 0x1ff) * 0x1000;
            assert_ok(pair.read, oa, ATTR_NORMAL_WB, PAR_SH_INNER, "page R");
            assert_ok(pair.write, oa, ATTR_NORMAL_WB, PAR_SH_INNER, "page W");
        } else {
            assert_s2_fault(pair.read, Par::is_translation_fault, 2, "hole");
        }
    }
}

#[test]
fn a_cpu_without_a_feature_the_vtcr_needs_is_a_clear_error() {
    // `-cpu max` has every granule at stage 2 and FEAT_LPA2; a Cortex-A57
    // has neither 16 KiB pages nor 52-bit addresses.
    let max = machine().id_aa64mmfr0().unwrap();
    assert_eq!(max >> 32 & 0xf, 3, "-cpu max: TGran16_2 = 52-bit, {max:#x}");
    let a57 = machine().with_cpu("cortex-a57");
    let mmfr0 = a57.id_aa64mmfr0().unwrap();
    assert_ne!(mmfr0, max);
    let tables = Tables::new(1);
    let refused = |vtcr: u64, feature: &str| match a57.translate(
        vtcr,
        Tables::page_pa(0),
        TABLE_WINDOW_PA,
        &tables.image,
        &[0],
    ) {
        Err(HarnessError::Guest { report, .. }) => {
            assert!(report.contains(feature), "{vtcr:#x}: {report}")
        }
        other => panic!("{vtcr:#x}: {other:?}"),
    };
    // 16 KiB granule, 36-bit IPA from level 2.
    refused(
        VTCR_RES1 | 28 | 1 << 6 | 0b10 << 14 | VTCR_PS_40BIT,
        "stage-2-granule",
    );
    // 4 KiB with DS = 1.
    refused(vtcr(24, 1) | 1 << 32, "FEAT_LPA2");
    // PS = 48 bits on a 44-bit CPU.
    refused((vtcr(24, 1) & !(0b111 << 16)) | 0b101 << 16, "PARange");
    // What the CPU has still translates.
    a57.translate(
        vtcr(24, 1),
        Tables::page_pa(0),
        TABLE_WINDOW_PA,
        &tables.image,
        &[0],
    )
    .unwrap();
}

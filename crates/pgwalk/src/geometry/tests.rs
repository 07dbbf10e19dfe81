//! Geometry rules, VTCR_EL2 decoding and encoding, for every granule.

use super::*;

const RES1: u64 = 1 << 31;
const DS: u64 = 1 << 32;
const SL2: u64 = 1 << 33;

/// A VTCR_EL2 value from its fields (TG0 as the register encodes it).
fn vtcr(t0sz: u64, sl0: u64, tg0: u64, ps: u64) -> u64 {
    RES1 | t0sz | sl0 << 6 | tg0 << 14 | ps << 16
}

const TG4K: u64 = 0b00;
const TG64K: u64 = 0b01;
const TG16K: u64 = 0b10;

fn all_formats() -> [TableFormat; 5] {
    [
        TableFormat::FOUR_KIB,
        Granule::Size16KiB.into(),
        Granule::Size64KiB.into(),
        TableFormat::new(Granule::Size4KiB, true).unwrap(),
        TableFormat::new(Granule::Size16KiB, true).unwrap(),
    ]
}

#[test]
fn forty_bit_ipa_at_level_1_concatenates_two_pages() {
    let g = Geometry::from_vtcr(vtcr(24, 1, TG4K, 2)).unwrap();
    assert_eq!(g.ia_bits(), 40);
    assert_eq!(g.oa_bits(), 40);
    assert_eq!(g.start_level(), Level(1));
    assert_eq!(g.root_entries(), 1024);
    assert_eq!(g.root_pages(), 2);
    assert_eq!(g.root_size(), 8192);
}

#[test]
fn common_configurations() {
    // (t0sz, sl0, tg0, ps, ds, sl2) -> (ia, start, root pages, root bytes)
    let cases = [
        ((16, 2, TG4K, 5, 0, 0), (48, 0, 1, 4 << 10)),
        ((25, 1, TG4K, 2, 0, 0), (39, 1, 1, 4 << 10)),
        ((22, 1, TG4K, 5, 0, 0), (42, 1, 8, 32 << 10)),
        ((21, 1, TG4K, 5, 0, 0), (43, 1, 16, 64 << 10)),
        ((32, 0, TG4K, 0, 0, 0), (32, 2, 4, 16 << 10)),
        ((32, 1, TG4K, 0, 0, 0), (32, 1, 1, 4 << 10)),
        ((30, 0, TG4K, 1, 0, 0), (34, 2, 16, 64 << 10)),
        ((24, 2, TG4K, 2, 0, 0), (40, 0, 1, 4 << 10)),
        // 16 KiB: 48 bits at level 1 is two pages; 36 bits at level 2 one.
        ((16, 2, TG16K, 5, 0, 0), (48, 1, 2, 32 << 10)),
        ((28, 1, TG16K, 1, 0, 0), (36, 2, 1, 16 << 10)),
        ((25, 1, TG16K, 2, 0, 0), (39, 2, 8, 128 << 10)),
        ((36, 0, TG16K, 0, 0, 0), (28, 3, 8, 128 << 10)),
        // 64 KiB: 48 bits at level 1 (64 entries), 42 at level 2 (one
        // full page), 46 at level 2 (16 pages), 52 bits with FEAT_LPA.
        ((16, 2, TG64K, 5, 0, 0), (48, 1, 1, 64 << 10)),
        ((22, 1, TG64K, 3, 0, 0), (42, 2, 1, 64 << 10)),
        ((18, 1, TG64K, 5, 0, 0), (46, 2, 16, 1 << 20)),
        ((12, 2, TG64K, 6, 0, 0), (52, 1, 1, 64 << 10)),
        ((32, 0, TG64K, 0, 0, 0), (32, 3, 8, 512 << 10)),
        // LPA2: 52 bits at level -1 (16 entries) or level 0 (16 pages).
        ((12, 0, TG4K, 6, DS, SL2), (52, -1, 1, 4 << 10)),
        ((12, 2, TG4K, 6, DS, 0), (52, 0, 16, 64 << 10)),
        ((15, 0, TG4K, 6, DS, SL2), (49, -1, 1, 4 << 10)),
        ((24, 1, TG4K, 2, DS, 0), (40, 1, 2, 8 << 10)),
        ((12, 3, TG16K, 6, DS, 0), (52, 0, 1, 16 << 10)),
        ((13, 2, TG16K, 6, DS, 0), (51, 1, 16, 256 << 10)),
        ((16, 3, TG16K, 5, DS, 0), (48, 0, 1, 16 << 10)),
    ];
    for ((t0sz, sl0, tg0, ps, ds, sl2), (ia, start, pages, bytes)) in cases {
        let raw = vtcr(t0sz, sl0, tg0, ps) | ds | sl2;
        let g = Geometry::from_vtcr(raw).unwrap_or_else(|e| panic!("{raw:#x}: {e}"));
        assert_eq!(g.ia_bits(), ia, "{raw:#x}");
        assert_eq!(g.start_level().get(), start, "{raw:#x}");
        assert_eq!(g.root_pages(), pages, "{raw:#x}");
        assert_eq!(g.root_size(), bytes, "{raw:#x}");
        assert_eq!(g.lpa2(), ds != 0);
        assert_eq!(Geometry::from_vtcr(g.vtcr()).unwrap(), g, "vtcr round trip");
    }
}

#[test]
fn small_roots_are_partial_pages() {
    let g = Geometry::from_vtcr(vtcr(32, 1, TG4K, 0)).unwrap();
    assert_eq!(g.root_entries(), 4);
    assert_eq!(g.root_size(), 4096);
    assert_eq!(g.index(0xc000_0000, Level(1), g.root_entries()), 3);
    let lpa2 = Geometry::from_vtcr(vtcr(12, 0, TG4K, 6) | DS | SL2).unwrap();
    assert_eq!(lpa2.root_entries(), 16);
    assert_eq!(lpa2.index(0xf_0000_0000_0000, Level(-1), 16), 15);
}

/// Whether the Arm ARM lets a stage-2 walk of `format` start at `start` for
/// an `ia`-bit input, given a CPU with 52-bit PAs (AArch64.S2InvalidSL,
/// AArch64.S2InconsistentSL, the TxSZ bounds), and pgwalk's own limits:
/// IPA size <= PS, no FEAT_TTST. Written out from the architecture's
/// tables, not from `Geometry::new`, so the two check each other.
fn architecture_allows(format: TableFormat, ia: u8, start: i8, ps: u8) -> bool {
    let (g, lpa2) = (format.granule(), format.lpa2());
    let levels: &[i8] = match (g, lpa2) {
        (Granule::Size4KiB, false) => &[0, 1, 2],
        (Granule::Size4KiB, true) => &[-1, 0, 1, 2],
        (Granule::Size16KiB, false) => &[1, 2, 3],
        (Granule::Size16KiB, true) => &[0, 1, 2, 3],
        (Granule::Size64KiB, _) => &[1, 2, 3],
    };
    let max_bits = if lpa2 || g == Granule::Size64KiB {
        52
    } else {
        48
    };
    let stride = g.shift() as i32 - 3;
    let min_ia = (3 - i32::from(start)) * stride + g.shift() as i32 + 1;
    let max_ia = min_ia + stride - 1 + 4;
    levels.contains(&start)
        && (25..=max_bits).contains(&ia)
        && ps <= max_bits
        && ia <= ps
        && (min_ia..=max_ia).contains(&i32::from(ia))
}

#[test]
fn every_geometry_matches_the_architecture_and_round_trips() {
    let mut legal = 0;
    for format in all_formats() {
        for ia in 20..=53u8 {
            for start in -1..=3i8 {
                for ps in [32, 36, 40, 42, 44, 48, 52] {
                    let want = architecture_allows(format, ia, start, ps);
                    let got = Geometry::new(format, ia, Level(start), ps);
                    assert_eq!(
                        got.is_ok(),
                        want,
                        "{format}, IA {ia}, start L{start}, PS {ps}: {got:?}"
                    );
                    if let Ok(g) = got {
                        legal += 1;
                        assert_eq!(Geometry::from_vtcr(g.vtcr()), Ok(g), "{g:?}");
                        assert!((1..=MAX_ROOT_PAGES).contains(&g.root_pages()));
                        assert_eq!(g.format(), format);
                        assert_eq!(g.root_shift(), g.level_shift(g.start_level()), "{g:?}");
                    }
                }
            }
        }
    }
    assert!(legal > 500, "only {legal} legal geometries");
}

#[test]
fn illegal_configurations_are_rejected_naming_the_rule() {
    let refused = |raw: u64, words: &str| match Geometry::from_vtcr(raw) {
        Err(Error::Geometry(why)) => assert!(why.contains(words), "{raw:#x}: {why}"),
        other => panic!("{raw:#x} gave {other:?}, expected a refusal about {words:?}"),
    };
    // 48-bit input starting at level 1 would need 512 root pages.
    refused(vtcr(16, 1, TG4K, 5), "more than 16");
    refused(vtcr(20, 1, TG4K, 5), "more than 16");
    // 39-bit input starting at level 0 resolves no bit there.
    refused(vtcr(25, 2, TG4K, 2), "no input address bit");
    refused(vtcr(24, 1, TG4K, 0), "exceeds the output size");
    refused(vtcr(24, 1, 0b11, 2), "reserved");
    refused(vtcr(24, 3, TG4K, 2), "FEAT_TTST");
    refused(vtcr(24, 1, TG4K, 7), "56 bits");
    refused(vtcr(12, 0, TG4K, 5), "above 48 bits");
    refused(vtcr(12, 2, TG4K, 6), "52-bit output size needs");
    refused(vtcr(42, 0, TG4K, 0), "below 25 bits");
    // LPA2 rules.
    refused(vtcr(12, 0, TG4K, 6) | SL2, "DS = 1");
    refused(vtcr(12, 1, TG4K, 6) | DS | SL2, "SL0 = 0");
    refused(vtcr(12, 0, TG16K, 6) | DS | SL2, "4 KiB granule");
    refused(
        vtcr(16, 0, TG64K, 5) | DS,
        "64 KiB reaches 52-bit addresses",
    );
    refused(vtcr(16, 3, TG16K, 5), "needs VTCR_EL2.DS = 1");
    refused(vtcr(16, 3, TG64K, 5), "no level 0");
    refused(vtcr(8, 3, TG16K, 6) | DS, "above 52 bits");
    // A geometry asked for directly.
    let refused = |g: Result<Geometry, Error>, words: &str| match g {
        Err(Error::Geometry(why)) => assert!(why.contains(words), "{why}"),
        other => panic!("{other:?}, expected a refusal about {words:?}"),
    };
    refused(
        Geometry::new(Granule::Size64KiB, 48, Level(0), 48),
        "starts at level 1, 2 or 3",
    );
    refused(
        Geometry::new(Granule::Size4KiB, 48, Level(-1), 52),
        "52-bit output size needs",
    );
    refused(
        Geometry::new(Granule::Size4KiB, 48, Level(-1), 48),
        "start level -1 needs LPA2",
    );
    refused(
        Geometry::new(Granule::Size4KiB, 40, Level(3), 40),
        "FEAT_TTST",
    );
    assert!(TableFormat::new(Granule::Size64KiB, true).is_err());
}

/// KVM's choice (`kvm_get_vtcr`): `stage2_pgtable_levels(ipa)` levels, at
/// least 2, whatever the format.
fn kvm_start_level(granule: Granule, ia: u8) -> i8 {
    let levels = ((i32::from(ia) - 8) / (granule.shift() as i32 - 3)).max(2);
    (4 - levels) as i8
}

#[test]
fn kvm_default_start_levels() {
    for (ia, start, pages) in [
        (32, 2, 4),
        (36, 1, 1),
        (40, 1, 2),
        (43, 1, 16),
        (44, 0, 1),
        (48, 0, 1),
    ] {
        let g = Geometry::for_ia_bits(ia, 48).unwrap();
        assert_eq!(
            (g.start_level().get(), g.root_pages()),
            (start, pages),
            "ia {ia}"
        );
    }
    for format in all_formats() {
        for ia in 32..=format.max_oa_bits() {
            let g = Geometry::for_ia_bits_in(format, ia, format.max_oa_bits())
                .unwrap_or_else(|e| panic!("{format}, IA {ia}: {e}"));
            assert_eq!(
                g.start_level().get(),
                kvm_start_level(format.granule(), ia),
                "{format}, IA {ia}"
            );
        }
    }
}

#[test]
fn level_sizes_and_blocks_per_granule() {
    let g = Geometry::for_ia_bits(48, 48).unwrap();
    assert_eq!(g.entry_size(Level(3)), 4 << 10);
    assert_eq!(g.entry_size(Level(2)), 2 << 20);
    assert_eq!(g.entry_size(Level(1)), 1 << 30);
    assert_eq!(g.entry_size(Level(0)), 512 << 30);
    assert!(!g.block_allowed(Level(0)));
    assert!(g.block_allowed(Level(1)) && g.block_allowed(Level(2)));
    assert!(!g.block_allowed(Level(3)) && g.leaf_allowed(Level(3)));

    let lpa2 = Geometry::for_ia_bits_in(TableFormat::new(Granule::Size4KiB, true).unwrap(), 52, 52)
        .unwrap();
    assert_eq!(lpa2.entry_size(Level(-1)), 256 << 40);
    // Linux 6.12 does not use the 512 GiB blocks LPA2 allows.
    assert!(!lpa2.block_allowed(Level(0)) && !lpa2.block_allowed(Level(-1)));

    let g16 = Geometry::for_ia_bits_in(Granule::Size16KiB, 48, 48).unwrap();
    assert_eq!(g16.entry_size(Level(3)), 16 << 10);
    assert_eq!(g16.entry_size(Level(2)), 32 << 20);
    assert_eq!(g16.entry_size(Level(1)), 64 << 30);
    assert_eq!(g16.entry_size(Level(0)), 128 << 40);
    assert!(g16.block_allowed(Level(2)) && !g16.block_allowed(Level(1)));

    let g64 = Geometry::for_ia_bits_in(Granule::Size64KiB, 52, 52).unwrap();
    assert_eq!(g64.entry_size(Level(3)), 64 << 10);
    assert_eq!(g64.entry_size(Level(2)), 512 << 20);
    assert_eq!(g64.entry_size(Level(1)), 4 << 40);
    assert!(g64.block_allowed(Level(2)) && !g64.block_allowed(Level(1)));
    assert_eq!(g64.root_entries(), 1024);
}

#[test]
fn output_address_layouts() {
    let lpa2_4k = TableFormat::new(Granule::Size4KiB, true).unwrap();
    let lpa2_16k = TableFormat::new(Granule::Size16KiB, true).unwrap();
    let f64k = TableFormat::from(Granule::Size64KiB);
    // (format, address, its bits in a descriptor)
    let cases = [
        (
            TableFormat::FOUR_KIB,
            0x0000_ffff_ffff_f000,
            0x0000_ffff_ffff_f000,
        ),
        (
            Granule::Size16KiB.into(),
            0x0000_8000_0000_4000,
            0x0000_8000_0000_4000,
        ),
        (f64k, 0x000f_0001_0000_0000, 0x0000_0001_0000_f000),
        (f64k, 0x000a_1234_5678_0000, 0x0000_1234_5678_a000),
        (lpa2_4k, 0x000c_0000_0000_1000, 0x0000_0000_0000_1300),
        (lpa2_4k, 0x0003_ffff_ffff_f000, 0x0003_ffff_ffff_f000),
        (lpa2_16k, 0x0004_0002_0000_4000, 0x0000_0002_0000_4100),
    ];
    for (format, pa, bits) in cases {
        assert_eq!(format.encode(pa), bits, "{format}: encode {pa:#x}");
        assert_eq!(format.decode(bits), pa, "{format}: decode {bits:#x}");
        assert_eq!(bits & !format.oa_mask(), 0, "{format}");
    }
    // Without LPA2, bits 9:8 are shareability and no address bit.
    assert_eq!(TableFormat::FOUR_KIB.decode(0x300 | 0x1000), 0x1000);
    assert!(!lpa2_4k.has_shareability() && f64k.has_shareability());
}

#[test]
fn coarsest_leaf_is_the_largest_allowed_entry_a_size_holds() {
    for format in all_formats() {
        let g = Geometry::for_ia_bits_in(format, 48, 48).unwrap();
        let page = g.granule().size();
        for size in [
            page,
            2 * page,
            g.entry_size(Level(2)) - page,
            g.entry_size(Level(2)),
            g.entry_size(Level(1)),
            g.entry_size(Level(1)) * 3,
            1 << 48,
        ] {
            // The finest-to-coarsest scan the walk would otherwise make at
            // every level.
            let expected = (-1..=3)
                .map(Level)
                .filter(|&l| g.leaf_allowed(l) && g.entry_size(l) <= size)
                .min()
                .unwrap();
            assert_eq!(g.coarsest_leaf(size), expected, "{format:?}, {size:#x}");
        }
        assert_eq!(g.coarsest_leaf(page), Level::LAST);
        assert_eq!(
            g.coarsest_leaf(1 << 48),
            g.granule().min_block_level(),
            "{format:?}"
        );
    }
}

#[test]
fn a_geometry_has_the_levels_from_its_start_to_the_last() {
    let g = Geometry::for_ia_bits(40, 40).unwrap();
    assert_eq!(g.start_level(), Level(1));
    assert!(!g.has_level(Level(0)) && !g.has_level(Level(-1)));
    assert!(g.has_level(Level(1)) && g.has_level(Level(2)) && g.has_level(Level(3)));
    let lpa2 = Geometry::from_vtcr(vtcr(12, 0, TG4K, 6) | DS | SL2).unwrap();
    assert!(lpa2.has_level(Level(-1)) && lpa2.has_level(Level(3)));
}

/// Every field of the encoded VTCR_EL2, the ones decoding ignores
/// included: the walk's cacheability (IRGN0, ORGN0: write-back
/// write-allocate, 0b01), its shareability (SH0: inner, 0b11) and RES1.
#[test]
fn vtcr_encodes_every_field() {
    // T0SZ 24, SL0 1, TG0 0b00, PS 0b010.
    assert_eq!(Geometry::for_ia_bits(40, 40).unwrap().vtcr(), 0x8002_3558);
    // 64 KiB, 42 bits from level 2: T0SZ 22, SL0 1, TG0 0b01, PS 0b101.
    let g = Geometry::new(Granule::Size64KiB, 42, Level(2), 48).unwrap();
    assert_eq!(g.vtcr(), 0x8005_7556);
    // 4 KiB with LPA2 from level -1: T0SZ 12, SL0 0, PS 0b110, DS, SL2.
    let lpa2 = Geometry::from_vtcr(vtcr(12, 0, TG4K, 6) | DS | SL2).unwrap();
    assert_eq!(lpa2.vtcr(), 0x3_8006_350c);
}

//! The descriptor's bits, one by one.

use super::*;
use crate::addr::PhysAddr;
use crate::geometry::{Granule, Level, TableFormat};
use crate::prot::Prot;

fn leaf(prot: Prot, level: i8) -> Descriptor {
    Descriptor::leaf(
        PhysAddr(0x8_0000_0000),
        Level::new(level).unwrap(),
        LeafAttrs::from_prot(prot).unwrap(),
    )
}

#[test]
fn page_and_block_type_bits() {
    let page = leaf(Prot::R, 3);
    assert_eq!(page.bits() & 0b11, 0b11, "level-3 page: valid + bit 1");
    assert!(page.is_leaf(Level::LAST) && !page.is_table(Level::LAST));
    let block = leaf(Prot::R, 2);
    assert_eq!(block.bits() & 0b11, 0b01, "block: valid, bit 1 clear");
    assert!(block.is_leaf(Level::new(2).unwrap()));
    let table = Descriptor::table(PhysAddr(0x1234_5000), TableFormat::FOUR_KIB);
    assert_eq!(table.bits(), 0x1234_5003);
    assert!(table.is_table(Level::new(0).unwrap()));
    assert_eq!(
        table.output_address(Granule::Size4KiB),
        PhysAddr(0x1234_5000)
    );
}

#[test]
fn every_attribute_bit() {
    assert_eq!(
        leaf(Prot::empty(), 3).bits() >> 2 & 0xf,
        0b1111,
        "normal WB"
    );
    assert_eq!(
        leaf(Prot::NORMAL_NC, 3).bits() >> 2 & 0xf,
        0b0101,
        "normal NC"
    );
    assert_eq!(
        leaf(Prot::DEVICE, 3).bits() >> 2 & 0xf,
        0b0001,
        "device nGnRE"
    );
    assert_eq!(leaf(Prot::R, 3).bits() & (0b11 << 6), 1 << 6, "S2AP read");
    assert_eq!(leaf(Prot::W, 3).bits() & (0b11 << 6), 1 << 7, "S2AP write");
    assert_eq!(leaf(Prot::RW, 3).bits() & (0b11 << 6), 0b11 << 6);
    assert_eq!(
        leaf(Prot::empty(), 3).bits() >> 8 & 0b11,
        0b11,
        "inner shareable"
    );
    assert_ne!(
        leaf(Prot::empty(), 3).bits() & (1 << 10),
        0,
        "AF set on new leaves"
    );
    assert_eq!(leaf(Prot::X, 3).bits() >> 53 & 0b11, 0b00, "PX+UX");
    assert_eq!(leaf(Prot::UX, 3).bits() >> 53 & 0b11, 0b01, "UX only");
    assert_eq!(
        leaf(Prot::empty(), 3).bits() >> 53 & 0b11,
        0b10,
        "no execute"
    );
    assert_eq!(leaf(Prot::PX, 3).bits() >> 53 & 0b11, 0b11, "PX only");
    assert_eq!(leaf(Prot::SW0, 3).bits() >> 55 & 0xf, 0b0001);
    assert_eq!(leaf(Prot::SW3, 3).bits() >> 55 & 0xf, 0b1000);
    assert_eq!(
        leaf(Prot::R, 3).output_address(Granule::Size4KiB),
        PhysAddr(0x8_0000_0000)
    );
}

#[test]
fn prot_round_trips() {
    for prot in [
        Prot::R,
        Prot::RW,
        Prot::RWX,
        Prot::R | Prot::PX,
        Prot::R | Prot::UX,
        Prot::R | Prot::DEVICE,
        Prot::RW | Prot::NORMAL_NC,
        Prot::R | Prot::SW2 | Prot::SW0,
    ] {
        assert_eq!(leaf(prot, 3).prot(), prot);
    }
}

#[test]
fn bad_protections() {
    assert!(LeafAttrs::from_prot(Prot::DEVICE | Prot::NORMAL_NC).is_err());
    assert!(LeafAttrs::from_prot(Prot::DEVICE | Prot::PX).is_err());
    assert!(LeafAttrs::from_prot(Prot::NORMAL_NC | Prot::UX).is_err());
    assert!(LeafAttrs::from_prot(Prot::from_bits_retain(1 << 40)).is_err());
}

#[test]
fn setters_touch_one_bit() {
    let d = leaf(Prot::RW, 3);
    assert_eq!(d.with_writable(false).bits(), d.bits() & !(1 << 7));
    assert_eq!(d.with_readable(false).bits(), d.bits() & !(1 << 6));
    assert_eq!(d.with_young(false).bits(), d.bits() & !(1 << 10));
    assert_eq!(d.with_exec(Exec::Both).bits() >> 53 & 0b11, 0);
    assert!(!d.with_writable(false).differs_beyond_perms(d));
    assert!(d.with_young(false).differs_beyond_perms(d));
}

#[test]
fn annotations_and_locked_marker() {
    let a = Descriptor::annotation(42).unwrap();
    assert!(!a.is_valid() && a.is_counted());
    assert_eq!(a.owner(), Some(42));
    assert_eq!(a.bits(), 42 << 2);
    assert!(Descriptor::annotation(MAX_OWNER_ID + 1).is_err());
    assert!(Descriptor::LOCKED.is_locked() && Descriptor::LOCKED.is_counted());
    assert_eq!(Descriptor::LOCKED.owner(), None);
    assert!(!Descriptor::INVALID.is_counted());
}

#[test]
fn sixty_four_k_output_address_high_bits() {
    let d = Descriptor::from_bits(0x0000_1234_5678_0000 | 0xa000 | 0b11);
    assert_eq!(
        d.output_address(Granule::Size64KiB),
        PhysAddr(0x000a_1234_5678_0000)
    );
}

fn lpa2(granule: Granule) -> TableFormat {
    TableFormat::new(granule, true).unwrap()
}

#[test]
fn every_format_round_trips_leaves_and_tables() {
    let attrs = LeafAttrs::from_prot(Prot::RW | Prot::SW1).unwrap();
    // (format, a 52-bit address where the format has them)
    let cases = [
        (TableFormat::FOUR_KIB, 0x0000_8765_4321_0000u64),
        (Granule::Size16KiB.into(), 0x0000_8765_4321_0000),
        (Granule::Size64KiB.into(), 0x000f_8765_4321_0000),
        (lpa2(Granule::Size4KiB), 0x000f_8765_4321_f000),
        (lpa2(Granule::Size16KiB), 0x000e_8765_4321_c000),
    ];
    for (format, pa) in cases {
        for level in [1, 2, 3] {
            let d = Descriptor::leaf_in(format, PhysAddr(pa), Level::new(level).unwrap(), attrs);
            assert_eq!(d.output_address(format), PhysAddr(pa), "{format} L{level}");
            assert_eq!(d.attrs(), attrs, "{format}: attributes survive");
            assert_eq!(d.prot(), Prot::RW | Prot::SW1);
            let sh = d.bits() >> 8 & 0b11;
            if format.lpa2() {
                assert_eq!(sh, pa >> 50, "{format}: bits 9:8 are PA[51:50]");
            } else {
                assert_eq!(sh, 0b11, "{format}: inner shareable in the descriptor");
                // Without LPA2 the format-free constructor agrees.
                assert_eq!(
                    Descriptor::leaf(PhysAddr(pa), Level::new(level).unwrap(), attrs),
                    d
                );
            }
        }
        let t = Descriptor::table(PhysAddr(pa), format);
        assert!(t.is_table(Level::new(0).unwrap()));
        assert_eq!(t.output_address(format), PhysAddr(pa), "{format}: table");
    }
}

#[test]
fn a_change_of_the_top_address_bits_needs_break_before_make() {
    let attrs = LeafAttrs::from_prot(Prot::RW).unwrap();
    for (format, a, b) in [
        (
            lpa2(Granule::Size4KiB),
            0x0004_0000_0000_0000u64,
            0x0008_0000_0000_0000u64,
        ),
        (
            lpa2(Granule::Size4KiB),
            0x0001_0000_0000_0000,
            0x0002_0000_0000_0000,
        ),
        (
            Granule::Size64KiB.into(),
            0x0001_0000_0000_0000,
            0x0002_0000_0000_0000,
        ),
    ] {
        let old = Descriptor::leaf_in(format, PhysAddr(a), Level::LAST, attrs);
        let new = Descriptor::leaf_in(format, PhysAddr(b), Level::LAST, attrs);
        assert!(old.needs_break_to(new), "{format}: {a:#x} -> {b:#x}");
        assert!(!old.needs_break_to(old.with_writable(false)));
    }
}

/// Each XN value and the exception levels it lets execute from, as its
/// documentation says: bit 1 EL1, bit 0 EL0.
const EXEC_LEVELS: [(Exec, u8); 4] = [
    (Exec::Both, 0b11),
    (Exec::El1Only, 0b10),
    (Exec::El0Only, 0b01),
    (Exec::Never, 0b00),
];

#[test]
fn exec_levels_both_ways() {
    for (exec, levels) in EXEC_LEVELS {
        assert_eq!(exec.levels(), levels, "{exec:?}");
        assert_eq!(Exec::from_levels(levels), exec, "{levels:#b}");
    }
}

#[test]
fn removing_execution_at_either_level_removes_permissions() {
    let base = leaf(Prot::RW, 3);
    for (from, had) in EXEC_LEVELS {
        for (to, has) in EXEC_LEVELS {
            let lost = had & !has != 0;
            assert_eq!(
                base.with_exec(from).removes_permissions(base.with_exec(to)),
                lost,
                "{from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn access_bits_read_back_as_they_were_set() {
    let rw = leaf(Prot::RW, 3);
    assert!(rw.readable() && rw.writable());
    let w_only = rw.with_readable(false);
    assert!(!w_only.readable() && w_only.writable());
    assert_eq!(w_only.bits(), rw.bits() & !(1 << 6), "S2AP[0] is bit 6");
    assert!(w_only.with_readable(true).readable());
}

#[test]
fn software_bits_are_bits_58_to_55() {
    let plain = leaf(Prot::RW, 3);
    assert_eq!(plain.sw_bits(), 0);
    for sw in [0b0001u8, 0b1010, 0b1111] {
        let tagged = Descriptor::from_bits(plain.bits() | u64::from(sw) << 55);
        assert_eq!(tagged.sw_bits(), sw);
        assert!(
            !tagged.differs_beyond_sw(plain),
            "{sw:#b}: software bits only"
        );
        assert!(!plain.differs_beyond_sw(tagged));
    }
    assert!(!plain.differs_beyond_sw(plain));
    assert!(plain.with_writable(false).differs_beyond_sw(plain));
    assert!(
        leaf(Prot::RW, 2).differs_beyond_sw(plain),
        "block against page"
    );
}

#[test]
fn losing_read_or_write_removes_permissions() {
    let rw = leaf(Prot::RW, 3);
    let r = rw.with_writable(false);
    let w = rw.with_readable(false);
    assert!(rw.removes_permissions(r) && rw.removes_permissions(w));
    assert!(!r.removes_permissions(rw) && !w.removes_permissions(rw));
    assert!(!rw.removes_permissions(rw));
    // Only a change between two valid leaves takes anything away: a new
    // leaf was never cached, and a cleared one is invalidated anyway.
    let nx = leaf(Prot::R, 3);
    assert!(!Descriptor::INVALID.removes_permissions(nx));
    assert!(!nx.removes_permissions(Descriptor::INVALID));
}

//! Argument checks (`src/stage2/args.rs`): bad input is an error that
//! leaves the table alone.

mod common;

use common::*;
use pgwalk::geometry::{Geometry, Granule};
use pgwalk::host::HeapMemory;
use pgwalk::hyp::HypTable;
use pgwalk::kvm::KvmMapOptions;
use pgwalk::{Error, Ipa, PhysAddr, Prot, Va};

#[test]
fn errors_for_bad_input_leave_the_table_alone() {
    let mut t = table(40);
    map(&mut t, 0, K4, 0x8000_0000, Prot::R).unwrap();
    let live = t.mm().live_pages();
    let cases: [(u64, u64, u64, Prot); 7] = [
        (0x1001, K4, 0, Prot::R),
        (0, 0x1001, 0, Prot::R),
        (0, K4, 0x123, Prot::R),
        (0, 0, 0, Prot::R),
        (1 << 40, K4, 0, Prot::R),
        (0, K4, 1 << 48, Prot::R),
        (0, K4, 0, Prot::DEVICE | Prot::X),
    ];
    for (ipa, size, pa, prot) in cases {
        let e = map(&mut t, ipa, size, pa, prot);
        assert!(
            e.is_err(),
            "map({ipa:#x}, {size:#x}, {pa:#x}, {prot:?}) accepted"
        );
    }
    assert!(matches!(
        map(&mut t, (1 << 40) - K4, 2 * K4, 0, Prot::R),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        map(&mut t, 0, K4, 0x123, Prot::R),
        Err(Error::Misaligned { .. })
    ));
    assert!(matches!(
        map(&mut t, 0, 0, 0, Prot::R),
        Err(Error::EmptyRange)
    ));
    assert!(matches!(
        map(&mut t, 0, K4, 1 << 48, Prot::R),
        Err(Error::OutputTooLarge { .. })
    ));
    assert!(matches!(
        t.exclusive().unmap(Ipa(u64::MAX - 0xfff), K4),
        Err(Error::OutOfRange { .. })
    ));
    assert_eq!(t.mm().live_pages(), live);
    assert_eq!(
        leaf(&mut t, 0)
            .0
            .output_address(pgwalk::geometry::Granule::Size4KiB)
            .get(),
        0x8000_0000
    );
    check(&mut t);
}

/// Stage 2's map, the kvm layer's and EL2 stage 1's check their arguments
/// in one order: the range, then `phys` (alignment, then the output size),
/// then the protection. Each case below is wrong in two ways, and names
/// the one that comes first.
#[test]
fn the_three_maps_check_their_arguments_in_one_order() {
    let misaligned_phys = Error::Misaligned {
        what: "physical address",
        value: (1 << 48) + 0x123,
        granule: K4,
    };
    let too_large = Error::OutputTooLarge {
        pa: (1 << 48) + K4 - 1,
        oa_bits: 48,
    };
    let bad_prot = Prot::R | Prot::DEVICE | Prot::X;
    let cases: [(u64, u64, u64, Prot, Option<Error>); 5] = [
        (0, 0, 0x123, Prot::R, Some(Error::EmptyRange)),
        (1 << 40, K4, 0x123, Prot::R, None),
        (0, K4, (1 << 48) + 0x123, Prot::R, Some(misaligned_phys)),
        (0, K4, 1 << 48, bad_prot, Some(too_large)),
        (0, K4, 0x2000, bad_prot, None),
    ];
    let mut s2 = table(40);
    let mut hyp = HypTable::with_geometry(
        Geometry::for_va_bits(Granule::Size4KiB, 40, 48).unwrap(),
        HeapMemory::new(64),
        &mut (),
    )
    .unwrap();
    for (n, (addr, size, pa, prot, want)) in cases.into_iter().enumerate() {
        let own = map(&mut s2, addr, size, pa, prot).unwrap_err();
        let kvm = s2
            .exclusive()
            .kvm()
            .map(
                Ipa(addr),
                size,
                PhysAddr(pa),
                prot,
                &mut (),
                KvmMapOptions::default(),
            )
            .unwrap_err();
        let el2 = hyp
            .exclusive()
            .map(Va(addr), size, PhysAddr(pa), prot, &mut ())
            .unwrap_err();
        match (n, want) {
            (_, Some(want)) => assert_eq!(own, want, "case {n}"),
            (1, None) => assert!(matches!(own, Error::OutOfRange { .. }), "{own:?}"),
            (_, None) => assert!(matches!(own, Error::InvalidProt(_)), "{own:?}"),
        }
        assert_eq!(kvm, own, "case {n}: the kvm layer");
        assert_eq!(el2, own, "case {n}: EL2 stage 1");
    }
    check(&mut s2);
}

#[test]
fn one_page_operations_beyond_the_input_size_name_the_page() {
    let t = table(40);
    let page_at = |start: u64| Error::OutOfRange {
        start,
        end: start.saturating_add(K4),
        ia_bits: 40,
    };
    let top = !(K4 - 1);
    for (addr, want) in [
        ((1 << 40) + 0x123, page_at(1 << 40)),
        (1 << 52, page_at(1 << 52)),
        (u64::MAX, page_at(top)),
    ] {
        let ipa = Ipa(addr);
        let s = t.shared();
        assert_eq!(s.relax_perms(ipa, Prot::W), Err(want), "{addr:#x}");
        assert_eq!(s.mkyoung(ipa), Err(want), "{addr:#x}");
        let f = t.fault_handler();
        assert_eq!(f.relax_perms(ipa, Prot::W), Err(want), "{addr:#x}");
        assert_eq!(f.mkyoung(ipa), Err(want), "{addr:#x}");
        assert_eq!(f.kvm().mkyoung(ipa).map(|(o, _)| o), Err(want), "{addr:#x}");
    }
    // The last page below the limit is in range.
    let last = Ipa((1 << 40) - 1);
    assert_eq!(t.shared().mkyoung(last), Ok(false));
}

/// Every operation that checks its range before walking it (and then walks
/// it as checked) refuses a range that leaves the input size with the
/// range itself named, and takes the last page below the limit.
#[test]
fn range_operations_refuse_a_range_past_the_input_size_naming_it() {
    use pgwalk::kvm::KvmMapOptions;
    use pgwalk::PhysAddr;

    /// What each range operation answers for `start..start + size`, in order.
    fn answers(
        t: &mut pgwalk::Stage2<pgwalk::host::HeapMemory>,
        start: u64,
        size: u64,
    ) -> Vec<Result<(), Error>> {
        let (ipa, pa, prot) = (Ipa(start), PhysAddr(RAM), Prot::RW);
        let kvm = KvmMapOptions::default;
        vec![
            t.exclusive().map(ipa, size, pa, prot, &mut ()),
            t.fault_handler()
                .map(ipa, size, pa, prot, &mut ())
                .map(drop),
            t.exclusive().kvm().map(ipa, size, pa, prot, &mut (), kvm()),
            t.exclusive()
                .kvm()
                .map_stopping(ipa, size, pa, prot, &mut (), kvm())
                .map(drop),
            t.shared().kvm().map(ipa, size, pa, prot, &mut (), kvm()),
            t.fault_handler()
                .kvm()
                .map(ipa, size, pa, prot, &mut (), kvm())
                .map(drop),
            t.exclusive().kvm().set_owner(ipa, size, 1, &mut ()),
            t.exclusive().annotate(ipa, size, 1, &mut ()),
            t.exclusive().split(ipa, size, &mut ()),
            t.shared().wrprotect(ipa, size).map(|f| f.flush()),
            t.exclusive().wrprotect(ipa, size).map(|f| f.flush()),
            t.shared().clear_young(ipa, size).map(drop),
            t.exclusive().test_young(ipa, size).map(drop),
            t.shared().clean_dcache(ipa, size),
            t.exclusive().kvm().unmap(ipa, size),
            t.exclusive().unmap(ipa, size),
        ]
    }

    let mut t = table(40);
    let live = t.mm().live_pages();
    let limit = 1u64 << 40;
    let top = !(K4 - 1);
    // Past the limit; straddling it; wrapping around the top.
    for (start, size) in [(limit, K4), (limit - K4, 2 * K4), (top, 2 * K4)] {
        let want = Error::OutOfRange {
            start,
            end: start.saturating_add(size),
            ia_bits: 40,
        };
        for (i, got) in answers(&mut t, start, size).into_iter().enumerate() {
            assert_eq!(got, Err(want), "operation {i} on {start:#x}+{size:#x}");
        }
        assert_eq!(
            t.mm().live_pages(),
            live,
            "nothing was built for {start:#x}"
        );
    }
    for (i, got) in answers(&mut t, limit - K4, K4).into_iter().enumerate() {
        assert_eq!(got, Ok(()), "operation {i} on the last page");
    }
    check(&mut t);
}

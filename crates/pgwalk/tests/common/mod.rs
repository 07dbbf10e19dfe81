//! What the per-operation test files share: tables of the usual geometry
//! on a `HeapMemory` host, and shorthands for map, lookups and the
//! invariant check.

// Every test file is a crate of its own and uses only some of these.
#![allow(dead_code)]

pub mod watched;

use pgwalk::descriptor::Descriptor;
use pgwalk::geometry::Geometry;
use pgwalk::host::{check_invariants, HeapMemory, TableReport};
use pgwalk::{Error, Ipa, MemoryOps, PhysAddr, Prot, Stage2};

pub const K4: u64 = 4 << 10;
pub const M2: u64 = 2 << 20;
pub const G1: u64 = 1 << 30;
/// Table pages in the pools of [`table`] and [`table_with_pages`]: fewer
/// under Miri, which spends most of a small test zeroing and freeing a large
/// pool; every test that uses them needs far fewer.
pub const POOL_PAGES: usize = if cfg!(miri) { 128 } else { 8192 };
/// Where the guest memory the tests map starts.
pub const RAM: u64 = 0x8000_0000;

/// A 40-bit IPA space from level 1 (a two-page root), 48-bit PAs.
pub fn geometry() -> Geometry {
    Geometry::for_ia_bits(40, 48).unwrap()
}

/// An empty table of `ia_bits` input bits on a pool of [`POOL_PAGES`].
pub fn table(ia_bits: u8) -> Stage2<HeapMemory> {
    Stage2::with_geometry(
        Geometry::for_ia_bits(ia_bits, 48).unwrap(),
        HeapMemory::new(POOL_PAGES),
    )
    .unwrap()
}

/// A 40-bit table with `n` pages mapped read-write from IPA 0 to `RAM`.
pub fn table_with_pages(n: u64) -> Stage2<HeapMemory> {
    let mut t = Stage2::with_geometry(geometry(), HeapMemory::new(POOL_PAGES)).unwrap();
    if n > 0 {
        t.exclusive()
            .map(Ipa(0), n * K4, PhysAddr(RAM), Prot::RW, &mut ())
            .unwrap();
    }
    t
}

/// The table's invariants, or a panic naming the broken one. pgwalk's own
/// operations free every table they empty, so an empty one is a failure
/// here (the kernel-compatible ones may leave some: see
/// `TableReport::empty_tables`).
pub fn check(t: &mut Stage2<HeapMemory>) -> TableReport {
    let report = check_invariants(t).unwrap_or_else(|e| panic!("invariant broken: {e}"));
    assert_eq!(
        report.empty_tables, 0,
        "an empty table left linked: {report:?}"
    );
    report
}

/// The leaf translating `ipa`, and its level.
pub fn leaf(t: &mut Stage2<HeapMemory>, ipa: u64) -> (Descriptor, i8) {
    let (d, l) = t.exclusive().get_leaf(Ipa(ipa)).unwrap();
    (d, l.get())
}

/// An exclusive map with the default options.
pub fn map<M: MemoryOps<PagePool = ()>>(
    t: &mut Stage2<M>,
    ipa: u64,
    size: u64,
    pa: u64,
    prot: Prot,
) -> Result<(), Error> {
    t.exclusive()
        .map(Ipa(ipa), size, PhysAddr(pa), prot, &mut ())
}

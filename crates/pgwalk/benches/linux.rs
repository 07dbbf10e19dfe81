//! pgwalk's typed Rust API against Linux 6.12's `pgtable.c`, in one
//! process, plus the stream limit.
//!
//! `scripts/bench` builds the kernel's side first
//! (`kernel-parity/bench/build.sh`: the real `pgtable.c` compiled for the
//! host, its symbols renamed `linux_*`, with the benchmark's C host and
//! operations) and links it into this binary with
//! `cargo rustc --bench linux -- --cfg pgwalk_linux_peer -L … -l static=…`.
//! Built without that (`cargo bench`, clippy), the Linux column is empty and
//! the rest still runs.
//!
//! Every row is the C benchmark's (`kernel-parity/bench/main.c`), on the
//! same shape: a 40-bit IPA space with the 4 KiB granule (a two-page root at
//! level 1), 1 GiB of 4 KiB pages at IPA 1 GiB, output addresses 4 KiB off
//! 2 MiB alignment (no block fits; split maps 1 GiB-aligned, one block).
//! The two sides alternate run by run, their order swapped every run; each
//! figure is the median ns per 4 KiB page. pgwalk runs twice: on
//! `pgwalk::host::HeapMemory` with its statistics off (atomic reference
//! counts, a read side around every shared call: a thread-safe host), and
//! on the kernel's own host, the C pool of `kernel-parity/bench/host.c` with
//! the shim's TLB stubs (single-threaded, counted no-op maintenance), so
//! that its margin over Linux there is the walker's.
//!
//! `stream` is the limit a walk is held to: a plain loop over the same
//! leaf table pages pgwalk's `walk` row reads, summing each entry's valid
//! bit, in the same run. `pin` is what `HeapMemory`'s read side costs per
//! call (`MemoryOps::shared_walk` around nothing, as every shared or
//! fault-path call pays it), so that the host's share of the per-page rows
//! can be told apart from the walker's.
//!
//! Options: `--reps N` (default 11), `--quick` (5), `--smoke` (8 MiB, one
//! run), `--pages N` (N pages instead of 262,144), `--only ROW`,
//! `--side pgwalk|pgwalk-chost|linux` (one side, for
//! `valgrind --tool=callgrind --toggle-collect='*timed*'`). Prints
//! `result ROW IMPL NS` lines (IMPL `rust`, `rust_chost` or `linux`) and a
//! table.

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::median;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::{Geometry, TableFormat};
use pgwalk::host::HeapMemory;
use pgwalk::visit::{Action, WalkFlags, Walked};
use pgwalk::{Ipa, MapOptions, MemoryOps, PhysAddr, Prot, Stage2};

const IPA: u64 = 1 << 30;
const PAGE: u64 = 4096;
/// 4 KiB past a 2 MiB boundary: no block fits.
const PA_PAGES: u64 = 0x1_0000_0000 + PAGE;
/// 1 GiB-aligned: one 1 GiB block, for split.
const PA_BLOCKS: u64 = 0x1_0000_0000;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Map,
    Walk,
    Wrprotect,
    Fault,
    Relax,
    Unmap,
    Mkyoung,
    Young,
    Split,
    Owner,
    Stream,
    Pin,
}

const ROWS: [(&str, &str, Op); 12] = [
    ("map", "map 1 GiB of 4 KiB pages, one call", Op::Map),
    ("walk", "LEAF walk, counting valid leaves", Op::Walk),
    ("wrprotect", "wrprotect 1 GiB", Op::Wrprotect),
    ("fault", "fault-in: map 4 KiB, HandlesFault", Op::Fault),
    ("relax", "relax_perms(+W), one page per call", Op::Relax),
    ("unmap", "unmap 1 GiB", Op::Unmap),
    ("mkyoung", "mkyoung, one page per call", Op::Mkyoung),
    ("young", "test_clear_young 1 GiB", Op::Young),
    ("split", "split 1 GiB block to pages", Op::Split),
    ("owner", "set_owner 1 GiB", Op::Owner),
    ("stream", "stream limit: read the leaf tables", Op::Stream),
    ("pin", "the host's read side: one shared_walk", Op::Pin),
];

#[cfg(pgwalk_linux_peer)]
mod linux {
    //! The kernel's side: `kernel-parity/bench/bench.h`'s `struct
    //! bench_side`, as `libpgwalk_linux_peer.a` defines it for Linux.

    use std::ffi::{c_char, c_int, c_void};

    type T = *mut c_void;

    /// `struct bench_side`, field for field.
    #[repr(C)]
    pub struct Side {
        pub name: *const c_char,
        pub create: unsafe extern "C" fn() -> T,
        pub destroy: unsafe extern "C" fn(T),
        pub map: unsafe extern "C" fn(T, u64, u64, u64) -> c_int,
        pub walk: unsafe extern "C" fn(T, u64, u64, *mut u64) -> c_int,
        pub wrprotect: unsafe extern "C" fn(T, u64, u64) -> c_int,
        pub fault_in: unsafe extern "C" fn(T, u64, u64, u64) -> c_int,
        pub relax: unsafe extern "C" fn(T, u64, u64) -> c_int,
        pub unmap: unsafe extern "C" fn(T, u64, u64) -> c_int,
        pub mkyoung: unsafe extern "C" fn(T, u64, u64) -> c_int,
        pub test_clear_young: unsafe extern "C" fn(T, u64, u64, *mut bool) -> c_int,
        pub split: unsafe extern "C" fn(T, u64, u64) -> c_int,
        pub set_owner: unsafe extern "C" fn(T, u64, u64) -> c_int,
        pub typed: [Option<unsafe extern "C" fn()>; 5],
    }

    extern "C" {
        pub static bench_linux: Side;
        pub fn bench_host_init(pages: usize);
        pub fn bench_host_in_use() -> usize;
    }
}

/// What a pgwalk column runs on: a host, the memory cache its calls take
/// pages from, and how many pages it has handed out.
trait Host: MemoryOps<PagePool: Sized> + Clone {
    fn pool() -> Self::PagePool;
    fn in_use(&self) -> usize;
    /// Told the root of the table just built on this host, which a host
    /// may keep the address of (as the kernel keeps `pgd`).
    fn keep_root(&self, _root: PhysAddr) {}
}

impl Host for HeapMemory {
    fn pool() {}
    fn in_use(&self) -> usize {
        self.live_pages()
    }
}

/// The C benchmark's host (`kernel-parity/bench/host.c`) behind
/// `MemoryOps`: the page pool, counted cache maintenance and the kernel
/// shim's own TLB stubs, exactly what Linux's side calls, so that the
/// column's margin over Linux is the walker's.
#[cfg(pgwalk_linux_peer)]
mod chost {
    use std::cell::Cell;
    use std::ffi::c_void;
    use std::marker::PhantomData;
    use std::ptr::NonNull;

    use pgwalk::geometry::Level;
    use pgwalk::{Ipa, MemoryOps, PhysAddr};

    /// `struct bench_mc`: how many pages a call may take.
    #[repr(C)]
    pub struct Mc {
        pub nobjs: i32,
    }

    extern "C" {
        fn bench_zalloc_page(mc: *mut c_void) -> *mut c_void;
        fn bench_zalloc_pages_exact(size: usize) -> *mut c_void;
        fn bench_free_pages_exact(addr: *mut c_void, size: usize);
        fn bench_get_page(addr: *mut c_void);
        fn bench_put_page(addr: *mut c_void);
        fn bench_page_count(addr: *mut c_void) -> i32;
        fn bench_phys_to_virt(phys: u64) -> *mut c_void;
        fn bench_virt_to_phys(addr: *mut c_void) -> u64;
        fn bench_dcache_clean_inval_poc(addr: *mut c_void, size: usize);
        fn bench_icache_inval_pou(addr: *mut c_void, size: usize);
        pub fn bench_host_in_use() -> usize;
        fn kp_hyp___kvm_tlb_flush_vmid_ipa(mmu: *mut c_void, ipa: u64, level: i32);
        fn kp_hyp___kvm_tlb_flush_vmid_ipa_nsh(mmu: *mut c_void, ipa: u64, level: i32);
        fn kp_hyp___kvm_tlb_flush_vmid(mmu: *mut c_void);
    }

    /// The kernel's `TLBI_TTL_UNKNOWN`.
    const TTL_UNKNOWN: i32 = i32::MAX;

    /// The host. Not `Send` nor `Sync` (the raw-pointer marker, and the
    /// `Cell`): the C pool is single-threaded, and this type cannot leave
    /// the thread.
    ///
    /// It keeps its table's root and the root's address, converted once
    /// when the table is built, as the kernel keeps `pgd` (and as pgwalk's
    /// C layer starts from it): a walk starts there without a conversion,
    /// on both sides of the comparison.
    #[derive(Clone)]
    pub struct CHost {
        root: Cell<Option<(PhysAddr, NonNull<u8>)>>,
        _thread: PhantomData<*const ()>,
    }

    impl CHost {
        pub fn new() -> CHost {
            CHost {
                root: Cell::new(None),
                _thread: PhantomData,
            }
        }
    }

    fn pa(p: *mut c_void) -> Option<PhysAddr> {
        // SAFETY: `p` is NULL or a page of the pool, which the conversion
        // only does arithmetic on.
        (!p.is_null()).then(|| PhysAddr(unsafe { bench_virt_to_phys(p) }))
    }

    fn va(pa: PhysAddr) -> *mut c_void {
        // SAFETY: arithmetic on the address, nothing dereferenced.
        unsafe { bench_phys_to_virt(pa.get()) }
    }

    // SAFETY: host.c hands out zeroed, 4 KiB-aligned pages with count 1 and
    // reuses a page only after its count reached 0 (it aborts on misuse);
    // the root comes 64 KiB-aligned off the pool's bottom; `phys_to_virt`
    // maps every pool page for the life of the process, always to the
    // same address, so the root's address kept by `keep_root` is what
    // `phys_to_virt` gives for it, as `root_to_virt` answers. The pool is not
    // thread-safe, and nothing here can reach another thread (`CHost` is
    // neither `Send` nor `Sync`), so no walker ever runs beside another and
    // an unlinked table may be freed at once.
    unsafe impl MemoryOps for CHost {
        type PagePool = Mc;

        fn zalloc_page(&self, pool: &mut Mc) -> Option<PhysAddr> {
            // SAFETY: `pool` is a live `struct bench_mc`.
            pa(unsafe { bench_zalloc_page((pool as *mut Mc).cast()) })
        }
        fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
            // SAFETY: any size is accepted (refused with NULL).
            pa(unsafe { bench_zalloc_pages_exact(size) })
        }
        unsafe fn free_pages_exact(&self, pa: PhysAddr, size: usize) {
            // SAFETY: the caller's contract: `pa`, `size` from one call.
            unsafe { bench_free_pages_exact(va(pa), size) }
        }
        unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
            // SAFETY: unlinked by the caller, and no other walker exists.
            unsafe { pgwalk::free_unlinked(self, table, level) }
        }
        unsafe fn get_page(&self, pa: PhysAddr) {
            // SAFETY: `pa` is a live table page (the caller's contract).
            unsafe { bench_get_page(va(pa)) }
        }
        unsafe fn put_page(&self, pa: PhysAddr) {
            // SAFETY: the caller owns a reference on the page.
            unsafe { bench_put_page(va(pa)) }
        }
        unsafe fn get_page_at(&self, _: PhysAddr, entry: NonNull<u64>) {
            // SAFETY: `entry` is an entry of a live table page (the
            // caller's contract); host.c finds the page by any address in
            // it, as the kernel's walker hands `get_page` its `ptep`.
            unsafe { bench_get_page(entry.as_ptr().cast()) }
        }
        unsafe fn put_page_at(&self, _: PhysAddr, entry: NonNull<u64>) {
            // SAFETY: as above, for a reference the caller owns.
            unsafe { bench_put_page(entry.as_ptr().cast()) }
        }
        unsafe fn put_pages(&self, pa: PhysAddr, n: usize) {
            // One conversion for the page, as a host with the kernel's
            // `put_page(addr)` would make.
            let page = va(pa);
            for _ in 0..n {
                // SAFETY: as `put_page`, for `n` references the caller owns.
                unsafe { bench_put_page(page) }
            }
        }
        fn page_count(&self, pa: PhysAddr) -> usize {
            // SAFETY: host.c checks the address (it aborts outside the pool).
            unsafe { bench_page_count(va(pa)) as usize }
        }
        fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
            NonNull::new(va(pa).cast()).expect("a pool address")
        }
        fn root_to_virt(&self, root: PhysAddr) -> NonNull<u8> {
            match self.root.get() {
                Some((pa, va)) if pa == root => va,
                _ => self.phys_to_virt(root),
            }
        }
        fn dcache_clean_inval_poc(&self, pa: PhysAddr, size: u64) {
            // SAFETY: counts the call; the address is not dereferenced.
            unsafe { bench_dcache_clean_inval_poc(va(pa), size as usize) }
        }
        fn icache_inval_pou(&self, pa: PhysAddr, size: u64) {
            // SAFETY: as above.
            unsafe { bench_icache_inval_pou(va(pa), size as usize) }
        }
        fn tlb_flush_vmid_ipa(&self, ipa: Ipa, level: Level) {
            // SAFETY: the shim's stub counts the call; no MMU is read.
            unsafe {
                kp_hyp___kvm_tlb_flush_vmid_ipa(std::ptr::null_mut(), ipa.0, level.get().into())
            }
        }
        fn tlb_flush_vmid_ipa_unknown_level(&self, ipa: Ipa) {
            // SAFETY: as above.
            unsafe { kp_hyp___kvm_tlb_flush_vmid_ipa(std::ptr::null_mut(), ipa.0, TTL_UNKNOWN) }
        }
        fn tlb_flush_vmid_ipa_local(&self, ipa: Ipa, level: Option<Level>) {
            let level = level.map_or(TTL_UNKNOWN, |l| l.get().into());
            // SAFETY: as above.
            unsafe { kp_hyp___kvm_tlb_flush_vmid_ipa_nsh(std::ptr::null_mut(), ipa.0, level) }
        }
        fn tlb_flush_vmid_range(&self, _: Ipa, _: u64) {
            // The kernel without FEAT_TLBIRANGE: the whole VMID.
            self.tlb_flush_vmid()
        }
        fn tlb_flush_vmid(&self) {
            // SAFETY: as above.
            unsafe { kp_hyp___kvm_tlb_flush_vmid(std::ptr::null_mut()) }
        }
    }

    impl super::Host for CHost {
        fn pool() -> Mc {
            Mc { nobjs: 1 << 30 }
        }
        fn in_use(&self) -> usize {
            // SAFETY: reads the pool's count.
            unsafe { bench_host_in_use() }
        }
        fn keep_root(&self, root: PhysAddr) {
            self.root.set(Some((root, self.phys_to_virt(root))));
        }
    }
}

/// pgwalk's side of one run: a table on `mm`.
fn pg_table<M: Host>(mm: &M) -> Stage2<M> {
    let geometry = Geometry::for_ia_bits(40, 40).expect("geometry");
    let t = Stage2::with_geometry(geometry, mm.clone()).expect("root");
    t.mm().keep_root(t.root());
    t
}

fn pg_map<M: Host>(t: &mut Stage2<M>, size: u64, pa: u64) {
    t.exclusive()
        .map_with(
            Ipa(IPA),
            size,
            PhysAddr(pa),
            Prot::RW,
            &mut M::pool(),
            MapOptions::new(),
        )
        .expect("map");
}

/// The leaf tables of a mapped range, as pointers to their entries.
fn leaf_tables<M: Host>(t: &mut Stage2<M>, size: u64) -> Vec<*const u64> {
    let mm = t.mm().clone();
    let mut tables = Vec::new();
    let Walked::Completed = t
        .exclusive()
        .walk(Ipa(IPA), size, WalkFlags::TABLE_PRE, |ctx| {
            let level = ctx.level();
            if level.get() == 2 && ctx.old().is_table(level) {
                let pa = ctx.old().output_address(TableFormat::FOUR_KIB);
                tables.push(mm.phys_to_virt(pa).as_ptr().cast::<u64>().cast_const());
            }
            Ok(Action::Continue)
        })
        .expect("walk");
    tables
}

/// The stream limit: every entry of every leaf table, read once.
#[inline(never)]
fn timed_stream(tables: &[*const u64]) -> u64 {
    let mut valid = 0;
    for &table in tables {
        // SAFETY: `table` is a live leaf table of 512 entries (4 KiB) that
        // the caller's `Stage2` owns and nothing writes during the loop.
        let entries = unsafe { std::slice::from_raw_parts(table, 512) };
        valid += entries.iter().map(|e| e & 1).sum::<u64>();
    }
    valid
}

/// pgwalk's timed work for `op`, out of line for callgrind.
#[inline(never)]
fn timed_pgwalk<M: Host>(op: Op, t: &mut Stage2<M>, size: u64, tables: &[*const u64]) -> u64 {
    let pages = size / PAGE;
    let mut pool = M::pool();
    match op {
        Op::Map => pg_map(t, size, PA_PAGES),
        Op::Walk => {
            let mut seen = 0u64;
            let Walked::Completed = t
                .exclusive()
                .walk(Ipa(IPA), size, WalkFlags::LEAF, |ctx| {
                    seen += ctx.old().is_valid() as u64;
                    Ok(Action::Continue)
                })
                .expect("walk");
            return seen;
        }
        Op::Wrprotect => t
            .exclusive()
            .wrprotect(Ipa(IPA), size)
            .expect("wrprotect")
            .flush(),
        Op::Fault => {
            let fh = t.fault_handler();
            for i in 0..pages {
                let outcome = fh
                    .map_with(
                        Ipa(IPA + i * PAGE),
                        PAGE,
                        PhysAddr(PA_PAGES + i * PAGE),
                        Prot::RW,
                        &mut pool,
                        MapOptions::new(),
                    )
                    .expect("fault-in");
                assert_eq!(black_box(outcome), TableOutcome::Fixed);
            }
        }
        Op::Relax => {
            let fh = t.fault_handler();
            for i in 0..pages {
                let outcome = fh
                    .relax_perms(Ipa(IPA + i * PAGE), Prot::RW)
                    .expect("relax");
                assert_eq!(black_box(outcome), TableOutcome::Fixed);
            }
        }
        Op::Unmap => t.exclusive().unmap(Ipa(IPA), size).expect("unmap"),
        Op::Mkyoung => {
            let fh = t.fault_handler();
            for i in 0..pages {
                let outcome = fh.mkyoung(Ipa(IPA + i * PAGE)).expect("mkyoung");
                assert_eq!(black_box(outcome), TableOutcome::Fixed);
            }
        }
        Op::Young => return t.exclusive().clear_young(Ipa(IPA), size).expect("young") as u64,
        Op::Split => t
            .exclusive()
            .split(Ipa(IPA), size, &mut pool)
            .expect("split"),
        Op::Owner => t
            .exclusive()
            .annotate(Ipa(IPA), size, 1, &mut pool)
            .expect("set_owner"),
        Op::Stream => return timed_stream(tables),
        Op::Pin => {
            let mm = t.mm();
            for i in 0..pages {
                black_box(mm.shared_walk(|| black_box(i)));
            }
        }
    }
    0
}

/// One pgwalk run of `op`: set up, time, check; ns per page.
fn run_pgwalk<M: Host>(op: Op, mm: &M, size: u64) -> f64 {
    let pages = size / PAGE;
    let mut t = pg_table(mm);
    match op {
        Op::Walk | Op::Wrprotect | Op::Unmap | Op::Young | Op::Stream => {
            pg_map(&mut t, size, PA_PAGES)
        }
        Op::Relax => {
            pg_map(&mut t, size, PA_PAGES);
            t.shared()
                .wrprotect(Ipa(IPA), size)
                .expect("wrprotect")
                .flush();
        }
        Op::Mkyoung => {
            pg_map(&mut t, size, PA_PAGES);
            t.shared().clear_young(Ipa(IPA), size).expect("young");
        }
        Op::Split => pg_map(&mut t, size, PA_BLOCKS),
        Op::Map | Op::Fault | Op::Owner | Op::Pin => {}
    }
    let tables = if op == Op::Stream {
        leaf_tables(&mut t, size)
    } else {
        Vec::new()
    };
    let start = Instant::now();
    let got = timed_pgwalk(op, &mut t, size, &tables);
    let ns = start.elapsed().as_nanos() as f64 / pages as f64;
    match op {
        Op::Walk | Op::Stream => assert_eq!(got, pages, "valid leaves"),
        Op::Young => assert_eq!(got, 1, "test_clear_young found the range young"),
        Op::Unmap => assert_eq!(mm.in_use(), 2, "unmap left only the root"),
        _ => {}
    }
    drop(t);
    assert_eq!(mm.in_use(), 0, "pgwalk's pool is empty after the run");
    ns
}

/// The kernel's timed work for `op`, out of line for callgrind.
#[cfg(pgwalk_linux_peer)]
#[inline(never)]
fn timed_linux(op: Op, t: *mut std::ffi::c_void, pages: u64) -> (i32, u64) {
    // SAFETY: an immutable C object, initialised before main runs.
    let s = unsafe { &linux::bench_linux };
    let mut valid = 0u64;
    let mut young = false;
    // SAFETY: `t` is a live table from `s.create`, and every call is one the
    // C side defines for it with these argument types (bench.h); the out
    // pointers are live locals.
    let ret = unsafe {
        match op {
            Op::Map => (s.map)(t, IPA, pages, PA_PAGES),
            Op::Walk => (s.walk)(t, IPA, pages, &mut valid),
            Op::Wrprotect => (s.wrprotect)(t, IPA, pages),
            Op::Fault => (s.fault_in)(t, IPA, pages, PA_PAGES),
            Op::Relax => (s.relax)(t, IPA, pages),
            Op::Unmap => (s.unmap)(t, IPA, pages),
            Op::Mkyoung => (s.mkyoung)(t, IPA, pages),
            Op::Young => {
                let r = (s.test_clear_young)(t, IPA, pages, &mut young);
                valid = young as u64;
                r
            }
            Op::Split => (s.split)(t, IPA, pages),
            Op::Owner => (s.set_owner)(t, IPA, pages),
            Op::Stream | Op::Pin => unreachable!("pgwalk's rows alone"),
        }
    };
    (ret, valid)
}

/// One Linux run of `op`: set up, time, check; ns per page.
#[cfg(pgwalk_linux_peer)]
fn run_linux(op: Op, size: u64) -> f64 {
    // SAFETY: an immutable C object, initialised before main runs.
    let s = unsafe { &linux::bench_linux };
    let pages = size / PAGE;
    // SAFETY: the C side's functions, called as bench.h documents: a table
    // from `create`, used, then destroyed once; the out pointer is a local.
    unsafe {
        let t = (s.create)();
        assert!(!t.is_null(), "Linux: create");
        let mut young = false;
        let setup = match op {
            Op::Walk | Op::Wrprotect | Op::Unmap | Op::Young => (s.map)(t, IPA, pages, PA_PAGES),
            Op::Relax => match (s.map)(t, IPA, pages, PA_PAGES) {
                0 => (s.wrprotect)(t, IPA, pages),
                e => e,
            },
            Op::Mkyoung => match (s.map)(t, IPA, pages, PA_PAGES) {
                0 => (s.test_clear_young)(t, IPA, pages, &mut young),
                e => e,
            },
            Op::Split => (s.map)(t, IPA, pages, PA_BLOCKS),
            _ => 0,
        };
        assert_eq!(setup, 0, "Linux: setup");
        let start = Instant::now();
        let (ret, got) = timed_linux(op, t, pages);
        let ns = start.elapsed().as_nanos() as f64 / pages as f64;
        assert_eq!(ret, 0, "Linux: the operation");
        match op {
            Op::Walk => assert_eq!(got, pages, "Linux: valid leaves"),
            Op::Young => assert_eq!(got, 1, "Linux: test_clear_young"),
            Op::Unmap => assert_eq!(linux::bench_host_in_use(), 2, "Linux: unmap"),
            _ => {}
        }
        (s.destroy)(t);
        assert_eq!(linux::bench_host_in_use(), 0, "Linux: pool empty");
        ns
    }
}

struct Options {
    reps: usize,
    size: u64,
    only: Option<String>,
    side: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        reps: 11,
        size: 1 << 30,
        only: None,
        side: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.reps = 5,
            "--smoke" => {
                o.reps = 1;
                o.size = 8 << 20;
            }
            "--reps" => o.reps = args.next().and_then(|n| n.parse().ok()).expect("--reps N"),
            "--pages" => {
                let pages: u64 = args.next().and_then(|n| n.parse().ok()).expect("--pages N");
                assert!(
                    pages > 0 && pages % 512 == 0 && pages <= 1 << 18,
                    "--pages: a multiple of 512, at most 262,144"
                );
                o.size = pages * PAGE;
            }
            "--only" => o.only = args.next(),
            "--side" => o.side = args.next(),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    o
}

fn main() {
    let o = options();
    let want = |side: &str| o.side.as_deref().is_none_or(|s| s == side);
    let mm = HeapMemory::new(4096);
    mm.set_counting(false);
    #[cfg(pgwalk_linux_peer)]
    // SAFETY: reserves the C pool once, before any table exists.
    unsafe {
        linux::bench_host_init(4096)
    };
    #[cfg(pgwalk_linux_peer)]
    let chost = chost::CHost::new();
    let peer = cfg!(pgwalk_linux_peer);
    let pages = o.size / PAGE;
    println!(
        "# pgwalk (typed Rust) vs Linux 6.12 pgtable.c: {pages} pages of 4 KiB, median of {} runs, ns/page{}",
        o.reps,
        if peer {
            ""
        } else {
            " (no Linux peer linked: run scripts/bench)"
        }
    );
    // The columns: pgwalk on HeapMemory, pgwalk on the C benchmark's host,
    // Linux (on that host).
    const COLS: [&str; 3] = ["rust", "rust_chost", "linux"];
    let sides = ["pgwalk", "pgwalk-chost", "linux"];
    let mut table = Vec::new();
    for (key, what, op) in ROWS {
        if o.only.as_deref().is_some_and(|only| only != key) {
            continue;
        }
        let runs_col = |c: usize| {
            want(sides[c])
                && match c {
                    0 => true,
                    1 => peer && op != Op::Pin,
                    _ => peer && !matches!(op, Op::Stream | Op::Pin),
                }
        };
        let mut ns: [Vec<f64>; 3] = Default::default();
        // Run 0 is an untimed warm-up; the order rotates every run.
        for rep in 0..=o.reps {
            for turn in 0..3 {
                let c = (rep + turn) % 3;
                if !runs_col(c) {
                    continue;
                }
                let v = match c {
                    0 => run_pgwalk(op, &mm, o.size),
                    #[cfg(pgwalk_linux_peer)]
                    1 => run_pgwalk(op, &chost, o.size),
                    #[cfg(pgwalk_linux_peer)]
                    _ => run_linux(op, o.size),
                    #[cfg(not(pgwalk_linux_peer))]
                    _ => unreachable!("no peer linked"),
                };
                if rep > 0 {
                    ns[c].push(v);
                }
            }
        }
        let m = ns.map(|v| (!v.is_empty()).then(|| median(v)));
        for (col, v) in COLS.iter().zip(m) {
            if let Some(v) = v {
                // Six places: a one-entry annotation of 1 GiB is a few
                // thousandths of a nanosecond a page, which three places
                // rounded to zero (and its ratio out of the table).
                println!("result {key} {col} {v:.6}");
            }
        }
        table.push((what, m));
    }
    let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}×", a / b),
        _ => "—".to_string(),
    };
    println!();
    println!("| operation | pgwalk, HeapMemory | pgwalk, C host | Linux, C host | Linux / pgwalk (C host) |");
    println!("|---|---:|---:|---:|---:|");
    for (what, [r, rc, l]) in table {
        println!(
            "| {what} | {} | {} | {} | {} |",
            f(r),
            f(rc),
            f(l),
            ratio(l, rc)
        );
    }
}

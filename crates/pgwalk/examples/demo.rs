//! pgwalk at work: a guest's stage-2 table built, faulted in by vCPU threads
//! while dirty logging and page aging run beside them, then dumped.
//!
//! Run with `cargo run --release -p pgwalk --example demo`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use pgwalk::fault::TableOutcome;
use pgwalk::geometry::Geometry;
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::{Ipa, Mapping, PhysAddr, Prot, SpinStage2, Stage2};

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const M: u64 = 1 << 20;

/// The guest's memory map: what a VMM would register as memslots.
struct Region {
    name: &'static str,
    ipa: u64,
    size: u64,
    pa: u64,
    prot: Prot,
}

const FLASH: Region = Region {
    name: "flash",
    ipa: 0,
    size: 64 * M,
    pa: 0x2_0000_0000,
    prot: Prot::R.union(Prot::X),
};
const GIC: Region = Region {
    name: "gic",
    ipa: 0x0800_0000,
    size: 0x1_0000,
    pa: 0x2c00_0000,
    prot: Prot::RW.union(Prot::DEVICE),
};
const UART: Region = Region {
    name: "uart",
    ipa: 0x0900_0000,
    size: K4,
    pa: 0x1c09_0000,
    prot: Prot::RW.union(Prot::DEVICE),
};
/// 512 MiB of RAM: the first half backed by huge pages (faulted as 2 MiB
/// blocks), the second by small pages.
const RAM: Region = Region {
    name: "ram",
    ipa: 0x4000_0000,
    size: 512 * M,
    pa: 0x1_0000_0000,
    prot: Prot::RWX,
};

fn main() {
    let geometry = Geometry::for_ia_bits(40, 44).expect("40-bit IPA geometry");
    let mm = HeapMemory::new(1 << 16);
    let table = SpinStage2::new(Stage2::with_geometry(geometry, mm.clone()).expect("root"));

    println!(
        "pgwalk demo: stage-2 table, 40-bit IPA, 4 KiB granule, root at level {} ({} page(s))",
        geometry.start_level(),
        geometry.root_pages()
    );
    println!("VTCR_EL2 = {:#x}\n", geometry.vtcr());

    // The VMM maps flash and devices up-front, under the write lock.
    {
        let mut guard = table.write();
        let mut h = guard.exclusive();
        for r in [&FLASH, &GIC, &UART] {
            h.map(Ipa(r.ipa), r.size, PhysAddr(r.pa), r.prot, &mut ())
                .unwrap_or_else(|e| panic!("mapping {}: {e}", r.name));
        }
    }

    // Then RAM is faulted in lazily by vCPUs, under the read lock, while a
    // dirty-logging thread write-protects and an aging thread clears access
    // flags.
    let vcpus = 3u64;
    let fixed = AtomicU64::new(0);
    let spurious = AtomicU64::new(0);
    let retried = AtomicU64::new(0);
    let wrprotects = AtomicU64::new(0);
    let young = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        let mut vcpu_threads = Vec::new();
        for cpu in 0..vcpus {
            let (table, fixed, spurious, retried) = (&table, &fixed, &spurious, &retried);
            vcpu_threads.push(s.spawn(move || {
                // Each vCPU touches all of RAM, in its own order, twice: the
                // second pass finds everything mapped (spurious faults). A
                // fault unit is a 2 MiB block in the huge-page half, a page in
                // the other; stepping by a number coprime to the unit count
                // visits every unit once per pass.
                let huge = RAM.size / 2;
                let blocks = huge / M2;
                let units = blocks + (RAM.size - huge) / K4;
                for pass in 0..2 {
                    let mut unit = (cpu * 7919 + pass * 104_729) % units;
                    for _ in 0..units {
                        unit = (unit + 40_507) % units;
                        let (off, size) = if unit < blocks {
                            (unit * M2, M2)
                        } else {
                            (huge + (unit - blocks) * K4, K4)
                        };
                        let guard = table.read();
                        let h = guard.fault_handler();
                        let outcome = h
                            .map(
                                Ipa(RAM.ipa + off),
                                size,
                                PhysAddr(RAM.pa + off),
                                RAM.prot,
                                &mut (),
                            )
                            .expect("fault-in");
                        match outcome {
                            TableOutcome::Fixed => fixed.fetch_add(1, Ordering::Relaxed),
                            TableOutcome::Spurious => spurious.fetch_add(1, Ordering::Relaxed),
                            TableOutcome::Retry => retried.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
            }));
        }
        let (tbl, wrprotects, done_ref) = (&table, &wrprotects, &done);
        s.spawn(move || {
            // Dirty logging: write-protect RAM in 2 MiB chunks, over and over.
            let mut off = 0;
            while !done_ref.load(Ordering::Relaxed) {
                let guard = tbl.read();
                let h = guard.shared();
                h.wrprotect(Ipa(RAM.ipa + off), M2)
                    .expect("wrprotect")
                    .flush();
                wrprotects.fetch_add(1, Ordering::Relaxed);
                off = (off + 37 * M2) % RAM.size;
            }
        });
        let (tbl, young, done_ref) = (&table, &young, &done);
        s.spawn(move || {
            // Page aging: test and clear the access flag, 64 KiB at a time.
            let mut off = 0;
            while !done_ref.load(Ordering::Relaxed) {
                let guard = tbl.read();
                if guard
                    .shared()
                    .clear_young(Ipa(RAM.ipa + off), 16 * K4)
                    .expect("age")
                {
                    young.fetch_add(1, Ordering::Relaxed);
                }
                off = (off + 16 * K4) % RAM.size;
            }
        });
        for t in vcpu_threads {
            t.join().expect("vCPU thread");
        }
        done.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed();
    let faults = fixed.load(Ordering::Relaxed)
        + spurious.load(Ordering::Relaxed)
        + retried.load(Ordering::Relaxed);
    println!(
        "{vcpus} vCPUs faulted in {} MiB of RAM in {:.1} ms",
        RAM.size / M,
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "  {faults} faults handled, {:.2} M faults/s",
        faults as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "  fixed {}, spurious {}, lost a race and resumed the guest {}",
        fixed.load(Ordering::Relaxed),
        spurious.load(Ordering::Relaxed),
        retried.load(Ordering::Relaxed)
    );
    println!(
        "  beside them: {} write-protect passes of 2 MiB, {} young 64 KiB ranges found by aging",
        wrprotects.load(Ordering::Relaxed),
        young.load(Ordering::Relaxed)
    );

    let mut table = table.into_inner();
    mm.quiesce();
    let report = check_invariants(&mut table).expect("table invariants");
    let s = mm.stats();
    println!(
        "\nTable: {} table pages below the root; leaves by level {:?}; {} deferred frees",
        report.table_pages, report.leaves, s.deferred_frees
    );
    println!(
        "TLB invalidations: {} by IPA, {} by range; cache maintenance: {} D-cache, {} I-cache\n",
        s.tlbi_ipa, s.tlbi_range, s.dcache_cleans, s.icache_invals
    );

    println!(
        "{:<27} {:<14} {:>10} {:>5}  attributes",
        "IPA range", "PA", "size", "level"
    );
    let h = table.exclusive();
    let mut runs = Vec::new();
    h.for_each_mapping(Ipa(0), geometry.ia_limit(), |m| runs.push(*m))
        .expect("dump");
    let shown = 24;
    for m in runs.iter().take(shown) {
        println!("{}", line(m));
    }
    if runs.len() > shown {
        println!(
            "... {} more runs (RAM is a patchwork of write-protected and writable pages)",
            runs.len() - shown
        );
    }
    drop(table);
    println!(
        "\nTable destroyed: {} pages still allocated, {} double frees",
        mm.live_pages(),
        mm.stats().double_frees
    );
}

fn line(m: &Mapping) -> String {
    let d = m.leaf;
    let perms = format!(
        "{}{}{}",
        if d.readable() { 'R' } else { '-' },
        if d.writable() { 'W' } else { '-' },
        if d.is_executable() { 'X' } else { '-' }
    );
    let mem = match d.mem_attr() {
        Ok(pgwalk::descriptor::MemAttr::NormalWriteBack) => "normal-wb",
        Ok(pgwalk::descriptor::MemAttr::NormalNonCacheable) => "normal-nc",
        Ok(pgwalk::descriptor::MemAttr::DeviceNGnRE) => "device",
        Err(_) => "other",
    };
    let size = if m.size >= M {
        format!("{} MiB", m.size / M)
    } else {
        format!("{} KiB", m.size >> 10)
    };
    format!(
        "{:#012x}..{:#012x}  {:#014x} {:>10} {:>5}  {perms} {mem}{}",
        m.ipa.get(),
        m.ipa.get() + m.size,
        m.pa.get(),
        size,
        m.level.get(),
        if d.young() { " young" } else { "" }
    )
}

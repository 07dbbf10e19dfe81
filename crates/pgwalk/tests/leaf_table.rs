//! `VisitCtx::take_leaf_table` (`src/walk/leaf_table.rs`): a last-level
//! table handed to the visitor whole sees exactly the entries a `LEAF`
//! walk visits one by one, in the same order, and the walk moves past it.

mod common;

use common::*;
use pgwalk::host::HeapMemory;
use pgwalk::visit::{Action, VisitCtx, VisitKind, WalkFlags};
use pgwalk::{Capability, Ipa, PhysAddr, Prot, Stage2};

/// Pages mapped from page 5: over three leaf tables (the first and last
/// partly filled); two under Miri, where each visit is slow.
const PAGES: u64 = if cfg!(miri) { 520 } else { 1100 };
/// The leaf tables those pages fill.
const PAGE_TABLES: usize = (5 + PAGES as usize).div_ceil(512);

/// A table with [`PAGES`] pages, an annotation in the fourth 2 MiB, a
/// 2 MiB block after it and holes around: leaves at two levels, and tables
/// at every level above.
fn mixed() -> Stage2<HeapMemory> {
    let mut t = table(40);
    let mut h = t.exclusive();
    h.map(Ipa(5 * K4), PAGES * K4, PhysAddr(RAM), Prot::RW, &mut ())
        .unwrap();
    h.map(Ipa(4 * M2), M2, PhysAddr(RAM + M2), Prot::R, &mut ())
        .unwrap();
    h.annotate(Ipa(3 * M2 + 7 * K4), K4, 9, &mut ()).unwrap();
    t
}

/// (address, bits, level) of every leaf visit of a plain `LEAF` walk.
fn one_by_one<C: Capability>(
    walk: impl FnOnce(&mut dyn FnMut(&mut VisitCtx<'_, C, HeapMemory>)),
) -> Vec<(u64, u64, i8)> {
    let mut out = Vec::new();
    walk(&mut |ctx| out.push((ctx.entry_addr().get(), ctx.old().bits(), ctx.level().get())));
    out
}

/// The same, with the leaf tables taken whole; also counts the leaf
/// visits at the last level, which taking the tables must leave none of.
fn batched<C: Capability>(
    walk: impl FnOnce(&mut dyn FnMut(&mut VisitCtx<'_, C, HeapMemory>)),
) -> (Vec<(u64, u64, i8)>, usize) {
    let (mut out, mut last_level_visits) = (Vec::new(), 0);
    walk(&mut |ctx| {
        if let Some(t) = ctx.take_leaf_table() {
            assert!(!t.is_empty());
            assert_eq!(t.iter().len(), t.len());
            // Read three ways: one by one, by the iterator, in chunks.
            let mut chunked = Vec::new();
            let mut buf = [0u64; 7];
            while chunked.len() < t.len() {
                let n = t.read_bits(chunked.len(), &mut buf);
                assert!(n > 0 && n <= buf.len());
                chunked.extend_from_slice(&buf[..n]);
            }
            assert_eq!(t.read_bits(t.len(), &mut buf), 0, "nothing past the end");
            for (i, d) in t.iter().enumerate() {
                assert_eq!(d, t.get(i));
                assert_eq!(d.bits(), chunked[i]);
                out.push((t.addr().get() + i as u64 * t.entry_size(), d.bits(), 3));
            }
        } else if ctx.kind() == VisitKind::Leaf {
            last_level_visits += usize::from(ctx.level().is_last());
            out.push((ctx.entry_addr().get(), ctx.old().bits(), ctx.level().get()));
        }
    });
    (out, last_level_visits)
}

/// Ranges that start and end inside leaf tables, inside the block, on
/// table boundaries, and one page long (under Miri, the first covers what
/// the two it leaves out do).
const RANGES: &[(u64, u64)] = if cfg!(miri) {
    &[(0, 6 * M2), (M2 - K4, 2 * K4), (9 * K4, K4)]
} else {
    &[
        (0, 6 * M2),
        (3 * K4, 700 * K4),
        (M2 - K4, 2 * K4),
        (4 * M2 + 5 * K4, M2),
        (9 * K4, K4),
    ]
};

/// Over every range of [`RANGES`], the batched walk sees what the plain
/// one sees. `walk(addr, size, flags, visit)` walks the table under test
/// with the capability under test, calling `visit` on every visit.
fn batched_sees_what_one_by_one_sees<C: Capability>(
    mut walk: impl FnMut(u64, u64, WalkFlags, &mut dyn FnMut(&mut VisitCtx<'_, C, HeapMemory>)),
) {
    for &(addr, size) in RANGES {
        let want = one_by_one(|f| walk(addr, size, WalkFlags::LEAF, f));
        let flags = WalkFlags::TABLE_PRE | WalkFlags::LEAF;
        let (got, last_level_visits) = batched(|f| walk(addr, size, flags, f));
        assert_eq!(got, want, "{addr:#x} + {size:#x}");
        assert_eq!(last_level_visits, 0, "no last-level entry visited alone");
    }
}

#[test]
fn exclusive_batched_sees_what_one_by_one_sees() {
    let mut t = mixed();
    batched_sees_what_one_by_one_sees(|addr, size, flags, f| {
        let w = t.exclusive().walk(Ipa(addr), size, flags, |ctx| {
            f(ctx);
            Ok(Action::Continue)
        });
        assert!(w.unwrap().is_completed());
    });
    check(&mut t);
}

#[test]
fn shared_batched_sees_what_one_by_one_sees() {
    let t = mixed();
    batched_sees_what_one_by_one_sees(|addr, size, flags, f| {
        let w = t.shared().walk(Ipa(addr), size, flags, |ctx| {
            f(ctx);
            Ok(Action::Continue)
        });
        assert!(w.unwrap().is_completed());
    });
}

#[test]
fn only_a_table_above_the_last_level_is_taken() {
    let mut t = mixed();
    let (mut taken, mut refused, mut post) = (0, 0, 0);
    let flags = WalkFlags::TABLE_PRE | WalkFlags::LEAF | WalkFlags::TABLE_POST;
    let w = t.exclusive().walk(Ipa(0), 6 * M2, flags, |ctx| {
        let level = ctx.level().get();
        match (ctx.kind(), ctx.take_leaf_table()) {
            (VisitKind::TablePre, Some(_)) => {
                assert_eq!(level, 2);
                taken += 1;
            }
            (VisitKind::TablePost, None) => {
                // Only the level-1 table, whose children were not taken.
                assert_eq!(level, 1);
                post += 1;
            }
            (_, None) => refused += 1,
            (kind, Some(_)) => panic!("a leaf table on a {kind:?} visit at level {level}"),
        }
        Ok(Action::Continue)
    });
    assert!(w.unwrap().is_completed());
    // The leaf tables of pages and the one holding the annotation.
    assert_eq!(taken, PAGE_TABLES + 1);
    // The level-1 table entry's visit, the block (level-2 entry 4) and the
    // empty level-2 entries among the first six.
    assert_eq!(refused, 1 + 1 + (6 - PAGE_TABLES - 2));
    assert_eq!(post, 1);
}

//! The batched read-only walk (`pgw_walk_leaf_runs`): the leaves of a range
//! handed to C a run at a time instead of an entry at a time.
//!
//! A C visitor per entry costs an indirect call and a visit structure per
//! entry, which is most of what a scan of a large range spends (the LEAF
//! walk row of `scripts/bench`). Here the core's walk takes each leaf
//! table whole (`VisitCtx::take_leaf_table`) and copies its entries into a
//! buffer that C gets `PGW_LEAF_RUN_MAX` at a time; the few leaves above
//! the last level (blocks, empty entries) are gathered the same way.
//! Copies, not pointers into the table: under a read lock an entry may
//! change between the walker's load and C's, and a copy is what the walk
//! classified as a leaf.

use core::ffi::{c_int, c_void};

use pgwalk::visit::{Action, Unfinished, VisitKind, WalkFlags, Walked};
use pgwalk::Ipa;

use crate::abi::{kvm_pgtable, kvm_pte_t, pgw_leaf_run, pgw_leaf_run_fn, PGW_LEAF_RUN_MAX};
use crate::convert::Halt;
use crate::errno::{call, is_errno_or_zero, PGW_EBADMSG, PGW_EFAULT};
use crate::host::{with_view, Needs, TablePtr};

type RunFn = unsafe extern "C" fn(*const pgw_leaf_run) -> c_int;

/// The run being gathered, and where it goes.
///
/// A walk visits the entries of its range one after the other with no gap
/// (each visit moves it to the next entry's first address), so a run is
/// the entries of one level in a row: the first one's address and size
/// give the rest.
struct Runs {
    ptes: [kvm_pte_t; PGW_LEAF_RUN_MAX],
    count: usize,
    addr: u64,
    entry_size: u64,
    level: i8,
    cb: RunFn,
    arg: *mut c_void,
}

impl Runs {
    /// Adds one entry at `addr` of `entry_size` bytes at `level`, handing
    /// the run to C first when the entry is of another level or the run is
    /// full.
    fn push(&mut self, pte: u64, addr: u64, entry_size: u64, level: i8) -> Result<(), c_int> {
        if self.count == PGW_LEAF_RUN_MAX || (self.count != 0 && level != self.level) {
            self.flush()?;
        }
        if self.count == 0 {
            (self.addr, self.entry_size, self.level) = (addr, entry_size, level);
        }
        self.ptes[self.count] = pte;
        self.count += 1;
        Ok(())
    }

    /// Hands `table` (a leaf table's entries the walk covers) to C, after
    /// what was gathered before it.
    #[inline(always)]
    fn push_table<C: pgwalk::Capability>(
        &mut self,
        table: &pgwalk::visit::LeafTable<'_, C>,
        level: i8,
    ) -> Result<(), c_int> {
        self.flush()?;
        let (addr, size) = (table.addr().get(), table.entry_size());
        let mut done = 0;
        while done < table.len() {
            let n = table.read_bits(done, &mut self.ptes);
            (self.count, self.level) = (n, level);
            (self.addr, self.entry_size) = (addr + done as u64 * size, size);
            self.flush()?;
            done += n;
        }
        Ok(())
    }

    /// Hands the run gathered so far, if any, to C.
    fn flush(&mut self) -> Result<(), c_int> {
        if self.count == 0 {
            return Ok(());
        }
        let run = pgw_leaf_run {
            ptes: self.ptes.as_ptr(),
            count: self.count as u64,
            addr: self.addr,
            entry_size: self.entry_size,
            arg: self.arg,
            level: self.level,
        };
        self.count = 0;
        // SAFETY: the caller's visitor (`pgw_walk_leaf_runs`' contract),
        // given a run and entries that live across the call and that it
        // only reads.
        match unsafe { (self.cb)(&run) } {
            0 => Ok(()),
            r if r < 0 && is_errno_or_zero(r) => Err(r),
            _ => Err(-PGW_EBADMSG),
        }
    }
}

/// Walks `size` bytes from `addr` (widened to whole pages) and hands every
/// leaf entry the walk meets (valid or not, at any level) to `cb`, in
/// address order, as runs of up to `PGW_LEAF_RUN_MAX` consecutive entries
/// of one level (`struct pgw_leaf_run`), each entry read once, as
/// `kvm_pgtable_walk` hands a `LEAF` visitor `ctx->old`. Nothing is
/// changed. A scan of many pages costs a fraction of a visitor call per
/// entry.
///
/// Returns 0 when `cb` returned 0 for every run, `cb`'s negative errno when
/// it returned one (no later run is handed over), `-PGW_EBADMSG` when it
/// returned a positive value, `-PGW_EFAULT` for a NULL `pgt` or `cb`,
/// `-PGW_EINVAL` for a table that is not initialised, `-PGW_ERANGE` beyond
/// the input size, `-PGW_EDEADLK` from inside a call on the same table.
///
/// # Safety
///
/// `pgt` was initialised by `__kvm_pgtable_stage2_init`; the caller holds
/// at least the read lock (the walk is a shared one, beside other readers
/// and fault handlers); `cb` only reads the run it is given.
#[no_mangle]
pub unsafe extern "C" fn pgw_walk_leaf_runs(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    cb: pgw_leaf_run_fn,
    arg: *mut c_void,
) -> c_int {
    call(|| {
        let cb = cb.ok_or(-PGW_EFAULT)?;
        // SAFETY: the caller's contract on `pgt`.
        let pgt = unsafe { TablePtr::new(pgt) };
        with_view(pgt, Needs::Conversions, |v| {
            let mut runs = Runs {
                ptes: [0; PGW_LEAF_RUN_MAX],
                count: 0,
                addr: 0,
                entry_size: 0,
                level: 0,
                cb,
                arg,
            };
            let flags = WalkFlags::TABLE_PRE | WalkFlags::LEAF;
            let walked = v
                .table
                .shared()
                .walk_with::<Halt, _>(Ipa(addr), size, flags, |ctx| {
                    let level = ctx.level().get();
                    let r = if let Some(table) = ctx.take_leaf_table() {
                        runs.push_table(&table, level + 1)
                    } else if ctx.kind() == VisitKind::Leaf {
                        let at = ctx.entry_addr().get();
                        runs.push(ctx.old().bits(), at, ctx.entry_size(), level)
                    } else {
                        Ok(())
                    };
                    r.map_err(|e| Unfinished::Stop(Halt::Errno(e)))?;
                    Ok(Action::Continue)
                });
            match walked {
                Ok(Walked::Completed) => {}
                Err(Halt::Errno(e)) => return Err(e),
                // This visitor stops with an errno only.
                Err(Halt::Stopped) => return Err(-PGW_EBADMSG),
            }
            runs.flush()?;
            Ok(0)
        })
    })
}

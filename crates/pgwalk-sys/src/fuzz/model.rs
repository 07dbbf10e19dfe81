//! The fuzzer's operations and what each may do to the window's pages.
//!
//! The model is a snapshot of every page's translation before and after
//! the call (`kvm_pgtable_get_leaf`, `pgw_hyp_get_leaf`), and, per
//! operation and return code, the transitions 6.12 allows: inside the
//! (kernel-rounded) range the operation's effect, or nothing, where the
//! result is not defined (a map stopped by `-ENOMEM`); pages of a 2 MiB
//! block the range cuts may lose their mapping or share the effect; every
//! other page keeps its translation.

use core::ffi::{c_int, c_void};

use pgwalk::descriptor::{Descriptor, HypAttrs, LeafAttrs};
use pgwalk::geometry::Level;
use pgwalk::{PhysAddr, Prot};

use super::{pool, Rng, Tables, RAM, WBASE, WPAGES, WSIZE};
use crate::abi::*;
use crate::bound::{
    pgw_bind_stage2, pgw_bound_fault_map, pgw_bound_stage2, PGW_BOUND_STAGE2_WORDS,
};
use crate::compat::*;
use crate::convert::kvm_prot;
use crate::errno::*;
use crate::hyp::*;
use crate::typed::pgw_stage2_fault_map;

const PAGE: u64 = 0x1000;
const BLOCK_PAGES: usize = 512;
const ATTRS: u64 = KVM_PTE_LEAF_ATTR_LO | KVM_PTE_LEAF_ATTR_HI;
const AF: u64 = KVM_PTE_LEAF_ATTR_LO_S2_AF;

/// What a page translates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pg {
    Valid {
        pa: u64,
        attrs: u64,
    },
    /// The invalid entry where translation stops (0, or an annotation).
    Invalid(u64),
}

/// Bytes an entry at `level` of the fuzzed (4 KiB) tables maps.
fn entry_size(level: i8) -> u64 {
    1u64 << (12 + 9 * (3 - i32::from(level).clamp(0, 3)))
}

impl Pg {
    fn of(pte: u64, level: i8, addr: u64) -> Pg {
        if pte & KVM_PTE_VALID == 0 {
            return Pg::Invalid(pte);
        }
        let size = entry_size(level);
        Pg::Valid {
            pa: (pte & KVM_PTE_ADDR_MASK) + (addr & (size - 1)),
            attrs: pte & ATTRS,
        }
    }

    fn zero(self) -> bool {
        self == Pg::Invalid(0)
    }

    fn pa(self) -> Option<u64> {
        match self {
            Pg::Valid { pa, .. } => Some(pa),
            Pg::Invalid(_) => None,
        }
    }
}

/// Both tables' window, page by page.
pub(super) struct Snapshot {
    s2: Vec<Pg>,
    hyp: Vec<Pg>,
}

impl Snapshot {
    pub(super) fn take(t: &mut Tables) -> Snapshot {
        let mut s2 = Vec::with_capacity(WPAGES);
        let mut hyp = Vec::with_capacity(WPAGES);
        for p in 0..WPAGES as u64 {
            let addr = WBASE + p * PAGE;
            let (mut pte, mut level) = (0u64, 0i8);
            // SAFETY: initialised tables; the out-pointers are locals.
            let r = unsafe { kvm_pgtable_get_leaf(t.s2(), addr, &mut pte, &mut level) };
            assert_eq!(r, 0, "kvm_pgtable_get_leaf({addr:#x})");
            s2.push(Pg::of(pte, level, addr));
            // SAFETY: as above.
            let r = unsafe { pgw_hyp_get_leaf(t.hyp(), addr, &mut pte, &mut level) };
            assert_eq!(r, 0, "pgw_hyp_get_leaf({addr:#x})");
            hyp.push(Pg::of(pte, level, addr));
        }
        Snapshot { s2, hyp }
    }
}

/// Table pages below the root of a hyp table, read from its descriptors.
pub(super) fn hyp_table_pages(pgt: &kvm_pgtable) -> usize {
    fn below(table: *const u64, level: i8) -> usize {
        (0..512)
            .map(|i| {
                // SAFETY: a table page of the pool, 512 entries; no call
                // runs on the table while the fuzzer reads it.
                let e = unsafe { table.add(i).read_volatile() };
                if level < 3 && e & 3 == 3 {
                    1 + below(pool::virt(e & KVM_PTE_ADDR_MASK), level + 1)
                } else {
                    0
                }
            })
            .sum()
    }
    if pgt.pgd.is_null() {
        return 0;
    }
    below(pgt.pgd, pgt.start_level)
}

/// One call of the C ABI, with its arguments.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Map {
        addr: u64,
        size: u64,
        phys: u64,
        prot: u64,
        mc: bool,
        flags: u32,
    },
    /// The typed API's fault-path map (`pgw_stage2_fault_map`, or with
    /// `bound` `pgw_bound_fault_map` on a binding made just before).
    PgwFaultMap {
        addr: u64,
        size: u64,
        phys: u64,
        prot: u64,
        bound: bool,
    },
    SetOwner {
        addr: u64,
        size: u64,
        owner: u8,
    },
    Unmap {
        addr: u64,
        size: u64,
    },
    Wrprotect {
        addr: u64,
        size: u64,
    },
    Mkyoung {
        addr: u64,
    },
    ClearYoung {
        addr: u64,
        size: u64,
        mkold: bool,
    },
    Relax {
        addr: u64,
        prot: u64,
    },
    Split {
        addr: u64,
        size: u64,
    },
    Flush {
        addr: u64,
        size: u64,
    },
    Walk {
        addr: u64,
        size: u64,
        flags: u32,
        code: c_int,
        at: u32,
    },
    /// `pgw_walk_leaf_runs`, its visitor answering `code` at run `at`,
    /// held to what a `kvm_pgtable_walk` LEAF visitor sees first.
    LeafRuns {
        addr: u64,
        size: u64,
        code: c_int,
        at: u32,
    },
    HypMap {
        addr: u64,
        size: u64,
        phys: u64,
        prot: u64,
    },
    HypUnmap {
        addr: u64,
        size: u64,
    },
}

/// What a call returned: its code (or pte, bool, bytes), and for walks the
/// visits the visitor saw after it stopped the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Got {
    rc: i64,
    visits_after_stop: u32,
    visits: u32,
    /// `LeafRuns`: what the kernel-compatible walk of the same range
    /// returned.
    twin: i64,
}

impl Got {
    fn rc(rc: i64) -> Got {
        Got {
            rc,
            visits_after_stop: 0,
            visits: 0,
            twin: 0,
        }
    }
}

/// A range in the window: page-aligned or not, up to its end.
fn range(rng: &mut Rng) -> (u64, u64) {
    let mut page = rng.below(WPAGES as u64);
    if rng.chance(30) {
        page &= !(BLOCK_PAGES as u64 - 1);
    }
    let mut addr = WBASE + page * PAGE;
    let left = WPAGES as u64 - page;
    let pages = match rng.below(10) {
        0..=2 => 1,
        3..=5 => 1 + rng.below(64),
        6..=7 => BLOCK_PAGES as u64,
        _ => 1 + rng.below(left),
    }
    .min(left);
    let mut size = pages * PAGE;
    if rng.chance(10) {
        addr += 1 + rng.below(PAGE - 1);
    }
    if rng.chance(10) {
        size -= rng.below(PAGE);
    }
    (addr, size)
}

fn prot(rng: &mut Rng) -> u64 {
    let mut p = 0;
    for (bit, pc) in [
        (KVM_PGTABLE_PROT_R, 80),
        (KVM_PGTABLE_PROT_W, 50),
        (KVM_PGTABLE_PROT_X, 30),
        (KVM_PGTABLE_PROT_DEVICE, 10),
        (KVM_PGTABLE_PROT_NORMAL_NC, 5),
        (KVM_PGTABLE_PROT_SW0, 10),
        (KVM_PGTABLE_PROT_SW2, 10),
        (1 << 20, 3),
    ] {
        if rng.chance(pc) {
            p |= bit;
        }
    }
    p
}

fn phys(rng: &mut Rng, addr: u64) -> u64 {
    let base = RAM + (addr - WBASE);
    match rng.below(10) {
        0..=3 => base,
        4..=6 => base + rng.below(16) * (BLOCK_PAGES as u64 * PAGE),
        _ => base + rng.below(4096) * PAGE,
    }
}

impl Op {
    pub(super) fn random(rng: &mut Rng) -> Op {
        let (addr, size) = range(rng);
        match rng.below(100) {
            0..=25 => {
                let mut flags = 0;
                if rng.chance(35) {
                    flags |= WALK_SHARED | WALK_HANDLE_FAULT;
                }
                if rng.chance(8) {
                    flags |= WALK_TABLE_POST;
                }
                if rng.chance(10) {
                    flags |= WALK_SKIP_CMO;
                }
                Op::Map {
                    addr,
                    size,
                    phys: phys(rng, addr),
                    prot: prot(rng),
                    mc: rng.chance(92),
                    flags,
                }
            }
            26..=29 => Op::PgwFaultMap {
                addr,
                size,
                phys: phys(rng, addr),
                prot: prot(rng),
                bound: rng.chance(50),
            },
            30..=34 => Op::SetOwner {
                addr,
                size,
                owner: rng.below(3) as u8,
            },
            35..=44 => Op::Unmap { addr, size },
            45..=49 => Op::Wrprotect { addr, size },
            50..=54 => Op::Mkyoung { addr },
            55..=59 => Op::ClearYoung {
                addr,
                size,
                mkold: rng.chance(60),
            },
            60..=64 => Op::Relax {
                addr,
                prot: prot(rng),
            },
            65..=69 => Op::Split { addr, size },
            70..=71 => Op::Flush { addr, size },
            78..=79 => Op::LeafRuns {
                addr,
                size,
                code: [0, 0, -PGW_ENOENT, 1][rng.below(4) as usize],
                at: 1 + rng.below(12) as u32,
            },
            72..=77 => Op::Walk {
                addr,
                size,
                flags: [
                    0,
                    WALK_SHARED,
                    WALK_SHARED | WALK_HANDLE_FAULT,
                    WALK_HANDLE_FAULT,
                ][rng.below(4) as usize]
                    | [
                        WALK_LEAF,
                        WALK_TABLE_PRE,
                        WALK_TABLE_POST,
                        WALK_LEAF | WALK_TABLE_POST,
                    ][rng.below(4) as usize],
                code: [0, -PGW_EAGAIN, -PGW_ENOENT, -PGW_EINVAL, 1, 7][rng.below(6) as usize],
                at: 1 + rng.below(20) as u32,
            },
            80..=91 => Op::HypMap {
                addr,
                size,
                phys: phys(rng, addr),
                prot: prot(rng),
            },
            _ => Op::HypUnmap { addr, size },
        }
    }

    pub(super) fn call(&self, t: &mut Tables) -> Got {
        // Any non-NULL cache: the pool decides which allocations fail.
        static MC: u8 = 0;
        let mc = |on: bool| {
            if on {
                core::ptr::from_ref(&MC).cast_mut().cast::<c_void>()
            } else {
                core::ptr::null_mut()
            }
        };
        let (s2, hyp) = (t.s2(), t.hyp());
        // SAFETY: initialised tables, one call at a time (a binding is
        // made from the table just before the call it serves); `mc` is what
        // the pool's `zalloc_page` accepts (it ignores it).
        unsafe {
            match *self {
                Op::Map {
                    addr,
                    size,
                    phys,
                    prot,
                    mc: on,
                    flags,
                } => Got::rc(
                    kvm_pgtable_stage2_map(s2, addr, size, phys, prot, mc(on), flags).into(),
                ),
                Op::PgwFaultMap {
                    addr,
                    size,
                    phys,
                    prot,
                    bound,
                } => {
                    let mut outcome = pgw_fault_outcome::PGW_FAULT_CONTINUE;
                    let r = if bound {
                        let mut b = pgw_bound_stage2 {
                            opaque: [0; PGW_BOUND_STAGE2_WORDS],
                        };
                        match pgw_bind_stage2(s2, &mut b) {
                            0 => pgw_bound_fault_map(
                                &b,
                                addr,
                                size,
                                phys,
                                prot,
                                mc(true),
                                0,
                                &mut outcome,
                            ),
                            e => e,
                        }
                    } else {
                        pgw_stage2_fault_map(s2, addr, size, phys, prot, mc(true), 0, &mut outcome)
                    };
                    // The outcome, only written on 0, in the visit count.
                    Got {
                        visits: if r == 0 { outcome as u32 } else { 0 },
                        ..Got::rc(r.into())
                    }
                }
                Op::SetOwner { addr, size, owner } => {
                    Got::rc(kvm_pgtable_stage2_set_owner(s2, addr, size, mc(true), owner).into())
                }
                Op::Unmap { addr, size } => {
                    Got::rc(kvm_pgtable_stage2_unmap(s2, addr, size).into())
                }
                Op::Wrprotect { addr, size } => {
                    Got::rc(kvm_pgtable_stage2_wrprotect(s2, addr, size).into())
                }
                Op::Mkyoung { addr } => Got::rc(kvm_pgtable_stage2_mkyoung(s2, addr) as i64),
                Op::ClearYoung { addr, size, mkold } => {
                    Got::rc(kvm_pgtable_stage2_test_clear_young(s2, addr, size, mkold).into())
                }
                Op::Relax { addr, prot } => {
                    Got::rc(kvm_pgtable_stage2_relax_perms(s2, addr, prot).into())
                }
                Op::Split { addr, size } => {
                    Got::rc(kvm_pgtable_stage2_split(s2, addr, size, mc(true)).into())
                }
                Op::Flush { addr, size } => {
                    Got::rc(kvm_pgtable_stage2_flush(s2, addr, size).into())
                }
                Op::Walk {
                    addr,
                    size,
                    flags,
                    code,
                    at,
                } => walk(s2, addr, size, flags, code, at),
                Op::LeafRuns {
                    addr,
                    size,
                    code,
                    at,
                } => leaf_runs(s2, addr, size, code, at),
                Op::HypMap {
                    addr,
                    size,
                    phys,
                    prot,
                } => Got::rc(kvm_pgtable_hyp_map(hyp, addr, size, phys, prot).into()),
                Op::HypUnmap { addr, size } => {
                    Got::rc(kvm_pgtable_hyp_unmap(hyp, addr, size) as i64)
                }
            }
        }
    }

    /// Whether `got`, and the change from `b` to `a`, is what this call may
    /// have done.
    pub(super) fn judge(&self, got: Got, b: &Snapshot, a: &Snapshot) -> Result<(), String> {
        let rc = got.rc;
        let hyp_op = matches!(self, Op::HypMap { .. } | Op::HypUnmap { .. });
        let (untouched, touched) = if hyp_op {
            ((&b.s2, &a.s2), (&b.hyp, &a.hyp))
        } else {
            ((&b.hyp, &a.hyp), (&b.s2, &a.s2))
        };
        if untouched.0 != untouched.1 {
            return Err("the other table changed".into());
        }
        let (bt, at) = touched;
        let unchanged = || pages_where(bt, at, None, |_, _, _| false);
        let codes = |ok: &[c_int]| -> Result<(), String> {
            if ok.iter().any(|&c| i64::from(c) == rc) {
                Ok(())
            } else {
                Err(format!("return code {rc} is none of {ok:?}"))
            }
        };
        match *self {
            Op::Map {
                addr,
                size,
                phys,
                prot,
                flags,
                ..
            } => {
                let Ok(attrs) = LeafAttrs::from_prot(kvm_prot(prot)) else {
                    codes(&[-PGW_EINVAL])?;
                    return unchanged();
                };
                let want = Descriptor::leaf(PhysAddr(0), Level::LAST, attrs).bits() & ATTRS & !AF;
                let start = addr & !(PAGE - 1);
                let phys = phys & !(PAGE - 1);
                let new = move |p: usize, a: Pg| {
                    a.pa() == Some(phys + (WBASE + p as u64 * PAGE - start))
                        && matches!(a, Pg::Valid { attrs, .. } if attrs & !AF == want)
                };
                let fault = flags & WALK_HANDLE_FAULT != 0;
                let mut ok = vec![0, -PGW_ENOMEM];
                if fault {
                    ok.push(-PGW_EAGAIN);
                }
                if flags & WALK_TABLE_POST != 0 {
                    ok.push(-PGW_EINVAL);
                }
                codes(&ok)?;
                let done = rc == 0;
                pages_where(bt, at, kernel_pages(addr, size), move |p, b, a| {
                    // A leaf that differs only in permissions stays.
                    let kept = a == b && b.pa() == a.pa() && new_pa(p, start, phys) == a.pa();
                    new(p, a) || kept || (!done && (a == b || a.zero())) || (fault && a == b)
                })
            }
            Op::PgwFaultMap {
                addr,
                size,
                phys,
                prot,
                ..
            } => {
                let aligned = (addr | size | phys) & (PAGE - 1) == 0 && size != 0;
                let attrs = LeafAttrs::from_prot(kvm_prot(prot));
                let (true, Ok(attrs)) = (aligned && prot & !Prot::KVM.bits() == 0, attrs) else {
                    codes(&[-PGW_EINVAL])?;
                    return unchanged();
                };
                codes(&[0, -PGW_ENOMEM])?;
                let want = Descriptor::leaf(PhysAddr(0), Level::LAST, attrs).bits() & ATTRS & !AF;
                let new = move |p: usize, a: Pg| {
                    a.pa() == new_pa(p, addr, phys)
                        && matches!(a, Pg::Valid { attrs, .. } if attrs & !AF == want)
                };
                let fixed = rc == 0 && got.visits == pgw_fault_outcome::PGW_FAULT_FIXED as u32;
                if rc == 0 && !fixed && got.visits != pgw_fault_outcome::PGW_FAULT_SPURIOUS as u32 {
                    return Err(format!("outcome {}", got.visits));
                }
                // pgwalk's own map splits a block it cuts: nothing outside
                // the range loses its mapping.
                // A leaf equal up to permissions is left for relax_perms.
                pages_where(bt, at, kernel_pages(addr, size), move |p, b, a| {
                    let kept = a == b && (!fixed || a.pa() == new_pa(p, addr, phys));
                    new(p, a) || kept
                })?;
                if let Some((r0, r1)) = kernel_pages(addr, size) {
                    let e0 = r0 & !(BLOCK_PAGES - 1);
                    let e1 = ((r1 + BLOCK_PAGES - 1) & !(BLOCK_PAGES - 1)).min(WPAGES);
                    for p in (e0..r0).chain(r1..e1) {
                        if at[p] != bt[p] {
                            return Err(format!("page {p} outside the range changed"));
                        }
                    }
                }
                Ok(())
            }
            Op::SetOwner { addr, size, owner } => {
                if owner > 1 {
                    codes(&[-PGW_EINVAL])?;
                    return unchanged();
                }
                codes(&[0, -PGW_ENOMEM])?;
                let mark = Pg::Invalid(u64::from(owner) << 2);
                let done = rc == 0;
                pages_where(bt, at, kernel_pages(addr, size), move |_, b, a| {
                    a == mark || (!done && (a == b || a.zero()))
                })
            }
            Op::Unmap { addr, size } => {
                codes(&[0])?;
                pages_where(bt, at, kernel_pages(addr, size), |_, _, a| a.zero())
            }
            Op::Wrprotect { addr, size } => {
                codes(&[0])?;
                pages_where(bt, at, kernel_pages(addr, size), |_, b, a| match b {
                    Pg::Valid { pa, attrs } => {
                        a == Pg::Valid {
                            pa,
                            attrs: attrs & !KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W,
                        }
                    }
                    Pg::Invalid(_) => a == b,
                })
            }
            Op::Mkyoung { addr } => {
                let p = ((addr - WBASE) / PAGE) as usize;
                let aged = |b: Pg| match b {
                    Pg::Valid { pa, attrs } => Pg::Valid {
                        pa,
                        attrs: attrs | AF,
                    },
                    b => b,
                };
                if at[p] != aged(bt[p]) {
                    return Err(format!("page {p}: {:x?} -> {:x?}", bt[p], at[p]));
                }
                if bt[p].pa().is_none() && rc != 0 {
                    return Err("an invalid entry made young".into());
                }
                pages_where(bt, at, Some((p, p + 1)), move |_, b, a| a == aged(b))
            }
            Op::ClearYoung { addr, size, mkold } => {
                let r = kernel_pages(addr, size);
                let young = r.is_some_and(|(r0, r1)| {
                    bt[r0..r1]
                        .iter()
                        .any(|p| matches!(p, Pg::Valid { attrs, .. } if attrs & AF != 0))
                });
                if (rc != 0) != young {
                    return Err(format!("young {young}"));
                }
                pages_where(bt, at, r, move |_, b, a| match b {
                    Pg::Valid { pa, attrs } if mkold => {
                        a == Pg::Valid {
                            pa,
                            attrs: attrs & !AF,
                        }
                    }
                    b => a == b,
                })
            }
            Op::Relax { addr, prot } => {
                codes(&[0, -PGW_EAGAIN, -PGW_EINVAL])?;
                let p = ((addr - WBASE) / PAGE) as usize;
                if rc != 0 {
                    return unchanged();
                }
                let mut set = 0;
                let mut clr = 0;
                if prot & KVM_PGTABLE_PROT_R != 0 {
                    set |= KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R;
                }
                if prot & KVM_PGTABLE_PROT_W != 0 {
                    set |= KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W;
                }
                if prot & KVM_PGTABLE_PROT_X != 0 {
                    clr |= KVM_PTE_LEAF_ATTR_HI_S2_XN;
                }
                let relaxed = move |_: usize, b: Pg, a: Pg| match (b, a) {
                    (
                        Pg::Valid { pa, attrs },
                        Pg::Valid {
                            pa: pa2,
                            attrs: got,
                        },
                    ) => pa == pa2 && (got & !AF) == ((attrs | set) & !clr & !AF),
                    _ => false,
                };
                pages_where(bt, at, Some((p, p + 1)), relaxed)
            }
            Op::Split { .. } => {
                codes(&[0, -PGW_ENOMEM])?;
                unchanged()
            }
            Op::Flush { .. } => {
                codes(&[0])?;
                unchanged()
            }
            Op::Walk {
                flags, code, at: k, ..
            } => {
                let handles_fault = flags & WALK_HANDLE_FAULT != 0;
                let stops = code != 0 && (code != -PGW_EAGAIN || handles_fault);
                let want = if got.visits >= k && stops { code } else { 0 };
                codes(&[want])?;
                if got.visits_after_stop != 0 {
                    return Err("visits after the visitor stopped the walk".into());
                }
                unchanged()
            }
            Op::LeafRuns { code, at, .. } => {
                let want = if got.twin != 0 {
                    // The range's own error, which both walks report.
                    got.twin as c_int
                } else if got.visits >= at && code != 0 {
                    if code < 0 {
                        code
                    } else {
                        -PGW_EBADMSG
                    }
                } else {
                    0
                };
                // A range that wraps around: empty to the kernel's walk,
                // out of range to the typed one (checked in `leaf_runs`).
                codes(&[want, if got.visits == 0 { -PGW_ERANGE } else { want }])?;
                if got.visits_after_stop != 0 {
                    return Err(format!(
                        "{} runs after the stop, of the wrong shape, or other entries than the LEAF walk's",
                        got.visits_after_stop
                    ));
                }
                unchanged()
            }
            Op::HypMap {
                addr,
                size,
                phys,
                prot,
            } => {
                if HypAttrs::from_prot(kvm_prot(prot)).is_err() {
                    codes(&[-PGW_EINVAL])?;
                    return unchanged();
                }
                codes(&[0, -PGW_ENOMEM, -PGW_EEXIST])?;
                let r = kernel_pages(addr, size);
                if rc == i64::from(-PGW_EEXIST) {
                    let (r0, r1) = r.ok_or("-EEXIST for an empty range")?;
                    if !bt[r0..r1].iter().any(|p| p.pa().is_some()) {
                        return Err("-EEXIST with nothing mapped in the range".into());
                    }
                    return unchanged();
                }
                let start = addr & !(PAGE - 1);
                let phys = phys & !(PAGE - 1);
                let done = rc == 0;
                pages_where(bt, at, r, move |p, b, a| {
                    new_pa(p, start, phys) == a.pa() || (!done && a == b)
                })
            }
            Op::HypUnmap { addr, size } => {
                let r = kernel_pages(addr, size);
                let max = r.map_or(0, |(r0, r1)| (r1 - r0) as u64 * PAGE);
                if rc < 0 || rc as u64 > max || rc as u64 % PAGE != 0 {
                    return Err(format!("unmapped {rc:#x} bytes of {max:#x}"));
                }
                let Some((r0, _)) = r else {
                    return unchanged();
                };
                let gone = (rc as u64 / PAGE) as usize;
                for p in r0..r0 + gone {
                    if bt[p].pa().is_none() || !at[p].zero() {
                        return Err(format!("page {p}: {:x?} -> {:x?}", bt[p], at[p]));
                    }
                }
                pages_where(bt, at, Some((r0, r0 + gone)), |_, _, a| a.zero())
            }
        }
    }
}

/// The page a map from `start` to `phys` gives window page `p`.
fn new_pa(p: usize, start: u64, phys: u64) -> Option<u64> {
    (WBASE + p as u64 * PAGE)
        .checked_sub(start)
        .map(|off| phys + off)
}

/// The window pages of the kernel's rounding of `addr..addr + size`
/// (`kvm_pgtable_walk`: from `addr` aligned down, to that plus `size`
/// aligned up), or `None` when it is empty.
fn kernel_pages(addr: u64, size: u64) -> Option<(usize, usize)> {
    let start = addr & !(PAGE - 1);
    let end = start.wrapping_add(size).wrapping_add(PAGE - 1) & !(PAGE - 1);
    if end <= start {
        return None;
    }
    let end = end.min(WBASE + WSIZE);
    Some((
        ((start - WBASE) / PAGE) as usize,
        ((end - WBASE) / PAGE) as usize,
    ))
}

/// Every page in `range` must pass `ok(page, before, after)`; pages of the
/// 2 MiB blocks around it may also keep their translation or lose it; every
/// other page must keep its translation.
fn pages_where(
    b: &[Pg],
    a: &[Pg],
    range: Option<(usize, usize)>,
    ok: impl Fn(usize, Pg, Pg) -> bool,
) -> Result<(), String> {
    let (r0, r1) = range.unwrap_or((0, 0));
    let (e0, e1) = if r0 < r1 {
        (
            r0 & !(BLOCK_PAGES - 1),
            ((r1 + BLOCK_PAGES - 1) & !(BLOCK_PAGES - 1)).min(WPAGES),
        )
    } else {
        (0, 0)
    };
    for p in 0..WPAGES {
        let fine = if (r0..r1).contains(&p) {
            ok(p, b[p], a[p])
        } else if (e0..e1).contains(&p) {
            a[p] == b[p] || a[p].zero() || ok(p, b[p], a[p])
        } else {
            a[p] == b[p]
        };
        if !fine {
            return Err(format!(
                "page {p} (range {r0}..{r1}): {:x?} -> {:x?}",
                b[p], a[p]
            ));
        }
    }
    Ok(())
}

/// The visitor's state: stop with `code` at visit `at`.
struct Visitor {
    code: c_int,
    at: u32,
    visits: u32,
    stopped: bool,
    after_stop: u32,
}

unsafe extern "C" fn visit(ctx: *const kvm_pgtable_visit_ctx, _: kvm_pgtable_walk_flags) -> c_int {
    // SAFETY: the walker passes a valid context whose `arg` is the
    // `Visitor` of `walk`, alive for the call.
    let v = unsafe { &mut *(*ctx).arg.cast::<Visitor>() };
    if v.stopped {
        v.after_stop += 1;
        return 0;
    }
    v.visits += 1;
    if v.visits == v.at {
        v.stopped = v.code != 0;
        return v.code;
    }
    0
}

/// `kvm_pgtable_walk` with a visitor answering `code` at visit `at`.
///
/// # Safety
///
/// `pgt` is an initialised table no other call uses.
unsafe fn walk(
    pgt: *mut kvm_pgtable,
    addr: u64,
    size: u64,
    flags: u32,
    code: c_int,
    at: u32,
) -> Got {
    let mut v = Visitor {
        code,
        at,
        visits: 0,
        stopped: false,
        after_stop: 0,
    };
    let mut walker = kvm_pgtable_walker {
        cb: Some(visit),
        arg: core::ptr::from_mut(&mut v).cast(),
        flags,
    };
    // SAFETY: the caller's contract; `walker` and `v` outlive the call.
    let rc = unsafe { kvm_pgtable_walk(pgt, addr, size, &mut walker) };
    // A code the walk ignores (`-EAGAIN` outside a fault handler) does not
    // stop it: visits after it are expected.
    let ignored = code == -PGW_EAGAIN && flags & WALK_HANDLE_FAULT == 0;
    Got {
        visits_after_stop: if ignored { 0 } else { v.after_stop },
        visits: v.visits,
        ..Got::rc(rc.into())
    }
}

/// What a LEAF walk saw: each entry's first address, bits and level.
type Seen = Vec<(u64, u64, i8)>;

unsafe extern "C" fn collect(
    ctx: *const kvm_pgtable_visit_ctx,
    _: kvm_pgtable_walk_flags,
) -> c_int {
    // SAFETY: the walker passes a valid context whose `arg` is the `Seen`
    // of `leaf_runs`, alive for the call.
    let ctx = unsafe { &*ctx };
    // SAFETY: as above.
    let seen = unsafe { &mut *ctx.arg.cast::<Seen>() };
    let size = entry_size(ctx.level);
    seen.push((ctx.addr & !(size - 1), ctx.old, ctx.level));
    0
}

/// `pgw_walk_leaf_runs`' visitor state: stop with `code` at run `at`.
struct Runs {
    seen: Seen,
    runs: u32,
    code: c_int,
    at: u32,
    stopped: bool,
    /// Runs after the stop, and runs that broke the documented shape.
    bad: u32,
}

unsafe extern "C" fn run(run: *const pgw_leaf_run) -> c_int {
    // SAFETY: the walk passes a valid run whose `arg` is the `Runs` of
    // `leaf_runs`, alive for the call.
    let run = unsafe { &*run };
    // SAFETY: as above.
    let r = unsafe { &mut *run.arg.cast::<Runs>() };
    let shaped = (1..=PGW_LEAF_RUN_MAX as u64).contains(&run.count)
        && run.entry_size == entry_size(run.level)
        && run.addr % run.entry_size == 0;
    if r.stopped || !shaped {
        r.bad += 1;
        return 0;
    }
    r.runs += 1;
    // SAFETY: `count` entries at `ptes`, valid for the call.
    let ptes = unsafe { core::slice::from_raw_parts(run.ptes, run.count as usize) };
    for (i, &pte) in ptes.iter().enumerate() {
        r.seen
            .push((run.addr + i as u64 * run.entry_size, pte, run.level));
    }
    if r.runs == r.at && r.code != 0 {
        r.stopped = true;
        return r.code;
    }
    0
}

/// `kvm_pgtable_walk` with a LEAF visitor, then `pgw_walk_leaf_runs` over
/// the same range stopping with `code` at run `at`: `visits` counts the
/// runs, `visits_after_stop` what went wrong (runs after the stop, runs of
/// the wrong shape, entries other than the LEAF walk's), `twin` is the
/// kernel-compatible walk's code.
///
/// # Safety
///
/// `pgt` is an initialised table no other call uses.
unsafe fn leaf_runs(pgt: *mut kvm_pgtable, addr: u64, size: u64, code: c_int, at: u32) -> Got {
    let mut want: Seen = Vec::new();
    let mut walker = kvm_pgtable_walker {
        cb: Some(collect),
        arg: core::ptr::from_mut(&mut want).cast(),
        flags: WALK_LEAF,
    };
    // The typed walk covers every page the range touches; the kernel's
    // rounds the size from the aligned-down start. Give the kernel's the
    // typed one's pages.
    let start = addr & !(PAGE - 1);
    let widened = addr
        .checked_add(size)
        .and_then(|end| end.checked_add(PAGE - 1))
        .map_or(size, |end| (end & !(PAGE - 1)) - start);
    // SAFETY: the caller's contract; `walker` and `want` outlive the call.
    let twin = unsafe { kvm_pgtable_walk(pgt, start, widened, &mut walker) };
    let mut r = Runs {
        seen: Vec::new(),
        runs: 0,
        code,
        at,
        stopped: false,
        bad: 0,
    };
    let arg = core::ptr::from_mut(&mut r).cast();
    // SAFETY: the caller's contract; `r` outlives the call.
    let rc = unsafe { crate::leaf_runs::pgw_walk_leaf_runs(pgt, addr, size, Some(run), arg) };
    // All of the LEAF walk's entries when the scan completed, the first of
    // them when it stopped; none when it refused a range that wraps around
    // (which the kernel-compatible walk reads as empty).
    let same = if rc == 0 {
        r.seen == want
    } else {
        want.starts_with(&r.seen) && (rc != -PGW_ERANGE || twin != 0 || want.is_empty())
    };
    Got {
        rc: rc.into(),
        visits_after_stop: r.bad + u32::from(!same),
        visits: r.runs,
        twin: twin.into(),
    }
}

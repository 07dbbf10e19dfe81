//! Conversions between C values and the core's types, shared by both APIs.
//! Nothing here touches a table.

use core::ffi::c_int;

use pgwalk::geometry::Geometry;
use pgwalk::visit::{VisitKind, WalkFlags};
use pgwalk::{Ipa, Prot};

use crate::abi::*;
use crate::errno::*;

/// How a walk through the C boundary stops early: with an errno (or, for a
/// kernel-compatible visitor, whatever non-zero value it returned), or
/// (typed visitors only) because the visitor said so.
pub(crate) enum Halt {
    Errno(c_int),
    Stopped,
}

impl From<pgwalk::Error> for Halt {
    fn from(e: pgwalk::Error) -> Halt {
        Halt::Errno(from_error(e))
    }
}

/// A kernel `enum kvm_pgtable_prot`, as Linux 6.12 reads one: bits it does
/// not define are dropped.
pub(crate) fn kvm_prot(prot: u64) -> Prot {
    Prot::from_bits_truncate(prot) & Prot::KVM
}

/// A typed API's protection: every bit must mean something.
pub(crate) fn typed_prot(prot: u64) -> Result<Prot, c_int> {
    Prot::from_bits(prot).ok_or(-PGW_EINVAL)
}

/// The core's walk flags for a C flags value: the visit kinds and the two
/// maintenance bits (the walker kind is the capability's business).
pub(crate) fn visit_flags(flags: u32) -> WalkFlags {
    WalkFlags::from_bits_truncate(flags)
}

/// The kernel's visit kind for the core's.
pub(crate) fn visit_kind(kind: VisitKind) -> kvm_pgtable_walk_flags {
    match kind {
        VisitKind::Leaf => kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_LEAF,
        VisitKind::TablePre => kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_TABLE_PRE,
        VisitKind::TablePost => kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_TABLE_POST,
    }
}

/// The range a kernel walk over `addr..addr + size` covers, as Linux 6.12's
/// `kvm_pgtable_walk` computes it: from `addr` aligned down to the page, to
/// that plus `size` aligned up (so an unaligned `addr` does not widen the
/// end). `Ok(None)` for an empty range, `-PGW_ERANGE` for one beyond the
/// input size (checked even when empty, as the kernel does).
pub(crate) fn kernel_range(
    geometry: &Geometry,
    addr: u64,
    size: u64,
) -> Result<Option<(Ipa, u64)>, c_int> {
    let page = geometry.granule().size();
    let start = addr & !(page - 1);
    let end = start.wrapping_add(size).wrapping_add(page - 1) & !(page - 1);
    let limit = geometry.ia_limit();
    if start > limit || end > limit {
        return Err(-PGW_ERANGE);
    }
    if end <= start {
        return Ok(None);
    }
    Ok(Some((Ipa(start), end - start)))
}

/// Which walker a kernel `flags` value asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Neither `SHARED` nor `HANDLE_FAULT`: the write lock.
    Exclusive,
    /// `SHARED`: the read lock, beside other walkers.
    Shared,
    /// `SHARED | HANDLE_FAULT`: a vCPU's fault path.
    Fault,
    /// `HANDLE_FAULT` alone: a fault handler's return codes with plain
    /// stores (the kernel allows it; no caller uses it).
    ExclusiveFault,
}

/// The walker kind in `flags`. Other bits are ignored, as the kernel does.
pub(crate) fn kind_of(flags: u32) -> Kind {
    match (flags & WALK_SHARED != 0, flags & WALK_HANDLE_FAULT != 0) {
        (false, false) => Kind::Exclusive,
        (true, false) => Kind::Shared,
        (true, true) => Kind::Fault,
        (false, true) => Kind::ExclusiveFault,
    }
}

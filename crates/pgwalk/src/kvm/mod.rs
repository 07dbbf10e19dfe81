//! Linux 6.12's stage-2 operations, as the kernel's `pgtable.c` does them,
//! for the C compatibility layer (`pgwalk-sys`'s `kvm_pgtable_*`) and for
//! code ported from the kernel that relies on its exact behaviour.
//!
//! pgwalk's own operations ([`Handle::map`](crate::Handle::map) and the
//! rest) differ from the kernel's where the kernel's behaviour is a hazard
//! or a surprise: they apply the permissions a remap asks for, keep the rest
//! of a block that a map cuts, refuse an unmap that cuts a block, and
//! invalidate where the kernel leaves it to the caller. The operations here
//! do what the kernel does instead, on the same walker and the same entry
//! protocol:
//!
//! - a map over a valid leaf that differs only in permissions leaves it
//!   alone (the fault path then stops and resumes the guest, which faults
//!   again into `relax_perms`); one that differs in more is replaced by
//!   break-before-make, with data and instruction cache maintenance for the
//!   new leaf;
//! - a map that cuts a block replaces it with an *empty* table: the rest of
//!   the block is faulted back in lazily;
//! - an annotation (`set_owner`) is written page by page, and tables it
//!   leaves with nothing but zero entries (owner 0), or that a map that ran
//!   out of memory installed, stay linked until an unmap of the range;
//! - an unmap removes every block it touches, whole;
//! - TLB invalidations are the kernel's: by IPA at the walk's address, with
//!   the entry's level, or without a level for a table an unmap frees.
//!
//! Inputs are taken as the kernel's walker sees them: page-aligned,
//! non-empty, inside the input space (the C layer does the kernel's
//! rounding). What is known to differ from the kernel even here is listed
//! in the README's kernel-parity section, each with its reason.

mod map;
mod site;
mod unmap;
mod young;

use crate::capability::{Capability, Exclusive, HandlesFault};
use crate::memory::MemoryOps;
use crate::stage2::Handle;

pub use map::KvmMapOptions;

/// A handle's kernel-compatible operations; from [`Handle::kvm`].
pub struct Kvm<'t, C: Capability, M: MemoryOps> {
    handle: Handle<'t, C, M>,
}

impl<'t, M: MemoryOps> Handle<'t, Exclusive, M> {
    /// This table's operations as Linux 6.12 does them (see the
    /// [`kvm`](crate::kvm) module).
    pub fn kvm(&mut self) -> Kvm<'_, Exclusive, M> {
        Kvm {
            handle: Handle::new(self.table()),
        }
    }
}

impl<'t, M: MemoryOps> Handle<'t, crate::capability::Shared, M> {
    /// This table's operations for a walker beside others, as Linux 6.12
    /// does them (see the [`kvm`](crate::kvm) module).
    pub fn kvm(&self) -> Kvm<'t, crate::capability::Shared, M> {
        Kvm {
            handle: Handle::new(self.table()),
        }
    }
}

impl<'t, M: MemoryOps> Handle<'t, HandlesFault, M> {
    /// This table's fault-path operations as Linux 6.12 does them (see the
    /// [`kvm`](crate::kvm) module).
    pub fn kvm(&self) -> Kvm<'t, HandlesFault, M> {
        Kvm {
            handle: Handle::new(self.table()),
        }
    }
}

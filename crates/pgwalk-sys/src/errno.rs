//! Error codes: Linux errno values, returned negated (`-PGW_EINVAL`), as
//! the kernel's functions return `-EINVAL`.
//!
//! They carry a `PGW_` prefix so that a program may include `<errno.h>`
//! beside the header; on Linux the values are the same.

use core::ffi::c_int;

use pgwalk::Error;

/// An annotated range belongs to another owner.
pub const PGW_EPERM: c_int = 1;
/// No valid mapping at the address. From a legacy visitor, it stops the walk
/// like any other error (Linux 6.12): it is no "skip".
pub const PGW_ENOENT: c_int = 2;
/// A fault-path call found nothing to do or lost a race (resume the guest).
/// From a legacy visitor, it stops only a `KVM_PGTABLE_WALK_HANDLE_FAULT`
/// walker; others go on with the next entry.
pub const PGW_EAGAIN: c_int = 11;
/// `zalloc_page` or `zalloc_pages_exact` returned NULL. Nothing is leaked;
/// a map may have installed part of its range (see `kvm_pgtable_stage2_map`).
pub const PGW_ENOMEM: c_int = 12;
/// A required pointer argument (or out-pointer) is NULL.
pub const PGW_EFAULT: c_int = 14;
/// The address is already mapped.
pub const PGW_EEXIST: c_int = 17;
/// A bad argument: an impossible prot, an unknown enum value, an
/// unsupported VTCR_EL2, a missing callback, or a `struct kvm_pgtable` that
/// is not initialised (or no longer agrees with its `mmu->vtcr`); in the
/// typed API also a misaligned or empty range and unknown prot or flag
/// bits, which `kvm_pgtable_*` rounds and drops as Linux 6.12 does.
pub const PGW_EINVAL: c_int = 22;
/// An address range beyond the input (IPA) or output (PA) size.
pub const PGW_ERANGE: c_int = 34;
/// A call on a table made from inside a call on the same table, on the same
/// thread: from a visitor, an `mm_ops` or TLB callback, or `force_pte_cb`.
/// Refused before the table is read; nothing changed.
pub const PGW_EDEADLK: c_int = 35;
/// A shared walker's visitor asked to retry one entry `PGW_RETRY_LIMIT`
/// times in a row (`PGW_ACTION_RETRY`): it waits for a change that no other
/// walker makes. The walk stopped at that entry.
pub const PGW_ELOOP: c_int = 40;
/// How many times in a row a shared walker retries one entry before the
/// walk ends with `-PGW_ELOOP`.
pub const PGW_RETRY_LIMIT: u32 = 1 << 24;
/// A typed visitor reported an action its walker's capability does not
/// allow (`PGW_ACTION_RETRY` under `PGW_EXCLUSIVE`, ...). The walk stopped
/// at that entry, unchanged.
pub const PGW_EPROTO: c_int = 71;
/// A typed visitor answered something that means nothing: it returned a
/// positive value or put an unknown value in `action` or `resume_reason`.
/// (A legacy visitor's answer is returned as it is, as Linux 6.12 does.)
pub const PGW_EBADMSG: c_int = 74;
/// Valid, but not supported by this library. No function returns it since
/// the layer follows Linux 6.12 (`KVM_PGTABLE_S2_IDMAP` and `SHARED` map
/// walkers are supported); the value keeps its name.
pub const PGW_EOPNOTSUPP: c_int = 95;
/// A panic was caught at the boundary: a host callback broke its contract
/// (`phys_to_virt` returned NULL or misaligned memory, an allocation was
/// not aligned) or the library has a bug. The table may hold part of the
/// operation's work. Hosted builds only: a freestanding build calls the
/// hook of `pgw_set_panic_hook` instead and does not return.
pub const PGW_ENOTRECOVERABLE: c_int = 131;

/// The negative errno for a core error.
pub(crate) fn from_error(e: Error) -> c_int {
    -match e {
        Error::NoMemory => PGW_ENOMEM,
        Error::OutOfRange { .. } | Error::OutputTooLarge { .. } => PGW_ERANGE,
        Error::Misaligned { .. }
        | Error::EmptyRange
        | Error::Geometry(_)
        | Error::InvalidProt(_)
        | Error::SplitsBlock { .. }
        | Error::InvalidOwner { .. }
        | Error::NoRegion { .. }
        | Error::UnsupportedVisit { .. } => PGW_EINVAL,
        Error::AlreadyMapped { .. } => PGW_EEXIST,
        Error::Owned { .. } => PGW_EPERM,
        Error::RetryLimit { .. } => PGW_ELOOP,
        // Errors added to the core later are refusals of an argument until
        // they get a code of their own here.
        _ => PGW_EINVAL,
    }
}

/// Whether `code` is 0 or a negated errno (Linux keeps errno below 4096).
pub(crate) fn is_errno_or_zero(code: c_int) -> bool {
    (-4095..=0).contains(&code)
}

/// Runs `f`, turning a panic into `-PGW_ENOTRECOVERABLE`: an unwinding
/// panic must not cross into C (it would abort the process), and a caller
/// that gets an error can still log and shut the VM down.
pub(crate) fn guard(f: impl FnOnce() -> c_int) -> c_int {
    guard_or(-PGW_ENOTRECOVERABLE, f)
}

/// The body of every exported function: `f` returns its success value or
/// a negative errno, and a panic becomes `-PGW_ENOTRECOVERABLE`.
pub(crate) fn call(f: impl FnOnce() -> Result<c_int, c_int>) -> c_int {
    guard(|| f().unwrap_or_else(|e| e))
}

/// [`guard`], with the value to return after a panic.
// Inlined into each exported function: out of line, the function received
// its closure's captures through memory, behind a frame of its own (44 of
// a kvm_* relax_perms' 445 instructions; 29 of a fault-in's 725).
#[cfg(feature = "std")]
#[inline(always)]
pub(crate) fn guard_or<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    // AssertUnwindSafe: after a panic nothing of `f`'s state is used again;
    // the table's memory is only ever accessed through atomics.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// [`guard`], with the value a hosted build returns after a panic. The
/// freestanding build cannot unwind: a panic ends in the C side's hook and
/// never comes back here (`panic.rs`), so there is nothing to catch.
#[cfg(not(feature = "std"))]
#[inline(always)]
pub(crate) fn guard_or<T>(_on_panic: T, f: impl FnOnce() -> T) -> T {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_error_has_its_errno() {
        use pgwalk::geometry::Level;
        let l2 = Level::new(2).unwrap();
        // Every variant of `pgwalk::Error`, with the code the header
        // documents for it.
        let cases = [
            (Error::NoMemory, -PGW_ENOMEM),
            (
                Error::OutOfRange {
                    start: 0,
                    end: 1,
                    ia_bits: 40,
                },
                -PGW_ERANGE,
            ),
            (
                Error::OutputTooLarge {
                    pa: 1 << 50,
                    oa_bits: 40,
                },
                -PGW_ERANGE,
            ),
            (
                Error::Misaligned {
                    what: "IPA",
                    value: 1,
                    granule: 4096,
                },
                -PGW_EINVAL,
            ),
            (Error::EmptyRange, -PGW_EINVAL),
            (Error::Geometry("x"), -PGW_EINVAL),
            (Error::InvalidProt("x"), -PGW_EINVAL),
            (Error::SplitsBlock { addr: 0, level: l2 }, -PGW_EINVAL),
            (Error::InvalidOwner { id: 256, max: 255 }, -PGW_EINVAL),
            (Error::NoRegion { addr: 0 }, -PGW_EINVAL),
            (Error::AlreadyMapped { addr: 0 }, -PGW_EEXIST),
            (Error::Owned { addr: 0, owner: 1 }, -PGW_EPERM),
            (Error::RetryLimit { addr: 0, level: l2 }, -PGW_ELOOP),
        ];
        for (e, code) in cases {
            assert_eq!(from_error(e), code, "{e:?}");
            assert!(is_errno_or_zero(code) && code < 0);
        }
    }

    #[test]
    fn the_retry_limit_is_the_core_s() {
        assert_eq!(PGW_RETRY_LIMIT, pgwalk::visit::RETRY_LIMIT);
        assert_eq!(
            from_error(Error::RetryLimit {
                addr: 0,
                level: pgwalk::geometry::Level::LAST
            }),
            -PGW_ELOOP
        );
    }

    #[test]
    #[cfg(feature = "std")]
    fn panics_become_an_error() {
        assert_eq!(guard(|| panic!("boom")), -PGW_ENOTRECOVERABLE);
        assert_eq!(guard(|| 7), 7);
    }
}

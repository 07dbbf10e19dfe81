//! The conventions KVM keeps in entries the MMU ignores.
//!
//! An invalid descriptor is free for software. pgwalk, like KVM, uses two
//! shapes: an *annotation* (owner id in bits 9:2), which marks a page as
//! someone else's and counts towards the table page's reference count, and
//! the *locked* marker (bit 10 alone), which a concurrent walker installs for
//! the moment of a break-before-make. A table page's reference count is 1
//! plus its non-zero entries.

use super::Descriptor;
use crate::error::Error;

const OWNER_SHIFT: u32 = 2;
const OWNER_MASK: u64 = 0xff << OWNER_SHIFT;
const LOCKED: u64 = 1 << 10;

/// Largest owner id an annotation can hold.
pub const MAX_OWNER_ID: u32 = (OWNER_MASK >> OWNER_SHIFT) as u32;

impl Descriptor {
    /// The marker a concurrent walker leaves while it breaks an entry.
    pub(crate) const LOCKED: Descriptor = Descriptor(LOCKED);

    /// An invalid entry recording that the page belongs to `owner`.
    pub fn annotation(owner: u32) -> Result<Descriptor, Error> {
        if owner > MAX_OWNER_ID {
            return Err(Error::InvalidOwner {
                id: owner,
                max: MAX_OWNER_ID,
            });
        }
        Ok(Descriptor(u64::from(owner) << OWNER_SHIFT))
    }

    /// Whether this is a concurrent walker's break-before-make marker.
    #[inline(always)]
    pub const fn is_locked(self) -> bool {
        self.0 == LOCKED
    }

    /// Whether the entry counts towards its table page's reference count:
    /// anything but zero. The locked marker counts too: it holds the count
    /// of the entry it stands in for until the break's make.
    #[inline(always)]
    pub const fn is_counted(self) -> bool {
        self.0 != 0
    }

    /// The owner id of an annotation, if this is one.
    pub const fn owner(self) -> Option<u32> {
        if self.is_valid() || self.is_locked() || self.0 & OWNER_MASK == 0 {
            None
        } else {
            Some(((self.0 & OWNER_MASK) >> OWNER_SHIFT) as u32)
        }
    }
}

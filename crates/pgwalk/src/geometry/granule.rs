//! The translation granule and the levels it has.

use core::fmt;

use crate::error::Error;

/// The translation granule: the page size, and with it how many address bits
/// each level resolves and which levels exist.
// Each discriminant is the granule's page shift, so that `shift` (which
// every index and size computation of a walk goes through) is the value
// itself rather than a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Granule {
    /// 4 KiB pages, 512 entries per table, levels 0..=3 (-1..=3 with LPA2).
    Size4KiB = 12,
    /// 16 KiB pages, 2048 entries per table, levels 0..=3.
    Size16KiB = 14,
    /// 64 KiB pages, 8192 entries per table, levels 1..=3.
    Size64KiB = 16,
}

impl Granule {
    /// Every granule, smallest first.
    pub const ALL: [Granule; 3] = [Granule::Size4KiB, Granule::Size16KiB, Granule::Size64KiB];

    /// log2 of the page size.
    #[inline(always)]
    pub const fn shift(self) -> u32 {
        self as u32
    }

    /// The page size in bytes: the size of every table page too.
    #[inline(always)]
    pub const fn size(self) -> u64 {
        1 << self.shift()
    }

    /// Address bits one level resolves (a table holds `1 << bits` entries).
    #[inline(always)]
    pub const fn bits_per_level(self) -> u32 {
        self.shift() - 3
    }

    /// Entries in one table page.
    #[inline(always)]
    pub const fn entries(self) -> usize {
        1 << self.bits_per_level()
    }

    /// log2 of the size one entry at `level` maps.
    #[inline(always)]
    pub const fn level_shift(self, level: Level) -> u32 {
        let g = self.shift();
        g + (3 - level.0) as u32 * (g - 3)
    }

    /// The lowest level a table of this granule can have, with or without
    /// LPA2: -1 only for 4 KiB with LPA2 (52-bit inputs), 1 for 64 KiB
    /// (whose level 1 resolves up to 52 bits on its own).
    #[inline(always)]
    pub const fn first_level(self, lpa2: bool) -> Level {
        match self {
            Granule::Size4KiB if lpa2 => Level(-1),
            Granule::Size4KiB | Granule::Size16KiB => Level(0),
            Granule::Size64KiB => Level(1),
        }
    }

    /// The lowest level pgwalk puts a block at. This is Linux 6.12's policy
    /// (`KVM_PGTABLE_MIN_BLOCK_LEVEL`): level 1 (1 GiB) for 4 KiB, level 2
    /// for the others (32 MiB for 16 KiB, 512 MiB for 64 KiB). The larger
    /// blocks the architecture also allows (4 KiB's 512 GiB and 16 KiB's
    /// 64 GiB with LPA2, 64 KiB's 4 TiB with 52-bit PAs) are left unused, as
    /// the kernel does, to bound the work one entry can stand for.
    #[inline(always)]
    pub const fn min_block_level(self) -> Level {
        match self {
            Granule::Size4KiB => Level(1),
            Granule::Size16KiB | Granule::Size64KiB => Level(2),
        }
    }

    /// The granule a TG0 field names (VTCR_EL2.TG0 and TCR_EL2.TG0 share
    /// the encoding: 0b00 4 KiB, 0b01 64 KiB, 0b10 16 KiB).
    pub const fn from_tg0(tg0: u64) -> Result<Granule, Error> {
        match tg0 {
            0b00 => Ok(Granule::Size4KiB),
            0b01 => Ok(Granule::Size64KiB),
            0b10 => Ok(Granule::Size16KiB),
            _ => Err(Error::Geometry("TG0 = 0b11 is reserved")),
        }
    }

    /// The TG0 field (VTCR_EL2 or TCR_EL2) for this granule.
    pub const fn tg0(self) -> u64 {
        match self {
            Granule::Size4KiB => 0b00,
            Granule::Size64KiB => 0b01,
            Granule::Size16KiB => 0b10,
        }
    }
}

impl fmt::Display for Granule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} KiB", self.size() >> 10)
    }
}

/// A translation level: -1..=3, the kernel's `s8`. Which levels a table
/// has depends on its granule (see [`Granule::first_level`]); the last one
/// is always 3.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Level(pub(super) i8);

impl Level {
    /// The last level: its entries are pages, never tables.
    pub const LAST: Level = Level(3);

    /// `level` if it is one the architecture defines (-1..=3).
    pub const fn new(level: i8) -> Option<Level> {
        if level >= -1 && level <= 3 {
            Some(Level(level))
        } else {
            None
        }
    }

    /// The level number.
    #[inline(always)]
    pub const fn get(self) -> i8 {
        self.0
    }

    /// The level below this one.
    #[inline(always)]
    pub const fn next(self) -> Level {
        Level(self.0 + 1)
    }

    /// Whether this is the last level.
    #[inline(always)]
    pub const fn is_last(self) -> bool {
        self.0 == 3
    }
}

impl fmt::Debug for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

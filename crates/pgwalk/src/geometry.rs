//! Translation geometry: granule, levels, input size and the root, as
//! VTCR_EL2 describes them.

use core::fmt;

use crate::error::Error;

/// The translation granule: the page size, and with it how many address bits
/// each level resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granule {
    /// 4 KiB pages, 512 entries per table, levels 0..=3.
    Size4KiB,
    /// 16 KiB pages, 2048 entries per table (not yet supported by the walker).
    Size16KiB,
    /// 64 KiB pages, 8192 entries per table (not yet supported by the walker).
    Size64KiB,
}

impl Granule {
    /// log2 of the page size.
    #[inline(always)]
    pub const fn shift(self) -> u32 {
        match self {
            Granule::Size4KiB => 12,
            Granule::Size16KiB => 14,
            Granule::Size64KiB => 16,
        }
    }

    /// The page size in bytes.
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

    /// VTCR_EL2.TG0 encoding.
    const fn tg0(self) -> u64 {
        match self {
            Granule::Size4KiB => 0b00,
            Granule::Size64KiB => 0b01,
            Granule::Size16KiB => 0b10,
        }
    }
}

/// A translation level. Stage 2 uses 0..=3 (and -1 with 52-bit LPA2, which
/// this library does not support yet); the kernel's `s8`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Level(i8);

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

/// The shape of a stage-2 table: granule, input and output sizes, the level
/// the walk starts at, and how many concatenated pages form the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    granule: Granule,
    ia_bits: u8,
    oa_bits: u8,
    start_level: Level,
}

/// Most pages the architecture lets a stage-2 root concatenate.
pub const MAX_ROOT_PAGES: usize = 16;

impl Geometry {
    /// A geometry from its parts, checked against the architecture's rules:
    /// the start level must resolve at least one bit and at most as many as
    /// sixteen concatenated root tables hold.
    pub fn new(
        granule: Granule,
        ia_bits: u8,
        start_level: Level,
        oa_bits: u8,
    ) -> Result<Geometry, Error> {
        if granule != Granule::Size4KiB {
            return Err(Error::Geometry(
                "only the 4 KiB granule is supported (16 KiB and 64 KiB are planned)",
            ));
        }
        if !(0..=2).contains(&start_level.get()) {
            return Err(Error::Geometry(
                "the start level must be 0, 1 or 2 for the 4 KiB granule",
            ));
        }
        if !matches!(oa_bits, 32 | 36 | 40 | 42 | 44 | 48) {
            return Err(Error::Geometry(
                "the output size must be 32, 36, 40, 42, 44 or 48 bits",
            ));
        }
        if ia_bits > 48 {
            return Err(Error::Geometry(
                "input sizes above 48 bits need LPA2, which is not supported",
            ));
        }
        if ia_bits > oa_bits {
            // The architecture bounds the input size by the implemented PA
            // size, not by PS; like KVM, pgwalk keeps IPA <= PS so that
            // every input address can be identity-mapped.
            return Err(Error::Geometry(
                "the input size exceeds the output size (PS); pgwalk, like KVM, requires IPA size <= PS",
            ));
        }
        let g = Geometry {
            granule,
            ia_bits,
            oa_bits,
            start_level,
        };
        let shift = g.level_shift(start_level);
        if u32::from(ia_bits) <= shift {
            return Err(Error::Geometry(
                "the start level is too low: it would resolve no input address bit",
            ));
        }
        if u32::from(ia_bits) - shift > granule.bits_per_level() + 4 {
            return Err(Error::Geometry(
                "the start level is too high: the root would need more than 16 concatenated tables",
            ));
        }
        Ok(g)
    }

    /// A geometry from parts its caller has checked by rules of its own:
    /// EL2 stage 1 (`hyp/tcr.rs`), whose start level follows from the input
    /// size, whose root never concatenates, and whose input (VA) size may
    /// exceed the output size.
    pub(crate) const fn from_checked_parts(
        granule: Granule,
        ia_bits: u8,
        start_level: Level,
        oa_bits: u8,
    ) -> Geometry {
        Geometry {
            granule,
            ia_bits,
            oa_bits,
            start_level,
        }
    }

    /// The geometry KVM picks for an input size: the fewest levels whose root
    /// needs at most 16 concatenated tables.
    pub fn for_ia_bits(ia_bits: u8, oa_bits: u8) -> Result<Geometry, Error> {
        let granule = Granule::Size4KiB;
        for start in (0..=2).rev() {
            let g = Geometry::new(granule, ia_bits, Level(start), oa_bits);
            if g.is_ok() {
                return g;
            }
        }
        Geometry::new(granule, ia_bits, Level(0), oa_bits)
    }

    /// Decodes VTCR_EL2: T0SZ (input size), SL0 (start level), TG0
    /// (granule) and PS (output size).
    pub fn from_vtcr(vtcr: u64) -> Result<Geometry, Error> {
        if vtcr & VTCR_DS != 0 {
            return Err(Error::Geometry("VTCR_EL2.DS (LPA2) is not supported"));
        }
        let t0sz = (vtcr & 0x3f) as u8;
        if t0sz < 16 {
            return Err(Error::Geometry(
                "T0SZ below 16 needs LPA2, which is not supported",
            ));
        }
        let granule = match (vtcr >> 14) & 0b11 {
            0b00 => Granule::Size4KiB,
            0b01 => Granule::Size64KiB,
            0b10 => Granule::Size16KiB,
            _ => return Err(Error::Geometry("TG0 = 0b11 is reserved")),
        };
        let start = match ((vtcr >> 6) & 0b11, granule) {
            (0, Granule::Size4KiB) => 2,
            (1, Granule::Size4KiB) => 1,
            (2, Granule::Size4KiB) => 0,
            (3, Granule::Size4KiB) => {
                return Err(Error::Geometry(
                    "SL0 = 3 (start at level 3, FEAT_TTST) is not supported",
                ))
            }
            (sl0, _) => 3 - sl0 as i8,
        };
        let oa_bits = match (vtcr >> 16) & 0b111 {
            0 => 32,
            1 => 36,
            2 => 40,
            3 => 42,
            4 => 44,
            5 => 48,
            _ => return Err(Error::Geometry("PS above 48 bits is not supported")),
        };
        Geometry::new(granule, 64 - t0sz, Level(start), oa_bits)
    }

    /// A VTCR_EL2 value describing this geometry, with inner-shareable,
    /// write-back table walks (the value KVM programs, without VMID or
    /// hardware-feature bits).
    pub fn vtcr(&self) -> u64 {
        let t0sz = u64::from(64 - self.ia_bits);
        let sl0 = match (self.granule, self.start_level.get()) {
            (Granule::Size4KiB, l) => (2 - l) as u64,
            (_, l) => (3 - l) as u64,
        };
        let ps: u64 = match self.oa_bits {
            32 => 0,
            36 => 1,
            40 => 2,
            42 => 3,
            44 => 4,
            _ => 5,
        };
        VTCR_RES1
            | t0sz
            | sl0 << 6
            | 0b01 << 8 // IRGN0: write-back, write-allocate
            | 0b01 << 10 // ORGN0: write-back, write-allocate
            | 0b11 << 12 // SH0: inner shareable
            | self.granule.tg0() << 14
            | ps << 16
    }

    /// The granule.
    #[inline(always)]
    pub const fn granule(&self) -> Granule {
        self.granule
    }

    /// Input (IPA) size in bits.
    #[inline(always)]
    pub const fn ia_bits(&self) -> u8 {
        self.ia_bits
    }

    /// Output (PA) size in bits.
    #[inline(always)]
    pub const fn oa_bits(&self) -> u8 {
        self.oa_bits
    }

    /// The level the walk starts at.
    #[inline(always)]
    pub const fn start_level(&self) -> Level {
        self.start_level
    }

    /// One past the highest input address.
    #[inline(always)]
    pub const fn ia_limit(&self) -> u64 {
        1 << self.ia_bits
    }

    /// log2 of the size one entry at `level` maps.
    #[inline(always)]
    pub const fn level_shift(&self, level: Level) -> u32 {
        let g = self.granule.shift();
        g + (3 - level.0 as u32) * (g - 3)
    }

    /// Bytes one entry at `level` maps.
    #[inline(always)]
    pub const fn entry_size(&self, level: Level) -> u64 {
        1 << self.level_shift(level)
    }

    /// Entries in the (possibly concatenated) root.
    #[inline(always)]
    pub const fn root_entries(&self) -> usize {
        1 << (self.ia_bits as u32 - self.level_shift(self.start_level))
    }

    /// Pages the root spans: 1 to 16.
    #[inline(always)]
    pub const fn root_pages(&self) -> usize {
        let per_page = self.granule.entries();
        let n = self.root_entries();
        if n < per_page {
            1
        } else {
            n / per_page
        }
    }

    /// Bytes of the root (`kvm_pgtable_stage2_pgd_size`); its alignment too.
    #[inline(always)]
    pub const fn root_size(&self) -> usize {
        self.root_pages() << self.granule.shift()
    }

    /// Whether a leaf at `level` may be a block (rather than a table).
    #[inline(always)]
    pub const fn block_allowed(&self, level: Level) -> bool {
        match self.granule {
            Granule::Size4KiB => level.0 == 1 || level.0 == 2,
            Granule::Size16KiB | Granule::Size64KiB => level.0 == 2,
        }
    }

    /// Whether a leaf may sit at `level` at all (a block or a page).
    #[inline(always)]
    pub const fn leaf_allowed(&self, level: Level) -> bool {
        level.0 == 3 || self.block_allowed(level)
    }

    /// Index of `addr`'s entry in a table at `level` with `entries` entries.
    #[inline(always)]
    pub(crate) const fn index(&self, addr: u64, level: Level, entries: usize) -> usize {
        ((addr >> self.level_shift(level)) as usize) & (entries - 1)
    }
}

const VTCR_RES1: u64 = 1 << 31;
const VTCR_DS: u64 = 1 << 32;

#[cfg(test)]
mod tests {
    use super::*;

    fn vtcr(t0sz: u64, sl0: u64, ps: u64) -> u64 {
        VTCR_RES1 | t0sz | sl0 << 6 | ps << 16
    }

    #[test]
    fn forty_bit_ipa_at_level_1_concatenates_two_pages() {
        let g = Geometry::from_vtcr(vtcr(24, 1, 2)).unwrap();
        assert_eq!(g.ia_bits(), 40);
        assert_eq!(g.oa_bits(), 40);
        assert_eq!(g.start_level(), Level(1));
        assert_eq!(g.root_entries(), 1024);
        assert_eq!(g.root_pages(), 2);
        assert_eq!(g.root_size(), 8192);
    }

    #[test]
    fn common_configurations() {
        // (t0sz, sl0, ps) -> (ia, start, root pages)
        let cases = [
            ((16, 2, 5), (48, 0, 1)),
            ((25, 1, 2), (39, 1, 1)),
            ((22, 1, 5), (42, 1, 8)),
            ((21, 1, 5), (43, 1, 16)),
            ((32, 0, 0), (32, 2, 4)),
            ((32, 1, 0), (32, 1, 1)),
            ((30, 0, 1), (34, 2, 16)),
            ((24, 2, 2), (40, 0, 1)),
        ];
        for ((t0sz, sl0, ps), (ia, start, pages)) in cases {
            let g = Geometry::from_vtcr(vtcr(t0sz, sl0, ps))
                .unwrap_or_else(|e| panic!("t0sz {t0sz} sl0 {sl0}: {e}"));
            assert_eq!(g.ia_bits(), ia);
            assert_eq!(g.start_level().get(), start);
            assert_eq!(g.root_pages(), pages, "t0sz {t0sz} sl0 {sl0}");
            assert_eq!(Geometry::from_vtcr(g.vtcr()).unwrap(), g, "vtcr round trip");
        }
    }

    #[test]
    fn small_roots_are_partial_pages() {
        let g = Geometry::from_vtcr(vtcr(32, 1, 0)).unwrap();
        assert_eq!(g.root_entries(), 4);
        assert_eq!(g.root_size(), 4096);
        assert_eq!(g.index(0xc000_0000, Level(1), g.root_entries()), 3);
    }

    #[test]
    fn illegal_configurations_are_rejected() {
        // 48-bit input starting at level 1 would need 512 root pages.
        assert!(Geometry::from_vtcr(vtcr(16, 1, 5)).is_err());
        // 44-bit at level 1: 32 pages.
        assert!(Geometry::from_vtcr(vtcr(20, 1, 5)).is_err());
        // 39-bit input starting at level 0 resolves no bit there.
        assert!(Geometry::from_vtcr(vtcr(25, 2, 2)).is_err());
        // Input larger than output.
        assert!(Geometry::from_vtcr(vtcr(24, 1, 0)).is_err());
        // Reserved TG0, 16K/64K, LPA2, SL0=3, PS=52.
        assert!(Geometry::from_vtcr(vtcr(24, 1, 2) | 0b11 << 14).is_err());
        assert!(Geometry::from_vtcr(vtcr(24, 1, 2) | 0b10 << 14).is_err());
        assert!(Geometry::from_vtcr(vtcr(24, 1, 2) | VTCR_DS).is_err());
        assert!(Geometry::from_vtcr(vtcr(24, 3, 2)).is_err());
        assert!(Geometry::from_vtcr(vtcr(24, 1, 6)).is_err());
        assert!(Geometry::from_vtcr(vtcr(12, 0, 5)).is_err());
    }

    #[test]
    fn kvm_default_start_levels() {
        for (ia, start, pages) in [
            (32, 2, 4),
            (36, 1, 1),
            (40, 1, 2),
            (43, 1, 16),
            (44, 0, 1),
            (48, 0, 1),
        ] {
            let g = Geometry::for_ia_bits(ia, 48).unwrap();
            assert_eq!(
                (g.start_level().get(), g.root_pages()),
                (start, pages),
                "ia {ia}"
            );
        }
    }

    #[test]
    fn level_sizes_for_4k() {
        let g = Geometry::for_ia_bits(48, 48).unwrap();
        assert_eq!(g.entry_size(Level(3)), 4 << 10);
        assert_eq!(g.entry_size(Level(2)), 2 << 20);
        assert_eq!(g.entry_size(Level(1)), 1 << 30);
        assert_eq!(g.entry_size(Level(0)), 512 << 30);
        assert!(!g.block_allowed(Level(0)));
        assert!(g.block_allowed(Level(1)) && g.block_allowed(Level(2)));
        assert!(!g.block_allowed(Level(3)) && g.leaf_allowed(Level(3)));
    }
}

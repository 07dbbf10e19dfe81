//! Translation geometry: granule, levels, input and output sizes and the
//! root, as VTCR_EL2 describes them.
//!
//! - `granule.rs`: [`Granule`] (page size, levels, block policy) and
//!   [`Level`];
//! - `format.rs`: [`TableFormat`], the granule together with LPA2, which
//!   decides where descriptors keep their output address;
//! - `vtcr.rs`: VTCR_EL2 decoded into a [`Geometry`] and encoded back, and
//!   the PS encodings (TCR_EL2 shares them, and TG0 and DS).
//!
//! The granule is a run-time property of the geometry, not a type
//! parameter: VTCR_EL2 chooses it per VM at run time (one C library serves
//! every granule), and the walker derives everything per level from it once
//! per table, so the per-entry loop is the same for every granule.

use crate::error::Error;

mod format;
mod granule;
mod vtcr;

#[cfg(test)]
mod tests;

pub use format::TableFormat;
pub use granule::{Granule, Level};
pub use vtcr::{oa_bits_from_ps, ps_from_oa_bits};

/// The shape of a stage-2 table: its format (granule and LPA2), input and
/// output sizes, the level the walk starts at, and how many concatenated
/// pages form the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    format: TableFormat,
    ia_bits: u8,
    oa_bits: u8,
    start_level: Level,
    /// `level_shift(start_level)`, kept because every walk starts with it
    /// and computing it there was a multiplication and five other
    /// instructions of each one-page call. A function of the fields above,
    /// so the derived comparisons and hash are unchanged.
    root_shift: u8,
}

/// Most pages the architecture lets a stage-2 root concatenate.
pub const MAX_ROOT_PAGES: usize = 16;

/// The smallest input size pgwalk accepts: T0SZ at most 39 (larger T0SZ
/// values need FEAT_TTST).
pub const MIN_IA_BITS: u8 = 25;

impl Geometry {
    /// A geometry from its parts, checked against the architecture's rules
    /// (AArch64.S2InvalidSL, AArch64.S2InconsistentSL, the TxSZ bounds) for
    /// the features pgwalk implements. `format` is a [`TableFormat`], or a
    /// [`Granule`] for its format without LPA2.
    ///
    /// The rules that depend on the CPU's implemented PA size (a 4 KiB table
    /// may start at level 0 only when it is at least 44 bits, say) are the
    /// host's to keep: pgwalk checks against PS, which the host sets no
    /// larger than what its CPU implements.
    pub fn new(
        format: impl Into<TableFormat>,
        ia_bits: u8,
        start_level: Level,
        oa_bits: u8,
    ) -> Result<Geometry, Error> {
        let format = format.into();
        let granule = format.granule();
        vtcr::ps_from_oa_bits(oa_bits)?;
        if oa_bits > format.max_oa_bits() {
            return Err(Error::Geometry(
                "a 52-bit output size needs the 64 KiB granule (FEAT_LPA) or LPA2 (VTCR_EL2.DS = 1)",
            ));
        }
        if ia_bits > format.max_oa_bits() {
            return Err(Error::Geometry(if format.max_oa_bits() < 52 {
                "input sizes above 48 bits (T0SZ below 16) need the 64 KiB granule or LPA2 (VTCR_EL2.DS = 1)"
            } else {
                "input sizes above 52 bits (T0SZ below 12) do not exist"
            }));
        }
        if ia_bits < MIN_IA_BITS {
            return Err(Error::Geometry(
                "input sizes below 25 bits (T0SZ above 39) need FEAT_TTST, which pgwalk does not support",
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
        check_start_level(format, start_level)?;
        let g = Geometry::from_checked_parts(format, ia_bits, start_level, oa_bits);
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
        format: TableFormat,
        ia_bits: u8,
        start_level: Level,
        oa_bits: u8,
    ) -> Geometry {
        Geometry {
            format,
            ia_bits,
            oa_bits,
            start_level,
            root_shift: format.granule().level_shift(start_level) as u8,
        }
    }

    /// The geometry KVM picks for an input size with the 4 KiB granule:
    /// the fewest levels whose root needs at most 16 concatenated tables.
    pub fn for_ia_bits(ia_bits: u8, oa_bits: u8) -> Result<Geometry, Error> {
        Geometry::for_ia_bits_in(Granule::Size4KiB, ia_bits, oa_bits)
    }

    /// The geometry KVM picks for an input size in `format` (a
    /// [`TableFormat`] or a [`Granule`]): the fewest levels whose root needs
    /// at most 16 concatenated tables, starting no later than level 2
    /// (`kvm_get_vtcr`). Like KVM it never starts at level -1: a 52-bit
    /// 4 KiB table starts at level 0 with 16 concatenated pages.
    pub fn for_ia_bits_in(
        format: impl Into<TableFormat>,
        ia_bits: u8,
        oa_bits: u8,
    ) -> Result<Geometry, Error> {
        let format = format.into();
        let first = format.first_level().get().max(0);
        let mut last = Err(Error::Geometry("no start level fits this input size"));
        for start in (first..=2).rev() {
            last = Geometry::new(format, ia_bits, Level(start), oa_bits);
            if last.is_ok() {
                break;
            }
        }
        last
    }

    /// The table format: granule and LPA2.
    #[inline(always)]
    pub const fn format(&self) -> TableFormat {
        self.format
    }

    /// The granule.
    #[inline(always)]
    pub const fn granule(&self) -> Granule {
        self.format.granule()
    }

    /// Whether the descriptors are LPA2's (VTCR_EL2.DS = 1).
    #[inline(always)]
    pub const fn lpa2(&self) -> bool {
        self.format.lpa2()
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
        self.format.granule().level_shift(level)
    }

    /// [`level_shift`](Self::level_shift) of the start level.
    #[inline(always)]
    pub(crate) const fn root_shift(&self) -> u32 {
        self.root_shift as u32
    }

    /// Bytes one entry at `level` maps.
    #[inline(always)]
    pub const fn entry_size(&self, level: Level) -> u64 {
        1 << self.level_shift(level)
    }

    /// Entries in the (possibly concatenated) root.
    #[inline(always)]
    pub const fn root_entries(&self) -> usize {
        1 << (self.ia_bits as u32 - self.root_shift())
    }

    /// Pages the root spans: 1 to 16.
    #[inline(always)]
    pub const fn root_pages(&self) -> usize {
        let per_page = self.granule().entries();
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
        self.root_pages() << self.granule().shift()
    }

    /// Whether a leaf at `level` may be a block (rather than a table): from
    /// the granule's [`min_block_level`](Granule::min_block_level) (Linux
    /// 6.12's policy) up to level 2.
    #[inline(always)]
    pub const fn block_allowed(&self, level: Level) -> bool {
        level.0 >= self.granule().min_block_level().0 && level.0 < 3
    }

    /// Whether a leaf may sit at `level` at all (a block or a page).
    #[inline(always)]
    pub const fn leaf_allowed(&self, level: Level) -> bool {
        level.0 == 3 || self.block_allowed(level)
    }

    /// The coarsest level at which a leaf of at most `size` bytes may sit:
    /// [`Level::LAST`] when `size` is below the smallest block, otherwise the
    /// largest block level whose entries `size` can hold.
    ///
    /// A map decides this once per call, so its walk need not test at every
    /// level above it whether a block could fit there: for the one-page maps
    /// of a fault path none can.
    #[inline(always)]
    pub(crate) const fn coarsest_leaf(&self, size: u64) -> Level {
        let mut level = Level::LAST;
        while self.block_allowed(Level(level.0 - 1)) && self.entry_size(Level(level.0 - 1)) <= size
        {
            level = Level(level.0 - 1);
        }
        level
    }

    /// Whether `level` is one of this table's levels: from the start level
    /// to the last.
    #[inline(always)]
    pub const fn has_level(&self, level: Level) -> bool {
        level.0 >= self.start_level.0 && level.0 <= 3
    }

    /// Index of `addr`'s entry in a table at `level` with `entries` entries.
    #[inline(always)]
    pub(crate) const fn index(&self, addr: u64, level: Level, entries: usize) -> usize {
        ((addr >> self.level_shift(level)) as usize) & (entries - 1)
    }
}

/// Whether `format` allows a walk to start at `level` (AArch64.S2InvalidSL,
/// without the implemented-PA-size conditions).
fn check_start_level(format: TableFormat, level: Level) -> Result<(), Error> {
    let refuse = |why| Err(Error::Geometry(why));
    match (format.granule(), level.get()) {
        (Granule::Size4KiB, -1) if !format.lpa2() => {
            refuse("start level -1 needs LPA2 (VTCR_EL2.DS = 1 and SL2 = 1)")
        }
        (Granule::Size4KiB, -1..=2) => Ok(()),
        (Granule::Size4KiB, 3) => refuse(
            "start level 3 with the 4 KiB granule needs FEAT_TTST, which pgwalk does not support",
        ),
        (Granule::Size16KiB, 0) if !format.lpa2() => {
            refuse("a 16 KiB table starts at level 0 only with LPA2 (VTCR_EL2.DS = 1)")
        }
        (Granule::Size16KiB, 0..=3) => Ok(()),
        (Granule::Size64KiB, 1..=3) => Ok(()),
        (Granule::Size64KiB, _) => refuse("a 64 KiB table starts at level 1, 2 or 3"),
        _ => refuse("levels below 0 exist only with the 4 KiB granule and LPA2"),
    }
}

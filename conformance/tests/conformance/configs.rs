//! The VTCR_EL2 configurations under test, the Arm ARM's rule for which
//! start levels are legal, and what QEMU 7.2 cannot walk.

use std::fmt;

use pgwalk::geometry::{Geometry, Granule, Level, TableFormat};

use crate::rng::Rng;

/// The PS encodings of VTCR_EL2, by encoding (bits); 0b110 (52) needs
/// FEAT_LPA (64 KiB) or FEAT_LPA2.
pub(crate) const PS_SIZES: [u8; 7] = [32, 36, 40, 42, 44, 48, 52];

/// Every table format: the three granules, and LPA2 with 4 and 16 KiB.
pub(crate) fn formats() -> [TableFormat; 5] {
    let lpa2 = |g| TableFormat::new(g, true).expect("LPA2 format");
    [
        TableFormat::FOUR_KIB,
        Granule::Size16KiB.into(),
        Granule::Size64KiB.into(),
        lpa2(Granule::Size4KiB),
        lpa2(Granule::Size16KiB),
    ]
}

/// The sizes a format's operations are built from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// A page.
    pub(crate) page: u64,
    /// A level-2 block.
    pub(crate) block: u64,
    /// A larger unit: the level-1 block with 4 KiB, four level-2 blocks
    /// otherwise (pgwalk, like Linux 6.12, uses no larger block).
    pub(crate) big: u64,
}

/// One VTCR_EL2 configuration under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) format: TableFormat,
    pub(crate) ia: u8,
    pub(crate) start: i8,
    pub(crate) ps: u8,
}

impl Config {
    pub(crate) fn geometry(&self) -> Geometry {
        Geometry::new(
            self.format,
            self.ia,
            Level::new(self.start).expect("start level"),
            self.ps,
        )
        .unwrap_or_else(|e| panic!("{self}: pgwalk refuses a legal geometry: {e}"))
    }

    pub(crate) fn sizes(&self) -> Sizes {
        let granule = self.format.granule();
        let page = granule.size();
        let block = page << granule.bits_per_level();
        let big = if granule == Granule::Size4KiB {
            block << 9
        } else {
            4 * block
        };
        Sizes { page, block, big }
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: IA {} bits, start L{}, PS {} bits",
            self.format, self.ia, self.start, self.ps
        )
    }
}

/// The levels a walk of `format` may start at (AArch64.S2InvalidSL, on a
/// CPU with 52-bit PAs and without FEAT_TTST): SL0 (and SL2) encode 2, 1,
/// 0 and, with LPA2, -1 for 4 KiB; 3, 2, 1 and, with LPA2, 0 for 16 KiB;
/// 3, 2, 1 for 64 KiB.
fn start_levels(format: TableFormat) -> &'static [i8] {
    match (format.granule(), format.lpa2()) {
        (Granule::Size4KiB, false) => &[0, 1, 2],
        (Granule::Size4KiB, true) => &[-1, 0, 1, 2],
        (Granule::Size16KiB, false) => &[1, 2, 3],
        (Granule::Size16KiB, true) => &[0, 1, 2, 3],
        (Granule::Size64KiB, _) => &[1, 2, 3],
    }
}

/// The largest input size: 52 bits with 64 KiB (FEAT_LPA) and with LPA2,
/// 48 otherwise; the smallest is 25 bits (T0SZ 39, without FEAT_TTST).
fn max_ia(format: TableFormat) -> u8 {
    if format.lpa2() || format.granule() == Granule::Size64KiB {
        52
    } else {
        48
    }
}

/// The Arm ARM's rule for a stage-2 start level (AArch64.S2InvalidSL,
/// AArch64.S2InconsistentSL, the TxSZ bounds) on a CPU with 52-bit PAs:
/// the level must be one the format's SL0 encodes, and resolve at least one
/// input bit and at most one table's bits plus 4 bits of concatenation (16
/// tables). Written out here rather than taken from pgwalk, so the two can
/// be compared.
pub(crate) fn architecture_allows(format: TableFormat, ia: u8, start: i8) -> bool {
    let shift = format.granule().shift() as i32;
    let stride = shift - 3;
    let resolved = i32::from(ia) - (shift + (3 - i32::from(start)) * stride);
    start_levels(format).contains(&start)
        && (25..=max_ia(format)).contains(&ia)
        && (1..=stride + 4).contains(&resolved)
}

/// Every input size from 25 bits (32 with 4 KiB, whose smaller sizes add no
/// start level) to the format's largest, with every start level the
/// architecture allows for it: with 4 KiB without LPA2 each twice, with
/// the smallest output size that holds the input and another the seed
/// picks; with the other formats once with the smallest, and with a second
/// one every other time.
pub(crate) fn configurations(format: TableFormat, rng: &mut Rng) -> Vec<Config> {
    let four_k = format == TableFormat::FOUR_KIB;
    let first_ia = if four_k { 32 } else { 25 };
    let max_ps = max_ia(format);
    let mut out = Vec::new();
    for ia in first_ia..=max_ia(format) {
        for &start in start_levels(format) {
            if !architecture_allows(format, ia, start) {
                continue;
            }
            let legal_ps: Vec<u8> = PS_SIZES
                .iter()
                .copied()
                .filter(|&ps| ps >= ia && ps <= max_ps)
                .collect();
            let smallest = legal_ps[0];
            let config = |ps| Config {
                format,
                ia,
                start,
                ps,
            };
            out.push(config(smallest));
            if !four_k && rng.chance(1, 2) {
                continue;
            }
            let other = rng.pick(&legal_ps);
            if other != smallest {
                out.push(config(other));
            } else if smallest != max_ps {
                out.push(config(max_ps));
            }
        }
    }
    out
}

/// VTCR_EL2 for a configuration, encoded here from the Arm ARM field layout
/// (T0SZ 5:0, SL0 7:6, IRGN0 9:8, ORGN0 11:10, SH0 13:12 inner, TG0 15:14,
/// PS 18:16, RES1 31, DS 32, SL2 33), independently of `Geometry::vtcr`.
pub(crate) fn vtcr_for(cfg: &Config) -> u64 {
    let t0sz = 64 - u64::from(cfg.ia);
    let (tg0, sl0, sl2) = match cfg.format.granule() {
        Granule::Size4KiB if cfg.start == -1 => (0b00, 0, 1),
        Granule::Size4KiB => (0b00, (2 - cfg.start) as u64, 0),
        Granule::Size64KiB => (0b01, (3 - cfg.start) as u64, 0),
        Granule::Size16KiB => (0b10, (3 - cfg.start) as u64, 0),
    };
    let ds = u64::from(cfg.format.lpa2());
    let ps = PS_SIZES.iter().position(|&p| p == cfg.ps).expect("PS size") as u64;
    sl2 << 33
        | ds << 32
        | 1 << 31
        | ps << 16
        | tg0 << 14
        | 0b11 << 12
        | 0b01 << 10
        | 0b01 << 8
        | sl0 << 6
        | t0sz
}

/// QEMU 7.2 judges a start at level 0 (4 KiB) or level 1 (16 and 64 KiB)
/// against VTCR_EL2.PS instead of the implemented PA size: it refuses the
/// walk with a level-0 translation fault when PS is 42 bits or less (40
/// for 16 KiB). The Arm ARM's AArch64.S2InvalidSL tests PAMax, and QEMU
/// 8.0 was fixed to do the same. Such configurations are legal and pgwalk
/// accepts them; with an old QEMU the table is checked again with PS
/// raised to 48 bits, which changes nothing for tables whose output
/// addresses all fit the smaller size (pgwalk refuses larger ones).
pub(crate) fn hit_by_qemu_ps_start_level_bug(cfg: &Config) -> bool {
    match cfg.format.granule() {
        Granule::Size4KiB => cfg.start == 0 && cfg.ps <= 42,
        Granule::Size16KiB => cfg.start == 1 && cfg.ps <= 40,
        Granule::Size64KiB => cfg.start == 1 && cfg.ps <= 42,
    }
}

/// QEMU 7.2 cannot start a walk at some levels LPA2 adds: level -1 with
/// 4 KiB unless the input size is 52 bits, and level 0 with 16 KiB at all
/// (QEMU 8.0 rewrote the check after the Arm ARM). Such tables are checked
/// one root entry at a time: each table the root links is walked as the
/// root of a table one level down (a 48-bit 4 KiB table from level 0, a
/// 47-bit 16 KiB one from level 1), which QEMU 7.2 walks. What that leaves
/// to pgwalk and the model alone is the root's own entries.
pub(crate) fn qemu_cannot_start_here(cfg: &Config) -> bool {
    match cfg.format.granule() {
        Granule::Size4KiB => cfg.start == -1 && cfg.ia < 52,
        Granule::Size16KiB => cfg.start == 0,
        Granule::Size64KiB => false,
    }
}

//! The VTCR_EL2 configurations under test and the Arm ARM's rule for
//! which start levels are legal.

use std::fmt;

use pgwalk::geometry::{Geometry, Granule, Level};

use crate::rng::Rng;

/// The PS encodings of VTCR_EL2 without LPA (bits).
pub(crate) const PS_SIZES: [u8; 6] = [32, 36, 40, 42, 44, 48];

/// One VTCR_EL2 configuration under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) ia: u8,
    pub(crate) start: i8,
    pub(crate) ps: u8,
}

impl Config {
    pub(crate) fn geometry(&self) -> Geometry {
        Geometry::new(
            Granule::Size4KiB,
            self.ia,
            Level::new(self.start).expect("start level"),
            self.ps,
        )
        .unwrap_or_else(|e| panic!("{self}: pgwalk refuses a legal geometry: {e}"))
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IA {} bits, start L{}, PS {} bits",
            self.ia, self.start, self.ps
        )
    }
}

/// log2 of what one entry at `level` maps (4 KiB granule).
fn level_shift(level: i8) -> u32 {
    12 + 9 * (3 - level as u32)
}

/// The Arm ARM's rule for a 4 KiB stage-2 start level (AArch64.S2InvalidSL,
/// AArch64.S2InconsistentSL): SL0 encodes levels 2, 1, 0 (0 only when the
/// implemented PA size is at least 44 bits, true of `-cpu max`), and the
/// start level must resolve at least one input bit and at most the 9 bits of
/// a table plus 4 bits of concatenation (16 tables). Written out here rather
/// than taken from pgwalk, so the two can be compared.
pub(crate) fn architecture_allows(ia: u8, start: i8) -> bool {
    if !(0..=2).contains(&start) {
        return false;
    }
    let resolved = i32::from(ia) - level_shift(start) as i32;
    (1..=9 + 4).contains(&resolved)
}

/// Every input size 32..=48 with every start level the architecture allows
/// for it, each once with the smallest output size that holds the input
/// size and once with another one the seed picks.
pub(crate) fn configurations(rng: &mut Rng) -> Vec<Config> {
    let mut out = Vec::new();
    for ia in 32..=48u8 {
        for start in 0..=2i8 {
            if !architecture_allows(ia, start) {
                continue;
            }
            let legal_ps: Vec<u8> = PS_SIZES.iter().copied().filter(|&ps| ps >= ia).collect();
            let smallest = legal_ps[0];
            out.push(Config {
                ia,
                start,
                ps: smallest,
            });
            let other = rng.pick(&legal_ps);
            if other != smallest {
                out.push(Config {
                    ia,
                    start,
                    ps: other,
                });
            } else if smallest != 48 {
                out.push(Config { ia, start, ps: 48 });
            }
        }
    }
    out
}

/// VTCR_EL2 for a geometry, encoded here from the Arm ARM field layout
/// (T0SZ 5:0, SL0 7:6, IRGN0 9:8, ORGN0 11:10, SH0 13:12, TG0 15:14 = 4K,
/// PS 18:16, RES1 31), independently of `Geometry::vtcr`.
pub(crate) fn vtcr_for(ia: u8, start: i8, ps: u8) -> u64 {
    let t0sz = 64 - u64::from(ia);
    let sl0 = (2 - start) as u64;
    let ps = PS_SIZES.iter().position(|&p| p == ps).expect("PS size") as u64;
    1 << 31 | ps << 16 | 0b11 << 12 | 0b01 << 10 | 0b01 << 8 | sl0 << 6 | t0sz
}

/// QEMU 7.2 judges "start at level 0" against VTCR_EL2.PS instead of the
/// implemented PA size (it refuses the walk with a level-0 translation
/// fault when PS is 42 bits or less). The Arm ARM's AArch64.S2InvalidSL
/// tests PAMax, and QEMU 8.0 was fixed to do the same. Such configurations
/// are legal and pgwalk accepts them; with an old QEMU the table is checked
/// again with PS raised to 44 bits, which changes nothing for tables whose
/// output addresses all fit the smaller size (pgwalk refuses larger ones).
pub(crate) fn hit_by_qemu_ps_start_level_bug(cfg: &Config) -> bool {
    cfg.start == 0 && cfg.ps <= 42
}

//! Permissions added to a leaf, as a permission fault adds them
//! (`relax_perms`): decided once per call, applied per leaf with a few bit
//! operations instead of decoding and re-encoding XN.

use super::stage2::{Exec, S2AP_R, S2AP_W, XN_MASK, XN_SHIFT};
use super::Descriptor;

/// What relaxing adds: read and write (S2AP bits to set) and execution at
/// EL1 and EL0. Execution is added as a set of exception levels, so a leaf
/// never loses a level it could execute from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// S2AP bits to set.
    ap: u64,
    /// What each of the four XN values becomes, two bits per value, the
    /// old value's at bit `2 * old`.
    xn: u8,
}

/// For each set of levels to add (bit 1 EL1, bit 0 EL0), the packed XN
/// mapping of [`Grant::xn`]: worked out at compile time, so a call only
/// indexes it.
const XN_UNION: [u8; 4] = {
    let mut table = [0u8; 4];
    let mut wanted = 0;
    while wanted < 4 {
        let mut old = 0;
        while old < 4 {
            let levels = xn_levels(old) | wanted as u8;
            table[wanted] |= (Exec::from_levels(levels) as u8) << (2 * old);
            old += 1;
        }
        wanted += 1;
    }
    table
};

/// The levels XN value `xn` lets execute from (as `Exec::levels`, for any
/// of the four values).
const fn xn_levels(xn: u8) -> u8 {
    match xn & 0b11 {
        0b00 => Exec::Both.levels(),
        0b01 => Exec::El0Only.levels(),
        0b11 => Exec::El1Only.levels(),
        _ => Exec::Never.levels(),
    }
}

impl Grant {
    /// Adds read if `read`, write if `write`, and execution at EL1 and EL0
    /// as asked.
    #[inline(always)]
    pub(crate) const fn new(read: bool, write: bool, el1_exec: bool, el0_exec: bool) -> Grant {
        let ap = if read { S2AP_R } else { 0 } | if write { S2AP_W } else { 0 };
        let wanted = (el1_exec as usize) << 1 | el0_exec as usize;
        Grant {
            ap,
            xn: XN_UNION[wanted],
        }
    }
}

impl Descriptor {
    /// The same leaf with `grant`'s permissions added.
    #[inline(always)]
    #[must_use]
    pub(crate) const fn granted(self, grant: Grant) -> Descriptor {
        // Most grants (dirty logging's +W) add no execution: one OR then.
        if grant.xn == XN_UNION[0] {
            return Descriptor(self.0 | grant.ap);
        }
        let old = (self.0 & XN_MASK) >> XN_SHIFT;
        let new = (grant.xn >> (2 * old)) & 0b11;
        Descriptor(self.0 & !XN_MASK | (new as u64) << XN_SHIFT | grant.ap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoding way: each permission set through its accessor, and
    /// execution as the union of the two sets of levels.
    fn by_accessors(d: Descriptor, r: bool, w: bool, el1: bool, el0: bool) -> Descriptor {
        let mut d = d;
        if r {
            d = d.with_readable(true);
        }
        if w {
            d = d.with_writable(true);
        }
        let wanted = u8::from(el1) << 1 | u8::from(el0);
        d.with_exec(Exec::from_levels(d.exec().levels() | wanted))
    }

    #[test]
    fn granting_is_adding_each_permission() {
        let base = 0x0040_0000_8000_07ff_u64 & !(XN_MASK | S2AP_R | S2AP_W);
        for xn in 0..4u64 {
            for ap in [0, S2AP_R, S2AP_W, S2AP_R | S2AP_W] {
                let d = Descriptor::from_bits(base | ap | xn << XN_SHIFT);
                for bits in 0..16u8 {
                    let [r, w, el1, el0] = [8, 4, 2, 1].map(|b| bits & b != 0);
                    let got = d.granted(Grant::new(r, w, el1, el0));
                    assert_eq!(
                        got,
                        by_accessors(d, r, w, el1, el0),
                        "{d:?} + r{r} w{w} el1x{el1} el0x{el0}"
                    );
                    // Nothing beyond the permission bits moves.
                    assert_eq!(got.bits() & !(XN_MASK | S2AP_R | S2AP_W), base, "{d:?}");
                }
            }
        }
    }

    #[test]
    fn a_level_is_never_taken_away() {
        for xn in 0..4u8 {
            for wanted in 0..4u8 {
                let new = (XN_UNION[wanted as usize] >> (2 * xn)) & 0b11;
                assert_eq!(xn_levels(new) & xn_levels(xn), xn_levels(xn));
                assert_eq!(xn_levels(new), xn_levels(xn) | wanted);
            }
        }
    }
}

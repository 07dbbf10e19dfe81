//! Decoding of the 64-bit PAR_EL1 format returned by `AT` instructions.

use std::fmt;

/// A raw PAR_EL1 value as left by an `AT` instruction (64-bit format).
///
/// Bit 0 (`F`) selects between two layouts:
///
/// * success (`F == 0`): `SH` in bits 8:7, `NS` in bit 9, output address in
///   bits 47:12 (51:48 as well with 52-bit output addresses), memory
///   attributes in bits 63:56 encoded like a MAIR_ELx attribute byte;
/// * fault (`F == 1`): fault status code `FST` in bits 6:1, `PTW` in bit 8,
///   `S` in bit 9.
///
/// Accessors that only make sense for one layout return `None` for the other
/// so a test cannot silently compare an address out of a fault report.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Par(pub u64);

/// Fault status codes (data-abort style DFSC values) that `FST` can report.
mod fsc {
    pub const ADDRESS_SIZE_L0: u8 = 0b00_0000;
    pub const TRANSLATION_L0: u8 = 0b00_0100;
    pub const ACCESS_FLAG_L0: u8 = 0b00_1000;
    pub const PERMISSION_L0: u8 = 0b00_1100;
    /// FEAT_LPA2 adds a level -1 with out-of-sequence codes.
    pub const ADDRESS_SIZE_LM1: u8 = 0b10_1001;
    pub const TRANSLATION_LM1: u8 = 0b10_1011;
}

const F: u64 = 1 << 0;
const PTW: u64 = 1 << 8;
const S: u64 = 1 << 9;
const NS: u64 = 1 << 9;
const PA_MASK: u64 = 0x000f_ffff_ffff_f000;

impl Par {
    /// The raw register value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `true` when the translation was aborted (`F`, bit 0).
    pub const fn fault(self) -> bool {
        self.0 & F != 0
    }

    /// The fault status code (`FST`, bits 6:1) of an aborted translation.
    pub const fn fst(self) -> Option<u8> {
        if self.fault() {
            Some(((self.0 >> 1) & 0x3f) as u8)
        } else {
            None
        }
    }

    /// For a fault, `true` when it came from stage 2 (`S`, bit 9).
    pub const fn stage2(self) -> Option<bool> {
        if self.fault() {
            Some(self.0 & S != 0)
        } else {
            None
        }
    }

    /// For a fault, `true` when a stage-2 fault happened during a stage-1
    /// table walk (`PTW`, bit 8). Always `false` with stage 1 off.
    pub const fn ptw(self) -> Option<bool> {
        if self.fault() {
            Some(self.0 & PTW != 0)
        } else {
            None
        }
    }

    /// Level of an FST that belongs to the 4-code family starting at `base`,
    /// or to that family's FEAT_LPA2 level -1 code.
    fn level_in(self, base: u8, level_minus_one: Option<u8>) -> Option<i8> {
        let fst = self.fst()?;
        if fst & !0b11 == base {
            Some((fst & 0b11) as i8)
        } else if Some(fst) == level_minus_one {
            Some(-1)
        } else {
            None
        }
    }

    /// `Some(level)` for a translation fault (level -1 only with FEAT_LPA2).
    pub fn is_translation_fault(self) -> Option<i8> {
        self.level_in(fsc::TRANSLATION_L0, Some(fsc::TRANSLATION_LM1))
    }

    /// `Some(level)` for an access flag fault.
    pub fn is_access_flag_fault(self) -> Option<i8> {
        self.level_in(fsc::ACCESS_FLAG_L0, None)
    }

    /// `Some(level)` for a permission fault.
    pub fn is_permission_fault(self) -> Option<i8> {
        self.level_in(fsc::PERMISSION_L0, None)
    }

    /// `Some(level)` for an address size fault (level -1 only with
    /// FEAT_LPA2).
    pub fn is_address_size_fault(self) -> Option<i8> {
        self.level_in(fsc::ADDRESS_SIZE_L0, Some(fsc::ADDRESS_SIZE_LM1))
    }

    /// For a successful translation, the output address of the page
    /// (bits 51:12; 51:48 are zero unless 52-bit output addresses are used).
    pub const fn pa(self) -> Option<u64> {
        if self.fault() {
            None
        } else {
            Some(self.0 & PA_MASK)
        }
    }

    /// For a successful translation, the memory attributes (bits 63:56) in
    /// MAIR_ELx encoding, e.g. `0xff` Normal WB RW-allocate, `0x44` Normal
    /// non-cacheable, `0x04` Device-nGnRE.
    pub const fn attr(self) -> Option<u8> {
        if self.fault() {
            None
        } else {
            Some((self.0 >> 56) as u8)
        }
    }

    /// For a successful translation, the shareability (bits 8:7):
    /// `0b00` non-shareable, `0b10` outer, `0b11` inner shareable.
    pub const fn sh(self) -> Option<u8> {
        if self.fault() {
            None
        } else {
            Some(((self.0 >> 7) & 0b11) as u8)
        }
    }

    /// For a successful translation, the `NS` bit (bit 9).
    pub const fn ns(self) -> Option<bool> {
        if self.fault() {
            None
        } else {
            Some(self.0 & NS != 0)
        }
    }
}

impl fmt::Debug for Par {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Raw hex alone makes assertion failures hard to read; decode too.
        write!(f, "Par({:#018x}: {self})", self.0)
    }
}

impl fmt::Display for Par {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fst) = self.fst() {
            let kind = if let Some(l) = self.is_translation_fault() {
                format!("translation fault L{l}")
            } else if let Some(l) = self.is_access_flag_fault() {
                format!("access flag fault L{l}")
            } else if let Some(l) = self.is_permission_fault() {
                format!("permission fault L{l}")
            } else if let Some(l) = self.is_address_size_fault() {
                format!("address size fault L{l}")
            } else {
                format!("fault FST={fst:#04x}")
            };
            let stage = if self.0 & S != 0 { 2 } else { 1 };
            let ptw = if self.0 & PTW != 0 { " (s1 walk)" } else { "" };
            write!(f, "{kind}, stage {stage}{ptw}")
        } else {
            write!(
                f,
                "pa={:#x} attr={:#04x} sh={:#04b}",
                self.0 & PA_MASK,
                self.0 >> 56,
                (self.0 >> 7) & 0b11
            )
        }
    }
}

impl From<u64> for Par {
    fn from(raw: u64) -> Self {
        Par(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_success() {
        let p = Par(0xff00_0001_2345_6f80 | (1 << 11));
        assert!(!p.fault());
        assert_eq!(p.pa(), Some(0x1_2345_6000));
        assert_eq!(p.attr(), Some(0xff));
        assert_eq!(p.sh(), Some(0b11));
        assert_eq!(p.fst(), None);
        assert_eq!(p.is_translation_fault(), None);
    }

    #[test]
    fn decodes_faults() {
        // S=1, FST=translation level 1, RES1 bit 11.
        let t = Par(0xa0b);
        assert_eq!(t.is_translation_fault(), Some(1));
        assert_eq!(t.stage2(), Some(true));
        assert_eq!(t.ptw(), Some(false));
        assert_eq!(t.pa(), None);

        let af = Par(1 | (0b00_1011 << 1));
        assert_eq!(af.is_access_flag_fault(), Some(3));
        assert_eq!(af.is_permission_fault(), None);

        let perm = Par(1 | (0b00_1110 << 1) | S);
        assert_eq!(perm.is_permission_fault(), Some(2));

        let lm1 = Par(1 | (0b10_1011 << 1));
        assert_eq!(lm1.is_translation_fault(), Some(-1));
        assert_eq!(lm1.is_address_size_fault(), None);
    }
}

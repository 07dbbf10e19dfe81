//! The guest's physical memory map: its RAM, and the devices of QEMU's
//! `virt` machine (7.2, gic-version=3), passed through identity-mapped.
//! Anything else, the hypervisor's own RAM included, is nothing: an access
//! there gets a synchronous external abort.

use crate::layout::{GUEST_RAM_BASE, GUEST_RAM_END};

/// What lies at a guest physical address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Region {
    /// Guest RAM, mapped Normal write-back.
    Ram,
    /// A device, mapped Device-nGnRE.
    Device(&'static str),
}

/// The virt machine's MMIO regions (base, size, name), as its DTB lists
/// them.
pub const DEVICES: &[(u64, u64, &str)] = &[
    (0x0000_0000, 0x0800_0000, "flash"),
    (0x0800_0000, 0x0001_0000, "gic-distributor"),
    (0x0808_0000, 0x0002_0000, "gic-its"),
    (0x080a_0000, 0x00f6_0000, "gic-redistributors"),
    (0x0900_0000, 0x0000_1000, "pl011"),
    (0x0901_0000, 0x0000_1000, "pl031"),
    (0x0902_0000, 0x0000_1000, "fw-cfg"),
    (0x0903_0000, 0x0000_1000, "pl061"),
    (0x0a00_0000, 0x0000_4000, "virtio-mmio"),
    (0x0c00_0000, 0x0200_0000, "platform-bus"),
    (0x1000_0000, 0x2eff_0000, "pcie-mmio"),
    (0x3eff_0000, 0x0001_0000, "pcie-pio"),
    (0x40_1000_0000, 0x1000_0000, "pcie-ecam"),
    (0x80_0000_0000, 0x80_0000_0000, "pcie-mmio-high"),
];

/// What lies at `ipa`.
pub fn lookup(ipa: u64) -> Option<Region> {
    if (GUEST_RAM_BASE..GUEST_RAM_END).contains(&ipa) {
        return Some(Region::Ram);
    }
    DEVICES
        .iter()
        .find(|&&(base, size, _)| ipa >= base && ipa - base < size)
        .map(|&(_, _, name)| Region::Device(name))
}

/// Whether the whole of `base..base + size` is guest RAM.
pub fn is_ram(base: u64, size: u64) -> bool {
    base >= GUEST_RAM_BASE && base + size <= GUEST_RAM_END
}

/* The guest's physical memory map: its RAM, and the devices of QEMU's virt
 * machine (7.2, gic-version=3), passed through identity-mapped. Anything
 * else, the hypervisor's own RAM included, is nothing: an access there
 * gets a synchronous external abort. */
#include "hv.h"

static const struct { uint64_t base, size; const char *name; } devices[] = {
	{ 0x00000000, 0x08000000, "flash" },
	{ 0x08000000, 0x00010000, "gic-distributor" },
	{ 0x08080000, 0x00020000, "gic-its" },
	{ 0x080a0000, 0x00f60000, "gic-redistributors" },
	{ 0x09000000, 0x00001000, "pl011" },
	{ 0x09010000, 0x00001000, "pl031" },
	{ 0x09020000, 0x00001000, "fw-cfg" },
	{ 0x09030000, 0x00001000, "pl061" },
	{ 0x0a000000, 0x00004000, "virtio-mmio" },
	{ 0x0c000000, 0x02000000, "platform-bus" },
	{ 0x10000000, 0x2eff0000, "pcie-mmio" },
	{ 0x3eff0000, 0x00010000, "pcie-pio" },
	{ 0x4010000000ull, 0x10000000, "pcie-ecam" },
	{ 0x8000000000ull, 0x8000000000ull, "pcie-mmio-high" },
};

enum region memmap_lookup(uint64_t ipa, const char **name)
{
	if (ipa >= GUEST_RAM_BASE && ipa < GUEST_RAM_END) {
		if (name)
			*name = "ram";
		return REGION_RAM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(devices); i++)
		if (ipa >= devices[i].base && ipa - devices[i].base < devices[i].size) {
			if (name)
				*name = devices[i].name;
			return REGION_DEVICE;
		}
	return REGION_NONE;
}

bool memmap_is_ram(uint64_t base, uint64_t size)
{
	return base >= GUEST_RAM_BASE && base + size <= GUEST_RAM_END;
}

/*
 * Bit and mask helpers. The kernel's BIT() is an unsigned long, 64 bits on
 * both arm64 and x86_64; GENMASK(h, l) has bits h..l set.
 */
#ifndef KP_SHIM_LINUX_BITS_H
#define KP_SHIM_LINUX_BITS_H

#define BIT(nr) (1UL << (nr))
#define BIT_ULL(nr) (1ULL << (nr))
#define GENMASK(h, l) ((~0UL >> (63 - (h))) & (~0UL << (l)))
#define GENMASK_ULL(h, l) ((~0ULL >> (63 - (h))) & (~0ULL << (l)))

#endif

/*
 * FIELD_PREP / FIELD_GET: place a value into, or take it out of, the field
 * a contiguous constant mask describes. The shift is the mask's lowest set
 * bit; the result has the mask's type, as in the kernel.
 */
#ifndef KP_SHIM_LINUX_BITFIELD_H
#define KP_SHIM_LINUX_BITFIELD_H

#include <linux/bits.h>

#define kp_field_shift(mask) __builtin_ctzll((unsigned long long)(mask))

#define FIELD_PREP(mask, val)                                                  \
	((((__typeof__(mask))(val)) << kp_field_shift(mask)) & (mask))

#define FIELD_GET(mask, reg)                                                   \
	((__typeof__(mask))(((reg) & (mask)) >> kp_field_shift(mask)))

#endif

/*
 * The arm64 translation-table geometry pgtable.c needs, for the granule the
 * build selects with KP_PAGE_SHIFT (12, 14 or 16). Each level of table
 * resolves PAGE_SHIFT - 3 bits (an 8-byte descriptor per entry); level 3
 * resolves the bits just above the page offset.
 */
#ifndef KP_SHIM_LINUX_PGTABLE_H
#define KP_SHIM_LINUX_PGTABLE_H

#include <linux/kvm_host.h>

#endif

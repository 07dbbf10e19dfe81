/*
 * Host stand-in for the kernel's fixed-width types, as arm64 defines them
 * (LP64: long is 64 bits, as on x86_64 Linux).
 */
#ifndef KP_SHIM_LINUX_TYPES_H
#define KP_SHIM_LINUX_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;

typedef u64 phys_addr_t;
typedef u64 pteval_t;
typedef u64 kvm_pfn_t;
typedef unsigned int gfp_t;

/* Sparse's address-space annotation: nothing to a compiler. */
#define __rcu

#endif

/*
 * Everything else pgtable.c and <asm/kvm_pgtable.h> take from the kernel,
 * written for a single-threaded x86_64 host process:
 *
 * - page size and table geometry for KP_PAGE_SHIFT (12 by default);
 * - the VTCR_EL2, memory-attribute and ID-register constants it uses;
 * - READ_ONCE/WRITE_ONCE, release/acquire, cmpxchg and the arm64 barriers
 *   as C11 atomics and compiler fences;
 * - WARN_ON/WARN_ON_ONCE counted (kp_warn_count), BUG_ON aborting;
 * - RCU read-side as a nesting counter (so rcu_read_lock_held() is true
 *   exactly inside a shared walk, as in the kernel);
 * - CPU capabilities read from kp_caps (all off unless the harness turns
 *   one on);
 * - kvm_call_hyp() and the TLBI instructions as calls into recording
 *   stubs (kp_shim.c);
 * - the parts of struct kvm_s2_mmu and struct kvm_mmu_memory_cache that
 *   pgtable.c touches.
 */
#ifndef KP_SHIM_LINUX_KVM_HOST_H
#define KP_SHIM_LINUX_KVM_HOST_H

#include <errno.h>
#include <limits.h>

#include <linux/bitfield.h>
#include <linux/bits.h>
#include <linux/types.h>

#include "kp_shim.h"

/* ---- granule ---------------------------------------------------------- */

#ifndef KP_PAGE_SHIFT
#define KP_PAGE_SHIFT 12
#endif
#define PAGE_SHIFT KP_PAGE_SHIFT
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))

#if PAGE_SHIFT == 12
#define CONFIG_ARM64_4K_PAGES 1
#elif PAGE_SHIFT == 14
#define CONFIG_ARM64_16K_PAGES 1
#elif PAGE_SHIFT == 16
#define CONFIG_ARM64_64K_PAGES 1
#else
#error "KP_PAGE_SHIFT must be 12, 14 or 16"
#endif

/*
 * Kconfig options pgtable.c tests with IS_ENABLED(): each is always defined,
 * to 0 or 1, so IS_ENABLED() can simply be its value. 52-bit PAs with 64K
 * pages are a build option (KP_PA_BITS_52), off unless asked for.
 */
#ifndef KP_PA_BITS_52
#define KP_PA_BITS_52 0
#endif
#define CONFIG_ARM64_PA_BITS_52 KP_PA_BITS_52
#define CONFIG_ARM64_PA_BITS (KP_PA_BITS_52 ? 52 : 48)
#define IS_ENABLED(option) (option)
/* CONFIG_ARM64_HW_AFDBM is left undefined: VTCR_EL2.HA stays clear. */

/* Levels needed for va_bits, each resolving PAGE_SHIFT - 3 bits. */
#define ARM64_HW_PGTABLE_LEVELS(va_bits) (((va_bits) - 4) / (PAGE_SHIFT - 3))
/* Lowest address bit an entry at level n resolves. */
#define ARM64_HW_PGTABLE_LEVEL_SHIFT(n) ((PAGE_SHIFT - 3) * (4 - (n)) + 3)
#define PTRS_PER_PTE (1 << (PAGE_SHIFT - 3))

#define __phys_to_pfn(paddr) ((paddr) >> PAGE_SHIFT)

/* ---- generic helpers ---------------------------------------------------- */

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ALIGN(x, a) (((x) + ((__typeof__(x))(a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define PAGE_ALIGN(addr) ALIGN(addr, PAGE_SIZE)
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a) - 1)) == 0)

#define min(a, b)                                                              \
	({                                                                     \
		__typeof__(a) kp_min_a = (a);                                  \
		__typeof__(b) kp_min_b = (b);                                  \
		kp_min_a < kp_min_b ? kp_min_a : kp_min_b;                     \
	})

#define container_of(ptr, type, member)                                        \
	((type *)(void *)((char *)(ptr) - __builtin_offsetof(type, member)))

/* ERR_PTR: a negative errno carried in the last page of the address space. */
#define MAX_ERRNO 4095
static inline void *ERR_PTR(long error)
{
	return (void *)error;
}
static inline long PTR_ERR(const void *ptr)
{
	return (long)ptr;
}
static inline bool IS_ERR(const void *ptr)
{
	return (unsigned long)ptr >= (unsigned long)-MAX_ERRNO;
}

/* ---- WARN / BUG ------------------------------------------------------- */

#define WARN_ON(condition)                                                     \
	({                                                                     \
		int kp_warn_c = !!(condition);                                 \
		if (unlikely(kp_warn_c))                                       \
			kp_warn(__FILE__, __LINE__, #condition);               \
		kp_warn_c;                                                     \
	})
/*
 * The kernel reports a WARN_ON_ONCE only the first time per boot; the
 * harness counts every time the condition holds, so that each operation's
 * count does not depend on what ran before it.
 */
#define WARN_ON_ONCE(condition) WARN_ON(condition)
#define BUG_ON(condition)                                                      \
	do {                                                                   \
		if (unlikely(condition))                                       \
			kp_bug(__FILE__, __LINE__, #condition);                \
	} while (0)

/* ---- memory ordering ---------------------------------------------------- */

#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, val)                                                     \
	do {                                                                   \
		*(volatile __typeof__(x) *)&(x) = (val);                       \
	} while (0)
#define smp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define smp_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)

/* Returns the value *ptr held before; stores new only if it was old. */
#define cmpxchg(ptr, old, new)                                                 \
	({                                                                     \
		__typeof__(*(ptr)) kp_cx_old = (old);                          \
		__atomic_compare_exchange_n((ptr), &kp_cx_old, (new), false,   \
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
		kp_cx_old;                                                     \
	})
/* As cmpxchg, but says whether it stored, and updates *oldp when not. */
#define try_cmpxchg(ptr, oldp, new)                                            \
	__atomic_compare_exchange_n((ptr), (oldp), (new), false,               \
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

/* DSB orders memory accesses (a full fence here); ISB orders the pipeline,
 * which a host program only sees as a compiler barrier. */
#define dsb(opt) __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define isb() __asm__ __volatile__("" ::: "memory")

/* ---- RCU -------------------------------------------------------------- */

#define rcu_read_lock() (kp_rcu_depth++)
#define rcu_read_unlock() (kp_rcu_depth--)
#define rcu_read_lock_held() (kp_rcu_depth > 0)
#define rcu_dereference_check(p, c) (p)

/* ---- CPU features ------------------------------------------------------- */

enum kp_cpucap {
	ARM64_HAS_STAGE2_FWB,
	ARM64_KVM_HVHE,
	ARM64_WORKAROUND_AMPERE_AC03_CPU_38,
};

static inline bool cpus_have_final_cap(int cap)
{
	switch (cap) {
	case ARM64_HAS_STAGE2_FWB:
		return kp_caps.fwb;
	case ARM64_KVM_HVHE:
		return kp_caps.hvhe;
	default:
		return false;
	}
}
#define system_supports_tlb_range() (kp_caps.tlb_range)
#define system_supports_lpa2() (kp_caps.lpa2)
#define system_supports_bti_kernel() (false)

/* ID_AA64MMFR0_EL1.PARange encodings and the physical sizes they mean. */
#define ID_AA64MMFR0_EL1_PARANGE_SHIFT 0
#define ID_AA64MMFR0_EL1_PARANGE_32 0x0
#define ID_AA64MMFR0_EL1_PARANGE_36 0x1
#define ID_AA64MMFR0_EL1_PARANGE_40 0x2
#define ID_AA64MMFR0_EL1_PARANGE_42 0x3
#define ID_AA64MMFR0_EL1_PARANGE_44 0x4
#define ID_AA64MMFR0_EL1_PARANGE_48 0x5
#define ID_AA64MMFR0_EL1_PARANGE_52 0x6

static inline u32 id_aa64mmfr0_parange_to_phys_shift(int parange)
{
	static const u8 bits[] = { 32, 36, 40, 42, 44, 48, 52 };

	if (parange >= 0 && parange < (int)sizeof(bits))
		return bits[parange];
	/* Larger encodings are newer and bigger: cap at what is built. */
	return CONFIG_ARM64_PA_BITS;
}

static inline unsigned int cpuid_feature_extract_unsigned_field(u64 features,
								 int shift)
{
	return (unsigned int)((features >> shift) & 0xf);
}

/* ID_AA64MMFR1_EL1.VMIDBits (bits 7:4): 2 means 16-bit VMIDs. */
static inline int get_vmid_bits(u64 mmfr1)
{
	return ((mmfr1 >> 4) & 0xf) == 2 ? 16 : 8;
}

/* ---- VTCR_EL2 --------------------------------------------------------- */

#define TCR_T0SZ(x) ((u64)(64 - (x)))
#define TCR_TG0_4K (0UL << 14)
#define TCR_TG0_64K (1UL << 14)
#define TCR_TG0_16K (2UL << 14)
#define TCR_SH0_INNER (3UL << 12)
#define TCR_ORGN0_WBWA (1UL << 10)
#define TCR_IRGN0_WBWA (1UL << 8)

#define VTCR_EL2_T0SZ_MASK 0x3fUL
#define VTCR_EL2_T0SZ(x) TCR_T0SZ(x)
#define VTCR_EL2_SL0_SHIFT 6
#define VTCR_EL2_SL0_MASK (3UL << VTCR_EL2_SL0_SHIFT)
#define VTCR_EL2_PS_SHIFT 16
#define VTCR_EL2_VS_8BIT (0UL << 19)
#define VTCR_EL2_VS_16BIT (1UL << 19)
#define VTCR_EL2_HA (1UL << 21)
#define VTCR_EL2_RES1 (1UL << 31)
#define VTCR_EL2_DS (1UL << 32)

/*
 * SL0 encodes the start level relative to a per-granule base: with 4K,
 * SL0 = 2 - level; with 16K and 64K, SL0 = 3 - level.
 */
#if PAGE_SHIFT == 12
#define VTCR_EL2_TGRAN TCR_TG0_4K
#define VTCR_EL2_TGRAN_SL0_BASE 2UL
#elif PAGE_SHIFT == 14
#define VTCR_EL2_TGRAN TCR_TG0_16K
#define VTCR_EL2_TGRAN_SL0_BASE 3UL
#else
#define VTCR_EL2_TGRAN TCR_TG0_64K
#define VTCR_EL2_TGRAN_SL0_BASE 3UL
#endif

#define VTCR_EL2_IPA(vtcr) (64 - ((vtcr) & VTCR_EL2_T0SZ_MASK))
#define VTCR_EL2_LVLS_TO_SL0(levels)                                           \
	((VTCR_EL2_TGRAN_SL0_BASE - (4 - (levels))) << VTCR_EL2_SL0_SHIFT)
#define VTCR_EL2_SL0_TO_LVLS(sl0) ((sl0) + 4 - VTCR_EL2_TGRAN_SL0_BASE)
#define VTCR_EL2_LVLS(vtcr)                                                    \
	VTCR_EL2_SL0_TO_LVLS(((vtcr) & VTCR_EL2_SL0_MASK) >> VTCR_EL2_SL0_SHIFT)
#define VTCR_EL2_FLAGS                                                         \
	(TCR_SH0_INNER | TCR_ORGN0_WBWA | TCR_IRGN0_WBWA | VTCR_EL2_RES1 |     \
	 VTCR_EL2_TGRAN)

/* ---- memory attributes -------------------------------------------------- */

/* Stage-1 MAIR indices (the hyp tables). */
#define MT_NORMAL 0
#define MT_DEVICE_nGnRE 4

/* Stage-2 MemAttr[3:0], without and with FEAT_S2FWB. */
#define MT_S2_NORMAL 0xf
#define MT_S2_NORMAL_NC 0x5
#define MT_S2_DEVICE_nGnRE 0x1
#define MT_S2_FWB_NORMAL 6
#define MT_S2_FWB_NORMAL_NC 5
#define MT_S2_FWB_DEVICE_nGnRE 1

#define PTE_S2_MEMATTR(t) ((pteval_t)(t) << 2)
#define PAGE_S2_MEMATTR(attr, has_fwb)                                         \
	((has_fwb) ? PTE_S2_MEMATTR(MT_S2_FWB_##attr)                          \
		   : PTE_S2_MEMATTR(MT_S2_##attr))

/* ---- TLB maintenance ---------------------------------------------------- */

/* "Level unknown" hint, as the kernel passes it. */
#define TLBI_TTL_UNKNOWN INT_MAX
/* The most pages one range TLBI covers: (NUM + 1) << (5 * SCALE + 1) with
 * NUM = 31 and SCALE = 3. */
#define MAX_TLBI_RANGE_PAGES ((unsigned long)(31 + 1) << (5 * 3 + 1))

#define __TLBI_VADDR(addr, asid) ((u64)(addr))
/* EL2 stage-1 invalidations (the hyp tables): recorded as such. */
#define __tlbi_level(op, addr, level) kp_tlbi_hyp(#op, (addr), (level))
#define __tlbi_sync_s1ish_hyp() dsb(ish)

/* kvm_call_hyp(f, args...) runs the hypervisor function f: here its stub. */
#define kvm_call_hyp(f, ...) kp_hyp_##f(__VA_ARGS__)

/* ---- KVM structures ----------------------------------------------------- */

struct kvm_pgtable;
struct kvm_arch;

/*
 * The kernel's memory cache holds preallocated objects; pgtable.c reads
 * only how many it holds (split). The harness's host hands that many
 * pages out of it through zalloc_page (see harness/kp.h).
 */
struct kvm_mmu_memory_cache {
	int nobjs;
};

struct kvm_s2_mmu {
	u64 vtcr;
	struct kvm_pgtable *pgt;
	/* split finds its MMU from the memory cache with container_of(). */
	struct kvm_mmu_memory_cache split_page_cache;
	struct kvm_arch *arch;
};

/* The hypervisor's TLB invalidation entry points (recording stubs). */
void kp_hyp___kvm_tlb_flush_vmid_ipa(struct kvm_s2_mmu *mmu, phys_addr_t ipa,
				     int level);
void kp_hyp___kvm_tlb_flush_vmid_ipa_nsh(struct kvm_s2_mmu *mmu,
					 phys_addr_t ipa, int level);
void kp_hyp___kvm_tlb_flush_vmid_range(struct kvm_s2_mmu *mmu,
				       phys_addr_t start, unsigned long pages);
void kp_hyp___kvm_tlb_flush_vmid(struct kvm_s2_mmu *mmu);

#endif

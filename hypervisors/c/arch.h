/*
 * The AArch64 instructions the C hypervisor needs, each behind a small
 * inline function or macro: system registers, barriers, the counter, TLB
 * and cache maintenance, and the entry points boot.S provides.
 */
#ifndef HV_ARCH_H
#define HV_ARCH_H

#include <stdint.h>

#define read_sysreg(reg) ({                                             \
	uint64_t v_;                                                    \
	__asm__ volatile("mrs %0, " #reg : "=r"(v_));                   \
	v_;                                                             \
})

/* A "memory" clobber: a register write may change what memory means
 * (translation, traps), so the compiler must not move accesses across. */
#define write_sysreg(reg, val) do {                                     \
	uint64_t v_ = (val);                                            \
	__asm__ volatile("msr " #reg ", %0" : : "r"(v_) : "memory");    \
} while (0)

static inline void isb(void) { __asm__ volatile("isb" : : : "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("yield" : : : "memory"); }

static inline uint64_t counter(void)
{
	isb();
	return read_sysreg(cntpct_el0);
}

static inline uint64_t counter_freq(void) { return read_sysreg(cntfrq_el0); }

static inline uint64_t ticks_to_ms(uint64_t ticks) { return ticks * 1000 / counter_freq(); }

/* boot.S */
uint64_t hv_smc(uint64_t x0, uint64_t x1, uint64_t x2, uint64_t x3);
_Noreturn void hv_semihost_exit(uint64_t code);
struct frame;
_Noreturn void hv_enter_guest(const struct frame *frame, uint64_t sp);
void hv_secondary_entry(void);

/* arch.c */
void tlbi_ipa(uint64_t ipa);
void tlbi_ipa_nsh(uint64_t ipa);
void tlbi_ipa_range(uint64_t ipa, uint64_t size);
void tlbi_vmid(void);
void tlbi_el2_local(void);
void tlbi_el2_va(uint64_t va);
void tlbi_el2_va_walks(uint64_t va);
void publish_tables(void);
void dcache_clean_inval_poc(uint64_t va, uint64_t size);
void icache_inval_pou(uint64_t va, uint64_t size);
void wfi(void);

#endif

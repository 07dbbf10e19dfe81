/*
 * The run-time side of the kernel shims (kp_shim.c): state pgtable.c reads
 * through the shim macros, and what it reports back. Plain C types only, so
 * that code which never sees a kernel header (the harness, a benchmark) can
 * include it too.
 */
#ifndef KP_SHIM_H
#define KP_SHIM_H

#include <stdbool.h>
#include <stdint.h>

/* CPU capabilities pgtable.c asks about; all false unless set. */
struct kp_caps {
	bool fwb;       /* ARM64_HAS_STAGE2_FWB */
	bool tlb_range; /* FEAT_TLBIRANGE: system_supports_tlb_range() */
	bool lpa2;      /* FEAT_LPA2 in use: kvm_lpa2_is_enabled() */
	bool hvhe;      /* ARM64_KVM_HVHE (hyp stage-1 AP encoding) */
};
extern struct kp_caps kp_caps;

/* WARN_ON/WARN_ON_ONCE conditions that held, since the last reset. */
extern unsigned long kp_warn_count;
/* When set, each WARN prints its file, line and condition to stderr. */
extern bool kp_warn_verbose;
/* rcu_read_lock() nesting depth. */
extern int kp_rcu_depth;

void kp_warn(const char *file, int line, const char *cond);
__attribute__((noreturn)) void kp_bug(const char *file, int line, const char *cond);

/* What the TLBI stubs report. */
enum kp_tlbi_kind {
	KP_TLBI_IPA = 1,     /* __kvm_tlb_flush_vmid_ipa(mmu, ipa, level) */
	KP_TLBI_IPA_NSH = 2, /* __kvm_tlb_flush_vmid_ipa_nsh(mmu, ipa, level) */
	KP_TLBI_RANGE = 3,   /* __kvm_tlb_flush_vmid_range(mmu, start, pages): b = bytes */
	KP_TLBI_VMID = 4,    /* __kvm_tlb_flush_vmid(mmu) */
	KP_TLBI_HYP = 5,     /* an EL2 stage-1 TLBI (hyp tables) */
};

/*
 * Called for every TLBI, in order, when set (the harness's event log).
 * `mmu` is the kernel's struct kvm_s2_mmu (NULL for hyp invalidations);
 * `a` the address, `b` the level (INT_MAX: unknown) or the size in bytes.
 */
extern void (*kp_tlbi_hook)(void *mmu, enum kp_tlbi_kind kind, uint64_t a, uint64_t b);
/* Calls per kind since the last reset (index: enum kp_tlbi_kind). */
extern unsigned long kp_tlbi_count[6];

void kp_tlbi_hyp(const char *op, uint64_t addr, int level);

/* Zero the counters (not the capabilities, nor the hook). */
void kp_shim_reset(void);

#endif

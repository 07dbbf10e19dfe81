/*
 * Run-time side of the kernel shims: capability switches, the WARN
 * counter, the RCU nesting depth and the hypervisor's TLB-invalidation
 * entry points, which record each call instead of invalidating anything.
 */
#include <linux/kvm_host.h>

#include <stdio.h>
#include <stdlib.h>

struct kp_caps kp_caps;
unsigned long kp_warn_count;
bool kp_warn_verbose;
int kp_rcu_depth;
void (*kp_tlbi_hook)(void *mmu, enum kp_tlbi_kind kind, uint64_t a, uint64_t b);
unsigned long kp_tlbi_count[6];

void kp_warn(const char *file, int line, const char *cond)
{
	kp_warn_count++;
	if (kp_warn_verbose)
		fprintf(stderr, "kernel WARN at %s:%d: %s\n", file, line, cond);
}

void kp_bug(const char *file, int line, const char *cond)
{
	fprintf(stderr, "kernel BUG at %s:%d: %s\n", file, line, cond);
	abort();
}

static void record(void *mmu, enum kp_tlbi_kind kind, uint64_t a, uint64_t b)
{
	kp_tlbi_count[kind]++;
	if (kp_tlbi_hook)
		kp_tlbi_hook(mmu, kind, a, b);
}

void kp_hyp___kvm_tlb_flush_vmid_ipa(struct kvm_s2_mmu *mmu, phys_addr_t ipa, int level)
{
	record(mmu, KP_TLBI_IPA, ipa, (uint64_t)(int64_t)level);
}

void kp_hyp___kvm_tlb_flush_vmid_ipa_nsh(struct kvm_s2_mmu *mmu, phys_addr_t ipa, int level)
{
	record(mmu, KP_TLBI_IPA_NSH, ipa, (uint64_t)(int64_t)level);
}

void kp_hyp___kvm_tlb_flush_vmid_range(struct kvm_s2_mmu *mmu, phys_addr_t start,
				       unsigned long pages)
{
	record(mmu, KP_TLBI_RANGE, start, (uint64_t)pages << PAGE_SHIFT);
}

void kp_hyp___kvm_tlb_flush_vmid(struct kvm_s2_mmu *mmu)
{
	record(mmu, KP_TLBI_VMID, 0, 0);
}

void kp_tlbi_hyp(const char *op, uint64_t addr, int level)
{
	(void)op;
	record(NULL, KP_TLBI_HYP, addr, (uint64_t)(int64_t)level);
}

void kp_shim_reset(void)
{
	kp_warn_count = 0;
	kp_rcu_depth = 0;
	for (int i = 0; i < 6; i++)
		kp_tlbi_count[i] = 0;
}

/*
 * The guest's stage-2 table, set up as KVM sets up a VM's: VTCR_EL2 from
 * kvm_get_vtcr and the CPU's ID registers, kvm_pgtable_stage2_init over a
 * struct kvm_s2_mmu whose callbacks are the hypervisor's own TLB
 * maintenance, and the table behind a reader/writer lock (KVM's mmu_lock):
 * fault handlers take it for reading, dirty-logging rounds and the final
 * check for writing. The device fault path calls through a binding of the
 * table (pgw_bind_stage2), made once here.
 */
#include "arch.h"
#include "hv.h"

#define IPA_BITS 40

struct kvm_pgtable stage2;
struct pgw_bound_stage2 stage2_bound;
rwlock_t mmu_lock;

static void flush_ipa(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	(void)mmu;
	(void)level;
	COUNT(tlbi_ipa);
	tlbi_ipa(ipa);
}

static void flush_ipa_nsh(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	(void)mmu;
	(void)level;
	COUNT(tlbi_ipa_nsh);
	tlbi_ipa_nsh(ipa);
}

static void flush_vmid(struct kvm_s2_mmu *mmu)
{
	(void)mmu;
	COUNT(tlbi_vmid);
	tlbi_vmid();
}

static void flush_range(struct kvm_s2_mmu *mmu, uint64_t addr, uint64_t size)
{
	/* Beyond a few hundred pages one whole-VMID invalidation is cheaper
	 * than the loop (KVM's MAX_TLBI_OPS idea). */
	if (size / PAGE > 512) {
		flush_vmid(mmu);
		return;
	}
	COUNT(tlbi_range);
	tlbi_ipa_range(addr, size);
}

struct kvm_s2_mmu stage2_mmu = {
	.tlb_flush_vmid_ipa = flush_ipa,
	.tlb_flush_vmid_range = flush_range,
	.tlb_flush_vmid = flush_vmid,
	.tlb_flush_vmid_ipa_nsh = flush_ipa_nsh,
};

uint64_t vm_vttbr(void)
{
	return stage2_mmu.pgd_phys | VMID << 48;
}

/* kvm_mmu_cache_min_pages: a table page for each level below the root. */
int vm_memcache_min_pages(void)
{
	return KVM_PGTABLE_LAST_LEVEL - stage2.start_level;
}

/* A call on the table from inside a call on the same table must be
 * refused (pgw_set_reentry_slot): here a lookup from a visitor. */
struct reentry_probe {
	int inner;
	int visits;
};

static int reentry_visitor(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	struct reentry_probe *p = ctx->arg;
	kvm_pte_t pte;

	(void)visit;
	p->visits++;
	p->inner = kvm_pgtable_get_leaf(&stage2, ctx->addr, &pte, NULL);
	return 0;
}

static void reentry_self_test(void)
{
	struct reentry_probe probe = { .inner = 1 };
	struct kvm_pgtable_walker walker = {
		.cb = reentry_visitor, .arg = &probe, .flags = KVM_PGTABLE_WALK_LEAF,
	};
	int r = kvm_pgtable_walk(&stage2, GUEST_RAM_BASE, PAGE, &walker);

	if (r || probe.visits != 1 || probe.inner != -PGW_EDEADLK)
		hv_panic("re-entry self-test: walk %s, %d visits, the inner call returned %s",
			 errno_str(r), probe.visits, errno_str(probe.inner));
	/* Outside any call the same lookup goes through. */
	r = kvm_pgtable_get_leaf(&stage2, GUEST_RAM_BASE, NULL, NULL);
	if (r)
		hv_panic("re-entry self-test: a lookup after the walk returned %s", errno_str(r));
}

void vm_init(void)
{
	uint64_t mmfr0 = read_sysreg(id_aa64mmfr0_el1), mmfr1 = read_sysreg(id_aa64mmfr1_el1);

	stage2_mmu.vtcr = kvm_get_vtcr(mmfr0, mmfr1, IPA_BITS);
	int r = kvm_pgtable_stage2_init(&stage2, &stage2_mmu, &stage2_mm_ops);
	if (r)
		hv_panic("kvm_pgtable_stage2_init (VTCR_EL2 %#lx): %s", stage2_mmu.vtcr, errno_str(r));
	hv_printf("pgwalk-hv-c: stage-2 table: %u-bit IPA, start level %d, root %#lx (%zu pages), VTCR_EL2 %#lx from kvm_get_vtcr\n",
		  stage2.ia_bits, stage2.start_level, stage2_mmu.pgd_phys,
		  kvm_pgtable_stage2_pgd_size(stage2_mmu.vtcr) / PAGE, stage2_mmu.vtcr);
	reentry_self_test();
	hv_printf("pgwalk-hv-c: re-entry self-test passed (a call on the table from its own visitor: -PGW_EDEADLK)\n");
	/* Checked once here, trusted by the device fault path after: the
	 * table's mm_ops, MMU and force_pte_cb never change. */
	r = pgw_bind_stage2(&stage2, &stage2_bound);
	if (r)
		hv_panic("pgw_bind_stage2: %s", errno_str(r));
}

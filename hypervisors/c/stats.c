/* Counters of what the hypervisor did, printed when the run ends. */
#include "arch.h"
#include "hv.h"

struct stats stats;

static uint64_t get(_Atomic uint64_t *c) { return atomic_load_explicit(c, memory_order_relaxed); }

void stats_fault(enum fault_kind kind, enum fault_column column)
{
	atomic_fetch_add_explicit(&stats.faults[kind][column], 1, memory_order_relaxed);
}

void stats_print(uint64_t elapsed_ms)
{
	static const char *const kinds[FK_KINDS] = { "translation", "access-flag", "permission", "other" };
	uint64_t total = 0, again = 0, races = 0;

	hv_printf("pgwalk-hv-c: ---- statistics ----\n");
	for (int k = 0; k < FK_KINDS; k++) {
		_Atomic uint64_t *row = stats.faults[k];
		hv_printf("pgwalk-hv-c: faults %-11s: %7lu fixed, %6lu -EAGAIN (kvm_pgtable_*), %5lu spurious, %5lu retry (race) (pgw_*), %4lu abort injected\n",
			  kinds[k], get(&row[FC_FIXED]), get(&row[FC_AGAIN]), get(&row[FC_SPURIOUS]),
			  get(&row[FC_RETRY]), get(&row[FC_ABORT]));
		for (int c = 0; c < FC_COLUMNS; c++)
			total += get(&row[c]);
		again += get(&row[FC_AGAIN]);
		races += get(&row[FC_RETRY]);
	}
	uint64_t us = get(&stats.fault_ticks) * 1000000 / counter_freq();
	hv_printf("pgwalk-hv-c: faults total: %lu in %lu ms of guest run (%lu faults/s); resumed on -EAGAIN: %lu, on a typed retry: %lu\n",
		  total, elapsed_ms, total * 1000 / (elapsed_ms ? elapsed_ms : 1), again, races);
	hv_printf("pgwalk-hv-c: fault handling: %lu ms in all, %lu ns per fault, %lu faults/s of handling time\n",
		  us / 1000, us * 1000 / (total ? total : 1), total * 1000000 / (us ? us : 1));
	hv_printf("pgwalk-hv-c: calls: %lu kvm_pgtable_stage2_map (fault path), %lu kvm_pgtable_stage2_relax_perms, %lu mkyoung that found a leaf, %lu typed pgw_bound_fault_*; %lu memory-cache top-ups\n",
		  get(&stats.map_calls), get(&stats.relax_calls), get(&stats.mkyoung_young),
		  get(&stats.typed_calls), get(&stats.topups));
	hv_printf("pgwalk-hv-c: mapped by faults: %lu RAM blocks (2 MiB), %lu RAM pages (4 KiB), %lu device pages\n",
		  get(&stats.ram_blocks_mapped), get(&stats.ram_pages_mapped), get(&stats.device_pages_mapped));
	hv_printf("pgwalk-hv-c: dirty logging: %lu blocks split, %lu dirty write faults, %lu blocks recovered after logging\n",
		  get(&stats.blocks_split), get(&stats.dirty_faults), get(&stats.blocks_recovered));
	hv_printf("pgwalk-hv-c: aging: %lu passes, %lu of %lu windows young\n", get(&stats.aging_passes),
		  get(&stats.aging_young), get(&stats.aging_windows));
	hv_printf("pgwalk-hv-c: TLB invalidations: %lu by IPA, %lu by IPA on this CPU, %lu ranges, %lu whole VMID; cache maintenance: %lu D-cache, %lu I-cache\n",
		  get(&stats.tlbi_ipa), get(&stats.tlbi_ipa_nsh), get(&stats.tlbi_range), get(&stats.tlbi_vmid),
		  get(&stats.dcache_ops), get(&stats.icache_ops));
	hv_printf("pgwalk-hv-c: table pages: %lu allocated, %lu freed (the final destroy included); unlinked subtrees: %lu deferred, %lu freed after a grace period\n",
		  get(&stats.pages_allocated), get(&stats.pages_freed), get(&stats.deferred_frees),
		  get(&stats.deferred_done));
	hv_printf("pgwalk-hv-c: traps: %lu SMC, %lu HVC, %lu WFI, %lu undefined injected, %lu PSCI errors returned\n",
		  get(&stats.smc), get(&stats.hvc), get(&stats.wfi), get(&stats.undef_injected),
		  get(&stats.psci_errors));
	for (int i = 0; i < MAX_CPUS; i++) {
		struct vcpu *v = vcpu_get((uint64_t)i);
		hv_printf("pgwalk-hv-c: vCPU %d: %lu boots, %lu traps, %lu stage-2 faults\n", i, get(&v->boots),
			  get(&v->traps), get(&v->faults));
	}
}

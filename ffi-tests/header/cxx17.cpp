// The header from C++17: names, types and linkage.
#include "pgwalk.h"

#include <climits>
#include <cstddef>
#include <type_traits>

static_assert(KVM_PGTABLE_PROT_RWX == 0x7, "prot values are Linux 6.12's");
static_assert(TLBI_TTL_UNKNOWN == INT_MAX, "the kernel's TLBI_TTL_UNKNOWN");
static_assert(std::is_same<decltype(&kvm_pgtable_stage2_mkyoung),
			   kvm_pte_t (*)(kvm_pgtable *, uint64_t)>::value,
	      "kvm_pgtable_stage2_mkyoung has 6.12's shape");
static_assert(std::is_same<decltype(&kvm_pgtable_stage2_relax_perms),
			   int (*)(kvm_pgtable *, uint64_t, uint64_t)>::value,
	      "kvm_pgtable_stage2_relax_perms has 6.12's shape");
static_assert(std::is_same<decltype(&kvm_pgtable_walk),
			   int (*)(kvm_pgtable *, uint64_t, uint64_t, kvm_pgtable_walker *)>::value,
	      "kvm_pgtable_walk has the kernel's shape");
static_assert(std::is_same<decltype(&kvm_pgtable_stage2_pte_prot), uint64_t (*)(kvm_pte_t)>::value,
	      "kvm_pgtable_stage2_pte_prot has 6.12's shape");
static_assert(std::is_same<decltype(&kvm_get_vtcr),
			   uint64_t (*)(uint64_t, uint64_t, uint32_t)>::value,
	      "kvm_get_vtcr has 6.12's shape");
static_assert(std::is_same<decltype(&kvm_tlb_flush_vmid_range),
			   void (*)(kvm_s2_mmu *, uint64_t, size_t)>::value,
	      "kvm_tlb_flush_vmid_range has 6.12's shape");
static_assert(offsetof(kvm_pgtable, mmu) == 24 && offsetof(kvm_pgtable, flags) == 32 &&
		      offsetof(kvm_pgtable, force_pte_cb) == 40 && sizeof(kvm_pgtable) == 48,
	      "struct kvm_pgtable has 6.12's layout");

static int visitor(const kvm_pgtable_visit_ctx *ctx, kvm_pgtable_walk_flags visit)
{
	return ctx && visit == KVM_PGTABLE_WALK_LEAF ? 0 : -PGW_EINVAL;
}

int pgwalk_header_compiles_as_cxx();
int pgwalk_header_compiles_as_cxx()
{
	kvm_pgtable_walker w = { visitor, nullptr, KVM_PGTABLE_WALK_LEAF };
	pgw_fault_outcome o = PGW_FAULT_FIXED;
	return w.cb != nullptr && o == PGW_FAULT_FIXED ? 0 : 1;
}

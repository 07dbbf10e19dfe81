// The header from C++17: names, types and linkage.
#include "pgwalk.h"

#include <type_traits>

static_assert(KVM_PGTABLE_PROT_RWX == 0x7, "prot values are Linux 6.12's");
static_assert(std::is_same<decltype(&kvm_pgtable_stage2_mkyoung),
			   kvm_pte_t (*)(kvm_pgtable *, uint64_t)>::value,
	      "kvm_pgtable_stage2_mkyoung has 6.12's shape");
static_assert(std::is_same<decltype(&kvm_pgtable_stage2_relax_perms),
			   int (*)(kvm_pgtable *, uint64_t, uint64_t)>::value,
	      "kvm_pgtable_stage2_relax_perms has 6.12's shape");
static_assert(std::is_same<decltype(&kvm_pgtable_walk),
			   int (*)(kvm_pgtable *, uint64_t, uint64_t, kvm_pgtable_walker *)>::value,
	      "kvm_pgtable_walk has the kernel's shape");

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

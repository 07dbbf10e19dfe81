/* The header on its own, freestanding: only the compiler's headers exist. */
#include "pgwalk.h"

#include <stddef.h>

_Static_assert(KVM_PGTABLE_PROT_SW3 == (1ull << 58), "prot values are the kernel's");
_Static_assert(KVM_PGTABLE_PROT_X == 1 && KVM_PGTABLE_PROT_W == 2 && KVM_PGTABLE_PROT_R == 4 &&
		       KVM_PGTABLE_PROT_DEVICE == 8 && KVM_PGTABLE_PROT_NORMAL_NC == 16,
	       "prot values are Linux 6.12's");
_Static_assert(offsetof(struct kvm_pgtable, mmu) < offsetof(struct kvm_pgtable, flags) &&
		       offsetof(struct kvm_pgtable, flags) < offsetof(struct kvm_pgtable, force_pte_cb),
	       "struct kvm_pgtable has 6.12's field order");
_Static_assert(KVM_PGTABLE_FIRST_LEVEL == -1 && KVM_PGTABLE_LAST_LEVEL == 3, "6.12's levels");
_Static_assert(KVM_PGTABLE_WALK_SKIP_CMO == (1 << 6), "walk flags are the kernel's");
_Static_assert(sizeof(kvm_pte_t) == 8, "a descriptor is 64 bits");
_Static_assert(PGW_FAULT_CONTINUE != 0, "no outcome is zero");

int pgwalk_header_compiles(void);
int pgwalk_header_compiles(void)
{
	return PGW_EINVAL;
}

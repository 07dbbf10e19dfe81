/* The header on its own, freestanding: only the compiler's headers exist. */
#include "pgwalk.h"

_Static_assert(KVM_PGTABLE_PROT_SW3 == (1ull << 58), "prot values are the kernel's");
_Static_assert(KVM_PGTABLE_WALK_SKIP_CMO == (1 << 6), "walk flags are the kernel's");
_Static_assert(sizeof(kvm_pte_t) == 8, "a descriptor is 64 bits");
_Static_assert(PGW_FAULT_CONTINUE != 0, "no outcome is zero");

int pgwalk_header_compiles(void);
int pgwalk_header_compiles(void)
{
	return PGW_EINVAL;
}

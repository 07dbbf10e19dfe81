/* The header on its own, freestanding: only the compiler's headers exist. */
#include "pgwalk.h"

#include <stddef.h>

_Static_assert(KVM_PGTABLE_PROT_SW3 == (1ull << 58), "prot values are the kernel's");
_Static_assert(KVM_PGTABLE_PROT_X == 1 && KVM_PGTABLE_PROT_W == 2 && KVM_PGTABLE_PROT_R == 4 &&
		       KVM_PGTABLE_PROT_DEVICE == 8 && KVM_PGTABLE_PROT_NORMAL_NC == 16,
	       "prot values are Linux 6.12's");
_Static_assert(KVM_PGTABLE_PROT_RWX == 7, "prot values are Linux 6.12's");
_Static_assert(((PGW_PROT_PX | PGW_PROT_UX) &
		(KVM_PGTABLE_PROT_RWX | KVM_PGTABLE_PROT_DEVICE | KVM_PGTABLE_PROT_NORMAL_NC)) == 0,
	       "the typed API's own prot bits are none of 6.12's");
_Static_assert(KVM_PGTABLE_FIRST_LEVEL == -1 && KVM_PGTABLE_LAST_LEVEL == 3, "6.12's levels");
_Static_assert(KVM_PGTABLE_WALK_LEAF == 1 && KVM_PGTABLE_WALK_TABLE_PRE == 2 &&
		       KVM_PGTABLE_WALK_TABLE_POST == 4 && KVM_PGTABLE_WALK_SHARED == 8 &&
		       KVM_PGTABLE_WALK_HANDLE_FAULT == 16 && KVM_PGTABLE_WALK_SKIP_BBM_TLBI == 32 &&
		       KVM_PGTABLE_WALK_SKIP_CMO == 64,
	       "walk flags are the kernel's");
_Static_assert(KVM_PGTABLE_S2_NOFWB == 1 && KVM_PGTABLE_S2_IDMAP == 2, "6.12's stage-2 flags");
_Static_assert(KVM_MAX_OWNER_ID == 1, "6.12's largest owner id");
_Static_assert(TLBI_TTL_UNKNOWN == __INT_MAX__, "the kernel's TLBI_TTL_UNKNOWN");
_Static_assert(sizeof(kvm_pte_t) == 8, "a descriptor is 64 bits");
_Static_assert(PGW_FAULT_CONTINUE != 0, "no outcome is zero");

/* Linux 6.12's layouts on an LP64 target, field by field. */
_Static_assert(offsetof(struct kvm_pgtable, ia_bits) == 0 &&
		       offsetof(struct kvm_pgtable, start_level) == 4 &&
		       offsetof(struct kvm_pgtable, pgd) == 8 &&
		       offsetof(struct kvm_pgtable, mm_ops) == 16 &&
		       offsetof(struct kvm_pgtable, mmu) == 24 &&
		       offsetof(struct kvm_pgtable, flags) == 32 &&
		       offsetof(struct kvm_pgtable, force_pte_cb) == 40 &&
		       sizeof(struct kvm_pgtable) == 48,
	       "struct kvm_pgtable has 6.12's layout");
_Static_assert(offsetof(struct kvm_pgtable_visit_ctx, ptep) == 0 &&
		       offsetof(struct kvm_pgtable_visit_ctx, old) == 8 &&
		       offsetof(struct kvm_pgtable_visit_ctx, arg) == 16 &&
		       offsetof(struct kvm_pgtable_visit_ctx, mm_ops) == 24 &&
		       offsetof(struct kvm_pgtable_visit_ctx, start) == 32 &&
		       offsetof(struct kvm_pgtable_visit_ctx, addr) == 40 &&
		       offsetof(struct kvm_pgtable_visit_ctx, end) == 48 &&
		       offsetof(struct kvm_pgtable_visit_ctx, level) == 56 &&
		       offsetof(struct kvm_pgtable_visit_ctx, flags) == 60 &&
		       sizeof(struct kvm_pgtable_visit_ctx) == 64,
	       "struct kvm_pgtable_visit_ctx has 6.12's layout");
_Static_assert(offsetof(struct kvm_pgtable_walker, cb) == 0 &&
		       offsetof(struct kvm_pgtable_walker, arg) == 8 &&
		       offsetof(struct kvm_pgtable_walker, flags) == 16 &&
		       sizeof(struct kvm_pgtable_walker) == 24,
	       "struct kvm_pgtable_walker has 6.12's layout");
_Static_assert(offsetof(struct kvm_pgtable_mm_ops, zalloc_page) == 0 &&
		       offsetof(struct kvm_pgtable_mm_ops, put_page) == 40 &&
		       offsetof(struct kvm_pgtable_mm_ops, icache_inval_pou) == 80 &&
		       sizeof(struct kvm_pgtable_mm_ops) == 88,
	       "struct kvm_pgtable_mm_ops has 6.12's eleven callbacks, in order");

int pgwalk_header_compiles(void);
int pgwalk_header_compiles(void)
{
	return PGW_EINVAL;
}

/*
 * A weak reference to kvm_pgtable_stage2_pte_prot, which Linux 6.12 exports
 * and include/pgwalk.h may not declare: NULL when libpgwalk.a lacks it.
 * (The kernel's own copy is renamed linux_kvm_pgtable_stage2_pte_prot, so
 * it cannot answer for pgwalk.)
 */
#include <stddef.h>
#include <stdint.h>

extern uint64_t kvm_pgtable_stage2_pte_prot(uint64_t pte) __attribute__((weak));

uint64_t (*kp_pgwalk_pte_prot_fn(void))(uint64_t);

uint64_t (*kp_pgwalk_pte_prot_fn(void))(uint64_t)
{
	return kvm_pgtable_stage2_pte_prot;
}

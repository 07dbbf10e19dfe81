/* TLB and cache maintenance, the barriers around them, WFI. */
#include "arch.h"

/* __kvm_tlb_flush_vmid_ipa: the stage-2 entry by IPA, then every stage-1
 * entry of the VMID, which may hold the combined translation. */
void tlbi_ipa(uint64_t ipa)
{
	__asm__ volatile("dsb ishst\n\ttlbi ipas2e1is, %0\n\tdsb ish\n\t"
			 "tlbi vmalle1is\n\tdsb ish\n\tisb"
			 : : "r"(ipa >> 12) : "memory");
}

/* __kvm_tlb_flush_vmid_ipa_nsh: the same on this CPU only (after relaxing
 * permissions: another CPU's stale entry only faults again). */
void tlbi_ipa_nsh(uint64_t ipa)
{
	__asm__ volatile("dsb nshst\n\ttlbi ipas2e1, %0\n\tdsb nsh\n\t"
			 "tlbi vmalle1\n\tdsb nsh\n\tisb"
			 : : "r"(ipa >> 12) : "memory");
}

void tlbi_ipa_range(uint64_t ipa, uint64_t size)
{
	__asm__ volatile("dsb ishst" : : : "memory");
	for (uint64_t page = ipa >> 12, end = (ipa + size + 4095) >> 12; page < end; page++)
		__asm__ volatile("tlbi ipas2e1is, %0" : : "r"(page) : "memory");
	__asm__ volatile("dsb ish\n\ttlbi vmalle1is\n\tdsb ish\n\tisb" : : : "memory");
}

/* __kvm_tlb_flush_vmid */
void tlbi_vmid(void)
{
	__asm__ volatile("dsb ishst\n\ttlbi vmalls12e1is\n\tdsb ish\n\tisb" : : : "memory");
}

void tlbi_el2_local(void)
{
	__asm__ volatile("dsb ishst\n\ttlbi alle2\n\tdsb ish\n\tisb" : : : "memory");
}

void tlbi_el2_va(uint64_t va)
{
	__asm__ volatile("dsb ishst\n\ttlbi vale2is, %0\n\tdsb ish\n\tisb"
			 : : "r"((va >> 12) & ((1ull << 44) - 1)) : "memory");
}

void tlbi_el2_va_walks(uint64_t va)
{
	__asm__ volatile("dsb ishst\n\ttlbi vae2is, %0\n\tdsb ish\n\tisb"
			 : : "r"((va >> 12) & ((1ull << 44) - 1)) : "memory");
}

void publish_tables(void)
{
	__asm__ volatile("dsb ishst\n\tisb" : : : "memory");
}

void dcache_clean_inval_poc(uint64_t va, uint64_t size)
{
	uint64_t line = 4ull << ((read_sysreg(ctr_el0) >> 16) & 0xf);

	for (uint64_t a = va & ~(line - 1); a < va + size; a += line)
		__asm__ volatile("dc civac, %0" : : "r"(a) : "memory");
	__asm__ volatile("dsb ish" : : : "memory");
}

void icache_inval_pou(uint64_t va, uint64_t size)
{
	uint64_t ctr = read_sysreg(ctr_el0);
	uint64_t line = 4ull << (ctr & 0xf);

	/* CTR_EL0.DIC: the instruction cache is coherent with the data. */
	if (!(ctr & (1ull << 29)))
		for (uint64_t a = va & ~(line - 1); a < va + size; a += line)
			__asm__ volatile("ic ivau, %0" : : "r"(a) : "memory");
	__asm__ volatile("dsb ish\n\tisb" : : : "memory");
}

/* A guest's trapped WFI, done on its behalf: interrupts are masked at EL2
 * and routed to EL1, so the wake-up returns here. */
void wfi(void)
{
	__asm__ volatile("dsb sy\n\twfi" : : : "memory");
}

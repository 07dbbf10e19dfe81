/* The guest's side of EL2: the configuration it runs under, its kernel's
 * entry point, and the exceptions the hypervisor injects into it. */
#include "arch.h"
#include "hv.h"

/* AMO, IMO and FMO stay clear: physical interrupts and SErrors go to the
 * guest directly, through the GIC it drives itself. */
#define HCR_EL2_GUEST (1ull << 0 /* VM: stage 2 on */ \
	| 1ull << 9 /* FB: the guest's TLB and I-cache maintenance is broadcast */ \
	| 1ull << 10 /* BSU = 0b01: barriers upgraded to inner shareable */ \
	| 1ull << 13 /* TWI: WFI traps, so an idle guest still comes back */ \
	| 1ull << 19 /* TSC: SMC traps (PSCI) */ \
	| 1ull << 31 /* RW: EL1 is AArch64 */ \
	| 1ull << 40 /* APK: pointer-authentication keys not trapped */ \
	| 1ull << 41 /* API: pointer-authentication instructions not trapped */)

void guest_setup_el2(void)
{
	uint64_t counters = (read_sysreg(pmcr_el0) >> 11) & 0x1f;
	bool sve = (read_sysreg(id_aa64pfr0_el1) >> 32) & 0xf;

	write_sysreg(vtcr_el2, stage2_mmu.vtcr);
	write_sysreg(vttbr_el2, vm_vttbr());
	write_sysreg(hcr_el2, HCR_EL2_GUEST);
	/* The guest sees the CPU's own identification. */
	write_sysreg(vpidr_el2, read_sysreg(midr_el1));
	write_sysreg(vmpidr_el2, read_sysreg(mpidr_el1));
	/* EL1 uses the physical counter and timer; virtual = physical. */
	write_sysreg(cnthctl_el2, 3);
	write_sysreg(cntvoff_el2, 0);
	write_sysreg(cnthp_ctl_el2, 0);
	/* GICv3: EL1 may use the system-register CPU interface (ICC_SRE_EL2:
	 * SRE, DFB, DIB, Enable); the virtual interface (ICH_HCR_EL2) off. */
	write_sysreg(S3_4_C12_C9_5, 0xf);
	isb();
	write_sysreg(S3_4_C12_C11_0, 0);
	/* Every PMU event counter belongs to EL1 (HPMN = PMCR_EL0.N). */
	write_sysreg(mdcr_el2, counters);
	write_sysreg(hstr_el2, 0);
	/* SVE at the smallest vector length (ZCR_EL2), so that saving q0-q31
	 * on a trap saves the whole of z0-z31 (boot.S). */
	if (sve)
		write_sysreg(S3_4_C1_C2_0, 0);
	/* The boot protocol: EL1 MMU and caches off. */
	write_sysreg(sctlr_el1, 0x30d00800);
	isb();
	/* Nothing of another VMID's or of a previous boot's may be cached. */
	tlbi_vmid();
}

/* The Image header lies at GUEST_IMAGE plus its text_offset (guest.sh
 * places it there): the magic and the header's text_offset must agree. */
uint64_t guest_kernel_entry(void)
{
	for (uint64_t off = 0; off <= BLOCK; off += PAGE) {
		uint64_t base = GUEST_IMAGE + off;
		uint32_t magic = *(volatile uint32_t *)(uintptr_t)(base + 56);
		uint64_t text_offset = *(volatile uint64_t *)(uintptr_t)(base + 8);
		if (magic == 0x644d5241 && text_offset == off)
			return base;
	}
	hv_printf("pgwalk-hv-c: no arm64 Image at %#lx\n", (uint64_t)GUEST_IMAGE);
	hv_fail();
}

/* PSTATE for an exception taken to EL1h, from the PSTATE it interrupts. */
static uint64_t exception_pstate(uint64_t old)
{
	uint64_t sctlr = read_sysreg(sctlr_el1);
	uint64_t pstate = 0x5 | 0xfull << 6; /* EL1h, DAIF masked */

	/* PAN is set on entry unless SCTLR_EL1.SPAN says keep it. */
	pstate |= (sctlr & (1ull << 23)) ? old & (1ull << 22) : 1ull << 22;
	/* DIT is kept; SSBS comes from SCTLR_EL1.DSSBS. */
	pstate |= old & (1ull << 24);
	if (sctlr & (1ull << 44))
		pstate |= 1ull << 12;
	return pstate;
}

/* The offset of the synchronous vector for an exception from spsr's mode. */
static uint64_t sync_vector(uint64_t spsr)
{
	uint64_t m = spsr & 0x1f;

	if (m == 0x4)
		return 0x000; /* EL1t */
	if (m == 0x5)
		return 0x200; /* EL1h */
	if (m & 0x10)
		return 0x600; /* AArch32 */
	return 0x400; /* EL0t */
}

static void inject(struct frame *f, uint64_t esr_el1, bool far, uint64_t far_value)
{
	write_sysreg(esr_el1, esr_el1);
	if (far)
		write_sysreg(far_el1, far_value);
	write_sysreg(elr_el1, f->elr);
	write_sysreg(spsr_el1, f->spsr);
	f->elr = read_sysreg(vbar_el1) + sync_vector(f->spsr);
	f->spsr = exception_pstate(f->spsr);
}

/* A synchronous external abort on the access that faulted: what the
 * machine answers where nothing is. */
void guest_inject_external_abort(struct frame *f, uint64_t esr_el2, bool instruction)
{
	uint64_t same_el = (f->spsr & 0xf) != 0;
	uint64_t class = (instruction ? 0x20 : 0x24) + same_el;
	/* ISS: IFSC/DFSC synchronous external abort; a data abort keeps WnR. */
	uint64_t iss = instruction ? 0x10 : ((esr_el2 & (1ull << 6)) | 0x10);

	inject(f, class << 26 | 1ull << 25 | iss, true, read_sysreg(far_el2));
}

void guest_inject_undef(struct frame *f)
{
	inject(f, 1ull << 25, false, 0);
}

/*
 * Traps from the guest: the ESR_EL2 classes the hypervisor handles, and
 * what happens on the way back to the guest. boot.S saves a struct frame
 * and calls hv_trap (or hv_exception for anything that is not a guest
 * trap).
 */
#include "arch.h"
#include "hv.h"

_Static_assert(sizeof(struct frame) == 800, "boot.S's FRAME_SIZE");
_Static_assert(offsetof(struct frame, elr) == 248, "boot.S's FRAME_ELR");
_Static_assert(offsetof(struct frame, spsr) == 256, "boot.S's FRAME_SPSR");
_Static_assert(offsetof(struct frame, q) == 272, "boot.S's FRAME_Q");
_Static_assert(offsetof(struct frame, fpsr) == 784, "boot.S's FRAME_FPSR");

#define EC_WFX 0x01
#define EC_HVC64 0x16
#define EC_SMC64 0x17
#define EC_IABT_LOW 0x20
#define EC_DABT_LOW 0x24

/* boot.S's vector number for a synchronous exception from a lower EL. */
#define VECTOR_LOWER_SYNC 8

void hv_trap(struct frame *frame, uint64_t vector);
void hv_trap(struct frame *frame, uint64_t vector)
{
	if (vector != VECTOR_LOWER_SYNC) {
		hv_dump("unexpected guest exception vector", frame);
		hv_fail();
	}
	struct vcpu *cpu = vcpu_current();
	vcpu_set_frame(cpu, frame);
	grace_quiescent(cpu->index);
	uint64_t esr = read_sysreg(esr_el2);
	uint64_t class = esr >> 26;
	bool idle = false;

	switch (class) {
	case EC_DABT_LOW:
	case EC_IABT_LOW:
		fault_handle(frame, esr, class == EC_IABT_LOW);
		break;
	case EC_SMC64:
		/* A trapped SMC returns to the SMC itself: step over it. */
		frame->elr += 4;
		COUNT(smc);
		psci_handle_smc(cpu, frame, esr & 0xffff);
		break;
	case EC_HVC64:
		/* No hypervisor services: SMCCC's NOT_SUPPORTED. ELR already
		 * points past the HVC. */
		COUNT(hvc);
		frame->x[0] = (uint64_t)(int64_t)PSCI_NOT_SUPPORTED;
		break;
	case EC_WFX:
		frame->elr += 4;
		/* ISS.TI: 0 for WFI (trapped: HCR_EL2.TWI); WFE is not trapped. */
		idle = !(esr & 1);
		COUNT(wfi);
		break;
	default:
		/* Nothing else is trapped on purpose: what the guest did is
		 * undefined as far as it can tell. */
		COUNT(undef_injected);
		guest_inject_undef(frame);
	}
	dirty_tick();
	grace_quiescent(cpu->index);
	grace_poll();
	if (idle)
		wfi();
	vcpu_clear_frame(cpu);
}

_Noreturn void hv_exception(struct frame *frame, uint64_t vector);
_Noreturn void hv_exception(struct frame *frame, uint64_t vector)
{
	const char *what = vector <= 3 ? "EL2 exception on SP_EL0"
		: vector == 4 ? "EL2 synchronous exception (a hypervisor bug)"
		: vector <= 7 ? "EL2 asynchronous exception"
		: "unexpected guest exception vector";
	hv_dump(what, frame);
	hv_fail();
}

/*
 * How a run ends: the register dump for failures, pgwalk's panic hook,
 * and the two ways out of QEMU (PSCI SYSTEM_OFF for success, a
 * semihosting exit status for failure).
 */
#include "arch.h"
#include "hv.h"

#define FAILURE 1

_Noreturn void hv_fail(void)
{
	hv_printf("pgwalk-hv-c: FAILED, stopping\n");
	hv_semihost_exit(FAILURE);
}

_Noreturn void hv_power_off(void)
{
	hv_smc(0x84000008, 0, 0, 0);
	hv_printf("pgwalk-hv-c: PSCI SYSTEM_OFF returned\n");
	hv_semihost_exit(FAILURE);
}

_Noreturn void hv_reset(void)
{
	hv_smc(0x84000009, 0, 0, 0);
	hv_printf("pgwalk-hv-c: PSCI SYSTEM_RESET returned\n");
	hv_semihost_exit(FAILURE);
}

void hv_dump(const char *what, const struct frame *f)
{
	console_panicking();
	hv_printf("pgwalk-hv-c: ==== %s on CPU %d ====\n", what, cpu_index());
	hv_printf("  ESR_EL2 %#018lx  FAR_EL2 %#018lx  HPFAR_EL2 %#018lx\n",
		  read_sysreg(esr_el2), read_sysreg(far_el2), read_sysreg(hpfar_el2));
	hv_printf("  ELR_EL2 %#018lx  SPSR_EL2 %#018lx  VBAR_EL2 %#018lx\n",
		  read_sysreg(elr_el2), read_sysreg(spsr_el2), read_sysreg(vbar_el2));
	if (!f)
		return;
	hv_printf("  frame: ELR %#018lx  SPSR %#018lx\n", f->elr, f->spsr);
	for (int i = 0; i < 31; i += 2) {
		if (i + 1 < 31)
			hv_printf("  x%-2d %#018lx  x%-2d %#018lx\n", i, f->x[i], i + 1, f->x[i + 1]);
		else
			hv_printf("  x%-2d %#018lx\n", i, f->x[i]);
	}
}

_Noreturn void hv_panic(const char *fmt, ...)
{
	va_list ap;

	console_panicking();
	hv_printf("pgwalk-hv-c: PANIC: ");
	va_start(ap, fmt);
	hv_vprintf(fmt, ap);
	va_end(ap);
	hv_printf("\n");
	hv_dump("panic", atomic_load_explicit(&vcpu_current()->frame, memory_order_relaxed));
	hv_fail();
}

/* pgw_set_panic_hook's hook: the library found a broken promise or has a
 * bug. It never returns (the library would spin if it did). */
void pgwalk_panic_hook(const struct pgw_panic_info *info)
{
	console_panicking();
	hv_printf("pgwalk-hv-c: PANIC in pgwalk at %.*s:%u:%u: %.*s\n",
		  (int)info->file_len, info->file, info->line, info->column,
		  (int)info->message_len, info->message);
	hv_dump("pgwalk panic", atomic_load_explicit(&vcpu_current()->frame, memory_order_relaxed));
	hv_fail();
}

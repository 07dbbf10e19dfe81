/*
 * The freestanding library's panic path, on the machine the hypervisor
 * runs on (QEMU, EL2, MMU off): a hyp table whose zalloc_page breaks its
 * promise (a page that is not page-aligned) makes kvm_pgtable_hyp_init
 * panic. The hook registered with pgw_set_panic_hook must receive the
 * library's file, line and message.
 *
 * Built three times (build.sh), by HOOK_MODE:
 * - 0 (exit): the hook checks what it got and ends QEMU with status 0;
 * - 1 (return): the hook returns, and the library must never come back
 *   into its caller: CPU 1, started before the test, watches for 200 ms
 *   after the hook returned and ends QEMU with 0 only if CPU 0 did not get
 *   out of kvm_pgtable_hyp_init;
 * - 2 (recurse): the hook calls the library again, which its contract
 *   forbids, and the call panics again: that panic must not reach the hook
 *   (a hook that did this on every call would recurse until the stack ran
 *   out). CPU 1 watches for 200 ms and ends QEMU with 0 only if the hook
 *   ran once and the nested call never came back.
 * Any other exit status is a failure (run-c.sh's panic-test step).
 */
#include "arch.h"
#include "hv.h"

#ifndef HOOK_MODE
#error "build with -DHOOK_MODE=0, 1 or 2"
#endif
#define HOOK_RETURNS (HOOK_MODE == 1)
#define HOOK_RECURSES (HOOK_MODE == 2)
/* A second CPU watches what CPU 0 does after its hook. */
#define WATCHED (HOOK_RETURNS || HOOK_RECURSES)

/* Plain flags between the two CPUs: memory is Device with the MMU off
 * (coherent, no exclusives needed). */
/* `reported`: the hook has checked and printed its report, and returns or
 * (recurse mode) calls the library again; CPU 1 starts watching then. */
static volatile int reported, library_returned, watcher_up;
static volatile int hook_calls, nested_returned;
static _Alignas(4096) unsigned char pages[2][4096];

static void *misaligned_page(void *mc)
{
	(void)mc;
	return pages[0] + 8;
}
static void nop(void *addr) { (void)addr; }
static int one(void *addr) { (void)addr; return 1; }
static void *p2v(uint64_t pa) { return (void *)(uintptr_t)pa; }
static uint64_t v2p(void *va) { return (uint64_t)(uintptr_t)va; }
static struct kvm_pgtable_mm_ops broken = {
	.zalloc_page = misaligned_page, .get_page = nop, .put_page = nop,
	.page_count = one, .phys_to_virt = p2v, .virt_to_phys = v2p,
};

static void flush(void *arg, uint64_t va, int8_t level) { (void)arg; (void)va; (void)level; }
static void publish(void *arg) { (void)arg; }
static const struct pgw_hyp_tlb_ops tlb = { .flush_va = flush, .flush_va_walks = flush, .publish = publish };

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = 0;

	while (suffix[m])
		m++;
	if (n < m)
		return false;
	for (size_t i = 0; i < m; i++)
		if (s[n - m + i] != suffix[i])
			return false;
	return true;
}

static bool contains(const char *s, size_t n, const char *word)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (word[j] && i + j < n && s[i + j] == word[j])
			j++;
		if (!word[j])
			return true;
	}
	return false;
}

static void hook(const struct pgw_panic_info *info)
{
	if (HOOK_RECURSES && hook_calls++ > 0) {
		/* The nested panic reached the hook: it returns, and CPU 1
		 * reports the recursion. */
		hv_printf("PGWALK-PANIC-TEST: the hook was called again, from the nested panic\n");
		return;
	}
	bool ok = info->file && info->message && info->line > 0 && info->column > 0 &&
		  ends_with(info->file, info->file_len, ".rs") &&
		  contains(info->message, info->message_len, "not aligned") &&
		  info->message_len < PGW_PANIC_MESSAGE_MAX && info->message[info->message_len] == 0;

	hv_printf("PGWALK-PANIC-TEST: hook got %.*s:%u:%u: %s: %s\n", (int)info->file_len, info->file,
		  info->line, info->column, info->message, ok ? "as documented" : "NOT as documented");
	if (!ok)
		hv_semihost_exit(2);
	if (HOOK_RECURSES) {
		struct kvm_pgtable again;

		hv_printf("PGWALK-PANIC-TEST: the hook calls the library again\n");
		reported = 1;
		(void)kvm_pgtable_hyp_init(&again, 32, &broken);
		nested_returned = 1;
		hv_printf("PGWALK-PANIC-TEST: the nested call RETURNED into the hook\n");
		return;
	}
	if (!HOOK_RETURNS)
		hv_semihost_exit(0);
	hv_printf("PGWALK-PANIC-TEST: the hook returns\n");
	reported = 1;
}

static _Noreturn void watch(void)
{
	watcher_up = 1;
	while (!reported)
		cpu_relax();
	uint64_t end = counter() + counter_freq() / 5;
	while (counter() < end)
		if (library_returned)
			break;
	if (HOOK_RECURSES) {
		bool once = hook_calls == 1 && !nested_returned && !library_returned;

		hv_printf("PGWALK-PANIC-TEST: the hook ran %d time(s); the nested panic %s\n", hook_calls,
			  once ? "spun without calling it" : "was NOT stopped");
		hv_semihost_exit(once ? 0 : 3);
	}
	hv_printf("PGWALK-PANIC-TEST: after the hook returned, the library %s\n",
		  library_returned ? "RETURNED into its caller" : "did not return (it spins)");
	hv_semihost_exit(library_returned ? 3 : 0);
}

_Noreturn void hv_main(uint64_t cpu);
_Noreturn void hv_main(uint64_t cpu)
{
	write_sysreg(tpidr_el2, cpu);
	/* No console lock: exclusives need not work with the MMU off. */
	console_panicking();
	if (cpu == 1)
		watch();
	if (WATCHED) {
		if ((int64_t)hv_smc(0xc4000003, 1, (uint64_t)(uintptr_t)hv_secondary_entry, 1) != 0) {
			hv_printf("PGWALK-PANIC-TEST: CPU_ON for the watcher failed\n");
			hv_semihost_exit(4);
		}
		while (!watcher_up)
			cpu_relax();
	}
	pgw_set_panic_hook(hook);
	struct kvm_pgtable pgt;
	int r = pgw_hyp_set_tlb_ops(&tlb);
	if (!r)
		r = kvm_pgtable_hyp_init(&pgt, 32, &broken);
	library_returned = 1;
	hv_printf("PGWALK-PANIC-TEST: kvm_pgtable_hyp_init returned %d instead of panicking\n", r);
	if (!WATCHED)
		hv_semihost_exit(3);
	for (;;)
		cpu_relax();
}

void hv_trap(struct frame *frame, uint64_t vector);
void hv_trap(struct frame *frame, uint64_t vector)
{
	(void)frame;
	hv_printf("PGWALK-PANIC-TEST: unexpected trap (vector %lu)\n", vector);
	hv_semihost_exit(4);
}

_Noreturn void hv_exception(struct frame *frame, uint64_t vector);
_Noreturn void hv_exception(struct frame *frame, uint64_t vector)
{
	(void)frame;
	hv_printf("PGWALK-PANIC-TEST: exception at EL2 (vector %lu, ESR %#lx, ELR %#lx, FAR %#lx)\n", vector,
		  read_sysreg(esr_el2), read_sysreg(elr_el2), read_sysreg(far_el2));
	hv_semihost_exit(4);
}

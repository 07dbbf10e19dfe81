/*
 * Dirty logging, as KVM's KVM_GET_DIRTY_LOG with manual protection does it:
 * rounds that, under the table's write lock, harvest the dirty bitmap (one
 * bit per 4 KiB page, set by write faults) and write-protect all guest RAM
 * again with kvm_pgtable_stage2_wrprotect, then, the lock released,
 * invalidate the TLB themselves (kvm_tlb_flush_vmid_range: the kernel
 * leaves that to wrprotect's caller).
 *
 * When: the guest's init marks the start of its memory workload by taking
 * CPU 1 offline and online again; the CPU_ON arms logging. Rounds are then
 * driven by the generic counter, checked on every trap: every ROUND_MS the
 * first vCPU to trap ends the round, for ROUNDS rounds. When logging ends,
 * an aging pass (kvm_pgtable_stage2_test_clear_young over every 2 MiB of
 * RAM) counts what the guest used and makes it old again; the guest's next
 * access to it takes an access-flag fault.
 */
#include "arch.h"
#include "hv.h"

#define ROUNDS 8
#define ROUND_MS ((uint64_t)400)
#define WORDS ((int)(GUEST_RAM_SIZE / PAGE / 64))

static _Atomic uint64_t bitmap[WORDS];
static atomic_bool armed, active, done, driving;
static atomic_int round_no, counted;
static _Atomic uint64_t deadline, started_at;
static uint64_t counts[ROUNDS];

void dirty_arm(void)
{
	if (!atomic_exchange(&armed, true))
		atomic_store(&deadline, 0);
}

bool dirty_active(void)
{
	return atomic_load(&active);
}

void dirty_mark(uint64_t ipa, uint64_t size)
{
	for (uint64_t page = (ipa - GUEST_RAM_BASE) / PAGE, end = page + size / PAGE; page < end; page++)
		if (page / 64 < (uint64_t)WORDS)
			atomic_fetch_or_explicit(&bitmap[page / 64], 1ull << (page % 64), memory_order_relaxed);
}

static uint64_t harvest(void)
{
	uint64_t pages = 0;

	for (int w = 0; w < WORDS; w++)
		pages += (uint64_t)__builtin_popcountll(atomic_exchange(&bitmap[w], 0));
	return pages;
}

/* Write lock held. */
static void age(void)
{
	uint64_t young = 0, windows = 0;

	for (uint64_t a = GUEST_RAM_BASE; a < GUEST_RAM_END; a += BLOCK, windows++)
		young += kvm_pgtable_stage2_test_clear_young(&stage2, a, BLOCK, true);
	COUNT(aging_passes);
	atomic_store(&stats.aging_young, young);
	atomic_store(&stats.aging_windows, windows);
	hv_printf("pgwalk-hv-c: aging pass: %lu of %lu 2 MiB windows of RAM were young, now old\n", young, windows);
}

static void advance(uint64_t now)
{
	int round = atomic_load(&round_no);

	write_lock(&mmu_lock);
	if (round > 0) {
		/* KVM's order: take the round's bits, then write-protect again. */
		uint64_t pages = harvest();
		counts[round - 1] = pages;
		atomic_store(&counted, round);
		hv_printf("pgwalk-hv-c: dirty round %d: %lu pages (%lu KiB) written in %lu ms\n", round, pages,
			  pages * 4, ticks_to_ms(now - atomic_load(&started_at)));
	}
	if (round == ROUNDS) {
		atomic_store(&active, false);
		atomic_store(&done, true);
		age();
		write_unlock(&mmu_lock);
		hv_printf("pgwalk-hv-c: dirty logging off after %d rounds\n", ROUNDS);
		return;
	}
	atomic_store(&active, true);
	int r = kvm_pgtable_stage2_wrprotect(&stage2, GUEST_RAM_BASE, GUEST_RAM_SIZE);
	write_unlock(&mmu_lock);
	if (r)
		hv_panic("dirty logging: kvm_pgtable_stage2_wrprotect returned %s", errno_str(r));
	/* The TLB is wrprotect's caller's (kvm_flush_remote_tlbs_memslot). */
	kvm_tlb_flush_vmid_range(&stage2_mmu, GUEST_RAM_BASE, GUEST_RAM_SIZE);
	uint64_t start = counter();
	atomic_store(&started_at, start);
	atomic_store(&round_no, round + 1);
	atomic_store(&deadline, start + ROUND_MS * counter_freq() / 1000);
	if (round == 0)
		hv_printf("pgwalk-hv-c: dirty logging on: %d rounds of %lu ms (write-protect took %lu ms)\n", ROUNDS,
			  ROUND_MS, ticks_to_ms(start - now));
}

/* Called on every trap, outside any walk. */
void dirty_tick(void)
{
	if (!atomic_load(&armed) || atomic_load(&done) || check_stopping())
		return;
	uint64_t now = counter();
	if (now < atomic_load(&deadline) || atomic_exchange(&driving, true))
		return;
	if (now >= atomic_load(&deadline) && !atomic_load(&done))
		advance(now);
	atomic_store(&driving, false);
}

int dirty_counted(uint64_t *out, int max)
{
	int n = atomic_load(&counted);

	for (int i = 0; i < n && i < max; i++)
		out[i] = counts[i];
	return n < max ? n : max;
}

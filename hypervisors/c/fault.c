/*
 * Stage-2 faults, handled the way KVM's kvm_handle_guest_abort does:
 *
 * - RAM (user_mem_abort): top up the vCPU's memory cache first, outside
 *   the lock; then, under the read lock, relax the leaf's permissions
 *   (kvm_pgtable_stage2_relax_perms) for a permission fault whose leaf
 *   already has the size wanted, or map through the fault path
 *   (kvm_pgtable_stage2_map with KVM_PGTABLE_WALK_SHARED |
 *   KVM_PGTABLE_WALK_HANDLE_FAULT) otherwise: a 2 MiB block around the
 *   address, or a page while dirty logging runs (read-only then, unless
 *   the fault is a write, so that the first write faults and is logged).
 *   A write fault that succeeded marks its range dirty.
 * - Access flag (handle_access_fault): kvm_pgtable_stage2_mkyoung.
 * - A passthrough device page: the typed fault path on the table bound
 *   once at start-up (pgw_bound_fault_map, _relax_perms), whose
 *   pgw_fault_outcome says what the int of the kernel API cannot (fixed,
 *   spurious, or a lost race).
 * - Anything else: a synchronous external abort for the guest.
 *
 * What pgwalk answers is acted on as KVM acts on it: -EAGAIN resumes the
 * guest (it faults again if it still needs to); any other error is printed
 * by name and stops the guest, as KVM_RUN would fail with it.
 */
#include "arch.h"
#include "hv.h"

struct abort {
	uint64_t ipa;
	enum fault_kind kind;
	int8_t level;
	bool write, exec;
};

static const char *const kind_names[FK_KINDS] = { "translation", "access-flag", "permission", "other" };

static struct abort decode(uint64_t esr, bool instruction)
{
	uint64_t fsc = esr & 0x3f;
	struct abort a;

	switch (fsc >> 2) {
	case 1: a.kind = FK_TRANSLATION; break;
	case 2: a.kind = FK_ACCESS_FLAG; break;
	case 3: a.kind = FK_PERMISSION; break;
	default: a.kind = FK_OTHER;
	}
	/* HPFAR_EL2.FIPA (bits 43:4) holds IPA bits 51:12; FAR_EL2 the offset. */
	a.ipa = (read_sysreg(hpfar_el2) & 0x00000ffffffffff0ull) << 8 | (read_sysreg(far_el2) & 0xfff);
	a.level = (int8_t)(fsc & 3);
	/* A fault on the guest's own stage-1 walk (S1PTW) counts as a write,
	 * as in KVM: the walker may update descriptors. Cache maintenance
	 * reports WnR = 1 and is treated as a write. */
	bool s1ptw = esr & (1ull << 7);
	a.write = s1ptw || (!instruction && (esr & (1ull << 6)));
	a.exec = instruction && !s1ptw;
	return a;
}

/* An error other than -EAGAIN from the fault path: KVM returns it from
 * KVM_RUN and the VM stops. */
static _Noreturn void fatal(const struct abort *a, const char *call, int err)
{
	hv_printf("pgwalk-hv-c: stage-2 %s fault at IPA %#lx (%s%s): %s returned %s; stopping the guest\n",
		  kind_names[a->kind], a->ipa, a->write ? "write" : "read", a->exec ? ", exec" : "",
		  call, errno_str(err));
	hv_fail();
}

static uint64_t level_size(int8_t level)
{
	return 1ull << (12 + 9 * (KVM_PGTABLE_LAST_LEVEL - level));
}

#ifdef HV_TEST_NO_MEMCACHE_AFTER
/* The error-path test build (build.sh, run-c.sh): after this many RAM
 * faults the fault path passes no memory cache, so the first map that
 * needs a table page gets -PGW_ENOMEM from pgwalk. */
static atomic_int ram_faults;
#endif

static enum fault_column ram_abort(const struct abort *a)
{
	struct kvm_mmu_memory_cache *mc = vcpu_current()->memcache;
#ifdef HV_TEST_NO_MEMCACHE_AFTER
	if (atomic_fetch_add(&ram_faults, 1) >= HV_TEST_NO_MEMCACHE_AFTER)
		mc = NULL;
#endif
	bool perm = a->kind == FK_PERMISSION;
	uint64_t granule = perm ? level_size(a->level) : 0;
	bool block_fits = memmap_is_ram(a->ipa & ~(BLOCK - 1), BLOCK);
	int r;

	check_touched_ram(a->ipa);
	/* Permission faults that keep the leaf's size need no table page; a
	 * write that splits a block while logging does (whether logging is on
	 * is read under the lock below: top up for any write). */
	if ((!perm || a->write) && mc) {
		r = memcache_topup(mc, vm_memcache_min_pages());
		if (r)
			fatal(a, "kvm_mmu_topup_memory_cache", r);
	}
	read_lock(&mmu_lock);
	grace_read_begin();
	/* Rounds start and stop under the write lock: stable until unlock. */
	bool logging = dirty_active();
	uint64_t size = !logging && block_fits ? BLOCK : PAGE;
	uint64_t base = a->ipa & ~(size - 1);
	/* While logging, only a write fault maps writable. */
	bool writable = !logging || a->write;
	uint64_t prot = KVM_PGTABLE_PROT_R | (writable ? KVM_PGTABLE_PROT_W : 0) |
			(a->exec ? KVM_PGTABLE_PROT_X : 0);
	bool relax = perm && size == granule;
	if (relax) {
		COUNT(relax_calls);
		r = kvm_pgtable_stage2_relax_perms(&stage2, a->ipa, prot);
	} else {
		COUNT(map_calls);
		/* A page over a block: 6.12 replaces the block with a table
		 * holding only this page; the rest faults back in. */
		if (perm && granule > size)
			check_block_cut(a->ipa);
		r = kvm_pgtable_stage2_map(&stage2, base, size, base, prot, mc,
					   KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT);
	}
	/* Marked dirty only if the fault was handled, before the lock a
	 * round's harvest takes is released (user_mem_abort's order). */
	if (writable && r == 0 && logging) {
		dirty_mark(base, size);
		COUNT(dirty_faults);
	}
	grace_read_end();
	read_unlock(&mmu_lock);

	if (r == -PGW_EAGAIN)
		return FC_AGAIN;
	if (r)
		fatal(a, relax ? "kvm_pgtable_stage2_relax_perms" : "kvm_pgtable_stage2_map", r);
	if (!relax) {
		if (size == BLOCK)
			atomic_fetch_add_explicit(perm ? &stats.blocks_recovered : &stats.ram_blocks_mapped, 1,
						  memory_order_relaxed);
		else if (perm && granule > PAGE)
			COUNT(blocks_split);
		else
			COUNT(ram_pages_mapped);
	}
	return FC_FIXED;
}

static enum fault_column access_flag(const struct abort *a)
{
	read_lock(&mmu_lock);
	grace_read_begin();
	kvm_pte_t old = kvm_pgtable_stage2_mkyoung(&stage2, a->ipa);
	grace_read_end();
	read_unlock(&mmu_lock);
	if (!(old & KVM_PTE_VALID))
		return FC_AGAIN;
	COUNT(mkyoung_young);
	return FC_FIXED;
}

static enum fault_column typed_outcome(const struct abort *a, const char *call, int r, pgw_fault_outcome outcome)
{
	if (r)
		fatal(a, call, r);
	switch (outcome) {
	case PGW_FAULT_FIXED:
		return FC_FIXED;
	case PGW_FAULT_SPURIOUS:
		return FC_SPURIOUS;
	case PGW_FAULT_RETRY:
		return FC_RETRY;
	default: {
		const char *name = pgw_fault_outcome_name(outcome);
		hv_printf("pgwalk-hv-c: stage-2 fault at IPA %#lx: %s answered %s (%u), which this hypervisor does not emulate; stopping the guest\n",
			  a->ipa, call, name ? name : "an unknown outcome", (unsigned)outcome);
		hv_fail();
	}
	}
}

static enum fault_column device_abort(const struct abort *a)
{
	struct kvm_mmu_memory_cache *mc = vcpu_current()->memcache;
	uint64_t page = a->ipa & ~(PAGE - 1);
	pgw_fault_outcome outcome = 0;
	const char *call;
	int r;

	if (a->kind == FK_ACCESS_FLAG)
		return access_flag(a);
	if (a->kind == FK_TRANSLATION) {
		r = memcache_topup(mc, vm_memcache_min_pages());
		if (r)
			fatal(a, "kvm_mmu_topup_memory_cache", r);
	}
	read_lock(&mmu_lock);
	grace_read_begin();
	COUNT(typed_calls);
	if (a->kind == FK_TRANSLATION) {
		call = "pgw_bound_fault_map";
		r = pgw_bound_fault_map(&stage2_bound, page, PAGE, page,
					KVM_PGTABLE_PROT_RW | KVM_PGTABLE_PROT_DEVICE, mc, 0, &outcome);
	} else {
		call = "pgw_bound_fault_relax_perms";
		r = pgw_bound_fault_relax_perms(&stage2_bound, page, KVM_PGTABLE_PROT_RW, &outcome);
	}
	grace_read_end();
	read_unlock(&mmu_lock);
	enum fault_column column = typed_outcome(a, call, r, outcome);
	if (column == FC_FIXED && a->kind == FK_TRANSLATION) {
		COUNT(device_pages_mapped);
		check_touched_device(a->ipa);
	}
	return column;
}

void fault_handle(struct frame *frame, uint64_t esr, bool instruction)
{
	uint64_t start = counter();
	struct abort a = decode(esr, instruction);
	enum region region = a.kind == FK_OTHER ? REGION_NONE : memmap_lookup(a.ipa, NULL);
	enum fault_column column;

	atomic_fetch_add_explicit(&vcpu_current()->faults, 1, memory_order_relaxed);
	if (region == REGION_RAM && a.kind == FK_ACCESS_FLAG)
		column = access_flag(&a);
	else if (region == REGION_RAM)
		column = ram_abort(&a);
	else if (region == REGION_DEVICE && !a.exec)
		column = device_abort(&a);
	else {
		/* Nothing there, an address beyond the IPA size, or code fetched
		 * from a device: what the machine would answer. */
		guest_inject_external_abort(frame, esr, instruction);
		column = FC_ABORT;
	}
	stats_fault(a.kind, column);
	atomic_fetch_add_explicit(&stats.fault_ticks, counter() - start, memory_order_relaxed);
}

/*
 * The typed API: visitors report what they did to the walk in
 * visit->action and only their own errors through the return value; an
 * action the capability does not allow is -PGW_EPROTO. Fault-path
 * operations answer with a pgw_fault_outcome. Unlike the kernel-compatible
 * API (Linux 6.12's rounding and dropping), it refuses input that does not
 * mean exactly one thing.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "host.h"

#define GUEST_PA 0x100000000ull
#define PAGES_IPA 0x10000000ull
#define R KVM_PGTABLE_PROT_R
#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)
#define ALWAYS (-1)
#define S2_XN_FIELD (3ull << 53)

struct plan {
	uint32_t action; /* reported at visit `at` (or ALWAYS) */
	uint32_t reason;
	int ret;         /* returned at visit `at` */
	int at;
	int retry_first; /* PGW_ACTION_RETRY on the first visit of each entry */
	uint64_t last;
	unsigned visits, leaves;
	uint32_t capability, kind;
};

static int visitor(struct pgw_visit *v)
{
	struct plan *p = v->arg;
	unsigned n = p->visits++;

	p->capability = v->capability;
	p->kind = v->kind;
	if (v->action != PGW_ACTION_CONTINUE)
		return -EILSEQ; /* the documented entry value */
	if (v->kind == PGW_VISIT_LEAF)
		p->leaves++;
	if (p->retry_first && v->kind == PGW_VISIT_LEAF) {
		int first = n == 0 || v->addr != p->last;

		p->last = v->addr;
		if (first) {
			v->action = PGW_ACTION_RETRY;
			return 0;
		}
	}
	if (p->at == ALWAYS || (unsigned)p->at == n) {
		v->action = p->action;
		v->resume_reason = p->reason;
		return p->ret;
	}
	return 0;
}

static struct plan plan(uint32_t action, uint32_t reason, int ret, int at)
{
	struct plan p;

	memset(&p, 0, sizeof(p));
	p.action = action;
	p.reason = reason;
	p.ret = ret;
	p.at = at;
	return p;
}

static int walk(struct vm *vm, uint32_t cap, uint32_t flags, struct plan *p,
		struct pgw_walk_result *res)
{
	struct pgw_walker w = { .cb = visitor, .arg = p, .flags = flags, .capability = cap };

	res->status = 0;
	res->outcome = 0;
	return pgw_walk(&vm->pgt, PAGES_IPA, 4 * PAGE_SIZE, &w, res);
}

#define LEAF KVM_PGTABLE_WALK_LEAF

static void every_capability(struct vm *vm)
{
	static const uint32_t caps[] = { PGW_EXCLUSIVE, PGW_SHARED, PGW_HANDLES_FAULT };
	struct pgw_walk_result res;
	struct plan p;
	unsigned i;

	for (i = 0; i < 3; i++) {
		p = plan(PGW_ACTION_CONTINUE, 0, 0, ALWAYS);
		CHECK_EQ(walk(vm, caps[i], LEAF, &p, &res), 0);
		CHECK_EQ(res.status, PGW_WALK_COMPLETED);
		CHECK_EQ(res.outcome, PGW_FAULT_CONTINUE);
		CHECK_EQ(p.leaves, 4);
		CHECK_EQ(p.capability, caps[i]);
		CHECK_EQ(p.kind, PGW_VISIT_LEAF);

		/* STOP: not an error, and the walk says it stopped. */
		p = plan(PGW_ACTION_STOP, 0, 0, 1);
		CHECK_EQ(walk(vm, caps[i], LEAF, &p, &res), 0);
		CHECK_EQ(res.status, PGW_WALK_STOPPED);
		CHECK_EQ(p.visits, 2);

		/* The visitor's own error, whatever the action says. */
		p = plan(PGW_ACTION_CONTINUE, 0, -ENOSPC, 2);
		CHECK_EQ(walk(vm, caps[i], LEAF, &p, &res), -ENOSPC);
		CHECK_EQ(res.status, 0); /* not written on error */
		CHECK_EQ(p.visits, 3);

		/* A positive return, or an action outside the enum, means nothing. */
		p = plan(PGW_ACTION_CONTINUE, 0, 1, 0);
		CHECK_EQ(walk(vm, caps[i], LEAF, &p, &res), -PGW_EBADMSG);
		p = plan(0, 0, 0, 0);
		CHECK_EQ(walk(vm, caps[i], LEAF, &p, &res), -PGW_EBADMSG);
		p = plan(99, 0, 0, 0);
		CHECK_EQ(walk(vm, caps[i], LEAF, &p, &res), -PGW_EBADMSG);
		CHECK_EQ(p.visits, 1);
	}
}

static void allowed_and_disallowed(struct vm *vm)
{
	struct pgw_walk_result res;
	struct plan p;

	/* Exclusive: no skip, no retry, no resume. */
	p = plan(PGW_ACTION_SKIP, 0, 0, 0);
	CHECK_EQ(walk(vm, PGW_EXCLUSIVE, LEAF, &p, &res), -PGW_EPROTO);
	p = plan(PGW_ACTION_RETRY, 0, 0, 0);
	CHECK_EQ(walk(vm, PGW_EXCLUSIVE, LEAF, &p, &res), -PGW_EPROTO);
	p = plan(PGW_ACTION_RESUME_GUEST, 0, 0, 1);
	CHECK_EQ(walk(vm, PGW_EXCLUSIVE, LEAF, &p, &res), -PGW_EPROTO);
	CHECK_EQ(p.visits, 2);

	/* Shared: retry revisits, skip skips, resume is refused. */
	p = plan(PGW_ACTION_CONTINUE, 0, 0, ALWAYS);
	p.retry_first = 1;
	CHECK_EQ(walk(vm, PGW_SHARED, LEAF, &p, &res), 0);
	CHECK_EQ(p.leaves, 8);
	p = plan(PGW_ACTION_SKIP, 0, 0, ALWAYS);
	CHECK_EQ(walk(vm, PGW_SHARED, LEAF | KVM_PGTABLE_WALK_TABLE_PRE, &p, &res), 0);
	CHECK_EQ(res.status, PGW_WALK_COMPLETED);
	CHECK_EQ(p.leaves, 0);
	p = plan(PGW_ACTION_RESUME_GUEST, 0, 0, 0);
	CHECK_EQ(walk(vm, PGW_SHARED, LEAF, &p, &res), -PGW_EPROTO);
	/* A visitor that always asks to retry no longer spins forever: the
	 * walk gives up on the first entry after PGW_RETRY_LIMIT tries. */
	p = plan(PGW_ACTION_RETRY, 0, 0, ALWAYS);
	CHECK_EQ(walk(vm, PGW_SHARED, LEAF, &p, &res), -PGW_ELOOP);
	CHECK_EQ(p.visits, PGW_RETRY_LIMIT);

	/* Fault handler: resume the guest, with why; no skip, no retry. */
	p = plan(PGW_ACTION_RESUME_GUEST, PGW_RESUME_RACED, 0, 1);
	CHECK_EQ(walk(vm, PGW_HANDLES_FAULT, LEAF, &p, &res), 0);
	CHECK_EQ(res.status, PGW_WALK_RESUMED_GUEST);
	CHECK_EQ(res.outcome, PGW_FAULT_RETRY);
	CHECK_EQ(p.visits, 2);
	p = plan(PGW_ACTION_RESUME_GUEST, PGW_RESUME_SPURIOUS, 0, 0);
	CHECK_EQ(walk(vm, PGW_HANDLES_FAULT, LEAF, &p, &res), 0);
	CHECK_EQ(res.outcome, PGW_FAULT_SPURIOUS);
	p = plan(PGW_ACTION_RESUME_GUEST, PGW_RESUME_GONE, 0, 0);
	CHECK_EQ(walk(vm, PGW_HANDLES_FAULT, LEAF, &p, &res), 0);
	CHECK_EQ(res.outcome, PGW_FAULT_RETRY);
	p = plan(PGW_ACTION_RESUME_GUEST, 0, 0, 0);
	CHECK_EQ(walk(vm, PGW_HANDLES_FAULT, LEAF, &p, &res), 0);
	CHECK_EQ(res.outcome, PGW_FAULT_RETRY);
	p = plan(PGW_ACTION_RESUME_GUEST, 17, 0, 0);
	CHECK_EQ(walk(vm, PGW_HANDLES_FAULT, LEAF, &p, &res), -PGW_EBADMSG);
	p = plan(PGW_ACTION_SKIP, 0, 0, 0);
	CHECK_EQ(walk(vm, PGW_HANDLES_FAULT, LEAF, &p, &res), -PGW_EPROTO);
	p = plan(PGW_ACTION_RETRY, 0, 0, 0);
	CHECK_EQ(walk(vm, PGW_HANDLES_FAULT, LEAF, &p, &res), -PGW_EPROTO);
}

static void bad_walkers(struct vm *vm)
{
	struct pgw_walk_result res;
	struct plan p = plan(PGW_ACTION_CONTINUE, 0, 0, ALWAYS);
	struct pgw_walker w = { .cb = visitor, .arg = &p, .flags = LEAF, .capability = 0 };

	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &w, &res), -PGW_EINVAL);
	w.capability = 4;
	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &w, &res), -PGW_EINVAL);
	w.capability = PGW_SHARED;
	w.flags = LEAF | KVM_PGTABLE_WALK_SHARED;
	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &w, &res), -PGW_EINVAL);
	w.flags = LEAF | KVM_PGTABLE_WALK_HANDLE_FAULT;
	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &w, &res), -PGW_EINVAL);
	w.flags = 1u << 20;
	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &w, &res), -PGW_EINVAL);
	w.flags = LEAF;
	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &w, NULL), -PGW_EFAULT);
	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, NULL, &res), -PGW_EFAULT);
	CHECK_EQ(pgw_walk(NULL, PAGES_IPA, PAGE_SIZE, &w, &res), -PGW_EFAULT);
	w.cb = NULL;
	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &w, &res), -PGW_EFAULT);
	CHECK_EQ(p.visits, 0);
}

static void fault_outcomes(struct vm *vm)
{
	/* Value 4 (once "write-protected", which nothing produced) is unused. */
	static const char *const names[] = { "continue", "retry", "emulate", NULL,
					     "fixed", "spurious" };
	struct kvm_mmu_memory_cache mc = { .nobjs = 8 };
	pgw_fault_outcome o = 0;
	uint32_t v;
	bool found = false, young = false;

	for (v = PGW_FAULT_CONTINUE; v <= PGW_FAULT_SPURIOUS; v++) {
		CHECK(v != 0);
		if (!names[v - 1]) {
			CHECK(pgw_fault_outcome_name(v) == NULL);
			continue;
		}
		CHECK(pgw_fault_outcome_name(v) != NULL &&
		      strcmp(pgw_fault_outcome_name(v), names[v - 1]) == 0);
	}
	CHECK(pgw_fault_outcome_name(0) == NULL);
	CHECK(pgw_fault_outcome_name(7) == NULL);
	CHECK(pgw_fault_outcome_name(UINT32_MAX) == NULL);

	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, 0x20000000, PAGE_SIZE, GUEST_PA, KVM_PGTABLE_PROT_R,
				      &mc, 0, &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, 0x20000000, PAGE_SIZE, GUEST_PA, KVM_PGTABLE_PROT_R,
				      &mc, KVM_PGTABLE_WALK_SKIP_CMO, &o), 0);
	CHECK_EQ(o, PGW_FAULT_SPURIOUS);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, 0x20000000, PAGE_SIZE, GUEST_PA, KVM_PGTABLE_PROT_R,
				      &mc, KVM_PGTABLE_WALK_SHARED, &o), -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, 0x20000000, PAGE_SIZE, GUEST_PA, KVM_PGTABLE_PROT_R,
				      &mc, 0, NULL), -PGW_EFAULT);

	CHECK_EQ(pgw_stage2_fault_relax_perms(&vm->pgt, 0x20000000, KVM_PGTABLE_PROT_W, &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(pgw_stage2_fault_relax_perms(&vm->pgt, 0x20000000, KVM_PGTABLE_PROT_W, &o), 0);
	CHECK_EQ(o, PGW_FAULT_SPURIOUS);
	CHECK_EQ(pgw_stage2_fault_relax_perms(&vm->pgt, 0x30000000, KVM_PGTABLE_PROT_W, &o), 0);
	CHECK_EQ(o, PGW_FAULT_RETRY);
	CHECK_EQ(pgw_stage2_fault_relax_perms(&vm->pgt, 0x20000000, KVM_PGTABLE_PROT_DEVICE, &o),
		 -PGW_EINVAL);

	CHECK_EQ(pgw_stage2_test_clear_young(&vm->pgt, 0x20000000, PAGE_SIZE, true, &young), 0);
	CHECK(young);
	CHECK_EQ(pgw_stage2_fault_mkyoung(&vm->pgt, 0x20000000, &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(pgw_stage2_fault_mkyoung(&vm->pgt, 0x20000000, &o), 0);
	CHECK_EQ(o, PGW_FAULT_SPURIOUS);
	CHECK_EQ(pgw_stage2_fault_mkyoung(&vm->pgt, 0x30000000, &o), 0);
	CHECK_EQ(o, PGW_FAULT_RETRY);
	CHECK_EQ(pgw_stage2_mkyoung(&vm->pgt, 0x20000000, &found), 0);
	CHECK(found);
	CHECK_EQ(pgw_stage2_mkyoung(&vm->pgt, 0x30000000, &found), 0);
	CHECK(!found);
	CHECK_EQ(pgw_stage2_test_clear_young(&vm->pgt, 0x20000000, PAGE_SIZE, false, NULL),
		 -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, 0x20000000, PAGE_SIZE), 0);

	/*
	 * A write fault on a write-protected block (dirty logging): one typed
	 * fault map splits the block, the page becomes writable, the rest of
	 * the block keeps its read-only mapping. (kvm_pgtable_stage2_map, as
	 * 6.12, would replace the block with a table of that one page.)
	 */
	const uint64_t blk = 0x40000000, sz2m = 2ull << 20;
	kvm_pte_t pte = 0;
	int8_t level = 0;
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, blk, sz2m, GUEST_PA, KVM_PGTABLE_PROT_R, &mc, 0),
		 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, blk, &pte, &level), 0);
	CHECK_EQ(level, 2);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, blk + PAGE_SIZE, PAGE_SIZE, GUEST_PA + PAGE_SIZE,
				      KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W, &mc, 0, &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, blk + PAGE_SIZE, &pte, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(pte) & KVM_PGTABLE_PROT_W, KVM_PGTABLE_PROT_W);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, blk + sz2m - PAGE_SIZE, &pte, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(kvm_pgtable_stage2_pte_prot(pte) & (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W),
		 KVM_PGTABLE_PROT_R);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, blk, sz2m), 0);
}

static kvm_pte_t leaf(struct vm *vm, uint64_t ipa)
{
	kvm_pte_t pte = 0;

	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, ipa, &pte, NULL), 0);
	return pte;
}

/* Where kvm_pgtable_* rounds, drops or ignores (as Linux 6.12 does), the
 * typed calls refuse with -PGW_EINVAL, before anything changes. */
static void strict_input(struct vm *vm)
{
	static const uint64_t bad_prot[] = { 1ull << 7, 1ull << 40, 1ull << 54, 1ull << 63 };
	struct kvm_mmu_memory_cache mc = { .nobjs = 8 };
	const uint64_t ipa = 0x20000000;
	unsigned long pages = pool_stats().in_use;
	pgw_fault_outcome o = 0;
	kvm_pte_t *t = NULL;
	unsigned i;

	/* A misaligned IPA, size or PA, or an empty range. */
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa + 8, PAGE_SIZE, GUEST_PA, R, &mc, 0, &o),
		 -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa, PAGE_SIZE + 1, GUEST_PA, R, &mc, 0, &o),
		 -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa, PAGE_SIZE, GUEST_PA + 16, R, &mc, 0, &o),
		 -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa, 0, GUEST_PA, R, &mc, 0, &o), -PGW_EINVAL);
	/* Prot bits that mean nothing, and walker bits the call decides. */
	for (i = 0; i < sizeof(bad_prot) / sizeof(bad_prot[0]); i++) {
		CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa, PAGE_SIZE, GUEST_PA, R | bad_prot[i],
					      &mc, 0, &o), -PGW_EINVAL);
		CHECK_EQ(pgw_stage2_fault_relax_perms(&vm->pgt, PAGES_IPA, bad_prot[i], &o),
			 -PGW_EINVAL);
		CHECK_EQ(pgw_stage2_create_unlinked(&vm->pgt, GUEST_PA, 2, R | bad_prot[i], NULL,
						    false, &t), -PGW_EINVAL);
	}
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa, PAGE_SIZE, GUEST_PA, R, &mc,
				      KVM_PGTABLE_WALK_HANDLE_FAULT, &o), -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa, PAGE_SIZE, GUEST_PA, R, &mc, 1u << 7, &o),
		 -PGW_EINVAL);
	CHECK_EQ(o, 0);
	CHECK(t == NULL);
	CHECK_EQ(mc.nobjs, 8);
	CHECK_EQ(leaf(vm, ipa), 0);
	CHECK_EQ(pool_stats().in_use, pages);

	/* The same input through the kernel's API, as Linux 6.12 reads it:
	 * rounded, bits dropped. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, ipa + 8, PAGE_SIZE, GUEST_PA + 16,
					R | (1ull << 40), &mc, 1u << 7), 0);
	CHECK_EQ(leaf(vm, ipa) & KVM_PTE_ADDR_MASK, GUEST_PA);
	CHECK_EQ(leaf(vm, ipa + PAGE_SIZE), 0);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, ipa, 1ull << 40), 0);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, ipa, PAGE_SIZE), 0);

	/* PGW_PROT_PX and _UX are the typed API's own (FEAT_XNX): it maps
	 * them; the kernel's API drops them, as 6.12 has no such bits. */
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa, PAGE_SIZE, GUEST_PA, R | PGW_PROT_PX, &mc, 0,
				      &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(leaf(vm, ipa) & S2_XN_FIELD, 3ull << 53); /* EL1 only */
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, ipa + PAGE_SIZE, PAGE_SIZE, GUEST_PA, R | PGW_PROT_UX,
				      &mc, 0, &o), 0);
	CHECK_EQ(leaf(vm, ipa + PAGE_SIZE) & S2_XN_FIELD, 1ull << 53); /* EL0 only */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, ipa + 2 * PAGE_SIZE, PAGE_SIZE, GUEST_PA,
					R | PGW_PROT_PX | PGW_PROT_UX, &mc, 0), 0);
	CHECK_EQ(leaf(vm, ipa + 2 * PAGE_SIZE) & S2_XN_FIELD, 2ull << 53); /* never */
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, ipa, 3 * PAGE_SIZE), 0);
	CHECK_EQ(pool_stats().in_use, pages);
}

/* pgw_stage2_wrprotect: the kernel's write protection for a caller under
 * the read lock (compare-and-swap per leaf), which refuses what does not
 * mean one range and, like the kernel's, leaves the TLB to its caller. */
static void wrprotect_beside_walkers(struct vm *vm)
{
	const uint64_t w = 1ull << 7; /* S2AP[1] */

	tlbi_clear(vm);
	CHECK_EQ(pgw_stage2_wrprotect(&vm->pgt, PAGES_IPA, 2 * PAGE_SIZE), 0);
	CHECK_EQ(leaf(vm, PAGES_IPA) & w, 0);
	CHECK_EQ(leaf(vm, PAGES_IPA + PAGE_SIZE) & w, 0);
	CHECK_EQ(leaf(vm, PAGES_IPA + 2 * PAGE_SIZE) & w, w);
	CHECK_EQ(vm->tlbi_n, 0);
	/* Again: nothing left to change, still 0. */
	CHECK_EQ(pgw_stage2_wrprotect(&vm->pgt, PAGES_IPA, 2 * PAGE_SIZE), 0);

	CHECK_EQ(pgw_stage2_wrprotect(&vm->pgt, PAGES_IPA + 8, PAGE_SIZE), -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_wrprotect(&vm->pgt, PAGES_IPA, PAGE_SIZE + 1), -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_wrprotect(&vm->pgt, PAGES_IPA, 0), -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_wrprotect(&vm->pgt, 1ull << 40, PAGE_SIZE), -PGW_ERANGE);
	CHECK_EQ(pgw_stage2_wrprotect(NULL, PAGES_IPA, PAGE_SIZE), -PGW_EFAULT);
	CHECK_EQ(leaf(vm, PAGES_IPA + 2 * PAGE_SIZE) & w, w);
	CHECK_EQ(vm->tlbi_n, 0);

	/* Writable again, for whatever runs next. */
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, PAGES_IPA, KVM_PGTABLE_PROT_W), 0);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm->pgt, PAGES_IPA + PAGE_SIZE,
						KVM_PGTABLE_PROT_W), 0);
	CHECK_EQ(leaf(vm, PAGES_IPA) & w, w);
}

/* pgw_walk_leaf_runs hands over, a run at a time, exactly the entries a
 * kvm_pgtable_walk LEAF visitor sees one by one. */
#define SCAN_IPA 0x40000000ull
#define SCAN_MAX 4096
#define SZ_2M (2ull << 20)
#define SZ_1G (1ull << 30)

struct scan {
	uint64_t addr[SCAN_MAX], pte[SCAN_MAX];
	int8_t level[SCAN_MAX];
	unsigned n, runs, stop_at;
	int ret;
};

static void scanned(struct scan *s, uint64_t addr, uint64_t pte, int8_t level)
{
	CHECK(s->n < SCAN_MAX);
	if (s->n >= SCAN_MAX)
		return;
	s->addr[s->n] = addr;
	s->pte[s->n] = pte;
	s->level[s->n] = level;
	s->n++;
}

static int scan_one(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	uint64_t size = 1ull << (12 + 9 * (3 - ctx->level));

	(void)visit;
	scanned(ctx->arg, ctx->addr & ~(size - 1), ctx->old, ctx->level);
	return 0;
}

static int scan_run(const struct pgw_leaf_run *run)
{
	struct scan *s = run->arg;
	uint64_t i;

	CHECK(run->count >= 1 && run->count <= PGW_LEAF_RUN_MAX);
	CHECK_EQ(run->entry_size, 1ull << (12 + 9 * (3 - run->level)));
	CHECK_EQ(run->addr & (run->entry_size - 1), 0);
	for (i = 0; i < run->count; i++)
		scanned(s, run->addr + i * run->entry_size, run->ptes[i], run->level);
	return ++s->runs == s->stop_at ? s->ret : 0;
}

static void leaf_runs(struct vm *vm)
{
	static struct scan one, runs;
	static const uint64_t ranges[][2] = {
		{ SCAN_IPA, 6 * SZ_2M },
		{ SCAN_IPA + 3 * PAGE_SIZE, 700 * PAGE_SIZE },
		{ SCAN_IPA + 4 * SZ_2M + 5 * PAGE_SIZE, SZ_2M },
		{ SCAN_IPA + 9 * PAGE_SIZE, 1 },
	};
	struct kvm_mmu_memory_cache *mc = vm_mc(vm);
	unsigned i, j;

	/* Pages over three leaf tables, a block, an annotation, holes. */
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SCAN_IPA + 5 * PAGE_SIZE, 1100 * PAGE_SIZE,
					GUEST_PA + PAGE_SIZE, RW, mc, 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, SCAN_IPA + 4 * SZ_2M, SZ_2M, GUEST_PA, R, mc, 0),
		 0);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm->pgt, SCAN_IPA + 3 * SZ_2M, PAGE_SIZE, mc, 1), 0);
	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		struct kvm_pgtable_walker w = { .cb = scan_one, .arg = &one, .flags = LEAF };

		memset(&one, 0, sizeof(one));
		memset(&runs, 0, sizeof(runs));
		CHECK_EQ(kvm_pgtable_walk(&vm->pgt, ranges[i][0], ranges[i][1], &w), 0);
		CHECK_EQ(pgw_walk_leaf_runs(&vm->pgt, ranges[i][0], ranges[i][1], scan_run, &runs),
			 0);
		CHECK_EQ(runs.n, one.n);
		for (j = 0; j < one.n && j < runs.n; j++) {
			CHECK_EQ(runs.addr[j], one.addr[j]);
			CHECK_EQ(runs.pte[j], one.pte[j]);
			CHECK_EQ(runs.level[j], one.level[j]);
		}
		CHECK(runs.runs >= (one.n + PGW_LEAF_RUN_MAX - 1) / PGW_LEAF_RUN_MAX);
	}

	/* The visitor's errno ends the walk at once; a positive return is
	 * -PGW_EBADMSG. */
	memset(&runs, 0, sizeof(runs));
	runs.stop_at = 2;
	runs.ret = -EIO;
	CHECK_EQ(pgw_walk_leaf_runs(&vm->pgt, SCAN_IPA, 6 * SZ_2M, scan_run, &runs), -EIO);
	CHECK_EQ(runs.runs, 2);
	memset(&runs, 0, sizeof(runs));
	runs.stop_at = 1;
	runs.ret = 1;
	CHECK_EQ(pgw_walk_leaf_runs(&vm->pgt, SCAN_IPA, 6 * SZ_2M, scan_run, &runs), -PGW_EBADMSG);
	CHECK_EQ(runs.runs, 1);
	CHECK_EQ(pgw_walk_leaf_runs(&vm->pgt, SCAN_IPA, 6 * SZ_2M, NULL, &runs), -PGW_EFAULT);
	CHECK_EQ(pgw_walk_leaf_runs(NULL, SCAN_IPA, PAGE_SIZE, scan_run, &runs), -PGW_EFAULT);
	CHECK_EQ(pgw_walk_leaf_runs(&vm->pgt, 1ull << 40, PAGE_SIZE, scan_run, &runs), -PGW_ERANGE);
	CHECK_EQ(runs.runs, 1);

	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, SCAN_IPA, 6 * SZ_2M), 0);
}

/* A table bound once: the fault path's calls, same answers, same checks of
 * their own arguments; the binding's own errors. */
static void bound(struct vm *vm)
{
	const uint64_t ipa = 0x50000000, twin = 0x50200000;
	struct pgw_bound_stage2 b, copy, zeroed;
	struct kvm_mmu_memory_cache mc = { .nobjs = 8 };
	struct kvm_pgtable blank = { 0 };
	pgw_fault_outcome o = 0;
	bool young;

	memset(&zeroed, 0, sizeof(zeroed));
	CHECK_EQ(pgw_bind_stage2(&vm->pgt, &b), 0);
	memcpy(&copy, &b, sizeof(b));

	/* The same map as pgw_stage2_fault_map's. */
	CHECK_EQ(pgw_bound_fault_map(&b, ipa, PAGE_SIZE, GUEST_PA, R, &mc, 0, &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(pgw_stage2_fault_map(&vm->pgt, twin, PAGE_SIZE, GUEST_PA, R, &mc, 0, &o), 0);
	CHECK_EQ(leaf(vm, ipa), leaf(vm, twin));
	CHECK(leaf(vm, ipa) != 0);
	CHECK_EQ(pgw_bound_fault_map(&copy, ipa, PAGE_SIZE, GUEST_PA, R, &mc, 0, &o), 0);
	CHECK_EQ(o, PGW_FAULT_SPURIOUS);

	CHECK_EQ(pgw_bound_fault_relax_perms(&b, ipa, KVM_PGTABLE_PROT_W, &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(pgw_bound_fault_relax_perms(&copy, ipa, KVM_PGTABLE_PROT_W, &o), 0);
	CHECK_EQ(o, PGW_FAULT_SPURIOUS);
	CHECK_EQ(pgw_bound_fault_relax_perms(&b, ipa + SZ_1G, KVM_PGTABLE_PROT_W, &o), 0);
	CHECK_EQ(o, PGW_FAULT_RETRY);
	CHECK_EQ(pgw_stage2_fault_relax_perms(&vm->pgt, twin, KVM_PGTABLE_PROT_W, &o), 0);
	CHECK_EQ(leaf(vm, ipa), leaf(vm, twin));

	CHECK_EQ(pgw_stage2_test_clear_young(&vm->pgt, ipa, PAGE_SIZE, true, &young), 0);
	CHECK(young);
	CHECK_EQ(pgw_bound_fault_mkyoung(&b, ipa, &o), 0);
	CHECK_EQ(o, PGW_FAULT_FIXED);
	CHECK_EQ(pgw_bound_fault_mkyoung(&b, ipa, &o), 0);
	CHECK_EQ(o, PGW_FAULT_SPURIOUS);
	CHECK_EQ(pgw_bound_fault_mkyoung(&b, ipa + SZ_1G, &o), 0);
	CHECK_EQ(o, PGW_FAULT_RETRY);

	/* Its calls check their own arguments as the unbound ones do. */
	o = 0;
	CHECK_EQ(pgw_bound_fault_map(&b, ipa + 8, PAGE_SIZE, GUEST_PA, R, &mc, 0, &o), -PGW_EINVAL);
	CHECK_EQ(pgw_bound_fault_map(&b, ipa, PAGE_SIZE, GUEST_PA, R | (1ull << 40), &mc, 0, &o),
		 -PGW_EINVAL);
	CHECK_EQ(pgw_bound_fault_map(&b, ipa, PAGE_SIZE, GUEST_PA, R, &mc,
				     KVM_PGTABLE_WALK_SHARED, &o), -PGW_EINVAL);
	CHECK_EQ(pgw_bound_fault_map(&b, ipa, PAGE_SIZE, GUEST_PA, R, &mc, 0, NULL), -PGW_EFAULT);
	CHECK_EQ(pgw_bound_fault_relax_perms(&b, ipa, KVM_PGTABLE_PROT_DEVICE, &o), -PGW_EINVAL);
	CHECK_EQ(pgw_bound_fault_relax_perms(NULL, ipa, KVM_PGTABLE_PROT_W, &o), -PGW_EFAULT);
	CHECK_EQ(pgw_bound_fault_mkyoung(&b, ipa, NULL), -PGW_EFAULT);
	CHECK_EQ(pgw_bound_fault_mkyoung(NULL, ipa, &o), -PGW_EFAULT);
	/* Storage never bound. */
	CHECK_EQ(pgw_bound_fault_mkyoung(&zeroed, ipa, &o), -PGW_EINVAL);
	CHECK_EQ(pgw_bound_fault_map(&zeroed, ipa, PAGE_SIZE, GUEST_PA, R, &mc, 0, &o), -PGW_EINVAL);
	CHECK_EQ(o, 0);

	/* Binding checks what every call checks. */
	CHECK_EQ(pgw_bind_stage2(NULL, &b), -PGW_EFAULT);
	CHECK_EQ(pgw_bind_stage2(&vm->pgt, NULL), -PGW_EFAULT);
	CHECK_EQ(pgw_bind_stage2(&blank, &zeroed), -PGW_EINVAL);
	CHECK_EQ(pgw_bound_fault_mkyoung(&zeroed, ipa, &o), -PGW_EINVAL);

	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, ipa, PAGE_SIZE), 0);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, twin, PAGE_SIZE), 0);
}

static void unlinked(struct vm *vm)
{
	kvm_pte_t *table = NULL;

	CHECK_EQ(pgw_stage2_create_unlinked(&vm->pgt, GUEST_PA, 2, KVM_PGTABLE_PROT_R, NULL, false,
					    &table), 0);
	CHECK(table != NULL);
	kvm_pgtable_stage2_free_unlinked(&host_mm_ops, table, 2);
	CHECK_EQ(pgw_stage2_create_unlinked(&vm->pgt, GUEST_PA, 9, KVM_PGTABLE_PROT_R, NULL, false,
					    &table), -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_create_unlinked(&vm->pgt, GUEST_PA, 2, KVM_PGTABLE_PROT_R, NULL, false,
					    NULL), -PGW_EFAULT);
}

struct places {
	unsigned n;
	struct {
		int8_t level;
		uint64_t addr, entry_addr, entry_size, end;
	} v[8];
};

static int record_place(struct pgw_visit *v)
{
	struct places *p = v->arg;

	if (p->n < 8 && (v->old & 1)) {
		p->v[p->n].level = v->level;
		p->v[p->n].addr = v->addr;
		p->v[p->n].entry_addr = v->entry_addr;
		p->v[p->n].entry_size = v->entry_size;
		p->v[p->n].end = v->end;
		p->n++;
	}
	return 0;
}

/* What a visit says of its entry's place, on walks that start inside a
 * page and inside a block: the walk is paged outwards, each page visited
 * at its start, a block at the walk's address with its own start. */
static void visit_places(struct vm *vm)
{
	const uint64_t block_ipa = 0x20000000ull;
	struct places p;
	struct pgw_walker w = { .cb = record_place, .arg = &p, .flags = LEAF,
				.capability = PGW_EXCLUSIVE };
	struct pgw_walk_result res;
	unsigned i;

	memset(&p, 0, sizeof(p));
	CHECK_EQ(pgw_walk(&vm->pgt, PAGES_IPA + 0x600, 2 * PAGE_SIZE, &w, &res), 0);
	CHECK_EQ(res.status, PGW_WALK_COMPLETED);
	CHECK_EQ(p.n, 3);
	for (i = 0; i < p.n && i < 3; i++) {
		CHECK_EQ(p.v[i].level, 3);
		CHECK_EQ(p.v[i].addr, PAGES_IPA + i * PAGE_SIZE);
		CHECK_EQ(p.v[i].entry_addr, PAGES_IPA + i * PAGE_SIZE);
		CHECK_EQ(p.v[i].entry_size, PAGE_SIZE);
		CHECK_EQ(p.v[i].end, PAGES_IPA + 3 * PAGE_SIZE);
	}

	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, block_ipa, 2ull << 20, GUEST_PA + (2ull << 20), RW,
					vm_mc(vm), 0), 0);
	memset(&p, 0, sizeof(p));
	CHECK_EQ(pgw_walk(&vm->pgt, block_ipa + 5 * PAGE_SIZE + 0x10, 1, &w, &res), 0);
	CHECK_EQ(p.n, 1);
	CHECK_EQ(p.v[0].level, 2);
	CHECK_EQ(p.v[0].addr, block_ipa + 5 * PAGE_SIZE);
	CHECK_EQ(p.v[0].entry_addr, block_ipa);
	CHECK_EQ(p.v[0].entry_size, 2ull << 20);
	CHECK_EQ(p.v[0].end, block_ipa + 6 * PAGE_SIZE);
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm->pgt, block_ipa, 2ull << 20), 0);
}

int main(void)
{
	struct vm vm;

	pool_reset();
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, PAGES_IPA, 4 * PAGE_SIZE, GUEST_PA, RW, vm_mc(&vm),
					0), 0);
	every_capability(&vm);
	visit_places(&vm);
	allowed_and_disallowed(&vm);
	bad_walkers(&vm);
	fault_outcomes(&vm);
	strict_input(&vm);
	wrprotect_beside_walkers(&vm);
	leaf_runs(&vm);
	bound(&vm);
	unlinked(&vm);
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), 0);
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), -PGW_EINVAL);
	CHECK_EQ(pgw_stage2_destroy(NULL), -PGW_EFAULT);
	pool_quiesce();
	CHECK_EQ(pool_stats().in_use, 0);
	CHECK_EQ(pool_stats().double_frees, 0);
	CHECK_EQ(pool_stats().bad_frees, 0);
	return test_summary("test_typed");
}

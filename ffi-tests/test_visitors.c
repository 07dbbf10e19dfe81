/*
 * Legacy visitors: every row of the return-code table (DESIGN.md section 1)
 * for each walker kind, plus what a visitor sees in its context.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "host.h"

#define GUEST_PA 0x100000000ull
#define PAGES_IPA 0x10000000ull /* four 4 KiB pages */
#define BLOCK_IPA 0x40000000ull /* one 2 MiB block */
#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)

#define ALWAYS (-1)

/* What a scripted visitor returns, and what it saw. */
struct script {
	int code;          /* returned at visit number `at` (or ALWAYS)... */
	int at;
	uint32_t on;       /* ...if the visit is of this kind (0: any) */
	int retry_first;   /* return -EAGAIN on the first visit of each entry */
	unsigned visits, leaves, pres, posts;
	uint64_t last_addr;
	struct kvm_pgtable_visit_ctx first;
	int ctx_ok;        /* ctx->old matched *ctx->ptep on every visit */
};

static int scripted(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	struct script *s = ctx->arg;
	unsigned n = s->visits++;

	if (n == 0)
		s->first = *ctx;
	if (*ctx->ptep != ctx->old)
		s->ctx_ok = 0;
	if (visit == KVM_PGTABLE_WALK_LEAF)
		s->leaves++;
	else if (visit == KVM_PGTABLE_WALK_TABLE_PRE)
		s->pres++;
	else if (visit == KVM_PGTABLE_WALK_TABLE_POST)
		s->posts++;
	if (s->retry_first && visit == KVM_PGTABLE_WALK_LEAF) {
		int again = ctx->addr != s->last_addr || n == 0;

		s->last_addr = ctx->addr;
		if (again)
			return -EAGAIN;
	}
	if (s->on && (uint32_t)visit != s->on)
		return 0;
	if (s->at == ALWAYS || (unsigned)s->at == n)
		return s->code;
	return 0;
}

static int walk(struct vm *vm, uint64_t addr, uint64_t size, uint32_t flags, struct script *s)
{
	struct kvm_pgtable_walker walker = {
		.cb = scripted,
		.arg = s,
		.flags = flags,
	};

	s->ctx_ok = 1;
	return kvm_pgtable_walk(&vm->pgt, addr, size, &walker);
}

static struct script script(int code, int at, uint32_t on)
{
	struct script s;

	memset(&s, 0, sizeof(s));
	s.code = code;
	s.at = at;
	s.on = on;
	return s;
}

#define LEAF KVM_PGTABLE_WALK_LEAF
#define PRE KVM_PGTABLE_WALK_TABLE_PRE
#define POST KVM_PGTABLE_WALK_TABLE_POST
#define SHARED KVM_PGTABLE_WALK_SHARED
#define FAULT (KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT)

static void exclusive_rows(struct vm *vm)
{
	struct script s;

	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF, &s), 0);
	CHECK_EQ(s.leaves, 4);
	CHECK(s.ctx_ok);

	/* -EAGAIN means nothing to an exclusive walker: it continues. */
	s = script(-EAGAIN, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF, &s), 0);
	CHECK_EQ(s.leaves, 4);

	/* Neither does -ENOENT: the table below a table entry is still walked. */
	s = script(-ENOENT, ALWAYS, PRE);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | PRE, &s), 0);
	CHECK_EQ(s.pres, 2);
	CHECK_EQ(s.leaves, 4);

	/* Any other errno stops the walk and is returned. */
	s = script(-EIO, 1, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF, &s), -EIO);
	CHECK_EQ(s.visits, 2);

	/* A code that is no errno at all is refused. */
	s = script(1, 0, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF, &s), -PGW_EBADMSG);
	CHECK_EQ(s.visits, 1);
	s = script(-5000, 0, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF, &s), -PGW_EBADMSG);
}

static void shared_rows(struct vm *vm)
{
	struct script s;

	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | SHARED, &s), 0);
	CHECK_EQ(s.leaves, 4);

	/* -EAGAIN retries the same entry: each leaf is visited twice. */
	s = script(0, ALWAYS, 0);
	s.retry_first = 1;
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | SHARED, &s), 0);
	CHECK_EQ(s.leaves, 8);

	/* -ENOENT skips the entry: no descent below the level-2 table (the
	 * second table visit, after the level-1 one), and the walk goes on with
	 * the next level-2 entry (invalid, 2 MiB further). */
	s = script(-ENOENT, 1, PRE);
	CHECK_EQ(walk(vm, PAGES_IPA, 4ull << 20, LEAF | PRE | SHARED, &s), 0);
	CHECK_EQ(s.pres, 2);
	CHECK_EQ(s.leaves, 1); /* only the invalid level-2 entry */
	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4ull << 20, LEAF | SHARED, &s), 0);
	CHECK_EQ(s.leaves, 512 + 1);

	s = script(-ENOMEM, 2, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | SHARED, &s), -ENOMEM);
	CHECK_EQ(s.visits, 3);

	s = script(42, 0, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | SHARED, &s), -PGW_EBADMSG);
}

static void fault_rows(struct vm *vm)
{
	struct script s;

	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | FAULT, &s), 0);
	CHECK_EQ(s.leaves, 4);

	/* Anything else stops the walk, returned: the vCPU resumes the guest. */
	s = script(-EAGAIN, 1, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | FAULT, &s), -EAGAIN);
	CHECK_EQ(s.visits, 2);
	s = script(-ENOENT, 0, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | FAULT, &s), -ENOENT);
	CHECK_EQ(s.visits, 1);
	s = script(-EFAULT, 3, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | FAULT, &s), -EFAULT);
	CHECK_EQ(s.visits, 4);

	s = script(7, 0, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | FAULT, &s), -PGW_EBADMSG);
}

static void context_fields(struct vm *vm)
{
	struct script s = script(0, ALWAYS, 0);
	uint32_t flags = LEAF | PRE | POST | SHARED;

	/* Unaligned start and size: widened to whole pages. */
	CHECK_EQ(walk(vm, PAGES_IPA + PAGE_SIZE + 8, PAGE_SIZE, flags, &s), 0);
	CHECK(s.first.arg == &s);
	CHECK(s.first.mm_ops == &host_mm_ops);
	CHECK_EQ(s.first.start, PAGES_IPA + PAGE_SIZE);
	CHECK_EQ(s.first.addr, PAGES_IPA + PAGE_SIZE);
	CHECK_EQ(s.first.end, PAGES_IPA + 3 * PAGE_SIZE);
	CHECK_EQ(s.first.level, 1);
	CHECK_EQ(s.first.flags, flags);
	CHECK_EQ(s.pres, 2);
	CHECK_EQ(s.posts, 2);
	CHECK_EQ(s.leaves, 2);
	CHECK(s.ctx_ok);

	/* The block: one leaf at level 2. */
	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, BLOCK_IPA, 2ull << 20, LEAF, &s), 0);
	CHECK_EQ(s.leaves, 1);
	CHECK_EQ(s.first.level, 2);
	CHECK((s.first.old & 3) == 1);
}

/* A kernel-style visitor that changes entries through ctx->ptep. */
static int set_sw0(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	(void)visit;
	if (ctx->old & 1)
		*ctx->ptep = ctx->old | (1ull << 55);
	return 0;
}

static void writes_through_ptep(struct vm *vm)
{
	struct kvm_pgtable_walker walker = { .cb = set_sw0, .flags = LEAF };
	kvm_pte_t pte = 0;
	int8_t level = -1;

	CHECK_EQ(kvm_pgtable_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &walker), 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, PAGES_IPA, &pte, &level), 0);
	CHECK(pte & (1ull << 55));
	CHECK_EQ(level, 3);
}

static void bad_walkers(struct vm *vm)
{
	struct script s = script(0, ALWAYS, 0);
	struct kvm_pgtable_walker no_cb = { .cb = NULL, .flags = LEAF };

	/* A fault handler is always a shared walker. */
	CHECK_EQ(walk(vm, PAGES_IPA, PAGE_SIZE, LEAF | KVM_PGTABLE_WALK_HANDLE_FAULT, &s),
		 -PGW_EINVAL);
	CHECK_EQ(walk(vm, PAGES_IPA, PAGE_SIZE, LEAF | (1u << 7), &s), -PGW_EINVAL);
	CHECK_EQ(walk(vm, PAGES_IPA, PAGE_SIZE, 0xffffffffu, &s), -PGW_EINVAL);
	CHECK_EQ(s.visits, 0);
	CHECK_EQ(kvm_pgtable_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &no_cb), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, NULL), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_walk(NULL, PAGES_IPA, PAGE_SIZE, &no_cb), -PGW_EFAULT);
	/* Beyond the 40-bit input space. */
	CHECK_EQ(walk(vm, 1ull << 40, PAGE_SIZE, LEAF, &s), -PGW_ERANGE);
	CHECK_EQ(walk(vm, UINT64_MAX - 10, PAGE_SIZE, LEAF, &s), -PGW_ERANGE);
	CHECK_EQ(s.visits, 0);
}

int main(void)
{
	struct vm vm;

	pool_reset();
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, PAGES_IPA, 4 * PAGE_SIZE, GUEST_PA, RW, NULL, 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, BLOCK_IPA, 2ull << 20, GUEST_PA + (2ull << 20), RW,
					NULL, 0), 0);

	exclusive_rows(&vm);
	shared_rows(&vm);
	fault_rows(&vm);
	context_fields(&vm);
	writes_through_ptep(&vm);
	bad_walkers(&vm);

	kvm_pgtable_stage2_destroy(&vm.pgt);
	pool_quiesce();
	CHECK_EQ(pool_stats().in_use, 0);
	CHECK_EQ(pool_stats().double_frees, 0);
	CHECK_EQ(pool_stats().bad_frees, 0);
	return test_summary("test_visitors");
}

/*
 * Legacy visitors: every cell of Linux 6.12's return-code table (its
 * kvm_pgtable_walk_continue, DESIGN.md section 1) for each walker kind, at a
 * leaf, a table entry before its children and after them; then what a
 * visitor sees in its context, and the walker's reading of its flags and
 * range.
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
	int again_first;   /* return -EAGAIN on the first visit of each leaf */
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
	if (s->again_first && visit == KVM_PGTABLE_WALK_LEAF) {
		int first = ctx->addr != s->last_addr || n == 0;

		s->last_addr = ctx->addr;
		if (first)
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
#define ALL_VISITS (LEAF | PRE | POST)
#define SHARED KVM_PGTABLE_WALK_SHARED
#define HANDLE_FAULT KVM_PGTABLE_WALK_HANDLE_FAULT
#define FAULT (SHARED | HANDLE_FAULT)

/*
 * Linux 6.12's table, cell by cell: 1 where the walk stops and returns the
 * code as it is, 0 where it goes on (and returns 0). -EAGAIN stops only a
 * walker with HANDLE_FAULT (SHARED or not); every other non-zero code stops
 * every walker, -ENOENT, positive values and values below -4095 included.
 */
#define OTHER_ERRNO (-EIO)
#define POSITIVE 1
#define POSITIVE_BIG 42
#define BELOW_ERRNO (-5000)

static const int codes[] = { 0, -EAGAIN, -ENOENT, OTHER_ERRNO, POSITIVE, POSITIVE_BIG,
			     BELOW_ERRNO };
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static const struct kind {
	const char *name;
	uint32_t flags;
	int stops[NCODES]; /* in the order of codes[] */
} kinds[] = {
	{ "exclusive", 0, { 0, 0, 1, 1, 1, 1, 1 } },
	{ "shared", SHARED, { 0, 0, 1, 1, 1, 1, 1 } },
	{ "fault handler", SHARED | HANDLE_FAULT, { 0, 1, 1, 1, 1, 1, 1 } },
	{ "HANDLE_FAULT alone", HANDLE_FAULT, { 0, 1, 1, 1, 1, 1, 1 } },
};

static void check_cell(int got, int want, const char *kind, int code, const char *where,
		       int line)
{
	char what[96];

	snprintf(what, sizeof(what), "%s walker, code %d at %s", kind, code, where);
	check_record(got == want, __FILE__, line, what, got, want);
}

#define CELL(got, want, where) check_cell((got), (want), k->name, code, (where), __LINE__)

static void return_code_table(struct vm *vm)
{
	unsigned i, c;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct kind *k = &kinds[i];

		for (c = 0; c < NCODES; c++) {
			int code = codes[c], stops = k->stops[c];
			struct script s;

			/* At the second of four leaves: a stop ends the walk
			 * there, a continue visits the other two. */
			s = script(code, 1, 0);
			CELL(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | k->flags, &s),
			     stops ? code : 0, "a leaf (ret)");
			CELL(s.visits, stops ? 2 : 4, "a leaf (visits)");

			/* At every table entry before its children (a level-1
			 * and a level-2 entry lead to the pages): a stop ends
			 * the walk at the first, without descending; a continue
			 * descends into both, whatever the code was. */
			s = script(code, ALWAYS, PRE);
			CELL(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, ALL_VISITS | k->flags, &s),
			     stops ? code : 0, "TABLE_PRE (ret)");
			CELL(s.pres, stops ? 1 : 2, "TABLE_PRE (pre visits)");
			CELL(s.leaves, stops ? 0 : 4, "TABLE_PRE (leaf visits)");
			CELL(s.posts, stops ? 0 : 2, "TABLE_PRE (post visits)");

			/* At every table entry after its children: a stop at the
			 * level-2 entry leaves the level-1 one unvisited. */
			s = script(code, ALWAYS, POST);
			CELL(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, ALL_VISITS | k->flags, &s),
			     stops ? code : 0, "TABLE_POST (ret)");
			CELL(s.posts, stops ? 1 : 2, "TABLE_POST (post visits)");
			CELL(s.leaves, 4, "TABLE_POST (leaf visits)");
		}
	}
}

/* What the table means in practice, spelled out where pgwalk's own model
 * (and the typed API) differs. */
static void no_retry_no_skip(struct vm *vm)
{
	struct script s;

	/* -EAGAIN is not "retry" for a shared walker: the walk goes on with
	 * the next entry, each leaf is visited once. */
	s = script(0, ALWAYS, 0);
	s.again_first = 1;
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | SHARED, &s), 0);
	CHECK_EQ(s.leaves, 4);
	/* A visitor that always answers -EAGAIN does not hang the walk. */
	s = script(-EAGAIN, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 2ull << 20, LEAF | SHARED, &s), 0);
	CHECK_EQ(s.leaves, 512);
	/* -ENOENT is not "skip": it ends a shared walk at the second table
	 * entry, and the walk returns it. */
	s = script(-ENOENT, 1, PRE);
	CHECK_EQ(walk(vm, PAGES_IPA, 4ull << 20, LEAF | PRE | SHARED, &s), -ENOENT);
	CHECK_EQ(s.pres, 2);
	CHECK_EQ(s.leaves, 0);
	/* And a positive value is returned as it is, the caller's to read. */
	s = script(POSITIVE_BIG, 2, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF, &s), POSITIVE_BIG);
	CHECK_EQ(s.visits, 3);
}

static void context_fields(struct vm *vm)
{
	struct script s = script(0, ALWAYS, 0);
	uint32_t flags = LEAF | PRE | POST | SHARED;

	/* The start is aligned down to its page, and the end is that plus the
	 * size, aligned up: one page here, though the bytes reach the next. */
	CHECK_EQ(walk(vm, PAGES_IPA + PAGE_SIZE + 8, PAGE_SIZE, flags, &s), 0);
	CHECK(s.first.arg == &s);
	CHECK(s.first.mm_ops == &host_mm_ops);
	CHECK_EQ(s.first.start, PAGES_IPA + PAGE_SIZE);
	CHECK_EQ(s.first.addr, PAGES_IPA + PAGE_SIZE);
	CHECK_EQ(s.first.end, PAGES_IPA + 2 * PAGE_SIZE);
	CHECK_EQ(s.first.level, 1);
	CHECK_EQ(s.first.flags, flags);
	CHECK_EQ(s.pres, 2);
	CHECK_EQ(s.posts, 2);
	CHECK_EQ(s.leaves, 1);
	CHECK(s.ctx_ok);
	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA + PAGE_SIZE - 1, 2, LEAF, &s), 0);
	CHECK_EQ(s.leaves, 1);
	CHECK_EQ(s.first.addr, PAGES_IPA);
	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA + 8, PAGE_SIZE + 1, LEAF, &s), 0);
	CHECK_EQ(s.leaves, 2);

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

/*
 * A visitor that writes the context the kernel passes const: each visit
 * must still show its entry's own level. The walker keeps one context per
 * walk (the entry's four fields written per visit, the walker's
 * once), so a walker that skipped writing an unchanged level would hand
 * the next visit the visitor's scribble.
 */
#define SCRIBBLE_MAX 2048

struct scribble {
	unsigned leaves;
	uint64_t addr[SCRIBBLE_MAX];
	int8_t level[SCRIBBLE_MAX];
};

static int scribble_level(const struct kvm_pgtable_visit_ctx *ctx,
			  enum kvm_pgtable_walk_flags visit)
{
	struct scribble *s = ctx->arg;

	if (visit == KVM_PGTABLE_WALK_LEAF && s->leaves < SCRIBBLE_MAX) {
		s->addr[s->leaves] = ctx->addr;
		s->level[s->leaves] = ctx->level;
		s->leaves++;
	}
	((struct kvm_pgtable_visit_ctx *)ctx)->level = 42;
	return 0;
}

static void a_scribbled_level_is_restored(struct vm *vm)
{
	static struct scribble s;
	struct kvm_pgtable_walker w = { .cb = scribble_level, .arg = &s, .flags = LEAF | PRE };

	/* The four pages, the empty entries between them and the block (at
	 * levels 3, 2 and 1), and the block. */
	memset(&s, 0, sizeof(s));
	CHECK_EQ(kvm_pgtable_walk(&vm->pgt, PAGES_IPA, BLOCK_IPA + (2ull << 20) - PAGES_IPA, &w),
		 0);
	CHECK(s.leaves > 8 && s.leaves < SCRIBBLE_MAX);
	for (unsigned i = 0; i < s.leaves; i++) {
		kvm_pte_t pte = 0;
		int8_t level = -1;

		CHECK_EQ(kvm_pgtable_get_leaf(&vm->pgt, s.addr[i], &pte, &level), 0);
		CHECK_EQ(s.level[i], level);
	}
	CHECK_EQ(s.level[0], 3);
	CHECK_EQ(s.level[s.leaves - 1], 2);
}

static void flags_and_ranges(struct vm *vm)
{
	struct script s;
	struct kvm_pgtable_walker no_cb = { .cb = NULL, .flags = LEAF };

	/* Flag bits 6.12 does not define are ignored. */
	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, LEAF | (1u << 7) | (1u << 20), &s), 0);
	CHECK_EQ(s.visits, 4);
	/* Every bit: a fault handler visiting everything. */
	s = script(-EAGAIN, 1, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, 0xffffffffu, &s), -EAGAIN);
	CHECK_EQ(s.visits, 2);
	/* No visit kind: nothing is visited. */
	s = script(-EIO, ALWAYS, 0);
	CHECK_EQ(walk(vm, PAGES_IPA, 4 * PAGE_SIZE, SHARED, &s), 0);
	CHECK_EQ(s.visits, 0);

	/* Where the kernel would crash: a NULL walker, callback or table. */
	CHECK_EQ(kvm_pgtable_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, &no_cb), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_walk(&vm->pgt, PAGES_IPA, PAGE_SIZE, NULL), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_walk(NULL, PAGES_IPA, PAGE_SIZE, &no_cb), -PGW_EFAULT);

	/* Beyond the 40-bit input space, and wrapping past the top. */
	s = script(0, ALWAYS, 0);
	CHECK_EQ(walk(vm, 1ull << 40, PAGE_SIZE, LEAF, &s), -PGW_ERANGE);
	CHECK_EQ(walk(vm, (1ull << 40) - PAGE_SIZE, 2 * PAGE_SIZE, LEAF, &s), -PGW_ERANGE);
	CHECK_EQ(walk(vm, UINT64_MAX - 10, PAGE_SIZE, LEAF, &s), -PGW_ERANGE);
	CHECK_EQ(s.visits, 0);
	/* Empty ranges are walked at once: size 0, even at the very end of
	 * the input space, and a size whose end wraps around to the start. */
	CHECK_EQ(walk(vm, PAGES_IPA, 0, LEAF, &s), 0);
	CHECK_EQ(walk(vm, 1ull << 40, 0, LEAF, &s), 0);
	CHECK_EQ(walk(vm, PAGES_IPA + PAGE_SIZE, UINT64_MAX, LEAF, &s), 0);
	CHECK_EQ(s.visits, 0);
}

int main(void)
{
	struct vm vm;

	pool_reset();
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, PAGES_IPA, 4 * PAGE_SIZE, GUEST_PA, RW,
					vm_mc(&vm), 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, BLOCK_IPA, 2ull << 20, GUEST_PA + (2ull << 20), RW,
					vm_mc(&vm), 0), 0);

	return_code_table(&vm);
	no_retry_no_skip(&vm);
	context_fields(&vm);
	writes_through_ptep(&vm);
	a_scribbled_level_is_restored(&vm);
	flags_and_ranges(&vm);

	kvm_pgtable_stage2_destroy(&vm.pgt);
	pool_quiesce();
	CHECK_EQ(pool_stats().in_use, 0);
	CHECK_EQ(pool_stats().double_frees, 0);
	CHECK_EQ(pool_stats().bad_frees, 0);
	return test_summary("test_visitors");
}

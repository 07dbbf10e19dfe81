/*
 * EL2 stage-1 tables from C: kvm_pgtable_hyp_init/_map/_unmap/_destroy
 * and kvm_pgtable_hyp_pte_prot with Linux 6.12's signatures, the EL2 TLB
 * maintenance registered with pgw_hyp_set_tlb_ops, and bad input. The
 * table is read back by walking its memory here, independently of the
 * library.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "host.h"

#define R KVM_PGTABLE_PROT_R
#define W KVM_PGTABLE_PROT_W
#define X KVM_PGTABLE_PROT_X
#define DEV KVM_PGTABLE_PROT_DEVICE
#define SZ_2M (2ull << 20)
#define SZ_1G (1ull << 30)
#define OA_MASK 0x0000fffffffff000ull
#define CODE_VA 0x10040200000ull

static struct {
	unsigned long flush_va, flush_va_walks, publish;
	uint64_t last_va;
	int last_level;
} tlb;

static void flush_va(void *arg, uint64_t va, int8_t level)
{
	CHECK(arg == &tlb);
	tlb.flush_va++;
	tlb.last_va = va;
	tlb.last_level = level;
}

static void flush_va_walks(void *arg, uint64_t va, int8_t level)
{
	(void)arg;
	(void)level;
	tlb.flush_va_walks++;
	tlb.last_va = va;
}

static void publish(void *arg)
{
	(void)arg;
	tlb.publish++;
}

static const struct pgw_hyp_tlb_ops tlb_ops = {
	.flush_va = flush_va,
	.flush_va_walks = flush_va_walks,
	.publish = publish,
	.arg = &tlb,
};

/* Every non-zero entry of the table, read from its memory: (entries, hash). */
struct print {
	unsigned long entries;
	uint64_t hash;
};

static void walk_mem(uint64_t *table, int level, unsigned n, struct print *p)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = table[i];

		if (!e)
			continue;
		p->entries++;
		p->hash = p->hash * 1000003u ^ e ^ ((uint64_t)level << 60) ^ i;
		if (level < 3 && (e & 3) == 3)
			walk_mem(host_mm_ops.phys_to_virt(e & OA_MASK), level + 1, 512, p);
	}
}

static struct print fingerprint(struct kvm_pgtable *pgt)
{
	struct print p = { 0, 0 };
	int bits = (int)pgt->ia_bits - (12 + 9 * (3 - pgt->start_level));

	walk_mem(pgt->pgd, pgt->start_level, 1u << bits, &p);
	return p;
}

static void same(struct kvm_pgtable *pgt, struct print before, unsigned long pages, int line)
{
	struct print now = fingerprint(pgt);

	check_record(now.entries == before.entries && now.hash == before.hash, __FILE__, line,
		     "table unchanged", (long long)now.entries, (long long)before.entries);
	check_record(pool_stats().in_use == pages, __FILE__, line, "no page leaked",
		     (long long)pool_stats().in_use, (long long)pages);
}

#define SAME(pgt, before, pages) same(pgt, before, pages, __LINE__)

static uint64_t leaf(struct kvm_pgtable *pgt, uint64_t va, int8_t *level)
{
	kvm_pte_t pte = 0xdead;

	CHECK_EQ(pgw_hyp_get_leaf(pgt, va, &pte, level), 0);
	return pte;
}

static void test_init(void)
{
	struct kvm_pgtable pgt;

	CHECK_EQ(pgw_hyp_set_tlb_ops(NULL), 0);
	/* No TLB maintenance registered: no table. */
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 39, &host_mm_ops), -PGW_EINVAL);
	struct pgw_hyp_tlb_ops partial = tlb_ops;
	partial.publish = NULL;
	CHECK_EQ(pgw_hyp_set_tlb_ops(&partial), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 39, &host_mm_ops), -PGW_EINVAL);
	CHECK_EQ(pgw_hyp_set_tlb_ops(&tlb_ops), 0);

	CHECK_EQ(kvm_pgtable_hyp_init(NULL, 39, &host_mm_ops), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 39, NULL), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 24, &host_mm_ops), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 49, &host_mm_ops), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 0xffffffffu, &host_mm_ops), -PGW_EINVAL);
	CHECK_EQ(pool_stats().in_use, 0);

	pool_set_budget(0);
	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 39, &host_mm_ops), -PGW_ENOMEM);
	pool_set_budget(-1);

	/* Start levels as the kernel computes them. */
	const struct { uint32_t va; int8_t start; } levels[] = {
		{ 48, 0 }, { 40, 0 }, { 39, 1 }, { 32, 1 }, { 30, 2 }, { 25, 2 },
	};
	for (unsigned i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		CHECK_EQ(kvm_pgtable_hyp_init(&pgt, levels[i].va, &host_mm_ops), 0);
		CHECK_EQ(pgt.start_level, levels[i].start);
		CHECK_EQ(pgt.ia_bits, levels[i].va);
		CHECK(pgt.mmu == NULL);
		CHECK_EQ(pool_stats().in_use, 1);
		kvm_pgtable_hyp_destroy(&pgt);
		CHECK(pgt.pgd == NULL);
		CHECK_EQ(pool_stats().in_use, 0);
	}
}

static void test_map(void)
{
	struct kvm_pgtable pgt;
	int8_t level;
	uint64_t pte;

	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 48, &host_mm_ops), 0);
	unsigned long publishes = tlb.publish;
	/* 1 GiB + 2 MiB + 4 KiB of RW data, code, a device page. */
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, SZ_1G, SZ_1G + SZ_2M + PAGE_SIZE, 0x100000000ull, R | W), 0);
	CHECK(tlb.publish > publishes);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, CODE_VA, SZ_2M, 0x40200000, R | X), 0);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, 0x09000000, PAGE_SIZE, 0x09000000, R | W | DEV), 0);

	pte = leaf(&pgt, SZ_1G + 0x1234, &level);
	CHECK_EQ(level, 1);
	CHECK_EQ(pte & OA_MASK, 0x100000000ull);
	CHECK_EQ(pte & 3, 1); /* block */
	CHECK_EQ((pte >> 6) & 3, 1); /* AP: read-write */
	CHECK((pte >> 54) & 1); /* XN */
	CHECK_EQ(kvm_pgtable_hyp_pte_prot(pte), R | W);
	leaf(&pgt, 2 * SZ_1G, &level);
	CHECK_EQ(level, 2);
	pte = leaf(&pgt, 2 * SZ_1G + SZ_2M, &level);
	CHECK_EQ(level, 3);
	CHECK_EQ(pte & 3, 3); /* page */
	pte = leaf(&pgt, 2 * SZ_1G + SZ_2M + PAGE_SIZE, &level);
	CHECK_EQ(pte, 0);
	CHECK_EQ(level, 3);

	pte = leaf(&pgt, CODE_VA + 0x100000, &level);
	CHECK_EQ(level, 2);
	CHECK_EQ((pte >> 6) & 3, 3); /* AP: read-only */
	CHECK(!((pte >> 54) & 1));
	CHECK_EQ(kvm_pgtable_hyp_pte_prot(pte), R | X);
	pte = leaf(&pgt, 0x09000000, &level);
	CHECK_EQ((pte >> 2) & 7, 4); /* AttrIndx MT_DEVICE_nGnRE */
	/* The kernel reports no memory type. */
	CHECK_EQ(kvm_pgtable_hyp_pte_prot(pte), R | W);
	CHECK_EQ(kvm_pgtable_hyp_pte_prot(0), 0);
	CHECK_EQ(kvm_pgtable_hyp_pte_prot(KVM_PGTABLE_PROT_SW1), KVM_PGTABLE_PROT_SW1);

	/* The kernel's rounding: the offset of addr ignored, size rounded up,
	 * phys rounded down. */
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, 0x5800, 0x10, 0x7000123, R), 0);
	pte = leaf(&pgt, 0x5000, &level);
	CHECK_EQ(pte & OA_MASK, 0x7000000ull);
	/* A zero size at an aligned address maps nothing. */
	struct print before = fingerprint(&pgt);
	unsigned long pages = pool_stats().in_use;
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, 0x8000, 0, 0x8000, R), 0);
	SAME(&pgt, before, pages);
	/* The same map again changes nothing. */
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, CODE_VA, SZ_2M, 0x40200000, R | X), 0);
	SAME(&pgt, before, pages);

	kvm_pgtable_hyp_destroy(&pgt);
	CHECK_EQ(pool_stats().in_use, 0);
	CHECK_EQ(pool_stats().double_frees, 0);
}

static void test_bad_input(void)
{
	struct kvm_pgtable pgt;
	struct vm vm;

	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 39, &host_mm_ops), 0);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, 0, SZ_2M, 0x100000000ull, R | W), 0);
	struct print before = fingerprint(&pgt);
	unsigned long pages = pool_stats().in_use;

	const struct { uint64_t addr, size, phys, prot; int err; } bad[] = {
		{ SZ_2M, PAGE_SIZE, 0, R | W | X, -PGW_EINVAL },        /* W^X */
		{ SZ_2M, PAGE_SIZE, 0, W, -PGW_EINVAL },                /* no R */
		{ SZ_2M, PAGE_SIZE, 0, R | X | DEV, -PGW_EINVAL },      /* executable device */
		{ 1ull << 39, PAGE_SIZE, 0, R, -PGW_ERANGE },           /* beyond va_bits */
		{ (1ull << 39) - PAGE_SIZE, 2 * PAGE_SIZE, 0, R, -PGW_ERANGE },
		{ UINT64_MAX - 10, 20, 0, R, -PGW_ERANGE },             /* wraps */
		{ SZ_2M, PAGE_SIZE, 1ull << 48, R, -PGW_ERANGE },       /* output too large */
		{ 0, SZ_2M, 0x200000000ull, R | W, -PGW_EEXIST },       /* another mapping */
		{ 0, PAGE_SIZE, 0x100000000ull, R | W, -PGW_EEXIST },   /* a page in the block */
		{ 0, SZ_2M, 0x100000000ull, R, -PGW_EEXIST },           /* other permissions */
		{ SZ_2M - PAGE_SIZE, 2 * PAGE_SIZE, 0x1000, R, -PGW_EEXIST },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(kvm_pgtable_hyp_map(&pgt, bad[i].addr, bad[i].size, bad[i].phys, bad[i].prot),
			 bad[i].err);
		SAME(&pgt, before, pages);
	}
	/* Bits 6.12 does not define are dropped, as the kernel does. */
	kvm_pte_t leaf = 0;
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, SZ_2M, PAGE_SIZE, 0, R | 1ull << 40), 0);
	CHECK_EQ(pgw_hyp_get_leaf(&pgt, SZ_2M, &leaf, NULL), 0);
	CHECK_EQ(kvm_pgtable_hyp_pte_prot(leaf), R);
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, SZ_2M, PAGE_SIZE), PAGE_SIZE);
	SAME(&pgt, before, pages);
	CHECK_EQ(kvm_pgtable_hyp_map(NULL, 0, PAGE_SIZE, 0, R), -PGW_EFAULT);
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, 1ull << 39, PAGE_SIZE), 0);
	CHECK_EQ(kvm_pgtable_hyp_unmap(NULL, 0, PAGE_SIZE), 0);
	CHECK_EQ(pgw_hyp_get_leaf(&pgt, 1ull << 39, NULL, NULL), -PGW_ERANGE);
	SAME(&pgt, before, pages);

	/* Out of memory: nothing half-built is left. */
	pool_set_budget(1);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, SZ_1G, PAGE_SIZE, 0, R), -PGW_ENOMEM);
	pool_set_budget(-1);
	SAME(&pgt, before, pages);

	/* A hyp table is no stage-2 table, and the reverse. */
	CHECK(kvm_pgtable_stage2_map(&pgt, SZ_2M, PAGE_SIZE, 0, R, NULL, 0) != 0);
	SAME(&pgt, before, pages);
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	CHECK_EQ(kvm_pgtable_hyp_map(&vm.pgt, 0, PAGE_SIZE, 0, R), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_hyp_unmap(&vm.pgt, 0, PAGE_SIZE), 0);
	kvm_pgtable_hyp_destroy(&vm.pgt);
	CHECK(vm.pgt.pgd != NULL);
	kvm_pgtable_stage2_destroy(&vm.pgt);

	/* Without TLB maintenance nothing runs; with it back, all is there. */
	CHECK_EQ(pgw_hyp_set_tlb_ops(NULL), 0);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, SZ_2M, PAGE_SIZE, 0, R), -PGW_EINVAL);
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, 0, SZ_2M), 0);
	CHECK_EQ(pgw_hyp_set_tlb_ops(&tlb_ops), 0);
	SAME(&pgt, before, pages);

	/* Without page_count, unmap does nothing, as in the kernel. */
	struct kvm_pgtable_mm_ops no_count = host_mm_ops;
	struct kvm_pgtable copy = pgt;
	no_count.page_count = NULL;
	copy.mm_ops = &no_count;
	CHECK_EQ(kvm_pgtable_hyp_unmap(&copy, 0, SZ_2M), 0);
	SAME(&pgt, before, pages);

	kvm_pgtable_hyp_destroy(&pgt);
	CHECK_EQ(pool_stats().in_use, 0);
	/* Destroyed: every call refuses it. */
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, 0, PAGE_SIZE, 0, R), -PGW_EINVAL);
	kvm_pgtable_hyp_destroy(&pgt);
}

static void test_unmap(void)
{
	struct kvm_pgtable pgt;
	int8_t level;

	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 39, &host_mm_ops), 0);
	/* Two pages, a hole, a page; then a 2 MiB block. */
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, 0, 2 * PAGE_SIZE, 0x10000000, R | W), 0);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, 3 * PAGE_SIZE, PAGE_SIZE, 0x10003000, R | W), 0);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, SZ_2M, SZ_2M, 0x20000000, R), 0);
	unsigned long pages = pool_stats().in_use;
	CHECK_EQ(pages, 3); /* root, level 2, level 3 */

	unsigned long flushes = tlb.flush_va;
	/* Stops at the hole after two pages. */
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, 0, 4 * PAGE_SIZE), 2 * PAGE_SIZE);
	CHECK_EQ(tlb.flush_va - flushes, 2);
	CHECK_EQ(tlb.last_va, PAGE_SIZE);
	CHECK_EQ(tlb.last_level, 3);
	CHECK(leaf(&pgt, 3 * PAGE_SIZE, &level) & 1);

	/* A block that extends past the range, or before it, stays. */
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, SZ_2M, PAGE_SIZE), 0);
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, SZ_2M + PAGE_SIZE, SZ_2M), 0);
	CHECK(leaf(&pgt, SZ_2M, &level) & 1);
	CHECK_EQ(level, 2);

	/* The last page: its level-3 table empties and goes. */
	unsigned long walks = tlb.flush_va_walks;
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, 3 * PAGE_SIZE, PAGE_SIZE), PAGE_SIZE);
	CHECK_EQ(tlb.flush_va_walks - walks, 1);
	CHECK_EQ(pool_stats().in_use, pages - 1);
	leaf(&pgt, 0, &level);
	CHECK_EQ(level, 2);

	/* The block, whole: then the level-2 table goes too. */
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, SZ_2M, SZ_2M), SZ_2M);
	CHECK_EQ(pool_stats().in_use, 1);
	struct print empty = fingerprint(&pgt);
	CHECK_EQ(empty.entries, 0);

	kvm_pgtable_hyp_destroy(&pgt);
	CHECK_EQ(pool_stats().in_use, 0);
	CHECK_EQ(pool_stats().double_frees, 0);
}

/* Counts the visits of a walk; answers `answer` on the first leaf. */
struct visits {
	unsigned leaves, tables, valid;
	int answer;
	struct kvm_pgtable_mm_ops *mm_ops;
	uint64_t start, end;
};

static int count_visit(const struct kvm_pgtable_visit_ctx *ctx, kvm_pgtable_walk_flags visit)
{
	struct visits *v = ctx->arg;

	CHECK(ctx->mm_ops == v->mm_ops);
	CHECK_EQ(ctx->start, v->start);
	CHECK_EQ(ctx->end, v->end);
	CHECK_EQ(*ctx->ptep, ctx->old);
	if (visit == KVM_PGTABLE_WALK_LEAF) {
		v->valid += ctx->old & 1;
		if (v->leaves++ == 0)
			return v->answer;
	} else {
		v->tables++;
	}
	return 0;
}

/* The kernel's generic walker serves hyp tables too (pKVM reads its own
 * table with kvm_pgtable_get_leaf and fixes it up with kvm_pgtable_walk):
 * so do pgwalk's, on a table whose mmu is NULL. */
static void test_generic_walkers(void)
{
	struct kvm_pgtable pgt;
	kvm_pte_t pte = 0;
	int8_t level = -2;

	CHECK_EQ(kvm_pgtable_hyp_init(&pgt, 39, &host_mm_ops), 0);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, SZ_2M, 3 * PAGE_SIZE, 0x30000000, R), 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt, SZ_2M + PAGE_SIZE, &pte, &level), 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(pte & OA_MASK, 0x30001000ull);
	CHECK_EQ(kvm_pgtable_hyp_pte_prot(pte), R);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt, 1ull << 39, &pte, &level), -PGW_ERANGE);

	struct visits v = { .mm_ops = &host_mm_ops, .start = SZ_2M, .end = SZ_2M + SZ_2M };
	struct kvm_pgtable_walker w = {
		.cb = count_visit,
		.arg = &v,
		.flags = KVM_PGTABLE_WALK_LEAF | KVM_PGTABLE_WALK_TABLE_PRE,
	};
	CHECK_EQ(kvm_pgtable_walk(&pgt, SZ_2M, SZ_2M, &w), 0);
	CHECK_EQ(v.leaves, 512);
	CHECK_EQ(v.valid, 3);
	CHECK_EQ(v.tables, 2); /* the level-1 and level-2 tables above the pages */
	/* -EAGAIN goes on, unless HANDLE_FAULT asks for it back. */
	memset(&v.leaves, 0, 3 * sizeof(unsigned));
	v.answer = -EAGAIN;
	CHECK_EQ(kvm_pgtable_walk(&pgt, SZ_2M, SZ_2M, &w), 0);
	CHECK_EQ(v.leaves, 512);
	memset(&v.leaves, 0, 3 * sizeof(unsigned));
	w.flags = KVM_PGTABLE_WALK_LEAF | KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT;
	CHECK_EQ(kvm_pgtable_walk(&pgt, SZ_2M, SZ_2M, &w), -EAGAIN);
	CHECK_EQ(v.leaves, 1);
	CHECK_EQ(kvm_pgtable_walk(&pgt, 1ull << 39, PAGE_SIZE, &w), -PGW_ERANGE);

	/* An unaligned address: the range is ALIGN_DOWN(addr) + size rounded
	 * up, so 0x900 bytes from the middle of a page are that one page. */
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, SZ_1G + 0x800, 0x900, 0x40000000, R), 0);
	CHECK(leaf(&pgt, SZ_1G, &level) & 1);
	CHECK_EQ(leaf(&pgt, SZ_1G + PAGE_SIZE, &level), 0);
	CHECK_EQ(kvm_pgtable_hyp_unmap(&pgt, SZ_1G + 0x800, 0x900), PAGE_SIZE);
	CHECK_EQ(kvm_pgtable_hyp_map(&pgt, SZ_1G + 0x800, 0, 0x40000000, R), 0);
	CHECK_EQ(leaf(&pgt, SZ_1G, &level), 0);

	kvm_pgtable_hyp_destroy(&pgt);
	CHECK_EQ(pool_stats().in_use, 0);
}

int main(void)
{
	pool_reset();
	test_init();
	test_map();
	test_bad_input();
	test_unmap();
	test_generic_walkers();
	return test_summary("test_hyp");
}

/*
 * A host may leave out the memory callbacks of the operations it never
 * asks for, as the kernel's own hosts do: pKVM's host stage-2 has no
 * free_pages_exact (it is never destroyed), and pKVM's guest tables, which
 * 6.12 only initialises and destroys, no free_unlinked_table. Each call
 * checks, before it changes anything, the callbacks its operation may
 * call: with exactly those it works; with one of them missing it returns
 * -PGW_EINVAL and the table and the pool are as they were.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "host.h"

#define GUEST_PA 0x100000000ull
#define IPA 0x40000000ull
#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)
#define SZ_2M (2ull << 20)

/* The optional callbacks: phys_to_virt and virt_to_phys, which every call
 * makes, are always kept. */
enum {
	ZALLOC_PAGE = 1u << 0,
	ZALLOC_PAGES_EXACT = 1u << 1,
	FREE_PAGES_EXACT = 1u << 2,
	FREE_UNLINKED_TABLE = 1u << 3,
	GET_PAGE = 1u << 4,
	PUT_PAGE = 1u << 5,
	PAGE_COUNT = 1u << 6,
	CACHES = 1u << 7, /* dcache_clean_inval_poc and icache_inval_pou */
	ALL = (1u << 8) - 1,
};

/* What each operation may call besides the two conversions. */
#define NEEDS_MAP (ZALLOC_PAGE | GET_PAGE | PUT_PAGE | FREE_UNLINKED_TABLE)
#define NEEDS_UNMAP (PUT_PAGE | PAGE_COUNT)
#define NEEDS_SPLIT (ZALLOC_PAGE | GET_PAGE | PUT_PAGE)
#define NEEDS_DESTROY (PUT_PAGE | FREE_PAGES_EXACT)
#define NEEDS_FREE_UNLINKED PUT_PAGE
#define NEEDS_INIT ZALLOC_PAGES_EXACT

/* The callbacks the table is initialised with and every call reads; one
 * structure for the whole test, as the library binds a format to it. */
static struct kvm_pgtable_mm_ops ops;

static void keep(unsigned mask)
{
	ops = host_mm_ops;
	if (!(mask & ZALLOC_PAGE))
		ops.zalloc_page = NULL;
	if (!(mask & ZALLOC_PAGES_EXACT))
		ops.zalloc_pages_exact = NULL;
	if (!(mask & FREE_PAGES_EXACT))
		ops.free_pages_exact = NULL;
	if (!(mask & FREE_UNLINKED_TABLE))
		ops.free_unlinked_table = NULL;
	if (!(mask & GET_PAGE))
		ops.get_page = NULL;
	if (!(mask & PUT_PAGE))
		ops.put_page = NULL;
	if (!(mask & PAGE_COUNT))
		ops.page_count = NULL;
	if (!(mask & CACHES)) {
		ops.dcache_clean_inval_poc = NULL;
		ops.icache_inval_pou = NULL;
	}
}

/* The table's fingerprint, taken with every callback set. */
static struct table_print fingerprint(struct vm *vm)
{
	struct kvm_pgtable_mm_ops saved = ops;
	struct table_print p;

	keep(ALL);
	p = table_fingerprint(&vm->pgt);
	ops = saved;
	return p;
}

static void fresh(struct vm *vm)
{
	/* vm_init fills in the MMU; the table is made again with `ops`. */
	CHECK_EQ(vm_init(vm, VTCR_IPA40), 0);
	kvm_pgtable_stage2_destroy(&vm->pgt);
	keep(ALL);
	CHECK_EQ(kvm_pgtable_stage2_init(&vm->pgt, &vm->mmu, &ops), 0);
}

static void done(struct vm *vm, unsigned long pages)
{
	keep(ALL);
	kvm_pgtable_stage2_destroy(&vm->pgt);
	pool_quiesce();
	CHECK_EQ(pool_stats().in_use, pages);
	CHECK_EQ(pool_stats().double_frees, 0);
	CHECK_EQ(pool_stats().bad_frees, 0);
}

/* An operation on a table that `prepare` set up with every callback. */
struct op {
	const char *name;
	unsigned needs;
	void (*prepare)(struct vm *vm);
	int (*run)(struct vm *vm);
};

static void nothing(struct vm *vm)
{
	(void)vm;
}

static void pages_and_a_block(struct vm *vm)
{
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, IPA, PAGE_SIZE, GUEST_PA, RW, vm_mc(vm), 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, IPA + SZ_2M, SZ_2M, GUEST_PA, RW, vm_mc(vm), 0),
		 0);
}

static void a_block(struct vm *vm)
{
	CHECK_EQ(kvm_pgtable_stage2_map(&vm->pgt, IPA, SZ_2M, GUEST_PA, RW, vm_mc(vm), 0), 0);
}

/* A page (tables allocated and counted), then a block over it (the table
 * replaced and handed to free_unlinked_table). */
static int map(struct vm *vm)
{
	int r = kvm_pgtable_stage2_map(&vm->pgt, IPA, PAGE_SIZE, GUEST_PA, RW, vm_mc(vm), 0);

	return r ? r : kvm_pgtable_stage2_map(&vm->pgt, IPA, SZ_2M, GUEST_PA, RW, vm_mc(vm), 0);
}

static int set_owner(struct vm *vm)
{
	return kvm_pgtable_stage2_set_owner(&vm->pgt, IPA + 8 * PAGE_SIZE, PAGE_SIZE, vm_mc(vm), 1);
}

static int fault_map(struct vm *vm)
{
	pgw_fault_outcome o;

	return pgw_stage2_fault_map(&vm->pgt, IPA, PAGE_SIZE, GUEST_PA, RW, vm_mc(vm), 0, &o);
}

static int bind(struct vm *vm)
{
	struct pgw_bound_stage2 b;

	return pgw_bind_stage2(&vm->pgt, &b);
}

static int unmap(struct vm *vm)
{
	return kvm_pgtable_stage2_unmap(&vm->pgt, IPA, 2 * SZ_2M);
}

static int split(struct vm *vm)
{
	return kvm_pgtable_stage2_split(&vm->pgt, IPA, SZ_2M, vm_mc(vm));
}

static int destroy(struct vm *vm)
{
	return pgw_stage2_destroy(&vm->pgt);
}

static const struct op ops_under_test[] = {
	{ "map", NEEDS_MAP, nothing, map },
	{ "set_owner", NEEDS_MAP, nothing, set_owner },
	{ "pgw_stage2_fault_map", NEEDS_MAP, nothing, fault_map },
	{ "pgw_bind_stage2", NEEDS_MAP, nothing, bind },
	{ "unmap", NEEDS_UNMAP, pages_and_a_block, unmap },
	{ "split", NEEDS_SPLIT, a_block, split },
	{ "destroy", NEEDS_DESTROY, pages_and_a_block, destroy },
};

/* With one of its callbacks missing, each operation refuses and changes
 * nothing; with exactly its callbacks, it works. */
static void each_operation(void)
{
	unsigned long pages = pool_stats().in_use;
	size_t i;

	for (i = 0; i < sizeof(ops_under_test) / sizeof(ops_under_test[0]); i++) {
		const struct op *op = &ops_under_test[i];
		unsigned bit;
		struct vm vm;

		fresh(&vm);
		op->prepare(&vm);
		for (bit = 1; bit & ALL; bit <<= 1) {
			struct table_print before;
			unsigned long in_use;

			if (!(op->needs & bit))
				continue;
			before = fingerprint(&vm);
			in_use = pool_stats().in_use;
			keep(op->needs & ~bit);
			if (op->run(&vm) != -PGW_EINVAL) {
				fprintf(stderr, "%s without callback bit %#x: not refused\n",
					op->name, bit);
				CHECK(0);
			}
			CHECK_EQ(fingerprint(&vm).hash, before.hash);
			CHECK_EQ(pool_stats().in_use, in_use);
		}
		keep(op->needs);
		if (op->run(&vm) != 0) {
			fprintf(stderr, "%s with only its own callbacks: failed\n", op->name);
			CHECK(0);
		}
		if (op->run == destroy)
			CHECK(vm.pgt.pgd == NULL);
		done(&vm, pages);
	}
}

static int count_visit(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	(void)visit;
	++*(unsigned long *)ctx->arg;
	return 0;
}

/* Walks and attribute changes need the two conversions only. */
static void walks_and_attributes(void)
{
	unsigned long pages = pool_stats().in_use;
	unsigned long leaves = 0;
	struct kvm_pgtable_walker w = {
		.cb = count_visit,
		.arg = &leaves,
		.flags = KVM_PGTABLE_WALK_LEAF,
	};
	struct table_print before;
	kvm_pte_t pte = 0;
	int8_t level = 0;
	struct vm vm;

	fresh(&vm);
	pages_and_a_block(&vm);
	before = fingerprint(&vm);
	keep(0);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, &pte, &level), 0);
	CHECK(pte != 0);
	CHECK_EQ(level, 3);
	CHECK_EQ(kvm_pgtable_walk(&vm.pgt, IPA, 2 * SZ_2M, &w), 0);
	CHECK(leaves > 0);
	CHECK_EQ(kvm_pgtable_stage2_wrprotect(&vm.pgt, IPA, 2 * SZ_2M), 0);
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm.pgt, IPA, RW), 0);
	CHECK(kvm_pgtable_stage2_test_clear_young(&vm.pgt, IPA, 2 * SZ_2M, true));
	CHECK(kvm_pgtable_stage2_mkyoung(&vm.pgt, IPA) != 0);
	CHECK_EQ(kvm_pgtable_stage2_flush(&vm.pgt, IPA, 2 * SZ_2M), 0);
	CHECK(fingerprint(&vm).hash != before.hash); /* the block is read-only now */

	/* Without either conversion, nothing runs. */
	keep(ALL);
	ops.phys_to_virt = NULL;
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA, NULL, NULL), -PGW_EINVAL);
	keep(ALL);
	ops.virt_to_phys = NULL;
	CHECK_EQ(kvm_pgtable_stage2_relax_perms(&vm.pgt, IPA + SZ_2M, RW), -PGW_EINVAL);
	done(&vm, pages);
}

/* Initialisation needs zalloc_pages_exact; freeing an unlinked table,
 * put_page. */
static void init_and_free_unlinked(void)
{
	unsigned long pages = pool_stats().in_use;
	unsigned long with_table;
	kvm_pte_t *t;
	struct vm vm;

	fresh(&vm);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	keep(ALL & ~NEEDS_INIT);
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &ops), -PGW_EINVAL);
	CHECK(vm.pgt.pgd == NULL);
	CHECK_EQ(pool_stats().in_use, pages);
	keep(NEEDS_INIT);
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &ops), 0);

	keep(NEEDS_SPLIT);
	t = kvm_pgtable_stage2_create_unlinked(&vm.pgt, GUEST_PA, 2, RW, vm_mc(&vm), false);
	CHECK(t != NULL && (intptr_t)t > 0);
	with_table = pool_stats().in_use;
	keep(0);
	kvm_pgtable_stage2_free_unlinked(&ops, t, 2);
	CHECK_EQ(pool_stats().in_use, with_table); /* refused: freed nothing */
	keep(NEEDS_FREE_UNLINKED);
	kvm_pgtable_stage2_free_unlinked(&ops, t, 2);
	CHECK_EQ(pool_stats().in_use, with_table - 1);
	done(&vm, pages);
}

/* The two pKVM hosts of 6.12, each through the operations it calls. */
static void pkvm_hosts(void)
{
	unsigned long pages = pool_stats().in_use;
	kvm_pte_t pte = 0;
	kvm_pte_t *t;
	struct vm vm;

	/* host_mmu.mm_ops: no free_pages_exact, no cache maintenance. */
	fresh(&vm);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	keep(ALL & ~(FREE_PAGES_EXACT | CACHES));
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &ops), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&vm.pgt, IPA, SZ_2M, IPA, RW, vm_mc(&vm), 0), 0);
	CHECK_EQ(kvm_pgtable_stage2_set_owner(&vm.pgt, IPA + PAGE_SIZE, PAGE_SIZE, vm_mc(&vm), 1),
		 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&vm.pgt, IPA + PAGE_SIZE, &pte, NULL), 0);
	CHECK(pte != 0 && !(pte & 1)); /* an annotation */
	CHECK_EQ(kvm_pgtable_stage2_unmap(&vm.pgt, IPA, SZ_2M), 0);
	t = kvm_pgtable_stage2_create_unlinked(&vm.pgt, IPA, 2, RW, vm_mc(&vm), false);
	CHECK(t != NULL && (intptr_t)t > 0);
	kvm_pgtable_stage2_free_unlinked(&ops, t, 2);
	/* ...and it cannot be destroyed: refused, not half done. */
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), -PGW_EINVAL);
	CHECK(vm.pgt.pgd != NULL);
	done(&vm, pages);

	/* A pKVM guest's vm->mm_ops: no free_unlinked_table. */
	fresh(&vm);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	keep(ALL & ~FREE_UNLINKED_TABLE);
	CHECK_EQ(kvm_pgtable_stage2_init(&vm.pgt, &vm.mmu, &ops), 0);
	CHECK_EQ(pgw_stage2_destroy(&vm.pgt), 0);
	CHECK_EQ(pool_stats().in_use, pages);
}

int main(void)
{
	struct vm vm;

	pool_reset();
	/* Binds host_mm_ops, through which the pool frees deferred tables. */
	CHECK_EQ(vm_init(&vm, VTCR_IPA40), 0);
	kvm_pgtable_stage2_destroy(&vm.pgt);
	each_operation();
	walks_and_attributes();
	init_and_free_unlinked();
	pkvm_hosts();
	return test_summary("test_mm_ops_subsets");
}

/*
 * A callback that calls back into the library on the table it is called
 * for (a visitor, an mm_ops callback, a TLB callback) gets -PGW_EDEADLK
 * from every function taking that table, and nothing changes. Without that
 * check, an unmap, a block map or a destroy from a visitor frees the table
 * pages the walker reads next.
 *
 * Table pages here are mappings of their own, made inaccessible when freed
 * (and never reused), so that the library -- which AddressSanitizer does not
 * instrument -- faults at once when it reads a freed page.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "host.h"

#define GUEST_PA 0x100000000ull
#define IPA 0x40000000ull /* four pages, in a level-3 table of their own */
#define OTHER_IPA 0x80000000ull
#define RW (KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W)
#define SZ_2M (2ull << 20)
#define LEAF KVM_PGTABLE_WALK_LEAF
#define SHARED KVM_PGTABLE_WALK_SHARED
#define FAULT (KVM_PGTABLE_WALK_SHARED | KVM_PGTABLE_WALK_HANDLE_FAULT)

/* --- A heap host: one malloc'ed page per table page. -------------------- */

#define SLOTS 512
static struct {
	void *page;
	int refs;
} slots[SLOTS];
static long live, double_frees;
static struct {
	void *table;
	int8_t level;
} deferred[64];
static int ndeferred;

static size_t slot_size[SLOTS];

/* The slot of the page holding `p`: the reference-count callbacks get the
 * address of an entry in the page, as from the kernel's walker. */
static int slot_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;

	for (int i = 0; i < SLOTS; i++) {
		uintptr_t page = (uintptr_t)slots[i].page;

		if (page && a >= page && a - page < slot_size[i])
			return i;
	}
	return -1;
}

/* `size` bytes aligned to `size`, zeroed (fresh anonymous memory). */
static void *map_aligned(size_t size)
{
	unsigned char *p = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t start, end;

	if (p == MAP_FAILED)
		return NULL;
	start = ((uintptr_t)p + size - 1) & ~(uintptr_t)(size - 1);
	end = start + size;
	if (start > (uintptr_t)p)
		munmap(p, start - (uintptr_t)p);
	if ((uintptr_t)p + 2 * size > end)
		munmap((void *)end, (uintptr_t)p + 2 * size - end);
	return (void *)start;
}

static void *heap_alloc(size_t size)
{
	for (int i = 0; i < SLOTS; i++) {
		if (slots[i].page)
			continue;
		slots[i].page = map_aligned(size);
		if (!slots[i].page)
			return NULL;
		slot_size[i] = size;
		slots[i].refs = 1;
		live++;
		return slots[i].page;
	}
	return NULL;
}

/* Freed pages stay reserved and inaccessible: a later read faults. */
static void heap_release(int i)
{
	mprotect(slots[i].page, slot_size[i], PROT_NONE);
	slots[i].page = NULL;
	live--;
}

/* Set by a test: called once from zalloc_page, then cleared. */
static void (*on_alloc)(void);

/* The memory cache maps take table pages from: Linux 6.12 allocates none
 * without one. This host's zalloc_page does not count what it takes. */
static struct kvm_mmu_memory_cache cache;

static void *heap_zalloc_page(void *mc)
{
	void (*hook)(void) = on_alloc;

	(void)mc;
	on_alloc = NULL;
	if (hook)
		hook();
	return heap_alloc(4096);
}

static void *heap_zalloc_pages_exact(size_t size) { return heap_alloc(size); }

static void heap_free_pages_exact(void *p, size_t size)
{
	int i = slot_of(p);

	(void)size;
	if (i < 0) {
		double_frees++;
		return;
	}
	heap_release(i);
}

static void heap_free_unlinked_table(void *p, int8_t level)
{
	deferred[ndeferred].table = p;
	deferred[ndeferred].level = level;
	ndeferred++;
}

static void heap_get_page(void *p)
{
	int i = slot_of(p);

	if (i >= 0)
		slots[i].refs++;
}

static void heap_put_page(void *p)
{
	int i = slot_of(p);

	if (i < 0) {
		double_frees++;
		return;
	}
	if (--slots[i].refs == 0)
		heap_release(i);
}

static int heap_page_count(void *p)
{
	int i = slot_of(p);

	return i < 0 ? 0 : slots[i].refs;
}

static void *heap_phys_to_virt(uint64_t pa) { return (void *)(uintptr_t)pa; }
static uint64_t heap_virt_to_phys(void *va) { return (uint64_t)(uintptr_t)va; }

static struct kvm_pgtable_mm_ops heap_ops = {
	.zalloc_page = heap_zalloc_page,
	.zalloc_pages_exact = heap_zalloc_pages_exact,
	.free_pages_exact = heap_free_pages_exact,
	.free_unlinked_table = heap_free_unlinked_table,
	.get_page = heap_get_page,
	.put_page = heap_put_page,
	.page_count = heap_page_count,
	.phys_to_virt = heap_phys_to_virt,
	.virt_to_phys = heap_virt_to_phys,
};

static void quiesce(void)
{
	for (int i = 0; i < ndeferred; i++)
		kvm_pgtable_stage2_free_unlinked(&heap_ops, deferred[i].table, deferred[i].level);
	ndeferred = 0;
}

/* Set by a test: called once from tlb_flush_vmid_ipa, then cleared. */
static void (*on_tlbi)(void);

static void tlbi_ipa(struct kvm_s2_mmu *mmu, uint64_t ipa, int level)
{
	void (*hook)(void) = on_tlbi;

	(void)mmu;
	(void)ipa;
	(void)level;
	on_tlbi = NULL;
	if (hook)
		hook();
}

static void tlbi_range(struct kvm_s2_mmu *mmu, uint64_t a, uint64_t s)
{
	(void)mmu;
	(void)a;
	(void)s;
}

static void tlbi_vmid(struct kvm_s2_mmu *mmu) { (void)mmu; }

static struct kvm_s2_mmu mmu_a, mmu_b;
static struct kvm_pgtable pgt_a, pgt_b;

static int init(struct kvm_pgtable *pgt, struct kvm_s2_mmu *mmu)
{
	memset(mmu, 0, sizeof(*mmu));
	mmu->vtcr = VTCR_IPA40;
	mmu->tlb_flush_vmid_ipa = tlbi_ipa;
	mmu->tlb_flush_vmid_range = tlbi_range;
	mmu->tlb_flush_vmid = tlbi_vmid;
	return kvm_pgtable_stage2_init(pgt, mmu, &heap_ops);
}

/* --- What "nothing changed" means: the same leaves and table pages. ------ */

/* --- Every function that takes the table, called on pgt_a from inside. --- */

static int nop_visit(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	(void)ctx;
	(void)visit;
	return 0;
}

static int nop_typed(struct pgw_visit *v)
{
	(void)v;
	return 0;
}

static int no_run(const struct pgw_leaf_run *run)
{
	(void)run;
	return 0;
}

/* How many of the nested calls returned -PGW_EDEADLK, and how many were made. */
static unsigned refused, attempted;

static void expect_deadlk(int r, int line)
{
	attempted++;
	if (r == -PGW_EDEADLK)
		refused++;
	else
		check_record(0, __FILE__, line, "nested call refused with -PGW_EDEADLK", r,
			     -PGW_EDEADLK);
}

#define DEADLK(call) expect_deadlk((call), __LINE__)

/* pgt_a bound, for the pgw_bound_* calls (main binds it). */
static struct pgw_bound_stage2 bound_a;

static void call_everything(struct kvm_pgtable *pgt)
{
	struct pgw_bound_stage2 rebound;
	struct kvm_pgtable_walker w = { .cb = nop_visit, .flags = LEAF };
	struct pgw_walker tw = { .cb = nop_typed, .flags = LEAF, .capability = PGW_SHARED };
	struct pgw_walk_result res;
	pgw_fault_outcome o = 0;
	kvm_pte_t pte = 0xdead, *t = NULL;
	int8_t level = 99;
	bool b = true;
	/* A copy of the structure: the same table. */
	struct kvm_pgtable copy = *pgt;

	DEADLK(kvm_pgtable_walk(pgt, IPA, PAGE_SIZE, &w));
	DEADLK(kvm_pgtable_walk(&copy, IPA, PAGE_SIZE, &w));
	DEADLK(pgw_walk(pgt, IPA, PAGE_SIZE, &tw, &res));
	DEADLK(__kvm_pgtable_stage2_init(pgt, pgt->mmu, &heap_ops, 0, NULL));
	DEADLK(kvm_pgtable_stage2_init(pgt, pgt->mmu, &heap_ops));
	DEADLK(kvm_pgtable_stage2_map(pgt, IPA, SZ_2M, GUEST_PA, RW, &cache, 0));
	DEADLK(kvm_pgtable_stage2_map(pgt, OTHER_IPA, PAGE_SIZE, GUEST_PA, RW, &cache, FAULT));
	DEADLK(kvm_pgtable_stage2_set_owner(pgt, IPA, PAGE_SIZE, &cache, 1));
	DEADLK(kvm_pgtable_stage2_unmap(pgt, IPA, 4 * PAGE_SIZE));
	DEADLK(kvm_pgtable_stage2_unmap(&copy, IPA, 4 * PAGE_SIZE));
	DEADLK(kvm_pgtable_stage2_wrprotect(pgt, IPA, PAGE_SIZE));
	DEADLK(kvm_pgtable_stage2_relax_perms(pgt, IPA, KVM_PGTABLE_PROT_X));
	DEADLK(kvm_pgtable_stage2_relax_perms(&copy, IPA, KVM_PGTABLE_PROT_X));
	DEADLK(kvm_pgtable_stage2_flush(pgt, IPA, PAGE_SIZE));
	DEADLK(kvm_pgtable_stage2_split(pgt, IPA, SZ_2M, NULL));
	DEADLK((int)(intptr_t)kvm_pgtable_stage2_create_unlinked(pgt, GUEST_PA, 2, RW, NULL, false));
	DEADLK(pgw_stage2_create_unlinked(pgt, GUEST_PA, 2, RW, NULL, false, &t));
	DEADLK(kvm_pgtable_get_leaf(pgt, IPA, &pte, &level));
	DEADLK(pgw_stage2_fault_map(pgt, OTHER_IPA, PAGE_SIZE, GUEST_PA, RW, NULL, 0, &o));
	DEADLK(pgw_stage2_fault_relax_perms(pgt, IPA, KVM_PGTABLE_PROT_X, &o));
	DEADLK(pgw_stage2_fault_mkyoung(pgt, IPA, &o));
	DEADLK(pgw_stage2_mkyoung(pgt, IPA, &b));
	DEADLK(pgw_stage2_test_clear_young(pgt, IPA, PAGE_SIZE, true, &b));
	DEADLK(pgw_stage2_wrprotect(pgt, IPA, PAGE_SIZE));
	DEADLK(pgw_walk_leaf_runs(pgt, IPA, PAGE_SIZE, no_run, NULL));
	DEADLK(pgw_bind_stage2(pgt, &rebound));
	DEADLK(pgw_bound_fault_map(&bound_a, OTHER_IPA, PAGE_SIZE, GUEST_PA, RW, NULL, 0, &o));
	DEADLK(pgw_bound_fault_relax_perms(&bound_a, IPA, KVM_PGTABLE_PROT_X, &o));
	DEADLK(pgw_bound_fault_mkyoung(&bound_a, IPA, &o));
	DEADLK(pgw_stage2_destroy(pgt));
	/* The functions that return no errno: they must change nothing, which
	 * the caller checks afterwards (the access flags, the table); mkyoung
	 * returns 0 for "no leaf", where the young page would give its pte. */
	CHECK_EQ(kvm_pgtable_stage2_mkyoung(pgt, IPA), 0);
	attempted++;
	CHECK(!kvm_pgtable_stage2_test_clear_young(pgt, IPA, 4 * PAGE_SIZE, true));
	attempted++;
	kvm_pgtable_stage2_destroy(pgt);
	attempted++;
	/* Out-values are untouched by a refused call. */
	CHECK_EQ(pte, 0xdead);
	CHECK_EQ(level, 99);
	CHECK(t == NULL);
	CHECK_EQ(o, 0);
	CHECK(b);
}

/* A visitor that makes the nested calls at its first visit. */
static int calls_back(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	unsigned *visits = ctx->arg;

	(void)visit;
	if ((*visits)++ == 0)
		call_everything(&pgt_a);
	return 0;
}

static int calls_back_typed(struct pgw_visit *v)
{
	unsigned *visits = v->arg;

	if ((*visits)++ == 0)
		call_everything(&pgt_a);
	return 0;
}

static int calls_back_runs(const struct pgw_leaf_run *run)
{
	unsigned *runs = run->arg;

	if ((*runs)++ == 0)
		call_everything(&pgt_a);
	return 0;
}

static void from_every_walker(void)
{
	static const uint32_t kinds[] = { LEAF, LEAF | SHARED, LEAF | FAULT };
	static const uint32_t caps[] = { PGW_EXCLUSIVE, PGW_SHARED, PGW_HANDLES_FAULT };
	struct table_print before = table_fingerprint(&pgt_a);
	long pages = live;

	for (unsigned i = 0; i < 3; i++) {
		unsigned visits = 0;
		struct kvm_pgtable_walker w = { .cb = calls_back, .arg = &visits, .flags = kinds[i] };

		refused = attempted = 0;
		CHECK_EQ(kvm_pgtable_walk(&pgt_a, IPA, 4 * PAGE_SIZE, &w), 0);
		CHECK_EQ(visits, 4);
		CHECK_EQ(refused, 30);
		CHECK_EQ(attempted, 33);
		CHECK(table_print_eq(table_fingerprint(&pgt_a), before));
		CHECK_EQ(live, pages);
	}
	for (unsigned i = 0; i < 3; i++) {
		unsigned visits = 0;
		struct pgw_walker w = {
			.cb = calls_back_typed, .arg = &visits, .flags = LEAF, .capability = caps[i],
		};
		struct pgw_walk_result res;

		refused = attempted = 0;
		CHECK_EQ(pgw_walk(&pgt_a, IPA, 4 * PAGE_SIZE, &w, &res), 0);
		CHECK_EQ(res.status, PGW_WALK_COMPLETED);
		CHECK_EQ(visits, 4);
		CHECK_EQ(refused, 30);
		CHECK(table_print_eq(table_fingerprint(&pgt_a), before));
		CHECK_EQ(live, pages);
	}
	{
		unsigned runs = 0;

		refused = attempted = 0;
		CHECK_EQ(pgw_walk_leaf_runs(&pgt_a, IPA, 4 * PAGE_SIZE, calls_back_runs, &runs), 0);
		CHECK_EQ(runs, 1);
		CHECK_EQ(refused, 30);
		CHECK_EQ(attempted, 33);
		CHECK(table_print_eq(table_fingerprint(&pgt_a), before));
		CHECK_EQ(live, pages);
	}
}

/* --- The use-after-free cases, each alone, as a visitor would do them. --- */

enum misdeed { UNMAP, MAP_BLOCK, DESTROY };

struct misdeed_arg {
	enum misdeed what;
	unsigned visits;
	int nested;
};

static int misbehaves(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	struct misdeed_arg *m = ctx->arg;

	(void)visit;
	if (m->visits++ != 0)
		return 0;
	switch (m->what) {
	case UNMAP:
		m->nested = kvm_pgtable_stage2_unmap(&pgt_a, IPA, 4 * PAGE_SIZE);
		break;
	case MAP_BLOCK:
		/* A block over the range being walked frees its level-3 table. */
		m->nested = kvm_pgtable_stage2_map(&pgt_a, IPA, SZ_2M, GUEST_PA, RW, &cache, 0);
		break;
	case DESTROY:
		kvm_pgtable_stage2_destroy(&pgt_a);
		m->nested = pgt_a.pgd ? -PGW_EDEADLK : 0;
		break;
	}
	return 0;
}

static void use_after_free_cases(void)
{
	static const enum misdeed all[] = { UNMAP, MAP_BLOCK, DESTROY };
	struct table_print before = table_fingerprint(&pgt_a);
	long pages = live;

	for (unsigned i = 0; i < 3; i++) {
		struct misdeed_arg m = { all[i], 0, 1 };
		struct kvm_pgtable_walker w = { .cb = misbehaves, .arg = &m, .flags = LEAF };

		CHECK_EQ(kvm_pgtable_walk(&pgt_a, IPA, 4 * PAGE_SIZE, &w), 0);
		CHECK_EQ(m.nested, -PGW_EDEADLK);
		CHECK_EQ(m.visits, 4);
		CHECK(pgt_a.pgd != NULL);
		CHECK(table_print_eq(table_fingerprint(&pgt_a), before));
		CHECK_EQ(live, pages);
	}
}

/* --- From the host's callbacks. ------------------------------------------ */

static int hook_result;
static kvm_pte_t hook_pte;

static void unmap_from_hook(void) { hook_result = kvm_pgtable_stage2_unmap(&pgt_a, IPA, 4 * PAGE_SIZE); }

static void get_leaf_from_hook(void)
{
	hook_result = kvm_pgtable_get_leaf(&pgt_a, IPA + PAGE_SIZE, &hook_pte, NULL);
}

static void from_callbacks(void)
{
	kvm_pte_t pte = 0;

	/* zalloc_page, during a map that needs a new table. */
	hook_result = 1;
	on_alloc = unmap_from_hook;
	CHECK_EQ(kvm_pgtable_stage2_map(&pgt_a, OTHER_IPA, PAGE_SIZE, GUEST_PA, RW, &cache, 0), 0);
	CHECK_EQ(hook_result, -PGW_EDEADLK);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt_a, IPA, &pte, NULL), 0);
	CHECK(pte & 1);

	/* tlb_flush_vmid_ipa, during the unmap of that page. */
	hook_result = 1;
	hook_pte = 0;
	on_tlbi = get_leaf_from_hook;
	CHECK_EQ(kvm_pgtable_stage2_unmap(&pgt_a, OTHER_IPA, PAGE_SIZE), 0);
	CHECK_EQ(hook_result, -PGW_EDEADLK);
	CHECK_EQ(hook_pte, 0);
	on_tlbi = NULL;
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt_a, OTHER_IPA, &pte, NULL), 0);
	CHECK_EQ(pte, 0);
}

/* --- What stays allowed. ------------------------------------------------- */

/* A visitor on table A may change table B. */
static int maps_on_b(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	int *r = ctx->arg;

	(void)visit;
	if (*r == 1)
		*r = kvm_pgtable_stage2_map(&pgt_b, ctx->addr, PAGE_SIZE, GUEST_PA, RW, &cache, 0);
	return 0;
}

static void another_table_is_fine(void)
{
	int r = 1;
	struct kvm_pgtable_walker w = { .cb = maps_on_b, .arg = &r, .flags = LEAF };
	kvm_pte_t pte = 0;

	CHECK_EQ(kvm_pgtable_walk(&pgt_a, IPA, PAGE_SIZE, &w), 0);
	CHECK_EQ(r, 0);
	CHECK_EQ(kvm_pgtable_get_leaf(&pgt_b, IPA, &pte, NULL), 0);
	CHECK(pte & 1);
}

/* Two shared walkers on one table at once, on two threads: thread 1's
 * visitor waits inside the walk until thread 2 has walked the same table. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int second_done, second_result = 1, second_leaf = 1;

static int waits_for_second(const struct kvm_pgtable_visit_ctx *ctx,
			    enum kvm_pgtable_walk_flags visit)
{
	(void)ctx;
	(void)visit;
	pthread_mutex_lock(&lock);
	while (!second_done)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return 0;
}

static void *first_walker(void *arg)
{
	struct kvm_pgtable_walker w = { .cb = waits_for_second, .flags = LEAF | SHARED };

	*(int *)arg = kvm_pgtable_walk(&pgt_a, IPA, PAGE_SIZE, &w);
	return NULL;
}

static void *second_walker(void *arg)
{
	struct kvm_pgtable_walker w = { .cb = nop_visit, .flags = LEAF | SHARED };
	kvm_pte_t pte;

	(void)arg;
	second_result = kvm_pgtable_walk(&pgt_a, IPA, 4 * PAGE_SIZE, &w);
	second_leaf = kvm_pgtable_get_leaf(&pgt_a, IPA, &pte, NULL);
	pthread_mutex_lock(&lock);
	second_done = 1;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void two_threads_one_table(void)
{
	pthread_t t1, t2;
	int first_result = 1;

	CHECK_EQ(pthread_create(&t1, NULL, first_walker, &first_result), 0);
	CHECK_EQ(pthread_create(&t2, NULL, second_walker, NULL), 0);
	pthread_join(t2, NULL);
	pthread_join(t1, NULL);
	CHECK_EQ(second_result, 0);
	CHECK_EQ(second_leaf, 0);
	CHECK_EQ(first_result, 0);
}

int main(void)
{
	CHECK_EQ(init(&pgt_a, &mmu_a), 0);
	CHECK_EQ(init(&pgt_b, &mmu_b), 0);
	CHECK_EQ(kvm_pgtable_stage2_map(&pgt_a, IPA, 4 * PAGE_SIZE, GUEST_PA, RW, &cache, 0), 0);
	CHECK_EQ(pgw_bind_stage2(&pgt_a, &bound_a), 0);

	use_after_free_cases();
	from_every_walker();
	from_callbacks();
	another_table_is_fine();
	two_threads_one_table();

	/* Afterwards the table works as before. */
	CHECK_EQ(kvm_pgtable_stage2_unmap(&pgt_a, IPA, 4 * PAGE_SIZE), 0);
	CHECK_EQ(pgw_stage2_destroy(&pgt_a), 0);
	CHECK_EQ(pgw_stage2_destroy(&pgt_b), 0);
	quiesce();
	CHECK_EQ(live, 0);
	CHECK_EQ(double_frees, 0);
	return test_summary("test_reentry");
}

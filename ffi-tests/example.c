/*
 * The smallest complete program using pgwalk from C: the README shows it
 * verbatim, and ffi-tests/run.sh compiles and runs it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pgwalk.h"

/* Table pages: a static pool with a reference count per page. Here virtual
 * and physical addresses are the same; a real hypervisor converts. */
#define NPAGES 64
static _Alignas(8192) unsigned char pages[NPAGES][4096]; /* the root: 2 pages */
static int refs[NPAGES];

static int page_of(void *p) { return (int)(((unsigned char *)p - pages[0]) / 4096); }

static void *alloc_pages(size_t n)
{
	for (size_t i = 0; i + n <= NPAGES; i += n) {
		size_t j = 0;
		while (j < n && !refs[i + j])
			j++;
		if (j < n)
			continue;
		for (j = 0; j < n; j++)
			refs[i + j] = 1;
		memset(pages[i], 0, n * 4096);
		return pages[i];
	}
	return NULL;
}

/* The kernel's memory cache: table pages set aside before a map (here, how
 * many may be taken). As in Linux 6.12, a map takes new table pages only
 * from one: with a NULL cache, one that needs a table fails with -ENOMEM. */
struct kvm_mmu_memory_cache { int nobjs; };

static void *zalloc_page(void *arg)
{
	struct kvm_mmu_memory_cache *mc = arg;

	if (!mc || mc->nobjs == 0)
		return NULL;
	mc->nobjs--;
	return alloc_pages(1);
}
static void *zalloc_pages_exact(size_t size) { return alloc_pages(size / 4096); }
static void free_pages_exact(void *p, size_t size)
{
	for (size_t i = 0; i < size / 4096; i++)
		refs[page_of(p) + (int)i] = 0;
}
static void free_unlinked_table(void *p, int8_t level);
static void get_page(void *p) { refs[page_of(p)]++; }
static void put_page(void *p) { refs[page_of(p)]--; }
static int page_count(void *p) { return refs[page_of(p)]; }
static void *phys_to_virt(uint64_t pa) { return (void *)(uintptr_t)pa; }
static uint64_t virt_to_phys(void *va) { return (uint64_t)(uintptr_t)va; }

static struct kvm_pgtable_mm_ops mm_ops = {
	.zalloc_page = zalloc_page,
	.zalloc_pages_exact = zalloc_pages_exact,
	.free_pages_exact = free_pages_exact,
	.free_unlinked_table = free_unlinked_table,
	.get_page = get_page,
	.put_page = put_page,
	.page_count = page_count,
	.phys_to_virt = phys_to_virt,
	.virt_to_phys = virt_to_phys,
	/* dcache_clean_inval_poc, icache_inval_pou: coherent caches here. */
};

/* No other walkers run, so the grace period is over at once. */
static void free_unlinked_table(void *p, int8_t level)
{
	kvm_pgtable_stage2_free_unlinked(&mm_ops, p, level);
}

/* TLB invalidation is the hypervisor's: here it would be TLBI IPAS2E1IS. */
static void tlbi_ipa(struct kvm_s2_mmu *mmu, uint64_t ipa, int level) { (void)mmu; (void)ipa; (void)level; }
static void tlbi_range(struct kvm_s2_mmu *mmu, uint64_t a, uint64_t s) { (void)mmu; (void)a; (void)s; }
static void tlbi_vmid(struct kvm_s2_mmu *mmu) { (void)mmu; }

static int count_leaf(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	(void)visit;
	if (ctx->old & 1)
		++*(int *)ctx->arg;
	return 0;
}

int main(void)
{
	struct kvm_s2_mmu mmu = {
		.vtcr = 0x80023558, /* 40-bit IPA, 4 KiB granule, start level 1 */
		.tlb_flush_vmid_ipa = tlbi_ipa,
		.tlb_flush_vmid_range = tlbi_range,
		.tlb_flush_vmid = tlbi_vmid,
	};
	struct kvm_pgtable pgt;
	struct kvm_mmu_memory_cache mc = { .nobjs = 2 }; /* a level-2 and a level-3 table */
	int leaves = 0, r;

	r = kvm_pgtable_stage2_init(&pgt, &mmu, &mm_ops);
	if (r)
		return 1;
	/* 2 MiB + 4 KiB of RAM at IPA 1 GiB: one block and one page. */
	r = kvm_pgtable_stage2_map(&pgt, 0x40000000, 0x201000, 0x80000000,
				   KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W, &mc, 0);
	struct kvm_pgtable_walker walker = {
		.cb = count_leaf, .arg = &leaves, .flags = KVM_PGTABLE_WALK_LEAF,
	};
	if (!r)
		r = kvm_pgtable_walk(&pgt, 0x40000000, 0x400000, &walker);
	kvm_pgtable_stage2_destroy(&pgt);
	printf("map+walk: %d, %d valid leaves\n", r, leaves);
	return r || leaves != 2;
}

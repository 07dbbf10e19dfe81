/*
 * A hypervisor's side of pgwalk, as existing C hypervisors write it: a
 * static pool of page-table pages with reference counts behind a
 * struct kvm_pgtable_mm_ops, a memory cache topped up before faults, and a
 * VM structure embedding struct kvm_s2_mmu whose TLB callbacks count what
 * they are asked to invalidate.
 */
#ifndef FFI_TESTS_HOST_H
#define FFI_TESTS_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "pgwalk.h"

#ifndef POOL_PAGES
#define POOL_PAGES 1024
#endif

/* Physical address of the pool's first page: unlike its virtual address,
 * so that a missing conversion shows up as a wrong address. */
#define POOL_PHYS_BASE 0x80000000ull
#define PAGE_SIZE 4096ull

/* 40-bit IPA, 4 KiB granule, start level 1 (a two-page concatenated root),
 * PS = 40 bits, inner-shareable write-back walks. */
#define VTCR_IPA40 0x80023558ull

#define container_of(ptr, type, member)                                        \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* The kernel's memory cache: pages set aside before a fault, so that the
 * fault handler allocates without sleeping. Here: how many it may take. */
struct kvm_mmu_memory_cache {
	int nobjs;
};

struct vm {
	struct kvm_pgtable pgt;
	struct kvm_s2_mmu mmu;
	unsigned long tlbi_ipa;
	unsigned long tlbi_range;
	unsigned long tlbi_vmid;
	uint64_t last_tlbi_ipa;
	int last_tlbi_level;
};

extern struct kvm_pgtable_mm_ops host_mm_ops;

/* Statistics the tests check. */
struct pool_stats {
	unsigned long in_use;       /* pages allocated and not freed */
	unsigned long double_frees; /* put_page/free on a free page */
	unsigned long bad_frees;    /* free of an address outside the pool */
	unsigned long dcache;       /* dcache_clean_inval_poc calls */
	unsigned long icache;       /* icache_inval_pou calls */
	unsigned long deferred;     /* free_unlinked_table calls */
};

void pool_reset(void);
struct pool_stats pool_stats(void);
/* Allocation fails once `pages` more pages have been handed out (-1: never). */
void pool_set_budget(long pages);
/* Runs the frees deferred by free_unlinked_table: the grace period. */
void pool_quiesce(void);
int pool_page_count(uint64_t phys);

/* Fills in vm->mmu (VTCR and TLB callbacks) and initialises vm->pgt. */
int vm_init(struct vm *vm, uint64_t vtcr);

#endif

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

/* One TLB callback call, as the VM's log records it. */
enum tlbi_kind { TLBI_IPA = 1, TLBI_IPA_NSH, TLBI_RANGE, TLBI_VMID };
struct tlbi {
	enum tlbi_kind kind;
	uint64_t addr;
	int level;     /* TLBI_IPA, TLBI_IPA_NSH */
	uint64_t size; /* TLBI_RANGE */
};

#define TLBI_LOG 64

struct vm {
	struct kvm_pgtable pgt;
	struct kvm_s2_mmu mmu;
	/* Where maps take their table pages from (see vm_mc). */
	struct kvm_mmu_memory_cache mc;
	unsigned long tlbi_ipa;
	unsigned long tlbi_ipa_nsh;
	unsigned long tlbi_range;
	unsigned long tlbi_vmid;
	uint64_t last_tlbi_ipa;
	int last_tlbi_level;
	/* Every TLB callback call, in order, since vm_init or tlbi_clear (the
	 * first TLBI_LOG of them; tlbi_n counts all). */
	struct tlbi tlbi[TLBI_LOG];
	unsigned tlbi_n;
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
	void *last_get_page;        /* the address the last get_page was given */
	void *last_put_page;        /* and put_page */
};

void pool_reset(void);
struct pool_stats pool_stats(void);
/* Allocation fails once `pages` more pages have been handed out (-1: never). */
void pool_set_budget(long pages);
/* Runs the frees deferred by free_unlinked_table: the grace period. */
void pool_quiesce(void);
int pool_page_count(uint64_t phys);

/* Fills in vm->mmu (VTCR and the four TLB callbacks, the optional
 * tlb_flush_vmid_ipa_nsh included) and initialises vm->pgt. */
int vm_init(struct vm *vm, uint64_t vtcr);
/* (Re)installs the four TLB callbacks of vm->mmu. */
void vm_set_tlb_callbacks(struct vm *vm);

/* The VM's memory cache, topped up with more pages than any test needs, as
 * KVM tops its cache up before a map: Linux 6.12 maps nothing that needs a
 * table page when given no cache (-ENOMEM). */
struct kvm_mmu_memory_cache *vm_mc(struct vm *vm);

/* Forgets the logged TLB callback calls (the counters stay). */
void tlbi_clear(struct vm *vm);

/* A fingerprint of every non-zero entry of a table, as kvm_pgtable_walk
 * visits them (address, old value, level): two prints differ when the
 * table changed. */
struct table_print {
	unsigned long entries;
	uint64_t hash;
};

/* Walks the whole 40-bit IPA space of `pgt` with the table's own mm_ops;
 * a walk that fails is a failed check. */
struct table_print table_fingerprint(struct kvm_pgtable *pgt);
int table_print_eq(struct table_print a, struct table_print b);

#endif

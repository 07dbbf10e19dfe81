/*
 * The benchmark's neutral interface: one table, its operations over the
 * benchmark's range, and the host both implementations run on. Plain C
 * types only: ops.c is compiled twice, once against the kernel's headers
 * (Linux 6.12 pgtable.c, symbols renamed linux_*) and once against
 * include/pgwalk.h, and each build defines one struct bench_side; main.c
 * and the Rust benchmark see nothing else.
 */
#ifndef PGWALK_BENCH_H
#define PGWALK_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_PAGE 4096ull
/* 40-bit IPA, 4 KiB granule, start level 1 (a two-page concatenated root),
 * PS = 40 bits, inner-shareable write-back walks. */
#define BENCH_VTCR 0x80023558ull

/*
 * One implementation. Every operation works on `pages` 4 KiB pages from
 * `ipa`; the per-page rows loop inside the implementation's own file, so
 * that each side pays a direct call per page, as a hypervisor's fault path
 * does. Returns 0 on success, else the first failing call's code.
 */
struct bench_side {
	const char *name;
	/* A new, empty table (NULL: failed). */
	void *(*create)(void);
	void (*destroy)(void *t);
	/* kvm_pgtable_stage2_map of the whole range in one call, RW, no
	 * SHARED flag; `pa` 4 KiB off 2 MiB alignment leaves no block. */
	int (*map)(void *t, uint64_t ipa, uint64_t pages, uint64_t pa);
	/* kvm_pgtable_walk(LEAF) with a C visitor counting valid leaves. */
	int (*walk)(void *t, uint64_t ipa, uint64_t pages, uint64_t *valid);
	int (*wrprotect)(void *t, uint64_t ipa, uint64_t pages);
	/* One kvm_pgtable_stage2_map of 4 KiB per page,
	 * SHARED|HANDLE_FAULT, into whatever the table holds. */
	int (*fault_in)(void *t, uint64_t ipa, uint64_t pages, uint64_t pa);
	/* One kvm_pgtable_stage2_relax_perms(R|W) per page. */
	int (*relax)(void *t, uint64_t ipa, uint64_t pages);
	int (*unmap)(void *t, uint64_t ipa, uint64_t pages);
	/* One kvm_pgtable_stage2_mkyoung per page. */
	int (*mkyoung)(void *t, uint64_t ipa, uint64_t pages);
	/* kvm_pgtable_stage2_test_clear_young(mkold) of the range; *young
	 * says what it returned. */
	int (*test_clear_young)(void *t, uint64_t ipa, uint64_t pages, bool *young);
	/* kvm_pgtable_stage2_split of the range, the memory cache holding
	 * enough pages. */
	int (*split)(void *t, uint64_t ipa, uint64_t pages);
	/* kvm_pgtable_stage2_set_owner of the range, owner 1. */
	int (*set_owner)(void *t, uint64_t ipa, uint64_t pages);
	/* The walk row's visitor on the same entries, called by a plain loop
	 * over the last-level tables that floor_prepare finds beforehand: what
	 * calling C once per entry costs with no walk around it. The same code
	 * on both sides. */
	int (*floor_prepare)(void *t, uint64_t ipa, uint64_t pages);
	int (*walk_floor)(void *t, uint64_t ipa, uint64_t pages, uint64_t *valid);
	/* The same rows through the typed C API (pgw_*); NULL where the side
	 * has none (Linux) or the API has no such operation. */
	int (*pgw_walk)(void *t, uint64_t ipa, uint64_t pages, uint64_t *valid);
	int (*pgw_fault_in)(void *t, uint64_t ipa, uint64_t pages, uint64_t pa);
	int (*pgw_relax)(void *t, uint64_t ipa, uint64_t pages);
	int (*pgw_mkyoung)(void *t, uint64_t ipa, uint64_t pages);
	int (*pgw_test_clear_young)(void *t, uint64_t ipa, uint64_t pages, bool *young);
	/* The walk row's count through pgw_walk_leaf_runs: one C call per run
	 * of entries instead of one per entry. */
	int (*pgw_leaf_runs)(void *t, uint64_t ipa, uint64_t pages, uint64_t *valid);
};

extern const struct bench_side bench_linux;
extern const struct bench_side bench_pgwalk;

/* ---- the host: one page pool behind both sides' mm_ops (host.c) ---- */

/* The kernel's memory cache as both sides see it: how many pages a call
 * may take from the pool. */
struct bench_mc {
	int nobjs;
};

/* Reserves the pool (idempotent): `pages` table pages. */
void bench_host_init(size_t pages);
/* Pages handed out and not freed. */
size_t bench_host_in_use(void);
/* Host callback counters, since the last reset: TLB invalidations (every
 * kind), data-cache cleans, instruction-cache invalidations. */
struct bench_counts {
	unsigned long tlbi, dcache, icache;
};
struct bench_counts bench_host_counts(void);
void bench_host_reset_counts(void);

/* The mm_ops callbacks, shared by both sides. */
void *bench_zalloc_page(void *mc);
void *bench_zalloc_pages_exact(size_t size);
void bench_free_pages_exact(void *addr, size_t size);
void bench_get_page(void *addr);
void bench_put_page(void *addr);
int bench_page_count(void *addr);
void *bench_phys_to_virt(uint64_t phys);
uint64_t bench_virt_to_phys(void *addr);
void bench_dcache_clean_inval_poc(void *addr, size_t size);
void bench_icache_inval_pou(void *addr, size_t size);
/* TLB invalidations are counted in kernel-parity/shim's kp_tlbi_count:
 * the kernel's side reaches it through the shim's hypervisor-call stubs,
 * pgwalk's through struct kvm_s2_mmu callbacks doing the same work. */

#endif

/*
 * How much a walk with a C visitor costs per page, through both C APIs.
 *
 * Maps 1 GiB of 4 KiB pages (the output address is 4 KiB off 2 MiB
 * alignment, so no block fits), then times read-only walks of the whole
 * range with a C visitor that counts valid leaves. Prints one line per API:
 *
 *   c_callback_walk_ns_per_page <ns>   kvm_pgtable_walk, legacy visitor
 *   c_typed_walk_ns_per_page <ns>      pgw_walk, typed visitor
 *
 * Each value is the median of the timed runs. Build and run it with
 * ffi-tests/bench.sh (-O2, no sanitizers); `--smoke` maps 8 MiB and walks
 * once, to check that it works.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"

#define IPA_BASE (1ull << 30)
#define PA_BASE (0x100000000ull + PAGE_SIZE)

static int count_legacy(const struct kvm_pgtable_visit_ctx *ctx, enum kvm_pgtable_walk_flags visit)
{
	(void)visit;
	*(uint64_t *)ctx->arg += ctx->old & 1;
	return 0;
}

static int count_typed(struct pgw_visit *v)
{
	*(uint64_t *)v->arg += v->old & 1;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

#define MAX_RUNS 64

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	int smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
	uint64_t size = smoke ? 8ull << 20 : 1ull << 30;
	uint64_t pages = size / PAGE_SIZE;
	int runs = smoke ? 1 : 21, i;
	double legacy_ns[MAX_RUNS], typed_ns[MAX_RUNS];
	struct vm vm;
	uint64_t count = 0, t0;
	struct kvm_pgtable_walker legacy = {
		.cb = count_legacy, .arg = &count, .flags = KVM_PGTABLE_WALK_LEAF,
	};
	struct pgw_walker typed = {
		.cb = count_typed, .arg = &count, .flags = KVM_PGTABLE_WALK_LEAF,
		.capability = PGW_EXCLUSIVE,
	};
	struct pgw_walk_result res;

	pool_reset();
	if (vm_init(&vm, VTCR_IPA40) ||
	    kvm_pgtable_stage2_map(&vm.pgt, IPA_BASE, size, PA_BASE,
				   KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W, vm_mc(&vm),
				   KVM_PGTABLE_WALK_SKIP_CMO)) {
		fprintf(stderr, "bench_walk: setup failed\n");
		return 1;
	}
	for (i = 0; i < runs; i++) {
		count = 0;
		t0 = now_ns();
		if (kvm_pgtable_walk(&vm.pgt, IPA_BASE, size, &legacy) || count != pages) {
			fprintf(stderr, "bench_walk: legacy walk failed\n");
			return 1;
		}
		legacy_ns[i] = (double)(now_ns() - t0) / (double)pages;

		count = 0;
		t0 = now_ns();
		if (pgw_walk(&vm.pgt, IPA_BASE, size, &typed, &res) || count != pages) {
			fprintf(stderr, "bench_walk: typed walk failed\n");
			return 1;
		}
		typed_ns[i] = (double)(now_ns() - t0) / (double)pages;
	}
	printf("c_callback_walk_ns_per_page %.3f\n", median(legacy_ns, runs));
	printf("c_typed_walk_ns_per_page %.3f\n", median(typed_ns, runs));
	kvm_pgtable_stage2_destroy(&vm.pgt);
	return pool_stats().in_use != 0;
}

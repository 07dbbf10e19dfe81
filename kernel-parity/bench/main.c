/*
 * Linux 6.12's pgtable.c against pgwalk's C layer, in one process: the
 * same operations (ops.c, compiled for each), the same host (host.c), the
 * implementations alternating run by run and their order swapped every
 * run. Every figure is the median over the runs, in ns per 4 KiB page of
 * the range (1 GiB: 262,144 pages).
 *
 *   linux-bench                 11 runs per row
 *   linux-bench --reps N        N runs per row
 *   linux-bench --quick         5 runs per row
 *   linux-bench --smoke         8 MiB, one run: checks every row works
 *   linux-bench --only ROW      one row (map, walk, wrprotect, fault,
 *                               relax, unmap, mkyoung, young, split, owner,
 *                               runs: the walk row's count through
 *                               pgw_walk_leaf_runs, pgw only)
 *   linux-bench --impl IMPL     one implementation (linux, kvm, pgw, floor),
 *                               for callgrind --toggle-collect=bench_timed
 *   linux-bench --pages N       N pages instead of 262,144 (a multiple of
 *                               512, at most 262,144)
 *
 * Prints one machine-readable line per row and implementation,
 *
 *   result ROW IMPL NS_PER_PAGE TLBI_PER_PAGE DCACHE_PER_PAGE
 *
 * (IMPL: linux, kvm = pgwalk's kvm_pgtable_* API, pgw = pgwalk's typed C
 * API, its fault-path rows through pgw_bind_stage2's binding; floor = the
 * walk row's visitor called on the same entries by a plain loop: what
 * calling C per entry costs with no walk around it), then a table
 * with the ratios. Each run checks what it did (return
 * codes, leaves counted, table pages in use), and Linux and pgwalk's
 * kvm_* layer must end each row with as many table pages, TLB
 * invalidations (but for split's, below) and cache cleans; any failure
 * exits non-zero.
 */
#define _POSIX_C_SOURCE 199309L
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IPA_BASE (1ull << 30)
/* 4 KiB past a 2 MiB boundary: no block fits. */
#define PA_PAGES (0x100000000ull + BENCH_PAGE)
/* 1 GiB-aligned: the largest blocks, for split. */
#define PA_BLOCKS 0x100000000ull
#define MAX_REPS 101
/* The 40-bit space's root: two concatenated pages. */
#define ROOT_PAGES 2

enum op { OP_MAP, OP_WALK, OP_WRPROTECT, OP_FAULT, OP_RELAX, OP_UNMAP, OP_MKYOUNG, OP_YOUNG,
	  OP_SPLIT, OP_OWNER, OP_RUNS };

static const struct row {
	const char *key, *what;
	enum op op;
} rows[] = {
	{ "map", "map 1 GiB of 4 KiB pages, one call", OP_MAP },
	{ "walk", "LEAF walk, C visitor", OP_WALK },
	{ "wrprotect", "wrprotect 1 GiB", OP_WRPROTECT },
	{ "fault", "fault-in: map 4 KiB, SHARED+HANDLE_FAULT", OP_FAULT },
	{ "relax", "relax_perms(+W), one page per call", OP_RELAX },
	{ "unmap", "unmap 1 GiB", OP_UNMAP },
	{ "mkyoung", "mkyoung, one page per call", OP_MKYOUNG },
	{ "young", "test_clear_young 1 GiB", OP_YOUNG },
	{ "split", "split 1 GiB block to pages", OP_SPLIT },
	{ "owner", "set_owner 1 GiB", OP_OWNER },
	{ "runs", "LEAF walk, batched C visitor (pgw_walk_leaf_runs)", OP_RUNS },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* An implementation of a row: a side, through its kvm_* or pgw_* API; or
 * for the walk row, its visitor called by a plain loop (no walker). */
struct impl {
	const char *name;
	const struct bench_side *side;
	bool typed;
	bool floor;
};
static const struct impl impls[] = {
	{ "linux", &bench_linux, false, false },
	{ "kvm", &bench_pgwalk, false, false },
	{ "pgw", &bench_pgwalk, true, false },
	{ "floor", &bench_pgwalk, false, true },
};
#define NIMPLS 4

static uint64_t pages = (1ull << 30) / BENCH_PAGE;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(const struct impl *im, const char *row, const char *what, long v)
{
	fprintf(stderr, "linux-bench: %s, %s: %s (%ld)\n", row, im->name, what, v);
	exit(1);
}

/* Whether `im` has an implementation of `op`. */
static bool has(const struct impl *im, enum op op)
{
	const struct bench_side *s = im->side;

	if (im->floor)
		return op == OP_WALK;
	if (!im->typed)
		return op != OP_RUNS;
	switch (op) {
	case OP_WALK:
		return s->pgw_walk;
	case OP_FAULT:
		return s->pgw_fault_in;
	case OP_RELAX:
		return s->pgw_relax;
	case OP_MKYOUNG:
		return s->pgw_mkyoung;
	case OP_YOUNG:
		return s->pgw_test_clear_young;
	case OP_RUNS:
		return s->pgw_leaf_runs;
	default:
		return false;
	}
}

/* The timed work alone, out of line: callgrind --toggle-collect=bench_timed
 * counts exactly this. */
__attribute__((noinline)) int bench_timed(const struct impl *im, enum op op, void *t,
					  uint64_t *valid, bool *young)
{
	const struct bench_side *s = im->side;

	switch (op) {
	case OP_MAP:
		return s->map(t, IPA_BASE, pages, PA_PAGES);
	case OP_WALK:
		if (im->floor)
			return s->walk_floor(t, IPA_BASE, pages, valid);
		return (im->typed ? s->pgw_walk : s->walk)(t, IPA_BASE, pages, valid);
	case OP_WRPROTECT:
		return s->wrprotect(t, IPA_BASE, pages);
	case OP_FAULT:
		return (im->typed ? s->pgw_fault_in : s->fault_in)(t, IPA_BASE, pages, PA_PAGES);
	case OP_RELAX:
		return (im->typed ? s->pgw_relax : s->relax)(t, IPA_BASE, pages);
	case OP_UNMAP:
		return s->unmap(t, IPA_BASE, pages);
	case OP_MKYOUNG:
		return (im->typed ? s->pgw_mkyoung : s->mkyoung)(t, IPA_BASE, pages);
	case OP_YOUNG:
		return (im->typed ? s->pgw_test_clear_young : s->test_clear_young)(t, IPA_BASE,
										    pages, young);
	case OP_SPLIT:
		return s->split(t, IPA_BASE, pages);
	case OP_OWNER:
		return s->set_owner(t, IPA_BASE, pages);
	case OP_RUNS:
		return s->pgw_leaf_runs(t, IPA_BASE, pages, valid);
	}
	return -1;
}

struct sample {
	double ns, tlbi, dcache;
	size_t table_pages;
};

/* One run of one row on one implementation: set up, time, check, free. */
static struct sample run(const struct impl *im, const struct row *r)
{
	const struct bench_side *s = im->side;
	struct sample out;
	struct bench_counts c;
	uint64_t valid = 0, t0, t1;
	bool young = false;
	void *t;
	int ret;

	if (bench_host_in_use())
		fail(im, r->key, "pool not empty before the run", (long)bench_host_in_use());
	t = s->create();
	if (!t)
		fail(im, r->key, "create", 0);
	ret = 0;
	switch (r->op) {
	case OP_WALK:
		ret = s->map(t, IPA_BASE, pages, PA_PAGES);
		if (!ret && im->floor)
			ret = s->floor_prepare(t, IPA_BASE, pages);
		break;
	case OP_RUNS:
	case OP_WRPROTECT:
	case OP_UNMAP:
	case OP_YOUNG:
		ret = s->map(t, IPA_BASE, pages, PA_PAGES);
		break;
	case OP_RELAX:
		ret = s->map(t, IPA_BASE, pages, PA_PAGES);
		if (!ret)
			ret = s->wrprotect(t, IPA_BASE, pages);
		break;
	case OP_MKYOUNG:
		ret = s->map(t, IPA_BASE, pages, PA_PAGES);
		if (!ret)
			ret = s->test_clear_young(t, IPA_BASE, pages, &young);
		break;
	case OP_SPLIT:
		ret = s->map(t, IPA_BASE, pages, PA_BLOCKS);
		break;
	default:
		break;
	}
	if (ret)
		fail(im, r->key, "setup", ret);
	bench_host_reset_counts();
	t0 = now_ns();
	ret = bench_timed(im, r->op, t, &valid, &young);
	t1 = now_ns();
	c = bench_host_counts();
	if (ret)
		fail(im, r->key, "operation returned", ret);
	if ((r->op == OP_WALK || r->op == OP_RUNS) && valid != pages)
		fail(im, r->key, "valid leaves walked", (long)valid);
	if (r->op == OP_YOUNG && !young)
		fail(im, r->key, "test_clear_young found nothing young", 0);
	out.ns = (double)(t1 - t0) / (double)pages;
	out.tlbi = (double)c.tlbi / (double)pages;
	out.dcache = (double)c.dcache / (double)pages;
	out.table_pages = bench_host_in_use();
	if (r->op == OP_UNMAP && out.table_pages != ROOT_PAGES)
		fail(im, r->key, "table pages left after unmap", (long)out.table_pages);
	s->destroy(t);
	if (bench_host_in_use())
		fail(im, r->key, "pages leaked by destroy", (long)bench_host_in_use());
	return out;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void)
{
	fprintf(stderr, "usage: linux-bench [--reps N | --quick | --smoke] [--pages N] [--only ROW] [--impl IMPL]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int reps = 11, i, k;
	const char *only = NULL, *only_impl = NULL;
	bool smoke = false;
	double ns[NROWS][NIMPLS];
	bool done[NROWS][NIMPLS];

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--quick"))
			reps = 5;
		else if (!strcmp(argv[i], "--smoke"))
			smoke = true;
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--pages") && i + 1 < argc)
			pages = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--impl") && i + 1 < argc)
			only_impl = argv[++i];
		else
			usage();
	}
	if (smoke) {
		pages = (8ull << 20) / BENCH_PAGE;
		reps = 1;
	}
	if (reps < 1 || reps > MAX_REPS || !pages || pages % 512 || pages > (1ull << 18))
		usage();
	bench_host_init(4096);
	memset(done, 0, sizeof(done));

	printf("# Linux 6.12 pgtable.c vs pgwalk (C): %llu pages of 4 KiB, median of %d runs, ns/page\n",
	       (unsigned long long)pages, reps);
	for (k = 0; k < (int)NROWS; k++) {
		const struct row *r = &rows[k];
		double v[NIMPLS][MAX_REPS], tl[NIMPLS] = { 0 }, dc[NIMPLS] = { 0 };
		size_t tp[NIMPLS] = { 0 };
		int j, n, rep;

		if (only && strcmp(only, r->key))
			continue;
		for (rep = -1; rep < reps; rep++) {
			/* rep -1 warms caches and the pool, untimed. Then the
			 * order rotates, so that no implementation always runs
			 * right after the same other one. */
			for (n = 0; n < NIMPLS; n++) {
				const struct impl *im = &impls[(n + (rep < 0 ? 0 : rep)) % NIMPLS];
				struct sample s;

				j = (int)(im - impls);
				if (!has(im, r->op) || (only_impl && strcmp(only_impl, im->name)))
					continue;
				s = run(im, r);
				if (rep < 0)
					continue;
				v[j][rep] = s.ns;
				tl[j] = s.tlbi;
				dc[j] = s.dcache;
				tp[j] = s.table_pages;
			}
		}
		for (j = 0; j < NIMPLS; j++) {
			if (!has(&impls[j], r->op) || (only_impl && strcmp(only_impl, impls[j].name)))
				continue;
			ns[k][j] = median(v[j], reps);
			done[k][j] = true;
			printf("result %s %s %.3f %.3f %.3f\n", r->key, impls[j].name, ns[k][j], tl[j],
			       dc[j]);
		}
		/* Same work, same memory: the kernel and its parity layer end
		 * the timed operation with as many table pages, having asked
		 * the host for as many invalidations and cache cleans. */
		if (done[k][0] && done[k][1] && tp[0] != tp[1]) {
			fprintf(stderr, "linux-bench: %s: Linux uses %zu table pages, pgwalk %zu\n",
				r->key, tp[0], tp[1]);
			return 1;
		}
		/* Except split's invalidations: pgwalk splits one level at a
		 * time (a 1 GiB block: 513 TLBIs), where 6.12 rebuilds the
		 * whole block at once (one), a deviation on
		 * kernel-parity/deviations.txt. */
		if (done[k][0] && done[k][1] &&
		    ((r->op != OP_SPLIT && tl[0] != tl[1]) || dc[0] != dc[1])) {
			fprintf(stderr,
				"linux-bench: %s: per page, Linux asks for %.3f TLBIs and %.3f cleans, pgwalk %.3f and %.3f\n",
				r->key, tl[0], dc[0], tl[1], dc[1]);
			return 1;
		}
		fflush(stdout);
	}

	printf("\n| operation | Linux | pgwalk kvm_* | Linux / kvm_* | pgwalk pgw_* | Linux / pgw_* |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (k = 0; k < (int)NROWS; k++) {
		if (!done[k][0] && !done[k][1] && !done[k][2])
			continue;
		printf("| %s |", rows[k].what);
		for (i = 0; i < 2; i++)
			done[k][i] ? printf(" %.2f |", ns[k][i]) : printf(" — |");
		done[k][0] && done[k][1] ? printf(" %.2f× |", ns[k][0] / ns[k][1]) : printf(" — |");
		done[k][2] ? printf(" %.2f |", ns[k][2]) : printf(" — |");
		done[k][0] && done[k][2] ? printf(" %.2f× |\n", ns[k][0] / ns[k][2]) : printf(" — |\n");
	}
	for (k = 0; k < (int)NROWS; k++)
		if (done[k][3])
			printf("\n%s: the visitor alone, called by a plain loop over the same entries: %.2f\n",
			       rows[k].what, ns[k][3]);
	return 0;
}

/*
 * The host under both implementations: one pool of 4 KiB table pages with
 * reference counts, its free pages on a stack (the last freed is the next
 * handed out, so both sides reuse the same warm pages), and cache
 * maintenance that only counts. Physical addresses are the pool's offset
 * from a base unlike its virtual address; guest addresses outside the pool
 * convert by the same arithmetic and are never dereferenced.
 *
 * Single-threaded, as the benchmark is: no atomics, no locks. Misuse (a
 * page freed twice, a reference on a free page) aborts, since a benchmark
 * of a broken table measures nothing.
 */
#include "bench.h"
#include "kp_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PHYS_BASE 0x80000000ull
#define ALIGN (64ull << 10)

static unsigned char *mem;
static int *refs;
static uint32_t *free_stack;
static size_t npages, nfree;
static unsigned long dcache, icache;

static void die(const char *what)
{
	fprintf(stderr, "pgwalk bench host: %s\n", what);
	abort();
}

void bench_host_init(size_t pages)
{
	unsigned char *raw;
	size_t i;

	if (mem)
		return;
	/* 64 KiB-aligned, so that a root taken from the bottom is aligned to
	 * its size. */
	raw = mmap(NULL, pages * BENCH_PAGE + ALIGN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	refs = calloc(pages, sizeof(*refs));
	free_stack = malloc(pages * sizeof(*free_stack));
	if (raw == MAP_FAILED || !refs || !free_stack)
		die("out of memory for the pool");
	mem = (unsigned char *)(((uintptr_t)raw + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
	/* Touched once here, so that no run pays the kernel's first-touch
	 * page faults. */
	memset(mem, 0, pages * BENCH_PAGE);
	npages = pages;
	/* Lowest page on top: the first tables are the lowest addresses. */
	for (i = 0; i < pages; i++)
		free_stack[i] = (uint32_t)(pages - 1 - i);
	nfree = pages;
}

size_t bench_host_in_use(void)
{
	return npages - nfree;
}

struct bench_counts bench_host_counts(void)
{
	struct bench_counts c = { 0, dcache, icache };
	int k;

	for (k = 0; k < 6; k++)
		c.tlbi += kp_tlbi_count[k];
	return c;
}

void bench_host_reset_counts(void)
{
	int k;

	for (k = 0; k < 6; k++)
		kp_tlbi_count[k] = 0;
	dcache = icache = 0;
}

static size_t index_of(const void *addr)
{
	uintptr_t off = (uintptr_t)addr - (uintptr_t)mem;

	if ((uintptr_t)addr < (uintptr_t)mem || off >= npages * BENCH_PAGE)
		die("address outside the pool");
	return off / BENCH_PAGE;
}

static void *take(void)
{
	uint32_t i;
	void *page;

	if (!nfree)
		return NULL;
	i = free_stack[--nfree];
	refs[i] = 1;
	page = mem + (size_t)i * BENCH_PAGE;
	memset(page, 0, BENCH_PAGE);
	return page;
}

static void give_back(size_t i)
{
	refs[i] = 0;
	free_stack[nfree++] = (uint32_t)i;
}

void *bench_zalloc_page(void *arg)
{
	struct bench_mc *mc = arg;
	void *page;

	if (!mc || mc->nobjs <= 0)
		return NULL;
	page = take();
	if (page)
		mc->nobjs--;
	return page;
}

/* Only the root asks for more than one page: two, for the 40-bit IPA
 * space's concatenated level-1 root. Contiguity comes from taking pages
 * off a fresh pool's stack in order; anything else is refused. */
void *bench_zalloc_pages_exact(size_t size)
{
	size_t n = size / BENCH_PAGE, k;
	uint32_t first;

	if (!n || size % BENCH_PAGE || nfree < n)
		return NULL;
	first = free_stack[nfree - 1];
	if (first % n)
		return NULL;
	for (k = 0; k < n; k++)
		if (free_stack[nfree - 1 - k] != first + k)
			return NULL;
	for (k = 0; k < n; k++)
		take();
	return mem + (size_t)first * BENCH_PAGE;
}

void bench_free_pages_exact(void *addr, size_t size)
{
	size_t i = index_of(addr), k, n = size / BENCH_PAGE;

	/* Back in reverse, so that the next root finds them contiguous. */
	for (k = n; k-- > 0;) {
		if (!refs[i + k])
			die("free_pages_exact of a free page");
		give_back(i + k);
	}
}

void bench_get_page(void *addr)
{
	size_t i = index_of(addr);

	if (!refs[i])
		die("get_page on a free page");
	refs[i]++;
}

void bench_put_page(void *addr)
{
	size_t i = index_of(addr);

	if (!refs[i])
		die("put_page on a free page");
	if (!--refs[i])
		give_back(i);
}

int bench_page_count(void *addr)
{
	return refs[index_of(addr)];
}

void *bench_phys_to_virt(uint64_t phys)
{
	return (void *)((uintptr_t)mem + (uintptr_t)(phys - PHYS_BASE));
}

uint64_t bench_virt_to_phys(void *addr)
{
	return (uint64_t)((uintptr_t)addr - (uintptr_t)mem) + PHYS_BASE;
}

void bench_dcache_clean_inval_poc(void *addr, size_t size)
{
	(void)addr;
	(void)size;
	dcache++;
}

void bench_icache_inval_pou(void *addr, size_t size)
{
	(void)addr;
	(void)size;
	icache++;
}

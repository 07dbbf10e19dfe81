/*
 * What a table holds, read straight from its pages: neither
 * implementation's walker is trusted to report its own table. Every
 * non-zero entry at a leaf position (valid blocks and pages, owner
 * annotations, anything else non-zero) is recorded with its input address
 * and level. Along the way each table page's reference count is checked
 * against the rule both implementations keep: 1 + its non-zero entries.
 */
#include "driver.h"

#include <stdlib.h>
#include <string.h>

void leaves_push(struct leaves *l, uint64_t addr, int8_t level, uint64_t pte)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			perror("kernel-parity: leaves");
			exit(2);
		}
	}
	l->v[l->n].addr = addr;
	l->v[l->n].level = level;
	l->v[l->n].pte = pte;
	l->n++;
}

void leaves_free(struct leaves *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void check_refcount(struct kp_side *s, const uint64_t *page, struct state *st)
{
	size_t i, used = 0;
	int count;

	if (!st)
		return;
	for (i = 0; i < KP_PTRS; i++)
		used += page[i] != 0;
	count = kp_pool_refcount(&s->pool, page);
	if (count != (int)used + 1 && !st->refcount_errors++)
		snprintf(st->refcount_error, sizeof(st->refcount_error),
			 "table page at phys 0x%llx: count %d, %zu non-zero entries",
			 (unsigned long long)kp_virt_to_phys((void *)page), count, used);
}

size_t dump_tree(struct kp_side *s, void *table, int level, size_t nentries, uint64_t base,
		 struct leaves *out, struct state *st)
{
	uint64_t *e = table;
	size_t i, pages = 0;

	for (i = 0; i < nentries; i++) {
		uint64_t pte = e[i];
		uint64_t addr = base + (uint64_t)i * KP_GRANULE(level);

		if (i % KP_PTRS == 0)
			check_refcount(s, &e[i], st);
		if (!pte)
			continue;
		if (level < KP_LAST_LEVEL && (pte & 3) == 3) {
			uint64_t phys = pte & KP_PTE_ADDR_MASK;

			if (!kp_pool_owns_phys(&s->pool, phys) ||
			    kp_pool_refcount(&s->pool, kp_phys_to_virt(phys)) <= 0) {
				if (st && !st->corrupt++)
					snprintf(st->corrupt_msg, sizeof(st->corrupt_msg),
						 "table entry for 0x%llx (level %d) points at phys "
						 "0x%llx, %s",
						 (unsigned long long)addr, level,
						 (unsigned long long)phys,
						 kp_pool_owns_phys(&s->pool, phys) ? "a free pool page"
										   : "no pool page");
				continue;
			}
			pages += 1 + dump_tree(s, kp_phys_to_virt(phys), level + 1, KP_PTRS, addr,
					       out, st);
			continue;
		}
		leaves_push(out, addr, (int8_t)level, pte);
	}
	return pages;
}

void capture_state(struct kp_side *s, struct state *st, const uint64_t *sample_addrs,
		   size_t nsamples)
{
	void *pgd;
	int start;
	unsigned ia;
	size_t roots, i;

	memset(st, 0, sizeof(*st));
	kp_enter(s);
	s->impl->geometry(s->st, &pgd, &start, &ia);
	if (pgd) {
		int root_bits = (int)ia - KP_LEVEL_SHIFT(start);

		roots = root_bits > 0 ? (size_t)1 << root_bits : 1;
		if (roots < KP_PTRS)
			roots = KP_PTRS;
		st->table_pages = dump_tree(s, pgd, start, roots, 0, &st->leaves, st);
	}
	st->in_use = s->pool.in_use;
	st->pool_errors = s->pool.errors;
	memcpy(st->pool_error, s->pool.first_error, sizeof(st->pool_error));
	for (i = 0; i < nsamples && i < KP_SAMPLES; i++) {
		struct sample *x = &st->samples[i];

		x->addr = sample_addrs[i];
		x->ret = s->impl->get_leaf(s->st, x->addr, &x->pte, &x->level);
		if (x->ret) {
			/* Not written on error: not compared either. */
			x->pte = 0;
			x->level = 0;
		}
	}
	st->nsamples = i;
}

void state_free(struct state *st)
{
	leaves_free(&st->leaves);
}

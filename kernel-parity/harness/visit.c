/*
 * The body of the kvm_pgtable_walk visitor both adapters install: its
 * answer for an entry is a hash of the walk's seed, the entry's address,
 * level and the kind of visit, so both walkers get the same answer for the
 * same entry however they got there; it records what it was shown.
 *
 * A walker that visits one entry over and over (a shared walker retrying
 * an entry whose visitor keeps answering -EAGAIN) would never return: after
 * KP_HANG_REPEATS visits in a row of the same entry, or KP_HANG_TOTAL
 * visits in all, the visitor marks the walk as a hang and answers
 * -ETIMEDOUT, an error every walker stops on.
 */
#include "kp.h"

#include <errno.h>

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* The codes a non-zero answer is drawn from, per code_set. */
static int pick_code(int set, uint64_t h)
{
	static const int mixed[] = { -EAGAIN, -ENOENT, -EINVAL, -ENOMEM, -E2BIG };

	switch (set) {
	case 0:
		return -EAGAIN;
	case 1:
		return -ENOENT;
	case 2:
		return -EINVAL;
	case 3:
		return 1; /* not an errno at all */
	case 4:
		return -5000; /* below -MAX_ERRNO */
	default:
		return mixed[h % (sizeof(mixed) / sizeof(mixed[0]))];
	}
}

static bool is_table(uint64_t pte, int8_t level)
{
	return level < KP_LAST_LEVEL && (pte & 3) == 3;
}

int kp_visit(struct kp_script *s, uint64_t *ptep, uint64_t old, uint64_t start,
	     uint64_t addr, uint64_t end, int8_t level, uint32_t ctx_flags,
	     uint32_t visit, bool ctx_ok)
{
	uint64_t h = mix(s->seed ^ mix(addr ^ ((uint64_t)(uint8_t)level << 56) ^
				       ((uint64_t)visit << 60)));
	uint64_t shown = is_table(old, level) ? (old & ~KP_PTE_ADDR_MASK) : old;
	int ret = 0;

	if (s->nvisits == 0) {
		s->start = start;
		s->end = end;
	} else if (start != s->start || end != s->end) {
		s->ctx_mismatch++;
	}
	if (!ctx_ok || ctx_flags != s->flags)
		s->ctx_mismatch++;

	if (s->nvisits && addr == s->last_addr && level == s->last_level &&
	    visit == s->last_visit) {
		if (++s->repeats >= KP_HANG_REPEATS)
			s->hang = true;
	} else {
		s->repeats = 0;
	}
	s->last_addr = addr;
	s->last_level = level;
	s->last_visit = visit;
	if (s->nvisits >= KP_HANG_TOTAL)
		s->hang = true;

	if (s->hang) {
		ret = -ETIMEDOUT;
	} else {
		if (s->rate && (h >> 32) % (uint64_t)s->rate == 0)
			ret = pick_code(s->code_set, h >> 8);
		/* Change the entry as a visitor may: a software bit of a valid
		 * leaf (no reference count or TLB consequence). */
		if (s->write_rate && visit == KP_WALK_LEAF && (old & KP_PTE_VALID) &&
		    (h & 0xff) % (uint64_t)s->write_rate == 0) {
			uint64_t want = old ^ (1ull << 58);

			if (ctx_flags & KP_WALK_SHARED)
				__atomic_compare_exchange_n(ptep, &old, want, false,
							    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
			else
				*(volatile uint64_t *)ptep = want;
		}
	}

	s->hash = mix(s->hash ^ mix(addr + level) ^ mix(shown) ^ ((uint64_t)visit << 3) ^
		      (uint64_t)(uint32_t)ret);
	if (s->nrec < KP_TRACE_MAX) {
		struct kp_visit_rec *r = &s->rec[s->nrec++];

		r->visit = visit;
		r->level = level;
		r->addr = addr;
		r->old = shown;
		r->ret = ret;
	}
	s->nvisits++;
	return ret;
}

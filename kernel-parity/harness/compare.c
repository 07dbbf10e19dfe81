/*
 * Comparing two sides after an operation, naming the kind of disagreement
 * (the class the summary groups by and deviations match), and describing
 * it for a human.
 *
 * A class reads "<operation>: <situation> [<what differs>]", plus the two
 * return codes when they differ. The situation comes from the operation's
 * input and from the table as it was before the operation (both sides
 * agreed on it, or the sequence would have stopped earlier): the first of
 * a fixed list of predicates that holds, input problems first, then how
 * the range meets what was mapped.
 */
#include "driver.h"

#include "kp_shim.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

const char *op_name(enum op_kind k)
{
	static const char *const names[OP_KINDS] = {
		[OP_MAP] = "map",
		[OP_UNMAP] = "unmap",
		[OP_SET_OWNER] = "set_owner",
		[OP_WRPROTECT] = "wrprotect",
		[OP_MKYOUNG] = "mkyoung",
		[OP_TEST_CLEAR_YOUNG] = "test_clear_young",
		[OP_RELAX_PERMS] = "relax_perms",
		[OP_FLUSH] = "flush",
		[OP_SPLIT] = "split",
		[OP_CREATE_UNLINKED] = "create_unlinked",
		[OP_FREE_UNLINKED] = "free_unlinked",
		[OP_WALK] = "walk",
		[OP_GET_LEAF] = "get_leaf",
		[OP_PTE_PROT] = "pte_prot",
		[OP_HYP_MAP] = "hyp_map",
		[OP_HYP_UNMAP] = "hyp_unmap",
		[OP_HYP_PTE_PROT] = "hyp_pte_prot",
	};
	return k < OP_KINDS ? names[k] : "?";
}

const char *errname(long long e)
{
	static char buf[4][32];
	static int next;
	char *b;

	switch (e) {
	case 0:
		return "0";
	case -EPERM:
		return "-EPERM";
	case -ENOENT:
		return "-ENOENT";
	case -EAGAIN:
		return "-EAGAIN";
	case -ENOMEM:
		return "-ENOMEM";
	case -EFAULT:
		return "-EFAULT";
	case -EEXIST:
		return "-EEXIST";
	case -EINVAL:
		return "-EINVAL";
	case -E2BIG:
		return "-E2BIG";
	case -ERANGE:
		return "-ERANGE";
	case -EPROTO:
		return "-EPROTO";
	case -EBADMSG:
		return "-EBADMSG";
	case -EOPNOTSUPP:
		return "-EOPNOTSUPP";
	case -ETIMEDOUT:
		return "-ETIMEDOUT";
	case -ENOTRECOVERABLE:
		return "-ENOTRECOVERABLE";
	default:
		b = buf[next++ % 4];
		snprintf(b, sizeof(buf[0]), "%lld", e);
		return b;
	}
}

void fmt_prot(char *out, size_t n, uint64_t prot)
{
	static const struct {
		uint64_t bit;
		const char *name;
	} names[] = {
		{ KP_PROT_R, "R" },	       { KP_PROT_W, "W" },	   { KP_PROT_X, "X" },
		{ KP_PROT_DEVICE, "DEVICE" }, { KP_PROT_NORMAL_NC, "NC" }, { KP_PROT_SW0, "SW0" },
		{ KP_PROT_SW1, "SW1" },       { KP_PROT_SW2, "SW2" },	   { KP_PROT_SW3, "SW3" },
	};
	size_t i, len = 0;

	out[0] = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (prot & names[i].bit)
			len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "|" : "",
						names[i].name);
	if (prot & ~KP_PROT_KNOWN)
		len += (size_t)snprintf(out + len, n - len, "%s0x%" PRIx64, len ? "|" : "",
					(uint64_t)(prot & ~KP_PROT_KNOWN));
	if (!len)
		snprintf(out, n, "0");
}

void fmt_flags(char *out, size_t n, uint32_t flags)
{
	static const char *const names[] = { "LEAF",	     "TABLE_PRE",     "TABLE_POST",
					     "SHARED",	     "HANDLE_FAULT", "SKIP_BBM_TLBI",
					     "SKIP_CMO" };
	size_t i, len = 0;

	out[0] = 0;
	for (i = 0; i < 7; i++)
		if (flags & (1u << i))
			len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "|" : "",
						names[i]);
	if (flags & ~0x7fu)
		len += (size_t)snprintf(out + len, n - len, "%s0x%x", len ? "|" : "",
					flags & ~0x7fu);
	if (!len)
		snprintf(out, n, "0");
}

static const char *mc_str(int mc, char *buf, size_t n)
{
	if (mc < 0)
		return "NULL";
	snprintf(buf, n, "%d", mc);
	return buf;
}

void describe_op(char *out, size_t n, const struct op *op)
{
	char prot[96], flags[96], mcbuf[16];
	const char *mc = mc_str(op->mc, mcbuf, sizeof(mcbuf));

	fmt_prot(prot, sizeof(prot), op->prot);
	fmt_flags(flags, sizeof(flags), op->flags);
	switch (op->kind) {
	case OP_MAP:
		snprintf(out, n, "map(addr=0x%" PRIx64 ", size=0x%" PRIx64 ", phys=0x%" PRIx64
				 ", prot=%s, mc=%s, flags=%s)",
			 op->addr, op->size, op->phys, prot, mc, flags);
		break;
	case OP_SET_OWNER:
		snprintf(out, n, "set_owner(addr=0x%" PRIx64 ", size=0x%" PRIx64 ", mc=%s, owner=%u)",
			 op->addr, op->size, mc, op->owner);
		break;
	case OP_UNMAP:
	case OP_WRPROTECT:
	case OP_FLUSH:
		snprintf(out, n, "%s(addr=0x%" PRIx64 ", size=0x%" PRIx64 ")", op_name(op->kind),
			 op->addr, op->size);
		break;
	case OP_MKYOUNG:
	case OP_GET_LEAF:
		snprintf(out, n, "%s(addr=0x%" PRIx64 ")", op_name(op->kind), op->addr);
		break;
	case OP_TEST_CLEAR_YOUNG:
		snprintf(out, n, "test_clear_young(addr=0x%" PRIx64 ", size=0x%" PRIx64 ", mkold=%d)",
			 op->addr, op->size, op->mkold);
		break;
	case OP_RELAX_PERMS:
		snprintf(out, n, "relax_perms(addr=0x%" PRIx64 ", prot=%s)", op->addr, prot);
		break;
	case OP_SPLIT:
		snprintf(out, n, "split(addr=0x%" PRIx64 ", size=0x%" PRIx64 ", mc=%s)", op->addr,
			 op->size, mc);
		break;
	case OP_CREATE_UNLINKED:
		snprintf(out, n, "create_unlinked(phys=0x%" PRIx64 ", level=%d, prot=%s, mc=%s, "
				 "force_pte=%d) -> slot %d",
			 op->phys, op->level, prot, mc, op->force_pte, op->slot);
		break;
	case OP_FREE_UNLINKED:
		snprintf(out, n, "free_unlinked(slot %d)", op->slot);
		break;
	case OP_WALK:
		snprintf(out, n, "walk(addr=0x%" PRIx64 ", size=0x%" PRIx64 ", flags=%s, visitor: "
				 "seed=0x%" PRIx64 " rate=1/%d codes=%d write=1/%d)",
			 op->addr, op->size, flags, op->wseed, op->rate, op->code_set,
			 op->write_rate);
		break;
	case OP_PTE_PROT:
		snprintf(out, n, "pte_prot(pte=0x%" PRIx64 ")", op->phys);
		break;
	case OP_HYP_MAP:
		snprintf(out, n, "hyp_map(addr=0x%" PRIx64 ", size=0x%" PRIx64 ", phys=0x%" PRIx64
				 ", prot=%s)",
			 op->addr, op->size, op->phys, prot);
		break;
	case OP_HYP_UNMAP:
		snprintf(out, n, "hyp_unmap(addr=0x%" PRIx64 ", size=0x%" PRIx64 ")", op->addr,
			 op->size);
		break;
	case OP_HYP_PTE_PROT:
		if (op->raw_pte)
			snprintf(out, n, "hyp_pte_prot(pte=0x%" PRIx64 ")", op->phys);
		else
			snprintf(out, n, "hyp_pte_prot(the leaf at 0x%" PRIx64 ")", op->addr);
		break;
	default:
		snprintf(out, n, "?");
	}
}

void diff_fields(char *out, size_t n, unsigned diffs)
{
	static const char *const names[] = { "ret",   "pte",    "leaves",  "get_leaf", "pages",
					     "tlbi",  "cmo",    "force_pte_cb", "warn", "memcache",
					     "visits", "hang",  "unlinked", "pool",	"refcount",
					     "corrupt" };
	size_t i, len = 0;

	out[0] = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (diffs & (1u << i))
			len += (size_t)snprintf(out + len, n - len, "%s%s", len ? " " : "", names[i]);
}

/* ---- comparison ---- */

static bool leaves_equal(const struct leaves *a, const struct leaves *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (a->v[i].addr != b->v[i].addr || a->v[i].level != b->v[i].level ||
		    a->v[i].pte != b->v[i].pte)
			return false;
	return true;
}

typedef bool (*ev_pred)(uint32_t kind);
static bool is_tlbi(uint32_t k)
{
	return KP_EV_IS_TLBI(k);
}
static bool is_cmo(uint32_t k)
{
	return KP_EV_IS_CMO(k);
}
static bool is_force(uint32_t k)
{
	return k == KP_EV_FORCE_PTE;
}

/*
 * Events are equal field by field, but for one choice the architecture
 * leaves open: the address of the tlbi vae2is that follows removing a
 * hyp table entry. 6.12 passes the address its walk entered the entry at
 * (the range's start, if inside it), pgwalk the entry's first address;
 * both are addresses the removed entry translated, and a vae2is by any
 * of them invalidates the walks cached through it. Where one side says
 * which level the entry was at, the two addresses are equal when they
 * fall in that entry's range.
 */
static bool event_equal(const struct kp_event *x, const struct kp_event *y)
{
	int8_t l = x->entry_level != KP_LEVEL_UNKNOWN ? x->entry_level : y->entry_level;

	if (x->kind != y->kind || x->b != y->b)
		return false;
	if (x->a == y->a)
		return true;
	if (x->kind != KP_EV_TLBI_HYP || x->b != (uint64_t)(int64_t)INT_MAX ||
	    l == KP_LEVEL_UNKNOWN || l < -1 || l > KP_LAST_LEVEL)
		return false;
	return x->a >> KP_LEVEL_SHIFT(l) == y->a >> KP_LEVEL_SHIFT(l);
}

static bool events_equal(const struct kp_log *a, const struct kp_log *b, ev_pred pred)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < a->n && !pred(a->ev[i].kind))
			i++;
		while (j < b->n && !pred(b->ev[j].kind))
			j++;
		if (i == a->n || j == b->n)
			return i == a->n && j == b->n;
		if (!event_equal(&a->ev[i], &b->ev[j]))
			return false;
		i++;
		j++;
	}
}

static bool rec_eq(const struct kp_visit_rec *a, const struct kp_visit_rec *b)
{
	return a->visit == b->visit && a->level == b->level && a->addr == b->addr &&
	       a->old == b->old && a->ret == b->ret;
}

static bool recs_equal(const struct kp_script *a, const struct kp_script *b)
{
	size_t i;

	for (i = 0; i < a->nrec && i < b->nrec; i++)
		if (!rec_eq(&a->rec[i], &b->rec[i]))
			return false;
	return true;
}

static bool traces_equal(const struct kp_script *a, const struct kp_script *b)
{
	return a->nvisits == b->nvisits && a->hash == b->hash && a->nrec == b->nrec &&
	       a->start == b->start && a->end == b->end && a->ctx_mismatch == b->ctx_mismatch &&
	       recs_equal(a, b);
}

unsigned compare_outcomes(const struct op *op, const struct outcome *a, const struct state *sa,
			  const struct kp_log *la, const struct outcome *b,
			  const struct state *sb, const struct kp_log *lb, bool self)
{
	unsigned d = 0;
	size_t i;

	(void)self;
	if (a->ret_cmp && b->ret_cmp && a->ret != b->ret)
		d |= D_RET;
	if (a->aux_cmp && b->aux_cmp && a->aux != b->aux)
		d |= D_AUX;
	if (!leaves_equal(&sa->leaves, &sb->leaves))
		d |= D_LEAVES;
	for (i = 0; i < sa->nsamples && i < sb->nsamples; i++) {
		const struct sample *x = &sa->samples[i], *y = &sb->samples[i];

		if (x->ret != y->ret || x->pte != y->pte || x->level != y->level)
			d |= D_GETLEAF;
	}
	if (sa->in_use != sb->in_use)
		d |= D_PAGES;
	if (!events_equal(la, lb, is_tlbi))
		d |= D_TLBI;
	if (!events_equal(la, lb, is_cmo))
		d |= D_CMO;
	if (!events_equal(la, lb, is_force))
		d |= D_FORCE;
	if (a->warns != b->warns)
		d |= D_WARN;
	if (op->mc >= 0 && a->mc_left != b->mc_left)
		d |= D_MC;
	if (op->kind == OP_WALK && a->script && b->script) {
		if (a->script->hang != b->script->hang)
			d |= D_HANG;
		if (!traces_equal(a->script, b->script))
			d |= D_TRACE;
	}
	if (op->kind == OP_CREATE_UNLINKED &&
	    (a->unlinked_ok != b->unlinked_ok || a->unlinked_tables != b->unlinked_tables ||
	     !leaves_equal(&a->unlinked, &b->unlinked)))
		d |= D_UNLINKED;
	if (sa->pool_errors != sb->pool_errors)
		d |= D_POOL;
	if (sa->refcount_errors != sb->refcount_errors)
		d |= D_REFCOUNT;
	if (sa->corrupt != sb->corrupt)
		d |= D_CORRUPT;
	return d;
}

/* ---- classification ---- */

struct overlap {
	int valid, blocks, partial_blocks, annotations, perm_only, identical, other_oa,
		other_attr, old_leaf, sw_perm, nonnormal_blocks;
};

static bool leaf_valid(uint64_t pte)
{
	return pte & KP_PTE_VALID;
}

/* How [start, end) meets the leaves before the operation; for a map, also
 * how each valid leaf compares with what the map would put there. */
/* The descriptor bits that hold output address `oa` in the kernel under
 * test (kvm_phys_to_pte): 47:PAGE_SHIFT in place, PA[51:48] in 15:12 with
 * 64K pages, PA[49:PAGE_SHIFT] in place and PA[51:50] in 9:8 with LPA2. */
static uint64_t oa_bits(uint64_t oa)
{
	if (kp_caps.lpa2)
		return (oa & KP_PTE_ADDR_MASK_LPA2) | (oa >> 50 & 3) << 8;
	if (KP_PAGE_SHIFT == 16)
		return (oa & KP_PTE_ADDR_MASK) | (oa >> 48 & 0xf) << 12;
	return oa & KP_PTE_ADDR_MASK;
}

/* Every descriptor bit oa_bits() may set. */
static uint64_t oa_mask(void)
{
	return oa_bits(~0ull);
}

static struct overlap overlap_of(const struct leaves *pre, uint64_t start, uint64_t end,
				 const struct op *map)
{
	struct overlap o = { 0 };
	size_t i;

	for (i = 0; i < pre->n; i++) {
		const struct leaf *l = &pre->v[i];
		uint64_t gran = KP_GRANULE(l->level), lend = l->addr + gran;

		if (lend <= start || l->addr >= end)
			continue;
		if (!leaf_valid(l->pte)) {
			o.annotations++;
			continue;
		}
		o.valid++;
		if (l->level < KP_LAST_LEVEL) {
			o.blocks++;
			if (l->addr < start || lend > end)
				o.partial_blocks++;
			if ((l->pte & KP_PTE_MEMATTR) != (0xfull << 2))
				o.nonnormal_blocks++;
		}
		if (map) {
			/* The leaf 6.12 builds for this map (no FWB): output
			 * address (kvm_phys_to_pte), MemAttr, S2AP, inner
			 * shareable (in VTCR_EL2.SH0 with LPA2), AF, XN unless
			 * X, the software bits. */
			uint64_t oa = (map->phys & ~(KP_PAGE_SIZE - 1)) + (l->addr - start);
			uint64_t attr = (map->prot & KP_PROT_DEVICE)	    ? 0x1
					: (map->prot & KP_PROT_NORMAL_NC) ? 0x5
									   : 0xf;
			uint64_t want = oa_bits(oa) | attr << 2 |
					(map->prot & KP_PROT_R ? KP_PTE_S2AP_R : 0) |
					(map->prot & KP_PROT_W ? KP_PTE_S2AP_W : 0) |
					(kp_caps.lpa2 ? 0 : 3ull << 8) | KP_PTE_AF |
					(map->prot & KP_PROT_X ? 0 : KP_PTE_XN) |
					(map->prot & KP_PROT_SW) | KP_PTE_VALID |
					(l->level == KP_LAST_LEVEL ? KP_PTE_TYPE : 0);
			uint64_t diff = want ^ l->pte;

			if (l->addr < start || (diff & oa_mask()))
				o.other_oa++;
			else if (!diff)
				o.identical++;
			else if (!(diff & ~KP_PTE_PERMS))
				o.perm_only++;
			else if (!(diff & ~(KP_PTE_PERMS | KP_PTE_AF)))
				o.old_leaf++;
			else if (!(diff & ~(KP_PTE_PERMS | KP_PTE_AF | KP_PTE_SW)))
				o.sw_perm++;
			else
				o.other_attr++;
		}
	}
	return o;
}


/* The first input address where the two tables differ (a leaf, or else a
 * get_leaf sample); false when they agree. */
static bool first_state_diff(const struct state *sa, const struct state *sb, uint64_t *addr)
{
	const struct leaves *a = &sa->leaves, *b = &sb->leaves;
	size_t i = 0, j = 0, k;

	while (i < a->n || j < b->n) {
		const struct leaf *x = i < a->n ? &a->v[i] : NULL, *y = j < b->n ? &b->v[j] : NULL;

		if (x && y && x->addr == y->addr && x->level == y->level && x->pte == y->pte) {
			i++;
			j++;
			continue;
		}
		*addr = !y || (x && x->addr < y->addr) ? x->addr : y->addr;
		return true;
	}
	for (k = 0; k < sa->nsamples && k < sb->nsamples; k++) {
		const struct sample *x = &sa->samples[k], *y = &sb->samples[k];

		if (x->ret != y->ret || x->pte != y->pte || x->level != y->level) {
			*addr = x->addr;
			return true;
		}
	}
	return false;
}

static const struct leaf *covering(const struct leaves *pre, uint64_t x)
{
	size_t i;

	for (i = 0; i < pre->n; i++)
		if (pre->v[i].addr <= x && x - pre->v[i].addr < KP_GRANULE(pre->v[i].level))
			return &pre->v[i];
	return NULL;
}

/* What was at x before the operation, against what it asked for. */
static void where(char *out, size_t n, const struct leaves *pre, uint64_t x, uint64_t start,
		  uint64_t end, const struct op *map, bool mapping_op)
{
	const struct leaf *l = covering(pre, x);
	const char *outside = x >= start && x < end ? "" : " (outside the range)";
	bool block, partial;
	const char *what;

	if (!l) {
		snprintf(out, n, "%s%s", mapping_op ? "into an empty range" : "where nothing was mapped",
			 outside);
		return;
	}
	if (!leaf_valid(l->pte)) {
		snprintf(out, n, "over an owner annotation%s", outside);
		return;
	}
	block = l->level < KP_LAST_LEVEL;
	partial = block && (l->addr < start || l->addr + KP_GRANULE(l->level) > end);
	what = partial ? "part of a block" : block ? "a whole block" : "a page";
	if (partial) {
		snprintf(out, n, "%s part of a block%s", mapping_op ? "into" : "cutting", outside);
		return;
	}
	if (map) {
		struct leaves one = { (struct leaf *)l, 1, 1 };
		struct overlap o = overlap_of(&one, start, end, map);

		snprintf(out, n, "over %s %s%s", what,
			 o.other_oa     ? "mapping another output address"
			 : o.other_attr ? "with another memory type"
			 : o.sw_perm    ? "differing in software bits (and permissions)"
			 : o.old_leaf   ? "with the access flag clear (otherwise the same but for permissions)"
			 : o.perm_only  ? "differing only in permissions"
					: "with the identical mapping",
			 outside);
		return;
	}
	snprintf(out, n, "over %s%s", what, outside);
}

static const char *walker_kind(uint32_t flags)
{
	bool shared = flags & KP_WALK_SHARED, fault = flags & KP_WALK_HANDLE_FAULT;

	return shared && fault ? "fault handler" : shared ? "shared" : fault ? "HANDLE_FAULT without SHARED"
									: "exclusive";
}

static const char *visit_name(uint32_t v)
{
	return v == KP_WALK_LEAF ? "LEAF" : v == KP_WALK_TABLE_PRE ? "TABLE_PRE" : "TABLE_POST";
}

/* What is wrong with an operation's address (and, when ranged, its size)
 * against the input size: the IPA size of a stage-2 sequence, the VA size
 * of a hyp one. */
static const char *input_problem(const struct seq_cfg *cfg, const struct op *op, bool ranged)
{
	uint64_t ia = 1ull << cfg->geo->ia_bits;

	if (ranged) {
		if (op->size == 0)
			return "size 0";
		if (op->addr >= ia || op->addr + op->size > ia || op->addr + op->size < op->addr)
			return cfg->hyp ? "range beyond the VA size" : "range beyond the IPA size";
		if ((op->addr | op->size) & (KP_PAGE_SIZE - 1))
			return "unaligned addr/size";
	} else if (op->addr >= ia) {
		return cfg->hyp ? "address beyond the VA size" : "address beyond the IPA size";
	}
	return NULL;
}

static void walk_situation(char *out, size_t n, const struct op *op, const struct outcome *a,
			   const struct outcome *b, unsigned diffs)
{
	const struct kp_script *x = a->script, *y = b->script;
	size_t i, common;
	const struct kp_visit_rec *r = NULL;

	if (!(op->flags & (KP_WALK_LEAF | KP_WALK_TABLE_PRE | KP_WALK_TABLE_POST))) {
		snprintf(out, n, "walk %s: no visit flags", walker_kind(op->flags));
		return;
	}
	if ((diffs & D_HANG) || x->hang || y->hang) {
		const struct kp_script *h = x->hang ? x : y;
		const struct kp_visit_rec *last = h->nrec ? &h->rec[h->nrec - 1] : NULL;

		snprintf(out, n, "walk %s: visitor answered %s, entry revisited forever (hang)",
			 walker_kind(op->flags),
			 last && h->nrec > 1 ? errname(h->rec[h->nrec - 2].ret) : "?");
		return;
	}
	if (!x->nrec != !y->nrec) {
		snprintf(out, n, "walk %s: one side visits nothing", walker_kind(op->flags));
		return;
	}
	if (x->start != y->start || x->end != y->end) {
		snprintf(out, n, "walk %s: ctx start/end differ", walker_kind(op->flags));
		return;
	}
	common = x->nrec < y->nrec ? x->nrec : y->nrec;
	for (i = 0; i < common; i++)
		if (!rec_eq(&x->rec[i], &y->rec[i]))
			break;
	if (i == 0 && (common || x->nrec != y->nrec)) {
		snprintf(out, n, "walk %s: first visit differs", walker_kind(op->flags));
		return;
	}
	/* The last visit both saw alike: the walkers reacted differently to
	 * its answer (or, with equal traces, returned differently). */
	if (i > 0)
		r = &x->rec[i - 1];
	if (!r) {
		snprintf(out, n, "walk %s: %s", walker_kind(op->flags),
			 x->nvisits != y->nvisits ? "visits differ past the trace" : "no visits");
		return;
	}
	snprintf(out, n, "walk %s: visitor answered %s", walker_kind(op->flags),
		 r->ret == -EAGAIN || r->ret == -ENOENT || r->ret == 0 ? errname(r->ret)
		 : r->ret > 0 || r->ret < -4095			      ? "a value that is no errno"
									      : "another errno");
}

/* ---- hyp (EL2 stage-1) classification ---- */

/* The leaf 6.12's hyp_map builds (hyp_set_prot_attr, kvm_init_valid_leaf_pte;
 * nVHE, no BTI): AttrIndx MT_DEVICE_nGnRE (4) or MT_NORMAL (0), AP RW (1)
 * or RO (3), inner shareable unless LPA2, AF, XN unless X, the software
 * bits; the output address as oa_bits(). */
static uint64_t hyp_leaf(uint64_t oa, uint64_t prot, int level)
{
	return oa_bits(oa) | (uint64_t)(prot & KP_PROT_DEVICE ? 4 : 0) << 2 |
	       (uint64_t)(prot & KP_PROT_W ? 1 : 3) << 6 | (kp_caps.lpa2 ? 0 : 3ull << 8) |
	       KP_PTE_AF | (prot & KP_PROT_X ? 0 : KP_PTE_XN) | (prot & KP_PROT_SW) | KP_PTE_VALID |
	       (level == KP_LAST_LEVEL ? KP_PTE_TYPE : 0);
}

struct hyp_overlap {
	int valid, partial_before, partial_after, identical, sw_only, different;
	uint64_t covered; /* bytes of [start, end) under valid leaves */
};

static struct hyp_overlap hyp_overlap_of(const struct leaves *pre, uint64_t start, uint64_t end,
					 const struct op *map)
{
	struct hyp_overlap o = { 0 };
	size_t i;

	for (i = 0; i < pre->n; i++) {
		const struct leaf *l = &pre->v[i];
		uint64_t lend = l->addr + KP_GRANULE(l->level);

		if (lend <= start || l->addr >= end || !leaf_valid(l->pte))
			continue;
		o.valid++;
		o.covered += (lend < end ? lend : end) - (l->addr > start ? l->addr : start);
		if (l->addr < start)
			o.partial_before++;
		else if (lend > end)
			o.partial_after++;
		if (map && l->addr >= start) {
			uint64_t oa = (map->phys & ~(KP_PAGE_SIZE - 1)) + (l->addr - start);
			uint64_t diff = hyp_leaf(oa, map->prot, l->level) ^ l->pte;

			if (!diff)
				o.identical++;
			else if (!(diff & ~KP_PTE_SW))
				o.sw_only++;
			else
				o.different++;
		}
	}
	return o;
}

static void hyp_situation(char *sit, size_t n, const struct seq_cfg *cfg, const struct op *op,
			  const struct leaves *pre, const struct outcome *a, const struct outcome *b)
{
	uint64_t start = op->addr & ~(KP_PAGE_SIZE - 1);
	uint64_t end = (start + op->size + KP_PAGE_SIZE - 1) & ~(KP_PAGE_SIZE - 1);
	const char *p = NULL;
	struct hyp_overlap o;

	switch (op->kind) {
	case OP_HYP_MAP:
		/* hyp_set_prot_attr's refusals first: the kernel checks prot
		 * before the range; then what pgwalk deliberately does
		 * otherwise (NORMAL_NC, outputs its descriptors cannot hold),
		 * then how the range meets what was mapped (Linux's rounding
		 * of unaligned input, bits it drops and an unaligned phys are
		 * noted after it). */
		if (!(op->prot & KP_PROT_R))
			p = "prot without R";
		else if ((op->prot & KP_PROT_X) && (op->prot & KP_PROT_W))
			p = "W with X";
		else if ((op->prot & KP_PROT_X) && (op->prot & KP_PROT_DEVICE))
			p = "X on DEVICE";
		else if (op->prot & KP_PROT_NORMAL_NC)
			p = "NORMAL_NC in prot";
		else if (op->size && KP_LINUX_PA_BITS(kp_caps.lpa2) == 48 &&
			 (op->phys & ~(KP_PAGE_SIZE - 1)) + (end - start) > (1ull << 48))
			p = "phys beyond 48 bits";
		else if ((p = input_problem(cfg, op, true)) && !strcmp(p, "unaligned addr/size"))
			p = NULL;
		if (!p) {
			/* What 6.12 misbehaves on (and pgwalk refuses) decides
			 * before running out of pages, which replacing a block
			 * with tables may cause. */
			o = hyp_overlap_of(pre, start, end, op);
			p = o.partial_before || o.partial_after ? "into part of a block"
			    : o.different			  ? "over a different mapping"
			    : a->ret == -ENOMEM || b->ret == -ENOMEM ? "pool runs out"
			    : o.sw_only				  ? "over a leaf differing only in software bits"
			    : o.identical			  ? "over the identical mapping"
								  : "into an empty range";
			snprintf(sit, n, "%s%s%s%s", p,
				 (op->addr | op->size) & (KP_PAGE_SIZE - 1) ? ", unaligned addr/size" : "",
				 op->phys & (KP_PAGE_SIZE - 1) ? ", unaligned phys" : "",
				 op->prot & ~KP_PROT_KNOWN ? ", unknown prot bits" : "");
			return;
		}
		break;
	case OP_HYP_UNMAP:
		p = input_problem(cfg, op, true);
		if (p && !strcmp(p, "unaligned addr/size"))
			p = NULL;
		if (!p && !cfg->hyp_page_count)
			p = "mm_ops without page_count";
		if (!p) {
			o = hyp_overlap_of(pre, start, end, NULL);
			p = o.partial_before    ? "a block starting before the range"
			    : o.partial_after  ? "a block extending past the range"
			    : !o.valid	       ? "over an empty range"
			    : o.covered < end - start ? "over a range with holes"
						      : "over a fully mapped range";
			snprintf(sit, n, "%s%s", p,
				 (op->addr | op->size) & (KP_PAGE_SIZE - 1) ? ", unaligned addr/size" : "");
			return;
		}
		break;
	case OP_HYP_PTE_PROT:
		p = op->raw_pte ? (op->phys & KP_PTE_VALID ? "valid pte" : "invalid pte") : "of a leaf";
		break;
	default:
		p = "?";
	}
	snprintf(sit, n, "%s", p);
}

void classify(char *out, size_t n, char *full, size_t fn, const struct seq_cfg *cfg,
	      const struct op *op, const struct leaves *pre, const struct outcome *a,
	      const struct outcome *b, const struct state *sa, const struct state *sb,
	      unsigned diffs)
{
	char sit[200], fields[160], rets[96] = "", at[160];
	uint64_t x;
	const char *p = NULL;
	uint64_t start = op->addr & ~(KP_PAGE_SIZE - 1);
	uint64_t end = (op->addr + op->size + KP_PAGE_SIZE - 1) & ~(KP_PAGE_SIZE - 1);
	struct overlap o;
	uint64_t ps_limit = 1ull << cfg->geo->ps_bits;

	sit[0] = 0;
	switch (op->kind) {
	case OP_HYP_MAP:
	case OP_HYP_UNMAP:
	case OP_HYP_PTE_PROT:
		hyp_situation(sit, sizeof(sit), cfg, op, pre, a, b);
		break;
	case OP_MAP:
		/* What pgwalk deliberately does otherwise decides first, so that
		 * the deviation list can name it whatever else the op has. */
		if (op->size && op->phys >= (1ull << KP_LINUX_PA_BITS(kp_caps.lpa2)))
			p = KP_LINUX_PA_BITS(kp_caps.lpa2) == 48 ? "phys beyond 48 bits"
								 : "phys beyond 52 bits";
		else if (op->size && (op->phys & ~(KP_PAGE_SIZE - 1)) +
					     (((start + op->size + KP_PAGE_SIZE - 1) &
					       ~(KP_PAGE_SIZE - 1)) - start) > ps_limit)
			p = "phys beyond VTCR.PS";
		else if ((op->flags & KP_WALK_SKIP_BBM_TLBI) && diffs == D_TLBI)
			p = "SKIP_BBM_TLBI, the range invalidated once at the end";
		else if (op->flags & ~0x7fu)
			p = "unknown walk flag";
		else if ((op->flags & (KP_WALK_SHARED | KP_WALK_HANDLE_FAULT)) == KP_WALK_SHARED)
			p = "SHARED walker without HANDLE_FAULT";
		else if ((op->flags & (KP_WALK_SHARED | KP_WALK_HANDLE_FAULT)) ==
			 KP_WALK_HANDLE_FAULT)
			p = "HANDLE_FAULT without SHARED";
		else if (!(p = input_problem(cfg, op, true))) {
			if (op->prot & ~KP_PROT_KNOWN)
				p = "unknown prot bits";
			else if ((op->prot & (KP_PROT_DEVICE | KP_PROT_NORMAL_NC)) ==
				 (KP_PROT_DEVICE | KP_PROT_NORMAL_NC))
				p = "DEVICE with NORMAL_NC";
			else if ((op->prot & (KP_PROT_DEVICE | KP_PROT_NORMAL_NC)) &&
				 (op->prot & KP_PROT_X))
				p = "executable DEVICE/NORMAL_NC";
			else if (op->phys & (KP_PAGE_SIZE - 1))
				p = "unaligned phys";
		}
		/* Running out of pages explains a difference in what was left
		 * allocated; a difference in a leaf is explained by the leaf. */
		if (!p && (a->ret == -ENOMEM || b->ret == -ENOMEM) && !(diffs & D_LEAVES))
			p = op->mc < 0 ? "memcache NULL" : op->mc == 0 ? "memcache empty"
								       : "memcache runs out";
		/* The fault path ends at the first entry it finds present
		 * (6.12: -EAGAIN); where the range meets one, that decides. */
		if (!p && (op->flags & KP_WALK_HANDLE_FAULT) && (diffs & D_RET) &&
		    (a->ret == -EAGAIN || b->ret == -EAGAIN) && overlap_of(pre, start, end, op).valid)
			p = "range partly mapped already";
		if (!p && first_state_diff(sa, sb, &x)) {
			where(at, sizeof(at), pre, x, start, end, op, true);
			p = at;
		}
		if (!p) {
			o = overlap_of(pre, start, end, op);
			if (o.partial_blocks)
				p = "into part of a block";
			else if (o.other_oa)
				p = "over a mapping to another output address";
			else if (o.other_attr)
				p = "over a mapping with another memory type";
			else if (o.sw_perm)
				p = "over a leaf differing in software bits (and permissions)";
			else if (o.old_leaf)
				p = "over a leaf with the access flag clear";
			else if (o.perm_only)
				p = "over a leaf differing only in permissions";
			else if (o.identical)
				p = "over the identical mapping";
			else if (o.annotations)
				p = "over an owner annotation";
			else if (!(op->prot & KP_PROT_R))
				p = "into an empty range, without R";
			else
				p = "into an empty range";
		}
		snprintf(sit, sizeof(sit), "%s%s",
			 (op->flags & (KP_WALK_SHARED | KP_WALK_HANDLE_FAULT)) ==
					 (KP_WALK_SHARED | KP_WALK_HANDLE_FAULT)
				 ? "fault path, "
				 : "",
			 p);
		break;
	case OP_SET_OWNER:
	case OP_UNMAP:
	case OP_WRPROTECT:
	case OP_FLUSH:
	case OP_TEST_CLEAR_YOUNG:
	case OP_SPLIT:
		if (op->kind == OP_SET_OWNER && op->owner > 1)
			p = "owner id above KVM_MAX_OWNER_ID";
		if (!p)
			p = input_problem(cfg, op, true);
		/* Running out of pages explains a difference in what was left
		 * allocated; a difference in a leaf is explained by the leaf. */
		if (!p && (a->ret == -ENOMEM || b->ret == -ENOMEM) && !(diffs & D_LEAVES))
			p = op->mc < 0 ? "memcache NULL" : op->mc == 0 ? "memcache empty"
								       : "memcache runs out";
		/* A whole operation refused by one side: what made it refuse is
		 * in the range as a whole, not at the first address. */
		if (!p && (diffs & D_RET) && op->kind != OP_SPLIT &&
		    overlap_of(pre, start, end, NULL).partial_blocks)
			p = "range cuts a block";
		if (!p && op->kind != OP_SPLIT && first_state_diff(sa, sb, &x)) {
			where(at, sizeof(at), pre, x, start, end, NULL, op->kind == OP_SET_OWNER);
			p = at;
		}
		if (!p) {
			o = overlap_of(pre, start, end, NULL);
			if (op->kind == OP_SPLIT && o.nonnormal_blocks)
				p = "of a DEVICE/NORMAL_NC block";
			else if (op->kind == OP_SPLIT && o.blocks)
				p = op->mc == 0 ? "of a block, empty memcache"
				    : op->mc < (int)KP_PTRS + 1 ? "of a block, memcache below 513"
								: "of a block";
			else if (o.partial_blocks)
				p = "range cuts a block";
			else if (o.blocks)
				p = "over whole blocks";
			else if (o.valid)
				p = "over pages";
			else if (o.annotations)
				p = "over owner annotations";
			else
				p = "over an empty range";
		}
		snprintf(sit, sizeof(sit), "%s", p);
		break;
	case OP_MKYOUNG:
	case OP_RELAX_PERMS:
		p = input_problem(cfg, op, false);
		if (!p && op->kind == OP_RELAX_PERMS) {
			if (op->prot & KP_PROT_SW)
				p = "SW bits in prot";
			else if (op->prot & (KP_PROT_DEVICE | KP_PROT_NORMAL_NC))
				p = "DEVICE/NORMAL_NC in prot";
			else if (op->prot & ~KP_PROT_KNOWN)
				p = "unknown prot bits";
		}
		if (!p) {
			o = overlap_of(pre, start, start + KP_PAGE_SIZE, NULL);
			p = o.blocks ? "on a block" : o.valid ? "on a page" : "with no valid leaf";
		}
		snprintf(sit, sizeof(sit), "%s", p);
		break;
	case OP_CREATE_UNLINKED:
		if (op->level < 0 || op->level > 2)
			p = op->level == 3 ? "level 3" : "level outside 0..2";
		else if (op->phys & (KP_GRANULE(op->level) - 1))
			p = "phys not aligned to the level";
		else if (op->prot & ~KP_PROT_KNOWN)
			p = "unknown prot bits";
		else if (a->ret == -ENOMEM || b->ret == -ENOMEM)
			p = "memcache runs out";
		else if (op->phys + KP_GRANULE(op->level) > ps_limit)
			p = "phys beyond VTCR.PS";
		snprintf(sit, sizeof(sit), "level %d%s%s%s", op->level, op->force_pte ? ", force_pte" : "",
			 p ? ", " : "", p ? p : "");
		if (p && (op->level < 0 || op->level > 2))
			snprintf(sit, sizeof(sit), "%s", p);
		break;
	case OP_WALK:
		walk_situation(sit, sizeof(sit), op, a, b, diffs);
		p = input_problem(cfg, op, true);
		if (p && (strstr(sit, "start/end") || strstr(sit, "visits nothing")))
			snprintf(sit + strlen(sit), sizeof(sit) - strlen(sit), ", %s", p);
		break;
	case OP_GET_LEAF:
		p = input_problem(cfg, op, false);
		snprintf(sit, sizeof(sit), "%s", p ? p : "in range");
		break;
	case OP_PTE_PROT:
		snprintf(sit, sizeof(sit), "%s", op->phys & KP_PTE_VALID ? "valid pte" : "invalid pte");
		break;
	case OP_FREE_UNLINKED:
		snprintf(sit, sizeof(sit), "table");
		break;
	default:
		snprintf(sit, sizeof(sit), "?");
	}
	/* With PGWALK_PARITY_PROT=raw every prot pgwalk sees is in the wrong
	 * layout: say so rather than blame the situation. */
	if (kp_pgwalk_raw_prot && op->prot &&
	    (op->kind == OP_MAP || op->kind == OP_RELAX_PERMS || op->kind == OP_CREATE_UNLINKED)) {
		char tmp[sizeof(sit)];

		memcpy(tmp, sit, sizeof(tmp));
		snprintf(sit, sizeof(sit), "prot layout (6.12 values untranslated), %.150s", tmp);
	}
	diff_fields(fields, sizeof(fields), diffs);
	if ((diffs & D_RET) && op->kind != OP_CREATE_UNLINKED && op->kind != OP_PTE_PROT &&
	    op->kind != OP_HYP_PTE_PROT)
		snprintf(rets, sizeof(rets), " (%s vs %s)",
			 op->kind == OP_TEST_CLEAR_YOUNG ? (a->ret ? "true" : "false") : errname(a->ret),
			 op->kind == OP_TEST_CLEAR_YOUNG ? (b->ret ? "true" : "false") : errname(b->ret));
	/* Walks and get_leaf on a hyp table are classes of their own. */
	snprintf(out, n, "%s%s: %s", cfg->hyp && op->kind < OP_HYP_MAP ? "hyp_" : "",
		 op_name(op->kind), sit);
	snprintf(full, fn, "%s%s: %s [%s]%s", cfg->hyp && op->kind < OP_HYP_MAP ? "hyp_" : "",
		 op_name(op->kind), sit, fields, rets);
}

/* ---- description ---- */

static void print_leaf(FILE *f, const char *who, const struct leaf *l)
{
	if (l)
		fprintf(f, "      %-8s 0x%012" PRIx64 " L%d pte 0x%016" PRIx64 "\n", who, l->addr,
			l->level, l->pte);
	else
		fprintf(f, "      %-8s (none)\n", who);
}

static void describe_leaves(FILE *f, const char *na, const char *nb, const struct leaves *a,
			    const struct leaves *b)
{
	size_t i = 0, j = 0, shown = 0;

	fprintf(f, "    leaves: %zu vs %zu non-zero entries; first differences:\n", a->n, b->n);
	while ((i < a->n || j < b->n) && shown < 8) {
		const struct leaf *x = i < a->n ? &a->v[i] : NULL, *y = j < b->n ? &b->v[j] : NULL;

		if (x && y && x->addr == y->addr && x->level == y->level && x->pte == y->pte) {
			i++;
			j++;
			continue;
		}
		if (x && y && x->addr == y->addr) {
			print_leaf(f, na, x);
			print_leaf(f, nb, y);
			i++;
			j++;
		} else if (x && (!y || x->addr < y->addr)) {
			print_leaf(f, na, x);
			print_leaf(f, nb, NULL);
			i++;
		} else {
			print_leaf(f, na, NULL);
			print_leaf(f, nb, y);
			j++;
		}
		shown++;
	}
}

static size_t filtered(const struct kp_log *l, ev_pred pred, const struct kp_event **out,
		       size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		if (pred(l->ev[i].kind)) {
			if (n < max)
				out[n] = &l->ev[i];
			n++;
		}
	return n;
}

static void print_event(FILE *f, const struct kp_event *e)
{
	if (e->kind == KP_EV_TLBI_IPA || e->kind == KP_EV_TLBI_IPA_NSH || e->kind == KP_EV_TLBI_HYP)
		fprintf(f, " %s(0x%" PRIx64 ", L%s)", kp_ev_name(e->kind), e->a,
			e->b == 0x7fffffff ? "?" : errname((long long)e->b));
	else if (e->kind == KP_EV_TLBI_VMID)
		fprintf(f, " %s", kp_ev_name(e->kind));
	else
		fprintf(f, " %s(0x%" PRIx64 ", 0x%" PRIx64 ")", kp_ev_name(e->kind), e->a, e->b);
}

/* Both sides' events of one kind, from a little before the first one that
 * differs. */
static void describe_events(FILE *f, const char *what, const char *na, const char *nb,
			    const struct kp_log *a, const struct kp_log *b, ev_pred pred)
{
	enum { MAX = 1 << 16 };
	static const struct kp_event *ea[MAX], *eb[MAX];
	size_t na_ = filtered(a, pred, ea, MAX), nb_ = filtered(b, pred, eb, MAX);
	size_t first = 0, from, i;

	while (first < na_ && first < nb_ && first < MAX && ea[first]->kind == eb[first]->kind &&
	       ea[first]->a == eb[first]->a && ea[first]->b == eb[first]->b)
		first++;
	from = first > 2 ? first - 2 : 0;
	fprintf(f, "    %s: %zu vs %zu calls, first difference at #%zu:\n", what, na_, nb_, first);
	fprintf(f, "      %-8s", na);
	for (i = from; i < na_ && i < MAX && i < from + 8; i++)
		print_event(f, ea[i]);
	fprintf(f, "%s\n", na_ > from + 8 ? " ..." : "");
	fprintf(f, "      %-8s", nb);
	for (i = from; i < nb_ && i < MAX && i < from + 8; i++)
		print_event(f, eb[i]);
	fprintf(f, "%s\n", nb_ > from + 8 ? " ..." : "");
}

static void describe_trace(FILE *f, const char *na, const char *nb, const struct kp_script *a,
			   const struct kp_script *b)
{
	const struct kp_script *s[2] = { a, b };
	const char *names[2] = { na, nb };
	size_t i, first = 0, common = a->nrec < b->nrec ? a->nrec : b->nrec;
	int k;

	while (first < common && rec_eq(&a->rec[first], &b->rec[first]))
		first++;
	fprintf(f, "    visits: %zu vs %zu (hang %d vs %d; ctx start 0x%" PRIx64 "/0x%" PRIx64
		   ", end 0x%" PRIx64 "/0x%" PRIx64 "); common prefix %zu:\n",
		a->nvisits, b->nvisits, a->hang, b->hang, a->start, b->start, a->end, b->end,
		first);
	for (k = 0; k < 2; k++) {
		size_t from = first >= 2 ? first - 2 : 0;

		fprintf(f, "      %-8s", names[k]);
		for (i = from; i < s[k]->nrec && i < first + 4; i++)
			fprintf(f, " [%zu %s L%d 0x%" PRIx64 " -> %s]", i, visit_name(s[k]->rec[i].visit),
				s[k]->rec[i].level, s[k]->rec[i].addr, errname(s[k]->rec[i].ret));
		fprintf(f, "\n");
	}
}

void describe_diff(FILE *f, const struct op *op, const char *na, const char *nb,
		   const struct outcome *a, const struct state *sa, const struct kp_log *la,
		   const struct outcome *b, const struct state *sb, const struct kp_log *lb,
		   unsigned diffs)
{
	size_t i;

	if (op->kind == OP_TEST_CLEAR_YOUNG)
		fprintf(f, "    returned: %s %s, %s %s\n", na, a->ret ? "true" : "false", nb,
			b->ret ? "true" : "false");
	else if (op->kind == OP_CREATE_UNLINKED)
		fprintf(f, "    returned: %s %s, %s %s\n", na,
			a->unlinked_ok ? "a table" : errname(a->ret), nb,
			b->unlinked_ok ? "a table" : errname(b->ret));
	else if (op->kind == OP_PTE_PROT) {
		char x[96], y[96];

		fmt_prot(x, sizeof(x), (uint64_t)a->ret);
		fmt_prot(y, sizeof(y), (uint64_t)b->ret);
		fprintf(f, "    returned: %s %s, %s %s\n", na, a->ret_cmp ? x : "(missing)", nb,
			b->ret_cmp ? y : "(missing)");
	} else if (a->ret_cmp || b->ret_cmp)
		fprintf(f, "    returned: %s %s, %s %s\n", na, errname(a->ret), nb, errname(b->ret));
	if (diffs & D_AUX)
		fprintf(f, "    mkyoung pte: %s 0x%" PRIx64 ", %s 0x%" PRIx64 "\n", na, a->aux, nb,
			b->aux);
	if (diffs & D_LEAVES)
		describe_leaves(f, na, nb, &sa->leaves, &sb->leaves);
	if (diffs & D_GETLEAF) {
		fprintf(f, "    get_leaf:\n");
		for (i = 0; i < sa->nsamples; i++) {
			const struct sample *x = &sa->samples[i], *y = &sb->samples[i];

			if (x->ret == y->ret && x->pte == y->pte && x->level == y->level)
				continue;
			fprintf(f, "      0x%012" PRIx64 ": %s %s L%d 0x%016" PRIx64 ", %s %s L%d 0x%016" PRIx64 "\n",
				x->addr, na, errname(x->ret), x->level, x->pte, nb, errname(y->ret),
				y->level, y->pte);
		}
	}
	if (diffs & D_PAGES)
		fprintf(f, "    pages in use: %s %zu (%zu tables below the root), %s %zu (%zu)\n", na,
			sa->in_use, sa->table_pages, nb, sb->in_use, sb->table_pages);
	if (diffs & D_MC)
		fprintf(f, "    memcache pages left: %s %d, %s %d\n", na, a->mc_left, nb, b->mc_left);
	if (diffs & D_TLBI)
		describe_events(f, "TLBI", na, nb, la, lb, is_tlbi);
	if (diffs & D_CMO)
		describe_events(f, "cache maintenance", na, nb, la, lb, is_cmo);
	if (diffs & D_FORCE)
		describe_events(f, "force_pte_cb calls", na, nb, la, lb, is_force);
	if (diffs & D_WARN)
		fprintf(f, "    WARN_ON: %s %lu, %s %lu\n", na, a->warns, nb, b->warns);
	if ((diffs & (D_TRACE | D_HANG)) && a->script && b->script)
		describe_trace(f, na, nb, a->script, b->script);
	if (diffs & D_UNLINKED) {
		fprintf(f, "    unlinked table: %zu vs %zu table pages below it\n", a->unlinked_tables,
			b->unlinked_tables);
		describe_leaves(f, na, nb, &a->unlinked, &b->unlinked);
	}
	if (diffs & D_POOL)
		fprintf(f, "    pool misuse: %s %lu (%s), %s %lu (%s)\n", na, sa->pool_errors,
			sa->pool_error, nb, sb->pool_errors, sb->pool_error);
	if (diffs & D_REFCOUNT)
		fprintf(f, "    reference counts: %s %s, %s %s\n", na,
			sa->refcount_errors ? sa->refcount_error : "ok", nb,
			sb->refcount_errors ? sb->refcount_error : "ok");
	if (diffs & D_CORRUPT)
		fprintf(f, "    table structure: %s %s, %s %s\n", na, sa->corrupt ? sa->corrupt_msg : "ok",
			nb, sb->corrupt ? sb->corrupt_msg : "ok");
}

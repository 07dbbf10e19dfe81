/*
 * kernel-parity: runs the same seeded operation sequences on Linux 6.12's
 * pgtable.c and on pgwalk's kvm_pgtable_* layer, and compares them after
 * every operation. See kernel-parity/README.md.
 *
 * Each sequence runs in a child process of its own: a crash (a kernel
 * BUG_ON, a sanitizer report, a segfault) or a hang (SIGALRM after
 * --timeout seconds on one operation) ends only that sequence, and is
 * reported with the operation that was running. The child writes its
 * result into shared memory.
 */
#include "driver.h"

#include "kp_shim.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- options ---- */

static struct {
	uint64_t seed;
	long sequences;
	int max_ops;
	bool report;
	bool self;
	const char *inject;
	bool expect_diff;
	long only_seq;
	const char *only_ops;
	const char *deviations;
	int timeout;
	double budget;
	bool verbose;
	int print_details;
	bool caps_forced;
	struct kp_caps caps;
} opt = {
	.sequences = 2500,
	.max_ops = 40,
	.only_seq = -1,
	.timeout = 20,
	.budget = 0,
	.print_details = 3,
};

/* ---- results shared with the child ---- */

enum { RES_OK, RES_DIFF, RES_DEVIATED, RES_CRASH, RES_HANG };

#define MAX_DEV_HITS 64
#define MAX_FINDINGS 24

/* One disagreement: its class, the class with what differed and the return
 * codes (what deviations match), and where. */
struct finding {
	char cls[200];
	char full[320];
	int op;
	unsigned diffs;
};

/*
 * A sequence's result. The first disagreement is the sequence's; a
 * disagreement that leaves both tables equal does not end the sequence,
 * so later ones are recorded too (findings[1..]).
 */
struct seq_result {
	int status;
	volatile int progress; /* operation running; -1 init, nops teardown */
	volatile int side;
	int signal;
	int deviation; /* RES_DEVIATED: which */
	struct finding findings[MAX_FINDINGS];
	int nfindings;
	unsigned long dev_hits[MAX_DEV_HITS];
	char detail[48 * 1024];
};

struct run_req {
	uint64_t seed;
	int index;
	int max_ops;
	bool use_mask;
	bool mask[KP_MAX_OPS];
	bool transcript;
};

static struct seq_result *shared_res;
static int stderr_fd = -1;

/* ---- sides ---- */

static const char *side_label(int k)
{
	if (k == 0)
		return "linux";
	return opt.self ? "linux#2" : "pgwalk";
}

struct slots {
	void *table[KP_SLOTS];
	int8_t level[KP_SLOTS];
};

static struct kp_script scripts[2];

static void sample_addrs(const struct seq_cfg *c, const struct op *op, int idx, uint64_t *out)
{
	struct rng r = { kp_mix64(c->seed ^ kp_mix64(((uint64_t)c->index << 20) ^ (uint64_t)idx)) | 1 };
	uint64_t base = op->addr & ~(KP_PAGE_SIZE - 1);
	int i = 0;

	out[i++] = op->addr;
	out[i++] = op->addr + (op->size ? op->size - 1 : 0);
	out[i++] = base - KP_PAGE_SIZE;
	out[i++] = op->addr + op->size;
	out[i++] = (base & ~(KP_GRANULE(2) - 1)) + KP_GRANULE(2) / 2;
	out[i++] = c->hot[0];
	out[i++] = c->hot[1] + KP_GRANULE(2) - KP_PAGE_SIZE;
	while (i < KP_SAMPLES)
		out[i++] = c->window + rng_below(&r, c->window_size / KP_PAGE_SIZE) * KP_PAGE_SIZE;
}

static void free_slot(struct kp_side *s, struct slots *sl, int slot)
{
	if (sl->table[slot]) {
		kp_enter(s);
		s->impl->free_unlinked(s->st, sl->table[slot], sl->level[slot]);
		sl->table[slot] = NULL;
	}
}

static void exec_op(struct kp_side *s, int k, const struct op *op, struct outcome *o,
		    struct slots *sl)
{
	struct kp_mc mcv = { op->mc }, *mc = op->mc < 0 ? NULL : &mcv;
	const struct kp_impl *im = s->impl;
	bool have;

	memset(o, 0, sizeof(*o));
	o->ret_cmp = true;
	kp_enter(s);
	switch (op->kind) {
	case OP_MAP:
		o->ret = im->map(s->st, op->addr, op->size, op->phys, op->prot, mc, op->flags);
		break;
	case OP_UNMAP:
		o->ret = im->unmap(s->st, op->addr, op->size);
		break;
	case OP_SET_OWNER:
		o->ret = im->set_owner(s->st, op->addr, op->size, mc, op->owner);
		break;
	case OP_WRPROTECT:
		o->ret = im->wrprotect(s->st, op->addr, op->size);
		break;
	case OP_MKYOUNG:
		o->ret_cmp = false;
		o->aux = im->mkyoung(s->st, op->addr, &have);
		o->aux_cmp = have;
		break;
	case OP_TEST_CLEAR_YOUNG:
		o->ret = im->test_clear_young(s->st, op->addr, op->size, op->mkold);
		break;
	case OP_RELAX_PERMS:
		o->ret = im->relax_perms(s->st, op->addr, op->prot);
		break;
	case OP_FLUSH:
		o->ret = im->flush(s->st, op->addr, op->size);
		break;
	case OP_SPLIT:
		o->ret = im->split(s->st, op->addr, op->size, mc);
		break;
	case OP_CREATE_UNLINKED: {
		void *t;

		free_slot(s, sl, op->slot);
		kp_enter(s);
		t = im->create_unlinked(s->st, op->phys, op->level, op->prot, mc, op->force_pte);
		if ((uintptr_t)t >= (uintptr_t)-4095) {
			o->ret = (long)(intptr_t)t;
		} else if (!t || !kp_pool_owns(&s->pool, t)) {
			o->ret = -1000; /* neither a table nor an error */
		} else {
			o->unlinked_ok = true;
			sl->table[op->slot] = t;
			sl->level[op->slot] = op->level;
			o->unlinked_tables = 1 + dump_tree(s, t, op->level + 1, KP_PTRS, 0,
							   &o->unlinked, NULL);
		}
		break;
	}
	case OP_FREE_UNLINKED:
		free_slot(s, sl, op->slot);
		break;
	case OP_WALK: {
		struct kp_script *sc = &scripts[k];

		memset(sc, 0, sizeof(*sc));
		sc->seed = op->wseed;
		sc->flags = op->flags;
		sc->rate = op->rate;
		sc->code_set = op->code_set;
		sc->write_rate = op->write_rate;
		if (k == 1 && opt.inject && !strcmp(opt.inject, "visit") && op->rate)
			sc->code_set = (op->code_set + 1) % 6;
		o->script = sc;
		o->ret = im->walk(s->st, op->addr, op->size, sc);
		break;
	}
	case OP_GET_LEAF: {
		uint64_t pte;
		int8_t level;

		o->ret = im->get_leaf(s->st, op->addr, &pte, &level);
		break;
	}
	case OP_PTE_PROT:
		o->ret = (long long)im->pte_prot(op->phys, &have);
		o->ret_cmp = have;
		break;
	case OP_HYP_MAP:
		o->ret = im->hyp_map(s->st, op->addr, op->size, op->phys, op->prot);
		break;
	case OP_HYP_UNMAP:
		o->ret = (long long)im->hyp_unmap(s->st, op->addr, op->size);
		break;
	case OP_HYP_PTE_PROT: {
		/* The leaf's own pte (the tables agree, or the sequence would
		 * have stopped), or a made-up one. */
		uint64_t pte = op->phys;
		int8_t level;

		if (!op->raw_pte && im->get_leaf(s->st, op->addr, &pte, &level))
			pte = 0;
		o->ret = (long long)im->hyp_pte_prot(pte);
		break;
	}
	default:
		break;
	}
	o->mc_left = mcv.nobjs;
}

/* Deliberate differences on side 2, to check that the harness sees them. */
static void inject(int idx, const struct op *op, struct outcome *b, struct state *sb,
		   struct kp_side *side_b)
{
	static bool done;

	if (!opt.inject || done)
		return;
	if (!strcmp(opt.inject, "leaf") && sb->leaves.n) {
		sb->leaves.v[sb->leaves.n / 2].pte ^= 1ull << 57;
		done = true;
	} else if (!strcmp(opt.inject, "ret") &&
		   (op->kind == OP_UNMAP || (op->kind == OP_HYP_UNMAP && b->ret))) {
		b->ret = b->ret ? 0 : -EINVAL;
		done = true;
	} else if (!strcmp(opt.inject, "tlbi")) {
		size_t i;

		for (i = side_b->log.n; i-- > 0;)
			if (KP_EV_IS_TLBI(side_b->log.ev[i].kind)) {
				memmove(&side_b->log.ev[i], &side_b->log.ev[i + 1],
					(side_b->log.n - i - 1) * sizeof(side_b->log.ev[0]));
				side_b->log.n--;
				done = true;
				break;
			}
	} else if (!strcmp(opt.inject, "pages") && idx == 0) {
		sb->in_use++;
		done = true;
	}
}

static void add_finding(struct seq_result *res, const char *cls, const char *full, int op,
			unsigned diffs)
{
	struct finding *f;

	if (res->nfindings == MAX_FINDINGS)
		return;
	f = &res->findings[res->nfindings++];
	snprintf(f->cls, sizeof(f->cls), "%s", cls);
	snprintf(f->full, sizeof(f->full), "%s", full);
	f->op = op;
	f->diffs = diffs;
}

static void report_diff(struct seq_result *res, FILE *out, bool describe_all,
			const struct seq_cfg *cfg, int idx, const struct op *op,
			const struct leaves *pre, struct outcome *o, struct state *st,
			struct kp_side *sides, unsigned diffs, bool *stop)
{
	char cls[200], full[320], desc[512];
	struct deviation *d;

	classify(cls, sizeof(cls), full, sizeof(full), cfg, op, pre, &o[0], &o[1], &st[0], &st[1],
		 diffs);
	d = deviation_match(full);
	if (d) {
		size_t di = (size_t)(d - kp_deviations);

		if (di < MAX_DEV_HITS)
			res->dev_hits[di]++;
		if (!(diffs & D_STATE))
			return;
		/* The tables now differ, deliberately: nothing after this
		 * operation can be compared. */
		*stop = true;
		if (res->status == RES_OK) {
			res->status = RES_DEVIATED;
			res->deviation = (int)di;
		}
		return;
	}
	if (res->status != RES_DIFF)
		res->status = RES_DIFF;
	add_finding(res, cls, full, idx, diffs);
	if (diffs & D_STATE)
		*stop = true;
	if (res->nfindings > 1 && !describe_all)
		return;
	describe_op(desc, sizeof(desc), op);
	fprintf(out, "  op #%d: %s\n  class: %s\n", idx, desc, full);
	describe_diff(out, op, side_label(0), side_label(1), &o[0], &st[0], &sides[0].log, &o[1],
		      &st[1], &sides[1].log, diffs);
}

static void print_cfg(FILE *out, const struct seq_cfg *c)
{
	if (c->hyp) {
		fprintf(out,
			"  sequence %d of seed 0x%016" PRIx64 ": %s (kvm_pgtable_hyp_init va_bits %u, "
			"mm_ops %s page_count), window 0x%" PRIx64 "+0x%" PRIx64 ", %d ops\n",
			c->index, c->seed, c->geo->name, c->va_bits,
			c->hyp_page_count ? "with" : "without", c->window, c->window_size, c->nops);
		return;
	}
	fprintf(out,
		"  sequence %d of seed 0x%016" PRIx64 ": %s (VTCR 0x%" PRIx64 "), s2 flags 0x%x, "
		"force_pte_cb mode %d, FEAT_TLBIRANGE %s, window 0x%" PRIx64 "+0x%" PRIx64 ", %d ops\n",
		c->index, c->seed, c->geo->name, c->geo->vtcr, c->s2_flags, c->force_pte_mode,
		kp_caps.tlb_range ? "on" : "off", c->window, c->window_size, c->nops);
}

static void run_sequence(const struct run_req *rq, struct seq_result *res)
{
	static struct seq_cfg cfg;
	struct kp_side sides[2];
	struct slots slots[2];
	struct state st[2], pre;
	struct outcome o[2];
	uint64_t samples[KP_SAMPLES];
	FILE *out;
	int i, k;
	bool stop = false;

	out = fmemopen(res->detail, sizeof(res->detail) - 1, "w");
	if (!out)
		_exit(3);
	setvbuf(out, NULL, _IONBF, 0);
	gen_sequence(&cfg, rq->seed, rq->index, rq->max_ops);
	if (opt.caps_forced)
		kp_caps = opt.caps;
	/* FEAT_TLBIRANGE varies per sequence unless --caps names it. */
	if (!opt.caps.tlb_range)
		kp_caps.tlb_range = cfg.tlb_range;
	kp_force_pte_mode = cfg.force_pte_mode;
	print_cfg(out, &cfg);

	memset(sides, 0, sizeof(sides));
	memset(slots, 0, sizeof(slots));
	memset(&pre, 0, sizeof(pre));
	res->progress = -1;
	for (k = 0; k < 2; k++) {
		sides[k].impl = k == 0 || opt.self ? &kp_linux_impl : &kp_pgwalk_impl;
		sides[k].label = side_label(k);
		sides[k].st = calloc(1, sides[k].impl->state_size);
		kp_pool_init(&sides[k].pool, KP_POOL_PAGES);
		if (cfg.hyp) {
			sides[k].pool.null_mc_allocates = true;
			if (cfg.hyp_pool_limit)
				sides[k].pool.limit = cfg.hyp_pool_limit;
		}
		res->side = k;
		kp_enter(&sides[k]);
		kp_shim_reset();
		sides[k].log.n = 0;
		memset(&o[k], 0, sizeof(o[k]));
		o[k].ret_cmp = true;
		if (cfg.hyp)
			o[k].ret = sides[k].impl->hyp_init(sides[k].st, cfg.va_bits,
							   cfg.hyp_page_count);
		else
			o[k].ret = sides[k].impl->init(sides[k].st, cfg.geo->vtcr, cfg.s2_flags,
						       cfg.force_pte_mode ? kp_force_pte_cb : NULL);
		o[k].warns = kp_warn_count;
		sample_addrs(&cfg, &cfg.ops[0], -1, samples);
		capture_state(&sides[k], &st[k], samples, KP_SAMPLES);
	}
	{
		struct op init_op = { .kind = OP_GET_LEAF, .mc = -1 };
		unsigned d = compare_outcomes(&init_op, &o[0], &st[0], &sides[0].log, &o[1], &st[1],
					      &sides[1].log, opt.self);

		/* A hyp init both refuse alike is agreement (va_bits outside
		 * what either takes): nothing more to run. (get_leaf on the
		 * table that is not there is not compared.) */
		if (cfg.hyp && !(d & ~D_GETLEAF) && o[0].ret && o[0].ret == o[1].ret) {
			fprintf(out, "  hyp_init: both %s\n", errname(o[0].ret));
			fclose(out);
			return;
		}
		if (cfg.hyp && (o[0].ret || o[1].ret || d)) {
			char fields[160], cls[128], full[320];
			struct deviation *dv;
			unsigned max = kp_hyp_max_va_bits();

			diff_fields(fields, sizeof(fields), d);
			if (cfg.va_bits < 25)
				snprintf(cls, sizeof(cls), "hyp_init: va_bits below 25 (start level %d)",
					 kp_hyp_start_level(cfg.va_bits));
			else if (cfg.va_bits > max)
				snprintf(cls, sizeof(cls), "hyp_init: va_bits beyond %u (start level %d)",
					 max, kp_hyp_start_level(cfg.va_bits));
			else
				snprintf(cls, sizeof(cls), "hyp_init: va_bits %u", cfg.va_bits);
			snprintf(full, sizeof(full), "%s [%s] (%s vs %s)", cls, fields,
				 errname(o[0].ret), errname(o[1].ret));
			fprintf(out, "  init: %s\n", full);
			dv = deviation_match(full);
			if (dv) {
				size_t di = (size_t)(dv - kp_deviations);

				if (di < MAX_DEV_HITS)
					res->dev_hits[di]++;
				res->status = RES_DEVIATED;
				res->deviation = (int)di;
			} else {
				res->status = RES_DIFF;
				add_finding(res, cls, full, -1, d);
				describe_diff(out, &init_op, side_label(0), side_label(1), &o[0],
					      &st[0], &sides[0].log, &o[1], &st[1], &sides[1].log, d);
			}
			/* The tables are not both there: nothing to compare, and
			 * the pools are thrown away with the child. */
			fclose(out);
			return;
		}
		if (o[0].ret || o[1].ret || d) {
			char fields[160], cls[128], full[320];

			diff_fields(fields, sizeof(fields), d);
			res->status = RES_DIFF;
			snprintf(cls, sizeof(cls), "init: %s", cfg.geo->name);
			snprintf(full, sizeof(full), "%s [%s] (%s vs %s)", cls, fields,
				 errname(o[0].ret), errname(o[1].ret));
			add_finding(res, cls, full, -1, d);
			fprintf(out, "  init: %s\n", full);
			describe_diff(out, &init_op, side_label(0), side_label(1), &o[0], &st[0],
				      &sides[0].log, &o[1], &st[1], &sides[1].log, d);
			fclose(out);
			return;
		}
	}
	pre = st[0];
	state_free(&st[1]);

	for (i = 0; i < cfg.nops && !stop; i++) {
		const struct op *op = &cfg.ops[i];
		unsigned diffs;

		if (rq->use_mask && !rq->mask[i])
			continue;
		res->progress = i;
		sample_addrs(&cfg, op, i, samples);
		for (k = 0; k < 2; k++) {
			res->side = k;
			kp_enter(&sides[k]);
			kp_shim_reset();
			sides[k].log.n = 0;
			alarm((unsigned)opt.timeout);
			exec_op(&sides[k], k, op, &o[k], &slots[k]);
			kp_quiesce(&sides[k]);
			alarm(0);
			o[k].warns = kp_warn_count;
			capture_state(&sides[k], &st[k], samples, KP_SAMPLES);
		}
		inject(i, op, &o[1], &st[1], &sides[1]);
		diffs = compare_outcomes(op, &o[0], &st[0], &sides[0].log, &o[1], &st[1],
					 &sides[1].log, opt.self);
		if (rq->transcript) {
			char desc[512];

			describe_op(desc, sizeof(desc), op);
			fprintf(out, "  #%d %s -> %s %s, %s %s%s\n", i, desc, side_label(0),
				op->kind == OP_MKYOUNG ? "(pte)" : errname(o[0].ret), side_label(1),
				op->kind == OP_MKYOUNG ? "(pte)" : errname(o[1].ret),
				diffs ? "   <== differ" : "");
		}
		if (diffs)
			report_diff(res, out, rq->transcript, &cfg, i, op, &pre.leaves, o, st, sides,
				    diffs, &stop);
		for (k = 0; k < 2; k++)
			leaves_free(&o[k].unlinked);
		state_free(&pre);
		pre = st[0];
		state_free(&st[1]);
	}
	state_free(&pre);

	if (!stop) {
		/* Teardown: free what is left, destroy, wait out the grace
		 * period; nothing may stay allocated. */
		res->progress = cfg.nops;
		for (k = 0; k < 2; k++) {
			int s;

			res->side = k;
			kp_enter(&sides[k]);
			kp_shim_reset();
			sides[k].log.n = 0;
			alarm((unsigned)opt.timeout);
			for (s = 0; s < KP_SLOTS; s++)
				free_slot(&sides[k], &slots[k], s);
			kp_enter(&sides[k]);
			sides[k].impl->destroy(sides[k].st);
			kp_quiesce(&sides[k]);
			alarm(0);
			memset(&o[k], 0, sizeof(o[k]));
			o[k].warns = kp_warn_count;
			memset(&st[k], 0, sizeof(st[k]));
			st[k].in_use = sides[k].pool.in_use;
			st[k].pool_errors = sides[k].pool.errors;
			memcpy(st[k].pool_error, sides[k].pool.first_error, sizeof(st[k].pool_error));
		}
		{
			struct op end_op = { .kind = OP_FREE_UNLINKED, .mc = -1 };
			unsigned d = compare_outcomes(&end_op, &o[0], &st[0], &sides[0].log, &o[1],
						      &st[1], &sides[1].log, opt.self);

			/* 6.12's hyp_map into part of a valid block (or over a
			 * different one, with a WARN) replaces the block with a
			 * table and takes a second reference on its entry's page:
			 * that count never returns to zero, and destroy leaves the
			 * page allocated. So a Linux hyp table may keep pages after
			 * destroy, as many as the other side (Linux against Linux);
			 * against pgwalk, which refuses those maps (-EEXIST, a
			 * deviation that ends the sequence before here), the counts
			 * differ. pgwalk must leave none. */
			if (st[0].in_use != st[1].in_use ||
			    (st[0].in_use && !(cfg.hyp && sides[0].impl == &kp_linux_impl)) ||
			    (st[1].in_use && !(cfg.hyp && sides[1].impl == &kp_linux_impl)))
				d |= D_PAGES;
			if (d) {
				char fields[160], cls[128], full[320];
				struct deviation *dv;

				diff_fields(fields, sizeof(fields), d);
				snprintf(cls, sizeof(cls), "%s: %s", cfg.hyp ? "hyp_destroy" : "destroy",
					 (d & D_PAGES) ? "pages left after destroy" : "teardown differs");
				snprintf(full, sizeof(full), "%s [%s]", cls, fields);
				dv = deviation_match(full);
				if (dv) {
					if (res->status == RES_OK)
						res->status = RES_DEVIATED;
					res->deviation = (int)(dv - kp_deviations);
				} else {
					res->status = RES_DIFF;
					add_finding(res, cls, full, cfg.nops, d);
				}
				fprintf(out, "  teardown: %s\n    pages in use after destroy: %s %zu, %s %zu\n",
					full, side_label(0), st[0].in_use, side_label(1),
					st[1].in_use);
				describe_diff(out, &end_op, side_label(0), side_label(1), &o[0], &st[0],
					      &sides[0].log, &o[1], &st[1], &sides[1].log, d & ~D_PAGES);
			}
		}
	}
	fclose(out);
}

/* ---- the parent ---- */

static int run_forked(const struct run_req *rq, struct seq_result *res)
{
	pid_t pid;
	int status;

	memset(res, 0, offsetof(struct seq_result, detail));
	res->detail[0] = 0;
	if (stderr_fd >= 0) {
		if (ftruncate(stderr_fd, 0) || lseek(stderr_fd, 0, SEEK_SET) < 0) {
			perror("kernel-parity: stderr capture");
			exit(2);
		}
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("kernel-parity: fork");
		exit(2);
	}
	if (pid == 0) {
		if (stderr_fd >= 0 && !opt.verbose)
			dup2(stderr_fd, 2);
		run_sequence(rq, res);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("kernel-parity: waitpid");
			exit(2);
		}
	if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status))) {
		struct seq_cfg *cfg = malloc(sizeof(*cfg));
		char desc[512], tail[4096];
		ssize_t n = 0;
		size_t len = strlen(res->detail);
		int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

		gen_sequence(cfg, rq->seed, rq->index, rq->max_ops);
		char cls[200];

		res->signal = sig;
		res->status = sig == SIGALRM ? RES_HANG : RES_CRASH;
		if (res->progress >= 0 && res->progress < cfg->nops)
			describe_op(desc, sizeof(desc), &cfg->ops[res->progress]);
		else
			snprintf(desc, sizeof(desc), "%s", res->progress < 0 ? "init" : "teardown");
		snprintf(cls, sizeof(cls), "%s: %s in %s%s",
			 res->progress >= 0 && res->progress < cfg->nops
				 ? op_name(cfg->ops[res->progress].kind)
				 : res->progress < 0 ? "init" : "teardown",
			 sig == SIGALRM ? "hang" : "crash", side_label(res->side),
			 sig == SIGALRM ? "" : sig ? (sig == SIGABRT ? " (abort)" : " (signal)") : " (exit)");
		/* The crash is the sequence's result, whatever came before. */
		memmove(&res->findings[1], &res->findings[0],
			(MAX_FINDINGS - 1) * sizeof(res->findings[0]));
		res->nfindings = res->nfindings < MAX_FINDINGS ? res->nfindings + 1 : MAX_FINDINGS;
		snprintf(res->findings[0].cls, sizeof(res->findings[0].cls), "%s", cls);
		snprintf(res->findings[0].full, sizeof(res->findings[0].full), "%s", cls);
		res->findings[0].op = res->progress;
		res->findings[0].diffs = 0;
		if (stderr_fd >= 0 && lseek(stderr_fd, 0, SEEK_SET) == 0)
			n = read(stderr_fd, tail, sizeof(tail) - 1);
		tail[n > 0 ? n : 0] = 0;
		snprintf(res->detail + len, sizeof(res->detail) - len,
			 "  op #%d: %s\n  %s in %s (%s %d) after %d s limit per op\n%s%s",
			 res->progress, desc, sig == SIGALRM ? "hang" : "crash", side_label(res->side),
			 sig ? "signal" : "exit", sig ? sig : WEXITSTATUS(status), opt.timeout,
			 n > 0 ? "  stderr:\n" : "", tail);
		free(cfg);
	}
	return res->status;
}

struct cls_entry {
	char cls[200];
	unsigned long count;
	unsigned diffs; /* union over every instance */
	struct {
		char full[320];
		unsigned long count;
	} variants[6];
	unsigned long other_variants;
	int status;
	uint64_t seed;
	int index, op_index; /* the first instance */
};

static struct cls_entry *classes;
static size_t nclasses;
static unsigned long total_diffs, total_deviated, total_ok, total_run, total_findings;
static unsigned long dev_hits[MAX_DEV_HITS];

static struct cls_entry *note_class(const char *cls, const char *full, unsigned diffs,
				    int status, uint64_t seed, int index, int op_index)
{
	struct cls_entry *c = NULL;
	size_t i;

	for (i = 0; i < nclasses; i++)
		if (!strcmp(classes[i].cls, cls))
			c = &classes[i];
	if (!c) {
		classes = realloc(classes, (nclasses + 1) * sizeof(*classes));
		if (!classes) {
			perror("classes");
			exit(2);
		}
		c = &classes[nclasses++];
		memset(c, 0, sizeof(*c));
		snprintf(c->cls, sizeof(c->cls), "%s", cls);
		c->status = status;
		c->seed = seed;
		c->index = index;
		c->op_index = op_index;
	}
	c->count++;
	c->diffs |= diffs;
	for (i = 0; i < 6; i++) {
		if (!c->variants[i].count) {
			snprintf(c->variants[i].full, sizeof(c->variants[i].full), "%s", full);
			c->variants[i].count = 1;
			return c;
		}
		if (!strcmp(c->variants[i].full, full)) {
			c->variants[i].count++;
			return c;
		}
	}
	c->other_variants++;
	return c;
}

static int cmp_count(const void *a, const void *b)
{
	const struct cls_entry *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->cls, y->cls);
}

static bool has_class(const struct seq_result *r, const char *cls)
{
	int i;

	for (i = 0; i < r->nfindings; i++)
		if (!strcmp(r->findings[i].cls, cls))
			return true;
	return false;
}

/* Removes operations while the class still comes out: one pass over the
 * operations before the one that disagreed. */
static void shrink(const struct cls_entry *c, struct run_req *rq)
{
	static struct seq_cfg cfg;
	int i;

	gen_sequence(&cfg, c->seed, c->index, opt.max_ops);
	memset(rq, 0, sizeof(*rq));
	rq->seed = c->seed;
	rq->index = c->index;
	rq->max_ops = opt.max_ops;
	rq->use_mask = true;
	for (i = 0; i < cfg.nops; i++)
		rq->mask[i] = c->op_index < 0 || c->op_index >= cfg.nops || i <= c->op_index;
	if (c->op_index < 0 || c->op_index >= cfg.nops)
		return;
	for (i = 0; i < c->op_index; i++) {
		rq->mask[i] = false;
		run_forked(rq, shared_res);
		if (!has_class(shared_res, c->cls))
			rq->mask[i] = true;
	}
}

static void print_mask(FILE *f, const struct run_req *rq, int nops)
{
	int i, first = 1;

	for (i = 0; i < nops; i++)
		if (rq->mask[i]) {
			fprintf(f, "%s%d", first ? "" : ",", i);
			first = 0;
		}
}

/* ---- start-up checks ---- */

static unsigned long api_diffs;

/* Records an API difference, unless the deviation list excuses it (a
 * constant one header for every page size cannot match, say). */
static void api_difference(const char *cls)
{
	struct deviation *d = deviation_match(cls);

	if (d) {
		size_t di = (size_t)(d - kp_deviations);

		if (di < MAX_DEV_HITS)
			dev_hits[di]++;
		return;
	}
	note_class(cls, cls, 0, RES_DIFF, 0, -1, -1);
	api_diffs++;
}

/* pgwalk's kvm_get_vtcr for this page size (pgw_get_vtcr) against the
 * kernel's, with LPA2 off and (4K, 16K) on, for every IPA size from 25 to
 * 52 bits, every PARange encoding and both VMID sizes. */
static void check_vtcr(void)
{
	struct kp_caps saved = kp_caps;
	char cls[256];

	if (!kp_pgwalk_impl.get_vtcr) {
		api_difference("api: function pgw_get_vtcr missing");
		return;
	}
	for (int lpa2 = 0; lpa2 <= (KP_PAGE_SHIFT == 16 ? 0 : 1); lpa2++) {
		kp_caps.lpa2 = lpa2;
		for (uint32_t ia = 25; ia <= 52; ia++) {
			for (uint64_t parange = 0; parange <= 8; parange++) {
				for (uint64_t vmid = 0; vmid <= 2; vmid += 2) {
					uint64_t mmfr0 = parange == 8 ? 0xf : parange;
					uint64_t theirs = kp_linux_impl.get_vtcr(mmfr0, vmid << 4, ia);
					uint64_t ours = kp_pgwalk_impl.get_vtcr(mmfr0, vmid << 4, ia);

					if (theirs == ours)
						continue;
					snprintf(cls, sizeof(cls),
						 "api: kvm_get_vtcr(PARange %" PRIu64 ", VMIDBits %" PRIu64
						 ", %u bits)%s (linux 0x%" PRIx64 ", pgwalk 0x%" PRIx64 ")",
						 mmfr0, vmid, ia, lpa2 ? " with LPA2" : "", theirs, ours);
					api_difference(cls);
				}
			}
		}
	}
	kp_caps = saved;
}

static void check_api(void)
{
	size_t na, nb, i, j;
	const struct kp_fact *a = kp_linux_impl.facts(&na), *b = kp_pgwalk_impl.facts(&nb);

	for (i = 0; i < na; i++) {
		const struct kp_fact *m = NULL;
		char cls[256];

		for (j = 0; j < nb; j++)
			if (!strcmp(a[i].name, b[j].name))
				m = &b[j];
		if (m && m->value == a[i].value)
			continue;
		if (m && m->value == -0x7fffffffffffffffll)
			snprintf(cls, sizeof(cls), "api: %s missing (linux 0x%llx)", a[i].name,
				 a[i].value);
		else
			snprintf(cls, sizeof(cls), "api: %s (linux 0x%llx, pgwalk 0x%llx)", a[i].name,
				 a[i].value, m ? m->value : 0);
		api_difference(cls);
	}
	for (j = 0; j < nb; j++) {
		char cls[256];

		if (!strncmp(b[j].name, "prototype ", 10) && b[j].value != 1) {
			snprintf(cls, sizeof(cls), "api: %s differs", b[j].name);
			note_class(cls, cls, 0, RES_DIFF, 0, -1, -1);
			api_diffs++;
		} else if (!strncmp(b[j].name, "function ", 9) && b[j].value != 1) {
			snprintf(cls, sizeof(cls), "api: %s missing", b[j].name);
			note_class(cls, cls, 0, RES_DIFF, 0, -1, -1);
			api_diffs++;
		}
	}
}

/* Checks the driver's own VTCR values and geometry arithmetic against the
 * kernel's: a failure here is a harness bug, not a parity finding. */
static void check_geometries(void)
{
	struct kp_caps saved = kp_caps;
	size_t i;

	/* The kernel computes its VTCR and reads the table with the
	 * capabilities the run forces (DS with LPA2). */
	kp_caps.lpa2 = opt.caps.lpa2;
	kp_gen_lpa2 = opt.caps.lpa2;
	kp_geometries_init();
	for (i = 0; i < kp_ngeometries; i++) {
		const struct geometry *g = &kp_geometries_p[i];
		unsigned ps = g->ps_bits == 40 ? 2 : g->ps_bits == 48 ? 5 : 6;
		uint64_t theirs = kp_linux_impl.get_vtcr(ps, 0, g->ia_bits);
		struct kp_side s = { .impl = &kp_linux_impl };
		void *pgd;
		int start;
		unsigned ia;
		int ret;

		if (theirs != g->vtcr) {
			fprintf(stderr, "kernel-parity: %s: VTCR 0x%" PRIx64 ", kvm_get_vtcr says 0x%" PRIx64 "\n",
				g->name, g->vtcr, theirs);
			exit(2);
		}
		s.st = calloc(1, s.impl->state_size);
		kp_pool_init(&s.pool, 64);
		kp_enter(&s);
		ret = s.impl->init(s.st, g->vtcr, 0, NULL);
		s.impl->geometry(s.st, &pgd, &start, &ia);
		if (ret || ia != g->ia_bits || start != g->start_level ||
		    s.impl->pgd_size(g->vtcr) != g->pgd_pages * KP_PAGE_SIZE ||
		    s.pool.in_use != g->pgd_pages) {
			fprintf(stderr,
				"kernel-parity: %s: Linux reads VTCR 0x%" PRIx64 " as %u bits from level %d, "
				"%zu root bytes (init %d)\n",
				g->name, g->vtcr, ia, start, s.impl->pgd_size(g->vtcr), ret);
			exit(2);
		}
		s.impl->destroy(s.st);
		kp_pool_fini(&s.pool);
		free(s.st);
	}
	kp_caps = saved;
#if KP_PAGE_SHIFT == 12
	/* The value KVM uses for a 40-bit IPA space on a 40-bit PA system. */
	if (kp_geometries_p[0].vtcr != (0x80023558ull | (uint64_t)opt.caps.lpa2 << 32)) {
		fprintf(stderr, "kernel-parity: 40-bit VTCR is 0x%" PRIx64 ", not 0x80023558\n",
			kp_geometries_p[0].vtcr);
		exit(2);
	}
#endif
}

static void usage(void)
{
	fprintf(stderr,
		"usage: parity [--seed S] [--sequences N] [--max-ops N] [--report] [--self]\n"
		"              [--inject leaf|ret|tlbi|pages|visit] [--expect-diff]\n"
		"              [--seq N [--ops i,j,...]] [--deviations FILE] [--timeout SEC]\n"
		"              [--budget SEC] [--details N] [--caps fwb,tlb_range,lpa2] [--verbose]\n"
		"              [--hyp-share PCT]\n"
		"environment: PGWALK_PARITY_SEED, PGWALK_PARITY_SEQUENCES, PGWALK_PARITY_PROT=raw\n");
	exit(2);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void parse_caps(const char *s)
{
	opt.caps_forced = true;
	memset(&opt.caps, 0, sizeof(opt.caps));
	opt.caps.fwb = strstr(s, "fwb") != NULL;
	opt.caps.tlb_range = strstr(s, "tlb_range") != NULL;
	opt.caps.lpa2 = strstr(s, "lpa2") != NULL;
}

int main(int argc, char **argv)
{
	const char *env;
	struct run_req rq;
	double t0 = now();
	long i;
	int exit_code;
	bool seed_given = false;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((env = getenv("PGWALK_PARITY_SEED")) && *env) {
		opt.seed = strtoull(env, NULL, 0);
		seed_given = true;
	}
	if ((env = getenv("PGWALK_PARITY_SEQUENCES")) && *env)
		opt.sequences = strtol(env, NULL, 0);
	if ((env = getenv("PGWALK_PARITY_PROT")) && !strcmp(env, "raw"))
		kp_pgwalk_raw_prot = true;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--seed") && v) {
			opt.seed = strtoull(v, NULL, 0);
			seed_given = true;
			i++;
		} else if (!strcmp(a, "--sequences") && v) {
			opt.sequences = strtol(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--max-ops") && v) {
			opt.max_ops = atoi(v);
			i++;
		} else if (!strcmp(a, "--report")) {
			opt.report = true;
		} else if (!strcmp(a, "--self")) {
			opt.self = true;
		} else if (!strcmp(a, "--inject") && v) {
			opt.inject = v;
			i++;
		} else if (!strcmp(a, "--expect-diff")) {
			opt.expect_diff = true;
		} else if (!strcmp(a, "--seq") && v) {
			opt.only_seq = strtol(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--ops") && v) {
			opt.only_ops = v;
			i++;
		} else if (!strcmp(a, "--deviations") && v) {
			opt.deviations = v;
			i++;
		} else if (!strcmp(a, "--timeout") && v) {
			opt.timeout = atoi(v);
			i++;
		} else if (!strcmp(a, "--budget") && v) {
			opt.budget = atof(v);
			i++;
		} else if (!strcmp(a, "--details") && v) {
			opt.print_details = atoi(v);
			i++;
		} else if (!strcmp(a, "--caps") && v) {
			parse_caps(v);
			i++;
		} else if (!strcmp(a, "--hyp-share") && v) {
			kp_gen_hyp_pct = (unsigned)atoi(v);
			i++;
		} else if (!strcmp(a, "--verbose")) {
			opt.verbose = true;
			kp_warn_verbose = true;
		} else {
			usage();
		}
	}
	if (opt.max_ops < 1 || opt.max_ops > KP_MAX_OPS || opt.timeout < 1)
		usage();
	if (!seed_given) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		opt.seed = kp_mix64((uint64_t)t.tv_sec * 1000000007ull ^ (uint64_t)t.tv_nsec ^
				    (uint64_t)getpid());
	}
	if (opt.deviations && deviations_load(opt.deviations))
		return 2;

	shared_res = mmap(NULL, sizeof(*shared_res), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared_res == MAP_FAILED) {
		perror("kernel-parity: mmap");
		return 2;
	}
	{
		FILE *t = tmpfile();

		stderr_fd = t ? dup(fileno(t)) : -1;
		if (t)
			fclose(t);
	}

	check_geometries();
	printf("kernel-parity: Linux 6.12 pgtable.c vs %s, PAGE_SHIFT %d, seed 0x%016" PRIx64 "\n",
	       opt.self ? "itself" : "pgwalk", KP_PAGE_SHIFT, opt.seed);
	printf("kernel-parity: reproduce with PGWALK_PARITY_SEED=0x%016" PRIx64 "%s\n", opt.seed,
	       opt.self ? " --self" : "");
	if (!opt.self) {
		printf("kernel-parity: prot values %s\n",
		       kp_pgwalk_raw_prot			? "passed to pgwalk untranslated (PGWALK_PARITY_PROT=raw)"
		       : kp_pgwalk_translates_prot() ? "translated to pgwalk.h's layout (adapter table)"
						     : "identical in pgwalk.h");
		check_api();
		check_vtcr();
		if (api_diffs)
			printf("kernel-parity: %lu API differences (constants, layouts, prototypes, "
			       "functions)\n",
			       api_diffs);
	}

	if (opt.only_seq >= 0) {
		memset(&rq, 0, sizeof(rq));
		rq.seed = opt.seed;
		rq.index = (int)opt.only_seq;
		rq.max_ops = opt.max_ops;
		rq.transcript = true;
		if (opt.only_ops) {
			const char *p = opt.only_ops;

			rq.use_mask = true;
			while (*p) {
				long n = strtol(p, (char **)&p, 10);

				if (n >= 0 && n < KP_MAX_OPS)
					rq.mask[n] = true;
				if (*p == ',')
					p++;
				else if (*p)
					usage();
			}
		}
		run_forked(&rq, shared_res);
		printf("%s", shared_res->detail);
		if (!shared_res->nfindings)
			printf("result: agree%s\n",
			       shared_res->status == RES_DEVIATED ? " (stopped by a deviation)" : "");
		for (int f = 0; f < shared_res->nfindings; f++)
			printf("result: op #%d: %s\n", shared_res->findings[f].op,
			       shared_res->findings[f].full);
		return shared_res->nfindings ? 1 : 0;
	}

	for (i = 0; i < opt.sequences; i++) {
		int st;

		if (opt.budget > 0 && now() - t0 > opt.budget) {
			printf("kernel-parity: time budget of %.0f s reached after %ld sequences\n",
			       opt.budget, i);
			break;
		}
		memset(&rq, 0, sizeof(rq));
		rq.seed = opt.seed;
		rq.index = (int)i;
		rq.max_ops = opt.max_ops;
		st = run_forked(&rq, shared_res);
		total_run++;
		for (size_t d = 0; d < MAX_DEV_HITS; d++)
			dev_hits[d] += shared_res->dev_hits[d];
		if (st == RES_DEVIATED)
			total_deviated++;
		if (!shared_res->nfindings) {
			total_ok += st == RES_OK;
			continue;
		}
		total_diffs++;
		for (int f = 0; f < shared_res->nfindings; f++) {
			const struct finding *fd = &shared_res->findings[f];
			struct cls_entry *c = note_class(fd->cls, fd->full, fd->diffs, st, opt.seed,
							 (int)i, fd->op);

			total_findings++;
			if (c->count == 1 || opt.verbose) {
				printf("[seq %ld] op #%d: %s   (--seq %ld)\n", i, fd->op, fd->full, i);
				if (f == 0 && (long)nclasses <= opt.print_details && c->count == 1)
					printf("%s", shared_res->detail);
			}
		}
		if (opt.sequences >= 10 && (i + 1) % (opt.sequences / 10) == 0)
			printf("kernel-parity: %ld/%ld sequences, %lu disagree\n", i + 1, opt.sequences,
			       total_diffs);
	}

	if (nclasses)
		qsort(classes, nclasses, sizeof(*classes), cmp_count);
	printf("\n==== kernel-parity summary: %lu sequences: %lu agree, %lu disagree, %lu stopped "
	       "by a deviation; %lu disagreements in %zu classes (%lu API); %.1f s ====\n",
	       total_run, total_ok, total_diffs, total_deviated, total_findings + api_diffs,
	       nclasses, api_diffs, now() - t0);
	for (size_t c = 0; c < nclasses; c++) {
		char fields[160];

		diff_fields(fields, sizeof(fields), classes[c].diffs);
		printf("%6lu  %s%s%s%s\n", classes[c].count, classes[c].cls, fields[0] ? "  [" : "",
		       fields, fields[0] ? "]" : "");
		if (classes[c].index < 0)
			continue;
		for (int v = 0; v < 6 && classes[c].variants[v].count; v++) {
			const char *r = strrchr(classes[c].variants[v].full, '(');

			if (r && strstr(classes[c].variants[v].full, "] ("))
				printf("          %5lu x %s\n", classes[c].variants[v].count, r);
		}
		printf("          first: --seq %d, op #%d\n", classes[c].index, classes[c].op_index);
	}
	for (size_t d = 0; d < kp_ndeviations && d < MAX_DEV_HITS; d++)
		printf("deviation \"%s\" matched %lu times: %s\n", kp_deviations[d].pattern,
		       dev_hits[d], kp_deviations[d].reason);

	if (opt.report) {
		printf("\n==== minimal reproducers (operations kept after shrinking) ====\n");
		for (size_t c = 0; c < nclasses; c++) {
			static struct seq_cfg cfg;

			if (classes[c].index < 0)
				continue;
			shrink(&classes[c], &rq);
			rq.transcript = true;
			run_forked(&rq, shared_res);
			gen_sequence(&cfg, rq.seed, rq.index, rq.max_ops);
			printf("\n--- %s (%lu)\n", classes[c].cls, classes[c].count);
			printf("  reproduce: PGWALK_PARITY_SEED=0x%016" PRIx64 " parity%s --seq %d --ops ",
			       rq.seed, opt.self ? " --self" : "", rq.index);
			print_mask(stdout, &rq, cfg.nops);
			printf("\n%s", shared_res->detail);
			if (!has_class(shared_res, classes[c].cls))
				printf("  (the shrunk sequence no longer shows this class)\n");
		}
	}

	exit_code = total_diffs || api_diffs ? 1 : 0;
	if (opt.expect_diff) {
		printf("kernel-parity: --expect-diff: %s\n",
		       exit_code ? "differences found, as expected" : "NO difference found");
		return exit_code ? 0 : 1;
	}
	return exit_code;
}

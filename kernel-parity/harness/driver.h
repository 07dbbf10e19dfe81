/*
 * The differential driver's own types: operations, sequences, the state
 * captured after each operation, and what comparing two of them found.
 */
#ifndef KP_DRIVER_H
#define KP_DRIVER_H

#include "kp.h"

#include <stdio.h>

/* ---- PRNG (splitmix64 seeding a xorshift64*) ---- */

struct rng {
	uint64_t s;
};

uint64_t rng_next(struct rng *r);
uint64_t rng_below(struct rng *r, uint64_t n);
/* True with probability pct/100. */
bool rng_pct(struct rng *r, unsigned pct);
uint64_t kp_mix64(uint64_t x);

/* ---- operations ---- */

enum op_kind {
	OP_MAP,
	OP_UNMAP,
	OP_SET_OWNER,
	OP_WRPROTECT,
	OP_MKYOUNG,
	OP_TEST_CLEAR_YOUNG,
	OP_RELAX_PERMS,
	OP_FLUSH,
	OP_SPLIT,
	OP_CREATE_UNLINKED,
	OP_FREE_UNLINKED,
	OP_WALK,
	OP_GET_LEAF,
	OP_PTE_PROT,
	/* EL2 stage-1 (hyp) tables; a hyp sequence also walks and reads
	 * leaves with OP_WALK and OP_GET_LEAF. */
	OP_HYP_MAP,
	OP_HYP_UNMAP,
	OP_HYP_PTE_PROT, /* of the leaf at addr, or of a made-up pte (raw_pte) */
	OP_KINDS
};

struct op {
	enum op_kind kind;
	uint64_t addr, size, phys, prot;
	uint32_t flags;
	int mc; /* -1: no memory cache (NULL); otherwise the pages it holds */
	uint8_t owner;
	int8_t level;
	bool force_pte, mkold, raw_pte;
	int slot; /* unlinked tables */
	uint64_t wseed;
	int rate, code_set, write_rate;
};

#define KP_SLOTS 4
#define KP_MAX_OPS 200

struct geometry {
	const char *name;
	unsigned ia_bits;
	int start_level;
	unsigned ps_bits;
	uint64_t vtcr;
	size_t pgd_pages;
};

struct seq_cfg {
	uint64_t seed;
	int index;
	const struct geometry *geo;
	uint32_t s2_flags;
	bool clean;         /* valid input only (gen.c) */
	int force_pte_mode; /* 0: none; see gen.c */
	bool tlb_range;
	uint64_t window, window_size;
	uint64_t hot[4];
	uint64_t phys_base;
	int nops;
	struct op ops[KP_MAX_OPS];
	/* A hyp sequence: kvm_pgtable_hyp_init(va_bits) instead of a stage-2
	 * table; geo then points at hyp_geo (input size va_bits, the start
	 * level 6.12 computes, no VTCR). */
	bool hyp;
	unsigned va_bits;
	bool hyp_page_count; /* mm_ops with page_count */
	size_t hyp_pool_limit; /* pages the pool hands out (0: all) */
	struct geometry hyp_geo;
	char hyp_name[64];
};

extern const struct geometry *const kp_geometries_p;
extern size_t kp_ngeometries;
/* Whether the geometries are LPA2's (--caps lpa2): DS in every VTCR, and a
 * 52-bit one more. Set before kp_geometries_init(). */
extern bool kp_gen_lpa2;
uint64_t kp_vtcr_for(unsigned ia_bits, int start_level, unsigned ps_bits);
void kp_geometries_init(void);

void gen_sequence(struct seq_cfg *cfg, uint64_t seed, int index, int max_ops);
/* Percentage of sequences that are hyp sequences (--hyp-share). */
extern unsigned kp_gen_hyp_pct;
/* The start level 6.12's kvm_pgtable_hyp_init computes for va_bits
 * (KVM_PGTABLE_LAST_LEVEL + 1 - ARM64_HW_PGTABLE_LEVELS(va_bits)). */
int kp_hyp_start_level(unsigned va_bits);
/* The largest va_bits pgwalk's hyp tables take for this kernel's format. */
unsigned kp_hyp_max_va_bits(void);
bool kp_force_pte_cb(uint64_t addr, uint64_t end, uint64_t prot);
extern int kp_force_pte_mode;

/* ---- state after an operation ---- */

struct leaf {
	uint64_t addr;
	int8_t level;
	uint64_t pte;
};

struct leaves {
	struct leaf *v;
	size_t n, cap;
};

struct sample {
	uint64_t addr;
	int ret;
	uint64_t pte;
	int8_t level;
};

#define KP_SAMPLES 12

struct state {
	struct leaves leaves;
	size_t table_pages;  /* reachable table pages below the root */
	size_t in_use;       /* pool pages in use (after the grace period) */
	unsigned long pool_errors;
	char pool_error[160];
	unsigned long refcount_errors;
	char refcount_error[160];
	unsigned long corrupt;
	char corrupt_msg[160];
	struct sample samples[KP_SAMPLES];
	size_t nsamples;
};

/* What one side's call returned, beyond the table state. */
struct outcome {
	long long ret;
	bool ret_cmp;         /* ret is comparable across sides */
	uint64_t aux;         /* mkyoung: the pte */
	bool aux_cmp;
	int mc_left;
	unsigned long warns;
	struct kp_script *script; /* walk */
	bool unlinked_ok;     /* create_unlinked returned a table */
	struct leaves unlinked; /* its leaves */
	size_t unlinked_tables;
};

enum diff_bit {
	D_RET = 1 << 0,
	D_AUX = 1 << 1,
	D_LEAVES = 1 << 2,
	D_GETLEAF = 1 << 3,
	D_PAGES = 1 << 4,
	D_TLBI = 1 << 5,
	D_CMO = 1 << 6,
	D_FORCE = 1 << 7,
	D_WARN = 1 << 8,
	D_MC = 1 << 9,
	D_TRACE = 1 << 10,
	D_HANG = 1 << 11,
	D_UNLINKED = 1 << 12,
	D_POOL = 1 << 13,
	D_REFCOUNT = 1 << 14,
	D_CORRUPT = 1 << 15,
};
/* Differences that leave the two tables unequal: a sequence cannot go on
 * after one of these, even when a deviation excuses it. */
#define D_STATE (D_LEAVES | D_GETLEAF | D_PAGES | D_UNLINKED | D_CORRUPT | D_REFCOUNT)

void leaves_push(struct leaves *l, uint64_t addr, int8_t level, uint64_t pte);
void leaves_free(struct leaves *l);
void capture_state(struct kp_side *s, struct state *st, const uint64_t *sample_addrs,
		   size_t nsamples);
void state_free(struct state *st);
/* Leaves of a table tree rooted at `table` whose entries are at `level`,
 * the first mapping input address `base`; returns table pages seen. */
size_t dump_tree(struct kp_side *s, void *table, int level, size_t nentries, uint64_t base,
		 struct leaves *out, struct state *st);

unsigned compare_outcomes(const struct op *op, const struct outcome *a, const struct state *sa,
			  const struct kp_log *la, const struct outcome *b,
			  const struct state *sb, const struct kp_log *lb, bool self);
/* out: the class ("<op>: <situation>"), what the summary groups by;
 * full: the class with what differed and the two return codes, what
 * deviations are matched against. */
void classify(char *out, size_t n, char *full, size_t fn, const struct seq_cfg *cfg,
	      const struct op *op, const struct leaves *pre, const struct outcome *a,
	      const struct outcome *b, const struct state *sa, const struct state *sb,
	      unsigned diffs);
void describe_diff(FILE *f, const struct op *op, const char *na, const char *nb,
		   const struct outcome *a, const struct state *sa, const struct kp_log *la,
		   const struct outcome *b, const struct state *sb, const struct kp_log *lb,
		   unsigned diffs);
void describe_op(char *out, size_t n, const struct op *op);
const char *op_name(enum op_kind k);
const char *errname(long long e);
void fmt_prot(char *out, size_t n, uint64_t prot);
void fmt_flags(char *out, size_t n, uint32_t flags);
void diff_fields(char *out, size_t n, unsigned diffs);

/* ---- deviations ---- */

struct deviation {
	char pattern[200];
	char reason[400];
	unsigned long hits;
};

int deviations_load(const char *path);
/* The deviation whose pattern matches a class, or NULL. */
struct deviation *deviation_match(const char *cls);
extern struct deviation *kp_deviations;
extern size_t kp_ndeviations;

#endif

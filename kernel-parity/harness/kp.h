/*
 * The neutral interface of the parity harness.
 *
 * The kernel's structures and pgwalk's have the same names and different
 * layouts, so each implementation lives behind an adapter in its own
 * translation unit (impl_linux.c includes the kernel headers, impl_pgwalk.c
 * includes pgwalk.h) and both expose a struct kp_impl in the plain types
 * below. Values are Linux 6.12's: prot bits, walk flags, errno values.
 *
 * The host side (pool.c, log.c) is shared: one refcounted page pool
 * implementation whose functions are both implementations' mm_ops, and one
 * event log for TLB invalidations and cache maintenance. The driver runs
 * one implementation at a time and points kp_cur at the side being called.
 */
#ifndef KP_H
#define KP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef KP_PAGE_SHIFT
#define KP_PAGE_SHIFT 12
#endif
#define KP_PAGE_SIZE (1ull << KP_PAGE_SHIFT)
#define KP_PTRS (1u << (KP_PAGE_SHIFT - 3))
#define KP_LEVEL_SHIFT(l) ((KP_PAGE_SHIFT - 3) * (4 - (l)) + 3)
#define KP_GRANULE(l) (1ull << KP_LEVEL_SHIFT(l))
#define KP_LAST_LEVEL 3
/* Descriptor bits 47:PAGE_SHIFT: the output address of tables and leaves. */
#define KP_PTE_ADDR_MASK (((1ull << 48) - 1) & ~(KP_PAGE_SIZE - 1))
/* With LPA2, bits 49:PAGE_SHIFT in place and 51:50 in 9:8. */
#define KP_PTE_ADDR_MASK_LPA2 (((1ull << 50) - 1) & ~(KP_PAGE_SIZE - 1))
/* The PA size the kernel under test accepts (kvm_phys_is_valid): 52 bits
 * with LPA2, and with 64K pages (build.sh builds that kernel with
 * CONFIG_ARM64_PA_BITS_52); 48 otherwise. */
#define KP_LINUX_PA_BITS(lpa2) ((lpa2) || KP_PAGE_SHIFT == 16 ? 52 : 48)

/* enum kvm_pgtable_prot, Linux 6.12. */
#define KP_PROT_X (1ull << 0)
#define KP_PROT_W (1ull << 1)
#define KP_PROT_R (1ull << 2)
#define KP_PROT_DEVICE (1ull << 3)
#define KP_PROT_NORMAL_NC (1ull << 4)
#define KP_PROT_SW0 (1ull << 55)
#define KP_PROT_SW1 (1ull << 56)
#define KP_PROT_SW2 (1ull << 57)
#define KP_PROT_SW3 (1ull << 58)
#define KP_PROT_SW (KP_PROT_SW0 | KP_PROT_SW1 | KP_PROT_SW2 | KP_PROT_SW3)
#define KP_PROT_KNOWN                                                          \
	(KP_PROT_X | KP_PROT_W | KP_PROT_R | KP_PROT_DEVICE |                  \
	 KP_PROT_NORMAL_NC | KP_PROT_SW)

/* enum kvm_pgtable_walk_flags (the same in 6.12 and pgwalk). */
#define KP_WALK_LEAF (1u << 0)
#define KP_WALK_TABLE_PRE (1u << 1)
#define KP_WALK_TABLE_POST (1u << 2)
#define KP_WALK_SHARED (1u << 3)
#define KP_WALK_HANDLE_FAULT (1u << 4)
#define KP_WALK_SKIP_BBM_TLBI (1u << 5)
#define KP_WALK_SKIP_CMO (1u << 6)

/* enum kvm_pgtable_stage2_flags. */
#define KP_S2_NOFWB (1u << 0)
#define KP_S2_IDMAP (1u << 1)

/* Stage-2 descriptor bits the driver looks at. */
#define KP_PTE_VALID (1ull << 0)
#define KP_PTE_TYPE (1ull << 1)
#define KP_PTE_MEMATTR (0xfull << 2)
#define KP_PTE_S2AP_R (1ull << 6)
#define KP_PTE_S2AP_W (1ull << 7)
#define KP_PTE_AF (1ull << 10)
#define KP_PTE_XN (1ull << 54)
#define KP_PTE_PERMS (KP_PTE_S2AP_R | KP_PTE_S2AP_W | KP_PTE_XN)
#define KP_PTE_SW (0xfull << 55)

/*
 * struct kvm_mmu_memory_cache as both adapters define it: how many pages
 * zalloc_page(mc) may still hand out. A NULL cache hands out none.
 */
struct kp_mc {
	int nobjs;
};

/* ---- event log: TLB invalidation and cache maintenance, in order ---- */

enum kp_ev_kind {
	KP_EV_TLBI_IPA = 1,     /* a = IPA, b = level (INT_MAX: unknown) */
	KP_EV_TLBI_IPA_NSH = 2, /* a = IPA, b = level */
	KP_EV_TLBI_RANGE = 3,   /* a = IPA, b = bytes */
	KP_EV_TLBI_VMID = 4,    /* the whole VMID */
	KP_EV_TLBI_HYP = 5,     /* EL2 stage 1: a = VA, b = level (INT_MAX: vae2is, a table
				 * entry removed; else vale2is, a leaf) */
	KP_EV_DCACHE = 8,       /* a = physical address, b = bytes */
	KP_EV_ICACHE = 9,       /* a = physical address, b = bytes */
	KP_EV_FORCE_PTE = 10,   /* force_pte_cb(a, b, prot): prot not logged */
};
#define KP_EV_IS_TLBI(k) ((k) >= KP_EV_TLBI_IPA && (k) <= KP_EV_TLBI_HYP)
#define KP_EV_IS_CMO(k) ((k) == KP_EV_DCACHE || (k) == KP_EV_ICACHE)

struct kp_event {
	uint32_t kind;
	uint64_t a, b;
	/* A hyp vae2is (a table entry removed) that knows the level of the
	 * entry; KP_LEVEL_UNKNOWN otherwise. */
	int8_t entry_level;
};
#define KP_LEVEL_UNKNOWN ((int8_t)-100)

struct kp_log {
	struct kp_event *ev;
	size_t n, cap;
};

void kp_log_event(uint32_t kind, uint64_t a, uint64_t b);
/* kp_log_event, with the level of the entry an invalidation is for. */
void kp_log_event_level(uint32_t kind, uint64_t a, uint64_t b, int8_t entry_level);
/*
 * What the kernel's kvm_tlb_flush_vmid_range() issues for addr/size, as the
 * host of an implementation that calls back into a "flush this range"
 * hook (pgwalk's mmu->tlb_flush_vmid_range) must: range TLBIs of at most
 * MAX_TLBI_RANGE_PAGES with FEAT_TLBIRANGE, else the whole VMID.
 */
void kp_log_vmid_range(uint64_t addr, uint64_t size);
const char *kp_ev_name(uint32_t kind);

/* ---- page pool ---- */

struct kp_deferred {
	void *table;
	int8_t level;
};

struct kp_pool {
	unsigned char *mem; /* npages pages, aligned to 64 KiB */
	size_t npages;
	int *refs;          /* 0: free */
	uint64_t phys_base; /* physical address of page 0 (not its virtual) */
	size_t in_use;
	size_t limit;       /* allocation fails past this many pages in use */
	bool null_mc_allocates; /* hyp tables: zalloc_page(NULL) takes from the pool,
				 * as a hyp allocator does (it has no cache) */
	unsigned long errors;       /* misuse: bad/double frees, refs on free pages */
	char first_error[160];
	struct kp_deferred *deferred; /* free_unlinked_table, until quiesce */
	size_t ndeferred, deferred_cap;
	unsigned long cmo;
};

/* Physical address of the pool's first page: far from the guest physical
 * addresses the driver maps (below 512 GiB), and inside a 40-bit PA space. */
#define KP_POOL_PHYS_BASE 0x8000000000ull
#define KP_POOL_PAGES 32768

void kp_pool_init(struct kp_pool *p, size_t npages);
void kp_pool_fini(struct kp_pool *p);
bool kp_pool_owns(const struct kp_pool *p, const void *addr);
bool kp_pool_owns_phys(const struct kp_pool *p, uint64_t phys);
int kp_pool_refcount(const struct kp_pool *p, const void *addr);

/* The eleven mm_ops callbacks, against kp_cur's pool. */
void *kp_zalloc_page(void *mc);
void *kp_zalloc_pages_exact(size_t size);
void kp_free_pages_exact(void *addr, size_t size);
void kp_free_unlinked_table(void *addr, int8_t level);
void kp_get_page(void *addr);
void kp_put_page(void *addr);
int kp_page_count(void *addr);
void *kp_phys_to_virt(uint64_t phys);
uint64_t kp_virt_to_phys(void *addr);
void kp_dcache_clean_inval_poc(void *addr, size_t size);
void kp_icache_inval_pou(void *addr, size_t size);

/* ---- walk visitors ---- */

/*
 * A visitor script: what a kvm_pgtable_walk visitor answers, a function of
 * the entry (address, level, visit) and a per-walk seed, so that both
 * implementations get the same answer for the same entry; and the trace of
 * the visits it saw.
 */
struct kp_visit_rec {
	uint32_t visit;
	int8_t level;
	uint64_t addr;
	uint64_t old; /* leaves: raw; tables: attribute bits only */
	int ret;
};

#define KP_TRACE_MAX 4096
#define KP_HANG_REPEATS 1000
#define KP_HANG_TOTAL 4000000

struct kp_script {
	uint64_t seed;
	uint32_t flags;      /* the walker's flags */
	int rate;            /* a visit answers non-zero with probability 1/rate (0: never) */
	int code_set;        /* which codes (see visit.c) */
	int write_rate;      /* toggles SW3 on a valid leaf with probability 1/write_rate */
	/* trace */
	struct kp_visit_rec rec[KP_TRACE_MAX];
	size_t nrec, nvisits;
	uint64_t hash;       /* over every visit, also past KP_TRACE_MAX */
	uint64_t start, end; /* as the first visit saw them */
	unsigned long ctx_mismatch; /* visits whose start/end/arg/mm_ops differed */
	bool hang;           /* the same entry visited KP_HANG_REPEATS times in a row */
	uint64_t last_addr;
	int8_t last_level;
	uint32_t last_visit;
	unsigned long repeats;
};

/* The shared body of both adapters' visitors. */
int kp_visit(struct kp_script *s, uint64_t *ptep, uint64_t old, uint64_t start,
	     uint64_t addr, uint64_t end, int8_t level, uint32_t ctx_flags,
	     uint32_t visit, bool ctx_ok);

/* ---- implementations ---- */

typedef bool (*kp_force_pte_fn)(uint64_t addr, uint64_t end, uint64_t prot);

/* A named constant, offset or signature check one side reports (api.c). */
struct kp_fact {
	const char *name;
	long long value;
};

struct kp_impl {
	const char *name;
	size_t state_size;
	int (*init)(void *st, uint64_t vtcr, uint32_t s2_flags, kp_force_pte_fn cb);
	void (*destroy)(void *st);
	size_t (*pgd_size)(uint64_t vtcr);
	/* For the raw table dump: the root, its level and the input size. */
	void (*geometry)(void *st, void **pgd, int *start_level, unsigned *ia_bits);
	int (*map)(void *st, uint64_t addr, uint64_t size, uint64_t phys, uint64_t prot,
		   struct kp_mc *mc, uint32_t flags);
	int (*set_owner)(void *st, uint64_t addr, uint64_t size, struct kp_mc *mc,
			 uint8_t owner);
	int (*unmap)(void *st, uint64_t addr, uint64_t size);
	int (*wrprotect)(void *st, uint64_t addr, uint64_t size);
	/* 6.12's mkyoung returns the old pte; *have_pte false when an
	 * implementation cannot say (a void mkyoung). */
	uint64_t (*mkyoung)(void *st, uint64_t addr, bool *have_pte);
	bool (*test_clear_young)(void *st, uint64_t addr, uint64_t size, bool mkold);
	int (*relax_perms)(void *st, uint64_t addr, uint64_t prot);
	int (*flush)(void *st, uint64_t addr, uint64_t size);
	int (*split)(void *st, uint64_t addr, uint64_t size, struct kp_mc *mc);
	/* ERR_PTR convention, as the kernel. */
	void *(*create_unlinked)(void *st, uint64_t phys, int8_t level, uint64_t prot,
				 struct kp_mc *mc, bool force_pte);
	void (*free_unlinked)(void *st, void *table, int8_t level);
	int (*get_leaf)(void *st, uint64_t addr, uint64_t *pte, int8_t *level);
	int (*walk)(void *st, uint64_t addr, uint64_t size, struct kp_script *s);
	/* kvm_pgtable_stage2_pte_prot; *have false where the library lacks it. */
	uint64_t (*pte_prot)(uint64_t pte, bool *have);
	const struct kp_fact *(*facts)(size_t *n);
	/* Linux only: kvm_get_vtcr(), to double-check the driver's VTCRs. */
	uint64_t (*get_vtcr)(uint64_t mmfr0, uint64_t mmfr1, uint32_t phys_shift);
	/*
	 * EL2 stage-1 (hyp) tables: kvm_pgtable_hyp_init with va_bits, the
	 * side's mm_ops (without page_count when !page_count, as a hyp
	 * allocator may be); destroy then calls kvm_pgtable_hyp_destroy, and
	 * get_leaf, walk and geometry work on the hyp table (the kernel's
	 * generic walker serves both kinds).
	 */
	int (*hyp_init)(void *st, unsigned va_bits, bool page_count);
	int (*hyp_map)(void *st, uint64_t addr, uint64_t size, uint64_t phys, uint64_t prot);
	uint64_t (*hyp_unmap)(void *st, uint64_t addr, uint64_t size);
	uint64_t (*hyp_pte_prot)(uint64_t pte);
};

extern const struct kp_impl kp_linux_impl;
extern const struct kp_impl kp_pgwalk_impl;

/* Set by the pgwalk adapter from PGWALK_PARITY_PROT=raw: pass 6.12 prot
 * values to pgwalk untranslated (shows the layout difference). */
extern bool kp_pgwalk_raw_prot;
/* Whether the pgwalk adapter is translating prot values at all (false once
 * pgwalk's header uses the 6.12 layout). */
bool kp_pgwalk_translates_prot(void);

/* ---- a side: one implementation with its own pool and log ---- */

struct kp_side {
	const struct kp_impl *impl;
	void *st;
	struct kp_pool pool;
	struct kp_log log;
	const char *label; /* "linux", "pgwalk", "linux#2" */
};

extern struct kp_side *kp_cur;
/* Makes s the side host callbacks act on. */
void kp_enter(struct kp_side *s);
/* Runs the frees free_unlinked_table deferred (the RCU grace period). */
void kp_quiesce(struct kp_side *s);

#endif

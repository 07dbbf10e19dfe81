/*
 * pgwalk-hv-c: declarations shared by the C hypervisor's modules. The
 * machine layout comes from layout.h, generated from
 * hypervisors/common/layout.ld by build.sh.
 */
#ifndef HV_H
#define HV_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "pgwalk.h"

#define PAGE ((uint64_t)4096)
#define BLOCK ((uint64_t)2 << 20)
#define GUEST_RAM_SIZE (GUEST_RAM_END - GUEST_RAM_BASE)
#define MAX_CPUS ((int)HV_MAX_CPUS)
#define UART_BASE ((uint64_t)0x09000000)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- console.c ---- */
/* printf for the hypervisor: %d %i %u %x %X %c %s %p %%, flags - 0 #,
 * width, precision (also .*), lengths l ll z. One call is one unbroken
 * piece of output. */
void hv_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hv_vprintf(const char *fmt, va_list ap);
/* From now on print without the console lock (its holder may have died). */
void console_panicking(void);

/* ---- locks (lock.c) ---- */
typedef struct { atomic_bool held; } spinlock_t;
void spin_lock(spinlock_t *l);
bool spin_trylock(spinlock_t *l);
void spin_unlock(spinlock_t *l);

/* A reader/writer spinlock that lets a waiting writer in first, as the
 * kernel's mmu_lock (a rwlock on arm64). */
typedef struct { atomic_uint state; spinlock_t writers; } rwlock_t;
void read_lock(rwlock_t *l);
void read_unlock(rwlock_t *l);
void write_lock(rwlock_t *l);
void write_unlock(rwlock_t *l);

/* ---- exit.c ---- */
struct frame;
_Noreturn void hv_fail(void);
_Noreturn void hv_power_off(void);
_Noreturn void hv_reset(void);
_Noreturn void hv_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hv_dump(const char *what, const struct frame *frame);
void pgwalk_panic_hook(const struct pgw_panic_info *info);
#define HV_ASSERT(c) do { if (!(c)) hv_panic("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__); } while (0)

/* ---- errname.c ---- */
/* "-PGW_ENOMEM" for -PGW_ENOMEM, "0" for 0, NULL when it is no PGW_E*. */
const char *pgw_errno_name(int err);
/* The same for printing: never NULL. */
const char *errno_str(int err);

/* ---- trap.c ---- */
struct frame {
	uint64_t x[31];
	uint64_t elr;
	uint64_t spsr;
	uint64_t pad;
	unsigned __int128 q[32];
	uint64_t fpsr;
	uint64_t fpcr;
};
#define SPSR_EL1H_MASKED 0x3c5ull

/* ---- vcpu.c ---- */
enum power { POWER_ON = 0, POWER_OFF = 1, POWER_ON_PENDING = 2 };
struct kvm_mmu_memory_cache;
struct vcpu {
	int index;
	atomic_int power;
	_Atomic uint64_t entry, context;
	struct frame *_Atomic frame;
	_Atomic uint64_t boots, traps, faults;
	struct kvm_mmu_memory_cache *memcache;
};
int cpu_index(void);
struct vcpu *vcpu_current(void);
struct vcpu *vcpu_get(uint64_t index);
bool vcpu_claim_on(struct vcpu *v, uint64_t entry, uint64_t context, enum power *found);
void vcpu_abort_on(struct vcpu *v);
void vcpu_set_off(struct vcpu *v);
void vcpu_set_frame(struct vcpu *v, struct frame *f);
void vcpu_clear_frame(struct vcpu *v);
_Noreturn void vcpu_boot_primary(void);
_Noreturn void vcpu_boot_secondary(int cpu);
void **reentry_slot(void);

/* ---- psci.c ---- */
#define PSCI_SUCCESS 0
#define PSCI_NOT_SUPPORTED (-1)
void psci_handle_smc(struct vcpu *cpu, struct frame *frame, uint64_t imm);
int psci_self_test(void);
int64_t psci_cpu_on_phys(uint64_t mpidr, int cpu);

/* ---- guest.c ---- */
void guest_setup_el2(void);
uint64_t guest_kernel_entry(void);
void guest_inject_external_abort(struct frame *frame, uint64_t esr_el2, bool instruction);
void guest_inject_undef(struct frame *frame);

/* ---- memmap.c ---- */
enum region { REGION_NONE, REGION_RAM, REGION_DEVICE };
enum region memmap_lookup(uint64_t ipa, const char **name);
bool memmap_is_ram(uint64_t base, uint64_t size);

/* ---- el2_mmu.c ---- */
void el2_mmu_build(void);
void el2_mmu_enable(void);
int el2_mmu_table_pages(void);

/* ---- pool.c: stage-2 table pages, mm_ops, memory caches ---- */
#define MEMCACHE_CAPACITY 8
struct kvm_mmu_memory_cache {
	int nobjs;
	void *objects[MEMCACHE_CAPACITY];
};
extern struct kvm_pgtable_mm_ops stage2_mm_ops;
int memcache_topup(struct kvm_mmu_memory_cache *mc, int min);
bool pool_contains(uint64_t pa);
int pool_refcount(uint64_t pa);
int pool_table_pages(void);   /* pages with a reference count */
void pool_usage(uint64_t *in_use, uint64_t *peak);

/* ---- grace.c ---- */
void grace_read_begin(void);
void grace_read_end(void);
void grace_quiescent(int cpu);
void grace_online(int cpu);
void grace_offline(int cpu);
void grace_defer_free(void *table, int8_t level);
void grace_poll(void);
void grace_drain(void);

/* ---- vm.c: the stage-2 table and the lock around it ---- */
#define VMID ((uint64_t)1)
extern struct kvm_pgtable stage2;
/* stage2, bound once by vm_init for the typed fault-path calls. */
extern struct pgw_bound_stage2 stage2_bound;
extern struct kvm_s2_mmu stage2_mmu;
extern rwlock_t mmu_lock;
void vm_init(void);
uint64_t vm_vttbr(void);
int vm_memcache_min_pages(void);

/* ---- fault.c ---- */
void fault_handle(struct frame *frame, uint64_t esr, bool instruction);

/* ---- dirty.c ---- */
void dirty_arm(void);
bool dirty_active(void);
void dirty_mark(uint64_t ipa, uint64_t size);
void dirty_tick(void);
int dirty_counted(uint64_t *counts, int max);

/* ---- check.c ---- */
void check_touched_ram(uint64_t ipa);
void check_touched_device(uint64_t ipa);
/* A page map cut the block around ipa: 6.12 unmaps the rest of it. */
void check_block_cut(uint64_t ipa);
bool check_stopping(void);
bool check_finish(void);

/* ---- stats.c ---- */
enum fault_kind { FK_TRANSLATION, FK_ACCESS_FLAG, FK_PERMISSION, FK_OTHER, FK_KINDS };
/* What a fault came to: the kernel API's 0 and -EAGAIN, the typed API's
 * outcomes, an injected abort. */
enum fault_column { FC_FIXED, FC_AGAIN, FC_SPURIOUS, FC_RETRY, FC_ABORT, FC_COLUMNS };
struct stats {
	_Atomic uint64_t faults[FK_KINDS][FC_COLUMNS];
	_Atomic uint64_t ram_pages_mapped, ram_blocks_mapped, device_pages_mapped;
	_Atomic uint64_t blocks_split, blocks_recovered, dirty_faults;
	_Atomic uint64_t relax_calls, map_calls, mkyoung_young, typed_calls;
	_Atomic uint64_t tlbi_ipa, tlbi_ipa_nsh, tlbi_range, tlbi_vmid, dcache_ops, icache_ops;
	_Atomic uint64_t pages_allocated, pages_freed, deferred_frees, deferred_done;
	_Atomic uint64_t topups, smc, hvc, wfi, undef_injected, psci_errors;
	_Atomic uint64_t aging_passes, aging_young, aging_windows;
	_Atomic uint64_t fault_ticks, start;
};
extern struct stats stats;
#define COUNT(field) atomic_fetch_add_explicit(&stats.field, 1, memory_order_relaxed)
void stats_fault(enum fault_kind kind, enum fault_column column);
void stats_print(uint64_t elapsed_ms);

#endif

/*
 * The grace period for table subtrees unlinked under concurrent walkers,
 * a quiescent-state scheme of the hypervisor's own (where the kernel uses
 * RCU).
 *
 * Every vCPU counts the quiescent points it passes: entering and leaving
 * every trap, outside any call into pgwalk; the fault path's calls run
 * between grace_read_begin and grace_read_end. A subtree handed to
 * free_unlinked_table is queued with a snapshot of the counts of the vCPUs
 * online then, and freed with kvm_pgtable_stage2_free_unlinked once each
 * of them has counted past it (has left the fault path it may have been
 * on) or gone offline.
 */
#include "arch.h"
#include "hv.h"

#define QUEUE_LEN 256
#define OFFLINE UINT64_MAX

static _Atomic uint64_t qs[MAX_CPUS];
static atomic_bool online[MAX_CPUS];
static atomic_uint in_walk[MAX_CPUS];

struct deferred {
	void *table;
	int8_t level;
	uint64_t snapshot[MAX_CPUS];
};
static spinlock_t queue_lock;
static struct deferred queue[QUEUE_LEN];

void grace_read_begin(void)
{
	atomic_fetch_add_explicit(&in_walk[cpu_index()], 1, memory_order_relaxed);
	/* Pairs with the fence in grace_defer_free: either its snapshot sees
	 * the count this vCPU had before this walk, or this walk sees the
	 * unlinking that came before it. */
	atomic_thread_fence(memory_order_seq_cst);
}

void grace_read_end(void)
{
	atomic_fetch_sub_explicit(&in_walk[cpu_index()], 1, memory_order_release);
}

void grace_quiescent(int cpu)
{
	if (atomic_load_explicit(&in_walk[cpu], memory_order_relaxed))
		hv_panic("grace: quiescent point inside a walk");
	atomic_fetch_add(&qs[cpu], 1);
	atomic_thread_fence(memory_order_seq_cst);
}

void grace_online(int cpu)
{
	atomic_fetch_add(&qs[cpu], 1);
	atomic_store(&online[cpu], true);
}

void grace_offline(int cpu)
{
	grace_quiescent(cpu);
	atomic_store(&online[cpu], false);
}

void grace_defer_free(void *table, int8_t level)
{
	struct deferred d = { .table = table, .level = level };

	atomic_thread_fence(memory_order_seq_cst);
	for (int c = 0; c < MAX_CPUS; c++)
		d.snapshot[c] = atomic_load(&online[c]) ? atomic_load(&qs[c]) : OFFLINE;
	spin_lock(&queue_lock);
	for (int i = 0; i < QUEUE_LEN; i++)
		if (!queue[i].table) {
			queue[i] = d;
			spin_unlock(&queue_lock);
			return;
		}
	spin_unlock(&queue_lock);
	hv_panic("grace: more unlinked subtrees pending than the queue holds");
}

static bool expired(const struct deferred *d)
{
	for (int c = 0; c < MAX_CPUS; c++)
		if (d->snapshot[c] != OFFLINE && atomic_load(&online[c]) &&
		    atomic_load(&qs[c]) <= d->snapshot[c])
			return false;
	return true;
}

static void free_slot(struct deferred *d)
{
	kvm_pgtable_stage2_free_unlinked(&stage2_mm_ops, d->table, d->level);
	d->table = NULL;
	COUNT(deferred_done);
}

void grace_poll(void)
{
	if (!spin_trylock(&queue_lock))
		return;
	for (int i = 0; i < QUEUE_LEN; i++)
		if (queue[i].table && expired(&queue[i]))
			free_slot(&queue[i]);
	spin_unlock(&queue_lock);
}

/* Frees everything queued; the caller holds the table's write lock, so no
 * walk runs or can start. */
void grace_drain(void)
{
	spin_lock(&queue_lock);
	for (int i = 0; i < QUEUE_LEN; i++)
		if (queue[i].table)
			free_slot(&queue[i]);
	spin_unlock(&queue_lock);
}

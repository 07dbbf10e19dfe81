/* Spinlocks and the reader/writer lock around the stage-2 table. */
#include "arch.h"
#include "hv.h"

void spin_lock(spinlock_t *l)
{
	while (atomic_exchange_explicit(&l->held, true, memory_order_acquire))
		while (atomic_load_explicit(&l->held, memory_order_relaxed))
			cpu_relax();
}

bool spin_trylock(spinlock_t *l)
{
	return !atomic_exchange_explicit(&l->held, true, memory_order_acquire);
}

void spin_unlock(spinlock_t *l)
{
	atomic_store_explicit(&l->held, false, memory_order_release);
}

/* state: the number of readers, WAITING while a writer waits for them to
 * leave (no new reader enters), WRITER while it holds the lock. */
#define RW_WRITER 0x80000000u
#define RW_WAITING 0x40000000u

void read_lock(rwlock_t *l)
{
	for (;;) {
		unsigned s = atomic_load_explicit(&l->state, memory_order_relaxed);
		if (!(s & (RW_WRITER | RW_WAITING)) &&
		    atomic_compare_exchange_weak_explicit(&l->state, &s, s + 1,
							  memory_order_acquire, memory_order_relaxed))
			return;
		cpu_relax();
	}
}

void read_unlock(rwlock_t *l)
{
	atomic_fetch_sub_explicit(&l->state, 1, memory_order_release);
}

void write_lock(rwlock_t *l)
{
	spin_lock(&l->writers);
	atomic_fetch_or_explicit(&l->state, RW_WAITING, memory_order_relaxed);
	for (;;) {
		unsigned s = RW_WAITING;
		if (atomic_compare_exchange_weak_explicit(&l->state, &s, RW_WRITER,
							  memory_order_acquire, memory_order_relaxed))
			return;
		cpu_relax();
	}
}

void write_unlock(rwlock_t *l)
{
	atomic_store_explicit(&l->state, 0, memory_order_release);
	spin_unlock(&l->writers);
}

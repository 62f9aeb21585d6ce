/* The upstream's per-profile pools: at most max attempts of a pool in
 * flight, a FIFO of waiters for a free slot, each waiting at most its
 * pool_ms; and libcurl's connection cache sized by the recent peak of
 * transfers. */
#include "upstream_internal.h"

#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <event2/event.h>

/* libcurl's CURLMOPT_MAXCONNECTS caps its whole connection cache, busy
 * connections included: when a transfer hands its connection back and the
 * cache holds more, the oldest idle one is closed. A fixed cap below the
 * load closed and reopened connections in steady state, and so would a cap
 * that follows the transfers of the moment (apps pause between requests),
 * so the cap follows the peak of the last UPSTREAM_PEAK_WINDOW_S seconds:
 * what that peak used stays open, plus max_idle. Once the load is gone,
 * each finishing transfer closes the oldest idle connection beyond that, so
 * max_idle remain (the finishing transfer counts in the peak: hence -1). */
void upstream_update_max_connects(struct upstream *up)
{
	uint64_t now_us = clock_coarse_ms() * 1000, epoch;
	unsigned peak = 0, i;
	int reused;
	long cap;

	/* upstream_new leaves the window zeroed: its shape is set here. */
	if (!up->peak_window.nslots)
		window_init(&up->peak_window, UPSTREAM_PEAK_WINDOW_S, 1000000);
	i = window_slot(&up->peak_window, now_us, &reused);
	if (reused)
		up->peaks[i] = 0;
	if (up->running > up->peaks[i])
		up->peaks[i] = up->running;
	epoch = window_epoch(&up->peak_window, now_us);
	for (i = 0; i < UPSTREAM_PEAK_WINDOW_S; i++)
		if (window_live(&up->peak_window, i, epoch) && up->peaks[i] > peak)
			peak = up->peaks[i];
	cap = (long)peak + up->max_idle - 1;

	curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, cap > 0 ? cap : 1L);
}

/* Starts the oldest waiters while the pool has free slots. */
static void pool_run_waiters(struct upstream_pool *pool)
{
	while (pool->active < pool->max && !TAILQ_EMPTY(&pool->waiting)) {
		struct call *next = TAILQ_FIRST(&pool->waiting);

		TAILQ_REMOVE(&pool->waiting, next, link);
		evtimer_del(next->timer);
		call_begin(next);
	}
}

static void pool_release(struct call *c)
{
	struct upstream_pool *pool = c->pool;

	if (!pool || c->state != CALL_RUNNING)
		return;
	TAILQ_REMOVE(&pool->running, c, link);
	pool->active--;
	c->up->running--;
	upstream_update_max_connects(c->up);
	pool_run_waiters(pool); /* hand the slot to the oldest waiter */
}

void upstream_pool_enter(struct call *c)
{
	struct upstream_pool *pool = c->pool;

	if (pool->active < pool->max) {
		call_begin(c);
	} else {
		struct timeval tv;

		c->state = CALL_WAITING;
		TAILQ_INSERT_TAIL(&pool->waiting, c, link);
		clock_ms_to_tv(c->p.pool_ms, &tv);
		evtimer_add(c->timer, &tv);
	}
}

void upstream_pool_leave(struct call *c)
{
	if (c->state == CALL_WAITING)
		TAILQ_REMOVE(&c->pool->waiting, c, link);
	else
		pool_release(c);
}

static struct upstream_pool *pool_of(struct registry_entry *e)
{
	return e ? registry_object(e, struct upstream_pool, entry) : NULL;
}

void upstream_pools_free(struct upstream *up)
{
	struct upstream_pool *pool, *next;

	for (pool = up->pools; pool; pool = next) {
		next = pool_of(pool->entry.next);
		/* Waiters first, so an ended call hands its slot to nobody. */
		while (!TAILQ_EMPTY(&pool->waiting))
			upstream_cancel(TAILQ_FIRST(&pool->waiting));
		while (!TAILQ_EMPTY(&pool->running))
			upstream_cancel(TAILQ_FIRST(&pool->running));
		registry_entry_release(&pool->entry);
		free(pool);
	}
	up->pools = NULL;
}

struct upstream_pool *upstream_pool_get(struct upstream *up, const char *name,
					unsigned max_connections)
{
	struct registry_entry *head = up->pools ? &up->pools->entry : NULL;
	struct upstream_pool *pool = pool_of(registry_find(head, name));

	if (!pool) {
		pool = calloc(1, sizeof(*pool));
		if (!pool || registry_add(&head, &pool->entry, name) < 0) {
			free(pool);
			return NULL;
		}
		TAILQ_INIT(&pool->waiting);
		TAILQ_INIT(&pool->running);
		up->pools = pool;
	}
	upstream_pool_set_max(pool, max_connections); /* a reload may raise it */
	return pool;
}

void upstream_pool_set_max(struct upstream_pool *pool, unsigned max_connections)
{
	pool->max = max_connections ? max_connections : 1;
	pool_run_waiters(pool); /* a raised limit lets them run at once */
}

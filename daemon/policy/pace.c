/* A profile's rate limiters in one small array, found by scope. */
#include "pace.h"

#include <stdlib.h>
#include <string.h>

struct pace_limiter {
	char scope[PACE_SCOPE_MAX]; /* the route's label; "" for the profile's */
	int route;                  /* a route's own limiter */
	uint64_t serial;
	struct gcra gcra;
	/* the settings gcra was configured with */
	uint32_t count;
	uint64_t per_us;
	uint32_t burst;
	uint64_t used_us; /* last reserved or taught: the least recent is reused */
	uint32_t queue;   /* WAIT slots not yet come */
};

struct pace_set {
	struct pace_limiter *lims;
	size_t n, cap;
	uint64_t serial;
	uint64_t refused[2]; /* by the configured rate, by a learned quota */
	struct histogram waits;
};

struct pace_set *pace_new(void)
{
	return calloc(1, sizeof(struct pace_set));
}

void pace_free(struct pace_set *s)
{
	if (!s)
		return;
	free(s->lims);
	free(s);
}

static int same_scope(const struct pace_limiter *l, const char *scope)
{
	if (!scope)
		return !l->route;
	return l->route && !strncmp(l->scope, scope, PACE_SCOPE_MAX - 1);
}

/* A free place for a new limiter: a new one, or the least recently used
 * with nobody waiting on it. NULL when neither can be had. */
static struct pace_limiter *place(struct pace_set *s)
{
	struct pace_limiter *lru = NULL;

	if (s->n < s->cap)
		return &s->lims[s->n++];
	if (s->cap < PACE_LIMITERS_MAX) {
		size_t cap = s->cap ? s->cap * 2 : 1;
		struct pace_limiter *l;

		cap = cap < PACE_LIMITERS_MAX ? cap : PACE_LIMITERS_MAX;
		l = realloc(s->lims, cap * sizeof(*l));
		if (!l)
			return NULL;
		s->lims = l;
		s->cap = cap;
		return &s->lims[s->n++];
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->lims[i].queue == 0 && (!lru || s->lims[i].used_us < lru->used_us))
			lru = &s->lims[i];
	return lru;
}

/* The limiter of scope, created (configured later) on first use; NULL on
 * OOM or when every limiter has attempts waiting. */
static struct pace_limiter *limiter_of(struct pace_set *s, const char *scope, uint64_t now_us)
{
	struct pace_limiter *l = NULL;

	for (size_t i = 0; i < s->n && !l; i++)
		if (same_scope(&s->lims[i], scope))
			l = &s->lims[i];
	if (!l) {
		l = place(s);
		if (!l)
			return NULL;
		memset(l, 0, sizeof(*l));
		gcra_init(&l->gcra);
		l->route = scope != NULL;
		if (scope) {
			size_t len = strnlen(scope, PACE_SCOPE_MAX - 1);

			memcpy(l->scope, scope, len);
			l->scope[len] = '\0';
		}
		l->serial = ++s->serial;
	}
	l->used_us = now_us;
	return l;
}

/* Applies rl's rate to l when it changed (a reload): the schedule stays. */
static void configure(struct pace_limiter *l, const struct rate_limit_policy *rl)
{
	if (l->count == rl->count &&
	    (!rl->count || (l->per_us == rl->per_us && l->burst == rl->burst)))
		return;
	if (gcra_configure(&l->gcra, rl->count, rl->per_us, rl->burst) < 0)
		return; /* the configuration checked it: cannot happen */
	l->count = rl->count;
	l->per_us = rl->per_us;
	l->burst = rl->burst;
}

static struct pace_limiter *by_serial(struct pace_set *s, uint64_t serial)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->lims[i].serial == serial)
			return &s->lims[i];
	return NULL;
}

/* 1 when l limits anything: a configured rate or a learned quota. */
static int limiting(const struct pace_limiter *l)
{
	return l->count || l->gcra.learned;
}

enum gcra_verdict pace_reserve(struct pace_set *s, const struct rate_limit_policy *rl,
			       uint64_t now_us, uint64_t max_wait_us, struct pace_ticket *ret)
{
	struct pace_limiter *l = limiter_of(s, rl->scope, now_us);

	memset(ret, 0, sizeof(*ret));
	if (!l) {
		ret->slot = (struct gcra_slot){ .verdict = GCRA_GO, .at_us = now_us };
		return GCRA_GO;
	}
	configure(l, rl);
	ret->limiter = l->serial;
	gcra_reserve(&l->gcra, now_us, max_wait_us, &ret->slot);
	switch (ret->slot.verdict) {
	case GCRA_WAIT:
		l->queue++;
		ret->queued = 1;
		break;
	case GCRA_GO:
	default:
		if (limiting(l))
			histogram_observe(&s->waits, 0);
		break;
	}
	return ret->slot.verdict;
}

void pace_arrived(struct pace_set *s, struct pace_ticket *t)
{
	struct pace_limiter *l = t->queued ? by_serial(s, t->limiter) : NULL;

	if (!t->queued)
		return;
	t->queued = 0;
	histogram_observe(&s->waits, (double)t->slot.wait_us / 1e6);
	if (l && l->queue)
		l->queue--;
}

void pace_release(struct pace_set *s, struct pace_ticket *t)
{
	struct pace_limiter *l = by_serial(s, t->limiter);

	if (!l)
		return;
	if (t->queued && l->queue)
		l->queue--;
	t->queued = 0;
	gcra_release(&l->gcra, &t->slot);
	t->limiter = 0;
}

void pace_learn(struct pace_set *s, const struct rate_limit_policy *rl,
		const struct ratelimit_quota *q, uint64_t now_us)
{
	struct pace_limiter *l = limiter_of(s, rl->scope, now_us);

	if (!l)
		return;
	configure(l, rl);
	/* A reset of 0 (now) constrains nothing: gcra_learn() refuses it. */
	gcra_learn(&l->gcra, q->remaining, now_us + q->reset_s * 1000000, now_us);
}

size_t pace_views(const struct pace_set *s, uint64_t now_us, struct pace_view *ret, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n && k < max; i++) {
		const struct pace_limiter *l = &s->lims[i];

		ret[k].scope = l->route ? l->scope : NULL;
		gcra_snapshot(&l->gcra, now_us, &ret[k].gcra);
		ret[k].queue = l->queue;
		k++;
	}
	return k;
}

void pace_count_refused(struct pace_set *s, enum gcra_by by)
{
	s->refused[by == GCRA_BY_LEARNED]++;
}

void pace_refused(const struct pace_set *s, uint64_t *ret_configured, uint64_t *ret_learned)
{
	*ret_configured = s->refused[0];
	*ret_learned = s->refused[1];
}

const struct histogram *pace_waits(const struct pace_set *s)
{
	return &s->waits;
}

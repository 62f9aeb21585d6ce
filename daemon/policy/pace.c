/* A profile's rate limiters in one small array, found by scope. */
#include "pace.h"
#include "hash.h"

#include <stdlib.h>
#include <string.h>

struct pace_limiter {
	char scope[PACE_SCOPE_MAX]; /* the route's label; "" for the profile's */
	int route;                  /* a route's own limiter */
	uint64_t scope_hash;        /* of the whole label: a cut one still tells apart */
	uint64_t generation;        /* of the configuration it was configured from */
	uint64_t learned_sent_us;   /* when the attempt that taught its quota started */
	uint64_t window_us;         /* the longest reset announced: a window's length at most */
	uint64_t serial;
	struct gcra gcra;
	/* the settings gcra was configured with */
	uint32_t count;
	uint64_t per_us;
	uint32_t burst;
	uint64_t used_us; /* last reserved or taught: the least recent is reused */
	uint32_t queue;   /* WAIT slots not yet come */
	/* share: fleet */
	int shared;
	uint32_t instances;      /* last counted; 0 before the first count */
	uint64_t cap_milli;      /* the configured rate, attempts per 1000 s */
	uint64_t share_milli;    /* the fleet's slice of it for this instance */
	uint64_t share_until_us; /* the slice holds until then */
	uint64_t demand;         /* reservations since the last ask */
	uint64_t asked_us;       /* when the last ask was made */
};

struct pace_set {
	struct pace_limiter *lims;
	size_t n, cap;
	uint64_t serial;
	uint64_t refused[2]; /* by the configured rate, by a learned quota */
	struct histogram waits;
	int fleet_up; /* share: fleet: the fleet is up */
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

/* 1 when l is the limiter of scope (NULL: the profile's), whose label
 * hashes to hash. */
static int same_scope(const struct pace_limiter *l, const char *scope, uint64_t hash)
{
	if (!scope)
		return !l->route;
	return l->route && l->scope_hash == hash && !strncmp(l->scope, scope, PACE_SCOPE_MAX - 1);
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
		/* Never the profile's own: only a route's can be stale. */
		if (s->lims[i].route && s->lims[i].queue == 0 &&
		    (!lru || s->lims[i].used_us < lru->used_us))
			lru = &s->lims[i];
	return lru;
}

/* The limiter of scope, created (configured later) on first use; NULL on
 * OOM or when every limiter has attempts waiting. */
static struct pace_limiter *limiter_of(struct pace_set *s, const char *scope, uint64_t now_us)
{
	struct pace_limiter *l = NULL;
	/* Once per look-up, not once per limiter compared. */
	uint64_t hash = scope ? hash_fnv1a64(scope, strlen(scope)) : 0;

	for (size_t i = 0; i < s->n && !l; i++)
		if (same_scope(&s->lims[i], scope, hash))
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
			l->scope_hash = hash;
		}
		l->serial = ++s->serial;
		l->asked_us = now_us;
	}
	l->used_us = now_us;
	return l;
}

/* rl's rate in attempts per 1000 s (the unit of the fleet's slices). */
static uint64_t milli_rate(const struct rate_limit_policy *rl)
{
	return rl->count ? (uint64_t)rl->count * 1000000000ULL / rl->per_us : 0;
}

/* The rate l keeps (SPEC 4.12): rl's; for a shared limiter, the fleet's
 * slice of it while one holds, else rl's ÷ the instances last counted. */
static void local_rate(const struct pace_set *s, const struct pace_limiter *l,
		       const struct rate_limit_policy *rl, uint64_t now_us, uint32_t *ret_count,
		       uint64_t *ret_per, uint32_t *ret_burst)
{
	uint64_t n = l->instances ? l->instances : 1, cap = milli_rate(rl), m;

	*ret_count = rl->count;
	*ret_per = rl->per_us;
	*ret_burst = rl->burst;
	if (!l->shared || !rl->count)
		return;
	if (s->fleet_up && now_us < l->share_until_us && cap) {
		m = l->share_milli < cap ? l->share_milli : cap;
		m = m ? m : 1;
		/* m attempts per 1000 s, or m / 1000 per second beyond what
		 * one count can name. */
		*ret_count = (uint32_t)(m <= GCRA_COUNT_MAX ? m : m / 1000);
		*ret_per = m <= GCRA_COUNT_MAX ? 1000000000ULL : 1000000ULL;
		*ret_burst = (uint32_t)((uint64_t)rl->burst * m / cap);
		*ret_burst = *ret_burst ? *ret_burst : 1;
		return;
	}
	if (n == 1)
		return;
	if (rl->per_us <= GCRA_PERIOD_MAX_US / n) {
		*ret_per = rl->per_us * n;
		return;
	}
	/* Longer than a day: fewer attempts in one day instead. */
	*ret_per = GCRA_PERIOD_MAX_US;
	*ret_count = (uint32_t)((uint64_t)rl->count * GCRA_PERIOD_MAX_US / rl->per_us / n);
	if (*ret_count == 0)
		*ret_count = 1;
}

/* Applies rl's rate to l when it changed (a reload, the fleet's slice):
 * the schedule stays. */
static void configure(const struct pace_set *s, struct pace_limiter *l,
		      const struct rate_limit_policy *rl, uint64_t now_us)
{
	uint32_t count, burst;
	uint64_t per;

	/* A request still running under an older configuration does not
	 * undo what a newer one set. */
	if (rl->generation < l->generation)
		return;
	l->generation = rl->generation;
	l->shared = rl->share == RATE_SHARE_FLEET;
	l->cap_milli = milli_rate(rl);
	local_rate(s, l, rl, now_us, &count, &per, &burst);
	if (l->count == count && (!count || (l->per_us == per && l->burst == burst)))
		return;
	if (gcra_reconfigure(&l->gcra, count, per, burst, now_us) < 0)
		return; /* the configuration checked it: cannot happen */
	l->count = count;
	l->per_us = per;
	l->burst = burst;
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
	configure(s, l, rl, now_us);
	ret->limiter = l->serial;
	l->demand++;
	gcra_reserve(&l->gcra, now_us, max_wait_us, &ret->slot);
	switch (ret->slot.verdict) {
	case GCRA_WAIT:
		l->queue++;
		ret->queued = 1;
		break;
	case GCRA_GO:
		if (limiting(l))
			histogram_observe(&s->waits, 0);
		break;
	case GCRA_REFUSED:
	default:
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
		const struct ratelimit_quota *q, uint64_t sent_us, uint64_t now_us)
{
	struct pace_limiter *l = limiter_of(s, rl->scope, now_us);

	/* An answer to an attempt sent before the one that taught the quota
	 * in force is older news: it does not replace it. */
	uint64_t remaining, limit, window;
	uint32_t n;

	if (!l || (l->gcra.learned && sent_us < l->learned_sent_us))
		return;
	configure(s, l, rl, now_us);
	/* The quota belongs to the API key, which the fleet's instances
	 * share: each spends its part of what is left (share: fleet). */
	n = l->shared && l->instances > 1 ? l->instances : 1;
	remaining = q->remaining / n;
	/* A reset of 0 (now) constrains nothing: gcra_learn() refuses it. */
	if (gcra_learn(&l->gcra, remaining, now_us + q->reset_s * 1000000, now_us) < 0)
		return;
	l->learned_sent_us = sent_us;
	/* After the reset, the window renews with the announced limit: its
	 * length as announced (RateLimit-Policy w), else the longest reset
	 * seen, which the first answer of a window announces. */
	if (q->reset_s * 1000000 > l->window_us)
		l->window_us = q->reset_s * 1000000;
	window = q->window_s ? q->window_s * 1000000 : l->window_us;
	/* A part of a limit is at least one attempt. */
	limit = q->has_limit && q->limit ? (q->limit / n ? q->limit / n : 1) : 0;
	gcra_learn_next(&l->gcra, limit, window);
}

size_t pace_views(const struct pace_set *s, uint64_t now_us, struct pace_view *ret, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n && k < max; i++) {
		const struct pace_limiter *l = &s->lims[i];

		ret[k].scope = l->route ? l->scope : NULL;
		gcra_snapshot(&l->gcra, now_us, &ret[k].gcra);
		ret[k].queue = l->queue;
		ret[k].shared = l->shared;
		ret[k].instances = l->instances;
		ret[k].share_milli =
		    l->shared && s->fleet_up && now_us < l->share_until_us
			? (l->share_milli < l->cap_milli ? l->share_milli : l->cap_milli)
			: 0;
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

void pace_fleet_up(struct pace_set *s, int up)
{
	s->fleet_up = up;
}

size_t pace_fleet_wants(struct pace_set *s, uint64_t now_us, struct pace_want *ret, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n && k < max; i++) {
		struct pace_limiter *l = &s->lims[i];
		uint64_t span = l->asked_us && now_us > l->asked_us ? now_us - l->asked_us : 0;

		/* Without a rate of its own, a shared limiter still asks: the
		 * instances it counts split a learned quota. */
		if (!l->shared)
			continue;
		/* What came in since the last ask, per 1000 s. */
		ret[k++] = (struct pace_want){
			.limiter = l->serial,
			.scope = l->route ? l->scope : NULL,
			.demand_milli = span ? l->demand * 1000000000ULL / span : 0,
			.cap_milli = l->cap_milli,
			.idle = now_us > l->used_us + 60000000ULL,
		};
		l->demand = 0;
		l->asked_us = now_us;
	}
	return k;
}

void pace_fleet_grant(struct pace_set *s, uint64_t limiter, uint64_t share_milli,
		      uint32_t instances, uint64_t until_us)
{
	struct pace_limiter *l = by_serial(s, limiter);

	if (!l || !l->shared)
		return;
	l->instances = instances < 1                    ? 1
		       : instances > PACE_INSTANCES_MAX ? PACE_INSTANCES_MAX
							: instances;
	/* Never more than the configured rate, whatever the fleet says. */
	l->share_milli = share_milli < l->cap_milli ? share_milli : l->cap_milli;
	l->share_until_us = until_us;
}

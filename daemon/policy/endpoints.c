/* The endpoint set of a profile: up to ENDPOINTS_MAX endpoints in set order,
 * each allocated alone so that one leaving the set while in flight moves to
 * the departed list without a copy, keeping its id and name where callers
 * borrowed them. Ejections end lazily: an endpoint is ejected while now is
 * before its ejected_until_us. */
#include "endpoints.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(ENDPOINTS_MAX <= 64, "a pick's candidates fit one 64-bit mask");

struct endpoint {
	struct endpoint *next; /* in the departed list */
	uint32_t id;
	char name[ENDPOINT_NAME_MAX];
	int measured;       /* a sample came: estimate is no longer the default */
	double estimate_us; /* as of stamp_us; decays from there */
	uint64_t stamp_us;  /* time of the estimate's last update */
	uint32_t inflight;
	/* The sum of the pick times of the attempts in flight: their mean age
	 * is now - pick_sum_us / inflight. */
	uint64_t pick_sum_us;
	uint32_t failures_in_row;
	uint32_t ejections_in_row; /* k */
	uint64_t ejections;
	uint64_t ejected_until_us; /* ejected while now is before it */
};

struct endpoints {
	struct endpoint_policy policy;
	uint32_t next_id;
	size_t n;
	struct endpoint *set[ENDPOINTS_MAX];
	size_t turn;               /* round robin: index of the next in turn */
	struct endpoint *departed; /* left the set, still in flight */
	uint64_t ejections;        /* made in this set, ever */
};

struct endpoints *endpoints_new(void)
{
	struct endpoints *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->next_id = 1;
	s->policy = (struct endpoint_policy){
		.balance = ENDPOINT_PEAK_EWMA,
		.consecutive_failures = 5,
		.base_us = 10000000,
		.max_us = 300000000,
		.max_percent = 50,
	};
	return s;
}

void endpoints_free(struct endpoints *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->set[i]);
		s->set[i] = NULL;
	}
	while (s->departed) {
		struct endpoint *e = s->departed;

		s->departed = e->next;
		free(e);
	}
	free(s);
}

void endpoints_configure(struct endpoints *s, const struct endpoint_policy *p)
{
	s->policy = *p;
}

static int is_ejected(const struct endpoint *e, uint64_t now_us)
{
	return now_us < e->ejected_until_us;
}

static struct endpoint *in_set(const struct endpoints *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->set[i]->name, name) == 0)
			return s->set[i];
	return NULL;
}

static struct endpoint *in_list(struct endpoint *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i]->name, name) == 0)
			return list[i];
	return NULL;
}

static struct endpoint *departed_named(const struct endpoints *s, const char *name)
{
	for (struct endpoint *e = s->departed; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static void departed_unlink(struct endpoints *s, const struct endpoint *gone)
{
	for (struct endpoint **p = &s->departed; *p; p = &(*p)->next) {
		if (*p == gone) {
			*p = gone->next;
			return;
		}
	}
}

static int listed(struct endpoint *const *list, size_t n, const struct endpoint *e)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == e)
			return 1;
	return 0;
}

static int name_usable(const char *name)
{
	return name && name[0] && strnlen(name, ENDPOINT_NAME_MAX) < ENDPOINT_NAME_MAX;
}

static struct endpoint *by_id(const struct endpoints *s, uint32_t id, int *ret_in_set);

void endpoints_set_next_id(struct endpoints *s, uint32_t next)
{
	s->next_id = next;
}

/* The next id no endpoint holds (in the set, departed, or made in this
 * update): ids count up and wrap past 2^32 - 1 skipping 0, so a name
 * server that rotates addresses for ever never freezes the set. A request
 * may still remember an old id it tried; it then avoids a newcomer once. */
static uint32_t fresh_id(struct endpoints *s, struct endpoint *const *made, size_t nmade)
{
	for (;;) {
		uint32_t id = s->next_id++;
		int in_set, taken = 0;

		if (id == 0)
			continue;
		for (size_t k = 0; k < nmade && !taken; k++)
			taken = made[k]->id == id;
		if (!taken && !by_id(s, id, &in_set))
			return id;
	}
}

size_t endpoints_update(struct endpoints *s, const char *const *names, size_t n, uint64_t now_us)
{
	struct endpoint *next[ENDPOINTS_MAX];
	struct endpoint *made[ENDPOINTS_MAX]; /* allocated here: freed if the update fails */
	uint32_t turn_id = s->n ? s->set[s->turn % s->n]->id : 0;
	size_t m = 0, nmade = 0;

	for (size_t i = 0; i < n && m < ENDPOINTS_MAX; i++) {
		struct endpoint *e;

		if (!name_usable(names[i]) || in_list(next, m, names[i]))
			continue;
		e = in_set(s, names[i]);
		if (!e)
			e = departed_named(s, names[i]);
		if (!e) {
			if (!(e = calloc(1, sizeof(*e))))
				goto fail;
			e->id = fresh_id(s, made, nmade);
			strcpy(e->name, names[i]);
			e->estimate_us = (double)ENDPOINT_DEFAULT_RTT_US;
			e->stamp_us = now_us;
			made[nmade++] = e;
		}
		next[m++] = e;
	}

	for (size_t i = 0; i < s->n; i++) {
		struct endpoint *e = s->set[i];

		if (listed(next, m, e))
			continue;
		if (e->inflight) {
			e->next = s->departed;
			s->departed = e;
		} else {
			free(e);
		}
		s->set[i] = NULL;
	}
	for (size_t i = 0; i < m; i++)
		if (!listed(made, nmade, next[i]) && !listed(s->set, s->n, next[i]))
			departed_unlink(s, next[i]);
	memcpy(s->set, next, m * sizeof(next[0]));
	s->n = m;
	/* The turn stays with the endpoint that was next, when it is kept. */
	s->turn = 0;
	for (size_t i = 0; i < m; i++)
		if (next[i]->id == turn_id)
			s->turn = i;
	return m;
fail:
	for (size_t i = 0; i < nmade; i++)
		free(made[i]);
	return s->n;
}

size_t endpoints_count(const struct endpoints *s)
{
	return s->n;
}

size_t endpoints_departed(const struct endpoints *s)
{
	size_t n = 0;

	for (const struct endpoint *e = s->departed; e; e = e->next)
		n++;
	return n;
}

uint32_t endpoints_find(const struct endpoints *s, const char *name)
{
	const struct endpoint *e = name ? in_set(s, name) : NULL;

	return e ? e->id : 0;
}

static struct endpoint *by_id(const struct endpoints *s, uint32_t id, int *ret_in_set)
{
	if (id == 0)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		if (s->set[i]->id == id) {
			*ret_in_set = 1;
			return s->set[i];
		}
	}
	for (struct endpoint *e = s->departed; e; e = e->next) {
		if (e->id == id) {
			*ret_in_set = 0;
			return e;
		}
	}
	return NULL;
}

const char *endpoints_name(const struct endpoints *s, uint32_t id)
{
	int kept;
	const struct endpoint *e = by_id(s, id, &kept);

	return e ? e->name : NULL;
}

/* exp(-elapsed/tau): how much of an estimate made elapsed ago is left. */
static double kept_after(uint64_t then_us, uint64_t now_us)
{
	if (now_us <= then_us)
		return 1.0;
	return exp(-(double)(now_us - then_us) / (double)ENDPOINT_DECAY_US);
}

static double estimate_at(const struct endpoint *e, uint64_t now_us)
{
	return e->estimate_us * kept_after(e->stamp_us, now_us);
}

/* Whole µs, so that pick, the snapshot and tests compare the same integers. */
static uint64_t estimate_us_at(const struct endpoint *e, uint64_t now_us)
{
	return (uint64_t)llround(estimate_at(e, now_us));
}

/* The estimate an attempt is judged by: the peak-EWMA, or the mean age of
 * the endpoint's attempts in flight when that is longer. Attempts that
 * have waited longer than the estimate already say the endpoint got
 * slower, before any of them answers: a newly slow endpoint stops drawing
 * traffic within its estimate, not after its first slow answer. */
static uint64_t judged_us_at(const struct endpoint *e, uint64_t now_us)
{
	uint64_t est = estimate_us_at(e, now_us);

	if (e->inflight) {
		uint64_t mean_pick = e->pick_sum_us / e->inflight;
		uint64_t age = now_us > mean_pick ? now_us - mean_pick : 0;

		if (age > est)
			est = age;
	}
	return est;
}

static uint64_t cost_at(const struct endpoint *e, uint64_t now_us)
{
	uint64_t cost;

	if (__builtin_mul_overflow(judged_us_at(e, now_us) + 1, (uint64_t)e->inflight + 1, &cost))
		return UINT64_MAX;
	return cost;
}

static int avoided(uint32_t id, const uint32_t *avoid, size_t navoid)
{
	for (size_t i = 0; i < navoid; i++)
		if (avoid[i] == id)
			return 1;
	return 0;
}

/* The endpoint whose ejection ends first: a set with every endpoint ejected
 * still answers, with the one closest to coming back. */
static size_t soonest_back(const struct endpoints *s)
{
	size_t best = 0;

	for (size_t i = 1; i < s->n; i++)
		if (s->set[i]->ejected_until_us < s->set[best]->ejected_until_us)
			best = i;
	return best;
}

static size_t nth_candidate(uint64_t mask, uint64_t nth)
{
	for (size_t i = 0;; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		if (nth-- == 0)
			return i;
	}
}

static size_t pick_p2c(const struct endpoints *s, uint64_t mask, uint64_t now_us, struct rng *rng)
{
	unsigned m = (unsigned)__builtin_popcountll(mask);
	uint64_t a, b;
	size_t ia, ib;

	if (m == 1)
		return nth_candidate(mask, 0);
	/* The second draw is among the m - 1 others, so the two are distinct
	 * and every pair is as likely. */
	a = rng_below(rng, m);
	b = rng_below(rng, m - 1);
	if (b >= a)
		b++;
	ia = nth_candidate(mask, a);
	ib = nth_candidate(mask, b);
	return cost_at(s->set[ib], now_us) < cost_at(s->set[ia], now_us) ? ib : ia;
}

static size_t pick_in_turn(struct endpoints *s, uint64_t mask)
{
	for (size_t k = 0; k < s->n; k++) {
		size_t i = (s->turn + k) % s->n;

		if (mask & (1ULL << i)) {
			s->turn = (i + 1) % s->n;
			return i;
		}
	}
	return 0; /* not reached: mask has a bit below n */
}

uint32_t endpoints_pick(struct endpoints *s, uint64_t now_us, struct rng *rng,
			const uint32_t *avoid, size_t navoid)
{
	uint64_t eligible = 0, fresh = 0, mask;
	struct endpoint *e;
	size_t i;

	if (!s->n)
		return 0;
	for (i = 0; i < s->n; i++) {
		if (is_ejected(s->set[i], now_us))
			continue;
		eligible |= 1ULL << i;
		if (!avoided(s->set[i]->id, avoid, navoid))
			fresh |= 1ULL << i;
	}
	mask = fresh ? fresh : eligible;
	if (!mask)
		i = soonest_back(s);
	else if (s->policy.balance == ENDPOINT_ROUND_ROBIN)
		i = pick_in_turn(s, mask);
	else
		i = pick_p2c(s, mask, now_us, rng);
	e = s->set[i];
	if (e->inflight < UINT32_MAX) {
		e->inflight++;
		e->pick_sum_us += now_us;
	}
	return e->id;
}

/* The peak-EWMA step for one sample at now_us. */
static void observe(struct endpoint *e, uint64_t now_us, uint64_t sample_us)
{
	double sample = (double)(sample_us < ENDPOINT_RTT_MAX_US ? sample_us : ENDPOINT_RTT_MAX_US);
	double kept = kept_after(e->stamp_us, now_us);
	double now_estimate = e->estimate_us * kept;

	if (!e->measured || sample > now_estimate)
		e->estimate_us = sample;
	else
		e->estimate_us = now_estimate * kept + sample * (1.0 - kept);
	e->measured = 1;
	if (now_us > e->stamp_us)
		e->stamp_us = now_us;
}

static uint32_t ejected_count(const struct endpoints *s, uint64_t now_us)
{
	uint32_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += (uint32_t)is_ejected(s->set[i], now_us);
	return n;
}

/* base * 2^(k-1), at most max, without overflow. */
static uint64_t ejection_length(const struct endpoint_policy *p, uint32_t k)
{
	uint64_t len = p->base_us;

	for (uint32_t i = 1; i < k && len < p->max_us; i++)
		len = len > UINT64_MAX / 2 ? UINT64_MAX : len * 2;
	return len < p->max_us ? len : p->max_us;
}

/* Ejects e for its next ejection length when the limits allow; returns 1 then. */
static int try_eject(struct endpoints *s, struct endpoint *e, uint64_t now_us,
		     uint64_t *ret_until_us)
{
	uint64_t ejected = ejected_count(s, now_us), len;

	/* At most floor(max_percent * n / 100), and never the last one. */
	if ((ejected + 1) * 100 > (uint64_t)s->policy.max_percent * s->n || ejected + 1 >= s->n)
		return 0;
	len = ejection_length(&s->policy, e->ejections_in_row + 1);
	if (!len)
		return 0;
	e->ejections_in_row++;
	e->ejections++;
	s->ejections++;
	e->failures_in_row = 0;
	e->ejected_until_us = now_us + len < now_us ? UINT64_MAX : now_us + len;
	if (ret_until_us)
		*ret_until_us = e->ejected_until_us;
	return 1;
}

int endpoints_done(struct endpoints *s, uint32_t id, uint64_t picked_us, uint64_t now_us,
		   uint64_t rtt_us, enum endpoint_result r, uint64_t *ret_until_us)
{
	int kept = 0, ejected = 0;
	struct endpoint *e = by_id(s, id, &kept);
	uint32_t threshold = s->policy.consecutive_failures ? s->policy.consecutive_failures : 1;

	if (!e)
		return 0;
	if (e->inflight) {
		e->inflight--;
		e->pick_sum_us = e->pick_sum_us > picked_us ? e->pick_sum_us - picked_us : 0;
	}
	if (!e->inflight)
		e->pick_sum_us = 0;
	switch (r) {
	case ENDPOINT_CUT:
		/* A hung endpoint is only ever cut: its time still counts. */
		if ((double)rtt_us > estimate_at(e, now_us))
			observe(e, now_us, rtt_us);
		break;
	case ENDPOINT_SUCCESS:
		observe(e, now_us, rtt_us);
		e->failures_in_row = 0;
		e->ejections_in_row = 0;
		break;
	case ENDPOINT_FAILURE:
		observe(e, now_us,
			rtt_us > ENDPOINT_FAILURE_RTT_US ? rtt_us : ENDPOINT_FAILURE_RTT_US);
		if (!kept || is_ejected(e, now_us))
			break;
		if (e->failures_in_row < UINT32_MAX)
			e->failures_in_row++;
		if (e->failures_in_row >= threshold)
			ejected = try_eject(s, e, now_us, ret_until_us);
		break;
	case ENDPOINT_NEUTRAL:
	default:
		break;
	}
	if (!kept && !e->inflight) {
		departed_unlink(s, e);
		free(e);
	}
	return ejected;
}

int endpoints_eject_until(struct endpoints *s, const char *name, uint64_t until_us, uint64_t now_us)
{
	struct endpoint *e = name ? in_set(s, name) : NULL;

	if (!e || until_us <= now_us)
		return 0;
	if (is_ejected(e, now_us)) {
		if (until_us <= e->ejected_until_us)
			return 0;
	} else if (ejected_count(s, now_us) + 1 >= s->n ||
		   (ejected_count(s, now_us) + 1) * 100 > (uint64_t)s->policy.max_percent * s->n) {
		/* Another instance's word never takes out more than this
		 * instance's own ejections could: max_percent, and never the
		 * last one. */
		return 0;
	} else {
		/* It comes back with no failures in a row, as after its own ejection. */
		e->failures_in_row = 0;
	}
	e->ejected_until_us = until_us;
	return 1;
}

size_t endpoints_snapshot(const struct endpoints *s, uint64_t now_us, struct endpoint_snapshot *out,
			  size_t max)
{
	size_t n = s->n < max ? s->n : max;

	for (size_t i = 0; i < n; i++) {
		const struct endpoint *e = s->set[i];
		struct endpoint_snapshot *o = &out[i];
		int ejected = is_ejected(e, now_us);

		memset(o, 0, sizeof(*o));
		memcpy(o->name, e->name, sizeof(o->name));
		o->state = ejected ? ENDPOINT_EJECTED : ENDPOINT_ACTIVE;
		o->ejected_until_us = ejected ? e->ejected_until_us : 0;
		o->estimate_us = estimate_us_at(e, now_us);
		o->cost_us = cost_at(e, now_us);
		o->inflight = e->inflight;
		o->failures_in_row = e->failures_in_row;
		o->ejections_in_row = e->ejections_in_row;
		o->ejections = e->ejections;
	}
	return n;
}

void endpoints_totals(const struct endpoints *s, uint64_t now_us, uint32_t *ret_active,
		      uint32_t *ret_ejected, uint64_t *ret_ejections)
{
	uint32_t ejected = ejected_count(s, now_us);

	if (ret_active)
		*ret_active = (uint32_t)s->n - ejected;
	if (ret_ejected)
		*ret_ejected = ejected;
	if (ret_ejections)
		*ret_ejections = s->ejections;
}

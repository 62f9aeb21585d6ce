/* Per-profile guards, kept in a short list by name so that a reload keeps
 * breaker state, budget and cool-down of the profiles it keeps. Every read
 * and change of that state goes through the verbs of guard.h. */
#include "guard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "latency.h"
#include "limiter.h"
#include "registry.h"

struct guard {
	struct registry_entry entry; /* the profile's name, in the list of guards */
	struct budget budget;
	struct breaker breaker;
	uint64_t cooldown_until_us; /* nothing is sent before this (SPEC 4.6) */
	unsigned inflight;
	uint64_t requests_ok;
	uint64_t requests[PROBLEM__COUNT]; /* answered with each error code */
	uint64_t attempts[OUTCOME__COUNT];
	uint64_t retries;
	uint64_t suppressed[RETRY_STOP__COUNT];
	struct histogram duration;
	struct schema_counter *schema_counters;
	/* latency defences (SPEC 4.10) */
	struct hedge_policy hedge; /* the profile's, for /status */
	struct latency latency;
	struct limiter limiter;
	int limiter_ready; /* limiter_init() done */
	int adaptive;
	uint32_t pool_max;
	uint64_t hedges[GUARD_HEDGE__COUNT];
	uint64_t streams[GUARD_STREAM__COUNT];
	uint64_t stream_bytes, stream_pauses;
	/* Fleet mode: hooks set by fleet.c, and what the fleet told us. */
	struct guard_hooks hooks;
	int hooked;
	int fleet_gate;          /* half-open probes need the fleet's lock */
	int probe_lock;          /* this instance holds it for this half-open period */
	int probe_asked;         /* a lock request is on its way */
	uint64_t probe_retry_us; /* when a lost lock may be asked for again */
	uint64_t fleet_valid_until_us;
	uint64_t fleet_requests, fleet_retries; /* the fleet's totals, last sync */
	uint64_t sent_requests, sent_retries;   /* in transit to the fleet */
	uint64_t pend_requests, pend_retries;   /* not yet sent */
	uint64_t fleet_round;                   /* counts taken for the fleet (or reset) so far */
	int fleet_bounded;                      /* the local budget must allow a retry too */
	/* The profile's endpoints (SPEC 4.11): kept across reloads, the set
	 * changed by guard_set_endpoints(). */
	struct endpoints *endpoints;
	int retry_elsewhere;
	struct pace_set *pace;          /* outbound rate limits (SPEC 4.12) */
	uint64_t cache[CACHE_R__COUNT]; /* answers by what the cache did (SPEC 4.13) */
};

static void emit_event(struct guard *g, struct guard_event *ev)
{
	if (g->hooked && g->hooks.event)
		g->hooks.event(g->hooks.arg, g, ev);
}

static void emit(struct guard *g, enum guard_event_kind kind, uint64_t until_us)
{
	struct guard_event ev = { .kind = kind,
				  .until_us = until_us,
				  .open_for_ms = g->breaker.policy.open_for_ms };

	emit_event(g, &ev);
}

/* The breaker left half-open (or was set from outside): the probe lock of
 * that period is spent. */
static void probe_period_over(struct guard *g)
{
	g->probe_lock = 0;
	g->probe_asked = 0;
	g->probe_retry_us = 0;
}

static struct guard *guard_of(struct registry_entry *e)
{
	return e ? registry_object(e, struct guard, entry) : NULL;
}

struct guard *guard_get(struct guard **list, const char *name)
{
	struct registry_entry *head = *list ? &(*list)->entry : NULL;
	struct guard *g = guard_of(registry_find(head, name));

	if (g)
		return g;
	g = calloc(1, sizeof(*g));
	if (!g || !(g->endpoints = endpoints_new()) || !(g->pace = pace_new()) ||
	    registry_add(&head, &g->entry, name) < 0) {
		if (g) {
			endpoints_free(g->endpoints);
			pace_free(g->pace);
		}
		free(g);
		return NULL;
	}
	latency_init(&g->latency);
	*list = g;
	return g;
}

struct guard *guard_next(const struct guard *g)
{
	return guard_of(g->entry.next);
}

const char *guard_name(const struct guard *g)
{
	return g->entry.name;
}

static void guard_configure_latency(struct guard *g, const struct policy *p);

uint64_t guard_breaker_retry_after_ms(struct guard *g, uint64_t now_us)
{
	return breaker_retry_after_ms(&g->breaker, now_us);
}

void guard_configure(struct guard *g, const struct policy *p)
{
	budget_configure(&g->budget, p->retry.budget_ratio, p->retry.budget_min_per_second,
			 p->retry.budget_window_ms);
	breaker_configure(&g->breaker, &p->breaker);
	guard_configure_latency(g, p);
	endpoints_configure(g->endpoints,
			    &(struct endpoint_policy){
				.balance = p->endpoints.balance,
				.consecutive_failures = p->endpoints.consecutive_failures,
				.base_us = (uint64_t)p->endpoints.eject_base_ms * 1000,
				.max_us = (uint64_t)p->endpoints.eject_max_ms * 1000,
				.max_percent = p->endpoints.max_percent,
			    });
	g->retry_elsewhere = p->endpoints.retry_elsewhere;
}

/* ---- outbound rate limits (SPEC 4.12) ---- */

enum gcra_verdict guard_pace(struct guard *g, const struct rate_limit_policy *rl, uint64_t now_us,
			     uint64_t max_wait_us, struct pace_ticket *ret)
{
	return pace_reserve(g->pace, rl, now_us, max_wait_us, ret);
}

void guard_pace_arrived(struct guard *g, struct pace_ticket *t)
{
	pace_arrived(g->pace, t);
}

void guard_pace_release(struct guard *g, struct pace_ticket *t)
{
	pace_release(g->pace, t);
}

void guard_pace_learn(struct guard *g, const struct rate_limit_policy *rl,
		      const struct ratelimit_quota *q, uint64_t sent_us, uint64_t now_us)
{
	pace_learn(g->pace, rl, q, sent_us, now_us);
}

void guard_count_cache(struct guard *g, enum cache_result r)
{
	if ((unsigned)r < CACHE_R__COUNT)
		g->cache[r]++;
}

void guard_count_rate_limited(struct guard *g, enum gcra_by by)
{
	pace_count_refused(g->pace, by);
}

struct pace_set *guard_pace_set(struct guard *g)
{
	return g->pace;
}

const struct pace_set *guard_paces(const struct guard *g)
{
	return g->pace;
}

/* ---- endpoints (SPEC 4.11) ---- */

void guard_set_endpoints(struct guard *g, const char *const *names, size_t n, uint64_t now_us)
{
	endpoints_update(g->endpoints, names, n, now_us);
}

uint32_t guard_endpoint_pick(struct guard *g, uint64_t now_us, struct rng *rng,
			     const uint32_t *tried, size_t ntried)
{
	return endpoints_pick(g->endpoints, now_us, rng, g->retry_elsewhere ? tried : NULL,
			      g->retry_elsewhere ? ntried : 0);
}

const char *guard_endpoint_name(const struct guard *g, uint32_t id)
{
	return endpoints_name(g->endpoints, id);
}

void guard_endpoint_done(struct guard *g, uint32_t id, uint64_t picked_us, uint64_t now_us,
			 uint64_t rtt_us, enum endpoint_result r)
{
	uint64_t until;

	/* An endpoint that ejects is in the set (a departed one, which its
	 * last done may free, never ejects): its name is still there. */
	if (endpoints_done(g->endpoints, id, picked_us, now_us, rtt_us, r, &until)) {
		struct guard_event ev = { .kind = GUARD_EV_EJECT,
					  .until_us = until,
					  .endpoint = endpoints_name(g->endpoints, id) };

		emit_event(g, &ev);
	}
}

enum endpoint_result guard_endpoint_result(enum attempt_end end, int status, int schema_failed,
					   int on_schema_violation)
{
	switch (end) {
	case ATTEMPT_OK:
		if (status >= 500 || (schema_failed && on_schema_violation))
			return ENDPOINT_FAILURE;
		return ENDPOINT_SUCCESS;
	case ATTEMPT_CONNECT:
	case ATTEMPT_RESET:
	case ATTEMPT_TIMEOUT:
		return ENDPOINT_FAILURE;
	default:
		/* braced's own limits and failures, or no connection: the
		 * endpoint did nothing wrong, nor right. */
		return ENDPOINT_NEUTRAL;
	}
}

void guard_fleet_eject(struct guard *g, const char *name, uint64_t until_us, uint64_t now_us)
{
	endpoints_eject_until(g->endpoints, name, until_us, now_us);
}

const struct endpoints *guard_endpoints(const struct guard *g)
{
	return g->endpoints;
}

/* The hedge and concurrency settings of a profile; the estimate and the
 * limiter's state survive a reload. */
static void guard_configure_latency(struct guard *g, const struct policy *p)
{
	g->hedge = p->hedge;
	g->adaptive = p->concurrency.adaptive;
	g->pool_max = p->pool_max_connections;
	if (!g->limiter_ready) {
		limiter_init(&g->limiter, p->concurrency.min, p->concurrency.max, 0);
		g->limiter_ready = 1;
	} else {
		limiter_configure(&g->limiter, p->concurrency.min, p->concurrency.max);
	}
}

void guard_admit(struct guard *g, uint64_t now_us, struct guard_admission *ret)
{
	g->inflight++;
	budget_deposit(&g->budget, now_us);
	if (g->hooked && g->pend_requests++ == 0 && g->pend_retries == 0)
		emit(g, GUARD_EV_COUNTS, 0);
	*ret = (struct guard_admission){ .cooldown_until_us = g->cooldown_until_us };
	switch (breaker_admit(&g->breaker, now_us)) {
	case BREAKER_REJECT:
		ret->verdict = GUARD_REJECT;
		ret->retry_after_ms = breaker_retry_after_ms(&g->breaker, now_us);
		break;
	case BREAKER_ALLOW_PROBE:
		if (g->hooked && g->fleet_gate && !g->probe_lock) {
			/* Another instance may hold the fleet's probe: refuse, and
			 * ask for the lock without waiting for the answer. */
			breaker_probe_abandoned(&g->breaker);
			ret->verdict = GUARD_REJECT;
			if (!g->probe_asked && now_us >= g->probe_retry_us) {
				g->probe_asked = 1;
				emit(g, GUARD_EV_WANT_PROBE, 0);
			}
			break;
		}
		ret->verdict = GUARD_PROBE;
		break;
	case BREAKER_ALLOW:
	default:
		ret->verdict = GUARD_ALLOW;
		break;
	}
}

void guard_leave(struct guard *g, int probe)
{
	g->inflight--;
	if (probe)
		breaker_probe_abandoned(&g->breaker);
}

int guard_refuses(struct guard *g, uint64_t now_us, int probe)
{
	enum breaker_state bs = breaker_state(&g->breaker, now_us);

	return bs == BREAKER_OPEN || (bs == BREAKER_HALF_OPEN && !probe);
}

void guard_record(struct guard *g, enum outcome o)
{
	if ((unsigned)o < OUTCOME__COUNT)
		g->attempts[o]++;
}

int guard_is_failure(const enum problem_code *code, int status)
{
	if (!code)
		return 0;
	switch (*code) {
	case PROBLEM_UPSTREAM_UNAVAILABLE:
	case PROBLEM_UPSTREAM_TIMEOUT:
		return 1;
	case PROBLEM_UPSTREAM_STATUS:
		return status >= 500;
	default:
		return 0;
	}
}

void guard_judge(struct guard *g, uint64_t now_us, int failure, int probe)
{
	enum breaker_state before = breaker_state(&g->breaker, now_us), after;

	breaker_record(&g->breaker, now_us, failure, probe);
	after = breaker_state(&g->breaker, now_us);
	if (before == BREAKER_HALF_OPEN && after != BREAKER_HALF_OPEN)
		probe_period_over(g);
	if (after == BREAKER_OPEN && before != BREAKER_OPEN)
		emit(g, GUARD_EV_OPEN, g->breaker.open_until_us);
	else if (after == BREAKER_CLOSED && before == BREAKER_HALF_OPEN)
		emit(g, GUARD_EV_CLOSE, 0);
}

int guard_try_withdraw(struct guard *g, uint64_t now_us, struct guard_token *ret)
{
	if (g->hooked && now_us < g->fleet_valid_until_us) {
		if (!budget_allows(g->budget.ratio, g->budget.min_per_second, g->budget.window_ms,
				   g->fleet_requests + g->sent_requests + g->pend_requests,
				   g->fleet_retries + g->sent_retries + g->pend_retries))
			return 0;
		if (g->fleet_bounded && !budget_can_withdraw(&g->budget, now_us))
			return 0;
	} else if (!budget_can_withdraw(&g->budget, now_us)) {
		return 0;
	}
	budget_withdraw(&g->budget, now_us);
	if (g->hooked && g->pend_retries++ == 0 && g->pend_requests == 0)
		emit(g, GUARD_EV_COUNTS, 0);
	*ret = (struct guard_token){ .taken_us = now_us, .held = 1, .fleet_round = g->fleet_round };
	return 1;
}

void guard_give_back(struct guard *g, uint64_t now_us, struct guard_token *token)
{
	(void)now_us;
	if (token->held) {
		budget_give_back(&g->budget, token->taken_us);
		/* Only a withdrawal not yet sent to the fleet can be taken back;
		 * one already sent stays counted there (the safe side). */
		if (token->fleet_round == g->fleet_round && g->pend_retries > 0)
			g->pend_retries--;
	}
	*token = (struct guard_token){ 0 };
}

uint64_t guard_cooldown_until(const struct guard *g)
{
	return g->cooldown_until_us;
}

void guard_cool_down(struct guard *g, uint64_t until_us)
{
	if (until_us > g->cooldown_until_us) {
		g->cooldown_until_us = until_us;
		emit(g, GUARD_EV_COOLDOWN, until_us);
	}
}

void guard_set_hooks(struct guard *g, const struct guard_hooks *h)
{
	g->hooked = h != NULL;
	g->hooks = h ? *h : (struct guard_hooks){ 0 };
	g->fleet_gate = 0;
	probe_period_over(g);
	g->fleet_valid_until_us = 0;
	g->fleet_requests = g->fleet_retries = 0;
	g->sent_requests = g->sent_retries = 0;
	g->pend_requests = g->pend_retries = 0;
	g->fleet_round++;
	g->fleet_bounded = 0;
}

void guard_fleet_budget_bounded(struct guard *g, int on)
{
	g->fleet_bounded = on;
}

void guard_fleet_gate(struct guard *g, int on)
{
	g->fleet_gate = on;
	if (!on)
		probe_period_over(g);
}

void guard_fleet_probe_lock(struct guard *g, int won, uint64_t retry_at_us)
{
	g->probe_asked = 0;
	g->probe_lock = won;
	g->probe_retry_us = won ? 0 : retry_at_us;
}

void guard_fleet_open(struct guard *g, uint64_t now_us, uint64_t until_us)
{
	if (!g->breaker.policy.enabled || until_us <= now_us)
		return;
	breaker_force_open(&g->breaker, now_us, until_us);
	probe_period_over(g);
}

void guard_fleet_close(struct guard *g, uint64_t now_us)
{
	if (breaker_state(&g->breaker, now_us) != BREAKER_CLOSED) {
		breaker_force_close(&g->breaker);
		probe_period_over(g);
	}
}

void guard_fleet_cool_down(struct guard *g, uint64_t until_us)
{
	if (until_us > g->cooldown_until_us)
		g->cooldown_until_us = until_us;
}

void guard_fleet_take_counts(struct guard *g, uint64_t *ret_requests, uint64_t *ret_retries)
{
	*ret_requests = g->pend_requests;
	*ret_retries = g->pend_retries;
	g->sent_requests += g->pend_requests;
	g->sent_retries += g->pend_retries;
	g->pend_requests = g->pend_retries = 0;
	g->fleet_round++;
}

void guard_fleet_budget(struct guard *g, uint64_t requests, uint64_t retries,
			uint64_t valid_until_us)
{
	g->fleet_requests = requests;
	g->fleet_retries = retries;
	g->sent_requests = g->sent_retries = 0;
	g->fleet_valid_until_us = valid_until_us;
}

void guard_fleet_budget_lost(struct guard *g)
{
	g->sent_requests = g->sent_retries = 0;
	g->fleet_valid_until_us = 0;
}

int guard_fleet_busy(const struct guard *g)
{
	return g->inflight > 0 || g->pend_requests > 0 || g->pend_retries > 0;
}

void guard_count_retry(struct guard *g)
{
	g->retries++;
}

void guard_count_suppressed(struct guard *g, enum retry_stop reason)
{
	if ((unsigned)reason < RETRY_STOP__COUNT)
		g->suppressed[reason]++;
}

void guard_count_answer(struct guard *g, const enum problem_code *code, double seconds)
{
	histogram_observe(&g->duration, seconds);
	if (!code)
		g->requests_ok++;
	else if ((unsigned)*code < PROBLEM__COUNT)
		g->requests[*code]++;
}

void guard_count_violation(struct guard *g, const char *route, const char *direction,
			   const char *mode)
{
	struct schema_counter *sc;

	for (sc = g->schema_counters; sc; sc = sc->next)
		if (sc->direction == direction && sc->mode == mode && strcmp(sc->route, route) == 0)
			break;
	if (!sc) {
		sc = calloc(1, sizeof(*sc));
		if (!sc)
			return;
		sc->route = strdup(route);
		if (!sc->route) {
			free(sc);
			return;
		}
		sc->direction = direction;
		sc->mode = mode;
		sc->next = g->schema_counters;
		g->schema_counters = sc;
	}
	sc->count++;
}

/* ---- latency defences ---- */

void guard_observe_latency(struct guard *g, uint64_t now_us, uint64_t attempt_us)
{
	latency_observe(&g->latency, now_us, attempt_us);
}

int guard_hedge_delay(struct guard *g, uint64_t now_us, const struct hedge_policy *h,
		      uint32_t *ret_ms)
{
	uint64_t us;

	if (h->quantile == 0) {
		if (h->delay_ms == 0)
			return -ENOENT;
		*ret_ms = h->delay_ms;
		return 0;
	}
	if (latency_quantile(&g->latency, now_us, h->quantile, &us) < 0)
		return -EAGAIN;
	/* Rounded up: a delay of 0 would hedge every request at once. */
	*ret_ms = (uint32_t)((us + 999) / 1000);
	return 0;
}

void guard_count_hedge(struct guard *g, enum guard_hedge_result r)
{
	if ((unsigned)r < GUARD_HEDGE__COUNT)
		g->hedges[r]++;
}

void guard_count_stream(struct guard *g, enum guard_stream_end e, uint64_t bytes, uint32_t pauses)
{
	if ((unsigned)e < GUARD_STREAM__COUNT)
		g->streams[e]++;
	g->stream_bytes += bytes;
	g->stream_pauses += pauses;
}

void guard_limiter_sample(struct guard *g, uint64_t now_us, uint64_t rtt_us)
{
	if (g->adaptive && g->limiter_ready)
		limiter_sample(&g->limiter, now_us, rtt_us);
}

uint32_t guard_concurrency_limit(const struct guard *g)
{
	uint32_t lim;

	if (!g->adaptive || !g->limiter_ready)
		return g->pool_max;
	lim = limiter_limit(&g->limiter);
	return lim < g->pool_max ? lim : g->pool_max;
}

void guard_snapshot(struct guard *g, uint64_t now_us, struct guard_snapshot *ret)
{
	*ret = (struct guard_snapshot){
		.name = g->entry.name,
		.inflight = g->inflight,
		.breaker = breaker_state(&g->breaker, now_us),
		.breaker_retry_after_ms = breaker_retry_after_ms(&g->breaker, now_us),
		.cooldown_ms =
		    g->cooldown_until_us > now_us ? g->cooldown_until_us / 1000 - now_us / 1000 : 0,
		.requests_ok = g->requests_ok,
		.retries = g->retries,
		.duration = &g->duration,
		.schema_counters = g->schema_counters,
		.concurrency_limit = guard_concurrency_limit(g),
		.adaptive = g->adaptive,
		.min_rtt_us = g->limiter_ready ? g->limiter.min_rtt_us : 0,
		.fleet = g->hooked,
		.fleet_gate = g->fleet_gate,
		.fleet_probe_lock = g->probe_lock,
		.fleet_budget = g->hooked && now_us < g->fleet_valid_until_us,
		.fleet_requests = g->fleet_requests,
		.fleet_retries = g->fleet_retries,
	};
	{
		uint32_t ms = 0;
		int r = guard_hedge_delay(g, now_us, &g->hedge, &ms);

		ret->hedge_delay = guard_hedge_delay_of(r, ms);
	}
	memcpy(ret->hedges, g->hedges, sizeof(ret->hedges));
	memcpy(ret->streams, g->streams, sizeof(ret->streams));
	ret->stream_bytes = g->stream_bytes;
	ret->stream_pauses = g->stream_pauses;
	budget_totals(&g->budget, now_us, &ret->budget_requests, &ret->budget_retries);
	memcpy(ret->requests, g->requests, sizeof(ret->requests));
	memcpy(ret->attempts, g->attempts, sizeof(ret->attempts));
	memcpy(ret->suppressed, g->suppressed, sizeof(ret->suppressed));
	endpoints_totals(g->endpoints, now_us, &ret->endpoints_active, &ret->endpoints_ejected,
			 &ret->endpoint_ejections);
	pace_refused(g->pace, &ret->rate_limited_configured, &ret->rate_limited_learned);
	ret->rate_wait = pace_waits(g->pace);
	memcpy(ret->cache, g->cache, sizeof(ret->cache));
}

void guards_free(struct guard *list)
{
	while (list) {
		struct guard *next = guard_of(list->entry.next);

		while (list->schema_counters) {
			struct schema_counter *sc = list->schema_counters;

			list->schema_counters = sc->next;
			free(sc->route);
			free(sc);
		}
		registry_entry_release(&list->entry);
		endpoints_free(list->endpoints);
		pace_free(list->pace);
		free(list);
		list = next;
	}
}

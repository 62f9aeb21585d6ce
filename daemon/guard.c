/* Per-profile guards, kept in a short list by name so that a reload keeps
 * breaker state, budget and cool-down of the profiles it keeps. Every read
 * and change of that state goes through the verbs of guard.h. */
#include "guard.h"

#include <stdlib.h>
#include <string.h>

#include "budget.h"

struct guard {
	char *name;
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
	struct guard *next;
};

struct guard *guard_get(struct guard **list, const char *name)
{
	struct guard *g;

	for (g = *list; g; g = g->next)
		if (strcmp(g->name, name) == 0)
			return g;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->name = strdup(name);
	if (!g->name) {
		free(g);
		return NULL;
	}
	g->next = *list;
	*list = g;
	return g;
}

struct guard *guard_next(const struct guard *g)
{
	return g->next;
}

const char *guard_name(const struct guard *g)
{
	return g->name;
}

void guard_configure(struct guard *g, const struct policy *p)
{
	budget_configure(&g->budget, p->retry.budget_ratio, p->retry.budget_min_per_second,
			 p->retry.budget_window_ms);
	breaker_configure(&g->breaker, &p->breaker);
}

void guard_admit(struct guard *g, uint64_t now_us, struct guard_admission *ret)
{
	uint64_t now = now_us / 1000;

	g->inflight++;
	budget_deposit(&g->budget, now);
	*ret = (struct guard_admission){ .cooldown_until_us = g->cooldown_until_us };
	switch (breaker_admit(&g->breaker, now)) {
	case BREAKER_REJECT:
		ret->verdict = GUARD_REJECT;
		ret->retry_after_ms = breaker_retry_after_ms(&g->breaker, now);
		break;
	case BREAKER_ALLOW_PROBE:
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
	enum breaker_state bs = breaker_state(&g->breaker, now_us / 1000);

	return bs == BREAKER_OPEN || (bs == BREAKER_HALF_OPEN && !probe);
}

void guard_record(struct guard *g, uint64_t now_us, enum outcome o, int status, int probe)
{
	if ((unsigned)o < OUTCOME__COUNT)
		g->attempts[o]++;
	breaker_record(&g->breaker, now_us / 1000, retry_is_failure(o, status), probe);
}

int guard_try_withdraw(struct guard *g, uint64_t now_us, struct guard_token *ret)
{
	uint64_t now = now_us / 1000;

	if (!budget_can_withdraw(&g->budget, now))
		return 0;
	budget_withdraw(&g->budget, now);
	*ret = (struct guard_token){ .taken_ms = now, .held = 1 };
	return 1;
}

void guard_give_back(struct guard *g, uint64_t now_us, struct guard_token *token)
{
	(void)now_us;
	if (token->held)
		budget_give_back(&g->budget, token->taken_ms);
	*token = (struct guard_token){ 0 };
}

uint64_t guard_cooldown_until(const struct guard *g)
{
	return g->cooldown_until_us;
}

void guard_cool_down(struct guard *g, uint64_t until_us)
{
	if (until_us > g->cooldown_until_us)
		g->cooldown_until_us = until_us;
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

void guard_count_answer(struct guard *g, int code, double seconds)
{
	histogram_observe(&g->duration, seconds);
	if (code < 0)
		g->requests_ok++;
	else if (code < PROBLEM__COUNT)
		g->requests[code]++;
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

void guard_snapshot(struct guard *g, uint64_t now_us, struct guard_snapshot *ret)
{
	uint64_t now = now_us / 1000;

	*ret = (struct guard_snapshot){
		.name = g->name,
		.inflight = g->inflight,
		.breaker = breaker_state(&g->breaker, now),
		.breaker_retry_after_ms = breaker_retry_after_ms(&g->breaker, now),
		.cooldown_ms =
		    g->cooldown_until_us / 1000 > now ? g->cooldown_until_us / 1000 - now : 0,
		.requests_ok = g->requests_ok,
		.retries = g->retries,
		.duration = &g->duration,
		.schema_counters = g->schema_counters,
	};
	budget_totals(&g->budget, now, &ret->budget_requests, &ret->budget_retries);
	memcpy(ret->requests, g->requests, sizeof(ret->requests));
	memcpy(ret->attempts, g->attempts, sizeof(ret->attempts));
	memcpy(ret->suppressed, g->suppressed, sizeof(ret->suppressed));
}

void guards_free(struct guard *list)
{
	while (list) {
		struct guard *next = list->next;

		while (list->schema_counters) {
			struct schema_counter *sc = list->schema_counters;

			list->schema_counters = sc->next;
			free(sc->route);
			free(sc);
		}
		free(list->name);
		free(list);
		list = next;
	}
}

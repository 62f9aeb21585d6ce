/* Per-profile guards, kept in a short list by name so that a reload keeps
 * breaker state, budget and cool-down of the profiles it keeps. */
#include "guard.h"

#include <stdlib.h>
#include <string.h>

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

void guard_configure(struct guard *g, const struct policy *p)
{
	budget_configure(&g->budget, p->retry.budget_ratio, p->retry.budget_min_per_second,
			 p->retry.budget_window_ms);
	breaker_configure(&g->breaker, &p->breaker);
}

void guard_cool_down(struct guard *g, uint64_t until_us)
{
	if (until_us > g->cooldown_until_us)
		g->cooldown_until_us = until_us;
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

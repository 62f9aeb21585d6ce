/* The fleet's retry budget (SPEC 4.9, share `budget`): while a guard is
 * busy, every sync_interval each profile pushes the requests and retries
 * it counted into per-second buckets in Redis and pulls the fleet's totals
 * over its window, in one script; an idle instance sleeps. */
#include "fleet_internal.h"

#include <stdio.h>

#include "clock.h"
#include "guard.h"

/* Arms the next budget sync, sync_interval after the last one (at once
 * after a pause), when sharing the budget and a guard is busy. */
void fleet_budget_arm(struct fleet *f)
{
	uint64_t now, at, every = (uint64_t)f->set.sync_interval_ms * 1000;
	struct timeval tv;
	int busy = 0;

	if (!f->up || !(f->set.share & FLEET_SHARE_BUDGET) || evtimer_pending(f->sync_timer, NULL))
		return;
	for (size_t i = 0; i < f->nprofiles && !busy; i++)
		busy = guard_fleet_busy(f->profiles[i].g);
	if (!busy)
		return;
	now = clock_now_us();
	at = f->last_sync_us ? f->last_sync_us + every : now;
	at = at > now ? at - now : 0;
	clock_us_to_tv(at, &tv);
	event_add(f->sync_timer, &tv);
}

void fleet_budget_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *f = arg;
	uint64_t wnow = fleet_wall_ms();

	(void)fd;
	(void)what;
	if (!f->up)
		return;
	f->last_sync_us = clock_now_us();
	for (size_t i = 0; i < f->nprofiles; i++) {
		struct fleet_profile *p = &f->profiles[i];
		uint64_t first, d, w;
		uint32_t count;
		char a1[24], a2[24], a3[24], a4[24], a5[24];

		/* Idle: nothing to push, and no retry to decide. */
		if (p->syncing || !guard_fleet_busy(p->g))
			continue;
		fleet_buckets(wnow, p->budget_window_ms, &first, &count);
		guard_fleet_take_counts(p->g, &d, &w);
		snprintf(a1, sizeof(a1), "%llu", (unsigned long long)(wnow / 1000));
		snprintf(a2, sizeof(a2), "%llu", (unsigned long long)first);
		snprintf(a3, sizeof(a3), "%u", count + FLEET_BUCKET_SLACK_S);
		snprintf(a4, sizeof(a4), "%llu", (unsigned long long)d);
		snprintf(a5, sizeof(a5), "%llu", (unsigned long long)w);
		if (fleet_call_with(f, OP_BUDGET, p, 0, "EVAL %s 1 %s %s %s %s %s %s",
				    fleet_script_budget, p->key_budget, a1, a2, a3, a4, a5) == 0)
			p->syncing = 1;
		else
			guard_fleet_budget_lost(p->g);
	}
	fleet_budget_arm(f);
}

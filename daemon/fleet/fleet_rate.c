/* Shared rate limits (SPEC 4.12, rate_limit.share: fleet): every
 * sync_interval, each limiter in use tells Redis its demand and gets its
 * slice of the rate back (a Lua script splits the rate max-min fairly over
 * the instances' demands), and Redis counts the instances seen in the last
 * minute. No request waits on Redis: the limiter paces at the slice it
 * holds. A slice holds three intervals; a slice from Redis is cut to the
 * configured rate (pace.c), so a hostile Redis can make an instance send at
 * most that rate. With Redis away, each limiter keeps the configured rate
 * ÷ the instances last counted. */
#include "fleet_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "guard.h"
#include "hash.h"
#include "pace.h"

/* A slice holds this many sync intervals, and a demand counts as long. */
#define FLEET_RATE_HOLD 3

static uint64_t sync_us(const struct fleet *f)
{
	return (uint64_t)f->set.sync_interval_ms * 1000;
}

void fleet_rate_state(struct fleet *f)
{
	for (size_t i = 0; i < f->nprofiles; i++)
		pace_fleet_up(guard_pace_set(f->profiles[i].g), f->up);
	if (!f->up)
		event_del(f->rate_timer);
	else
		fleet_rate_arm(f);
}

void fleet_rate_arm(struct fleet *f)
{
	struct timeval tv;

	if (!f->up || !f->rate_shared || evtimer_pending(f->rate_timer, NULL))
		return;
	clock_us_to_tv(sync_us(f), &tv);
	evtimer_add(f->rate_timer, &tv);
}

/* The key of a limiter's demands: the profile's rate prefix and "-" for
 * its own limiter, or the hash of the route's label. */
static int rate_key(char *out, size_t outlen, const struct fleet_profile *p, const char *scope)
{
	int n = scope ? snprintf(out, outlen, "%s%016" PRIx64, p->key_rate,
				 hash_fnv1a64(scope, strlen(scope)))
		      : snprintf(out, outlen, "%s-", p->key_rate);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* Tells the demand of one limiter, asks for its slice. */
static void ask(struct fleet *f, struct fleet_profile *p, const struct pace_want *w,
		uint64_t wall_ms)
{
	char key[FLEET_KEY_MAX], a[5][24];

	if (rate_key(key, sizeof(key), p, w->scope) < 0)
		return;
	snprintf(a[0], sizeof(a[0]), "%" PRIu64, wall_ms);
	snprintf(a[1], sizeof(a[1]), "%016" PRIx64, f->instance);
	snprintf(a[2], sizeof(a[2]), "%" PRIu64, w->demand_milli);
	snprintf(a[3], sizeof(a[3]), "%" PRIu64, w->cap_milli);
	snprintf(a[4], sizeof(a[4]), "%" PRIu64, sync_us(f) * FLEET_RATE_HOLD / 1000);
	fleet_call_with(f, OP_RATE, p, w->limiter, "EVAL %s 2 %s %s %s %s %s %s %s",
			fleet_script_rate, key, p->key_instances, a[0], a[1], a[2], a[3], a[4]);
}

void fleet_rate_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *f = arg;
	uint64_t now = clock_now_us(), wall = fleet_wall_ms();

	(void)fd;
	(void)what;
	if (!f->up)
		return;
	for (size_t i = 0; i < f->nprofiles; i++) {
		struct fleet_profile *p = &f->profiles[i];
		struct pace_want w[PACE_LIMITERS_MAX];
		size_t n = pace_fleet_wants(guard_pace_set(p->g), now, w, PACE_LIMITERS_MAX);

		/* An idle limiter is not counted among the instances. */
		for (size_t k = 0; k < n; k++)
			if (!w[k].idle)
				ask(f, p, &w[k], wall);
	}
	fleet_rate_arm(f);
}

/* An integer element of a reply array, at least 0. */
static int element(const redisReply *r, size_t i, uint64_t *ret)
{
	if (r->element[i]->type != REDIS_REPLY_INTEGER || r->element[i]->integer < 0)
		return -EINVAL;
	*ret = (uint64_t)r->element[i]->integer;
	return 0;
}

void fleet_rate_reply(struct fleet *f, struct fleet_profile *p, uint64_t limiter,
		      const redisReply *r)
{
	uint64_t share, seen, asking;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || element(r, 0, &share) < 0 ||
	    element(r, 1, &seen) < 0 || element(r, 2, &asking) < 0) {
		fleet_count_error(f, FLEET_OP_RATE);
		return;
	}
	/* An instance asking is an instance seen. */
	if (asking > seen)
		seen = asking;
	pace_fleet_grant(guard_pace_set(p->g), limiter, share,
			 seen > PACE_INSTANCES_MAX ? PACE_INSTANCES_MAX : (uint32_t)seen,
			 clock_now_us() + sync_us(f) * FLEET_RATE_HOLD);
}

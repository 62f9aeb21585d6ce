/* Private to the fleet's modules (fleet.c, fleet_rate.c): the fleet's
 * state, its timed calls to Redis and their kinds. Nothing outside fleet/
 * includes it. */
#ifndef BRACED_FLEET_INTERNAL_H
#define BRACED_FLEET_INTERNAL_H

#include <stdint.h>
#include <event2/event.h>

#include "fleet.h"
#include "fleetproto.h"
#include "redis.h"
#include "rng.h"

/* Longest reply string read from Redis (a window end is at most 20 digits). */
#define FLEET_MAX_VALUE 32

/* Redis's counters cannot be signed: a fleet budget total beyond this is
 * a forgery or a fault, and the local budget decides instead. */
#define FLEET_MAX_COUNT (1ull << 40)

_Static_assert(CONFIG_FLEET_SECRET_MAX <= FLEET_SECRET_MAX, "fleet.secret beyond what is signed");
_Static_assert(CONFIG_FLEET_PREFIX_MAX + FLEET_ID_MAX + sizeof("{}:eject:") + ENDPOINT_NAME_MAX <=
		   FLEET_KEY_MAX,
	       "an ejection's key must fit");

struct fleet_profile {
	struct guard *g; /* borrowed: guards outlive the fleet */
	char id[FLEET_ID_MAX];
	char key_cooldown[FLEET_KEY_MAX], key_breaker[FLEET_KEY_MAX], key_probe[FLEET_KEY_MAX],
	    key_budget[FLEET_KEY_MAX];
	uint32_t budget_window_ms;
	uint32_t retry_after_max_ms; /* caps a window read from Redis */
	uint32_t open_for_ms;        /* caps an open period read from Redis */
	uint32_t eject_max_ms;       /* caps an ejection read from Redis; 0: ejection off */
	int syncing;                 /* a budget sync is on its way */
	char key_rate[FLEET_KEY_MAX], key_instances[FLEET_KEY_MAX]; /* SPEC 4.12 */
};

enum op_kind {
	OP_COOLDOWN,
	OP_BREAKER,
	OP_PROBE,
	OP_BUDGET,
	OP_RESYNC_COOL,
	OP_RESYNC_BREAKER,
	OP_REPLACE_COOL, /* a forged value replaced (fleet.secret) */
	OP_REPLACE_BREAKER,
	OP_REPLACE_PROBE,
	OP_EJECT,
	OP_RESYNC_EJECT,
	OP_REPLACE_EJECT,
	OP_RATE, /* a lease of a shared rate limit (fleet_rate.c) */
};

/* The fleet_op each op_kind's errors are counted under. */
extern const enum fleet_op fleet_op_metric[];

struct fleet {
	struct event_base *base;
	struct fleet_counters *counters; /* borrowed: the metrics render them */
	struct fleet_setting set; /* a private copy; set.password and set.secret are secrets */
	struct fleet_profile *profiles;
	size_t nprofiles;
	struct redis *redis; /* its setting borrowed from set and channel */
	int up;              /* both connections work */
	int logged_down;     /* "unavailable" already logged for this outage */
	uint64_t instance;
	char channel[FLEET_KEY_MAX];
	struct rng rng;
	/* The next budget sync: a one-shot timer armed while a guard is busy. */
	struct event *sync_timer;
	uint64_t last_sync_us; /* the last budget sync started; 0 never */
	unsigned gen;          /* bumped by every fleet_configure */
	/* The next lease of the shared rate limits (SPEC 4.12). */
	struct event *rate_timer;
	int rate_shared; /* a profile or route has rate_limit.share: fleet */
};

struct op {
	struct fleet *f;
	enum op_kind kind;
	size_t idx;   /* the profile's index in f->profiles */
	unsigned gen; /* f->gen when sent: a reload renumbers the profiles */
	uint64_t arg; /* signed extends: the window end (wall ms); probes: the lock's ms */
	char endpoint[ENDPOINT_NAME_MAX]; /* ejections: the endpoint */
};

/* Sends one command, timed; arg goes to the reply's handler. 0 or a
 * negative errno (counted). */
int fleet_call_with(struct fleet *f, enum op_kind kind, struct fleet_profile *p, uint64_t arg,
		    const char *fmt, ...);
/* Counts one failed or refused call of op. */
void fleet_count_error(struct fleet *f, enum fleet_op op);
/* Wall-clock ms since the epoch. */
uint64_t fleet_wall_ms(void);

/* ---- the retry budget (fleet_budget.c) ---- */

/* Arms the next budget sync while sharing the budget and a guard is busy. */
void fleet_budget_arm(struct fleet *f);
/* The budget sync timer's callback (f as arg). */
void fleet_budget_timer(evutil_socket_t fd, short what, void *arg);

/* ---- the shared rate limits (fleet_rate.c, SPEC 4.12) ---- */

/* The fleet went up or down: every shared limiter leases or keeps its share. */
void fleet_rate_state(struct fleet *f);
/* Arms the lease timer while up, when a limiter is shared. */
void fleet_rate_arm(struct fleet *f);
/* The lease timer's callback (f as arg). */
void fleet_rate_timer(evutil_socket_t fd, short what, void *arg);
/* The reply to an OP_RATE call of p (o->arg: the limiter's serial). */
void fleet_rate_reply(struct fleet *f, struct fleet_profile *p, uint64_t limiter,
		      const redisReply *r);

#endif

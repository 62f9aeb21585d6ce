/* The outbound rate limiters of one profile (SPEC 4.12): the profile's own
 * and one for each route that sets its own rate_limit, each a GCRA limiter
 * (gcra.h) configured from the policy when it is used, with the quota its
 * upstream announced; and what they made wait or refused, for /status and
 * the metrics. Pure: the caller passes "now" in µs on the monotonic clock. */
#ifndef BRACED_PACE_H
#define BRACED_PACE_H

#include <stddef.h>
#include <stdint.h>

#include "gcra.h"
#include "histogram.h"
#include "policy.h"
#include "ratelimit.h"

/* Limiters one profile keeps: beyond this, the route limiter used least
 * recently is reused (a reload that renamed many routes leaves limiters
 * nobody uses); the configuration allows PACE_LIMITERS_MAX - 1 routes with
 * their own rate per profile. */
#define PACE_LIMITERS_MAX 64
/* Bytes of a route's label kept to name its limiter (longer ones cut). */
#define PACE_SCOPE_MAX 128
/* Most instances a fleet count may name: more is taken as this many. */
#define PACE_INSTANCES_MAX 100000

struct pace_set;

/* A reservation: the slot and the limiter that granted it. */
struct pace_ticket {
	struct gcra_slot slot;
	uint64_t limiter; /* the limiter's serial: a reused limiter is another */
	int queued;       /* a WAIT counted in the limiter's queue until pace_arrived() */
};

/* One limiter as /status shows it. */
struct pace_view {
	const char *scope; /* NULL: the profile's; else the route's label (borrowed) */
	struct gcra_snapshot gcra;
	uint32_t queue;       /* attempts waiting for their slot */
	int shared;           /* share: fleet */
	uint32_t instances;   /* the fleet's instances it counts (shared) */
	uint64_t share_milli; /* its slice of the rate per 1000 s; 0: none holds */
};

/* What a shared limiter tells the fleet at one sync (pace_fleet_wants). */
struct pace_want {
	uint64_t limiter;      /* its serial, for pace_fleet_grant() */
	const char *scope;     /* as in pace_view (borrowed until the set changes) */
	uint64_t demand_milli; /* attempts it asked for since the last sync, per 1000 s */
	uint64_t cap_milli;    /* the configured rate, per 1000 s */
	int idle;              /* not used for a minute */
};

/* A new, empty set; NULL on OOM. */
struct pace_set *pace_new(void);
void pace_free(struct pace_set *s);

/* Reserves a slot for one attempt under rl (its scope's limiter, created
 * and configured on first use, reconfigured when rl changed) at now_us,
 * waiting at most max_wait_us: gcra_reserve(). A WAIT is counted in the
 * limiter's queue until pace_arrived() or pace_release(). Out of memory: GO (the limit fails open).
 * Fills *ret, returns its verdict. */
enum gcra_verdict pace_reserve(struct pace_set *s, const struct rate_limit_policy *rl,
			       uint64_t now_us, uint64_t max_wait_us, struct pace_ticket *ret);
/* The slot of a WAIT came: the attempt starts. Counts the wait. */
void pace_arrived(struct pace_set *s, struct pace_ticket *t);
/* The attempt of ticket t will never start (its app left): out of the
 * queue, and its slot given back when it was the last one granted
 * (gcra_release()). */
void pace_release(struct pace_set *s, struct pace_ticket *t);
/* An answer under rl, to an attempt sent at sent_us, announced quota q at
 * now_us: its limiter learns it (gcra_learn()), unless the quota in force
 * came from an attempt sent later (answers can arrive out of order). A
 * shared limiter learns its part: remaining ÷ the instances it counts. */
void pace_learn(struct pace_set *s, const struct rate_limit_policy *rl,
		const struct ratelimit_quota *q, uint64_t sent_us, uint64_t now_us);

/* ---- share: fleet (SPEC 4.12) ----
 * A shared limiter keeps the slice of the configured rate the fleet gave
 * this instance (never more than the rate), while it holds; without one,
 * or with the fleet away, the configured rate ÷ the instances last
 * counted. */

/* The fleet is up, or away. */
void pace_fleet_up(struct pace_set *s, int up);
/* The demands of the shared limiters since the last call, at now_us; at
 * most max. Returns how many. */
size_t pace_fleet_wants(struct pace_set *s, uint64_t now_us, struct pace_want *ret, size_t max);
/* The fleet gave limiter (serial) share_milli attempts per 1000 s (cut to
 * its configured rate) until until_us, and counted instances. */
void pace_fleet_grant(struct pace_set *s, uint64_t limiter, uint64_t share_milli,
		      uint32_t instances, uint64_t until_us);

/* Fills at most max views of the limiters in use at now_us (borrowed until
 * the set changes); returns how many. */
size_t pace_views(const struct pace_set *s, uint64_t now_us, struct pace_view *ret, size_t max);
/* An attempt the limiter refused (by what) was given up: a request
 * answered 429 or a retry not made. */
void pace_count_refused(struct pace_set *s, enum gcra_by by);
/* Attempts refused by the configured rate and by a learned quota. */
void pace_refused(const struct pace_set *s, uint64_t *ret_configured, uint64_t *ret_learned);
/* The waits of paced attempts (0 for those that went at once). */
const struct histogram *pace_waits(const struct pace_set *s);

#endif

/* The defences of one profile that outlive a configuration reload: retry
 * budget, circuit breaker, rate-limit cool-down, and the counters the admin
 * API and metrics report. Found by profile name; created on first use.
 * Callers use the verbs below only, never the fields: a fleet-wide guard
 * (state shared through Redis, SPEC 4.9) can then sit behind the same verbs. */
#ifndef BRACED_GUARD_H
#define BRACED_GUARD_H

#include <errno.h>
#include <stdint.h>

#include "attempt.h"
#include "breaker.h"
#include "cacheable.h"
#include "endpoints.h"
#include "policy.h"
#include "histogram.h"
#include "pace.h"
#include "problem.h"
#include "retry.h"

struct guard;

/* Schema violations of one route, direction and mode (issue: schemas). */
struct schema_counter {
	char *route;           /* label as written; escaped when rendered */
	const char *direction; /* "request" or "response" */
	const char *mode;      /* "enforce" or "report" */
	uint64_t count;
	struct schema_counter *next;
};

/* The guard named name in *list, created on first use. NULL on OOM.
 * Borrowed: guards live until guards_free. */
struct guard *guard_get(struct guard **list, const char *name);
/* The next guard of a list (walks every profile seen since start), or NULL. */
struct guard *guard_next(const struct guard *g);
/* The profile name (borrowed, lives as long as the guard). */
const char *guard_name(const struct guard *g);
/* Applies a profile's policy (budget and breaker settings). */
void guard_configure(struct guard *g, const struct policy *p);
/* Frees every guard of the list; NULL is a no-op. */
void guards_free(struct guard *list);

/* ---- admission and outcomes ---- */

enum guard_verdict {
	GUARD_ALLOW, /* a normal request */
	GUARD_PROBE, /* a half-open probe: its first outcome decides the breaker */
	GUARD_REJECT /* the breaker is open: answer 503 circuit_open */
};

struct guard_admission {
	enum guard_verdict verdict;
	uint64_t retry_after_ms;    /* GUARD_REJECT: until the breaker may half-open */
	uint64_t cooldown_until_us; /* nothing may be sent before this (SPEC 4.6) */
};

/* Admits a new request at now_us: counts it in flight, deposits in the
 * retry budget (SPEC 4.7), asks the breaker (4.8) and reports the cool-down.
 * Every admitted request, rejected or not, ends with guard_leave(). */
void guard_admit(struct guard *g, uint64_t now_us, struct guard_admission *ret);
/* A request admitted by guard_admit is over; probe when it still holds a
 * half-open probe that reported no outcome (it is given back). */
void guard_leave(struct guard *g, int probe);
/* 1 when the breaker refuses traffic at now_us to a request that is not a
 * half-open probe (probe = 0) or that is one (probe = 1). */
int guard_refuses(struct guard *g, uint64_t now_us, int probe);
/* How long until the breaker may half-open, in ms (0 when not open). */
uint64_t guard_breaker_retry_after_ms(struct guard *g, uint64_t now_us);
/* Counts the outcome of one attempt (braced_upstream_attempts_total).
 * Single attempts never move the breaker: that is the endpoints' business
 * (SPEC 4.11); the breaker judges requests (guard_judge). */
void guard_record(struct guard *g, enum outcome o);
/* 1 when a request answered under code (NULL: a success) and, for
 * upstream_status, the upstream's status is a failure to the breaker
 * (SPEC 4.8): upstream_unavailable, upstream_timeout or a 5xx. */
int guard_is_failure(const enum problem_code *code, int status);
/* Judges one request that reached the upstream, after its retries, as the
 * app saw it: the breaker counts it (failure per guard_is_failure()), and a
 * half-open probe (probe: admitted as one) closes or reopens it. Called
 * once per such request. */
void guard_judge(struct guard *g, uint64_t now_us, int failure, int probe);

/* ---- endpoints (SPEC 4.11) ---- */

/* Replaces the profile's endpoints with names ("ADDR:PORT", borrowed):
 * endpoints_update(). */
void guard_set_endpoints(struct guard *g, const char *const *names, size_t n, uint64_t now_us);
/* The endpoint for one attempt (counted in flight until
 * guard_endpoint_done()): with retry_elsewhere, one not in tried while any
 * is left. 0 when the profile has no endpoint (its name not looked up
 * yet): libcurl then resolves the name itself. */
uint32_t guard_endpoint_pick(struct guard *g, uint64_t now_us, struct rng *rng,
			     const uint32_t *tried, size_t ntried);
/* "ADDR:PORT" of endpoint id, borrowed while it lives; NULL if unknown. */
const char *guard_endpoint_name(const struct guard *g, uint32_t id);
/* The attempt on endpoint id, picked at picked_us (engine_start's), ended
 * (exactly once per pick): feeds the
 * endpoint's estimate and ejection, and tells the fleet of an ejection
 * (GUARD_EV_EJECT). id 0 is a no-op. */
void guard_endpoint_done(struct guard *g, uint32_t id, uint64_t picked_us, uint64_t now_us,
			 uint64_t rtt_us, enum endpoint_result r);
/* What an attempt that ended as end (with status, and a failed response
 * schema) says of its endpoint: connect, reset, timeout, a 5xx, or a
 * schema failure with on_schema_violation are failures; braced's own limits
 * say nothing. */
enum endpoint_result guard_endpoint_result(enum attempt_end end, int status, int schema_failed,
					   int on_schema_violation);
/* Another instance ejected endpoint name until until_us (fleet share
 * `ejections`): applied here too, never to the last one. */
void guard_fleet_eject(struct guard *g, const char *name, uint64_t until_us, uint64_t now_us);
/* The profile's endpoint set, for /status and metrics (borrowed). */
const struct endpoints *guard_endpoints(const struct guard *g);

/* ---- retry budget ---- */

/* One retry token taken from the budget: held until the retry starts, or
 * given back with guard_give_back() when it never does. */
struct guard_token {
	uint64_t taken_us; /* when it was withdrawn */
	int held;
	uint64_t fleet_round; /* the guard's count-taking round it was withdrawn in */
};

/* Takes one retry token if the budget has room, in one step (check and
 * withdraw cannot be split by another request). Returns 1 and fills *ret,
 * or 0 when the budget is empty (*ret untouched). */
int guard_try_withdraw(struct guard *g, uint64_t now_us, struct guard_token *ret);
/* Gives an unused token back (no-op when none is held) and clears it. */
void guard_give_back(struct guard *g, uint64_t now_us, struct guard_token *token);

/* ---- rate-limit cool-down ---- */

/* Monotonic µs before which nothing is sent to the upstream; 0 when none. */
uint64_t guard_cooldown_until(const struct guard *g);
/* Extends the cool-down to until_us on the monotonic clock (never shortens it). */
void guard_cool_down(struct guard *g, uint64_t until_us);

/* ---- outbound rate limits (SPEC 4.12): pace.h through the guard ---- */

/* Reserves a slot for one attempt under rl: pace_reserve(). */
enum gcra_verdict guard_pace(struct guard *g, const struct rate_limit_policy *rl, uint64_t now_us,
			     uint64_t max_wait_us, struct pace_ticket *ret);
/* The slot of a WAIT came: pace_arrived(). */
void guard_pace_arrived(struct guard *g, struct pace_ticket *t);
/* The attempt of t never starts: pace_release(). */
void guard_pace_release(struct guard *g, struct pace_ticket *t);
/* An answer under rl announced quota q: pace_learn(). */
void guard_pace_learn(struct guard *g, const struct rate_limit_policy *rl,
		      const struct ratelimit_quota *q, uint64_t sent_us, uint64_t now_us);
/* An attempt the limiter refused was given up: pace_count_refused(). */
void guard_count_rate_limited(struct guard *g, enum gcra_by by);
/* One answer to a request on a route with a cache, by what the cache did. */
void guard_count_cache(struct guard *g, enum cache_result r);
/* The profile's limiters, for the fleet's leases (SPEC 4.12; borrowed). */
struct pace_set *guard_pace_set(struct guard *g);
/* The profile's limiters, for /status and metrics (borrowed). */
const struct pace_set *guard_paces(const struct guard *g);

/* ---- counters ---- */

/* One retry started (its token is spent). */
void guard_count_retry(struct guard *g);
/* One retry refused for reason (not RETRY_GO nor RETRY_STOP_OUTCOME). */
void guard_count_suppressed(struct guard *g, enum retry_stop reason);
/* One answer: code is its problem code, NULL for a success; seconds from
 * the request read to the answer. */
void guard_count_answer(struct guard *g, const enum problem_code *code, double seconds);
/* Counts one schema violation of route (label) in direction and mode. */
void guard_count_violation(struct guard *g, const char *route, const char *direction,
			   const char *mode);

/* ---- latency defences: hedging and the adaptive limit (SPEC 4.10) ---- */

/* How a hedge ended; every hedge started ends in exactly one. */
enum guard_hedge_result {
	GUARD_HEDGE_WON,       /* its answer was the one the app got */
	GUARD_HEDGE_LOST,      /* it finished, but its answer was not used */
	GUARD_HEDGE_CANCELLED, /* it was still running when the request was decided, and was cut */
	GUARD_HEDGE__COUNT
};

/* Counts one attempt that took attempt_us (its pool wait left out) for the
 * profile's latency estimate, at now_us; attempts cut early count with the
 * time they had run, which bounds their latency from below. */
void guard_observe_latency(struct guard *g, uint64_t now_us, uint64_t attempt_us);
/* The hedge delay of hedge policy h at now_us in ms: its fixed delay, or the
 * profile's measured pNN latency. Returns 0 with *ret_ms, or -EAGAIN when h
 * is pNN and the estimate has too few samples yet, -ENOENT when h is off. */
int guard_hedge_delay(struct guard *g, uint64_t now_us, const struct hedge_policy *h,
		      uint32_t *ret_ms);
/* ---- streamed answers (SPEC 3.1) ---- */

/* How a streamed answer ended; every stream begun ends in exactly one. */
enum guard_stream_end {
	GUARD_STREAM_COMPLETE,       /* the whole body reached the app */
	GUARD_STREAM_RESET_MID_BODY, /* the upstream failed after the head */
	GUARD_STREAM_TIMEOUT,        /* timeouts.stream cut it */
	GUARD_STREAM_CLIENT_GONE,    /* the app left */
	GUARD_STREAM_SHUTDOWN,       /* shutdown's grace ended it */
	GUARD_STREAM__COUNT
};

/* Counts one streamed answer's end: how, the body bytes the app was sent,
 * and the times a slow app paused the upstream. */
void guard_count_stream(struct guard *g, enum guard_stream_end e, uint64_t bytes, uint32_t pauses);

/* Counts one hedge's end. */
void guard_count_hedge(struct guard *g, enum guard_hedge_result r);
/* One attempt answered after rtt_us (pool wait left out): a sample for the
 * adaptive concurrency limit, when the profile has one. */
void guard_limiter_sample(struct guard *g, uint64_t now_us, uint64_t rtt_us);
/* The most attempts the profile may have in flight to its upstream:
 * pool.max_connections, or the adaptive limit below it. */
uint32_t guard_concurrency_limit(const struct guard *g);
/* ---- fleet (SPEC 4.9) ----
 * fleet.c hooks itself onto a guard: the guard tells it of every change it
 * makes itself (never of those the fleet applies), and the fleet feeds the
 * fleet's state back through the guard_fleet_* verbs. All instants here are
 * on the monotonic clock; fleet.c converts at the boundary. */

enum guard_event_kind {
	GUARD_EV_COOLDOWN,   /* the cool-down was extended to until_us */
	GUARD_EV_OPEN,       /* the breaker opened until until_us */
	GUARD_EV_CLOSE,      /* a half-open probe succeeded: closed */
	GUARD_EV_WANT_PROBE, /* half-open and gated: this instance wants the probe lock */
	GUARD_EV_COUNTS,     /* the first request or retry counted since the last take */
	GUARD_EV_EJECT,      /* endpoint `endpoint` was ejected until until_us */
};

struct guard_event {
	enum guard_event_kind kind;
	uint64_t until_us;    /* COOLDOWN, OPEN and EJECT */
	uint64_t open_for_ms; /* OPEN and WANT_PROBE: the policy's open_for */
	const char *endpoint; /* EJECT: "ADDR:PORT", borrowed for the call */
};

struct guard_hooks {
	/* Called synchronously from the verb that made the change: must not
	 * call back into the guard's admission verbs. */
	void (*event)(void *arg, struct guard *g, const struct guard_event *ev);
	void *arg;
};

/* Hooks g onto a fleet (h copied), or unhooks it (h NULL): an unhooked
 * guard decides alone, as without fleet mode. Resets every fleet state. */
void guard_set_hooks(struct guard *g, const struct guard_hooks *h);
/* on: half-open admits a probe only once this instance holds the fleet's
 * probe lock (guard_fleet_probe_lock); off: the local half-open decides. */
void guard_fleet_gate(struct guard *g, int on);
/* The answer to GUARD_EV_WANT_PROBE: won, this instance sends the probes of
 * this half-open period; lost, it asks again at retry_at_us. */
void guard_fleet_probe_lock(struct guard *g, int won, uint64_t retry_at_us);
/* Another instance's breaker opened until until_us (or Redis says so). */
void guard_fleet_open(struct guard *g, uint64_t now_us, uint64_t until_us);
/* Another instance's probe succeeded: close, if half-open or open. */
void guard_fleet_close(struct guard *g, uint64_t now_us);
/* Another instance's cool-down: extends, tells no hook. */
void guard_fleet_cool_down(struct guard *g, uint64_t until_us);
/* Budget sync: the deposits and withdrawals not yet sent to the fleet, now
 * counted as in transit (until guard_fleet_budget or _budget_lost). */
void guard_fleet_take_counts(struct guard *g, uint64_t *ret_requests, uint64_t *ret_retries);
/* The fleet's totals over the window, including what was in transit; the
 * budget decides against them until valid_until_us, then alone again. */
void guard_fleet_budget(struct guard *g, uint64_t requests, uint64_t retries,
			uint64_t valid_until_us);
/* The sync failed: counts in transit are dropped, local budget decides. */
void guard_fleet_budget_lost(struct guard *g);
/* on: the fleet's totals can only take retries away, never add any (the
 * counters in Redis cannot be signed): a retry needs this instance's own
 * budget to allow it as well. Off (the default) after guard_set_hooks. */
void guard_fleet_budget_bounded(struct guard *g, int on);
/* 1 while the fleet's budget totals matter to g: requests in flight (one
 * may retry) or counts not yet taken. An idle guard needs no sync. */
int guard_fleet_busy(const struct guard *g);

/* A hedge delay in effect (guard_hedge_delay()): off, pNN without enough
 * samples yet, or set to ms. */
enum guard_delay_kind { GUARD_DELAY_OFF, GUARD_DELAY_PENDING, GUARD_DELAY_SET };
struct guard_hedge_delay {
	enum guard_delay_kind kind;
	uint32_t ms; /* GUARD_DELAY_SET */
};

/* The delay guard_hedge_delay() told with r and ms. */
static inline struct guard_hedge_delay guard_hedge_delay_of(int r, uint32_t ms)
{
	return (struct guard_hedge_delay){
		.kind = r == 0         ? GUARD_DELAY_SET
			: r == -EAGAIN ? GUARD_DELAY_PENDING
				       : GUARD_DELAY_OFF,
		.ms = r == 0 ? ms : 0,
	};
}

/* What /status and /metrics show of a guard at one instant. */
struct guard_snapshot {
	const char *name; /* borrowed from the guard */
	unsigned inflight;
	enum breaker_state breaker;
	uint64_t breaker_retry_after_ms;
	uint32_t budget_requests, budget_retries; /* in the budget window */
	uint64_t cooldown_ms;                     /* left of the cool-down */
	uint64_t requests_ok;
	uint64_t requests[PROBLEM__COUNT]; /* answered with each error code */
	uint64_t attempts[OUTCOME__COUNT];
	uint64_t retries;
	uint64_t suppressed[RETRY_STOP__COUNT];
	uint64_t hedges[GUARD_HEDGE__COUNT];
	uint64_t streams[GUARD_STREAM__COUNT];
	uint64_t stream_bytes;                /* body bytes of streamed answers sent to apps */
	uint64_t stream_pauses;               /* upstream transfers paused for a slow app */
	uint32_t concurrency_limit;           /* guard_concurrency_limit() */
	int adaptive;                         /* the limit is adaptive */
	uint64_t min_rtt_us;                  /* adaptive: 0 until measured */
	struct guard_hedge_delay hedge_delay; /* the profile's, in effect */
	const struct histogram *duration;     /* borrowed */
	const struct schema_counter *schema_counters;           /* borrowed */
	uint32_t endpoints_active, endpoints_ejected;           /* SPEC 4.11 */
	uint64_t endpoint_ejections;                            /* made by this instance */
	uint64_t rate_limited_configured, rate_limited_learned; /* SPEC 4.12 */
	const struct histogram *rate_wait;                      /* borrowed */
	uint64_t cache[CACHE_R__COUNT];                         /* SPEC 4.13 */
	int fleet;                                              /* hooked onto a fleet */
	int fleet_gate, fleet_probe_lock;                       /* probes fleet-wide; lock held */
	int fleet_budget;                                       /* fleet totals decide the budget */
	uint64_t fleet_requests, fleet_retries;                 /* the fleet's, last synced */
};

/* Fills *ret with g's state at now_us; the borrowed parts stay valid until
 * the guard changes next. */
void guard_snapshot(struct guard *g, uint64_t now_us, struct guard_snapshot *ret);

#endif

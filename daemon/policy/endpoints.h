/* The endpoints of one profile (SPEC 4.11): which addresses exist, which one
 * an attempt goes to, and passive ejection of the ones that keep failing.
 * The choice follows Finagle's and Linkerd's peak-EWMA with power-of-two
 * choices (tower's balance::p2c over load::PeakEwma is the readable
 * reference). Pure: "now" (µs, monotonic) and the random source are passed in. */
#ifndef BRACED_ENDPOINTS_H
#define BRACED_ENDPOINTS_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define ENDPOINTS_MAX 64              /* endpoints in one set; more addresses are ignored */
#define ENDPOINT_NAME_MAX 48          /* "ADDR:PORT" text, IPv6 as "[ADDR]:PORT", NUL included */
#define ENDPOINT_DECAY_US 10000000ULL /* peak-EWMA time constant tau: 10 s */
/* A failed attempt counts as a sample of at least this: a fast failure
 * never looks cheap. */
#define ENDPOINT_FAILURE_RTT_US 1000000ULL
/* The estimate of an endpoint never measured: the fastest there is, so it
 * is tried at once (Linkerd starts at 30 ms instead, which leaves a new
 * endpoint idle for tens of seconds beside 1 ms ones); the age of its
 * attempts in flight keeps a slow newcomer from drawing more than a few. */
#define ENDPOINT_DEFAULT_RTT_US 0ULL
/* A longer sample is taken as this one, so that costs stay in range. */
#define ENDPOINT_RTT_MAX_US 3600000000ULL

enum endpoint_balance { ENDPOINT_PEAK_EWMA, ENDPOINT_ROUND_ROBIN };

/* endpoints.balance and endpoints.eject of a profile. */
struct endpoint_policy {
	enum endpoint_balance balance;
	uint32_t consecutive_failures; /* >= 1 (0 is taken as 1) */
	uint64_t base_us, max_us;      /* ejection: base * 2^(k-1), at most max; base 0: never */
	uint32_t max_percent;          /* 0..100 */
};

/* How an attempt ended, for the endpoint (SPEC 4.11). */
enum endpoint_result {
	ENDPOINT_SUCCESS, /* an answer that is not a failure below */
	ENDPOINT_FAILURE, /* connect, reset, timeout, a 5xx, schema with on_schema_violation */
	ENDPOINT_NEUTRAL, /* never sent, or braced's own failure: no sample, no count */
	/* cut by braced or the app after it was sent, before its head (a
	 * hedge that lost, an app that left): its time so far is a lower
	 * bound of its response time, a sample only when above the estimate;
	 * no count */
	ENDPOINT_CUT,
};

struct endpoints; /* opaque */

/* A new empty set with the SPEC's default policy (peak_ewma; 5 failures,
 * 10 s, 5 min, 50%). Returns NULL on OOM; the caller owns it. */
struct endpoints *endpoints_new(void);
/* Frees s, its endpoints and the departed ones still in flight (their ids
 * become unknown). NULL is a no-op. */
void endpoints_free(struct endpoints *s);
/* Sets the policy (copied), keeping every endpoint's state: an ejection under
 * way runs to its end even if the new policy would not have made it. */
void endpoints_configure(struct endpoints *s, const struct endpoint_policy *p);

/* Replaces the set with names[0..n) ("ADDR:PORT" text, as above; borrowed,
 * copied). Names are compared as text: the caller writes each address one
 * way (inet_ntop). An endpoint kept keeps its id and state and its place in
 * turn; a new one starts unmeasured, its estimate ENDPOINT_DEFAULT_RTT_US as
 * of now_us; one that left the set stops being picked but lives (its id
 * stays valid) until its attempts in flight end, and one that comes back
 * while still in flight takes its id and state back. Set order is the order
 * of names. Duplicates count once; beyond ENDPOINTS_MAX the rest are
 * ignored; NULL, empty names and names longer than ENDPOINT_NAME_MAX-1 are
 * ignored. On OOM the set is left as it was. Returns how many endpoints the
 * set now has.
 *
 * Departed endpoints still in flight wait in a list without a fixed cap:
 * each holds at least one attempt in flight and is freed by its last
 * endpoints_done(), so the list is never longer than the attempts in flight,
 * which the caller bounds (server.max_inflight, hedge.max). Refusing an
 * update instead would keep dialling addresses DNS no longer gives. */
size_t endpoints_update(struct endpoints *s, const char *const *names, size_t n, uint64_t now_us);
/* For tests: the next id to hand out (they wrap past 2^32 - 1). */
void endpoints_set_next_id(struct endpoints *s, uint32_t next);
/* Endpoints in the set (not the departed). */
size_t endpoints_count(const struct endpoints *s);
/* Departed endpoints still in flight (at most the attempts in flight). */
size_t endpoints_departed(const struct endpoints *s);
/* The id of the endpoint named `name` in the set, 0 when it is not in it
 * (departed ones are not found). */
uint32_t endpoints_find(const struct endpoints *s, const char *name);

/* Picks the endpoint for one attempt at now_us and counts it in flight. Ids in
 * avoid[0..navoid) (endpoints this request already tried; borrowed, unknown
 * ids are fine) are skipped while any other eligible endpoint is left;
 * ejected endpoints are skipped (if every endpoint is ejected — should not
 * happen — the one whose ejection ends first). peak_ewma: two distinct
 * endpoints drawn at random (rng_below) among the eligible, the lower cost
 * wins (a tie: the first drawn), cost = (estimate_us + 1) * (in flight + 1)
 * where the estimate is decayed to now first, and is the mean age of the
 * endpoint's attempts in flight when that is longer; round_robin: the next eligible
 * in turn. Returns the endpoint's id (never 0), or 0 when the set is empty.
 * Every id returned must be ended by exactly one endpoints_done(). */
uint32_t endpoints_pick(struct endpoints *s, uint64_t now_us, struct rng *rng,
			const uint32_t *avoid, size_t navoid);

/* Attempt on endpoint id, picked at picked_us (the now_us its
 * endpoints_pick() was given), ended at now_us after rtt_us (its pool wait
 * left out). SUCCESS and FAILURE feed the peak-EWMA (FAILURE as max(rtt_us,
 * ENDPOINT_FAILURE_RTT_US)); "the estimate" is always the one decayed to now:
 * a sample above it replaces it at once (the peak); below, it is blended in
 * with weight 1 - exp(-elapsed/tau), elapsed being the time since the last
 * update; while no samples come it decays toward zero with time constant tau.
 * The first sample of an endpoint replaces the default estimate whatever its
 * value (a measurement beats a guess).
 *
 * FAILURE counts a failure in a row; consecutive_failures of them eject the
 * endpoint for base * 2^(k-1) (at most max), k = its ejections in a row,
 * unless that would put more than max_percent of the set's endpoints in
 * ejection (floor(max_percent * n / 100)) or eject the last non-ejected one;
 * then the count stays, and the next failure tries again. Failures of
 * attempts that end while the endpoint is ejected (sent before) feed the
 * estimate but are not counted: the ejection already answers them, and the
 * endpoint comes back with no failures in a row. A departed endpoint is
 * never ejected. SUCCESS sets failures in a row and k to 0 (an ejection under
 * way still runs to its end). NEUTRAL only leaves the in-flight count.
 *
 * Returns 1 when this call ejected the endpoint (*ret_until_us = when it
 * ends; ret_until_us may be NULL), else 0 (*ret_until_us untouched). An
 * unknown id (0, or already freed) is a no-op returning 0; a departed
 * endpoint's last done frees it. */
int endpoints_done(struct endpoints *s, uint32_t id, uint64_t picked_us, uint64_t now_us,
		   uint64_t rtt_us, enum endpoint_result r, uint64_t *ret_until_us);
/* "ADDR:PORT" of id, borrowed while the endpoint lives (in the set or in
 * flight); NULL if unknown. */
const char *endpoints_name(const struct endpoints *s, uint32_t id);
/* Another instance of the fleet ejected endpoint `name` until until_us:
 * applied when it is in the set (extends, never shortens), within the
 * same limits as this instance's own ejections: never more than
 * max_percent of the set, never the last non-ejected endpoint. k, the
 * failures in a row and the ejection counters are left alone: the instance
 * that ejected counts it, so the fleet's metrics add up to its ejections.
 * Returns 1 when applied, 0 when not (unknown name, until_us not after
 * now_us nor after the ejection under way, or a limit). */
int endpoints_eject_until(struct endpoints *s, const char *name, uint64_t until_us,
			  uint64_t now_us);

enum endpoint_state { ENDPOINT_ACTIVE, ENDPOINT_EJECTED };

struct endpoint_snapshot {
	char name[ENDPOINT_NAME_MAX];
	enum endpoint_state state;
	uint64_t ejected_until_us; /* 0 when active */
	uint64_t cost_us;          /* the cost pick would compare now (decayed estimate) */
	uint64_t estimate_us;
	uint32_t inflight;
	uint32_t failures_in_row;
	uint32_t ejections_in_row; /* k */
	uint64_t ejections;        /* since the endpoint joined the set */
};

/* Fills out[0..max) with the endpoints in the set at now_us (in set order);
 * returns how many. */
size_t endpoints_snapshot(const struct endpoints *s, uint64_t now_us, struct endpoint_snapshot *out,
			  size_t max);
/* Totals at now_us for metrics: endpoints active and ejected, and ejections
 * ever made in this set (by this instance, departed endpoints' included). */
void endpoints_totals(const struct endpoints *s, uint64_t now_us, uint32_t *ret_active,
		      uint32_t *ret_ejected, uint64_t *ret_ejections);

#endif

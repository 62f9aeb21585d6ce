/* The defences of one profile that outlive a configuration reload: retry
 * budget, circuit breaker, rate-limit cool-down, and the counters the admin
 * API and metrics report. Found by profile name; created on first use. */
#ifndef BRACED_GUARD_H
#define BRACED_GUARD_H

#include <stdint.h>

#include "breaker.h"
#include "budget.h"
#include "config.h"
#include "metrics.h"
#include "problem.h"
#include "retry.h"

/* Schema violations of one route, direction and mode (issue: schemas). */
struct schema_counter {
	char *route;           /* label as written; escaped when rendered */
	const char *direction; /* "request" or "response" */
	const char *mode;      /* "enforce" or "report" */
	uint64_t count;
	struct schema_counter *next;
};

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

/* The guard named name in *list, created on first use. NULL on OOM.
 * Borrowed: guards live until guards_free. */
struct guard *guard_get(struct guard **list, const char *name);
/* Applies a profile's policy (budget and breaker settings). */
void guard_configure(struct guard *g, const struct policy *p);
/* Extends the cool-down to until_us on the monotonic clock (never shortens it). */
void guard_cool_down(struct guard *g, uint64_t until_us);
/* Counts one schema violation of route (label) in direction and mode. */
void guard_count_violation(struct guard *g, const char *route, const char *direction,
			   const char *mode);
/* Frees every guard of the list; NULL is a no-op. */
void guards_free(struct guard *list);

#endif

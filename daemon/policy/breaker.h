/* Circuit breaker per profile (SPEC 4.8): it judges requests after their
 * retries, never single attempts. Closed → open when the window holds at
 * least min_requests requests and the failure ratio reaches failure_ratio;
 * open answers at once; after open_for, half-open lets up to
 * half_open_probes requests through, each with its retries, whose answer
 * closes or reopens.
 * Pure: the caller passes "now" in µs on the monotonic clock. */
#ifndef BRACED_BREAKER_H
#define BRACED_BREAKER_H

#include <stdint.h>

#include "window.h"

#define BREAKER_SLOTS 10
_Static_assert(BREAKER_SLOTS <= WINDOW_SLOTS_MAX, "the breaker's slots fit its window ring");

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

enum breaker_admit {
	BREAKER_ALLOW,       /* a normal request */
	BREAKER_ALLOW_PROBE, /* a half-open probe: report its result */
	BREAKER_REJECT,      /* answer 503 circuit_open */
};

struct breaker_policy {
	int enabled;
	uint32_t window_ms;
	uint32_t min_requests;
	double failure_ratio;
	uint32_t open_for_ms;
	uint32_t half_open_probes;
};

struct breaker {
	struct breaker_policy policy;
	enum breaker_state state;
	uint64_t open_until_us;
	uint32_t probes;      /* probes in flight while half-open */
	struct window window; /* which slot of time each count below holds */
	uint32_t requests[BREAKER_SLOTS];
	uint32_t failures[BREAKER_SLOTS];
};

/* Sets the policy, keeping the state (a reload changes the policy only). */
void breaker_configure(struct breaker *b, const struct breaker_policy *policy);
/* Admission of a new request at now. */
enum breaker_admit breaker_admit(struct breaker *b, uint64_t now_us);
/* The state at now (open turns half-open once open_for has passed). */
enum breaker_state breaker_state(struct breaker *b, uint64_t now_us);
/* Records one request as the app saw it: failure (guard_is_failure());
 * probe when the request was admitted as a probe. */
void breaker_record(struct breaker *b, uint64_t now_us, int failure, int probe);
/* A probe request ended without any attempt result (cancelled). */
void breaker_probe_abandoned(struct breaker *b);
/* Opens the breaker until until_us whatever its state (another instance of
 * the fleet opened it); never shortens an open period. */
void breaker_force_open(struct breaker *b, uint64_t now_us, uint64_t until_us);
/* Closes the breaker whatever its state (a fleet probe succeeded). */
void breaker_force_close(struct breaker *b);
/* Milliseconds until the breaker may half-open, rounded up (at least 1 while
 * open), 0 when not open. */
uint64_t breaker_retry_after_ms(struct breaker *b, uint64_t now_us);

#endif

/* Retry policy, pure: the outcome of an attempt (SPEC 4.2), the decision to
 * retry in the order of SPEC 4.3, backoff waits with jitter (4.4) and
 * Retry-After parsing (4.5). Time and randomness come in as arguments. */
#ifndef BRACED_RETRY_H
#define BRACED_RETRY_H

#include <stdint.h>
#include <time.h>

#include "method.h"
#include "problem.h"
#include "rng.h"

/* The shortest attempt worth starting: a retry whose wait leaves less than
 * this of the budget is not started (reason "deadline"). */
#define RETRY_MIN_ATTEMPT_MS 50

enum jitter { JITTER_FULL, JITTER_EQUAL, JITTER_DECORRELATED, JITTER_NONE };
enum unsafe_retry { UNSAFE_WITH_KEY, UNSAFE_NEVER, UNSAFE_ALWAYS };

/* Transport failure kinds a retry may cover. */
enum transport_kind { TRANSPORT_CONNECT = 1, TRANSPORT_RESET = 2, TRANSPORT_TIMEOUT = 4 };

struct retry_policy {
	uint32_t attempts;
	uint8_t statuses[600]; /* statuses[code] = 1 when retriable */
	uint32_t transport;    /* enum transport_kind bits */
	uint32_t methods;      /* METHOD_BIT set retried freely */
	enum unsafe_retry unsafe;
	uint32_t backoff_base_ms, backoff_max_ms;
	enum jitter jitter;
	int retry_after_honor;
	uint32_t retry_after_max_ms;
	double budget_ratio;
	uint32_t budget_min_per_second;
	uint32_t budget_window_ms;
	int on_schema_violation;
};

enum outcome {
	OUTCOME_OK,           /* status below 400 and not in retry.statuses */
	OUTCOME_STATUS,       /* status in retry.statuses */
	OUTCOME_CLIENT_ERROR, /* other 4xx */
	OUTCOME_SERVER_ERROR, /* other 5xx */
	OUTCOME_CONNECT,      /* refused, unreachable, DNS, TLS handshake */
	OUTCOME_RESET,        /* closed or reset before a complete response */
	OUTCOME_TIMEOUT,      /* any per-attempt timeout */
	OUTCOME_SCHEMA,       /* failed the response schema */
	OUTCOME_TOO_LARGE,    /* answer over limits.max_response_body (braced's limit) */
	OUTCOME_INTERNAL,     /* braced could not run the attempt */
	OUTCOME__COUNT
};

/* Why a failed attempt was not retried (metrics: retries_suppressed_total). */
enum retry_stop {
	RETRY_GO,           /* retry after wait_ms */
	RETRY_STOP_OUTCOME, /* the outcome is not retriable: not counted as suppressed */
	RETRY_STOP_ATTEMPTS,
	RETRY_STOP_METHOD,
	RETRY_STOP_BREAKER,
	RETRY_STOP_BUDGET,
	RETRY_STOP_RETRY_AFTER,
	RETRY_STOP_DEADLINE,
	/* the request body streamed upstream and cannot be sent again: only a
	 * connect failure with nothing of it sent is retried (SPEC 3.1) */
	RETRY_STOP_BODY,
	/* the rate limit had no slot within the queue and the budget (SPEC 4.12) */
	RETRY_STOP_RATE_LIMIT,
	RETRY_STOP__COUNT
};

const char *retry_outcome_name(enum outcome o);
/* "attempts", "method", "breaker", "budget", "retry_after", "deadline",
 * "body". */
const char *retry_stop_name(enum retry_stop s);

/* Outcome of an attempt that got an HTTP status. */
enum outcome retry_classify_status(const struct retry_policy *p, int status);

/* 1 when the outcome counts as a breaker failure (SPEC 4.8). */
int retry_is_failure(enum outcome o, int status);

/* What the request's idempotency key proves (SPEC 3). */
enum idempotency_key {
	IDEM_KEY_NONE,    /* no key */
	IDEM_KEY_MINTED,  /* braced made it up: the upstream may ignore it */
	IDEM_KEY_HONORED, /* the app sent it, or the profile says idempotency.honored */
};

struct retry_input {
	enum outcome outcome;
	int status;        /* HTTP status of the attempt, 0 if none */
	uint32_t attempts; /* attempts made so far (the failed one included) */
	uint32_t max_attempts;
	int method; /* enum http_method */
	enum idempotency_key idempotency;
	/* The request body streamed upstream (not held for a resend), and
	 * body_sent bytes of it left braced in the failed attempt. */
	int body_streamed;
	uint64_t body_sent;
	int breaker_open;               /* the breaker refuses traffic now */
	int budget_has_room;            /* the retry budget allows one more retry */
	struct retry_after retry_after; /* Retry-After of this answer */
	uint32_t remaining_ms;          /* budget left */
	uint32_t prev_wait_ms;          /* previous backoff (decorrelated jitter) */
};

/* Decides whether to retry. On RETRY_GO, *ret_wait_ms is the wait before
 * the next attempt (backoff, at least Retry-After when honoured). Every
 * refusal is returned with its reason, checked in SPEC 4.3's order. */
enum retry_stop retry_decide(const struct retry_policy *p, const struct retry_input *in,
			     struct rng *rng, uint32_t *ret_wait_ms);

/* An exponential backoff: base_ms << (n - 1) after n attempts, at most
 * max_ms, jittered. No wait is shorter than min_ms: full jitter draws from
 * [min_ms, that], the other modes are raised to it. */
struct retry_backoff {
	uint32_t base_ms, max_ms, min_ms;
	enum jitter jitter;
};

/* The one backoff of the daemon (retries, the fleet's reconnects): the wait
 * before attempt n+1 (n >= 1 attempts made, SPEC 4.4), drawn with
 * rng_below. prev_ms is the previous wait (0 before the first retry), used
 * by decorrelated jitter. */
uint32_t retry_backoff_wait(const struct retry_backoff *b, uint32_t n, uint32_t prev_ms,
			    struct rng *rng);

/* retry_backoff_wait with the policy's backoff and no floor. */
uint32_t retry_backoff(const struct retry_policy *p, uint32_t n, uint32_t prev_ms, struct rng *rng);

/* Parses a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime form) relative to now (seconds since the epoch).
 * Returns 0 and *ret_ms (0 for a date in the past; anything beyond 366 days
 * reads as 366 days), or -EINVAL. */
int retry_after_parse(const char *value, time_t now, int64_t *ret_ms);

#endif

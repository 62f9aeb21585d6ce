/* The resilience policy of a profile or a route: every key of `defaults`,
 * as plain data (copying the struct copies the policy). The configuration
 * fills it; the guard, the engine and the request shell read it. */
#ifndef BRACED_POLICY_H
#define BRACED_POLICY_H

#include <stdint.h>

#include "breaker.h"
#include "endpoints.h"
#include "retry.h"
#include "trace.h"

/* The longest header name a policy names (idempotency, correlation). */
#define POLICY_HEADER_NAME_MAX 64

enum upstream_errors { UPSTREAM_ERRORS_ENVELOPE, UPSTREAM_ERRORS_PASSTHROUGH };
/* schema_formats: whether "format" and "content*" are checked. */
enum schema_formats { SCHEMA_FORMATS_ASSERT, SCHEMA_FORMATS_ANNOTATE };

struct timeouts {
	uint32_t connect_ms, read_ms, write_ms, pool_ms, attempt_ms, total_ms;
	uint32_t stream_ms; /* the whole of a streamed answer's body; 0: none */
};

/* Most hedges one request may start (hedge.max). */
#define POLICY_MAX_HEDGES 3

/* hedge (SPEC 4.10): after delay without an answer, another attempt in
 * parallel, up to max of them. delay_ms and quantile are both 0 when off. */
struct hedge_policy {
	uint32_t delay_ms; /* a fixed delay; 0 with quantile 0: off */
	uint32_t quantile; /* pNN: the profile's NN% latency quantile (1-99); 0: delay_ms */
	uint32_t max;      /* extra attempts, 1..POLICY_MAX_HEDGES */
};

/* concurrency (SPEC 4.10): the adaptive limit of attempts in flight. */
struct concurrency_policy {
	int adaptive;
	uint32_t min, max;
};

/* endpoints (SPEC 4.11): how a profile's attempts spread over its endpoints.
 * The profile's own: a route cannot set it. */
struct endpoints_settings {
	enum endpoint_balance balance;
	uint32_t consecutive_failures;
	uint32_t eject_base_ms, eject_max_ms;
	uint32_t max_percent;
	int retry_elsewhere;       /* retries and hedges go to endpoints not yet tried */
	uint32_t resolve_every_ms; /* the upstream's name is looked up again this often */
};

/* rate_limit.share (SPEC 4.12): one instance's rate, or the fleet's. */
enum rate_share { RATE_SHARE_LOCAL, RATE_SHARE_FLEET };
/* ratelimit_headers: follow the quota an answer announces, or not. */
enum ratelimit_headers { RATELIMIT_HEADERS_PACE, RATELIMIT_HEADERS_IGNORE };

/* rate_limit (SPEC 4.12): count attempts per per_us, burst at once; an
 * attempt waits at most queue_ms for its slot. count 0: no configured rate
 * (a learned quota may still pace). */
struct rate_limit_policy {
	uint32_t count;
	uint64_t per_us;
	uint32_t burst;
	uint32_t queue_ms;
	enum rate_share share;
	/* The limiter: NULL for the profile's; a route that sets its own
	 * rate_limit has its own, named by its label (borrowed from the
	 * configuration, copied by the guard). */
	const char *scope;
	/* The configuration's load number: a limiter is configured by the
	 * newest configuration only (requests of an older one still run). */
	uint64_t generation;
};

/* Most request headers a cache key may name (cache.key_headers). */
#define POLICY_CACHE_KEY_HEADERS 8

/* cache (SPEC 4.13): whether GET and HEAD answers are kept and served from
 * the store, and for how long beyond their freshness. */
struct cache_policy {
	int enabled;
	uint32_t ttl_ms;                    /* freshness without max-age or Expires; 0: none */
	uint32_t stale_if_error_ms;         /* a stale entry may stand in for a failure */
	uint32_t stale_while_revalidate_ms; /* a stale entry answers while one revalidates */
	int coalesce;                       /* identical requests wait for one exchange */
	/* Request headers whose values join the key (and let Authorization
	 * or Cookie use the cache), as written; compared without case. */
	char key_headers[POLICY_CACHE_KEY_HEADERS][POLICY_HEADER_NAME_MAX + 1];
	unsigned nkey_headers;
};

/* Every key of `defaults`, overridable per profile and per route. Plain data:
 * copying the struct copies the policy. */
struct policy {
	struct timeouts timeouts;
	struct retry_policy retry;
	struct breaker_policy breaker;
	int rate_limit_cooldown;
	char idempotency_header[POLICY_HEADER_NAME_MAX + 1];
	uint32_t idempotency_methods;
	int idempotency_honored; /* the upstream de-duplicates by the key */
	char correlation_header[POLICY_HEADER_NAME_MAX + 1];
	uint32_t pool_max_connections;
	uint32_t pool_max_idle;
	enum upstream_errors upstream_errors;
	enum trace_mode trace_mode; /* tracing.traceparent */
	enum schema_formats schema_formats;
	struct hedge_policy hedge;
	struct concurrency_policy concurrency;
	struct endpoints_settings endpoints;
	struct rate_limit_policy rate_limit;
	enum ratelimit_headers ratelimit_headers;
	struct cache_policy cache;
};

#endif

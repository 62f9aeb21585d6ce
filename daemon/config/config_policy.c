/* The policy keys of the configuration (SPEC 2), valid in defaults, a
 * profile and a route: one key table, the built-in defaults it starts
 * from, and the checks across keys once a policy is merged. */
#include "config_internal.h"
#include "gcra.h"
#include "names.h"
#include "units.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void config_builtin_policy(struct policy *p)
{
	static const int statuses[] = { 408, 425, 429, 500, 502, 503, 504 };

	memset(p, 0, sizeof(*p));
	/* clang-format off */
	p->timeouts = (struct timeouts){ .connect_ms = 2000, .read_ms = 4000, .write_ms = 2000,
					 .pool_ms = 2000, .attempt_ms = 0, .total_ms = 10000 };
	/* clang-format on */
	p->retry.attempts = 4;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		p->retry.statuses[statuses[i]] = 1;
	p->retry.transport = TRANSPORT_CONNECT | TRANSPORT_RESET | TRANSPORT_TIMEOUT;
	p->retry.methods = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD) |
			   METHOD_BIT(METHOD_OPTIONS) | METHOD_BIT(METHOD_PUT) |
			   METHOD_BIT(METHOD_DELETE);
	p->retry.unsafe = UNSAFE_WITH_KEY;
	p->retry.backoff_base_ms = 200;
	p->retry.backoff_max_ms = 3000;
	p->retry.jitter = JITTER_FULL;
	p->retry.retry_after_honor = 1;
	p->retry.retry_after_max_ms = 30000;
	p->retry.budget_ratio = 0.2;
	p->retry.budget_min_per_second = 10;
	p->retry.budget_window_ms = 10000;
	p->retry.on_schema_violation = 0;
	/* clang-format off */
	p->breaker = (struct breaker_policy){ .enabled = 1, .window_ms = 10000, .min_requests = 20,
					      .failure_ratio = 0.5, .open_for_ms = 5000,
					      .half_open_probes = 1 };
	/* clang-format on */
	p->rate_limit_cooldown = 1;
	strcpy(p->idempotency_header, "Idempotency-Key");
	p->idempotency_methods = METHOD_BIT(METHOD_POST) | METHOD_BIT(METHOD_PATCH);
	strcpy(p->correlation_header, "X-Correlation-ID");
	p->pool_max_connections = 100;
	p->pool_max_idle = 20;
	/* Apps parse their API's own errors: relayed as sent (SPEC 5). */
	p->upstream_errors = UPSTREAM_ERRORS_PASSTHROUGH;
	p->trace_mode = TRACE_PROPAGATE;
	p->schema_formats = SCHEMA_FORMATS_ASSERT;
	p->hedge = (struct hedge_policy){ .delay_ms = 0, .quantile = 0, .max = 1 };
	p->concurrency = (struct concurrency_policy){ .adaptive = 0, .min = 4, .max = 512 };
	p->endpoints = (struct endpoints_settings){ .balance = ENDPOINT_PEAK_EWMA,
						    .consecutive_failures = 5,
						    .eject_base_ms = 10000,
						    .eject_max_ms = 300000,
						    .max_percent = 50,
						    .retry_elsewhere = 1,
						    .resolve_every_ms = 30000 };
	p->rate_limit = (struct rate_limit_policy){ .count = 0,
						    .per_us = 1000000,
						    .burst = 1,
						    .queue_ms = 1000,
						    .share = RATE_SHARE_LOCAL };
	p->ratelimit_headers = RATELIMIT_HEADERS_PACE;
	p->cache = (struct cache_policy){ .enabled = 0, .coalesce = 1 };
}

/* cache.key_headers: a list of header names, at most
 * POLICY_CACHE_KEY_HEADERS, none twice (without case). */
static void get_key_headers(struct loader *L, const struct ynode *n, void *dst)
{
	struct cache_policy *c = dst;

	if (expect_kind(L, n, YNODE_SEQ, "cache.key_headers") < 0)
		return;
	if (n->n > POLICY_CACHE_KEY_HEADERS) {
		err_at(L, n, "cache.key_headers names more than %d headers",
		       POLICY_CACHE_KEY_HEADERS);
		return;
	}
	c->nkey_headers = 0;
	for (size_t i = 0; i < n->n; i++) {
		char *name = c->key_headers[c->nkey_headers];

		if (get_header_name(L, n->items[i], "cache.key_headers", name,
				    POLICY_HEADER_NAME_MAX + 1) < 0)
			continue;
		for (unsigned j = 0; j < c->nkey_headers; j++)
			if (!strcasecmp(c->key_headers[j], name)) {
				err_at(L, n->items[i], "cache.key_headers names '%s' twice", name);
				name = NULL;
				break;
			}
		if (name)
			c->nkey_headers++;
	}
}

/* rate_limit.rate: "0" (off) or COUNT/PERIOD (units_parse_rate()), with
 * attempts at least 1 ns apart. */
static void get_rate(struct loader *L, const struct ynode *n, void *dst)
{
	struct rate_limit_policy *rl = dst;
	uint64_t count, per_ms;
	int r;

	if (expect_kind(L, n, YNODE_SCALAR, "rate_limit.rate") < 0)
		return;
	r = units_parse_rate(n->value, &count, &per_ms);
	if (r == -ERANGE || (r == 0 && count > per_ms * 1000000)) {
		err_at(L, n, "rate_limit.rate '%s' is more than one attempt per nanosecond",
		       n->value);
		return;
	}
	if (r < 0 || per_ms * 1000 > GCRA_PERIOD_MAX_US) {
		err_at(L, n,
		       "rate_limit.rate '%s' is not a rate (write e.g. 100/s, 6000/m, 50000/h, "
		       "100/10s, or 0 for none; the period at most 24h)",
		       n->value);
		return;
	}
	rl->count = (uint32_t)count;
	rl->per_us = count ? per_ms * 1000 : 1000000;
}

/* hedge.delay: 0 (off), a duration, or pNN (1 <= NN <= 99). */
static void get_hedge_delay(struct loader *L, const struct ynode *n, void *dst)
{
	struct hedge_policy *h = dst;
	uint32_t ms;

	if (expect_kind(L, n, YNODE_SCALAR, "hedge.delay") < 0)
		return;
	if (n->value[0] == 'p') {
		const char *d = n->value + 1;
		unsigned q = 0;
		size_t len = strlen(d);

		if (len < 1 || len > 2 || strspn(d, "0123456789") != len ||
		    (q = (unsigned)atoi(d)) < 1 || q > 99) {
			err_at(L, n, "hedge.delay '%s' must be a duration or p1 to p99", n->value);
			return;
		}
		h->quantile = q;
		h->delay_ms = 0;
		return;
	}
	if (get_duration(L, n, "hedge.delay", &ms) < 0)
		return;
	h->delay_ms = ms;
	h->quantile = 0;
}

#define T(f) offsetof(struct timeouts, f)
#define R(f) offsetof(struct retry_policy, f)
#define B(f) offsetof(struct breaker_policy, f)
#define P(f) offsetof(struct policy, f)
#define H(f) offsetof(struct hedge_policy, f)
#define C(f) offsetof(struct concurrency_policy, f)
#define E(f) offsetof(struct endpoints_settings, f)
#define RL(f) offsetof(struct rate_limit_policy, f)
#define CP(f) offsetof(struct cache_policy, f)
/* Every timeout but attempt (0: none) must be over 0. */
/* clang-format off */
#define TIMEOUT(n, f, fl) { .name = n, .kind = KEY_DURATION, .offset = T(f), .noun = "a timeout", .flags = fl }
/* clang-format on */

static const struct key timeout_keys[] = {
	TIMEOUT("connect", connect_ms, KEY_POSITIVE),
	TIMEOUT("read", read_ms, KEY_POSITIVE),
	TIMEOUT("write", write_ms, KEY_POSITIVE),
	TIMEOUT("pool", pool_ms, KEY_POSITIVE),
	TIMEOUT("attempt", attempt_ms, 0),
	TIMEOUT("total", total_ms, KEY_POSITIVE),
	TIMEOUT("stream", stream_ms, 0),
	K_END,
};

static const struct key backoff_keys[] = {
	K_DURATION("base", R(backoff_base_ms), 0, 0),
	K_DURATION("max", R(backoff_max_ms), 0, 0),
	K_ENUM("jitter", R(jitter), jitter_names),
	K_END,
};

static const struct key retry_after_keys[] = {
	K_BOOL("honor", R(retry_after_honor)),
	K_DURATION("max", R(retry_after_max_ms), 0, 0),
	K_END,
};

static const struct key budget_keys[] = {
	K_RATIO("ratio", R(budget_ratio), 0, 10),
	K_UINT("min_per_second", R(budget_min_per_second), 0, 1000000),
	K_DURATION("window", R(budget_window_ms), 1000, 0),
	K_END,
};

static const struct key retry_keys[] = {
	K_UINT("attempts", R(attempts), 1, 10),
	K_STATUSES("statuses", R(statuses), 400, 599),
	K_BITS("transport", R(transport), transport_kind_names, "transport kind"),
	K_METHODS("methods", R(methods)),
	K_ENUM("unsafe", R(unsafe), unsafe_retry_names),
	K_MAP("backoff", 0, backoff_keys),
	K_MAP("retry_after", 0, retry_after_keys),
	K_MAP("budget", 0, budget_keys),
	K_BOOL("on_schema_violation", R(on_schema_violation)),
	K_END,
};

static const struct key breaker_keys[] = {
	K_BOOL("enabled", B(enabled)),
	K_DURATION("window", B(window_ms), 0, 0),
	K_UINT("min_requests", B(min_requests), 1, 1000000),
	K_RATIO("failure_ratio", B(failure_ratio), 0.01, 1),
	K_DURATION("open_for", B(open_for_ms), 0, 0),
	K_UINT("half_open_probes", B(half_open_probes), 1, 1000),
	K_END,
};

static const struct key idempotency_keys[] = {
	K_HEADER("header", P(idempotency_header), POLICY_HEADER_NAME_MAX + 1),
	K_METHODS("methods", P(idempotency_methods)),
	K_BOOL("honored", P(idempotency_honored)),
	K_END,
};

static const struct key correlation_keys[] = {
	K_HEADER("header", P(correlation_header), POLICY_HEADER_NAME_MAX + 1),
	K_END,
};

static const struct key pool_keys[] = {
	K_UINT("max_connections", P(pool_max_connections), 1, 100000),
	K_UINT("max_idle", P(pool_max_idle), 0, 100000),
	K_END,
};

static const struct key tracing_keys[] = {
	K_ENUM("traceparent", P(trace_mode), trace_mode_names),
	K_END,
};

static const struct key hedge_keys[] = {
	K_CUSTOM("delay", get_hedge_delay),
	K_UINT("max", H(max), 1, POLICY_MAX_HEDGES),
	K_END,
};

static const struct key concurrency_keys[] = {
	K_BOOL("adaptive", C(adaptive)),
	K_UINT("min", C(min), 1, 100000),
	K_UINT("max", C(max), 1, 100000),
	K_END,
};

static const struct key eject_keys[] = {
	K_UINT("consecutive_failures", E(consecutive_failures), 1, 1000),
	K_DURATION("base", E(eject_base_ms), 1, 0),
	K_DURATION("max", E(eject_max_ms), 1, 0),
	K_UINT("max_percent", E(max_percent), 0, 100),
	K_END,
};

static const struct key endpoints_keys[] = {
	K_ENUM("balance", E(balance), endpoint_balance_names),
	K_MAP("eject", 0, eject_keys),
	K_BOOL("retry_elsewhere", E(retry_elsewhere)),
	K_DURATION("resolve_every", E(resolve_every_ms), 100, 0),
	K_END,
};

static const struct key rate_limit_keys[] = {
	K_CUSTOM("rate", get_rate),
	K_UINT("burst", RL(burst), 1, GCRA_BURST_MAX),
	K_DURATION("queue", RL(queue_ms), 0, 0),
	K_ENUM("share", RL(share), rate_share_names),
	K_END,
};

static const struct key cache_keys[] = {
	K_BOOL("enabled", CP(enabled)),
	K_DURATION("ttl", CP(ttl_ms), 0, 0),
	K_DURATION("stale_if_error", CP(stale_if_error_ms), 0, 0),
	K_DURATION("stale_while_revalidate", CP(stale_while_revalidate_ms), 0, 0),
	K_BOOL("coalesce", CP(coalesce)),
	K_CUSTOM("key_headers", get_key_headers),
	K_END,
};

const struct key policy_keys[] = {
	K_MAP("timeouts", P(timeouts), timeout_keys),
	K_MAP("retry", P(retry), retry_keys),
	K_MAP("circuit_breaker", P(breaker), breaker_keys),
	K_BOOL("rate_limit_cooldown", P(rate_limit_cooldown)),
	K_MAP("idempotency", 0, idempotency_keys),
	K_MAP("correlation", 0, correlation_keys),
	K_MAP("pool", 0, pool_keys),
	K_ENUM("upstream_errors", P(upstream_errors), upstream_errors_names),
	K_MAP("tracing", 0, tracing_keys),
	K_ENUM("schema_formats", P(schema_formats), schema_formats_names),
	K_MAP("hedge", P(hedge), hedge_keys),
	K_MAP("concurrency", P(concurrency), concurrency_keys),
	K_MAP("endpoints", P(endpoints), endpoints_keys),
	K_MAP("rate_limit", P(rate_limit), rate_limit_keys),
	K_ENUM("ratelimit_headers", P(ratelimit_headers), ratelimit_headers_names),
	K_MAP("cache", P(cache), cache_keys),
	K_END,
};

/* Cross-key checks of hedge and concurrency on a merged policy. */
static void check_latency_policy(struct loader *L, const struct policy *p, const struct ynode *n,
				 const char *where)
{
	if (p->concurrency.min > p->concurrency.max)
		err_at(L, n, "%s: concurrency.min is larger than concurrency.max", where);
	/* The pool caps the limit: a floor above it could never hold. */
	if (p->concurrency.adaptive && p->concurrency.min > p->pool_max_connections)
		err_at(L, n, "%s: concurrency.min (%u) is larger than pool.max_connections (%u)",
		       where, p->concurrency.min, p->pool_max_connections);
}

/* Cross-key checks on a merged policy; n is where to report. */
void check_policy(struct loader *L, const struct policy *p, const struct ynode *n,
		  const char *where)
{
	if (p->retry.backoff_base_ms > p->retry.backoff_max_ms)
		err_at(L, n, "%s: retry.backoff.base is larger than retry.backoff.max", where);
	if (p->timeouts.attempt_ms && p->timeouts.attempt_ms > p->timeouts.total_ms)
		err_at(L, n, "%s: timeouts.attempt is longer than timeouts.total", where);
	if (p->endpoints.eject_base_ms > p->endpoints.eject_max_ms)
		err_at(L, n, "%s: endpoints.eject.base is longer than endpoints.eject.max", where);
	check_latency_policy(L, p, n, where);
}

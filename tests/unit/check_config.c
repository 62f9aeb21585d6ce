/* config_load_string on inline YAML: a full file like SPEC 2's example with
 * its merged values (built-in < defaults < profile < route, lists replace),
 * built-in defaults, listeners, ${ENV} and ${file:} secrets, profile order
 * and lookup; and one failing file per kind of error, each checked for its
 * exact "PATH:LINE:COL: " prefix, plus several errors reported together. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "config.h"
#include "names.h"
#include "suites.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define CFG_PATH "/etc/braced/test.yaml"

static struct config *load_at(const char *path, const char *text, struct config_errors *errs)
{
	memset(errs, 0, sizeof(*errs));
	return config_load_string(path, text, strlen(text), errs);
}

/* Loads text that must be valid; prints every error otherwise. */
static struct config *load_ok_at(const char *path, const char *text)
{
	struct config_errors errs;
	struct config *cfg = load_at(path, text, &errs);

	for (size_t i = 0; i < errs.count; i++)
		fprintf(stderr, "unexpected: %s\n", errs.lines[i]);
	ck_assert_msg(cfg != NULL, "config rejected (%zu errors), first: %s", errs.count,
		      errs.count ? errs.lines[0] : "-");
	ck_assert_uint_eq(errs.count, 0);
	config_errors_release(&errs);
	return cfg;
}

static struct config *load_ok(const char *text)
{
	return load_ok_at(CFG_PATH, text);
}

static const struct profile *profile(const struct config *cfg, const char *name)
{
	const struct profile *p = config_find_profile(cfg, name, strlen(name));

	ck_assert_msg(p != NULL, "profile '%s' not found", name);
	return p;
}

/* Retriable statuses as a short list, for readable assertions. */
static void assert_statuses(const uint8_t set[600], const int *want, int nwant)
{
	int count = 0;

	for (int i = 0; i < 600; i++)
		count += set[i] != 0;
	ck_assert_int_eq(count, nwant);
	for (int i = 0; i < nwant; i++)
		ck_assert_msg(set[want[i]], "status %d missing", want[i]);
}

static struct json_object *jget(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "schema key '%s' missing", key);
	return v;
}

/* ---- a full file ------------------------------------------------------- */

static const char full_yaml[] =
    "listen: 127.0.0.1:7070\n"
    "admin: 127.0.0.1:7071\n"
    "shutdown_grace: 15s\n"
    "log:\n"
    "  format: text\n"
    "  level: debug\n"
    "  access: false\n"
    "limits:\n"
    "  max_request_body: 2MiB\n"
    "  max_response_body: 4MiB\n"
    "  max_header_size: 32KiB\n"
    "  max_connections: 512\n"
    "  max_inflight: 2000\n"
    "  header_timeout: 2s\n"
    "  body_timeout: 1500ms\n"
    "  idle_timeout: 1m\n"
    "defaults:\n"
    "  timeouts:\n"
    "    read: 4s\n"
    "    total: 10s\n"
    "  retry:\n"
    "    attempts: 3\n"
    "    statuses: [429, 503]\n"
    "    transport: [connect, reset]\n"
    "    methods: [GET, HEAD]\n"
    "    unsafe: never\n"
    "    backoff: {base: 100ms, max: 2s, jitter: equal}\n"
    "    retry_after: {honor: false, max: 20s}\n"
    "    budget: {ratio: 0.5, min_per_second: 5, window: 20s}\n"
    "    on_schema_violation: true\n"
    "  circuit_breaker:\n"
    "    enabled: true\n"
    "    window: 30s\n"
    "    min_requests: 10\n"
    "    failure_ratio: 0.25\n"
    "    open_for: 7s\n"
    "    half_open_probes: 2\n"
    "  rate_limit_cooldown: false\n"
    "  idempotency: {header: X-Idem-Key, methods: [POST]}\n"
    "  correlation: {header: X-Request-ID}\n"
    "  pool: {max_connections: 50, max_idle: 10}\n"
    "  upstream_errors: passthrough\n"
    "profiles:\n"
    "  weather:\n"
    "    upstream: http://127.0.0.1:9/base\n"
    "    headers:\n"
    "      Authorization: \"Bearer ${BRACED_UT_WEATHER_KEY}\"\n"
    "      X-Static: plain\n"
    "    tls: {verify: false}\n"
    "    routes_only: true\n"
    "    timeouts: {read: 1s}\n"
    "    retry:\n"
    "      statuses: [502]\n"
    "    routes:\n"
    "      - match: GET /v1/weather\n"
    "        request:\n"
    "          query:\n"
    "            type: object\n"
    "            required: [city]\n"
    "            properties:\n"
    "              city: {type: string, minLength: 2, maxLength: 100}\n"
    "              unit: {enum: [metric, imperial]}\n"
    "          mode: enforce\n"
    "        response:\n"
    "          statuses: [200]\n"
    "          mode: report\n"
    "          body:\n"
    "            type: object\n"
    "            required: [city, temperature, condition, source_latency_ms]\n"
    "            properties:\n"
    "              city: {type: string}\n"
    "              temperature: {type: number}\n"
    "              condition: {type: string}\n"
    "              source_latency_ms: {type: integer, minimum: 0}\n"
    "        timeouts: {total: 5s}\n"
    "      - match: POST /v1/reports/{id}\n"
    "        retry: {attempts: 1, methods: [POST]}\n"
    "        request:\n"
    "          body: {type: object}\n"
    "          mode: report\n"
    "  alerts:\n"
    "    upstream: https://alerts.example:8443/\n";

START_TEST(test_full_file_top_level)
{
	struct config *cfg;

	setenv("BRACED_UT_WEATHER_KEY", "k3y", 1);
	cfg = load_ok(full_yaml);
	ck_assert_str_eq(cfg->path, CFG_PATH);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	ck_assert_int_eq(cfg->listeners[0].kind, LISTENER_TCP);
	ck_assert_str_eq(cfg->listeners[0].host, "127.0.0.1");
	ck_assert_uint_eq(cfg->listeners[0].port, 7070);
	ck_assert_int_eq(cfg->admin_enabled, 1);
	ck_assert_str_eq(cfg->admin.host, "127.0.0.1");
	ck_assert_uint_eq(cfg->admin.port, 7071);
	ck_assert_uint_eq(cfg->shutdown_grace_ms, 15000);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_TEXT);
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	ck_assert_int_eq(cfg->log_access, 0);
	ck_assert_uint_eq(cfg->max_request_body, 2 * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_response_body, 4 * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_header_size, 32 * 1024);
	ck_assert_uint_eq(cfg->max_connections, 512);
	ck_assert_uint_eq(cfg->max_inflight, 2000);
	ck_assert_uint_eq(cfg->header_timeout_ms, 2000);
	ck_assert_uint_eq(cfg->body_timeout_ms, 1500);
	ck_assert_uint_eq(cfg->idle_timeout_ms, 60000);
	ck_assert_uint_eq(cfg->refs, 1);
	ck_assert_ptr_eq(config_ref(cfg), cfg);
	ck_assert_uint_eq(cfg->refs, 2);
	config_unref(cfg);
	ck_assert_uint_eq(cfg->refs, 1);
	config_unref(cfg);
}
END_TEST

START_TEST(test_full_file_defaults)
{
	static const int statuses[] = { 429, 503 };
	const struct policy *d;
	struct config *cfg;

	setenv("BRACED_UT_WEATHER_KEY", "k3y", 1);
	cfg = load_ok(full_yaml);
	d = &cfg->defaults;
	ck_assert_uint_eq(d->timeouts.connect_ms, 2000); /* built-in */
	ck_assert_uint_eq(d->timeouts.read_ms, 4000);
	ck_assert_uint_eq(d->timeouts.write_ms, 2000);
	ck_assert_uint_eq(d->timeouts.pool_ms, 2000);
	ck_assert_uint_eq(d->timeouts.attempt_ms, 0);
	ck_assert_uint_eq(d->timeouts.total_ms, 10000);
	ck_assert_uint_eq(d->retry.attempts, 3);
	assert_statuses(d->retry.statuses, statuses, N(statuses));
	ck_assert_uint_eq(d->retry.transport, TRANSPORT_CONNECT | TRANSPORT_RESET);
	ck_assert_uint_eq(d->retry.methods, METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD));
	ck_assert_int_eq(d->retry.unsafe, UNSAFE_NEVER);
	ck_assert_uint_eq(d->retry.backoff_base_ms, 100);
	ck_assert_uint_eq(d->retry.backoff_max_ms, 2000);
	ck_assert_int_eq(d->retry.jitter, JITTER_EQUAL);
	ck_assert_int_eq(d->retry.retry_after_honor, 0);
	ck_assert_uint_eq(d->retry.retry_after_max_ms, 20000);
	ck_assert_double_eq(d->retry.budget_ratio, 0.5);
	ck_assert_uint_eq(d->retry.budget_min_per_second, 5);
	ck_assert_uint_eq(d->retry.budget_window_ms, 20000);
	ck_assert_int_eq(d->retry.on_schema_violation, 1);
	ck_assert_int_eq(d->breaker.enabled, 1);
	ck_assert_uint_eq(d->breaker.window_ms, 30000);
	ck_assert_uint_eq(d->breaker.min_requests, 10);
	ck_assert_double_eq(d->breaker.failure_ratio, 0.25);
	ck_assert_uint_eq(d->breaker.open_for_ms, 7000);
	ck_assert_uint_eq(d->breaker.half_open_probes, 2);
	ck_assert_int_eq(d->rate_limit_cooldown, 0);
	ck_assert_str_eq(d->idempotency_header, "X-Idem-Key");
	ck_assert_uint_eq(d->idempotency_methods, METHOD_BIT(METHOD_POST));
	ck_assert_str_eq(d->correlation_header, "X-Request-ID");
	ck_assert_uint_eq(d->pool_max_connections, 50);
	ck_assert_uint_eq(d->pool_max_idle, 10);
	ck_assert_int_eq(d->upstream_errors, UPSTREAM_ERRORS_PASSTHROUGH);
	config_unref(cfg);
}
END_TEST

START_TEST(test_full_file_profile_merge)
{
	static const int s502[] = { 502 };
	static const int s429_503[] = { 429, 503 };
	const struct profile *w, *a;
	struct config *cfg;

	setenv("BRACED_UT_WEATHER_KEY", "k3y", 1);
	cfg = load_ok(full_yaml);
	w = profile(cfg, "weather");
	ck_assert_str_eq(w->name, "weather");
	ck_assert_str_eq(w->upstream, "http://127.0.0.1:9/base");
	ck_assert_int_eq(w->upstream_secret, 0);
	ck_assert_int_eq(w->tls.verify, 0);
	ck_assert_ptr_null(w->tls.ca_file);
	ck_assert_int_eq(w->routes_only, 1);
	ck_assert_uint_eq(w->nheaders, 2);
	ck_assert_str_eq(w->headers[0].name, "Authorization");
	ck_assert_str_eq(w->headers[0].value, "Bearer k3y");
	ck_assert_int_eq(w->headers[0].secret, 1);
	ck_assert_str_eq(w->headers[1].name, "X-Static");
	ck_assert_str_eq(w->headers[1].value, "plain");
	ck_assert_int_eq(w->headers[1].secret, 0);

	/* profile over defaults over built-in */
	ck_assert_uint_eq(w->policy.timeouts.read_ms, 1000);
	ck_assert_uint_eq(w->policy.timeouts.total_ms, 10000);
	ck_assert_uint_eq(w->policy.timeouts.connect_ms, 2000);
	/* a list replaces, the rest of retry is inherited */
	assert_statuses(w->policy.retry.statuses, s502, N(s502));
	ck_assert_uint_eq(w->policy.retry.attempts, 3);
	ck_assert_uint_eq(w->policy.retry.backoff_base_ms, 100);
	ck_assert_int_eq(w->policy.retry.jitter, JITTER_EQUAL);
	ck_assert_str_eq(w->policy.correlation_header, "X-Request-ID");

	/* an untouched profile inherits defaults as they are */
	a = profile(cfg, "alerts");
	ck_assert_str_eq(a->upstream, "https://alerts.example:8443");
	ck_assert_int_eq(a->tls.verify, 1);
	ck_assert_int_eq(a->routes_only, 0);
	ck_assert_uint_eq(a->nheaders, 0);
	ck_assert_uint_eq(a->nroutes, 0);
	ck_assert_uint_eq(a->policy.timeouts.read_ms, 4000);
	ck_assert_uint_eq(a->policy.timeouts.total_ms, 10000);
	ck_assert_uint_eq(a->policy.retry.attempts, 3);
	assert_statuses(a->policy.retry.statuses, s429_503, N(s429_503));
	ck_assert_uint_eq(a->policy.pool_max_connections, 50);
	config_unref(cfg);
}
END_TEST

START_TEST(test_full_file_routes)
{
	static const int s502[] = { 502 };
	static const int s200[] = { 200 };
	const struct profile *w;
	const struct route *r;
	struct json_object *props;
	struct config *cfg;

	setenv("BRACED_UT_WEATHER_KEY", "k3y", 1);
	cfg = load_ok(full_yaml);
	w = profile(cfg, "weather");
	ck_assert_uint_eq(w->nroutes, 2);

	r = &w->routes[0];
	ck_assert_str_eq(r->label, "GET /v1/weather");
	ck_assert_int_eq(r->method, METHOD_GET);
	ck_assert_uint_eq(r->nsegments, 2);
	ck_assert_str_eq(r->segments[0], "v1");
	ck_assert_str_eq(r->segments[1], "weather");
	ck_assert_int_eq(r->rest, 0);
	/* route over profile over defaults over built-in */
	ck_assert_uint_eq(r->policy.timeouts.read_ms, 1000);
	ck_assert_uint_eq(r->policy.timeouts.total_ms, 5000);
	ck_assert_uint_eq(r->policy.timeouts.connect_ms, 2000);
	ck_assert_uint_eq(r->policy.timeouts.write_ms, 2000);
	assert_statuses(r->policy.retry.statuses, s502, N(s502));
	ck_assert_uint_eq(r->policy.retry.attempts, 3);
	ck_assert_int_eq(r->request.mode, SCHEMA_MODE_ENFORCE);
	ck_assert_ptr_nonnull(r->request.query);
	ck_assert_ptr_null(r->request.body);
	ck_assert_str_eq(json_object_get_string(jget(r->request.query, "type")), "object");
	props = jget(jget(r->request.query, "properties"), "city");
	ck_assert(json_object_is_type(jget(props, "minLength"), json_type_int));
	ck_assert_int_eq(json_object_get_int(jget(props, "minLength")), 2);
	ck_assert_uint_eq(json_object_array_length(
			      jget(jget(jget(r->request.query, "properties"), "unit"), "enum")),
			  2);
	ck_assert_int_eq(r->response.mode, SCHEMA_MODE_REPORT);
	assert_statuses(r->response.statuses, s200, N(s200));
	ck_assert_ptr_nonnull(r->response.body);
	ck_assert_str_eq(json_object_get_string(jget(
			     jget(jget(r->response.body, "properties"), "temperature"), "type")),
			 "number");
	ck_assert_uint_eq(json_object_array_length(jget(r->response.body, "required")), 4);

	r = &w->routes[1];
	ck_assert_str_eq(r->label, "POST /v1/reports/{id}");
	ck_assert_int_eq(r->method, METHOD_POST);
	ck_assert_uint_eq(r->nsegments, 3);
	ck_assert_str_eq(r->segments[2], "{id}");
	ck_assert_uint_eq(r->policy.retry.attempts, 1);
	ck_assert_uint_eq(r->policy.retry.methods, METHOD_BIT(METHOD_POST));
	assert_statuses(r->policy.retry.statuses, s502, N(s502));
	ck_assert_uint_eq(r->policy.timeouts.read_ms, 1000);
	ck_assert_uint_eq(r->policy.timeouts.total_ms, 10000);
	ck_assert_int_eq(r->request.mode, SCHEMA_MODE_REPORT);
	ck_assert_ptr_null(r->request.query);
	ck_assert_ptr_nonnull(r->request.body);
	/* response: nothing written, so enforce and every 2xx */
	ck_assert_int_eq(r->response.mode, SCHEMA_MODE_ENFORCE);
	ck_assert_ptr_null(r->response.body);
	for (int s = 100; s < 600; s++)
		ck_assert_msg(r->response.statuses[s] == (s >= 200 && s < 300), "status %d", s);
	config_unref(cfg);
}
END_TEST

START_TEST(test_builtin_defaults)
{
	static const int statuses[] = { 408, 425, 429, 500, 502, 503, 504 };
	struct config *cfg = load_ok("profiles:\n  p:\n    upstream: http://127.0.0.1:9\n");
	const struct profile *p = profile(cfg, "p");
	struct policy b;

	ck_assert_uint_eq(cfg->nlisteners, 1);
	ck_assert_str_eq(cfg->listeners[0].address, "127.0.0.1:7070");
	ck_assert_uint_eq(cfg->listeners[0].port, 7070);
	ck_assert_int_eq(cfg->admin_enabled, 1);
	ck_assert_str_eq(cfg->admin.address, "127.0.0.1:7071");
	ck_assert_uint_eq(cfg->shutdown_grace_ms, 10000);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_JSON);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	ck_assert_int_eq(cfg->log_access, 1);
	ck_assert_uint_eq(cfg->max_request_body, 0);
	ck_assert_uint_eq(cfg->max_response_body, 8 * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_header_size, 16 * 1024);
	ck_assert_uint_eq(cfg->max_validated_body, 2 * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_connections, 4096);
	ck_assert_uint_eq(cfg->max_inflight, 10000);
	ck_assert_uint_eq(cfg->header_timeout_ms, 10000);
	ck_assert_uint_eq(cfg->body_timeout_ms, 30000);
	ck_assert_uint_eq(cfg->idle_timeout_ms, 60000);

	config_builtin_policy(&b);
	ck_assert_uint_eq(b.timeouts.connect_ms, 2000);
	ck_assert_uint_eq(b.timeouts.read_ms, 4000);
	ck_assert_uint_eq(b.timeouts.write_ms, 2000);
	ck_assert_uint_eq(b.timeouts.pool_ms, 2000);
	ck_assert_uint_eq(b.timeouts.attempt_ms, 0);
	ck_assert_uint_eq(b.timeouts.total_ms, 10000);
	ck_assert_uint_eq(b.retry.attempts, 4);
	assert_statuses(b.retry.statuses, statuses, N(statuses));
	ck_assert_uint_eq(b.retry.transport,
			  TRANSPORT_CONNECT | TRANSPORT_RESET | TRANSPORT_TIMEOUT);
	ck_assert_uint_eq(b.retry.methods, METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD) |
					       METHOD_BIT(METHOD_OPTIONS) | METHOD_BIT(METHOD_PUT) |
					       METHOD_BIT(METHOD_DELETE));
	ck_assert_int_eq(b.retry.unsafe, UNSAFE_WITH_KEY);
	ck_assert_uint_eq(b.retry.backoff_base_ms, 200);
	ck_assert_uint_eq(b.retry.backoff_max_ms, 3000);
	ck_assert_int_eq(b.retry.jitter, JITTER_FULL);
	ck_assert_int_eq(b.retry.retry_after_honor, 1);
	ck_assert_uint_eq(b.retry.retry_after_max_ms, 30000);
	ck_assert_double_eq(b.retry.budget_ratio, 0.2);
	ck_assert_uint_eq(b.retry.budget_min_per_second, 10);
	ck_assert_uint_eq(b.retry.budget_window_ms, 10000);
	ck_assert_int_eq(b.retry.on_schema_violation, 0);
	ck_assert_int_eq(b.breaker.enabled, 1);
	ck_assert_uint_eq(b.breaker.window_ms, 10000);
	ck_assert_uint_eq(b.breaker.min_requests, 20);
	ck_assert_double_eq(b.breaker.failure_ratio, 0.5);
	ck_assert_uint_eq(b.breaker.open_for_ms, 5000);
	ck_assert_uint_eq(b.breaker.half_open_probes, 1);
	ck_assert_int_eq(b.rate_limit_cooldown, 1);
	ck_assert_str_eq(b.idempotency_header, "Idempotency-Key");
	ck_assert_uint_eq(b.idempotency_methods,
			  METHOD_BIT(METHOD_POST) | METHOD_BIT(METHOD_PATCH));
	ck_assert_str_eq(b.correlation_header, "X-Correlation-ID");
	ck_assert_uint_eq(b.pool_max_connections, 100);
	ck_assert_uint_eq(b.pool_max_idle, 20);
	ck_assert_int_eq(b.upstream_errors, UPSTREAM_ERRORS_PASSTHROUGH);
	ck_assert_int_eq(b.idempotency_honored, 0);

	/* without `defaults`, config and profile carry the built-in policy */
	ck_assert_uint_eq(cfg->defaults.retry.attempts, 4);
	ck_assert_uint_eq(p->policy.timeouts.total_ms, 10000);
	ck_assert_uint_eq(p->policy.retry.attempts, 4);
	assert_statuses(p->policy.retry.statuses, statuses, N(statuses));
	ck_assert_str_eq(p->policy.idempotency_header, "Idempotency-Key");
	ck_assert_int_eq(p->tls.verify, 1);
	config_unref(cfg);
}
END_TEST

/* ---- listeners ---------------------------------------------------------- */

#define ONE_PROFILE "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n"

/* hedge and concurrency on defaults, profile and route, merged key by key. */
START_TEST(test_latency_keys)
{
	struct config *cfg =
	    load_ok("defaults:\n  hedge: {delay: 30ms}\n  concurrency: {adaptive: true, max: 64}\n"
		    "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    hedge: {max: 2}\n"
		    "    routes:\n      - match: GET /x\n        hedge: {delay: p95}\n"
		    "        concurrency: {min: 8}\n");
	const struct profile *p = profile(cfg, "p");
	struct policy b;

	config_builtin_policy(&b);
	ck_assert_uint_eq(b.hedge.delay_ms, 0);
	ck_assert_uint_eq(b.hedge.quantile, 0);
	ck_assert_uint_eq(b.hedge.max, 1);
	ck_assert_int_eq(b.concurrency.adaptive, 0);
	ck_assert_uint_eq(b.concurrency.min, 4);
	ck_assert_uint_eq(b.concurrency.max, 512);
	ck_assert_uint_eq(p->policy.hedge.delay_ms, 30);
	ck_assert_uint_eq(p->policy.hedge.max, 2);
	ck_assert_int_eq(p->policy.concurrency.adaptive, 1);
	ck_assert_uint_eq(p->policy.concurrency.min, 4);
	ck_assert_uint_eq(p->policy.concurrency.max, 64);
	ck_assert_uint_eq(p->routes[0].policy.hedge.quantile, 95);
	ck_assert_uint_eq(p->routes[0].policy.hedge.delay_ms, 0);
	ck_assert_uint_eq(p->routes[0].policy.hedge.max, 2);
	ck_assert_uint_eq(p->routes[0].policy.concurrency.min, 8);
	config_unref(cfg);
}
END_TEST

/* The ends of pNN: p1 and p99 are accepted (p0, p100, p99.9 are not: see
 * err_cases). */
START_TEST(test_hedge_quantile_ends)
{
	struct config *cfg = load_ok("defaults:\n  hedge: {delay: p1}\n"
				     "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n"
				     "    hedge: {delay: p99}\n");

	ck_assert_uint_eq(cfg->defaults.hedge.quantile, 1);
	ck_assert_uint_eq(profile(cfg, "p")->policy.hedge.quantile, 99);
	config_unref(cfg);
}
END_TEST

START_TEST(test_listeners)
{
	struct config *cfg;

	cfg = load_ok("listen: \"[::1]:7070\"\nadmin: off\n" ONE_PROFILE);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	ck_assert_int_eq(cfg->listeners[0].kind, LISTENER_TCP);
	ck_assert_str_eq(cfg->listeners[0].address, "[::1]:7070");
	ck_assert_str_eq(cfg->listeners[0].host, "::1");
	ck_assert_uint_eq(cfg->listeners[0].port, 7070);
	ck_assert_int_eq(cfg->admin_enabled, 0);
	config_unref(cfg);

	cfg = load_ok("listen: unix:/tmp/braced.sock\n" ONE_PROFILE);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	ck_assert_int_eq(cfg->listeners[0].kind, LISTENER_UNIX);
	ck_assert_str_eq(cfg->listeners[0].path, "/tmp/braced.sock");
	ck_assert_str_eq(cfg->listeners[0].address, "unix:/tmp/braced.sock");
	config_unref(cfg);

	cfg = load_ok("listen:\n"
		      "  - 127.0.0.1:7070\n"
		      "  - \"[::1]:7072\"\n"
		      "  - unix:/tmp/braced.sock\n"
		      "  - localhost:0\n"
		      "admin: \"[::1]:9901\"\n" ONE_PROFILE);
	ck_assert_uint_eq(cfg->nlisteners, 4);
	ck_assert_str_eq(cfg->listeners[0].host, "127.0.0.1");
	ck_assert_uint_eq(cfg->listeners[0].port, 7070);
	ck_assert_str_eq(cfg->listeners[1].host, "::1");
	ck_assert_uint_eq(cfg->listeners[1].port, 7072);
	ck_assert_int_eq(cfg->listeners[2].kind, LISTENER_UNIX);
	ck_assert_str_eq(cfg->listeners[2].path, "/tmp/braced.sock");
	ck_assert_str_eq(cfg->listeners[3].host, "localhost");
	ck_assert_uint_eq(cfg->listeners[3].port, 0);
	ck_assert_int_eq(cfg->admin_enabled, 1);
	ck_assert_str_eq(cfg->admin.host, "::1");
	ck_assert_uint_eq(cfg->admin.port, 9901);
	config_unref(cfg);

	cfg = load_ok("listen: [0.0.0.0:80]\n" ONE_PROFILE);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	ck_assert_str_eq(cfg->listeners[0].host, "0.0.0.0");
	ck_assert_uint_eq(cfg->listeners[0].port, 80);
	config_unref(cfg);
}
END_TEST

START_TEST(test_upstream_forms)
{
	struct config *cfg = load_ok("profiles:\n"
				     "  a: {upstream: \"http://[::1]:8080/base/\"}\n"
				     "  b: {upstream: https://api.example.com}\n"
				     "  c: {upstream: \"http://example.com:80/\"}\n"
				     "  d: {upstream: \"http://example.com/a/b//\"}\n"
				     "  e: {upstream: \"https://example.com/base%20x/v1\"}\n");

	ck_assert_str_eq(profile(cfg, "a")->upstream, "http://[::1]:8080/base");
	ck_assert_str_eq(profile(cfg, "b")->upstream, "https://api.example.com");
	ck_assert_str_eq(profile(cfg, "c")->upstream, "http://example.com:80");
	ck_assert_str_eq(profile(cfg, "d")->upstream, "http://example.com/a/b");
	ck_assert_str_eq(profile(cfg, "e")->upstream, "https://example.com/base%20x/v1");
	config_unref(cfg);
}
END_TEST

/* ---- secrets ------------------------------------------------------------ */

struct tmpdir {
	char dir[64];
	char files[4][PATH_MAX];
	int nfiles;
};

static void tmp_make(struct tmpdir *t)
{
	memset(t, 0, sizeof(*t));
	strcpy(t->dir, "/tmp/braced-ut-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
}

static const char *tmp_write(struct tmpdir *t, const char *name, const char *content)
{
	char *path = t->files[t->nfiles++];
	char built[PATH_MAX];
	FILE *f;

	snprintf(built, sizeof(built), "%s/%s", t->dir, name);
	memcpy(path, built, sizeof(built));
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

static void tmp_remove(struct tmpdir *t)
{
	for (int i = 0; i < t->nfiles; i++)
		unlink(t->files[i]);
	rmdir(t->dir);
}

START_TEST(test_secrets)
{
	struct tmpdir t;
	char cfg_path[PATH_MAX], text[2048];
	const char *abs;
	const struct profile *p;
	struct config *cfg;

	tmp_make(&t);
	tmp_write(&t, "token.txt", "from-file\n");
	abs = tmp_write(&t, "abs.txt", "absolute\n");
	snprintf(cfg_path, sizeof(cfg_path), "%s/braced.yaml", t.dir);
	setenv("BRACED_UT_TOKEN", "tok123", 1);
	setenv("BRACED_UT_HOST", "127.0.0.1:9", 1);
	setenv("BRACED_UT_A", "left", 1);
	setenv("BRACED_UT_B", "right", 1);
	snprintf(text, sizeof(text),
		 "profiles:\n"
		 "  p:\n"
		 "    upstream: http://${BRACED_UT_HOST}/v1\n"
		 "    headers:\n"
		 "      Authorization: \"Bearer ${BRACED_UT_TOKEN}\"\n"
		 "      X-File: ${file:token.txt}\n"
		 "      X-Abs: \"${file:%s}\"\n"
		 "      X-Two: ${BRACED_UT_A}-${BRACED_UT_B}\n"
		 "      X-Plain: \"$HOME {not} $ {x}\"\n"
		 "  q:\n"
		 "    upstream: http://127.0.0.1:9\n",
		 abs);
	cfg = load_ok_at(cfg_path, text);
	p = profile(cfg, "p");
	ck_assert_str_eq(p->upstream, "http://127.0.0.1:9/v1");
	ck_assert_int_eq(p->upstream_secret, 1);
	ck_assert_int_eq(profile(cfg, "q")->upstream_secret, 0);
	ck_assert_uint_eq(p->nheaders, 5);
	ck_assert_str_eq(p->headers[0].value, "Bearer tok123");
	ck_assert_int_eq(p->headers[0].secret, 1);
	ck_assert_str_eq(p->headers[1].value, "from-file");
	ck_assert_int_eq(p->headers[1].secret, 1);
	ck_assert_str_eq(p->headers[2].name, "X-Abs");
	ck_assert_str_eq(p->headers[2].value, "absolute");
	ck_assert_int_eq(p->headers[2].secret, 1);
	ck_assert_str_eq(p->headers[3].value, "left-right");
	ck_assert_int_eq(p->headers[3].secret, 1);
	ck_assert_str_eq(p->headers[4].value, "$HOME {not} $ {x}");
	ck_assert_int_eq(p->headers[4].secret, 0);
	config_unref(cfg);
	tmp_remove(&t);
}
END_TEST

/* Only the final newline of a secret file goes; one inside the value is an
 * error that names the header, never the value. */
START_TEST(test_secret_file_inner_newline)
{
	struct tmpdir t;
	char cfg_path[PATH_MAX];
	struct config_errors errs;
	struct config *cfg;

	tmp_make(&t);
	tmp_write(&t, "multi.txt", "topsecret\ninjected: 1\n");
	snprintf(cfg_path, sizeof(cfg_path), "%s/braced.yaml", t.dir);
	cfg = load_at(cfg_path,
		      "profiles:\n"
		      "  p:\n"
		      "    upstream: http://127.0.0.1:9\n"
		      "    headers:\n"
		      "      X-Key: ${file:multi.txt}\n",
		      &errs);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_msg(strncmp(errs.lines[0], cfg_path, strlen(cfg_path)) == 0 &&
			  strncmp(errs.lines[0] + strlen(cfg_path), ":5:14: ", 7) == 0,
		      "got: %s", errs.lines[0]);
	ck_assert_ptr_nonnull(strstr(errs.lines[0], "CR, LF"));
	ck_assert_ptr_null(strstr(errs.lines[0], "topsecret"));
	ck_assert_ptr_null(strstr(errs.lines[0], "injected"));
	config_errors_release(&errs);
	tmp_remove(&t);
}
END_TEST

/* A secret that names a FIFO (or a device) is refused at once: reading it
 * could block the load forever. */
START_TEST(test_secret_file_not_regular)
{
	struct tmpdir t;
	char cfg_path[PATH_MAX], fifo[PATH_MAX];
	struct config_errors errs;
	struct config *cfg;

	tmp_make(&t);
	snprintf(fifo, sizeof(fifo), "%s/fifo", t.dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	snprintf(cfg_path, sizeof(cfg_path), "%s/braced.yaml", t.dir);
	cfg = load_at(cfg_path,
		      "profiles:\n"
		      "  p:\n"
		      "    upstream: http://127.0.0.1:9\n"
		      "    headers:\n"
		      "      X-Key: ${file:fifo}\n"
		      "      X-Dev: ${file:/dev/null}\n",
		      &errs);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 2);
	ck_assert_ptr_nonnull(strstr(errs.lines[0], ":5:14: "));
	ck_assert_ptr_nonnull(strstr(errs.lines[0], "not a regular file"));
	ck_assert_ptr_nonnull(strstr(errs.lines[1], "not a regular file"));
	config_errors_release(&errs);
	unlink(fifo);
	tmp_remove(&t);
}
END_TEST

/* ---- profiles ----------------------------------------------------------- */

START_TEST(test_profiles_sorted_and_found)
{
	static const char *const sorted[] = { "a", "alpha", "b-2", "b_1", "m0", "zeta", "zz" };
	struct config *cfg = load_ok("profiles:\n"
				     "  zeta: {upstream: http://127.0.0.1:9}\n"
				     "  m0: {upstream: http://127.0.0.1:9}\n"
				     "  alpha: {upstream: http://127.0.0.1:9}\n"
				     "  b_1: {upstream: http://127.0.0.1:9}\n"
				     "  zz: {upstream: http://127.0.0.1:9}\n"
				     "  a: {upstream: http://127.0.0.1:9}\n"
				     "  b-2: {upstream: http://127.0.0.1:9}\n");
	const char *path = "/alpha/v1/x";

	ck_assert_uint_eq(cfg->nprofiles, N(sorted));
	for (int i = 0; i < N(sorted); i++) {
		ck_assert_str_eq(cfg->profiles[i].name, sorted[i]);
		ck_assert_uint_eq(cfg->profiles[i].index, (unsigned)i);
		ck_assert_ptr_eq(config_find_profile(cfg, sorted[i], strlen(sorted[i])),
				 &cfg->profiles[i]);
	}
	/* name given by length inside a longer buffer */
	ck_assert_ptr_eq(config_find_profile(cfg, path + 1, 5), &cfg->profiles[1]);
	ck_assert_ptr_eq(config_find_profile(cfg, path + 1, 1), &cfg->profiles[0]);
	ck_assert_ptr_null(config_find_profile(cfg, path + 1, 4));
	ck_assert_ptr_null(config_find_profile(cfg, path + 1, 6));
	ck_assert_ptr_null(config_find_profile(cfg, "", 0));
	ck_assert_ptr_null(config_find_profile(cfg, "zzz", 3));
	ck_assert_ptr_null(config_find_profile(cfg, "0", 1));
	ck_assert_ptr_null(config_find_profile(cfg, "Alpha", 5));
	ck_assert_ptr_null(config_find_profile(cfg, "b", 1));
	ck_assert_ptr_null(config_find_profile(cfg, "m", 1));
	config_unref(cfg);
}
END_TEST

/* `profiles: {}` (the packaged template) loads: no profile is found, and
 * the listeners compare by address for a reload. */
START_TEST(test_empty_profiles)
{
	struct config *a = load_ok("listen: 127.0.0.1:0\nadmin: \"off\"\nprofiles: {}\n");
	struct config *b = load_ok("listen: [127.0.0.1:0]\nadmin: \"off\"\nprofiles: {}\n");
	struct config *c = load_ok("listen: 127.0.0.1:7070\nprofiles: {}\n");

	ck_assert_uint_eq(a->nprofiles, 0);
	ck_assert_ptr_null(config_find_profile(a, "demo", 4));
	ck_assert_int_eq(config_listen_equal(a, b), 1);
	ck_assert_int_eq(config_admin_equal(a, b), 1);
	ck_assert_int_eq(config_listen_equal(a, c), 0);
	ck_assert_int_eq(config_admin_equal(a, c), 0);
	config_unref(a);
	config_unref(b);
	config_unref(c);
}
END_TEST

/* ---- one failing file per kind of error --------------------------------- */

struct err_case {
	const char *what;
	const char *text;
	unsigned line, col; /* of errs.lines[0] */
	const char *word;   /* must appear in errs.lines[0] */
	const char *secret; /* must appear in no error line, or NULL */
};

#define HEADER_PROFILE(value)                                                                      \
	"profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    headers:\n      "                  \
	"Authorization: " value "\n"
#define ROUTE_PROFILE(match)                                                                       \
	"profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    routes:\n      - match: " match "\n"
#define UPSTREAM_PROFILE(url) "profiles:\n  p:\n    upstream: " url "\n"

static const struct err_case err_cases[] = {
	/* YAML itself */
	{ "yaml syntax", "log:\n  level: info: x\n" ONE_PROFILE, 2, 14, "YAML syntax error", NULL },
	{ "unclosed flow", "log: {level: info\n" ONE_PROFILE, 2, 9, "YAML syntax error", NULL },
	{ "tab indentation", "log:\n\tlevel: info\n" ONE_PROFILE, 2, 1, "YAML syntax error", NULL },
	{ "duplicate key", "log:\n  level: info\n  format: json\n  level: warn\n" ONE_PROFILE, 4, 3,
	  "duplicate key 'level'", NULL },
	{ "duplicate profile", ONE_PROFILE "  p:\n    upstream: http://127.0.0.1:8\n", 4, 3,
	  "duplicate", NULL },
	{ "anchor", "log: &l\n  level: info\n" ONE_PROFILE, 1, 6, "anchors", NULL },
	{ "alias", "log:\n  level: *lvl\n" ONE_PROFILE, 2, 10, "aliases", NULL },
	{ "two documents", ONE_PROFILE "---\n" ONE_PROFILE, 4, 1, "one YAML document", NULL },
	/* keys */
	{ "unknown top-level key", "listen: 127.0.0.1:7070\nlistn: 1\n" ONE_PROFILE, 2, 1,
	  "unknown key 'listn' in the configuration (did you mean 'listen'?)", NULL },
	{ "unknown nested key", "defaults:\n  timeouts:\n    conect: 1s\n" ONE_PROFILE, 3, 5,
	  "unknown key 'conect' in timeouts (did you mean 'connect'?)", NULL },
	{ "unknown defaults key", "defaults:\n  retries: 3\n" ONE_PROFILE, 2, 3,
	  "unknown key 'retries' in defaults", NULL },
	{ "unknown profile key", ONE_PROFILE "    upstream_url: x\n", 4, 5,
	  "unknown key 'upstream_url' in profile 'p'", NULL },
	{ "a near miss of a profile's policy key", ONE_PROFILE "    circuit_braker: {}\n", 4, 5,
	  "(did you mean 'circuit_breaker'?)", NULL },
	{ "no near miss", ONE_PROFILE "    zzz: 1\n", 4, 5, "unknown key 'zzz' in profile 'p'",
	  NULL },
	{ "unknown route key", ROUTE_PROFILE("GET /x") "        timeout: 1s\n", 6, 9,
	  "unknown key 'timeout' in route (did you mean 'timeouts'?)", NULL },
	{ "tracing mode", ONE_PROFILE "    tracing: {traceparent: always}\n", 4, 28,
	  "tracing.traceparent 'always' is not one of: off, propagate, generate", NULL },
	/* ports and numbers are digits only: strtol took a sign and spaces */
	{ "upstream port with a sign", UPSTREAM_PROFILE("http://h:+80/"), 3, 15,
	  "upstream port must be a number from 1 to 65535", NULL },
	{ "listen port with a sign", "listen: 127.0.0.1:+80\n" ONE_PROFILE, 1, 9,
	  "port must be a number from 0 to 65535", NULL },
	{ "redis port with a space", "fleet: {redis: \"redis://127.0.0.1: 6379\"}\n" ONE_PROFILE, 1,
	  16, "the port must be from 1 to 65535", NULL },
	{ "redis database with a sign",
	  "fleet: {redis: \"redis://127.0.0.1:6379/+3\"}\n" ONE_PROFILE, 1, 16,
	  "the database must be a number from 0 to 65535", NULL },
	/* what start-up would fail on */
	{ "listed twice", "listen: [127.0.0.1:7070, \"[::1]:7070\", 127.0.0.1:7070]\n" ONE_PROFILE,
	  1, 40, "'127.0.0.1:7070' is listed twice", NULL },
	{ "unix path twice", "listen: [unix:/tmp/a.sock, unix:/tmp/a.sock]\n" ONE_PROFILE, 1, 28,
	  "listed twice", NULL },
	{ "admin on an app listener", "listen: 127.0.0.1:7070\nadmin: 127.0.0.1:7070\n" ONE_PROFILE,
	  2, 8, "admin '127.0.0.1:7070' is also an app listener", NULL },
	{ "missing socket directory", "listen: unix:/nonexistent-braced-dir/b.sock\n" ONE_PROFILE,
	  1, 9, "the socket directory '/nonexistent-braced-dir' cannot be used", NULL },
	{ "socket directory is a file", "listen: unix:/etc/passwd/b.sock\n" ONE_PROFILE, 1, 9,
	  "'/etc/passwd' is not a directory", NULL },
	/* types */
	{ "mapping for a scalar", "shutdown_grace: {a: 1}\n" ONE_PROFILE, 1, 17, "mapping", NULL },
	{ "list for a mapping", "log: [json]\n" ONE_PROFILE, 1, 6, "list", NULL },
	{ "mapping for a url", "profiles:\n  p:\n    upstream: {host: x}\n", 3, 15, "mapping",
	  NULL },
	{ "string for a bool", "log:\n  access: \"true\"\n" ONE_PROFILE, 2, 11, "true or false",
	  NULL },
	{ "yes for a bool", "log:\n  access: yes\n" ONE_PROFILE, 2, 11, "true or false", NULL },
	{ "bad enum", "log:\n  level: loud\n" ONE_PROFILE, 2, 10, "loud", NULL },
	{ "string for an int", "limits:\n  max_connections: \"10\"\n" ONE_PROFILE, 2, 20, "integer",
	  NULL },
	/* hedge and concurrency (SPEC 4.10) */
	{ "hedge quantile over 99", "defaults:\n  hedge: {delay: p100}\n" ONE_PROFILE, 2, 18,
	  "p1 to p99", NULL },
	{ "hedge quantile p0", "defaults:\n  hedge: {delay: p0}\n" ONE_PROFILE, 2, 18, "p1 to p99",
	  NULL },
	{ "hedge quantile p99.9", "defaults:\n  hedge: {delay: p99.9}\n" ONE_PROFILE, 2, 18,
	  "p1 to p99", NULL },
	{ "hedge quantile p999", "defaults:\n  hedge: {delay: p999}\n" ONE_PROFILE, 2, 18,
	  "p1 to p99", NULL },
	{ "hedge quantile without a number", "defaults:\n  hedge: {delay: p}\n" ONE_PROFILE, 2, 18,
	  "p1 to p99", NULL },
	{ "hedge quantile negative", "defaults:\n  hedge: {delay: p-5}\n" ONE_PROFILE, 2, 18,
	  "p1 to p99", NULL },
	{ "concurrency min over the pool",
	  "defaults:\n  concurrency: {adaptive: true, min: 8}\n  pool: {max_connections: "
	  "4}\n" ONE_PROFILE,
	  2, 3, "concurrency.min (8) is larger than pool.max_connections (4)", NULL },
	{ "hedge delay not a duration", "defaults:\n  hedge: {delay: soon}\n" ONE_PROFILE, 2, 18,
	  "not a duration", NULL },
	{ "hedge max over 3", "defaults:\n  hedge: {max: 4}\n" ONE_PROFILE, 2, 16, "hedge.max",
	  NULL },
	{ "unknown hedge key", "defaults:\n  hedge: {dealy: 5ms}\n" ONE_PROFILE, 2, 11,
	  "unknown key 'dealy'", NULL },
	{ "concurrency min over max", ONE_PROFILE "    concurrency: {min: 10, max: 5}\n", 2, 3,
	  "concurrency.min", NULL },
	{ "concurrency adaptive not a bool",
	  "defaults:\n  concurrency: {adaptive: 1}\n" ONE_PROFILE, 2, 27, "true or false", NULL },
	/* rate limits (SPEC 4.12) */
	{ "rate_limit rate not a rate", "defaults:\n  rate_limit: {rate: fast}\n" ONE_PROFILE, 2,
	  22, "rate_limit.rate 'fast' is not a rate", NULL },
	{ "rate_limit rate count 0", "defaults:\n  rate_limit: {rate: 0/s}\n" ONE_PROFILE, 2, 22,
	  "is not a rate", NULL },
	{ "rate_limit rate without period", "defaults:\n  rate_limit: {rate: 10}\n" ONE_PROFILE, 2,
	  22, "is not a rate", NULL },
	{ "rate_limit period over 24h", "defaults:\n  rate_limit: {rate: 1/25h}\n" ONE_PROFILE, 2,
	  22, "the period at most 24h", NULL },
	{ "rate_limit faster than 1/ns",
	  "defaults:\n  rate_limit: {rate: 1000000000/100ms}\n" ONE_PROFILE, 2, 22,
	  "more than one attempt per nanosecond", NULL },
	{ "rate_limit count over 10^9",
	  "defaults:\n  rate_limit: {rate: 1000000001/s}\n" ONE_PROFILE, 2, 22,
	  "more than one attempt per nanosecond", NULL },
	{ "rate_limit rate a mapping", "defaults:\n  rate_limit: {rate: {n: 1}}\n" ONE_PROFILE, 2,
	  22, "rate_limit.rate", NULL },
	{ "rate_limit burst 0", "defaults:\n  rate_limit: {burst: 0}\n" ONE_PROFILE, 2, 23,
	  "rate_limit.burst must be an integer from 1 to 1000000", NULL },
	{ "rate_limit burst too big", "defaults:\n  rate_limit: {burst: 1000001}\n" ONE_PROFILE, 2,
	  23, "rate_limit.burst must be an integer from 1 to 1000000", NULL },
	{ "rate_limit queue not a duration", "defaults:\n  rate_limit: {queue: 5}\n" ONE_PROFILE, 2,
	  23, "not a duration", NULL },
	{ "rate_limit queue over 24h", "defaults:\n  rate_limit: {queue: 25h}\n" ONE_PROFILE, 2, 23,
	  "24h", NULL },
	{ "rate_limit share unknown", "defaults:\n  rate_limit: {share: global}\n" ONE_PROFILE, 2,
	  23, "rate_limit.share 'global' is not one of: local, fleet", NULL },
	{ "rate_limit unknown key", "defaults:\n  rate_limit: {rat: 10/s}\n" ONE_PROFILE, 2, 16,
	  "unknown key 'rat' in rate_limit (did you mean 'rate'?)", NULL },
	{ "rate_limit not a mapping", "defaults:\n  rate_limit: 10/s\n" ONE_PROFILE, 2, 15,
	  "mapping", NULL },
	{ "ratelimit_headers unknown", "defaults:\n  ratelimit_headers: follow\n" ONE_PROFILE, 2,
	  22, "ratelimit_headers 'follow' is not one of: pace, ignore", NULL },
	{ "cache max_entry over max_bytes",
	  "cache: {max_bytes: 1MiB, max_entry: 2MiB}\n" ONE_PROFILE, 1, 8,
	  "cache.max_entry (2097152 bytes) is larger than cache.max_bytes", NULL },
	{ "cache max_entry 0", "cache: {max_entry: 0}\n" ONE_PROFILE, 1, 20, "cache.max_entry",
	  NULL },
	{ "cache unknown store key", "cache: {enabled: true}\n" ONE_PROFILE, 1, 9,
	  "unknown key 'enabled' in cache", NULL },
	{ "cache key_headers twice",
	  "defaults:\n  cache: {key_headers: [Accept, accept]}\n" ONE_PROFILE, 2, 33,
	  "cache.key_headers names 'accept' twice", NULL },
	{ "cache key_headers not a name",
	  "defaults:\n  cache: {key_headers: [\"a b\"]}\n" ONE_PROFILE, 2, 25,
	  "cache.key_headers 'a b' is not a valid header name", NULL },
	{ "cache key_headers too many",
	  "defaults:\n  cache: {key_headers: [a, b, c, d, e, f, g, h, i]}\n" ONE_PROFILE, 2, 24,
	  "cache.key_headers names more than 8 headers", NULL },
	{ "cache key_headers not a list", "defaults:\n  cache: {key_headers: Accept}\n" ONE_PROFILE,
	  2, 24, "cache.key_headers must be a list", NULL },
	{ "cache ttl not a duration", "defaults:\n  cache: {ttl: forever}\n" ONE_PROFILE, 2, 16,
	  "not a duration", NULL },
	{ "route rate_limit burst 0", ROUTE_PROFILE("GET /x") "        rate_limit: {burst: 0}\n", 6,
	  29, "rate_limit.burst", NULL },
	{ "route rate_limit burst without rate",
	  ROUTE_PROFILE("GET /x") "        rate_limit: {burst: 3}\n", 6, 29,
	  "rate_limit.burst on a route needs its own rate_limit.rate", NULL },
	{ "route rate_limit share without rate",
	  ROUTE_PROFILE("GET /x") "        rate_limit: {share: local}\n", 6, 29,
	  "rate_limit.share on a route needs its own rate_limit.rate", NULL },
	{ "route rate_limit unknown key",
	  ROUTE_PROFILE("GET /x") "        rate_limit: {burts: 2}\n", 6, 22,
	  "unknown key 'burts' in rate_limit", NULL },
	/* units and ranges */
	{ "bad duration", "shutdown_grace: 2 seconds\n" ONE_PROFILE, 1, 17, "not a duration",
	  NULL },
	{ "bare number duration", "defaults:\n  timeouts: {total: 5}\n" ONE_PROFILE, 2, 21,
	  "not a duration", NULL },
	{ "duration over 24h", "shutdown_grace: 25h\n" ONE_PROFILE, 1, 17, "24h", NULL },
	{ "zero total timeout", "defaults:\n  timeouts: {total: 0s}\n" ONE_PROFILE, 2, 21,
	  "greater than 0", NULL },
	{ "bad size", "limits:\n  max_request_body: 1MB\n" ONE_PROFILE, 2, 21, "not a size", NULL },
	{ "size over 1GiB", "limits:\n  max_response_body: 2GiB\n" ONE_PROFILE, 2, 22, "1GiB",
	  NULL },
	{ "attempts 0", "defaults:\n  retry:\n    attempts: 0\n" ONE_PROFILE, 3, 15,
	  "retry.attempts must be an integer from 1 to 10", NULL },
	{ "attempts 11", "defaults:\n  retry:\n    attempts: 11\n" ONE_PROFILE, 3, 15,
	  "retry.attempts", NULL },
	{ "status out of range", "defaults:\n  retry:\n    statuses: [503, 200]\n" ONE_PROFILE, 3,
	  21, "status", NULL },
	{ "unknown method", "defaults:\n  retry:\n    methods: [GET, get]\n" ONE_PROFILE, 3, 20,
	  "'get'", NULL },
	{ "attempt over total", "defaults:\n  timeouts: {attempt: 20s}\n" ONE_PROFILE, 2, 3,
	  "timeouts.attempt", NULL },
	{ "backoff base over max",
	  "defaults:\n  retry:\n    backoff: {base: 5s, max: 1s}\n" ONE_PROFILE, 2, 3,
	  "backoff.base", NULL },
	/* upstream URLs */
	{ "ftp url", UPSTREAM_PROFILE("ftp://127.0.0.1/x"), 3, 15, "http:// or https://", NULL },
	{ "url without host", UPSTREAM_PROFILE("http:///x"), 3, 15, "no host", NULL },
	{ "url with credentials", UPSTREAM_PROFILE("\"http://user:hunter2@127.0.0.1/\""), 3, 15,
	  "credentials", "hunter2" },
	{ "url port too big", UPSTREAM_PROFILE("http://127.0.0.1:99999"), 3, 15, "port", NULL },
	{ "url port zero", UPSTREAM_PROFILE("http://127.0.0.1:0"), 3, 15, "port", NULL },
	{ "url port not a number", UPSTREAM_PROFILE("http://127.0.0.1:http/"), 3, 15, "port",
	  NULL },
	{ "url empty port", UPSTREAM_PROFILE("http://127.0.0.1:/"), 3, 15, "port", NULL },
	{ "url with query", UPSTREAM_PROFILE("http://127.0.0.1/x?a=1"), 3, 15, "query", NULL },
	/* profiles */
	{ "bad profile name", "profiles:\n  Weather:\n    upstream: http://127.0.0.1:9\n", 2, 3,
	  "'Weather'", NULL },
	{ "profile name too long",
	  "profiles:\n  a234567890123456789012345678901234567890123456789012345678901234:\n"
	  "    upstream: http://127.0.0.1:9\n",
	  2, 3, "profile name", NULL },
	{ "missing upstream", "profiles:\n  p:\n    routes_only: true\n", 2, 3, "no upstream",
	  NULL },
	{ "profile not a mapping", "profiles:\n  p: http://127.0.0.1:9\n", 2, 6, "mapping", NULL },
	{ "no profiles", "listen: 127.0.0.1:7070\n", 1, 1, "profiles: {}", NULL },
	{ "null profiles", "listen: 127.0.0.1:7070\nprofiles:\n", 2, 10, "mapping", NULL },
	{ "empty file", "", 1, 1, "no profiles", NULL },
	{ "not a mapping", "- a\n- b\n", 1, 1, "mapping", NULL },
	/* secrets and headers */
	{ "unset env", HEADER_PROFILE("\"Bearer ${BRACED_UT_UNSET}\""), 5, 22,
	  "'BRACED_UT_UNSET' is not set", NULL },
	{ "bad env name", HEADER_PROFILE("\"${1ABC}\""), 5, 22, "environment variable name", NULL },
	{ "unterminated reference", HEADER_PROFILE("\"Bearer ${ABC\""), 5, 22, "unterminated",
	  NULL },
	{ "missing secret file", HEADER_PROFILE("\"${file:/nonexistent-braced-ut/secret}\""), 5, 22,
	  "secret file", NULL },
	{ "CR/LF from env", HEADER_PROFILE("\"Bearer ${BRACED_UT_CRLF}\""), 5, 22, "CR, LF",
	  "s3cr3t" },
	{ "CR/LF written", HEADER_PROFILE("\"a\\r\\nX-Evil: 1\""), 5, 22, "CR, LF", "X-Evil" },
	{ "reserved Host",
	  "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    headers:\n"
	  "      Host: example.com\n",
	  5, 7, "'Host' cannot be set", NULL },
	{ "reserved content-length",
	  "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n"
	  "    headers:\n      content-length: 5\n",
	  5, 7, "cannot be set", NULL },
	{ "reserved Brace-",
	  "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    headers:\n"
	  "      Brace-Timeout-Ms: 5\n",
	  5, 7, "cannot be set", NULL },
	{ "header set twice",
	  "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    headers:\n"
	  "      X-A: 1\n      x-a: 2\n",
	  6, 7, "set twice", NULL },
	{ "ca_file from env",
	  "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n"
	  "    tls: {ca_file: \"${BRACED_UT_CA}\"}\n",
	  4, 20, "ca_file", "s3cr3t-ca" },
	{ "bad url from env", UPSTREAM_PROFILE("\"${BRACED_UT_BADURL}\""), 3, 15, "http://",
	  "s3cr3t" },
	{ "bad header name",
	  "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    headers:\n"
	  "      \"X Bad\": 5\n",
	  5, 7, "header name", NULL },
	{ "header_timeout zero", "limits:\n  header_timeout: 0s\n" ONE_PROFILE, 2, 19,
	  "limits.header_timeout must be greater than 0", NULL },
	{ "body_timeout not a duration", "limits:\n  body_timeout: soon\n" ONE_PROFILE, 2, 17,
	  "limits.body_timeout 'soon'", NULL },
	{ "idle_timeout too long", "limits:\n  idle_timeout: 25h\n" ONE_PROFILE, 2, 17,
	  "longer than 24h", NULL },
	/* listeners */
	{ "listen without port", "listen: localhost\n" ONE_PROFILE, 1, 9, "HOST:PORT", NULL },
	{ "listen port too big", "listen: 127.0.0.1:70000\n" ONE_PROFILE, 1, 9, "port", NULL },
	{ "listen bare ipv6", "listen: \"::1:7070\"\n" ONE_PROFILE, 1, 9, "HOST:PORT", NULL },
	{ "listen relative unix", "listen: unix:braced.sock\n" ONE_PROFILE, 1, 9, "absolute path",
	  NULL },
	{ "listen list item", "listen:\n  - 127.0.0.1:7070\n  - nowhere\n" ONE_PROFILE, 3, 5,
	  "HOST:PORT", NULL },
	{ "listen empty list", "listen: []\n" ONE_PROFILE, 1, 9, "at least one", NULL },
	{ "admin address", "admin: 7071\n" ONE_PROFILE, 1, 8, "HOST:PORT", NULL },
	/* routes */
	{ "match without slash", ROUTE_PROFILE("GET v1"), 5, 16, "METHOD /PATH", NULL },
	{ "match unknown method", ROUTE_PROFILE("FETCH /x"), 5, 16, "'FETCH'", NULL },
	{ "match lowercase method", ROUTE_PROFILE("get /x"), 5, 16, "'get'", NULL },
	{ "match no method", ROUTE_PROFILE("/x"), 5, 16, "METHOD /PATH", NULL },
	{ "match ** inside", ROUTE_PROFILE("GET /a/**/b"), 5, 16, "/**", NULL },
	{ "match bad placeholder", ROUTE_PROFILE("GET /a/{id"), 5, 16, "placeholder", NULL },
	{ "match colon placeholder", ROUTE_PROFILE("GET /users/:id/orders"), 5, 16,
	  "':id' is not a placeholder: write '{id}'", NULL },
	{ "match encoded slash", ROUTE_PROFILE("GET /v1/a%2Fb"), 5, 16, "refused", NULL },
	{ "match encoded backslash", ROUTE_PROFILE("GET /v1/a%5cb"), 5, 16, "refused", NULL },
	{ "match encoded nul", ROUTE_PROFILE("GET /v1/a%00"), 5, 16, "refused", NULL },
	{ "match bad escape", ROUTE_PROFILE("GET /v1/a%zz"), 5, 16, "refused", NULL },
	{ "match dot segment", ROUTE_PROFILE("GET /v1/%2e%2E/x"), 5, 16, "refused", NULL },
	{ "match_case unknown",
	  "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    match_case: ignore\n", 4, 17,
	  "sensitive, insensitive", NULL },
	{ "route without match",
	  "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n    routes:\n"
	  "      - timeouts: {total: 1s}\n",
	  5, 9, "no 'match'", NULL },
	{ "bad schema mode", ROUTE_PROFILE("GET /x") "        request: {mode: strict}\n", 6, 25,
	  "strict", NULL },
	{ "schema not a mapping", ROUTE_PROFILE("GET /x") "        request: {body: [1]}\n", 6, 25,
	  "schema", NULL },
};

static void prepare_env(void)
{
	unsetenv("BRACED_UT_UNSET");
	setenv("BRACED_UT_CRLF", "s3cr3t\r\nX-Evil: 1", 1);
	setenv("BRACED_UT_CA", "/nonexistent/s3cr3t-ca.pem", 1);
	setenv("BRACED_UT_BADURL", "ftp://user:s3cr3t@127.0.0.1/", 1);
}

static void assert_prefix(const char *what, const char *line, unsigned l, unsigned c)
{
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", CFG_PATH, l, c);
	ck_assert_msg(strncmp(line, prefix, strlen(prefix)) == 0,
		      "%s: expected prefix '%s', got '%s'", what, prefix, line);
}

START_TEST(test_error_table)
{
	const struct err_case *c = &err_cases[_i];
	struct config_errors errs;
	struct config *cfg;

	prepare_env();
	cfg = load_at(CFG_PATH, c->text, &errs);
	ck_assert_msg(cfg == NULL, "%s: accepted", c->what);
	ck_assert_msg(errs.count >= 1, "%s: no error reported", c->what);
	assert_prefix(c->what, errs.lines[0], c->line, c->col);
	ck_assert_msg(strstr(errs.lines[0], c->word) != NULL, "%s: '%s' not in '%s'", c->what,
		      c->word, errs.lines[0]);
	for (size_t i = 0; c->secret && i < errs.count; i++)
		ck_assert_msg(strstr(errs.lines[i], c->secret) == NULL, "%s: secret shown in '%s'",
			      c->what, errs.lines[i]);
	config_errors_release(&errs);
	ck_assert_uint_eq(errs.count, 0);
	config_unref(cfg);
}
END_TEST

/* Every error of a file is reported, each with its own position. */
START_TEST(test_many_errors)
{
	static const char text[] = "listen: nowhere\n"                  /* 1 */
				   "log:\n"                             /* 2 */
				   "  level: loud\n"                    /* 3 */
				   "limits:\n"                          /* 4 */
				   "  max_request_body: 1MB\n"          /* 5 */
				   "defaults:\n"                        /* 6 */
				   "  timeouts:\n"                      /* 7 */
				   "    conect: 1s\n"                   /* 8 */
				   "profiles:\n"                        /* 9 */
				   "  Weather:\n"                       /* 10 */
				   "    upstream: ftp://x\n"            /* 11 */
				   "  ok:\n"                            /* 12 */
				   "    upstream: http://127.0.0.1:9\n" /* 13 */
				   "    routes:\n"                      /* 14 */
				   "      - match: FETCH /x\n"          /* 15 */
				   "      - match: GET /y\n"            /* 16 */
				   "        retry: {attempts: 0}\n";    /* 17 */
	static const struct {
		unsigned line, col;
		const char *word;
	} want[] = {
		{ 1, 9, "HOST:PORT" }, { 3, 10, "loud" },      { 5, 21, "size" },
		{ 8, 5, "conect" },    { 10, 3, "Weather" },   { 11, 15, "http" },
		{ 15, 16, "FETCH" },   { 17, 27, "attempts" },
	};
	struct config_errors errs;
	struct config *cfg = load_at(CFG_PATH, text, &errs);

	ck_assert_ptr_null(cfg);
	ck_assert_uint_ge(errs.count, 3);
	ck_assert_msg(errs.count == N(want), "%zu errors, last: %s", errs.count,
		      errs.lines[errs.count - 1]);
	ck_assert_uint_eq(errs.dropped, 0);
	for (int i = 0; i < N(want); i++) {
		assert_prefix("many errors", errs.lines[i], want[i].line, want[i].col);
		ck_assert_msg(strstr(errs.lines[i], want[i].word), "'%s' not in '%s'", want[i].word,
			      errs.lines[i]);
	}
	config_errors_release(&errs);
}
END_TEST

/* Errors come out in file order whatever the order of the sections. */
START_TEST(test_errors_in_file_order)
{
	static const char text[] = "profiles:\n"                  /* 1 */
				   "  p:\n"                       /* 2 */
				   "    upstream: ftp://x\n"      /* 3 */
				   "    timeouts: {total: 2 s}\n" /* 4 */
				   "listen: nowhere\n"            /* 5 */
				   "bogus: 1\n";                  /* 6 */
	struct config_errors errs;
	struct config *cfg = load_at(CFG_PATH, text, &errs);
	unsigned prev = 0;

	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 4);
	for (size_t i = 0; i < errs.count; i++) {
		unsigned line = 0;

		ck_assert_int_eq(sscanf(errs.lines[i] + strlen(CFG_PATH), ":%u:", &line), 1);
		ck_assert_msg(line >= prev, "error %zu out of file order: %s (after line %u)", i,
			      errs.lines[i], prev);
		prev = line;
	}
	config_errors_release(&errs);
}
END_TEST

START_TEST(test_error_cap)
{
	char text[16384];
	size_t len = 0;
	struct config_errors errs;
	struct config *cfg;

	len += (size_t)snprintf(text + len, sizeof(text) - len, "profiles:\n");
	for (int i = 0; i < CONFIG_MAX_ERRORS + 20; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"  P%d: {upstream: http://h}\n", i);
	cfg = load_at(CFG_PATH, text, &errs);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, CONFIG_MAX_ERRORS);
	ck_assert_uint_eq(errs.dropped, 20);
	assert_prefix("error cap", errs.lines[0], 2, 3);
	assert_prefix("error cap", errs.lines[CONFIG_MAX_ERRORS - 1], CONFIG_MAX_ERRORS + 1, 3);
	config_errors_release(&errs);
	ck_assert_uint_eq(errs.count, 0);
	ck_assert_uint_eq(errs.dropped, 0);
}
END_TEST

/* Every name of every enum table (names.h) loads as the enum value at its
 * index: the tables the admin API writes back are the loader's own. */
START_TEST(test_enum_names_round_trip)
{
	static const struct {
		const char *const *names;
		const char *fmt; /* the configuration, with %s for the name */
	} tables[] = {
		{ jitter_names, "defaults: {retry: {backoff: {jitter: %s}}}\nprofiles: {}\n" },
		{ unsafe_retry_names, "defaults: {retry: {unsafe: %s}}\nprofiles: {}\n" },
		{ upstream_errors_names, "defaults: {upstream_errors: %s}\nprofiles: {}\n" },
		{ schema_formats_names, "defaults: {schema_formats: %s}\nprofiles: {}\n" },
		{ trace_mode_names, "defaults: {tracing: {traceparent: %s}}\nprofiles: {}\n" },
		{ log_format_names, "log: {format: %s}\nprofiles: {}\n" },
		{ log_level_names, "log: {level: %s}\nprofiles: {}\n" },
		{ match_case_names, "profiles: {p: {upstream: 'http://h', match_case: %s}}\n" },
		{ transport_kind_names, "defaults: {retry: {transport: [%s]}}\nprofiles: {}\n" },
		{ fleet_share_names, "fleet: {share: [%s]}\nprofiles: {}\n" },
		{ endpoint_balance_names, "defaults: {endpoints: {balance: %s}}\nprofiles: {}\n" },
		{ schema_mode_names, "profiles: {p: {upstream: 'http://h', routes: "
				     "[{match: 'GET /a', request: {mode: %s}}]}}\n" },
	};

	for (int t = 0; t < N(tables); t++) {
		for (int i = 0; tables[t].names[i]; i++) {
			const char *const *names = tables[t].names;
			struct config *cfg;
			char text[256];
			int got = -1;

			snprintf(text, sizeof(text), tables[t].fmt, names[i]);
			cfg = load_ok(text);
			if (names == jitter_names)
				got = (int)cfg->defaults.retry.jitter;
			else if (names == unsafe_retry_names)
				got = (int)cfg->defaults.retry.unsafe;
			else if (names == upstream_errors_names)
				got = (int)cfg->defaults.upstream_errors;
			else if (names == schema_formats_names)
				got = (int)cfg->defaults.schema_formats;
			else if (names == trace_mode_names)
				got = (int)cfg->defaults.trace_mode;
			else if (names == log_format_names)
				got = (int)cfg->log_format;
			else if (names == log_level_names)
				got = (int)cfg->log_level;
			else if (names == match_case_names)
				got = profile(cfg, "p")->fold_case;
			else if (names == transport_kind_names)
				got = cfg->defaults.retry.transport == 1u << i ? i : -1;
			else if (names == fleet_share_names)
				got = cfg->fleet.share == 1u << i ? i : -1;
			else if (names == endpoint_balance_names)
				got = (int)cfg->defaults.endpoints.balance;
			else if (names == schema_mode_names)
				got = (int)profile(cfg, "p")->routes[0].request.mode;
			ck_assert_msg(got == i, "'%s' loaded as %d, not %d", names[i], got, i);
			config_unref(cfg);
		}
	}
	ck_assert_str_eq(jitter_names[JITTER_DECORRELATED], "decorrelated");
	ck_assert_str_eq(trace_mode_names[TRACE_GENERATE], "generate");
	ck_assert_str_eq(log_level_names[LOG_DEBUG], "debug");
	ck_assert_str_eq(schema_mode_names[SCHEMA_MODE_ENFORCE], "enforce");
	ck_assert_str_eq(upstream_errors_names[UPSTREAM_ERRORS_PASSTHROUGH], "passthrough");
	ck_assert_uint_eq(TRANSPORT_TIMEOUT, 1u << 2);
	ck_assert_str_eq(transport_kind_names[2], "timeout");
	ck_assert_uint_eq(FLEET_SHARE_BUDGET, 1u << 2);
	ck_assert_str_eq(fleet_share_names[2], "budget");
}
END_TEST

/* The one error text loading text gives (the test fails on none or more). */
static void load_one_error(const char *text, const char *want)
{
	struct config_errors errs;
	struct config *cfg = load_at(CFG_PATH, text, &errs);

	ck_assert_ptr_null(cfg);
	ck_assert_msg(errs.count == 1 && strstr(errs.lines[0], want), "got %zu errors, first: %s",
		      errs.count, errs.count ? errs.lines[0] : "-");
	config_errors_release(&errs);
}

/* SPEC 2 and 4.11: endpoints (defaults and overrides), addresses
 * (numeric, normalized, no duplicates), the URL's host and port, dns. */
START_TEST(test_endpoints_keys)
{
	struct config *cfg = load_ok(
	    "dns: {nameservers: ['127.0.0.1:5353', '::1', '[::1]:53', '10.0.0.1']}\n"
	    "defaults:\n  endpoints: {balance: round_robin, eject: {consecutive_failures: 3, "
	    "base: 2s, max: 1m, max_percent: 34}, retry_elsewhere: false, resolve_every: 5s}\n"
	    "profiles:\n"
	    "  a: {upstream: 'https://api.example/v1', addresses: ['10.0.0.5:443', "
	    "'[2001:DB8::0:1]:8443']}\n"
	    "  b: {upstream: 'http://[::1]:8080', endpoints: {balance: peak_ewma}}\n"
	    "  c: {upstream: 'http://name.example:81/x'}\n");
	const struct profile *a = profile(cfg, "a"), *b = profile(cfg, "b"), *c = profile(cfg, "c");

	ck_assert_int_eq(cfg->defaults.endpoints.balance, ENDPOINT_ROUND_ROBIN);
	ck_assert_uint_eq(cfg->defaults.endpoints.consecutive_failures, 3);
	ck_assert_uint_eq(cfg->defaults.endpoints.eject_base_ms, 2000);
	ck_assert_uint_eq(cfg->defaults.endpoints.eject_max_ms, 60000);
	ck_assert_uint_eq(cfg->defaults.endpoints.max_percent, 34);
	ck_assert_int_eq(cfg->defaults.endpoints.retry_elsewhere, 0);
	ck_assert_uint_eq(cfg->defaults.endpoints.resolve_every_ms, 5000);
	ck_assert_uint_eq(a->naddresses, 2);
	ck_assert_str_eq(a->addresses[0], "10.0.0.5:443");
	ck_assert_str_eq(a->addresses[1], "[2001:db8::1]:8443");
	ck_assert_str_eq(a->host, "api.example");
	ck_assert_uint_eq(a->port, 443);
	ck_assert_int_eq(b->policy.endpoints.balance, ENDPOINT_PEAK_EWMA);
	ck_assert_uint_eq(b->policy.endpoints.consecutive_failures, 3); /* inherited */
	ck_assert_str_eq(b->host, "::1");
	ck_assert_uint_eq(b->port, 8080);
	ck_assert_str_eq(c->host, "name.example");
	ck_assert_uint_eq(c->port, 81);
	ck_assert_uint_eq(cfg->dns.nnameservers, 4);
	ck_assert_str_eq(cfg->dns.nameservers[0], "127.0.0.1:5353");
	ck_assert_str_eq(cfg->dns.nameservers[1], "[::1]:53");
	ck_assert_str_eq(cfg->dns.nameservers[2], "[::1]:53");
	ck_assert_str_eq(cfg->dns.nameservers[3], "10.0.0.1:53");
	config_unref(cfg);

	/* The built-in defaults are SPEC 2's. */
	cfg = load_ok("profiles: {p: {upstream: 'http://h'}}\n");
	ck_assert_int_eq(cfg->defaults.endpoints.balance, ENDPOINT_PEAK_EWMA);
	ck_assert_uint_eq(cfg->defaults.endpoints.consecutive_failures, 5);
	ck_assert_uint_eq(cfg->defaults.endpoints.eject_base_ms, 10000);
	ck_assert_uint_eq(cfg->defaults.endpoints.eject_max_ms, 300000);
	ck_assert_uint_eq(cfg->defaults.endpoints.max_percent, 50);
	ck_assert_int_eq(cfg->defaults.endpoints.retry_elsewhere, 1);
	ck_assert_uint_eq(cfg->defaults.endpoints.resolve_every_ms, 30000);
	ck_assert_uint_eq(profile(cfg, "p")->port, 80);
	config_unref(cfg);

	load_one_error("profiles: {p: {upstream: 'http://h', addresses: ['h.example:80']}}\n",
		       "must be a numeric IPv4 or [IPv6] address");
	load_one_error("profiles: {p: {upstream: 'http://h', addresses: ['10.0.0.1']}}\n",
		       "must be ADDR:PORT");
	load_one_error("profiles: {p: {upstream: 'http://h', addresses: ['::1:80']}}\n",
		       "must be a numeric IPv4 or [IPv6] address");
	load_one_error("profiles: {p: {upstream: 'http://h', addresses: ['10.0.0.1:80', "
		       "'10.0.0.01:80']}}\n",
		       "must be a numeric");
	load_one_error("profiles: {p: {upstream: 'http://h', addresses: ['10.0.0.1:80', "
		       "'10.0.0.1:80']}}\n",
		       "is given twice");
	load_one_error("profiles: {p: {upstream: 'http://h', addresses: []}}\n",
		       "addresses takes from 1 to 64 entries");
	load_one_error("profiles: {p: {upstream: 'http://h', routes: [{match: 'GET /a', "
		       "endpoints: {balance: round_robin}}]}}\n",
		       "endpoints belongs to the profile");
	load_one_error("defaults: {endpoints: {eject: {base: 2m, max: 1m}}}\nprofiles: {}\n",
		       "endpoints.eject.base is longer than endpoints.eject.max");
	load_one_error("defaults: {endpoints: {eject: {max_percent: 101}}}\nprofiles: {}\n",
		       "max_percent");
	load_one_error("defaults: {endpoints: {balance: least_conn}}\nprofiles: {}\n", "balance");
	load_one_error("dns: {nameservers: ['dns.example']}\nprofiles: {}\n",
		       "must be a numeric IP address");
	load_one_error("dns: {hosts_file: /nonexistent/hosts}\nprofiles: {}\n",
		       "dns.hosts_file '/nonexistent/hosts' cannot be read");
	load_one_error("dns: {hosts_file: /tmp}\nprofiles: {}\n",
		       "dns.hosts_file '/tmp' is not a regular file");
}
END_TEST

/* SPEC 3.1's limits: defaults, bounds, and a budget that holds what is
 * held whole. */
START_TEST(test_streaming_limits)
{
	const char *prof = "profiles:\n  p:\n    upstream: http://127.0.0.1:9\n";
	char text[512];
	struct config *cfg = load_ok(prof);

	ck_assert_uint_eq(cfg->stream_buffer, 256 * 1024);
	ck_assert_uint_eq(cfg->retry_buffer, 1024 * 1024);
	ck_assert_uint_eq(cfg->max_buffered, 64 * 1024 * 1024);
	ck_assert_uint_eq(cfg->defaults.timeouts.stream_ms, 0);
	config_unref(cfg);
	snprintf(text, sizeof(text),
		 "limits: {stream_buffer: 64KiB, retry_buffer: 2MiB, max_buffered: 8MiB}\n"
		 "defaults: {timeouts: {stream: 5m}}\n%s"
		 "    routes:\n      - match: GET /sse\n        timeouts: {stream: 0s}\n",
		 prof);
	cfg = load_ok(text);
	ck_assert_uint_eq(cfg->stream_buffer, 64 * 1024);
	ck_assert_uint_eq(cfg->retry_buffer, 2 * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_buffered, 8 * 1024 * 1024);
	ck_assert_uint_eq(cfg->defaults.timeouts.stream_ms, 300000);
	ck_assert_uint_eq(profile(cfg, "p")->policy.timeouts.stream_ms, 300000);
	config_unref(cfg);
	snprintf(text, sizeof(text), "limits: {stream_buffer: 16KiB}\n%s", prof);
	load_one_error(text, "stream_buffer must be at least 65536 bytes");
	snprintf(text, sizeof(text), "limits: {stream_buffer: 9MiB}\n%s", prof);
	load_one_error(text, "stream_buffer must be at most 8388608 bytes");
	snprintf(text, sizeof(text), "limits: {max_buffered: 4MiB}\n%s", prof);
	load_one_error(text, "must be at least limits.max_response_body");
	snprintf(text, sizeof(text),
		 "limits: {max_buffered: 4MiB, max_response_body: 1MiB, retry_buffer: 5MiB}\n%s",
		 prof);
	load_one_error(text, "must be at least limits.retry_buffer");
	snprintf(text, sizeof(text),
		 "limits: {max_buffered: 2MiB, max_response_body: 1MiB, retry_buffer: 1MiB}\n%s",
		 prof);
	load_one_error(text, "must be larger than limits.max_validated_body");
}
END_TEST

/* SPEC 4.12: rate_limit and ratelimit_headers, built-in, set at each
 * level, and the limiter's scope: a route with its own rate_limit names
 * its own (its label), the others share the profile's (NULL). */
/* cache: the store at the top level, the policy on defaults, profile and
 * route, merged key by key; key_headers replaced whole. */
START_TEST(test_cache_keys)
{
	struct config *cfg = load_ok(ONE_PROFILE);
	const struct profile *p;

	ck_assert_uint_eq(cfg->cache.max_bytes, 0);
	ck_assert_uint_eq(cfg->cache.max_entry, 1024 * 1024);
	ck_assert_int_eq(cfg->defaults.cache.enabled, 0);
	ck_assert_int_eq(cfg->defaults.cache.coalesce, 1);
	ck_assert_uint_eq(cfg->defaults.cache.nkey_headers, 0);
	config_unref(cfg);

	cfg = load_ok(
	    "cache: {max_bytes: 64MiB, max_entry: 512KiB}\n"
	    "defaults:\n"
	    "  cache: {enabled: true, ttl: 30s, key_headers: [Authorization, Accept]}\n"
	    "profiles:\n"
	    "  p:\n"
	    "    upstream: http://127.0.0.1:9\n"
	    "    cache: {stale_if_error: 5m, stale_while_revalidate: 10s, coalesce: false}\n"
	    "    routes:\n"
	    "      - match: GET /x\n"
	    "        cache: {enabled: false, key_headers: [Cookie]}\n");
	ck_assert_uint_eq(cfg->cache.max_bytes, 64ULL << 20);
	ck_assert_uint_eq(cfg->cache.max_entry, 512 << 10);
	p = profile(cfg, "p");
	ck_assert_int_eq(p->policy.cache.enabled, 1);
	ck_assert_uint_eq(p->policy.cache.ttl_ms, 30000);
	ck_assert_uint_eq(p->policy.cache.stale_if_error_ms, 300000);
	ck_assert_uint_eq(p->policy.cache.stale_while_revalidate_ms, 10000);
	ck_assert_int_eq(p->policy.cache.coalesce, 0);
	ck_assert_uint_eq(p->policy.cache.nkey_headers, 2);
	ck_assert_str_eq(p->policy.cache.key_headers[0], "Authorization");
	ck_assert_str_eq(p->policy.cache.key_headers[1], "Accept");
	ck_assert_int_eq(p->routes[0].policy.cache.enabled, 0);
	ck_assert_uint_eq(p->routes[0].policy.cache.ttl_ms, 30000);
	ck_assert_uint_eq(p->routes[0].policy.cache.nkey_headers, 1);
	ck_assert_str_eq(p->routes[0].policy.cache.key_headers[0], "Cookie");
	config_unref(cfg);
}
END_TEST

START_TEST(test_rate_limit_keys)
{
	const struct profile *p, *q;
	const struct rate_limit_policy *rl;
	struct config *cfg;

	cfg = load_ok(ONE_PROFILE);
	rl = &cfg->defaults.rate_limit;
	ck_assert_uint_eq(rl->count, 0);
	ck_assert_uint_eq(rl->per_us, 1000000);
	ck_assert_uint_eq(rl->burst, 1);
	ck_assert_uint_eq(rl->queue_ms, 1000);
	ck_assert_int_eq(rl->share, RATE_SHARE_LOCAL);
	ck_assert_ptr_null(rl->scope);
	ck_assert_int_eq(cfg->defaults.ratelimit_headers, RATELIMIT_HEADERS_PACE);
	ck_assert_uint_eq(profile(cfg, "p")->policy.rate_limit.count, 0);
	config_unref(cfg);

	cfg = load_ok("fleet: {redis: \"redis://127.0.0.1:6379/0\", secret: "
		      "\"0123456789abcdef0123456789abcdef\"}\n"
		      "defaults:\n"
		      "  rate_limit: {rate: 100/s, burst: 5, queue: 250ms, share: fleet}\n"
		      "  ratelimit_headers: ignore\n"
		      "profiles:\n"
		      "  p:\n"
		      "    upstream: http://127.0.0.1:9\n"
		      "    rate_limit: {rate: 6000/m}\n"
		      "    ratelimit_headers: pace\n"
		      "    routes:\n"
		      "      - match: GET /own\n"
		      "        rate_limit: {rate: 1/250ms}\n"
		      "      - match: GET /shared\n"
		      "        timeouts: {total: 2s}\n"
		      "      - match: GET /queue\n"
		      "        rate_limit: {queue: 0s}\n"
		      "  q:\n"
		      "    upstream: http://127.0.0.1:9\n");
	rl = &cfg->defaults.rate_limit;
	ck_assert_uint_eq(rl->count, 100);
	ck_assert_uint_eq(rl->per_us, 1000000);
	ck_assert_uint_eq(rl->burst, 5);
	ck_assert_uint_eq(rl->queue_ms, 250);
	ck_assert_int_eq(rl->share, RATE_SHARE_FLEET);
	ck_assert_int_eq(cfg->defaults.ratelimit_headers, RATELIMIT_HEADERS_IGNORE);
	/* q inherits the defaults whole. */
	q = profile(cfg, "q");
	ck_assert_uint_eq(q->policy.rate_limit.count, 100);
	ck_assert_ptr_null(q->policy.rate_limit.scope);
	ck_assert_int_eq(q->policy.ratelimit_headers, RATELIMIT_HEADERS_IGNORE);
	/* p overrides the rate, key by key: the rest is inherited; a
	 * profile's rate_limit is the profile's limiter. */
	p = profile(cfg, "p");
	rl = &p->policy.rate_limit;
	ck_assert_uint_eq(rl->count, 6000);
	ck_assert_uint_eq(rl->per_us, 60000000);
	ck_assert_uint_eq(rl->burst, 5);
	ck_assert_uint_eq(rl->queue_ms, 250);
	ck_assert_ptr_null(rl->scope);
	ck_assert_int_eq(p->policy.ratelimit_headers, RATELIMIT_HEADERS_PACE);
	ck_assert_uint_eq(p->nroutes, 3);
	/* A route with its own rate_limit: its own limiter, named by its label. */
	rl = &p->routes[0].policy.rate_limit;
	ck_assert_uint_eq(rl->count, 1);
	ck_assert_uint_eq(rl->per_us, 250000);
	ck_assert_uint_eq(rl->burst, 5);
	ck_assert_ptr_nonnull(rl->scope);
	ck_assert_str_eq(rl->scope, "GET /own");
	/* A route without one shares the profile's: same rate, no scope. */
	rl = &p->routes[1].policy.rate_limit;
	ck_assert_uint_eq(rl->count, 6000);
	ck_assert_uint_eq(rl->per_us, 60000000);
	ck_assert_ptr_null(rl->scope);
	/* Only a route's own rate gives it its own limiter: a queue of its
	 * own waits in the profile's. */
	rl = &p->routes[2].policy.rate_limit;
	ck_assert_uint_eq(rl->count, 6000);
	ck_assert_uint_eq(rl->queue_ms, 0);
	ck_assert_ptr_null(rl->scope);
	config_unref(cfg);

	/* The forms of a rate, and their ends. */
	cfg = load_ok("defaults: {rate_limit: {rate: 50000/h}}\n"
		      "profiles:\n"
		      "  a: {upstream: 'http://h', rate_limit: {rate: '100/10s'}}\n"
		      "  b: {upstream: 'http://h', rate_limit: {rate: 1/d}}\n"
		      "  c: {upstream: 'http://h', rate_limit: {rate: '1000000/1ms'}}\n"
		      "  d: {upstream: 'http://h', rate_limit: {rate: 0, burst: 1000000}}\n");
	ck_assert_uint_eq(cfg->defaults.rate_limit.count, 50000);
	ck_assert_uint_eq(cfg->defaults.rate_limit.per_us, 3600000000ULL);
	ck_assert_uint_eq(profile(cfg, "a")->policy.rate_limit.count, 100);
	ck_assert_uint_eq(profile(cfg, "a")->policy.rate_limit.per_us, 10000000);
	ck_assert_uint_eq(profile(cfg, "b")->policy.rate_limit.count, 1);
	ck_assert_uint_eq(profile(cfg, "b")->policy.rate_limit.per_us, 86400000000ULL);
	/* Exactly one attempt per nanosecond is allowed. */
	ck_assert_uint_eq(profile(cfg, "c")->policy.rate_limit.count, 1000000);
	ck_assert_uint_eq(profile(cfg, "c")->policy.rate_limit.per_us, 1000);
	ck_assert_uint_eq(profile(cfg, "d")->policy.rate_limit.count, 0);
	ck_assert_uint_eq(profile(cfg, "d")->policy.rate_limit.burst, 1000000);
	config_unref(cfg);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("valid");

	tcase_add_test(tc, test_full_file_top_level);
	tcase_add_test(tc, test_streaming_limits);
	tcase_add_test(tc, test_endpoints_keys);
	tcase_add_test(tc, test_rate_limit_keys);
	tcase_add_test(tc, test_cache_keys);
	tcase_add_test(tc, test_full_file_defaults);
	tcase_add_test(tc, test_full_file_profile_merge);
	tcase_add_test(tc, test_full_file_routes);
	tcase_add_test(tc, test_builtin_defaults);
	tcase_add_test(tc, test_latency_keys);
	tcase_add_test(tc, test_hedge_quantile_ends);
	tcase_add_test(tc, test_listeners);
	tcase_add_test(tc, test_upstream_forms);
	tcase_add_test(tc, test_secrets);
	tcase_add_test(tc, test_profiles_sorted_and_found);
	tcase_add_test(tc, test_empty_profiles);
	tcase_add_test(tc, test_enum_names_round_trip);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_error_table, 0, N(err_cases));
	tcase_add_test(tc, test_secret_file_inner_newline);
	tcase_add_test(tc, test_secret_file_not_regular);
	tcase_add_test(tc, test_many_errors);
	tcase_add_test(tc, test_errors_in_file_order);
	tcase_add_test(tc, test_error_cap);
	suite_add_tcase(s, tc);
	return s;
}

/* Admin endpoints. They read the server's state and render it; nothing
 * here changes a request or a profile. What a listener serves is decided
 * once, by the address it is bound to (SPEC 6). */
#include "admin.h"
#include "cache.h"
#include "clock.h"
#include "front.h"
#include "guard.h"
#include "log.h"
#include "names.h"
#include "strbuf.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Largest admin answer (metrics of 1024 profiles fit). */
#define ADMIN_MAX_BODY (16u * 1024 * 1024)

/* Backlog of the admin listening socket. */
#define ADMIN_BACKLOG 64

struct admin {
	struct server *srv;
	struct metrics_global *global;
	enum admin_scope scope; /* of the listener, from its bound address */
};

enum admin_endpoint {
	ADMIN_HEALTHZ,
	ADMIN_READYZ,
	ADMIN_METRICS,
	ADMIN_STATUS,
	ADMIN_CONFIG,
	ADMIN_CACHE_PURGE,
	ADMIN_NONE,
};

/* Path, and whether a probes-only listener serves it. */
static const struct {
	const char *path;
	int probe;
} endpoints[] = {
	[ADMIN_HEALTHZ] = { "/healthz", 1 }, [ADMIN_READYZ] = { "/readyz", 1 },
	[ADMIN_METRICS] = { "/metrics", 1 }, [ADMIN_STATUS] = { "/status", 0 },
	[ADMIN_CONFIG] = { "/config", 0 },   [ADMIN_CACHE_PURGE] = { "/cache/purge", 0 },
};

/* Answers req with b's text (its buffer handed to the server). */
static void reply(struct http_request *req, int status, const char *type, struct strbuf *b)
{
	const struct http_header h = { "Content-Type", 12, type, strlen(type) };
	size_t len = 0;
	char *body = strbuf_steal(b, &len);

	strbuf_release(b);
	http_reply(req, body ? status : 500, &h, 1, body, body ? len : 0);
}

static void add_key(struct strbuf *b, const char *key, int first)
{
	strbuf_addf(b, "%s\"%s\":", first ? "" : ",", key);
}

static void add_str(struct strbuf *b, const char *key, const char *v, int first)
{
	add_key(b, key, first);
	if (v)
		strbuf_add_json_string(b, v, strlen(v));
	else
		strbuf_adds(b, "null");
}

/* The metrics of every profile, from snapshots of their guards taken at
 * one reading of the clock. */
static void render_metrics(struct admin *a, struct strbuf *b)
{
	struct guard_snapshot *snaps;
	uint64_t now_us = clock_now_us();
	size_t n = 0, i = 0;
	struct guard *it;

	for (it = a->srv->guards; it; it = guard_next(it))
		n++;
	snaps = calloc(n ? n : 1, sizeof(*snaps));
	if (!snaps)
		return;
	for (it = a->srv->guards; it; it = guard_next(it))
		guard_snapshot(it, now_us, &snaps[i++]);
	a->global->held_bytes = a->srv->env.hold.held;
	a->global->held_max = a->srv->env.hold.max;
	a->global->hold_waiting = a->srv->env.hold.waiting;
	{
		struct cache_stats cs;

		cache_stats(&a->srv->env, &cs);
		a->global->cache_bytes = cs.bytes;
		a->global->cache_entries = cs.entries;
		a->global->cache_max_bytes = cs.max_bytes;
	}
	metrics_render(b, snaps, n, a->global);
	free(snaps);
}

/* A hedge delay in effect as JSON: ms, null when off, "pending" for pNN
 * without enough samples yet. */
static void render_hedge_delay(struct strbuf *b, struct guard_hedge_delay d)
{
	switch (d.kind) {
	case GUARD_DELAY_SET:
		strbuf_addf(b, "%u", d.ms);
		break;
	case GUARD_DELAY_PENDING:
		strbuf_adds(b, "\"pending\"");
		break;
	case GUARD_DELAY_OFF:
	default:
		strbuf_adds(b, "null");
		break;
	}
}

/* The hedge delay in effect, hedge results, and the concurrency limit.
 * Routes whose hedge differs from their profile's are listed by label with
 * the delay in effect for them (pNN reads the profile's estimate). */
static void render_latency_status(struct strbuf *b, const struct guard_snapshot *g,
				  struct guard *guard, const struct profile *p, uint64_t now_us)
{
	const struct hedge_policy *ph = &p->policy.hedge;
	int first = 1;

	strbuf_adds(b, "\"hedge\":{\"delay_ms\":");
	render_hedge_delay(b, g->hedge_delay);
	strbuf_addf(b, ",\"won\":%llu,\"lost\":%llu,\"cancelled\":%llu,\"routes\":{",
		    (unsigned long long)g->hedges[GUARD_HEDGE_WON],
		    (unsigned long long)g->hedges[GUARD_HEDGE_LOST],
		    (unsigned long long)g->hedges[GUARD_HEDGE_CANCELLED]);
	for (size_t i = 0; i < p->nroutes; i++) {
		const struct route *rt = &p->routes[i];
		const struct hedge_policy *rh = &rt->policy.hedge;
		uint32_t ms = 0;
		int r;

		if (rh->delay_ms == ph->delay_ms && rh->quantile == ph->quantile &&
		    rh->max == ph->max)
			continue;
		r = guard_hedge_delay(guard, now_us, rh, &ms);
		strbuf_adds(b, first ? "" : ",");
		first = 0;
		strbuf_add_json_string(b, rt->label, strlen(rt->label));
		strbuf_adds(b, ":{\"delay_ms\":");
		render_hedge_delay(b, guard_hedge_delay_of(r, ms));
		strbuf_addf(b, ",\"max\":%u}", rh->max);
	}
	strbuf_adds(b, "}},");
	strbuf_addf(b, "\"concurrency\":{\"adaptive\":%s,\"limit\":%u,\"min_rtt_ms\":%.1f},",
		    g->adaptive ? "true" : "false", g->concurrency_limit,
		    (double)g->min_rtt_us / 1000.0);
}

/* A profile's endpoints (SPEC 4.11): address, state, how long an ejection
 * has left, the cost peak_ewma compares, attempts in flight, ejections. */
static void render_endpoints_status(struct strbuf *b, const struct guard *g, uint64_t now_us)
{
	struct endpoint_snapshot eps[ENDPOINTS_MAX];
	size_t n = endpoints_snapshot(guard_endpoints(g), now_us, eps, ENDPOINTS_MAX);

	strbuf_adds(b, "\"endpoints\":[");
	for (size_t i = 0; i < n; i++) {
		const struct endpoint_snapshot *e = &eps[i];
		uint64_t left = e->ejected_until_us > now_us ? e->ejected_until_us - now_us : 0;

		strbuf_adds(b, i ? ",{\"address\":" : "{\"address\":");
		strbuf_add_json_string(b, e->name, strlen(e->name));
		strbuf_addf(b,
			    ",\"state\":\"%s\",\"ejected_until_ms\":%llu,\"cost_ms\":%.3f,"
			    "\"inflight\":%u,\"ejections\":%llu}",
			    e->state == ENDPOINT_EJECTED ? "ejected" : "active",
			    (unsigned long long)((left + 999) / 1000), (double)e->cost_us / 1000.0,
			    e->inflight, (unsigned long long)e->ejections);
	}
	strbuf_adds(b, "],");
}

/* A profile's rate limiters (SPEC 4.12): the configured rate, the quota
 * learned from the upstream, when the next attempt could start, and how
 * many wait for their slot. */
static void render_rate_limits_status(struct strbuf *b, const struct guard *g, uint64_t now_us)
{
	static const char *const by[] = { "none", "configured", "learned" };
	struct pace_view v[PACE_LIMITERS_MAX];
	size_t n = pace_views(guard_paces(g), now_us, v, PACE_LIMITERS_MAX);

	strbuf_adds(b, "\"rate_limits\":[");
	for (size_t i = 0; i < n; i++) {
		const struct gcra_snapshot *s = &v[i].gcra;

		strbuf_adds(b, i ? ",{\"route\":" : "{\"route\":");
		if (v[i].scope)
			strbuf_add_json_string(b, v[i].scope, strlen(v[i].scope));
		else
			strbuf_adds(b, "null");
		strbuf_addf(b, ",\"count\":%u,\"per_ms\":%llu,\"burst\":%u,\"learned\":", s->count,
			    (unsigned long long)(s->per_us / 1000), s->burst);
		if (s->learned)
			strbuf_addf(
			    b, "{\"remaining\":%llu,\"reset_ms\":%llu}",
			    (unsigned long long)s->learned_remaining,
			    (unsigned long long)(s->learned_reset_us > now_us
						     ? (s->learned_reset_us - now_us + 999) / 1000
						     : 0));
		else
			strbuf_adds(b, "null");
		strbuf_addf(b, ",\"next_slot_ms\":%llu,\"limited_by\":\"%s\",\"queue\":%u",
			    (unsigned long long)(s->next_free_us > now_us
						     ? (s->next_free_us - now_us + 999) / 1000
						     : 0),
			    by[s->next_by], v[i].queue);
		if (v[i].shared)
			strbuf_addf(b, ",\"fleet\":{\"instances\":%u,\"share_per_s\":%.3f}}",
				    v[i].instances, (double)v[i].share_milli / 1000.0);
		else
			strbuf_adds(b, ",\"fleet\":null}");
	}
	strbuf_adds(b, "],");
}

/* A profile's fleet state: whether its probes are taken fleet-wide (and
 * this instance holds the lock), and the fleet's budget totals when they
 * decide. */
static void render_fleet_status(struct strbuf *b, const struct guard_snapshot *g)
{
	strbuf_addf(b,
		    "\"fleet\":{\"hooked\":%s,\"probes_fleet_wide\":%s,\"probe_lock\":%s,"
		    "\"budget\":",
		    g->fleet ? "true" : "false", g->fleet_gate ? "true" : "false",
		    g->fleet_probe_lock ? "true" : "false");
	if (g->fleet_budget)
		strbuf_addf(b, "{\"requests\":%llu,\"retries\":%llu}},",
			    (unsigned long long)g->fleet_requests,
			    (unsigned long long)g->fleet_retries);
	else
		strbuf_adds(b, "null},");
}

static void render_status(struct admin *a, struct strbuf *b)
{
	static const char *const states[] = { "closed", "open", "half_open" };
	struct config *cfg = a->srv->env.cfg;
	/* In µs, as the limits keep time: a reading cut to the ms would show a
	 * wait up to 1 ms longer than it is. */
	uint64_t now_us = clock_now_us();

	struct http_counters k;

	http_server_counters(a->srv->http, &k);
	strbuf_addf(b,
		    "{\"inflight\":%u,\"draining\":%s,\"connections\":{\"app\":%u,\"admin\":%u,"
		    "\"admin_limit\":%u,\"admin_evicted\":%llu,\"admin_refused\":%llu,"
		    "\"accepted\":%llu,\"writing\":%u},\"front\":{\"bad_requests\":%llu,"
		    "\"not_implemented\":%llu,"
		    "\"timeouts\":%llu,\"too_large\":%llu,\"idle_closed\":%llu,\"gone\":%llu,"
		    "\"accept_paused\":%llu,\"fd_shortage\":%llu},",
		    a->srv->env.inflight, a->srv->draining ? "true" : "false", k.connections,
		    k.admin_connections, k.admin_limit, (unsigned long long)k.admin_evicted,
		    (unsigned long long)k.admin_refused, (unsigned long long)k.accepted, k.writing,
		    (unsigned long long)k.bad_requests, (unsigned long long)k.not_implemented,
		    (unsigned long long)k.timeouts, (unsigned long long)k.too_large,
		    (unsigned long long)k.idle_closed, (unsigned long long)k.gone,
		    (unsigned long long)k.accept_paused, (unsigned long long)k.fd_shortage);
	strbuf_addf(
	    b, "\"memory\":{\"held\":%llu,\"max_buffered\":%llu,\"peak\":%llu,\"waiting\":%u},",
	    (unsigned long long)a->srv->env.hold.held, (unsigned long long)a->srv->env.hold.max,
	    (unsigned long long)a->srv->env.hold.peak, a->srv->env.hold.waiting);
	{
		struct cache_stats cs;

		cache_stats(&a->srv->env, &cs);
		strbuf_addf(b, "\"cache\":{\"max_bytes\":%llu,\"bytes\":%llu,\"entries\":%llu},",
			    (unsigned long long)cs.max_bytes, (unsigned long long)cs.bytes,
			    (unsigned long long)cs.entries);
	}
	strbuf_addf(b, "\"fleet\":{\"enabled\":%s,\"up\":%s},\"profiles\":{",
		    cfg->fleet.enabled ? "true" : "false",
		    a->global->fleet.enabled && a->global->fleet.up ? "true" : "false");
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		struct guard_snapshot g;

		guard_snapshot(a->srv->guards_by_profile[i], now_us, &g);
		strbuf_addf(b, "%s", i ? "," : "");
		strbuf_add_json_string(b, g.name, strlen(g.name));
		strbuf_addf(
		    b,
		    ":{\"inflight\":%u,\"breaker\":{\"state\":\"%s\",\"retry_after_ms\":%llu},"
		    "\"budget\":{\"requests\":%u,\"retries\":%u},"
		    "\"cooldown_ms\":%llu,\"requests_ok\":%llu,\"retries\":%llu,",
		    g.inflight, states[g.breaker], (unsigned long long)g.breaker_retry_after_ms,
		    g.budget_requests, g.budget_retries, (unsigned long long)g.cooldown_ms,
		    (unsigned long long)g.requests_ok, (unsigned long long)g.retries);
		render_latency_status(b, &g, a->srv->guards_by_profile[i], &cfg->profiles[i],
				      now_us);
		render_endpoints_status(b, a->srv->guards_by_profile[i], now_us);
		render_rate_limits_status(b, a->srv->guards_by_profile[i], now_us);
		if (cfg->fleet.enabled)
			render_fleet_status(b, &g);
		strbuf_adds(b, "\"schema_violations\":{");
		for (const struct schema_counter *sc = g.schema_counters; sc; sc = sc->next) {
			char key[512];

			snprintf(key, sizeof(key), "%s %s %s", sc->route, sc->direction, sc->mode);
			strbuf_addf(b, "%s", sc == g.schema_counters ? "" : ",");
			strbuf_add_json_string(b, key, strlen(key));
			strbuf_addf(b, ":%llu", (unsigned long long)sc->count);
		}
		strbuf_adds(b, "}}");
	}
	strbuf_adds(b, "}}");
}

static void render_methods(struct strbuf *b, const char *key, uint32_t set)
{
	int first = 1;

	add_key(b, key, 0);
	strbuf_adds(b, "[");
	for (int m = 0; m < METHOD__COUNT; m++) {
		if (set & METHOD_BIT(m)) {
			strbuf_addf(b, "%s\"%s\"", first ? "" : ",",
				    method_name((enum http_method)m));
			first = 0;
		}
	}
	strbuf_adds(b, "]");
}

/* hedge and concurrency (SPEC 4.10): the delay as a duration in ms, or as
 * "pNN" when it follows the profile's latency quantile. */
static void render_latency_policy(struct strbuf *b, const struct policy *p)
{
	if (p->hedge.quantile)
		strbuf_addf(b, ",\"hedge\":{\"delay\":\"p%u\",\"max\":%u}", p->hedge.quantile,
			    p->hedge.max);
	else
		strbuf_addf(b, ",\"hedge\":{\"delay_ms\":%u,\"max\":%u}", p->hedge.delay_ms,
			    p->hedge.max);
	strbuf_addf(b, ",\"concurrency\":{\"adaptive\":%s,\"min\":%u,\"max\":%u}",
		    p->concurrency.adaptive ? "true" : "false", p->concurrency.min,
		    p->concurrency.max);
	strbuf_addf(b,
		    ",\"endpoints\":{\"balance\":\"%s\",\"eject\":{\"consecutive_failures\":%u,"
		    "\"base_ms\":%u,\"max_ms\":%u,\"max_percent\":%u},\"retry_elsewhere\":%s,"
		    "\"resolve_every_ms\":%u}",
		    endpoint_balance_names[p->endpoints.balance], p->endpoints.consecutive_failures,
		    p->endpoints.eject_base_ms, p->endpoints.eject_max_ms, p->endpoints.max_percent,
		    p->endpoints.retry_elsewhere ? "true" : "false", p->endpoints.resolve_every_ms);
	strbuf_addf(b,
		    ",\"rate_limit\":{\"count\":%u,\"per_ms\":%llu,\"burst\":%u,\"queue_ms\":%u,"
		    "\"share\":\"%s\",\"own\":%s},\"ratelimit_headers\":\"%s\"",
		    p->rate_limit.count, (unsigned long long)(p->rate_limit.per_us / 1000),
		    p->rate_limit.burst, p->rate_limit.queue_ms,
		    rate_share_names[p->rate_limit.share], p->rate_limit.scope ? "true" : "false",
		    ratelimit_headers_names[p->ratelimit_headers]);
	strbuf_addf(b,
		    ",\"cache\":{\"enabled\":%s,\"ttl_ms\":%u,\"stale_if_error_ms\":%u,"
		    "\"stale_while_revalidate_ms\":%u,\"coalesce\":%s,\"key_headers\":[",
		    p->cache.enabled ? "true" : "false", p->cache.ttl_ms,
		    p->cache.stale_if_error_ms, p->cache.stale_while_revalidate_ms,
		    p->cache.coalesce ? "true" : "false");
	for (unsigned i = 0; i < p->cache.nkey_headers; i++) {
		strbuf_adds(b, i ? "," : "");
		strbuf_add_json_string(b, p->cache.key_headers[i], strlen(p->cache.key_headers[i]));
	}
	strbuf_adds(b, "]}");
}

/* dns (SPEC 4.11). */
static void render_dns_config(struct strbuf *b, const struct dns_setting *d)
{
	strbuf_adds(b, ",\"dns\":{\"nameservers\":[");
	for (size_t i = 0; i < d->nnameservers; i++) {
		strbuf_adds(b, i ? "," : "");
		strbuf_add_json_string(b, d->nameservers[i], strlen(d->nameservers[i]));
	}
	strbuf_adds(b, "]");
	add_str(b, "hosts_file", d->hosts_file, 0);
	strbuf_adds(b, "}");
}

/* The names of the bits set in bits, bit i named names[i], as a JSON list. */
static void render_names(struct strbuf *b, const char *const *names, uint32_t bits)
{
	int first = 1;

	strbuf_adds(b, "[");
	for (unsigned i = 0; names[i]; i++) {
		if (bits & (1u << i)) {
			strbuf_addf(b, "%s\"%s\"", first ? "" : ",", names[i]);
			first = 0;
		}
	}
	strbuf_adds(b, "]");
}

static void render_policy(struct strbuf *b, const struct policy *p)
{
	const struct timeouts *t = &p->timeouts;
	const struct retry_policy *r = &p->retry;
	int first = 1;

	strbuf_addf(b,
		    "{\"timeouts\":{\"connect_ms\":%u,\"read_ms\":%u,\"write_ms\":%u,"
		    "\"pool_ms\":%u,\"attempt_ms\":%u,\"total_ms\":%u,\"stream_ms\":%u}",
		    t->connect_ms, t->read_ms, t->write_ms, t->pool_ms, t->attempt_ms, t->total_ms,
		    t->stream_ms);
	strbuf_addf(b, ",\"retry\":{\"attempts\":%u,\"statuses\":[", r->attempts);
	for (int s = 100; s < 600; s++) {
		if (r->statuses[s]) {
			strbuf_addf(b, "%s%d", first ? "" : ",", s);
			first = 0;
		}
	}
	strbuf_adds(b, "],\"transport\":");
	render_names(b, transport_kind_names, r->transport);
	render_methods(b, "methods", r->methods);
	strbuf_addf(
	    b,
	    ",\"unsafe\":\"%s\",\"backoff\":{\"base_ms\":%u,\"max_ms\":%u,\"jitter\":\"%s\"},"
	    "\"retry_after\":{\"honor\":%s,\"max_ms\":%u},"
	    "\"budget\":{\"ratio\":%g,\"min_per_second\":%u,\"window_ms\":%u},"
	    "\"on_schema_violation\":%s}",
	    unsafe_retry_names[r->unsafe], r->backoff_base_ms, r->backoff_max_ms,
	    jitter_names[r->jitter], r->retry_after_honor ? "true" : "false", r->retry_after_max_ms,
	    r->budget_ratio, r->budget_min_per_second, r->budget_window_ms,
	    r->on_schema_violation ? "true" : "false");
	strbuf_addf(b,
		    ",\"circuit_breaker\":{\"enabled\":%s,\"window_ms\":%u,\"min_requests\":%u,"
		    "\"failure_ratio\":%g,\"open_for_ms\":%u,\"half_open_probes\":%u}",
		    p->breaker.enabled ? "true" : "false", p->breaker.window_ms,
		    p->breaker.min_requests, p->breaker.failure_ratio, p->breaker.open_for_ms,
		    p->breaker.half_open_probes);
	strbuf_addf(b, ",\"rate_limit_cooldown\":%s", p->rate_limit_cooldown ? "true" : "false");
	strbuf_adds(b, ",\"idempotency\":{");
	add_str(b, "header", p->idempotency_header, 1);
	render_methods(b, "methods", p->idempotency_methods);
	strbuf_addf(b, ",\"honored\":%s", p->idempotency_honored ? "true" : "false");
	strbuf_adds(b, "},\"correlation\":{");
	add_str(b, "header", p->correlation_header, 1);
	strbuf_addf(
	    b,
	    "},\"pool\":{\"max_connections\":%u,\"max_idle\":%u},\"upstream_errors\":\"%s\","
	    "\"tracing\":{\"traceparent\":\"%s\"},\"schema_formats\":\"%s\"",
	    p->pool_max_connections, p->pool_max_idle, upstream_errors_names[p->upstream_errors],
	    trace_mode_names[p->trace_mode], schema_formats_names[p->schema_formats]);
	render_latency_policy(b, p);
	strbuf_adds(b, "}");
}

/* The fleet block; the password and the secret only as "<redacted>",
 * however they were written. */
static void render_fleet_config(struct strbuf *b, const struct fleet_setting *f)
{
	strbuf_adds(b, ",\"fleet\":{");
	add_str(b, "redis", f->enabled ? f->redis : "off", 1);
	add_str(b, "username", f->username, 0);
	add_str(b, "password", f->password ? "<redacted>" : NULL, 0);
	add_str(b, "secret", f->secret ? "<redacted>" : "", 0);
	add_str(b, "key_prefix", f->key_prefix, 0);
	strbuf_adds(b, ",\"share\":");
	render_names(b, fleet_share_names, f->share);
	strbuf_addf(b, ",\"timeout_ms\":%u,\"sync_interval_ms\":%u}", f->timeout_ms,
		    f->sync_interval_ms);
}

/* The configured `listen` list and `admin` of cfg, as written. */
static void render_listen_config(struct strbuf *b, const struct config *cfg)
{
	strbuf_adds(b, "{\"listen\":[");
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		strbuf_adds(b, i ? "," : "");
		strbuf_add_json_string(b, cfg->listeners[i].address,
				       strlen(cfg->listeners[i].address));
	}
	strbuf_adds(b, "]");
	add_str(b, "admin", cfg->admin_enabled ? cfg->admin.address : "off", 0);
	strbuf_adds(b, "}");
}

/* `listen` and `admin` as the listeners actually open (bound addresses,
 * with the port chosen for :0, or the sockets systemd passed), since a
 * reload does not rebind them; what the loaded file says instead, when
 * it differs, under "restart_pending". */
static void render_listeners(struct strbuf *b, const struct server *srv)
{
	const struct config *cfg = srv->env.cfg;
	int first = 1, admin = 0;

	strbuf_adds(b, "{\"listen\":[");
	for (size_t i = 0; i < srv->nopen; i++) {
		if (srv->open[i].kind != HTTP_LISTENER_APP)
			continue;
		strbuf_adds(b, first ? "" : ",");
		first = 0;
		strbuf_add_json_string(b, srv->open[i].addr, strlen(srv->open[i].addr));
	}
	strbuf_adds(b, "]");
	for (size_t i = 0; i < srv->nopen; i++) {
		if (srv->open[i].kind == HTTP_LISTENER_ADMIN && !admin) {
			add_str(b, "admin", srv->open[i].addr, 0);
			admin = 1;
		}
	}
	if (!admin)
		add_str(b, "admin", "off", 0);
	strbuf_addf(b, ",\"socket_activated\":%s", srv->socket_activated ? "true" : "false");
	if (srv->bound_cfg && (!config_listen_equal(srv->bound_cfg, cfg) ||
			       !config_admin_equal(srv->bound_cfg, cfg))) {
		strbuf_adds(b, ",\"restart_pending\":");
		render_listen_config(b, cfg);
	}
}

/* A route's schema checks: mode, the documents as loaded, and for answers
 * the statuses validated. */
static void render_schema_setting(struct strbuf *b, const char *key, const struct schema_setting *s,
				  int response)
{
	const char *doc;
	int first = 1;

	strbuf_addf(b, ",\"%s\":{\"mode\":\"%s\"", key, schema_mode_names[s->mode]);
	if (!response) {
		doc = s->query ? json_object_to_json_string_ext(s->query, JSON_C_TO_STRING_PLAIN)
			       : "null";
		strbuf_addf(b, ",\"query\":%s", doc);
	} else {
		strbuf_adds(b, ",\"statuses\":[");
		for (int st = 100; st < 600; st++) {
			if (s->statuses[st]) {
				strbuf_addf(b, "%s%d", first ? "" : ",", st);
				first = 0;
			}
		}
		strbuf_adds(b, "]");
	}
	doc = s->body ? json_object_to_json_string_ext(s->body, JSON_C_TO_STRING_PLAIN) : "null";
	strbuf_addf(b, ",\"body\":%s}", doc);
}

static void render_config(struct admin *a, struct strbuf *b)
{
	const struct config *cfg = a->srv->env.cfg;

	render_listeners(b, a->srv);
	strbuf_addf(
	    b,
	    ",\"shutdown_grace_ms\":%u,\"log\":{\"format\":\"%s\",\"level\":\"%s\",\"access\":%s}",
	    cfg->shutdown_grace_ms, log_format_names[cfg->log_format],
	    log_level_names[cfg->log_level], cfg->log_access ? "true" : "false");
	strbuf_addf(
	    b,
	    ",\"limits\":{\"max_request_body\":%llu,\"max_response_body\":%llu,"
	    "\"max_header_size\":%llu,\"max_connections\":%u,\"max_inflight\":%u,"
	    "\"max_validated_body\":%llu,\"stream_buffer\":%llu,\"retry_buffer\":%llu,"
	    "\"max_buffered\":%llu,\"header_timeout_ms\":%u,\"body_timeout_ms\":%u,"
	    "\"idle_timeout_ms\":%u}",
	    (unsigned long long)cfg->max_request_body, (unsigned long long)cfg->max_response_body,
	    (unsigned long long)cfg->max_header_size, cfg->max_connections, cfg->max_inflight,
	    (unsigned long long)cfg->max_validated_body, (unsigned long long)cfg->stream_buffer,
	    (unsigned long long)cfg->retry_buffer, (unsigned long long)cfg->max_buffered,
	    cfg->header_timeout_ms, cfg->body_timeout_ms, cfg->idle_timeout_ms);
	render_fleet_config(b, &cfg->fleet);
	render_dns_config(b, &cfg->dns);
	strbuf_addf(b, ",\"cache\":{\"max_bytes\":%llu,\"max_entry\":%llu}",
		    (unsigned long long)cfg->cache.max_bytes,
		    (unsigned long long)cfg->cache.max_entry);
	strbuf_adds(b, ",\"defaults\":");
	render_policy(b, &cfg->defaults);
	strbuf_adds(b, ",\"profiles\":{");
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const struct profile *p = &cfg->profiles[i];

		strbuf_adds(b, i ? "," : "");
		strbuf_add_json_string(b, p->name, strlen(p->name));
		strbuf_adds(b, ":{");
		add_str(b, "upstream", p->upstream_secret ? "<redacted>" : p->upstream, 1);
		strbuf_adds(b, ",\"addresses\":[");
		for (size_t j = 0; j < p->naddresses; j++) {
			strbuf_adds(b, j ? "," : "");
			strbuf_add_json_string(b, p->addresses[j], strlen(p->addresses[j]));
		}
		strbuf_adds(b, "],\"headers\":{");
		for (size_t h = 0; h < p->nheaders; h++) {
			strbuf_adds(b, h ? "," : "");
			strbuf_add_json_string(b, p->headers[h].name, strlen(p->headers[h].name));
			strbuf_adds(b, ":");
			if (p->headers[h].secret)
				strbuf_adds(b, "\"<redacted>\"");
			else
				strbuf_add_json_string(b, p->headers[h].value,
						       strlen(p->headers[h].value));
		}
		strbuf_addf(b, "},\"tls\":{\"verify\":%s", p->tls.verify ? "true" : "false");
		add_str(b, "ca_file",
			p->tls.ca_file && p->tls.ca_file_secret ? "<redacted>" : p->tls.ca_file, 0);
		strbuf_addf(b, "},\"routes_only\":%s,\"match_case\":\"%s\",\"policy\":",
			    p->routes_only ? "true" : "false", match_case_names[p->fold_case]);
		render_policy(b, &p->policy);
		strbuf_adds(b, ",\"routes\":[");
		for (size_t r = 0; r < p->nroutes; r++) {
			strbuf_adds(b, r ? ",{" : "{");
			add_str(b, "match", p->routes[r].label, 1);
			strbuf_adds(b, ",\"policy\":");
			render_policy(b, &p->routes[r].policy);
			render_schema_setting(b, "request", &p->routes[r].request, 0);
			render_schema_setting(b, "response", &p->routes[r].response, 1);
			strbuf_adds(b, "}");
		}
		strbuf_adds(b, "]}");
	}
	strbuf_adds(b, "}}");
}

enum admin_scope admin_scope_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_UNIX)
		return ADMIN_SCOPE_ALL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127 ? ADMIN_SCOPE_ALL
								 : ADMIN_SCOPE_PROBES;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a6) ||
		    (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127))
			return ADMIN_SCOPE_ALL;
	}
	return ADMIN_SCOPE_PROBES;
}

/* The endpoint path names in scope; ADMIN_NONE for any other path. */
static enum admin_endpoint endpoint_of(const char *uri, enum admin_scope scope)
{
	size_t plen = strcspn(uri, "?");

	for (int e = 0; e < ADMIN_NONE; e++)
		if (strlen(endpoints[e].path) == plen && !memcmp(uri, endpoints[e].path, plen))
			return scope == ADMIN_SCOPE_ALL || endpoints[e].probe
				   ? (enum admin_endpoint)e
				   : ADMIN_NONE;
	return ADMIN_NONE;
}

static void not_found(struct admin *a, struct http_request *req, struct strbuf *b)
{
	int first = 1;

	strbuf_adds(b, "{\"error\":\"not found\",\"endpoints\":[");
	for (int e = 0; a && e < ADMIN_NONE; e++) {
		if (a->scope != ADMIN_SCOPE_ALL && !endpoints[e].probe)
			continue;
		strbuf_addf(b, "%s\"%s\"", first ? "" : ",", endpoints[e].path);
		first = 0;
	}
	strbuf_adds(b, "]}\n");
	reply(req, 404, "application/json", b);
}

/* POST /cache/purge[?profile=NAME]: empties the cache's store, or one
 * profile's entries (SPEC 4.13). */
static void purge(struct admin *a, struct http_request *req, struct strbuf *b)
{
	const char *q = strchr(req->target, '?');
	const char *profile = NULL;
	size_t removed;

	if (strcmp(req->method, "POST") != 0) {
		strbuf_adds(b, "{\"error\":\"only POST\"}\n");
		reply(req, 405, "application/json", b);
		return;
	}
	if (q) {
		profile = q + 1;
		if (strncmp(profile, "profile=", 8) != 0 || !profile[8]) {
			strbuf_adds(b, "{\"error\":\"the only query is profile=NAME\"}\n");
			reply(req, 400, "application/json", b);
			return;
		}
		profile += 8;
		if (!config_find_profile(a->srv->env.cfg, profile, strlen(profile))) {
			strbuf_adds(b, "{\"error\":\"no such profile\"}\n");
			reply(req, 404, "application/json", b);
			return;
		}
	}
	removed = cache_purge(&a->srv->env, profile);
	log_msgf(LOG_INFO, "cache purged: %zu entries%s%s", removed, profile ? " of profile " : "",
		 profile ? profile : "");
	strbuf_addf(b, "{\"removed\":%zu}\n", removed);
	reply(req, 200, "application/json", b);
}

void admin_handle(struct admin *a, struct http_request *req)
{
	enum admin_endpoint e = a ? endpoint_of(req->target, a->scope) : ADMIN_NONE;
	struct strbuf b;
	struct http_counters k;

	strbuf_init(&b, ADMIN_MAX_BODY);
	if (e == ADMIN_NONE) {
		not_found(a, req, &b);
		return;
	}
	if (e == ADMIN_CACHE_PURGE) {
		purge(a, req, &b);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		strbuf_adds(&b, "{\"error\":\"only GET\"}\n");
		reply(req, 405, "application/json", &b);
		return;
	}
	switch (e) {
	case ADMIN_HEALTHZ:
		strbuf_adds(&b, "ok\n");
		reply(req, 200, "text/plain", &b);
		return;
	case ADMIN_READYZ:
		strbuf_adds(&b, a->srv->draining ? "draining\n" : "ready\n");
		reply(req, a->srv->draining ? 503 : 200, "text/plain", &b);
		return;
	case ADMIN_METRICS:
		render_metrics(a, &b);
		http_server_counters(a->srv->http, &k);
		metrics_render_front(&b, &k);
		reply(req, 200, "text/plain; version=0.0.4", &b);
		return;
	case ADMIN_STATUS:
		render_status(a, &b);
		reply(req, 200, "application/json", &b);
		return;
	case ADMIN_CONFIG:
		render_config(a, &b);
		reply(req, 200, "application/json", &b);
		return;
	case ADMIN_CACHE_PURGE: /* answered above */
	case ADMIN_NONE:
		break;
	}
}

static void admin_handle_cb(struct http_request *req, void *arg)
{
	admin_handle(arg, req);
}

struct admin *admin_new(struct server *srv, const struct listener_setting *ls,
			struct metrics_global *global)
{
	struct admin *a = calloc(1, sizeof(*a));
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd;

	if (!a)
		return NULL;
	a->srv = srv;
	a->global = global;
	fd = front_bind(srv, ls, ADMIN_BACKLOG, HTTP_LISTENER_ADMIN);
	if (fd < 0) {
		free(a);
		return NULL;
	}
	memset(&ss, 0, sizeof(ss));
	a->scope = getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0
		       ? admin_scope_of((struct sockaddr *)&ss)
		       : ADMIN_SCOPE_PROBES;
	if (http_server_add_listener(srv->http, fd, HTTP_LISTENER_ADMIN) < 0) {
		free(a);
		return NULL;
	}
	if (a->scope == ADMIN_SCOPE_PROBES)
		log_msgf(LOG_INFO,
			 "admin listener '%s' is not on loopback: it serves only "
			 "/healthz, /readyz and /metrics",
			 ls->address);
	http_server_set_admin_handler(srv->http, admin_handle_cb, a);
	return a;
}

void admin_free(struct admin *a)
{
	if (!a)
		return;
	http_server_set_admin_handler(a->srv->http, NULL, NULL);
	free(a);
}

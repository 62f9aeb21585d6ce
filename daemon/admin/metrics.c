/* Prometheus exposition (text format 0.0.4). Profile names ([a-z0-9_-])
 * and the codes, outcomes and reasons of fixed tables are written as they
 * are; a route's path pattern is escaped. */
#include "metrics.h"
#include "guard.h"
#include "histogram.h"
#include "http.h"

#include <stdio.h>
#include <string.h>

/* A label value with backslash, quote and newline escaped. */
static void add_label(struct strbuf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			strbuf_addf(out, "\\%c", *v);
		else if (*v == '\n')
			strbuf_adds(out, "\\n");
		else
			strbuf_add(out, v, 1);
	}
}

static void header(struct strbuf *out, const char *name, const char *type, const char *help)
{
	strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample with one label: NAME{LABEL="LV"} V. */
static void labelled(struct strbuf *out, const char *name, const char *label, const char *lv,
		     unsigned long long v)
{
	strbuf_addf(out, "%s{%s=\"%s\"} %llu\n", name, label, lv, v);
}

/* One sample of a per-profile series: NAME{profile="P"} V, or with a
 * second label NAME{profile="P",LABEL="LV"} V. */
static void sample(struct strbuf *out, const char *name, const char *profile, const char *label,
		   const char *lv, unsigned long long v)
{
	strbuf_addf(out, "%s{profile=\"%s\"", name, profile);
	if (label)
		strbuf_addf(out, ",%s=\"%s\"", label, lv);
	strbuf_addf(out, "} %llu\n", v);
}

/* One histogram per profile (the one of its snapshot pick() returns):
 * cumulative buckets, +Inf equal to _count. */
static void render_histograms(struct strbuf *out, const struct guard_snapshot *snaps, size_t n,
			      const char *name, const char *help,
			      const struct histogram *(*pick)(const struct guard_snapshot *))
{
	char series[96];

	header(out, name, "histogram", help);
	for (const struct guard_snapshot *g = snaps; g < snaps + n; g++) {
		const struct histogram *h = pick(g);
		uint64_t cum = 0;
		char le[32];

		snprintf(series, sizeof(series), "%s_bucket", name);
		for (int i = 0; i < HISTOGRAM_BUCKETS; i++) {
			cum += h->buckets[i];
			snprintf(le, sizeof(le), "%g", histogram_bound(i));
			sample(out, series, g->name, "le", le, cum);
		}
		sample(out, series, g->name, "le", "+Inf", h->count);
		strbuf_addf(out, "%s_sum{profile=\"%s\"} %.6f\n", name, g->name, h->sum);
		snprintf(series, sizeof(series), "%s_count", name);
		sample(out, series, g->name, NULL, NULL, h->count);
	}
}

static const struct histogram *duration_of(const struct guard_snapshot *g)
{
	return g->duration;
}

static const struct histogram *rate_wait_of(const struct guard_snapshot *g)
{
	static const struct histogram none;

	return g->rate_wait ? g->rate_wait : &none;
}

/* The outbound rate limits (SPEC 4.12): attempts given up for want of a
 * slot, by what refused them, and the waits for slots. */
static void render_rate_limits(struct strbuf *out, const struct guard_snapshot *snaps, size_t n)
{
	header(out, "braced_rate_limited_total", "counter",
	       "Requests answered 429 and retries not made for want of a rate-limit slot, by "
	       "profile and the limit that refused (configured, learned).");
	for (const struct guard_snapshot *g = snaps; g < snaps + n; g++) {
		sample(out, "braced_rate_limited_total", g->name, "reason", "configured",
		       g->rate_limited_configured);
		sample(out, "braced_rate_limited_total", g->name, "reason", "learned",
		       g->rate_limited_learned);
	}
	render_histograms(out, snaps, n, "braced_rate_limit_wait_seconds",
			  "Waits of attempts for their rate-limit slot (0 for those that went at "
			  "once), by profile.",
			  rate_wait_of);
}

/* The cache (SPEC 4.13): answers by what it did, and its store. */
static void render_cache(struct strbuf *out, const struct guard_snapshot *snaps, size_t n,
			 const struct metrics_global *mg)
{
	header(out, "braced_cache_requests_total", "counter",
	       "Answers to requests on routes with a cache, by profile and result (hit, stale, "
	       "stale_if_error, revalidated, miss, coalesced, bypass).");
	for (const struct guard_snapshot *g = snaps; g < snaps + n; g++)
		for (int r = CACHE_R_HIT; r < CACHE_R__COUNT; r++)
			if (g->cache[r])
				sample(out, "braced_cache_requests_total", g->name, "result",
				       cacheable_result_label((enum cache_result)r), g->cache[r]);
	header(out, "braced_cache_bytes", "gauge",
	       "Bytes the cache's store holds (entries, keys and table), at most cache.max_bytes "
	       "and a fixed overhead.");
	strbuf_addf(out, "braced_cache_bytes %llu\n", (unsigned long long)mg->cache_bytes);
	header(out, "braced_cache_entries", "gauge", "Answers the cache's store holds.");
	strbuf_addf(out, "braced_cache_entries %llu\n", (unsigned long long)mg->cache_entries);
}

/* Hedges by result (each hedge started ends in one: won, its answer was
 * the app's; lost, it finished without being used; cancelled, it was cut
 * while still running) and the concurrency limit (SPEC 4.10). */
static void render_latency_defences(struct strbuf *out, const struct guard_snapshot *snaps,
				    size_t n)
{
	static const char *const results[GUARD_HEDGE__COUNT] = {
		[GUARD_HEDGE_WON] = "won",
		[GUARD_HEDGE_LOST] = "lost",
		[GUARD_HEDGE_CANCELLED] = "cancelled",
	};
	const struct guard_snapshot *g, *end = snaps + n;

	header(out, "braced_hedges_total", "counter",
	       "Hedged attempts, by profile and result: won (its answer was the app's), lost "
	       "(it finished, not used), cancelled (cut while running).");
	for (g = snaps; g < end; g++)
		for (int r = 0; r < GUARD_HEDGE__COUNT; r++)
			sample(out, "braced_hedges_total", g->name, "result", results[r],
			       g->hedges[r]);
	header(out, "braced_concurrency_limit", "gauge",
	       "Upstream attempts in flight allowed, by profile: the adaptive limit, or "
	       "pool.max_connections.");
	for (g = snaps; g < end; g++)
		sample(out, "braced_concurrency_limit", g->name, NULL, NULL, g->concurrency_limit);
}

static void render_streams(struct strbuf *out, const struct guard_snapshot *snaps, size_t n)
{
	static const char *const outcomes[GUARD_STREAM__COUNT] = {
		[GUARD_STREAM_COMPLETE] = "ok",
		[GUARD_STREAM_RESET_MID_BODY] = "reset_mid_body",
		[GUARD_STREAM_TIMEOUT] = "stream_timeout",
		[GUARD_STREAM_CLIENT_GONE] = "client_gone",
		[GUARD_STREAM_SHUTDOWN] = "shutdown",
	};
	const struct guard_snapshot *g, *end = snaps + n;

	header(out, "braced_stream_ends_total", "counter",
	       "Answers relayed as they arrived, by profile and how they ended: ok, "
	       "reset_mid_body (the upstream failed after the head; the app saw the truncation), "
	       "stream_timeout, client_gone, shutdown.");
	for (g = snaps; g < end; g++)
		for (int r = 0; r < GUARD_STREAM__COUNT; r++)
			sample(out, "braced_stream_ends_total", g->name, "outcome", outcomes[r],
			       g->streams[r]);
	header(out, "braced_stream_bytes_total", "counter",
	       "Body bytes of streamed answers sent to apps, by profile.");
	for (g = snaps; g < end; g++)
		sample(out, "braced_stream_bytes_total", g->name, NULL, NULL, g->stream_bytes);
	header(out, "braced_backpressure_pauses_total", "counter",
	       "Times an upstream transfer was paused because its app read slower than it "
	       "sent (limits.stream_buffer was queued), by profile.");
	for (g = snaps; g < end; g++)
		sample(out, "braced_backpressure_pauses_total", g->name, NULL, NULL,
		       g->stream_pauses);
}

static void render_schema_violations(struct strbuf *out, const struct guard_snapshot *snaps,
				     size_t n)
{
	header(out, "braced_schema_violations_total", "counter",
	       "Schema violations, by profile, route, direction and mode.");
	for (const struct guard_snapshot *g = snaps; g < snaps + n; g++)
		for (const struct schema_counter *sc = g->schema_counters; sc; sc = sc->next) {
			strbuf_addf(out, "braced_schema_violations_total{profile=\"%s\",route=\"",
				    g->name);
			add_label(out, sc->route);
			strbuf_addf(out, "\",direction=\"%s\",mode=\"%s\"} %llu\n", sc->direction,
				    sc->mode, (unsigned long long)sc->count);
		}
}

static void render_global(struct strbuf *out, const struct metrics_global *mg)
{
	header(out, "braced_config_reloads_total", "counter", "Configuration reloads, by result.");
	labelled(out, "braced_config_reloads_total", "result", "ok", mg->reloads_ok);
	labelled(out, "braced_config_reloads_total", "result", "error", mg->reloads_error);
	header(out, "braced_fleet_up", "gauge",
	       "1 while fleet mode shares state through Redis, 0 when off or unreachable.");
	strbuf_addf(out, "braced_fleet_up %d\n", mg->fleet.enabled && mg->fleet.up ? 1 : 0);
	header(out, "braced_fleet_errors_total", "counter",
	       "Fleet calls to Redis that failed or were abandoned, by operation.");
	for (int op = 0; op < FLEET_OP__COUNT; op++)
		labelled(out, "braced_fleet_errors_total", "op", fleet_op_name((enum fleet_op)op),
			 mg->fleet.errors[op]);
	header(out, "braced_fleet_rejected_total", "counter",
	       "Fleet messages and values ignored under fleet.secret, by reason.");
	for (int why = 0; why < FLEET_REJECT__COUNT; why++)
		labelled(out, "braced_fleet_rejected_total", "reason",
			 fleet_reject_name((enum fleet_reject)why), mg->fleet.rejected[why]);
	header(out, "braced_held_bytes", "gauge",
	       "Bytes reserved for bodies held whole (retry copies of request bodies, answers a "
	       "schema checks).");
	strbuf_addf(out, "braced_held_bytes %llu\n", (unsigned long long)mg->held_bytes);
	header(out, "braced_held_bytes_limit", "gauge", "limits.max_buffered.");
	strbuf_addf(out, "braced_held_bytes_limit %llu\n", (unsigned long long)mg->held_max);
	header(out, "braced_hold_waiting", "gauge",
	       "Requests waiting for room in limits.max_buffered to hold a body.");
	strbuf_addf(out, "braced_hold_waiting %u\n", mg->hold_waiting);
}

void metrics_render(struct strbuf *out, const struct guard_snapshot *snaps, size_t n,
		    const struct metrics_global *mg)
{
	const struct guard_snapshot *g, *end = snaps + n;

	header(out, "braced_requests_total", "counter", "Requests answered, by profile and code.");
	for (g = snaps; g < end; g++) {
		sample(out, "braced_requests_total", g->name, "code", "ok", g->requests_ok);
		for (int c = 0; c < PROBLEM__COUNT; c++)
			if (g->requests[c])
				sample(out, "braced_requests_total", g->name, "code",
				       problem_code_name((enum problem_code)c), g->requests[c]);
	}
	render_histograms(out, snaps, n, "braced_request_duration_seconds",
			  "Time from the request read to the answer, by profile.", duration_of);
	header(out, "braced_upstream_attempts_total", "counter",
	       "Upstream attempts, by profile and outcome.");
	for (g = snaps; g < end; g++)
		for (int o = 0; o < OUTCOME__COUNT; o++)
			sample(out, "braced_upstream_attempts_total", g->name, "outcome",
			       retry_outcome_name((enum outcome)o), g->attempts[o]);
	header(out, "braced_retries_total", "counter", "Retries started, by profile.");
	for (g = snaps; g < end; g++)
		sample(out, "braced_retries_total", g->name, NULL, NULL, g->retries);
	header(out, "braced_retries_suppressed_total", "counter",
	       "Retries refused, by profile and reason.");
	for (g = snaps; g < end; g++)
		for (int s = RETRY_STOP_ATTEMPTS; s < RETRY_STOP__COUNT; s++)
			sample(out, "braced_retries_suppressed_total", g->name, "reason",
			       retry_stop_name((enum retry_stop)s), g->suppressed[s]);
	header(out, "braced_circuit_state", "gauge", "0 closed, 1 open, 2 half-open.");
	for (g = snaps; g < end; g++)
		sample(out, "braced_circuit_state", g->name, NULL, NULL, (unsigned)g->breaker);
	header(out, "braced_inflight_requests", "gauge", "Requests in flight, by profile.");
	for (g = snaps; g < end; g++)
		sample(out, "braced_inflight_requests", g->name, NULL, NULL, g->inflight);
	header(out, "braced_endpoints", "gauge",
	       "Endpoints of a profile's upstream, by state (active, ejected).");
	for (g = snaps; g < end; g++) {
		sample(out, "braced_endpoints", g->name, "state", "active", g->endpoints_active);
		sample(out, "braced_endpoints", g->name, "state", "ejected", g->endpoints_ejected);
	}
	header(out, "braced_endpoint_ejections_total", "counter",
	       "Endpoints this instance ejected after consecutive failures.");
	for (g = snaps; g < end; g++)
		sample(out, "braced_endpoint_ejections_total", g->name, NULL, NULL,
		       g->endpoint_ejections);
	render_latency_defences(out, snaps, n);
	render_rate_limits(out, snaps, n);
	render_cache(out, snaps, n, mg);
	render_streams(out, snaps, n);
	render_schema_violations(out, snaps, n);
	render_global(out, mg);
}

/* A sample of a global series: its metric (HELP and TYPE come before the
 * first sample of a name), an optional label, and the value. */
struct series {
	const char *name, *type, *help;
	const char *label, *lv;
	unsigned long long v;
};

static void render_series(struct strbuf *out, const struct series *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(s[i].name, s[i - 1].name) != 0)
			header(out, s[i].name, s[i].type, s[i].help);
		if (s[i].label)
			labelled(out, s[i].name, s[i].label, s[i].lv, s[i].v);
		else
			strbuf_addf(out, "%s %llu\n", s[i].name, s[i].v);
	}
}

void metrics_render_front(struct strbuf *out, const struct http_counters *k)
{
	static const char conns[] = "braced_connections",
			  shed[] = "braced_admin_connections_shed_total",
			  rejected[] = "braced_front_rejected_total";
	static const char conns_help[] = "Open client connections, by listener kind.",
			  shed_help[] = "Admin connections closed at the admin cap: the least "
					"recently used one (evicted) or the new one (refused).",
			  rejected_help[] = "Requests the HTTP front answered itself, by status: "
					    "400 framing, 408 deadline, 413 or 431 too large, 501 "
					    "a transfer coding.";
	const struct series s[] = {
		{ conns, "gauge", conns_help, "kind", "app", k->connections },
		{ conns, "gauge", conns_help, "kind", "admin", k->admin_connections },
		{ "braced_connections_accepted_total", "counter",
		  "Client connections accepted, both kinds.", NULL, NULL, k->accepted },
		{ "braced_admin_connections_limit", "gauge",
		  "Admin connections open at once, at most.", NULL, NULL, k->admin_limit },
		{ shed, "counter", shed_help, "reason", "evicted", k->admin_evicted },
		{ shed, "counter", shed_help, "reason", "refused", k->admin_refused },
		{ rejected, "counter", rejected_help, "status", "400", k->bad_requests },
		{ rejected, "counter", rejected_help, "status", "501", k->not_implemented },
		{ rejected, "counter", rejected_help, "status", "408", k->timeouts },
		{ rejected, "counter", rejected_help, "status", "413_431", k->too_large },
		{ "braced_connections_closed_idle_total", "counter",
		  "Keep-alive connections closed while idle.", NULL, NULL, k->idle_closed },
		{ "braced_clients_gone_total", "counter", "Clients that left before their answer.",
		  NULL, NULL, k->gone },
		{ "braced_accept_pauses_total", "counter",
		  "Times accepting paused at limits.max_connections.", NULL, NULL,
		  k->accept_paused },
		{ "braced_accept_fd_shortage_total", "counter",
		  "Accepts that failed for lack of file descriptors.", NULL, NULL, k->fd_shortage },
		{ "braced_replies_writing", "gauge",
		  "Answers waiting for their client to read them.", NULL, NULL, k->writing },
		{ "braced_streams_active", "gauge",
		  "Answers being relayed as they arrive (head sent, body not ended).", NULL, NULL,
		  k->streaming },
	};

	render_series(out, s, sizeof(s) / sizeof(s[0]));
}

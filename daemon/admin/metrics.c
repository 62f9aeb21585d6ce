/* Prometheus exposition (text format 0.0.4). Label values are profile
 * names, codes and outcomes from fixed tables, so they need no escaping
 * beyond what profile names allow ([a-z0-9_-]). */
#include "metrics.h"
#include "guard.h"
#include "histogram.h"
#include "http.h"

#include <stdlib.h>

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

/* Hedges by result (each hedge started ends in one: won, its answer was
 * the app's; lost, it finished without being used; cancelled, it was cut
 * while still running) and the concurrency limit (SPEC 4.10). */
static void render_latency_defences(struct strbuf *out, const struct guard_snapshot *snaps,
				    const struct guard_snapshot *end)
{
	static const char *const results[GUARD_HEDGE__COUNT] = {
		[GUARD_HEDGE_WON] = "won",
		[GUARD_HEDGE_LOST] = "lost",
		[GUARD_HEDGE_CANCELLED] = "cancelled",
	};
	const struct guard_snapshot *g;

	header(out, "braced_hedges_total", "counter",
	       "Hedged attempts, by profile and result: won (its answer was the app's), lost "
	       "(it finished, not used), cancelled (cut while running).");
	for (g = snaps; g < end; g++)
		for (int r = 0; r < GUARD_HEDGE__COUNT; r++)
			strbuf_addf(out, "braced_hedges_total{profile=\"%s\",result=\"%s\"} %llu\n",
				    g->name, results[r], (unsigned long long)g->hedges[r]);
	header(out, "braced_concurrency_limit", "gauge",
	       "Upstream attempts in flight allowed, by profile: the adaptive limit, or "
	       "pool.max_connections.");
	for (g = snaps; g < end; g++)
		strbuf_addf(out, "braced_concurrency_limit{profile=\"%s\"} %u\n", g->name,
			    g->concurrency_limit);
}

void metrics_render(struct strbuf *out, struct guard *list, const struct metrics_global *mg,
		    uint64_t now_ms)
{
	struct guard_snapshot *snaps, *g, *end;
	size_t n = 0;
	struct guard *it;

	for (it = list; it; it = guard_next(it))
		n++;
	snaps = calloc(n ? n : 1, sizeof(*snaps));
	if (!snaps)
		return;
	end = snaps;
	for (it = list; it; it = guard_next(it))
		guard_snapshot(it, now_ms * 1000, end++);

	header(out, "braced_requests_total", "counter", "Requests answered, by profile and code.");
	for (g = snaps; g < end; g++) {
		strbuf_addf(out, "braced_requests_total{profile=\"%s\",code=\"ok\"} %llu\n",
			    g->name, (unsigned long long)g->requests_ok);
		for (int c = 0; c < PROBLEM__COUNT; c++)
			if (g->requests[c])
				strbuf_addf(
				    out, "braced_requests_total{profile=\"%s\",code=\"%s\"} %llu\n",
				    g->name, problem_code_name((enum problem_code)c),
				    (unsigned long long)g->requests[c]);
	}
	header(out, "braced_request_duration_seconds", "histogram",
	       "Time from the request read to the answer, by profile.");
	for (g = snaps; g < end; g++) {
		uint64_t cum = 0;

		for (int i = 0; i < HISTOGRAM_BUCKETS; i++) {
			cum += g->duration->buckets[i];
			strbuf_addf(out,
				    "braced_request_duration_seconds_bucket{profile=\"%s\",le=\"%"
				    "g\"} %llu\n",
				    g->name, histogram_bound(i), (unsigned long long)cum);
		}
		strbuf_addf(
		    out,
		    "braced_request_duration_seconds_bucket{profile=\"%s\",le=\"+Inf\"} %llu\n",
		    g->name, (unsigned long long)g->duration->count);
		strbuf_addf(out, "braced_request_duration_seconds_sum{profile=\"%s\"} %.6f\n",
			    g->name, g->duration->sum);
		strbuf_addf(out, "braced_request_duration_seconds_count{profile=\"%s\"} %llu\n",
			    g->name, (unsigned long long)g->duration->count);
	}
	header(out, "braced_upstream_attempts_total", "counter",
	       "Upstream attempts, by profile and outcome.");
	for (g = snaps; g < end; g++)
		for (int o = 0; o < OUTCOME__COUNT; o++)
			strbuf_addf(
			    out,
			    "braced_upstream_attempts_total{profile=\"%s\",outcome=\"%s\"} %llu\n",
			    g->name, retry_outcome_name((enum outcome)o),
			    (unsigned long long)g->attempts[o]);
	header(out, "braced_retries_total", "counter", "Retries started, by profile.");
	for (g = snaps; g < end; g++)
		strbuf_addf(out, "braced_retries_total{profile=\"%s\"} %llu\n", g->name,
			    (unsigned long long)g->retries);
	header(out, "braced_retries_suppressed_total", "counter",
	       "Retries refused, by profile and reason.");
	for (g = snaps; g < end; g++)
		for (int s = RETRY_STOP_ATTEMPTS; s < RETRY_STOP__COUNT; s++)
			strbuf_addf(
			    out,
			    "braced_retries_suppressed_total{profile=\"%s\",reason=\"%s\"} %llu\n",
			    g->name, retry_stop_name((enum retry_stop)s),
			    (unsigned long long)g->suppressed[s]);
	header(out, "braced_circuit_state", "gauge", "0 closed, 1 open, 2 half-open.");
	for (g = snaps; g < end; g++)
		strbuf_addf(out, "braced_circuit_state{profile=\"%s\"} %d\n", g->name,
			    (int)g->breaker);
	header(out, "braced_inflight_requests", "gauge", "Requests in flight, by profile.");
	for (g = snaps; g < end; g++)
		strbuf_addf(out, "braced_inflight_requests{profile=\"%s\"} %u\n", g->name,
			    g->inflight);
	render_latency_defences(out, snaps, end);
	header(out, "braced_schema_violations_total", "counter",
	       "Schema violations, by profile, route, direction and mode.");
	for (g = snaps; g < end; g++)
		for (const struct schema_counter *sc = g->schema_counters; sc; sc = sc->next) {
			strbuf_addf(out, "braced_schema_violations_total{profile=\"%s\",route=\"",
				    g->name);
			add_label(out, sc->route);
			strbuf_addf(out, "\",direction=\"%s\",mode=\"%s\"} %llu\n", sc->direction,
				    sc->mode, (unsigned long long)sc->count);
		}
	header(out, "braced_config_reloads_total", "counter", "Configuration reloads, by result.");
	strbuf_addf(out, "braced_config_reloads_total{result=\"ok\"} %llu\n",
		    (unsigned long long)mg->reloads_ok);
	strbuf_addf(out, "braced_config_reloads_total{result=\"error\"} %llu\n",
		    (unsigned long long)mg->reloads_error);
	header(out, "braced_fleet_up", "gauge",
	       "1 while fleet mode shares state through Redis, 0 when off or unreachable.");
	strbuf_addf(out, "braced_fleet_up %d\n", mg->fleet.enabled && mg->fleet.up ? 1 : 0);
	header(out, "braced_fleet_errors_total", "counter",
	       "Fleet calls to Redis that failed or were abandoned, by operation.");
	for (int op = 0; op < FLEET_OP__COUNT; op++)
		strbuf_addf(out, "braced_fleet_errors_total{op=\"%s\"} %llu\n",
			    fleet_op_name((enum fleet_op)op),
			    (unsigned long long)mg->fleet.errors[op]);
	header(out, "braced_fleet_rejected_total", "counter",
	       "Fleet messages and values ignored under fleet.secret, by reason.");
	for (int why = 0; why < FLEET_REJECT__COUNT; why++)
		strbuf_addf(out, "braced_fleet_rejected_total{reason=\"%s\"} %llu\n",
			    fleet_reject_name((enum fleet_reject)why),
			    (unsigned long long)mg->fleet.rejected[why]);
	free(snaps);
}

void metrics_render_front(struct strbuf *out, const struct http_counters *k)
{
	header(out, "braced_connections", "gauge", "Open client connections, by listener kind.");
	strbuf_addf(out, "braced_connections{kind=\"app\"} %u\n", k->connections);
	strbuf_addf(out, "braced_connections{kind=\"admin\"} %u\n", k->admin_connections);
	header(out, "braced_connections_accepted_total", "counter",
	       "Client connections accepted, both kinds.");
	strbuf_addf(out, "braced_connections_accepted_total %llu\n",
		    (unsigned long long)k->accepted);
	header(out, "braced_admin_connections_limit", "gauge",
	       "Admin connections open at once, at most.");
	strbuf_addf(out, "braced_admin_connections_limit %u\n", k->admin_limit);
	header(out, "braced_admin_connections_shed_total", "counter",
	       "Admin connections closed at the admin cap: the least recently used one "
	       "(evicted) or the new one (refused).");
	strbuf_addf(out, "braced_admin_connections_shed_total{reason=\"evicted\"} %llu\n",
		    (unsigned long long)k->admin_evicted);
	strbuf_addf(out, "braced_admin_connections_shed_total{reason=\"refused\"} %llu\n",
		    (unsigned long long)k->admin_refused);
	header(out, "braced_front_rejected_total", "counter",
	       "Requests the HTTP front answered itself, by status: 400 framing, 408 "
	       "deadline, 413 or 431 too large, 501 a transfer coding.");
	strbuf_addf(out, "braced_front_rejected_total{status=\"400\"} %llu\n",
		    (unsigned long long)k->bad_requests);
	strbuf_addf(out, "braced_front_rejected_total{status=\"501\"} %llu\n",
		    (unsigned long long)k->not_implemented);
	strbuf_addf(out, "braced_front_rejected_total{status=\"408\"} %llu\n",
		    (unsigned long long)k->timeouts);
	strbuf_addf(out, "braced_front_rejected_total{status=\"413_431\"} %llu\n",
		    (unsigned long long)k->too_large);
	header(out, "braced_connections_closed_idle_total", "counter",
	       "Keep-alive connections closed while idle.");
	strbuf_addf(out, "braced_connections_closed_idle_total %llu\n",
		    (unsigned long long)k->idle_closed);
	header(out, "braced_clients_gone_total", "counter",
	       "Clients that left before their answer.");
	strbuf_addf(out, "braced_clients_gone_total %llu\n", (unsigned long long)k->gone);
	header(out, "braced_accept_pauses_total", "counter",
	       "Times accepting paused at limits.max_connections.");
	strbuf_addf(out, "braced_accept_pauses_total %llu\n", (unsigned long long)k->accept_paused);
	header(out, "braced_accept_fd_shortage_total", "counter",
	       "Accepts that failed for lack of file descriptors.");
	strbuf_addf(out, "braced_accept_fd_shortage_total %llu\n",
		    (unsigned long long)k->fd_shortage);
	header(out, "braced_replies_writing", "gauge",
	       "Answers waiting for their client to read them.");
	strbuf_addf(out, "braced_replies_writing %u\n", k->writing);
}

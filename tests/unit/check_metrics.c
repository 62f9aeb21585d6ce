/* Tests of daemon/admin/metrics.c, the Prometheus rendering: the output is
 * read back with a strict parser of the text format 0.0.4 (HELP and TYPE
 * once per family and before its samples, label values with their three
 * escapes, one family's samples together), then checked against the
 * snapshots built here by hand: answers by code, histogram buckets
 * cumulative with +Inf equal to _count, attempts by outcome, schema
 * violations with a route label that needs escaping, the process counters
 * and the front's. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "guard.h"
#include "histogram.h"
#include "http.h"
#include "metrics.h"
#include "strbuf.h"
#include "suites.h"

#define MAX_SAMPLES 1024
#define MAX_LABELS 4
#define MAX_FAMILIES 64

struct sample {
	char name[96];
	int nlabels;
	char key[MAX_LABELS][32];
	char value[MAX_LABELS][128];
	double v;
};

struct family {
	char name[96];
	char type[16];
	int help, typed;
	int samples;
};

struct exposition {
	struct sample s[MAX_SAMPLES];
	int n;
	struct family f[MAX_FAMILIES];
	int nf;
};

static struct exposition ex;

static int is_name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

static struct family *family_of(const char *name)
{
	for (int i = 0; i < ex.nf; i++)
		if (strcmp(ex.f[i].name, name) == 0)
			return &ex.f[i];
	return NULL;
}

/* The family a sample belongs to: a histogram's _bucket, _sum and _count
 * belong to the histogram. */
static struct family *sample_family(const char *name)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	struct family *f = family_of(name);
	char base[96];

	if (f)
		return f;
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(name), k = strlen(suffixes[i]);

		if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
			snprintf(base, sizeof(base), "%.*s", (int)(n - k), name);
			f = family_of(base);
			if (f && strcmp(f->type, "histogram") == 0)
				return f;
		}
	}
	return NULL;
}

/* Reads a metric name at p into out; returns the end or NULL. */
static const char *read_name(const char *p, char *out, size_t outlen)
{
	size_t k = 0;

	if (!is_name_char(*p, 1))
		return NULL;
	while (is_name_char(*p, 0) && k + 1 < outlen)
		out[k++] = *p++;
	out[k] = '\0';
	return p;
}

static char perr[640]; /* a line and what is wrong with it */

#define REQUIRE(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			snprintf(perr, sizeof(perr), __VA_ARGS__);                                 \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

/* Parses one sample line into s; 0, or -1 with perr set. */
static int parse_sample(const char *line, struct sample *s)
{
	const char *q = read_name(line, s->name, sizeof(s->name));
	char *vend;

	REQUIRE(q != NULL, "bad sample '%s'", line);
	if (*q == '{') {
		q++;
		while (*q != '}') {
			size_t k = 0;
			char *val;

			REQUIRE(s->nlabels < MAX_LABELS, "too many labels in '%s'", line);
			q = read_name(q, s->key[s->nlabels], sizeof(s->key[0]));
			REQUIRE(q && q[0] == '=' && q[1] == '"', "bad label in '%s'", line);
			q += 2;
			val = s->value[s->nlabels];
			while (*q != '"') {
				REQUIRE(*q != '\0', "unterminated label in '%s'", line);
				if (*q == '\\') {
					q++;
					REQUIRE(*q == '\\' || *q == '"' || *q == 'n',
						"bad escape in '%s'", line);
					val[k++] = *q == 'n' ? '\n' : *q;
				} else {
					val[k++] = *q;
				}
				q++;
				REQUIRE(k < sizeof(s->value[0]), "long label in '%s'", line);
			}
			val[k] = '\0';
			s->nlabels++;
			q++;
			if (*q == ',')
				q++;
			else
				REQUIRE(*q == '}', "bad label list in '%s'", line);
		}
		q++;
	}
	REQUIRE(*q == ' ', "no value in '%s'", line);
	q++;
	s->v = strtod(q, &vend);
	REQUIRE(vend != q && *vend == '\0', "bad value in '%s'", line);
	return 0;
}

/* Parses text into ex; 0, or -1 with the first line that breaks the format
 * told in perr. */
static int parse(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	struct family *current = NULL;

	memset(&ex, 0, sizeof(ex));
	perr[0] = '\0';
	REQUIRE(len > 0 && text[len - 1] == '\n', "output does not end in a newline");
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		char line[512];

		REQUIRE(eol && (size_t)(eol - p) < sizeof(line), "long line");
		memcpy(line, p, (size_t)(eol - p));
		line[eol - p] = '\0';
		p = eol + 1;
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
			char name[96];
			const char *q = read_name(line + 7, name, sizeof(name));
			struct family *f;

			REQUIRE(q && *q == ' ' && q[1] != '\0', "bad line '%s'", line);
			f = family_of(name);
			if (!f) {
				REQUIRE(ex.nf < MAX_FAMILIES, "too many families");
				f = &ex.f[ex.nf++];
				snprintf(f->name, sizeof(f->name), "%s", name);
			}
			REQUIRE(f->samples == 0, "%s declared after its samples", name);
			if (line[2] == 'H') {
				REQUIRE(!f->help, "second HELP for %s", name);
				REQUIRE(!f->typed, "HELP after TYPE for %s", name);
				f->help = 1;
			} else {
				REQUIRE(!f->typed, "second TYPE for %s", name);
				snprintf(f->type, sizeof(f->type), "%s", q + 1);
				REQUIRE(!strcmp(f->type, "counter") || !strcmp(f->type, "gauge") ||
					    !strcmp(f->type, "histogram"),
					"type '%s'", f->type);
				f->typed = 1;
			}
			current = f;
			continue;
		}
		REQUIRE(line[0] != '#', "unknown comment '%s'", line);
		{
			struct sample *s;
			struct family *f;

			REQUIRE(ex.n < MAX_SAMPLES, "too many samples");
			s = &ex.s[ex.n++];
			if (parse_sample(line, s) < 0)
				return -1;
			f = sample_family(s->name);
			REQUIRE(f && f->help && f->typed, "'%s' has no HELP and TYPE", line);
			REQUIRE(f == current, "'%s' is away from its family", line);
			f->samples++;
		}
	}
	return 0;
}

static void parse_ok(const char *text, size_t len)
{
	ck_assert_msg(parse(text, len) == 0, "%s", perr);
}

static const char *label(const struct sample *s, const char *key)
{
	for (int i = 0; i < s->nlabels; i++)
		if (strcmp(s->key[i], key) == 0)
			return s->value[i];
	return NULL;
}

/* The value of the one sample called name with the label pairs given
 * (NULL-terminated key, value list); fails when there is not exactly one. */
static double value_of(const char *name, ...)
{
	va_list ap;
	int found = 0;
	double v = NAN;

	for (int i = 0; i < ex.n; i++) {
		const struct sample *s = &ex.s[i];
		const char *k;
		int match = strcmp(s->name, name) == 0, want = 0;

		va_start(ap, name);
		while (match && (k = va_arg(ap, const char *)) != NULL) {
			const char *val = va_arg(ap, const char *), *have = label(s, k);

			match = have && strcmp(have, val) == 0;
			want++;
		}
		va_end(ap);
		if (match && want == s->nlabels) {
			found++;
			v = s->v;
		}
	}
	ck_assert_msg(found == 1, "%d samples of %s", found, name);
	return v;
}

/* ---- the snapshots the tests render ---- */

static struct strbuf out;
static struct histogram empty;

static void setup(void)
{
	strbuf_init(&out, 1 << 20);
	memset(&empty, 0, sizeof(empty));
}

static void teardown(void)
{
	strbuf_release(&out);
}

/* A snapshot of a profile that did nothing yet. */
static struct guard_snapshot snapshot(const char *name)
{
	struct guard_snapshot g = { .name = name, .duration = &empty };

	return g;
}

static void render(const struct guard_snapshot *snaps, size_t n)
{
	struct metrics_global mg = { 0 };

	strbuf_truncate(&out, 0);
	metrics_render(&out, snaps, n, &mg);
	ck_assert_int_eq(out.failed, 0);
	parse_ok(out.data, out.len);
}

/* Every family is declared once, counters are named _total, and each
 * sample sits under its own HELP and TYPE. */
START_TEST(test_format)
{
	struct guard_snapshot snaps[2] = { snapshot("a"), snapshot("b") };
	struct http_counters k = { 0 };

	render(snaps, 2);
	ck_assert_int_gt(ex.nf, 10);
	for (int i = 0; i < ex.nf; i++) {
		size_t n = strlen(ex.f[i].name);

		ck_assert_msg(ex.f[i].help && ex.f[i].typed, "%s", ex.f[i].name);
		ck_assert_msg(strncmp(ex.f[i].name, "braced_", 7) == 0, "%s", ex.f[i].name);
		if (strcmp(ex.f[i].type, "counter") == 0)
			ck_assert_msg(n > 6 && strcmp(ex.f[i].name + n - 6, "_total") == 0,
				      "counter %s", ex.f[i].name);
	}
	/* both profiles everywhere a profile is a label */
	ck_assert_double_eq(value_of("braced_inflight_requests", "profile", "a", NULL), 0);
	ck_assert_double_eq(value_of("braced_inflight_requests", "profile", "b", NULL), 0);
	ck_assert_double_eq(value_of("braced_circuit_state", "profile", "b", NULL), 0);

	/* The front's families follow the same rules on their own. */
	strbuf_truncate(&out, 0);
	metrics_render_front(&out, &k);
	ck_assert_int_eq(out.failed, 0);
	parse_ok(out.data, out.len);
	for (int i = 0; i < ex.nf; i++)
		ck_assert_msg(ex.f[i].help && ex.f[i].typed, "%s", ex.f[i].name);
}
END_TEST

/* No profile at all: still a valid exposition, with the process counters. */
START_TEST(test_no_profiles)
{
	render(NULL, 0);
	ck_assert_double_eq(value_of("braced_config_reloads_total", "result", "ok", NULL), 0);
	ck_assert_double_eq(value_of("braced_fleet_up", NULL), 0);
}
END_TEST

/* Observations 3 ms, 20 ms twice, 700 ms and 45 s (past the last bound). */
START_TEST(test_histogram)
{
	static const double seen[] = { 0.003, 0.02, 0.02, 0.7, 45.0 };
	struct histogram h = { 0 };
	struct guard_snapshot snaps[2] = { snapshot("p"), snapshot("idle") };
	double prev_le = -1, prev = 0, last = 0;
	int buckets = 0;

	for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
		histogram_observe(&h, seen[i]);
	snaps[0].duration = &h;
	render(snaps, 2);
	for (int i = 0; i < ex.n; i++) {
		const struct sample *s = &ex.s[i];
		const char *le = label(s, "le");
		double bound;
		unsigned want = 0;

		if (strcmp(s->name, "braced_request_duration_seconds_bucket") != 0 ||
		    strcmp(label(s, "profile"), "p") != 0)
			continue;
		ck_assert_ptr_nonnull(le);
		bound = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
		ck_assert_msg(bound > prev_le, "le %s out of order", le);
		ck_assert_msg(s->v >= prev, "bucket le=%s not cumulative", le);
		for (size_t j = 0; j < sizeof(seen) / sizeof(seen[0]); j++)
			want += seen[j] <= bound;
		ck_assert_msg(s->v == want, "le=%s: %g, want %u", le, s->v, want);
		prev_le = bound;
		prev = last = s->v;
		buckets++;
	}
	ck_assert_int_ge(buckets, 2);
	ck_assert(isinf(prev_le)); /* the last bucket is +Inf */
	ck_assert_double_eq(last, 5);
	ck_assert_double_eq(value_of("braced_request_duration_seconds_count", "profile", "p", NULL),
			    last);
	ck_assert_double_eq_tol(
	    value_of("braced_request_duration_seconds_sum", "profile", "p", NULL), 45.743, 1e-6);
	ck_assert_double_eq(value_of("braced_request_duration_seconds_bucket", "profile", "idle",
				     "le", "+Inf", NULL),
			    0);
	ck_assert_double_eq(
	    value_of("braced_request_duration_seconds_count", "profile", "idle", NULL), 0);
}
END_TEST

/* What each profile did, under its own label. */
START_TEST(test_profile_counters)
{
	struct guard_snapshot snaps[2] = { snapshot("alpha"), snapshot("beta") };
	struct guard_snapshot *a = &snaps[0], *b = &snaps[1];

	a->requests_ok = 2;
	a->requests[PROBLEM_UPSTREAM_TIMEOUT] = 1;
	b->requests[PROBLEM_CIRCUIT_OPEN] = 1;
	a->inflight = 1;
	a->attempts[OUTCOME_RESET] = 1;
	a->attempts[OUTCOME_OK] = 2;
	a->retries = 1;
	a->suppressed[RETRY_STOP_BUDGET] = 1;
	b->hedges[GUARD_HEDGE_LOST] = 1;
	b->breaker = BREAKER_OPEN;
	b->concurrency_limit = 17;
	render(snaps, 2);
	ck_assert_double_eq(
	    value_of("braced_requests_total", "profile", "alpha", "code", "ok", NULL), 2);
	ck_assert_double_eq(value_of("braced_requests_total", "profile", "alpha", "code",
				     problem_code_name(PROBLEM_UPSTREAM_TIMEOUT), NULL),
			    1);
	ck_assert_double_eq(value_of("braced_requests_total", "profile", "beta", "code",
				     problem_code_name(PROBLEM_CIRCUIT_OPEN), NULL),
			    1);
	ck_assert_double_eq(
	    value_of("braced_requests_total", "profile", "beta", "code", "ok", NULL), 0);
	ck_assert_double_eq(value_of("braced_upstream_attempts_total", "profile", "alpha",
				     "outcome", retry_outcome_name(OUTCOME_OK), NULL),
			    2);
	ck_assert_double_eq(value_of("braced_upstream_attempts_total", "profile", "alpha",
				     "outcome", retry_outcome_name(OUTCOME_RESET), NULL),
			    1);
	ck_assert_double_eq(value_of("braced_upstream_attempts_total", "profile", "beta", "outcome",
				     retry_outcome_name(OUTCOME_RESET), NULL),
			    0);
	ck_assert_double_eq(value_of("braced_inflight_requests", "profile", "alpha", NULL), 1);
	ck_assert_double_eq(value_of("braced_retries_total", "profile", "alpha", NULL), 1);
	ck_assert_double_eq(value_of("braced_retries_suppressed_total", "profile", "alpha",
				     "reason", retry_stop_name(RETRY_STOP_BUDGET), NULL),
			    1);
	ck_assert_double_eq(
	    value_of("braced_hedges_total", "profile", "beta", "result", "lost", NULL), 1);
	ck_assert_double_eq(
	    value_of("braced_hedges_total", "profile", "beta", "result", "won", NULL), 0);
	/* the gauge's help says 0 closed, 1 open, 2 half-open */
	ck_assert_double_eq(value_of("braced_circuit_state", "profile", "beta", NULL), 1);
	ck_assert_double_eq(value_of("braced_circuit_state", "profile", "alpha", NULL), 0);
	ck_assert_double_eq(value_of("braced_concurrency_limit", "profile", "beta", NULL), 17);
}
END_TEST

/* A route label is the app's text: quote, backslash and newline come back
 * as they were once the escapes are read. */
START_TEST(test_route_label_escaped)
{
	struct schema_counter plain = {
		.route = (char *)"GET /plain", .direction = "request", .mode = "report", .count = 1
	};
	struct schema_counter odd = { .route = (char *)"POST /a\"b\\c\nd",
				      .direction = "request",
				      .mode = "enforce",
				      .count = 2,
				      .next = &plain };
	struct guard_snapshot g = snapshot("p");

	g.schema_counters = &odd;
	render(&g, 1);
	ck_assert_double_eq(value_of("braced_schema_violations_total", "profile", "p", "route",
				     odd.route, "direction", "request", "mode", "enforce", NULL),
			    2);
	ck_assert_double_eq(value_of("braced_schema_violations_total", "profile", "p", "route",
				     "GET /plain", "direction", "request", "mode", "report", NULL),
			    1);
}
END_TEST

/* Reloads and the fleet: up only while enabled and connected. */
START_TEST(test_process_counters)
{
	struct metrics_global mg = { .reloads_ok = 3, .reloads_error = 2 };

	mg.fleet.up = 1; /* not enabled: not up */
	mg.fleet.errors[FLEET_OP_TIMEOUT] = 7;
	mg.fleet.rejected[FLEET_REJECT_STALE] = 4;
	metrics_render(&out, NULL, 0, &mg);
	parse_ok(out.data, out.len);
	ck_assert_double_eq(value_of("braced_config_reloads_total", "result", "ok", NULL), 3);
	ck_assert_double_eq(value_of("braced_config_reloads_total", "result", "error", NULL), 2);
	ck_assert_double_eq(value_of("braced_fleet_up", NULL), 0);
	ck_assert_double_eq(
	    value_of("braced_fleet_errors_total", "op", fleet_op_name(FLEET_OP_TIMEOUT), NULL), 7);
	ck_assert_double_eq(
	    value_of("braced_fleet_errors_total", "op", fleet_op_name(FLEET_OP_CONNECT), NULL), 0);
	ck_assert_double_eq(value_of("braced_fleet_rejected_total", "reason",
				     fleet_reject_name(FLEET_REJECT_STALE), NULL),
			    4);
	mg.fleet.enabled = 1;
	strbuf_truncate(&out, 0);
	metrics_render(&out, NULL, 0, &mg);
	parse_ok(out.data, out.len);
	ck_assert_double_eq(value_of("braced_fleet_up", NULL), 1);
	mg.fleet.up = 0;
	strbuf_truncate(&out, 0);
	metrics_render(&out, NULL, 0, &mg);
	parse_ok(out.data, out.len);
	ck_assert_double_eq(value_of("braced_fleet_up", NULL), 0);
}
END_TEST

/* Each of the front's counters lands in its own sample (distinct values, so
 * a swap shows). */
START_TEST(test_front_counters)
{
	struct http_counters k = {
		.connections = 11,
		.admin_connections = 2,
		.accepted = 1001,
		.admin_limit = 64,
		.admin_evicted = 5,
		.admin_refused = 6,
		.bad_requests = 40,
		.not_implemented = 41,
		.too_large = 42,
		.timeouts = 43,
		.idle_closed = 77,
		.gone = 78,
		.accept_paused = 79,
		.fd_shortage = 80,
		.writing = 3,
	};

	metrics_render_front(&out, &k);
	parse_ok(out.data, out.len);
	ck_assert_double_eq(value_of("braced_connections", "kind", "app", NULL), 11);
	ck_assert_double_eq(value_of("braced_connections", "kind", "admin", NULL), 2);
	ck_assert_double_eq(value_of("braced_connections_accepted_total", NULL), 1001);
	ck_assert_double_eq(value_of("braced_admin_connections_limit", NULL), 64);
	ck_assert_double_eq(
	    value_of("braced_admin_connections_shed_total", "reason", "evicted", NULL), 5);
	ck_assert_double_eq(
	    value_of("braced_admin_connections_shed_total", "reason", "refused", NULL), 6);
	ck_assert_double_eq(value_of("braced_front_rejected_total", "status", "400", NULL), 40);
	ck_assert_double_eq(value_of("braced_front_rejected_total", "status", "501", NULL), 41);
	ck_assert_double_eq(value_of("braced_front_rejected_total", "status", "413_431", NULL), 42);
	ck_assert_double_eq(value_of("braced_front_rejected_total", "status", "408", NULL), 43);
	ck_assert_double_eq(value_of("braced_connections_closed_idle_total", NULL), 77);
	ck_assert_double_eq(value_of("braced_clients_gone_total", NULL), 78);
	ck_assert_double_eq(value_of("braced_accept_pauses_total", NULL), 79);
	ck_assert_double_eq(value_of("braced_accept_fd_shortage_total", NULL), 80);
	ck_assert_double_eq(value_of("braced_replies_writing", NULL), 3);
}
END_TEST

/* The parser above must refuse what Prometheus refuses, or the tests
 * prove nothing: a sample with no TYPE, and a bad escape. */
START_TEST(test_parser_refuses)
{
	static const char *const bad[] = {
		"braced_x 1\n",
		"# HELP braced_x h\n# TYPE braced_x gauge\nbraced_x{a=\"\\t\"} 1\n",
		"# HELP braced_x h\n# TYPE braced_x gauge\nbraced_x{a=\"b\"}\n",
		"# HELP braced_x h\n# TYPE braced_x gauge\n# HELP braced_y h\n# TYPE braced_y "
		"gauge\nbraced_x 1\n",
		"# HELP braced_x h\n# TYPE braced_x gauge\n# TYPE braced_x gauge\n",
		"# HELP braced_x h\n# TYPE braced_x gauge\nbraced_x 1\n# HELP braced_x h\n",
	};

	ck_assert_int_eq(parse(bad[_i], strlen(bad[_i])), -1);
	ck_assert(perr[0] != '\0');
}
END_TEST

Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_no_profiles);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_profile_counters);
	tcase_add_test(tc, test_route_label_escaped);
	tcase_add_test(tc, test_process_counters);
	tcase_add_test(tc, test_front_counters);
	tcase_add_loop_test(tc, test_parser_refuses, 0, 6);
	suite_add_tcase(s, tc);
	return s;
}

/* Route matching on a loaded configuration (route_match): exact
 * paths, {name} segments, a final slash-double-star (the prefix itself and
 * deeper paths), the "*" method, first match wins, no match, other
 * spellings of a path (path.h) in requests and in routes, match_case, and
 * refused paths; and the method name table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "route.h"
#include "suites.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char routes_yaml[] =
	"profiles:\n"
	"  exact:\n"
	"    upstream: http://127.0.0.1:9/base\n"
	"    routes:\n"
	"      - match: GET /v1/weather\n"
	"      - match: POST /v1/weather\n"
	"  param:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    routes:\n"
	"      - match: GET /v1/cities/{id}\n"
	"      - match: GET /v1/cities/{id}/forecast/{day}\n"
	"  rest:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    routes:\n"
	"      - match: GET /v1/weather/**\n"
	"  star:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    routes:\n"
	"      - match: \"* /v1/any\"\n"
	"      - match: GET /**\n"
	"  order:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    routes:\n"
	"      - match: GET /v1/{x}\n"
	"        timeouts: {total: 1s}\n"
	"      - match: GET /v1/special\n"
	"        timeouts: {total: 2s}\n"
	"      - match: \"* /v1/special\"\n"
	"        timeouts: {total: 3s}\n"
	"  root:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    routes:\n"
	"      - match: DELETE /\n"
	"  none:\n"
	"    upstream: http://127.0.0.1:9\n"
	"  spelled:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    routes:\n"
	"      - match: GET /v1//%77eather/\n"
	"      - match: GET /v1/caf%c3%a9;v=1\n"
	"      - match: GET /v1/Cities/{ID}/**\n"
	"  folded:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    match_case: insensitive\n"
	"    routes:\n"
	"      - match: GET /v1/weather\n"
	"      - match: GET /v1/Caf%C3%A9\n"
	"      - match: GET /V1/Cities/{ID}/**\n"
	"  head:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    routes:\n"
	"      - match: GET /x\n"
	"      - match: HEAD /x\n"
	"      - match: GET /y\n"
	"      - match: POST /z\n"
	"  exactcase:\n"
	"    upstream: http://127.0.0.1:9\n"
	"    match_case: sensitive\n"
	"    routes:\n"
	"      - match: GET /v1/weather\n";

static struct config *cfg;

static void setup(void)
{
	struct config_errors errs = { 0 };

	cfg = config_load_string("/etc/braced/routes.yaml", routes_yaml, strlen(routes_yaml), &errs);
	for (size_t i = 0; i < errs.count; i++)
		fprintf(stderr, "unexpected: %s\n", errs.lines[i]);
	config_errors_release(&errs);
}

static void teardown(void)
{
	config_unref(cfg);
	cfg = NULL;
}

struct match_case {
	const char *profile;
	int method;
	const char *path;
	int route; /* index in the profile's routes, -1 for no match, -2 refused */
};

static const struct match_case match_cases[] = {
	/* exact */
	{ "exact", METHOD_GET, "/v1/weather", 0 },
	{ "exact", METHOD_POST, "/v1/weather", 1 },
	{ "exact", METHOD_PUT, "/v1/weather", -1 },
	/* a GET route answers HEAD too (RFC 9110 9.3.2), a HEAD route first */
	{ "exact", METHOD_HEAD, "/v1/weather", 0 },
	{ "head", METHOD_HEAD, "/x", 1 },
	{ "head", METHOD_GET, "/x", 0 },
	{ "head", METHOD_HEAD, "/y", 2 },
	{ "head", METHOD_HEAD, "/z", -1 },
	{ "exact", METHOD_GET, "/v1/weather/", 0 },
	{ "exact", METHOD_GET, "/v1/weatherx", -1 },
	{ "exact", METHOD_GET, "/v1/weathe", -1 },
	{ "exact", METHOD_GET, "/v1/weather/x", -1 },
	{ "exact", METHOD_GET, "/v1", -1 },
	{ "exact", METHOD_GET, "/V1/weather", -1 },
	{ "exact", METHOD_GET, "v1/weather", -2 },
	{ "exact", METHOD_GET, "//v1/weather", 0 },
	{ "exact", METHOD_GET, "/", -1 },
	{ "exact", METHOD_GET, "", -1 },
	/* {name}: one non-empty segment */
	{ "param", METHOD_GET, "/v1/cities/42", 0 },
	{ "param", METHOD_GET, "/v1/cities/a%2Fb", -2 },
	{ "param", METHOD_GET, "/v1/cities/a%20b", 0 },
	{ "param", METHOD_GET, "/v1/cities/{id}", 0 },
	{ "param", METHOD_GET, "/v1/cities/", -1 },
	{ "param", METHOD_GET, "/v1/cities", -1 },
	{ "param", METHOD_GET, "/v1/cities/42/", 0 },
	{ "param", METHOD_GET, "/v1/cities/42/forecast/mon", 1 },
	{ "param", METHOD_GET, "/v1/cities/42/forecast/", -1 },
	{ "param", METHOD_GET, "/v1/cities//forecast/mon", -1 },
	{ "param", METHOD_GET, "/v1/cities/42/forecast", -1 },
	{ "param", METHOD_GET, "/v1/cities/42/forecast/mon/x", -1 },
	{ "param", METHOD_GET, "/v1/cities/42/other/mon", -1 },
	/* a final slash-double-star */
	{ "rest", METHOD_GET, "/v1/weather", 0 },
	{ "rest", METHOD_GET, "/v1/weather/", 0 },
	{ "rest", METHOD_GET, "/v1/weather/today", 0 },
	{ "rest", METHOD_GET, "/v1/weather/a/b/c", 0 },
	{ "rest", METHOD_GET, "/v1/weatherx", -1 },
	{ "rest", METHOD_GET, "/v1/weatherx/a", -1 },
	{ "rest", METHOD_GET, "/v1/weathe", -1 },
	{ "rest", METHOD_GET, "/v1", -1 },
	{ "rest", METHOD_GET, "/v1/", -1 },
	{ "rest", METHOD_GET, "/v2/weather", -1 },
	{ "rest", METHOD_POST, "/v1/weather/today", -1 },
	/* the "*" method, and a pattern of only slash-double-star */
	{ "star", METHOD_GET, "/v1/any", 0 },
	{ "star", METHOD_HEAD, "/v1/any", 0 },
	{ "star", METHOD_POST, "/v1/any", 0 },
	{ "star", METHOD_PUT, "/v1/any", 0 },
	{ "star", METHOD_DELETE, "/v1/any", 0 },
	{ "star", METHOD_OPTIONS, "/v1/any", 0 },
	{ "star", METHOD_PATCH, "/v1/any", 0 },
	{ "star", METHOD_TRACE, "/v1/any", 0 },
	{ "star", METHOD_GET, "/v1/any/x", 1 },
	{ "star", METHOD_GET, "/", 1 },
	{ "star", METHOD_GET, "/anything/at/all", 1 },
	{ "star", METHOD_POST, "/v1/any/x", -1 },
	{ "star", METHOD_POST, "/v1/anyx", -1 },
	/* first match wins */
	{ "order", METHOD_GET, "/v1/special", 0 },
	{ "order", METHOD_GET, "/v1/other", 0 },
	{ "order", METHOD_POST, "/v1/special", 2 },
	{ "order", METHOD_POST, "/v1/other", -1 },
	/* the root path */
	{ "root", METHOD_DELETE, "/", 0 },
	{ "root", METHOD_DELETE, "", 0 },
	{ "root", METHOD_DELETE, "//", 0 },
	{ "root", METHOD_DELETE, "/;x", 0 },
	{ "root", METHOD_DELETE, "/x", -1 },
	{ "root", METHOD_GET, "/", -1 },
	/* other spellings of the same path reach the same route */
	{ "exact", METHOD_GET, "/v1//weather", 0 },
	{ "exact", METHOD_GET, "/v1/weather//", 0 },
	{ "exact", METHOD_GET, "/v1/%77eather", 0 },
	{ "exact", METHOD_GET, "/%76%31/%77%65%61%74%68%65%72", 0 },
	{ "exact", METHOD_GET, "/v1/weather;x", 0 },
	{ "exact", METHOD_GET, "/v1;a/weather;b=c/", 0 },
	{ "exact", METHOD_POST, "/v1/weather;x", 1 },
	{ "exact", METHOD_GET, "/v1/%57eather", -1 },
	{ "exact", METHOD_GET, "/v1/weather%3Bx", -1 },
	{ "exact", METHOD_GET, "/v1/weather%2f", -2 },
	{ "exact", METHOD_GET, "/v1/weather%2F", -2 },
	{ "exact", METHOD_GET, "/v1%2Fweather", -2 },
	{ "exact", METHOD_GET, "/v1/weather%5c", -2 },
	{ "exact", METHOD_GET, "/v1/weather\\", -2 },
	{ "exact", METHOD_GET, "/v1/weather%00", -2 },
	{ "exact", METHOD_GET, "/v1/weather%", -2 },
	{ "exact", METHOD_GET, "/v1/weather%4", -2 },
	{ "exact", METHOD_GET, "/v1/.;x/weather", -2 },
	{ "exact", METHOD_GET, "/v1/%2e/weather", -2 },
	{ "param", METHOD_GET, "/v1/cities/42;x/forecast//mon/", 1 },
	{ "param", METHOD_GET, "/v1/cities/;x/forecast/mon", -1 },
	{ "rest", METHOD_GET, "/v1//weather//a", 0 },
	{ "rest", METHOD_GET, "/v1/weather;x/a", 0 },
	/* routes written in other spellings */
	{ "spelled", METHOD_GET, "/v1/weather", 0 },
	{ "spelled", METHOD_GET, "/v1/weather/", 0 },
	{ "spelled", METHOD_GET, "/v1/caf%C3%A9", 1 },
	{ "spelled", METHOD_GET, "/v1/caf%c3%a9", 1 },
	{ "spelled", METHOD_GET, "/v1/caf%c3%a9;v=2", 1 },
	{ "spelled", METHOD_GET, "/v1/Cities/7/x", 2 },
	{ "spelled", METHOD_GET, "/v1/cities/7/x", -1 },
	/* match_case */
	{ "folded", METHOD_GET, "/V1/Weather", 0 },
	{ "folded", METHOD_GET, "/V1/WEATHER/", 0 },
	{ "folded", METHOD_GET, "/v1/%57eather", 0 },
	{ "folded", METHOD_GET, "/v1/CAF%c3%a9", 1 },
	{ "folded", METHOD_GET, "/v1/caf%C3%A9", 1 },
	{ "folded", METHOD_GET, "/v1/caf%C3%89", -1 },
	{ "folded", METHOD_GET, "/v1/cities/7", 2 },
	{ "folded", METHOD_GET, "/V1/WEATHER%2F", -2 },
	{ "exactcase", METHOD_GET, "/v1/weather", 0 },
	{ "exactcase", METHOD_GET, "/V1/Weather", -1 },
	{ "exact", METHOD_GET, "/V1/Weather", -1 },
	/* no routes at all */
	{ "none", METHOD_GET, "/", -1 },
	{ "none", METHOD_GET, "/v1/weather", -1 },
};

/* The route matched, NULL for none, or (void *)1 when the path is refused. */
static const struct route *match(const struct profile *p, int method, const char *path, size_t len)
{
	const struct route *r = (const struct route *)2;
	int e = route_match(p, method, path, len, &r);

	if (e < 0) {
		ck_assert_int_eq(e, -EINVAL);
		ck_assert_ptr_eq(r, (const struct route *)2);
		return (const struct route *)1;
	}
	return r;
}

START_TEST(test_match_table)
{
	const struct match_case *c = &match_cases[_i];
	const struct profile *p;
	const struct route *r;
	char want[64];

	ck_assert_ptr_nonnull(cfg);
	p = config_find_profile(cfg, c->profile, strlen(c->profile));
	ck_assert_ptr_nonnull(p);
	r = match(p, c->method, c->path, strlen(c->path));
	if (c->route == -2) {
		ck_assert_msg(r == (const struct route *)1, "%s: %s %s was not refused", c->profile,
			      method_name(c->method), c->path);
		return;
	}
	ck_assert_msg(r != (const struct route *)1, "%s: %s %s was refused", c->profile,
		      method_name(c->method), c->path);
	if (c->route < 0) {
		ck_assert_msg(r == NULL, "%s: %s %s matched '%s'", c->profile,
			      method_name(c->method), c->path, r ? r->label : "");
		return;
	}
	snprintf(want, sizeof(want), "%s", p->routes[c->route].label);
	ck_assert_msg(r == &p->routes[c->route], "%s: %s %s matched '%s', expected '%s'",
		      c->profile, method_name(c->method), c->path, r ? r->label : "nothing",
		      want);
}
END_TEST

START_TEST(test_route_fields)
{
	const struct profile *p = config_find_profile(cfg, "order", 5);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->nroutes, 3);
	ck_assert_str_eq(p->routes[0].label, "GET /v1/{x}");
	ck_assert_uint_eq(p->routes[0].policy.timeouts.total_ms, 1000);
	ck_assert_uint_eq(p->routes[1].policy.timeouts.total_ms, 2000);
	ck_assert_int_eq(p->routes[2].any_method, 1);
	ck_assert_str_eq(p->routes[2].label, "* /v1/special");
	ck_assert_uint_eq(p->routes[2].policy.timeouts.total_ms, 3000);

	p = config_find_profile(cfg, "rest", 4);
	ck_assert_int_eq(p->routes[0].rest, 1);
	ck_assert_uint_eq(p->routes[0].nsegments, 2);
	p = config_find_profile(cfg, "star", 4);
	ck_assert_int_eq(p->routes[1].rest, 1);
	ck_assert_uint_eq(p->routes[1].nsegments, 0);
}
END_TEST

/* The path is given by length: a query or any bytes after it are ignored. */
START_TEST(test_match_by_length)
{
	static const char path[] = "/v1/weather?city=Paris";
	const struct profile *p = config_find_profile(cfg, "exact", 5);
	const struct profile *rest = config_find_profile(cfg, "rest", 4);

	ck_assert_ptr_eq(match(p, METHOD_GET, path, strcspn(path, "?")), &p->routes[0]);
	ck_assert_ptr_null(match(p, METHOD_GET, path, strlen(path)));
	ck_assert_ptr_eq(match(p, METHOD_GET, "/v1/weatherXYZ", 11), &p->routes[0]);
	ck_assert_ptr_null(match(p, METHOD_GET, "/v1/weather", 10));
	ck_assert_ptr_eq(match(rest, METHOD_GET, "/v1/weatherx", 11), &rest->routes[0]);
	ck_assert_ptr_null(match(p, METHOD_GET, "/v1/weather", 0));
	ck_assert_ptr_eq(match(p, METHOD_GET, "/v1/weather%2F", 11), &p->routes[0]);
}
END_TEST

/* A path too long for the stack buffer is refused with -ENOSPC, never
 * matched in part; the longest one that fits is still routed. */
START_TEST(test_match_long_path)
{
	const struct profile *p = config_find_profile(cfg, "rest", 4);
	static char path[ROUTE_MAX_PATH + 1];
	const struct route *r = NULL;

	memset(path, 'a', sizeof(path));
	memcpy(path, "/v1/weather/", 12);
	ck_assert_int_eq(route_match(p, METHOD_GET, path, ROUTE_MAX_PATH, &r),
			 -ENOSPC);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(route_match(p, METHOD_GET, path, ROUTE_MAX_PATH - 1, &r), 0);
	ck_assert_ptr_eq(r, &p->routes[0]);
}
END_TEST

START_TEST(test_methods)
{
	static const struct {
		enum http_method m;
		const char *name;
	} known[] = {
		{ METHOD_GET, "GET" },       { METHOD_HEAD, "HEAD" },
		{ METHOD_POST, "POST" },     { METHOD_PUT, "PUT" },
		{ METHOD_DELETE, "DELETE" }, { METHOD_OPTIONS, "OPTIONS" },
		{ METHOD_PATCH, "PATCH" },   { METHOD_TRACE, "TRACE" },
	};
	static const char *const unknown[] = { "get", "Get",     "FETCH", "",     "GETX",
					       "GE",  "CONNECT", " GET",  "GET ", "*" };

	ck_assert_int_eq(N(known), METHOD__COUNT);
	for (int i = 0; i < N(known); i++) {
		ck_assert_str_eq(method_name(known[i].m), known[i].name);
		ck_assert_int_eq(method_parse(known[i].name), known[i].m);
	}
	for (int i = 0; i < N(unknown); i++)
		ck_assert_msg(method_parse(unknown[i]) == -1, "'%s' parsed", unknown[i]);
	ck_assert_ptr_null(method_name(METHOD__COUNT));
	ck_assert_ptr_null(method_name((enum http_method) - 1));
}
END_TEST

Suite *route_suite(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tcase_create("match");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_match_table, 0, N(match_cases));
	tcase_add_test(tc, test_route_fields);
	tcase_add_test(tc, test_match_by_length);
	tcase_add_test(tc, test_match_long_path);
	suite_add_tcase(s, tc);

	tc = tcase_create("methods");
	tcase_add_test(tc, test_methods);
	suite_add_tcase(s, tc);
	return s;
}

/* The cache's decisions (SPEC 4.13): which requests use the cache, which
 * answers are kept, and keys that never let two different requests meet. */
#include <errno.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "cacheable.h"
#include "config.h"
#include "method.h"

static struct cache_policy on(const char *const *names, unsigned n)
{
	struct cache_policy cp = { .enabled = 1, .coalesce = 1 };

	for (unsigned i = 0; i < n; i++)
		strcpy(cp.key_headers[cp.nkey_headers++], names[i]);
	return cp;
}

static struct cachecontrol request_cc(const char *line)
{
	struct cachecontrol cc;
	struct cachecontrol_line l = { line, strlen(line) };

	cachecontrol_parse(CACHECONTROL_REQUEST, &l, line[0] ? 1 : 0, &cc);
	return cc;
}

START_TEST(test_request_use)
{
	static const char *const auth[] = { "Authorization" };
	static const char *const cookie[] = { "cookie" };
	struct cache_policy plain = on(NULL, 0), with_auth = on(auth, 1),
			    with_cookie = on(cookie, 1);
	struct cachecontrol none = request_cc(""), no_cache = request_cc("no-cache"),
			    no_store = request_cc("no-store"), max_age0 = request_cc("max-age=0");
	struct cache_policy off = plain;

	off.enabled = 0;
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_GET, 0, 0, &none }),
	    CACHE_USE);
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_HEAD, 0, 0, NULL }),
	    CACHE_USE);
	/* no store, or not enabled */
	ck_assert_int_eq(
	    cacheable_request(&plain, 0, &(struct cache_request){ METHOD_GET, 0, 0, &none }),
	    CACHE_BYPASS_OFF);
	ck_assert_int_eq(
	    cacheable_request(&off, 1, &(struct cache_request){ METHOD_GET, 0, 0, &none }),
	    CACHE_BYPASS_OFF);
	/* other methods */
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_POST, 0, 0, &none }),
	    CACHE_BYPASS_METHOD);
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_OPTIONS, 0, 0, NULL }),
	    CACHE_BYPASS_METHOD);
	/* credentials only when keyed, names without case */
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_GET, 1, 0, &none }),
	    CACHE_BYPASS_CREDENTIALS);
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_GET, 0, 1, &none }),
	    CACHE_BYPASS_CREDENTIALS);
	ck_assert_int_eq(
	    cacheable_request(&with_auth, 1, &(struct cache_request){ METHOD_GET, 1, 0, &none }),
	    CACHE_USE);
	ck_assert_int_eq(
	    cacheable_request(&with_auth, 1, &(struct cache_request){ METHOD_GET, 1, 1, &none }),
	    CACHE_BYPASS_CREDENTIALS);
	ck_assert_int_eq(
	    cacheable_request(&with_cookie, 1, &(struct cache_request){ METHOD_GET, 0, 1, &none }),
	    CACHE_USE);
	/* the app's Cache-Control */
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_GET, 0, 0, &no_store }),
	    CACHE_BYPASS_NO_STORE);
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_GET, 0, 0, &no_cache }),
	    CACHE_USE_REVALIDATE);
	ck_assert_int_eq(
	    cacheable_request(&plain, 1, &(struct cache_request){ METHOD_GET, 0, 0, &max_age0 }),
	    CACHE_USE_REVALIDATE);
	ck_assert_str_eq(cacheable_use_name(CACHE_BYPASS_CREDENTIALS), "credentials");
	ck_assert_str_eq(cacheable_use_name(CACHE_USE__COUNT), "unknown");
	ck_assert_str_eq(cacheable_use_name(CACHE_BYPASS_CONDITIONAL), "conditional");
	/* Brace-Cache says stale-if-error; the metric's label is stale_if_error */
	ck_assert_str_eq(cacheable_result_header(CACHE_R_STALE_IF_ERROR), "stale-if-error");
	ck_assert_str_eq(cacheable_result_label(CACHE_R_STALE_IF_ERROR), "stale_if_error");
	ck_assert_str_eq(cacheable_result_header(CACHE_R_REVALIDATED), "revalidated");
	ck_assert_ptr_null(cacheable_result_header(CACHE_R_NONE));
	ck_assert_ptr_null(cacheable_result_header(CACHE_R__COUNT));
}
END_TEST

/* The freshness of an answer with one Cache-Control line (or none) and a
 * configured ttl. */
static struct cachecontrol_freshness fresh_of(const char *cc_line, uint32_t ttl_s)
{
	static struct cachecontrol cc;
	struct cachecontrol_line l = { cc_line, strlen(cc_line) };
	struct cachecontrol_freshness f;
	struct cachecontrol_answer a = { .cc = &cc };

	cachecontrol_parse(CACHECONTROL_RESPONSE, &l, cc_line[0] ? 1 : 0, &cc);
	cachecontrol_freshness(&a, 1785000000, ttl_s, &f);
	return f;
}

static enum cache_keep keep(int status, const char *cc, uint32_t ttl_s, int set_cookie,
			    int schema_failed, uint64_t size, const char *vary)
{
	struct cachecontrol_freshness f = fresh_of(cc, ttl_s);
	struct cachecontrol_vary v;
	struct cachecontrol_line l = { vary, strlen(vary) };

	cachecontrol_vary_parse(&l, vary[0] ? 1 : 0, &v);
	return cacheable_answer(&(struct cache_answer){ .status = status,
							.f = &f,
							.vary = &v,
							.set_cookie = set_cookie,
							.schema_failed = schema_failed,
							.size = size,
							.max_entry = 1000 });
}

START_TEST(test_answer_keep)
{
	static const int kept[] = { 200, 203, 204, 300, 301, 404, 410 };
	static const int not_kept[] = {
		201, 206, 302, 304, 307, 308, 400, 401, 403, 429, 500, 503
	};

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		ck_assert_int_eq(keep(kept[i], "max-age=60", 0, 0, 0, 10, ""), CACHE_KEEP);
	for (size_t i = 0; i < sizeof(not_kept) / sizeof(not_kept[0]); i++)
		ck_assert_int_eq(keep(not_kept[i], "max-age=60", 0, 0, 0, 10, ""),
				 CACHE_NOT_STATUS);
	ck_assert_int_eq(keep(200, "no-store, max-age=60", 0, 0, 0, 10, ""), CACHE_NOT_NO_STORE);
	ck_assert_int_eq(keep(200, "max-age=60", 0, 1, 0, 10, ""), CACHE_NOT_SET_COOKIE);
	ck_assert_int_eq(keep(200, "max-age=60", 0, 0, 0, 10, "*"), CACHE_NOT_VARY_STAR);
	ck_assert_int_eq(keep(200, "max-age=60", 0, 0, 0, 10, "Accept, *"), CACHE_NOT_VARY_STAR);
	ck_assert_int_eq(keep(200, "max-age=60", 0, 0, 0, 10, "Accept-Language"), CACHE_KEEP);
	/* A lifetime: max-age (even 0), Expires, or a ttl above 0. */
	ck_assert_int_eq(keep(200, "", 0, 0, 0, 10, ""), CACHE_NOT_LIFETIME);
	ck_assert_int_eq(keep(200, "public", 0, 0, 0, 10, ""), CACHE_NOT_LIFETIME);
	ck_assert_int_eq(keep(200, "", 30, 0, 0, 10, ""), CACHE_KEEP);
	ck_assert_int_eq(keep(200, "max-age=0", 0, 0, 0, 10, ""), CACHE_KEEP);
	/* A schema failure, report mode included, and size. */
	ck_assert_int_eq(keep(200, "max-age=60", 0, 0, 1, 10, ""), CACHE_NOT_SCHEMA);
	ck_assert_int_eq(keep(200, "max-age=60", 0, 0, 0, 1000, ""), CACHE_KEEP);
	ck_assert_int_eq(keep(200, "max-age=60", 0, 0, 0, 1001, ""), CACHE_NOT_TOO_LARGE);
	/* The first reason, in order. */
	ck_assert_int_eq(keep(500, "no-store", 0, 1, 1, 5000, "*"), CACHE_NOT_STATUS);
	ck_assert_str_eq(cacheable_keep_name(CACHE_NOT_VARY_STAR), "vary");
}
END_TEST

static char *key(const char *profile, const char *method, const char *path, const char *query,
		 const struct cache_header_value *h, size_t n, size_t *ret_len)
{
	struct strbuf b;

	strbuf_init(&b, CACHEABLE_KEY_MAX * 2);
	ck_assert_int_eq(cacheable_key(&b, profile, method, path, strlen(path), query,
				       query ? strlen(query) : 0, h, n),
			 0);
	return strbuf_steal(&b, ret_len);
}

static int same_key(char *a, size_t alen, char *b, size_t blen)
{
	int same = alen == blen && !memcmp(a, b, alen);

	free(a);
	free(b);
	return same;
}

/* Requests that differ in anything that keys them never share a key; the
 * parts cannot run into each other. */
START_TEST(test_keys_apart)
{
	const struct cache_header_value en = { "Accept-Language", "en", 2 },
					fr = { "Accept-Language", "fr", 2 },
					absent = { "Accept-Language", NULL, 0 },
					empty = { "Accept-Language", "", 0 },
					upper = { "ACCEPT-LANGUAGE", "en", 2 };
	size_t la, lb;
	char *a, *b;

	a = key("p", "GET", "/a", "x=1", NULL, 0, &la);
	b = key("p", "GET", "/a", "x=1", NULL, 0, &lb);
	ck_assert(same_key(a, la, b, lb));
	a = key("p", "GET", "/a", "x=1", NULL, 0, &la);
	b = key("q", "GET", "/a", "x=1", NULL, 0, &lb);
	ck_assert(!same_key(a, la, b, lb));
	a = key("p", "GET", "/a", "x=1", NULL, 0, &la);
	b = key("p", "HEAD", "/a", "x=1", NULL, 0, &lb);
	ck_assert(!same_key(a, la, b, lb));
	a = key("p", "GET", "/a", "x=1", NULL, 0, &la);
	b = key("p", "GET", "/a", "x=2", NULL, 0, &lb);
	ck_assert(!same_key(a, la, b, lb));
	/* No query and an empty one are the same request. */
	a = key("p", "GET", "/a", NULL, NULL, 0, &la);
	b = key("p", "GET", "/a", "", NULL, 0, &lb);
	ck_assert(same_key(a, la, b, lb));
	/* Parts cannot slide: "/a" + "b=" against "/ab" + "=". */
	a = key("p", "GET", "/a", "b=", NULL, 0, &la);
	b = key("p", "GET", "/ab", "=", NULL, 0, &lb);
	ck_assert(!same_key(a, la, b, lb));
	a = key("p1", "GET", "/a", NULL, NULL, 0, &la);
	b = key("p", "1GET", "/a", NULL, NULL, 0, &lb);
	ck_assert(!same_key(a, la, b, lb));
	/* Header values: different, absent against empty, names without case. */
	a = key("p", "GET", "/a", NULL, &en, 1, &la);
	b = key("p", "GET", "/a", NULL, &fr, 1, &lb);
	ck_assert(!same_key(a, la, b, lb));
	a = key("p", "GET", "/a", NULL, &absent, 1, &la);
	b = key("p", "GET", "/a", NULL, &empty, 1, &lb);
	ck_assert(!same_key(a, la, b, lb));
	a = key("p", "GET", "/a", NULL, &en, 1, &la);
	b = key("p", "GET", "/a", NULL, &upper, 1, &lb);
	ck_assert(same_key(a, la, b, lb));
	a = key("p", "GET", "/a", NULL, NULL, 0, &la);
	b = key("p", "GET", "/a", NULL, &absent, 1, &lb);
	ck_assert(!same_key(a, la, b, lb));
}
END_TEST

START_TEST(test_key_too_long)
{
	static char path[CACHEABLE_KEY_MAX + 1];
	struct strbuf b;

	memset(path, 'a', sizeof(path) - 1);
	strbuf_init(&b, 4 * CACHEABLE_KEY_MAX);
	ck_assert_int_eq(cacheable_key(&b, "p", "GET", path, strlen(path), NULL, 0, NULL, 0),
			 -ENAMETOOLONG);
	strbuf_release(&b);
	strbuf_init(&b, 4 * CACHEABLE_KEY_MAX);
	ck_assert_int_eq(
	    cacheable_key(&b, "p", "GET", path, CACHEABLE_KEY_MAX - 100, NULL, 0, NULL, 0), 0);
	strbuf_release(&b);
}
END_TEST

/* An entry kept at T with a lifetime of 60 s, 10 s old when kept. */
#define T 1785000000
static struct cacheentry_meta meta(uint32_t swr, uint32_t sie, int never_stale, int revalidate)
{
	return (struct cacheentry_meta){ .status = 200,
					 .stored_at = T,
					 .lifetime_s = 60,
					 .age_s = 10,
					 .stale_while_revalidate_s = swr,
					 .stale_if_error_s = sie,
					 .never_stale = never_stale,
					 .revalidate = revalidate };
}

START_TEST(test_state)
{
	struct cache_policy cp = on(NULL, 0);
	struct cacheentry_meta m = meta(0, 0, 0, 0);

	/* fresh until its age reaches 60: 50 s after it was kept */
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T), CACHE_FRESH);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T + 49), CACHE_FRESH);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T + 50), CACHE_REVALIDATE);
	/* the app's no-cache, the answer's no-cache */
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE_REVALIDATE, T), CACHE_REVALIDATE);
	m = meta(0, 0, 0, 1);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T), CACHE_REVALIDATE);
	/* stale-while-revalidate: the configured one, or the answer's own */
	cp.stale_while_revalidate_ms = 20000;
	m = meta(0, 0, 0, 0);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T + 69), CACHE_STALE_SERVE);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T + 70), CACHE_REVALIDATE);
	m = meta(30, 0, 0, 0);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T + 79), CACHE_STALE_SERVE);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T + 80), CACHE_REVALIDATE);
	/* must-revalidate: never served stale */
	m = meta(30, 0, 1, 0);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T + 51), CACHE_REVALIDATE);
	ck_assert_int_eq(cacheable_state(&m, &cp, CACHE_USE, T + 49), CACHE_FRESH);
}
END_TEST

START_TEST(test_stands_in)
{
	struct cache_policy cp = on(NULL, 0);
	struct cacheentry_meta m = meta(0, 0, 0, 0);

	ck_assert(cacheable_stands_in(&m, &cp, T + 49));  /* fresh */
	ck_assert(!cacheable_stands_in(&m, &cp, T + 50)); /* stale, no window */
	cp.stale_if_error_ms = 300000;
	ck_assert(cacheable_stands_in(&m, &cp, T + 349));
	ck_assert(!cacheable_stands_in(&m, &cp, T + 350));
	m = meta(0, 600, 0, 0); /* the answer's own, larger */
	ck_assert(cacheable_stands_in(&m, &cp, T + 649));
	ck_assert(!cacheable_stands_in(&m, &cp, T + 650));
	m = meta(0, 600, 1, 0); /* must-revalidate */
	ck_assert(!cacheable_stands_in(&m, &cp, T + 51));
}
END_TEST

Suite *cacheable_suite(void)
{
	Suite *s = suite_create("cacheable");
	TCase *tc = tcase_create("decisions");

	tcase_add_test(tc, test_request_use);
	tcase_add_test(tc, test_answer_keep);
	tcase_add_test(tc, test_keys_apart);
	tcase_add_test(tc, test_key_too_long);
	tcase_add_test(tc, test_state);
	tcase_add_test(tc, test_stands_in);
	suite_add_tcase(s, tc);
	return s;
}

/* Tests of daemon/proto/cachecontrol.c: what the cache reads from an
 * answer's and a request's Cache-Control (one row per header, the result
 * written back as a canonical list), Vary, and the freshness lifetime and
 * age of an answer; and of daemon/proto/httpdate.c, the HTTP-dates they
 * read. Bounds at and one past each limit. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "cachecontrol.h"
#include "httpdate.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define RESP CACHECONTROL_RESPONSE
#define REQ CACHECONTROL_REQUEST
#define LINES_MAX 4
#define SAT "2147483648" /* 2^31 */

/* ==== Cache-Control ====================================================== */

struct cc_row {
	enum cachecontrol_from from;
	const char *lines[LINES_MAX];
	/* what was read, as cc_render writes it: directives in a fixed order,
	 * "=N" for a value, "=!" for an invalid one */
	const char *want;
};

static const struct cc_row cc_rows[] = {
	/* ---- each directive of an answer */
	{ RESP, { "max-age=60" }, "max-age=60" },
	{ RESP, { "s-maxage=30" }, "s-maxage=30" },
	{ RESP, { "no-store" }, "no-store" },
	{ RESP, { "no-cache" }, "no-cache" },
	{ RESP, { "private" }, "private" },
	{ RESP, { "public" }, "public" },
	{ RESP, { "must-revalidate" }, "must-revalidate" },
	{ RESP, { "proxy-revalidate" }, "proxy-revalidate" },
	{ RESP, { "stale-while-revalidate=30" }, "stale-while-revalidate=30" },
	{ RESP, { "stale-if-error=10" }, "stale-if-error=10" },
	/* several together: a cache revalidates what says max-age and no-cache */
	{ RESP, { "max-age=60, no-cache" }, "max-age=60 no-cache" },
	{ RESP,
	  { "public, max-age=300, s-maxage=600, stale-while-revalidate=30, stale-if-error=86400" },
	  "max-age=300 s-maxage=600 stale-while-revalidate=30 stale-if-error=86400 public" },
	/* names are case-insensitive */
	{ RESP, { "MAX-AGE=5, No-Store" }, "max-age=5 no-store" },
	/* ---- arguments: tokens or quoted-strings */
	{ RESP, { "max-age=\"60\"" }, "max-age=60" },
	{ RESP, { "max-age=\"6\\0\"" }, "max-age=60" },
	{ RESP, { "max-age=060" }, "max-age=60" },
	{ RESP, { "max-age=0" }, "max-age=0" },
	{ RESP, { "max-age=abc" }, "max-age=!" },
	{ RESP, { "max-age=" }, "max-age=!" },
	{ RESP, { "max-age" }, "max-age=!" },
	{ RESP, { "max-age=-1" }, "max-age=!" },
	{ RESP, { "max-age=1.5" }, "max-age=!" },
	{ RESP, { "max-age=\"\"" }, "max-age=!" },
	{ RESP, { "max-age=\" 60\"" }, "max-age=!" },
	{ RESP, { "max-age=+60" }, "max-age=!" },
	/* no space around "=" */
	{ RESP, { "max-age = 60" }, "max-age=!" },
	{ RESP, { "max-age= 60" }, "max-age=!" },
	{ RESP, { "max-age=60 s" }, "max-age=!" },
	{ RESP, { "max-age=\"60\"x, no-store" }, "max-age=! no-store" },
	{ RESP, { "max-age=\"60" }, "max-age=!" },
	/* ---- delta-seconds saturate at 2^31 */
	{ RESP, { "max-age=2147483647" }, "max-age=2147483647" },
	{ RESP, { "max-age=2147483648" }, "max-age=" SAT },
	{ RESP, { "max-age=1099511627776" }, "max-age=" SAT }, /* 2^40 */
	{ RESP, { "max-age=99999999999999999999999999999999" }, "max-age=" SAT },
	{ RESP, { "stale-if-error=1099511627776" }, "stale-if-error=" SAT },
	/* ---- repeats: the same value is fine, another makes it invalid */
	{ RESP, { "max-age=1, max-age=2" }, "max-age=!" },
	{ RESP, { "max-age=1", "max-age=2" }, "max-age=!" },
	{ RESP, { "max-age=60, max-age=\"60\"" }, "max-age=60" },
	{ RESP, { "max-age=abc, max-age=5" }, "max-age=!" },
	{ RESP, { "max-age=5, max-age=abc" }, "max-age=!" },
	{ RESP, { "max-age=1, max-age=2, max-age=1" }, "max-age=!" },
	{ RESP, { "stale-if-error=10, stale-if-error=20" }, "stale-if-error=!" },
	{ RESP,
	  { "stale-while-revalidate=10", "stale-while-revalidate=11" },
	  "stale-while-revalidate=!" },
	{ RESP, { "no-store, no-store" }, "no-store" },
	/* ---- a field-name list on no-cache or private means the same here */
	{ RESP, { "no-cache=\"Set-Cookie\"" }, "no-cache" },
	{ RESP, { "no-cache=\"Set-Cookie, X-Token\", max-age=60" }, "max-age=60 no-cache" },
	{ RESP, { "no-cache=Set-Cookie" }, "no-cache" },
	{ RESP, { "private=\"Authorization\", max-age=10" }, "max-age=10 private" },
	/* an argument where none is defined: the directive counts */
	{ RESP, { "no-store=1" }, "no-store" },
	{ RESP, { "must-revalidate=\"yes\"" }, "must-revalidate" },
	/* ---- unknown directives are skipped, their arguments too */
	{ RESP, { "immutable, max-age=60" }, "max-age=60" },
	{ RESP, { "foo=\"max-age=1, no-store\", max-age=60" }, "max-age=60" },
	{ RESP, { "foo=\"a \\\" , no-store\", max-age=60" }, "max-age=60" },
	{ RESP, { "x-max-age=5, max-ages=5, max-age-=5" }, "" },
	{ RESP, { "foo=bar=baz, max-age=60" }, "max-age=60" },
	{ RESP, { "@@@, max-age=60" }, "max-age=60" },
	{ RESP, { "\"max-age=1\", max-age=60" }, "max-age=60" },
	{ RESP, { "foo;bar, no-store" }, "no-store" },
	/* a malformed member ends at the next comma outside quotes */
	{ RESP, { "a b \"c, no-store\" d, max-age=60" }, "max-age=60" },
	{ RESP, { "no-store\"x\"" }, "no-store" },
	{ RESP, { "max-age=5\"x, y\", no-cache" }, "max-age=! no-cache" },
	{ RESP, { "max-age=\"5\x01\", no-cache" }, "max-age=! no-cache" },
	{ RESP, { "max-age=5\x01, no-cache" }, "max-age=! no-cache" },
	/* ---- commas, whitespace, empty members */
	{ RESP, { " \tmax-age=60 \t,\t no-store\t " }, "max-age=60 no-store" },
	{ RESP, { ",,max-age=60,, ,no-store," }, "max-age=60 no-store" },
	{ RESP, { "max-age=60,no-store" }, "max-age=60 no-store" },
	{ RESP, { "", " ", "," }, "" },
	{ RESP, { "max-age=60", "", "no-cache" }, "max-age=60 no-cache" },
	{ RESP, { "max-age=60,", "no-cache" }, "max-age=60 no-cache" },
	/* ---- a request's directives, and each direction's own */
	{ REQ, { "max-age=0" }, "max-age=0" },
	{ REQ, { "no-cache" }, "no-cache" },
	{ REQ, { "no-store" }, "no-store" },
	{ REQ, { "max-stale" }, "max-stale" },
	{ REQ, { "max-stale=30" }, "max-stale=30" },
	{ REQ, { "max-stale, max-stale=30" }, "max-stale=30" },
	{ REQ, { "max-stale=x" }, "max-stale=!" },
	{ REQ, { "min-fresh=10" }, "min-fresh=10" },
	{ REQ, { "min-fresh" }, "min-fresh=!" },
	{ REQ, { "only-if-cached" }, "only-if-cached" },
	{ REQ, { "stale-if-error=5" }, "stale-if-error=5" },
	{ REQ, { "max-age=abc" }, "max-age=!" },
	{ REQ, { "s-maxage=5, private, public, must-revalidate, stale-while-revalidate=5" }, "" },
	{ RESP, { "max-stale=5, min-fresh=5, only-if-cached" }, "" },
	/* ---- nothing */
	{ RESP, { NULL }, "" },
};

struct render {
	char buf[512];
	size_t len;
};

static void put(struct render *r, const char *s)
{
	int n = snprintf(r->buf + r->len, sizeof(r->buf) - r->len, "%s%s", r->len ? " " : "", s);

	ck_assert(n > 0 && (size_t)n < sizeof(r->buf) - r->len);
	r->len += (size_t)n;
}

static void put_secs(struct render *r, const char *name, const struct cachecontrol_seconds *s)
{
	char item[64];

	if (!s->present) {
		ck_assert(!s->invalid && s->secs == 0);
		return;
	}
	if (s->invalid) {
		ck_assert_uint_eq(s->secs, 0);
		snprintf(item, sizeof(item), "%s=!", name);
	} else {
		snprintf(item, sizeof(item), "%s=%u", name, (unsigned)s->secs);
	}
	put(r, item);
}

static const char *cc_render(const struct cachecontrol *cc, struct render *r)
{
	r->len = 0;
	r->buf[0] = '\0';
	put_secs(r, "max-age", &cc->max_age);
	put_secs(r, "s-maxage", &cc->s_maxage);
	put_secs(r, "stale-while-revalidate", &cc->stale_while_revalidate);
	put_secs(r, "stale-if-error", &cc->stale_if_error);
	put_secs(r, "max-stale", &cc->max_stale);
	if (cc->max_stale_any)
		put(r, "max-stale");
	put_secs(r, "min-fresh", &cc->min_fresh);
	if (cc->no_store)
		put(r, "no-store");
	if (cc->no_cache)
		put(r, "no-cache");
	if (cc->private)
		put(r, "private");
	if (cc->public)
		put(r, "public");
	if (cc->must_revalidate)
		put(r, "must-revalidate");
	if (cc->proxy_revalidate)
		put(r, "proxy-revalidate");
	if (cc->only_if_cached)
		put(r, "only-if-cached");
	if (cc->overflow)
		put(r, "overflow");
	return r->buf;
}

static size_t lines_of(const char *const *in, struct cachecontrol_line *out)
{
	size_t n = 0;

	for (; n < LINES_MAX && in[n]; n++)
		out[n] = (struct cachecontrol_line){ in[n], strlen(in[n]) };
	return n;
}

START_TEST(test_cc_rows)
{
	const struct cc_row *row = &cc_rows[_i];
	struct cachecontrol_line l[LINES_MAX];
	struct cachecontrol cc;
	struct render r;
	size_t n = lines_of(row->lines, l);

	memset(&cc, 0xa5, sizeof(cc));
	cachecontrol_parse(row->from, l, n, &cc);
	ck_assert_msg(strcmp(cc_render(&cc, &r), row->want) == 0,
		      "row %d ('%s'): got '%s', want '%s'", _i, row->lines[0] ? row->lines[0] : "",
		      r.buf, row->want);
}
END_TEST

/* The lines of a row read as one line joined with ", " give the same. */
START_TEST(test_cc_rows_joined)
{
	const struct cc_row *row = &cc_rows[_i];
	struct cachecontrol_line l[LINES_MAX], one;
	struct cachecontrol split, joined;
	char buf[1024] = "";
	size_t n = lines_of(row->lines, l);

	for (size_t k = 0; k < n; k++) {
		if (k)
			strcat(buf, ", ");
		strcat(buf, row->lines[k]);
	}
	one = (struct cachecontrol_line){ buf, strlen(buf) };
	cachecontrol_parse(row->from, l, n, &split);
	cachecontrol_parse(row->from, &one, 1, &joined);
	ck_assert_msg(memcmp(&split, &joined, sizeof(split)) == 0, "row %d", _i);
}
END_TEST

/* A line at the limit is read; one byte more stops the reading: what came
 * before is kept, and the message is neither stored nor served fresh. */
START_TEST(test_cc_long_line)
{
	size_t len = CACHECONTROL_LINE_MAX + (size_t)_i;
	char *big = malloc(len);
	struct cachecontrol_line l[3] = { { "max-age=60", 10 },
					  { big, len },
					  { "must-revalidate", 15 } };
	struct cachecontrol cc;
	struct render r;

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', len);
	memcpy(big, "public", 6);
	cachecontrol_parse(RESP, l, 3, &cc);
	ck_assert_str_eq(cc_render(&cc, &r), _i == 0 ? "max-age=60 public must-revalidate"
						     : "max-age=60 no-store no-cache overflow");
	free(big);
}
END_TEST

/* Directives up to the limit, over several lines, are read; one more
 * stops the reading there. Empty members do not count. */
START_TEST(test_cc_many_directives)
{
	char line[CACHECONTROL_DIRECTIVES_MAX * 8 + 16] = "";
	struct cachecontrol_line l[2];
	struct cachecontrol cc;
	struct render r;

	for (int k = 0; k < CACHECONTROL_DIRECTIVES_MAX - 2; k++)
		strcat(line, ",x,");
	l[0] = (struct cachecontrol_line){ line, strlen(line) };
	l[1] = _i == 0 ? (struct cachecontrol_line){ "max-age=5, public", 17 }
		       : (struct cachecontrol_line){ "max-age=5, public, private", 26 };
	cachecontrol_parse(RESP, l, 2, &cc);
	ck_assert_str_eq(cc_render(&cc, &r), _i == 0
						 ? "max-age=5 public"
						 : "max-age=5 no-store no-cache public overflow");
}
END_TEST

/* Bytes a C string cannot carry: a NUL inside a value is no token byte. */
START_TEST(test_cc_nul)
{
	static const char v[] = "max-age=6\0, no-cache, max\0-age=5";
	struct cachecontrol_line l = { v, sizeof(v) - 1 };
	struct cachecontrol cc;
	struct render r;

	cachecontrol_parse(RESP, &l, 1, &cc);
	ck_assert_str_eq(cc_render(&cc, &r), "max-age=! no-cache");
}
END_TEST

/* A line with no bytes (p NULL) is an empty one. */
START_TEST(test_cc_null_line)
{
	struct cachecontrol_line l[2] = { { NULL, 0 }, { "no-store", 8 } };
	struct cachecontrol cc;
	struct render r;

	cachecontrol_parse(RESP, l, 2, &cc);
	ck_assert_str_eq(cc_render(&cc, &r), "no-store");
}
END_TEST

/* ==== Vary =============================================================== */

struct vary_row {
	const char *lines[LINES_MAX];
	const char *want; /* names joined by ",", or "*" */
};

static const struct vary_row vary_rows[] = {
	{ { "Accept-Encoding" }, "accept-encoding" },
	{ { "Accept-Encoding, Accept-Language" }, "accept-encoding,accept-language" },
	{ { "accept-encoding", "ACCEPT-LANGUAGE" }, "accept-encoding,accept-language" },
	{ { " \tAccept ,\tX-Tenant\t " }, "accept,x-tenant" },
	{ { ",,Accept,, ,", "", "Origin," }, "accept,origin" },
	{ { "Accept, accept, ACCEPT" }, "accept" },
	{ { "Accept", "accept" }, "accept" },
	{ { "" }, "" },
	{ { NULL }, "" },
	{ { "*" }, "*" },
	{ { "Accept, *" }, "*" },
	{ { "Accept", "*" }, "*" },
	{ { " * " }, "*" },
	{ { "*x" }, "*x" }, /* a token, not "*" */
	{ { "Accept Encoding" }, "*" },
	{ { "Accept;q=1" }, "*" },
	{ { "\"Accept\"" }, "*" },
	{ { "Accept/Encoding" }, "*" },
	{ { "Accept, (x)" }, "*" },
	{ { "Accept", "X-\x01" }, "*" },
	{ { "Accept\xc3\xa9" }, "*" },
	{ { "Accept:" }, "*" },
	{ { "X-Name-With.Dots_and~tilde" }, "x-name-with.dots_and~tilde" },
	/* 16 names are kept, a 17th makes it "*"; a repeat does not count */
	{ { "a, b, c, d, e, f, g, h", "i, j, k, l, m, n, o, p" },
	  "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p" },
	{ { "a, b, c, d, e, f, g, h", "i, j, k, l, m, n, o, p, A, p" },
	  "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p" },
	{ { "a, b, c, d, e, f, g, h", "i, j, k, l, m, n, o, p, q" }, "*" },
};

static const char *vary_render(const struct cachecontrol_vary *v, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	if (v->star) {
		ck_assert_uint_eq(v->n, 0);
		return strcpy(buf, "*");
	}
	ck_assert_uint_le(v->n, CACHECONTROL_VARY_MAX);
	for (size_t i = 0; i < v->n; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i ? "," : "", v->names[i]);

		ck_assert(n > 0 && (size_t)n < size - len);
		len += (size_t)n;
	}
	return buf;
}

START_TEST(test_vary_rows)
{
	const struct vary_row *row = &vary_rows[_i];
	struct cachecontrol_line l[LINES_MAX];
	struct cachecontrol_vary v;
	char buf[2048];
	size_t n = lines_of(row->lines, l);

	memset(&v, 0xa5, sizeof(v));
	cachecontrol_vary_parse(l, n, &v);
	ck_assert_msg(strcmp(vary_render(&v, buf, sizeof(buf)), row->want) == 0,
		      "row %d ('%s'): got '%s', want '%s'", _i, row->lines[0] ? row->lines[0] : "",
		      buf, row->want);
}
END_TEST

/* A name at the length limit is kept, one byte longer makes it "*". */
START_TEST(test_vary_long_name)
{
	char name[CACHECONTROL_VARY_NAME_MAX + 2];
	size_t len = CACHECONTROL_VARY_NAME_MAX + (size_t)_i;
	struct cachecontrol_line l = { name, len };
	struct cachecontrol_vary v;

	memset(name, 'X', len);
	cachecontrol_vary_parse(&l, 1, &v);
	ck_assert_int_eq(v.star, _i);
	if (_i == 0) {
		ck_assert_uint_eq(v.n, 1);
		ck_assert_uint_eq(strlen(v.names[0]), len);
		ck_assert_int_eq(v.names[0][0], 'x');
	}
}
END_TEST

/* A line over the limit is "*", even of spaces. */
START_TEST(test_vary_long_line)
{
	size_t len = CACHECONTROL_LINE_MAX + (size_t)_i;
	char *big = malloc(len);
	struct cachecontrol_line l = { big, len };
	struct cachecontrol_vary v;

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', len);
	memcpy(big, "Accept", 6);
	cachecontrol_vary_parse(&l, 1, &v);
	ck_assert_int_eq(v.star, _i);
	free(big);
}
END_TEST

/* ==== HTTP-dates ========================================================= */

struct date_row {
	const char *in;
	int ok;
	int64_t epoch;
};

static const struct date_row date_rows[] = {
	{ "Sun, 06 Nov 1994 08:49:37 GMT", 1, 784111777 },
	{ "Sunday, 06-Nov-94 08:49:37 GMT", 1, 784111777 },
	{ "Sun Nov  6 08:49:37 1994", 1, 784111777 },
	{ "  Sun, 06 Nov 1994 08:49:37 GMT\t", 1, 784111777 },
	{ "Thu, 01 Jan 1970 00:00:00 GMT", 1, 0 },
	{ "Sat, 25 Jul 2026 17:20:00 GMT", 1, 1785000000 },
	{ "Sun, 06 Nov 1994 08:49:37", 0, 0 },
	{ "Sun, 06 Nov 1994 08:49:37 GMT x", 0, 0 },
	{ "0", 0, 0 },
	{ "-1", 0, 0 },
	{ "", 0, 0 },
	{ "tomorrow", 0, 0 },
};

START_TEST(test_date_rows)
{
	const struct date_row *row = &date_rows[_i];
	int64_t t = -42;
	int rc = httpdate_parse(row->in, strlen(row->in), &t);

	if (!row->ok) {
		ck_assert_msg(rc == -EINVAL, "'%s' accepted", row->in);
		ck_assert_int_eq(t, -42);
		return;
	}
	ck_assert_msg(rc == 0, "'%s' refused", row->in);
	ck_assert_int_eq(t, row->epoch);
}
END_TEST

/* The value's length is what counts, not a NUL; NULL and overlong refuse. */
START_TEST(test_date_bounds)
{
	static const char v[] = "Sun, 06 Nov 1994 08:49:37 GMTxyz";
	char pad[HTTPDATE_MAX + 8];
	int64_t t;

	ck_assert_int_eq(httpdate_parse(v, sizeof(v) - 4, &t), 0);
	ck_assert_int_eq(t, 784111777);
	ck_assert_int_eq(httpdate_parse(v, sizeof(v) - 1, &t), -EINVAL);
	ck_assert_int_eq(httpdate_parse("Sun, 06 Nov 1994\0 08:49:37 GMT", 30, &t), -EINVAL);
	ck_assert_int_eq(httpdate_parse(NULL, 0, &t), -EINVAL);
	memset(pad, 'a', sizeof(pad));
	ck_assert_int_eq(httpdate_parse(pad, sizeof(pad), &t), -EINVAL);
}
END_TEST

/* ==== freshness ========================================================== */

#define NOW 1785000000 /* Sat, 25 Jul 2026 17:20:00 GMT */
#define D_NOW "Sat, 25 Jul 2026 17:20:00 GMT"
#define D_MINUS_10 "Sat, 25 Jul 2026 17:19:50 GMT"
#define D_PLUS_60 "Sat, 25 Jul 2026 17:21:00 GMT"
#define D_PLUS_3600 "Sat, 25 Jul 2026 18:20:00 GMT"
#define D_PAST "Thu, 01 Jan 2026 00:00:00 GMT"
#define MAX_AGE CACHECONTROL_FROM_MAX_AGE
#define EXPIRES CACHECONTROL_FROM_EXPIRES
#define TTL CACHECONTROL_FROM_TTL

struct fresh_row {
	const char *cc; /* one Cache-Control line, NULL: none */
	const char *date, *expires, *age;
	uint32_t ttl;
	int storable;
	enum cachecontrol_source source;
	uint32_t lifetime, age_s;
	int fresh, revalidate, never_stale;
	uint32_t swr, sie;
};

static const struct fresh_row fresh_rows[] = {
	/* max-age first, then Expires - Date, then the configured ttl */
	{ "max-age=60", D_NOW, D_PLUS_3600, NULL, 300, 1, MAX_AGE, 60, 0, 1, 0, 0, 0, 0 },
	{ NULL, D_NOW, D_PLUS_3600, NULL, 300, 1, EXPIRES, 3600, 0, 1, 0, 0, 0, 0 },
	{ "public", D_NOW, D_PLUS_60, NULL, 300, 1, EXPIRES, 60, 0, 1, 0, 0, 0, 0 },
	{ NULL, D_NOW, NULL, NULL, 300, 1, TTL, 300, 0, 1, 0, 0, 0, 0 },
	{ NULL, NULL, NULL, NULL, 0, 1, TTL, 0, 0, 0, 0, 0, 0, 0 },
	{ NULL, NULL, NULL, NULL, UINT32_MAX, 1, TTL, CACHECONTROL_DELTA_MAX, 0, 1, 0, 0, 0, 0 },
	/* s-maxage is a shared cache's: ignored */
	{ "s-maxage=600", D_NOW, NULL, NULL, 5, 1, TTL, 5, 0, 1, 0, 0, 0, 0 },
	{ "s-maxage=600, max-age=10", D_NOW, NULL, NULL, 5, 1, MAX_AGE, 10, 0, 1, 0, 0, 0, 0 },
	/* an invalid max-age is stale, and Expires is not looked at */
	{ "max-age=abc", D_NOW, D_PLUS_3600, NULL, 300, 1, MAX_AGE, 0, 0, 0, 0, 0, 0, 0 },
	{ "max-age=1, max-age=2", D_NOW, NULL, NULL, 300, 1, MAX_AGE, 0, 0, 0, 0, 0, 0, 0 },
	{ "max-age=0", D_NOW, NULL, NULL, 300, 1, MAX_AGE, 0, 0, 0, 0, 0, 0, 0 },
	{ "max-age=1099511627776", D_NOW, NULL, NULL, 0, 1, MAX_AGE, CACHECONTROL_DELTA_MAX, 0, 1,
	  0, 0, 0, 0 },
	/* Expires: against Date, else against the time received; an invalid one
	 * has expired, and one before the Date too */
	{ NULL, NULL, D_PLUS_60, NULL, 300, 1, EXPIRES, 60, 0, 1, 0, 0, 0, 0 },
	{ NULL, "garbage", D_PLUS_60, NULL, 300, 1, EXPIRES, 60, 0, 1, 0, 0, 0, 0 },
	{ NULL, D_NOW, "0", NULL, 300, 1, EXPIRES, 0, 0, 0, 0, 0, 0, 0 },
	{ NULL, D_NOW, "", NULL, 300, 1, EXPIRES, 0, 0, 0, 0, 0, 0, 0 },
	{ NULL, D_NOW, D_PAST, NULL, 300, 1, EXPIRES, 0, 0, 0, 0, 0, 0, 0 },
	/* a Date in the future (clock skew): Expires - Date still holds, age 0 */
	{ NULL, D_PLUS_60, D_PLUS_3600, NULL, 300, 1, EXPIRES, 3540, 0, 1, 0, 0, 0, 0 },
	/* age: the Age value, or now - Date, the larger */
	{ "max-age=60", D_NOW, NULL, "10", 0, 1, MAX_AGE, 60, 10, 1, 0, 0, 0, 0 },
	{ "max-age=60", D_MINUS_10, NULL, NULL, 0, 1, MAX_AGE, 60, 10, 1, 0, 0, 0, 0 },
	{ "max-age=60", D_MINUS_10, NULL, "5", 0, 1, MAX_AGE, 60, 10, 1, 0, 0, 0, 0 },
	{ "max-age=60", D_MINUS_10, NULL, "30", 0, 1, MAX_AGE, 60, 30, 1, 0, 0, 0, 0 },
	{ "max-age=60", D_NOW, NULL, "60", 0, 1, MAX_AGE, 60, 60, 0, 0, 0, 0, 0 },
	{ "max-age=60", D_NOW, NULL, " 20 , 40", 0, 1, MAX_AGE, 60, 20, 1, 0, 0, 0, 0 },
	{ "max-age=60", D_NOW, NULL, "abc", 0, 1, MAX_AGE, 60, 0, 1, 0, 0, 0, 0 },
	{ "max-age=60", D_NOW, NULL, "-5", 0, 1, MAX_AGE, 60, 0, 1, 0, 0, 0, 0 },
	{ "max-age=60", D_NOW, NULL, "99999999999", 0, 1, MAX_AGE, 60, CACHECONTROL_DELTA_MAX, 0, 0,
	  0, 0, 0 },
	{ NULL, D_PAST, NULL, NULL, 60, 1, TTL, 60, 17774400, 0, 0, 0, 0, 0 },
	/* no-store: not kept; no-cache: kept, revalidated on every use */
	{ "no-store, max-age=60", D_NOW, NULL, NULL, 0, 0, MAX_AGE, 60, 0, 1, 0, 0, 0, 0 },
	{ "max-age=60, no-cache", D_NOW, NULL, NULL, 0, 1, MAX_AGE, 60, 0, 1, 1, 1, 0, 0 },
	{ "no-cache=\"Set-Cookie\", max-age=60", D_NOW, NULL, NULL, 0, 1, MAX_AGE, 60, 0, 1, 1, 1,
	  0, 0 },
	/* a private cache stores private answers */
	{ "private, max-age=60", D_NOW, NULL, NULL, 0, 1, MAX_AGE, 60, 0, 1, 0, 0, 0, 0 },
	/* the answer's own stale allowances, unless invalid or must-revalidate */
	{ "max-age=60, stale-while-revalidate=30, stale-if-error=600", D_NOW, NULL, NULL, 0, 1,
	  MAX_AGE, 60, 0, 1, 0, 0, 30, 600 },
	{ "max-age=60, stale-if-error=abc, stale-while-revalidate=5, stale-while-revalidate=6",
	  D_NOW, NULL, NULL, 0, 1, MAX_AGE, 60, 0, 1, 0, 0, 0, 0 },
	{ "max-age=60, must-revalidate, stale-if-error=600", D_NOW, NULL, NULL, 0, 1, MAX_AGE, 60,
	  0, 1, 0, 1, 0, 0 },
	{ "max-age=60, proxy-revalidate, stale-if-error=600", D_NOW, NULL, NULL, 0, 1, MAX_AGE, 60,
	  0, 1, 0, 0, 0, 600 },
};

START_TEST(test_fresh_rows)
{
	const struct fresh_row *row = &fresh_rows[_i];
	struct cachecontrol cc;
	struct cachecontrol_line l = { row->cc, row->cc ? strlen(row->cc) : 0 };
	struct cachecontrol_answer a = {
		.cc = &cc,
		.date = row->date,
		.date_len = row->date ? strlen(row->date) : 0,
		.expires = row->expires,
		.expires_len = row->expires ? strlen(row->expires) : 0,
		.age = row->age,
		.age_len = row->age ? strlen(row->age) : 0,
	};
	struct cachecontrol_freshness f;

	cachecontrol_parse(RESP, &l, row->cc ? 1 : 0, &cc);
	memset(&f, 0xa5, sizeof(f));
	cachecontrol_freshness(&a, NOW, row->ttl, &f);
	ck_assert_msg(f.storable == row->storable && f.source == row->source &&
			  f.lifetime_s == row->lifetime && f.age_s == row->age_s,
		      "row %d: storable %d source %d lifetime %u age %u", _i, f.storable, f.source,
		      (unsigned)f.lifetime_s, (unsigned)f.age_s);
	ck_assert_int_eq(f.fresh, row->fresh);
	ck_assert_int_eq(f.revalidate, row->revalidate);
	ck_assert_int_eq(f.never_stale, row->never_stale);
	ck_assert_uint_eq(f.stale_while_revalidate_s, row->swr);
	ck_assert_uint_eq(f.stale_if_error_s, row->sie);
}
END_TEST

/* No Cache-Control at all (cc NULL) reads as an empty one; an overflowing
 * one is never stored. */
START_TEST(test_fresh_no_cc)
{
	struct cachecontrol_answer a = { 0 };
	struct cachecontrol_freshness f;
	struct cachecontrol cc;
	char big[CACHECONTROL_LINE_MAX + 1];
	struct cachecontrol_line l = { big, sizeof(big) };

	cachecontrol_freshness(&a, NOW, 30, &f);
	ck_assert_int_eq(f.storable, 1);
	ck_assert_int_eq(f.source, TTL);
	ck_assert_uint_eq(f.lifetime_s, 30);
	ck_assert_int_eq(f.fresh, 1);

	memset(big, ' ', sizeof(big));
	cachecontrol_parse(RESP, &l, 1, &cc);
	a.cc = &cc;
	cachecontrol_freshness(&a, NOW, 30, &f);
	ck_assert_int_eq(f.storable, 0);
	ck_assert_int_eq(f.revalidate, 1);
}
END_TEST

Suite *cachecontrol_suite(void)
{
	Suite *s = suite_create("cachecontrol");
	TCase *tc = tcase_create("cache-control");
	TCase *tv = tcase_create("vary");
	TCase *td = tcase_create("httpdate");
	TCase *tf = tcase_create("freshness");

	tcase_add_loop_test(tc, test_cc_rows, 0, N(cc_rows));
	tcase_add_loop_test(tc, test_cc_rows_joined, 0, N(cc_rows));
	tcase_add_loop_test(tc, test_cc_long_line, 0, 2);
	tcase_add_loop_test(tc, test_cc_many_directives, 0, 2);
	tcase_add_test(tc, test_cc_nul);
	tcase_add_test(tc, test_cc_null_line);
	suite_add_tcase(s, tc);
	tcase_add_loop_test(tv, test_vary_rows, 0, N(vary_rows));
	tcase_add_loop_test(tv, test_vary_long_name, 0, 2);
	tcase_add_loop_test(tv, test_vary_long_line, 0, 2);
	suite_add_tcase(s, tv);
	tcase_add_loop_test(td, test_date_rows, 0, N(date_rows));
	tcase_add_test(td, test_date_bounds);
	suite_add_tcase(s, td);
	tcase_add_loop_test(tf, test_fresh_rows, 0, N(fresh_rows));
	tcase_add_test(tf, test_fresh_no_cc);
	suite_add_tcase(s, tf);
	return s;
}

/* Tests of daemon/proto/ratelimit.c: the quota an upstream announces
 * (SPEC 4.12), one row per answer: each family, parameters in any order or
 * unknown, several policies, epoch and delta resets, the day clamp, and
 * malformed or extreme values that leave a family out. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "ratelimit.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define NOW 1785000000 /* 2026-07-25T17:20:00Z */
#define F(f) RATELIMIT_FAMILY_BIT(RATELIMIT_##f)
#define IETF RATELIMIT_IETF
#define DRAFT RATELIMIT_DRAFT
#define XRL RATELIMIT_X
#define NONE (-1)  /* no quota */
#define NOLIM (-1) /* no limit */
#define NO_QUOTA NONE, 0, 0, NOLIM, 0, 0

struct row {
	const char *fields[6]; /* "Name: value" */
	int family;            /* NONE: -ENOENT expected */
	uint64_t remaining;
	uint64_t reset_s;
	long long limit; /* NOLIM: has_limit 0 */
	unsigned families;
	int clamped;
};

static const struct row rows[] = {
	/* ---- the IETF draft's structured fields */
	{ { "RateLimit: \"default\";r=60;t=58", "RateLimit-Policy: \"default\";q=100;w=60" },
	  IETF,
	  60,
	  58,
	  100,
	  F(IETF),
	  0 },
	{ { "RateLimit: \"default\";t=58;r=60" }, IETF, 60, 58, NOLIM, F(IETF), 0 },
	{ { "RateLimit: \"a\";r=60;t=58;pk=:cHsdsRa894=:;x=?1;y=\"z\";zz=1.5" },
	  IETF,
	  60,
	  58,
	  NOLIM,
	  F(IETF),
	  0 },
	{ { "RateLimit: default;r=1;t=2" }, IETF, 1, 2, NOLIM, F(IETF), 0 },
	{ { "ratelimit: \"p\";r=7;t=9", "RATELIMIT-POLICY: \"p\";q=10;w=9" },
	  IETF,
	  7,
	  9,
	  10,
	  F(IETF),
	  0 },
	/* several policies: the fewest per second, in one line or several */
	{ { "RateLimit: \"day\";r=1000;t=3600, \"minute\";r=5;t=30",
	    "RateLimit-Policy: \"day\";q=5000;w=86400, \"minute\";q=10;w=60" },
	  IETF,
	  5,
	  30,
	  10,
	  F(IETF),
	  0 },
	{ { "RateLimit: \"minute\";r=5;t=30", "RateLimit: \"day\";r=1000;t=3600" },
	  IETF,
	  5,
	  30,
	  NOLIM,
	  F(IETF),
	  0 },
	{ { "RateLimit: \"a\";r=0;t=5,\t\"b\";r=0;t=50" }, IETF, 0, 50, NOLIM, F(IETF), 0 },
	/* no t: the window of the policy of the same name, else no quota */
	{ { "RateLimit: \"p\";r=10", "RateLimit-Policy: \"p\";q=100;w=60" },
	  IETF,
	  10,
	  60,
	  100,
	  F(IETF),
	  0 },
	{ { "RateLimit: \"p\";r=10", "RateLimit-Policy: \"other\";q=100;w=60" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=10" }, NO_QUOTA },
	{ { "RateLimit-Policy: \"p\";q=100;w=60" }, NO_QUOTA },
	/* the last of a repeated parameter */
	{ { "RateLimit: \"p\";r=10;r=3;t=5" }, IETF, 3, 5, NOLIM, F(IETF), 0 },
	{ { "RateLimit: \"p\";r=5;t=999999999" }, IETF, 5, 86400, NOLIM, F(IETF), 1 },
	{ { "RateLimit: \"p\";r=5;t=86400" }, IETF, 5, 86400, NOLIM, F(IETF), 0 },
	{ { "RateLimit: \"p\";r=999999999999999;t=0" },
	  IETF,
	  999999999999999ULL,
	  0,
	  NOLIM,
	  F(IETF),
	  0 },
	/* malformed: the family is ignored */
	{ { "RateLimit: \"p\";r=-1;t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=1.5;t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=5;t=-5" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=5;t" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=\"5\";t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p\";t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p;r=1;t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=1;t=5," }, NO_QUOTA },
	{ { "RateLimit: \"p\";R=1;t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p\" ;r=1;t=5" }, NO_QUOTA },
	{ { "RateLimit: (\"p\");r=1;t=5" }, NO_QUOTA },
	{ { "RateLimit: 5;r=1;t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=1234567890123456;t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=1;t=5 x" }, NO_QUOTA },
	{ { "RateLimit: \"p\\x\";r=1;t=5" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=1;t=5", "RateLimit-Policy: \"p\";q=abc" }, NO_QUOTA },
	{ { "RateLimit: \"p\";r=1;t=5", "RateLimit: \"q\";r=1;t=" }, NO_QUOTA },
	{ { "RateLimit:" }, NO_QUOTA },
	/* ---- the older draft's fields */
	{ { "RateLimit-Limit: 100", "RateLimit-Remaining: 50", "RateLimit-Reset: 30" },
	  DRAFT,
	  50,
	  30,
	  100,
	  F(DRAFT),
	  0 },
	{ { "RateLimit-Remaining: 50", "RateLimit-Reset: 30" }, DRAFT, 50, 30, NOLIM, F(DRAFT), 0 },
	{ { "RateLimit-Limit: 100, 100;w=60", "RateLimit-Remaining: 50", "RateLimit-Reset: 30" },
	  DRAFT,
	  50,
	  30,
	  100,
	  F(DRAFT),
	  0 },
	{ { "RateLimit-Remaining:  50 ", "RateLimit-Reset:\t30" },
	  DRAFT,
	  50,
	  30,
	  NOLIM,
	  F(DRAFT),
	  0 },
	/* a reset above 10^9 is a delta here: a day at most */
	{ { "RateLimit-Remaining: 50", "RateLimit-Reset: 1785000060" },
	  DRAFT,
	  50,
	  86400,
	  NOLIM,
	  F(DRAFT),
	  1 },
	{ { "RateLimit-Remaining: 50", "RateLimit-Remaining: 50", "RateLimit-Reset: 30" },
	  DRAFT,
	  50,
	  30,
	  NOLIM,
	  F(DRAFT),
	  0 },
	{ { "RateLimit-Remaining: 50", "RateLimit-Remaining: 49", "RateLimit-Reset: 30" },
	  NO_QUOTA },
	{ { "RateLimit-Remaining: 50" }, NO_QUOTA },
	{ { "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining: +50", "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining: -1", "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining:", "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining: 5 0", "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining: 0x10", "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining: 1e3", "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining: 50, 50", "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining: 1234567890123456", "RateLimit-Reset: 30" }, NO_QUOTA },
	{ { "RateLimit-Remaining: 5", "RateLimit-Reset: 2.5" }, NO_QUOTA },
	{ { "RateLimit-Limit: many", "RateLimit-Remaining: 5", "RateLimit-Reset: 3" }, NO_QUOTA },
	{ { "RateLimit-Limit: 10 x", "RateLimit-Remaining: 5", "RateLimit-Reset: 3" }, NO_QUOTA },
	/* ---- X-RateLimit-*: a delta, or an epoch time above 10^9 */
	{ { "X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 4999",
	    "X-RateLimit-Reset: 1785000060" },
	  XRL,
	  4999,
	  60,
	  5000,
	  F(X),
	  0 },
	{ { "x-ratelimit-remaining: 10", "X-RATELIMIT-RESET: 60" }, XRL, 10, 60, NOLIM, F(X), 0 },
	{ { "X-RateLimit-Remaining: 10", "X-RateLimit-Reset: 1784999000" },
	  XRL,
	  10,
	  0,
	  NOLIM,
	  F(X),
	  0 },
	{ { "X-RateLimit-Remaining: 10", "X-RateLimit-Reset: 1000000000" },
	  XRL,
	  10,
	  86400,
	  NOLIM,
	  F(X),
	  1 },
	{ { "X-RateLimit-Remaining: 10", "X-RateLimit-Reset: 1000000001" },
	  XRL,
	  10,
	  0,
	  NOLIM,
	  F(X),
	  0 },
	{ { "X-RateLimit-Remaining: 10", "X-RateLimit-Reset: 1786000000" },
	  XRL,
	  10,
	  86400,
	  NOLIM,
	  F(X),
	  1 },
	{ { "X-RateLimit-Remaining: 10", "X-RateLimit-Reset: 1785000000000" },
	  XRL,
	  10,
	  86400,
	  NOLIM,
	  F(X),
	  1 },
	{ { "X-RateLimit-Remaining: 0", "X-RateLimit-Reset: 0" }, XRL, 0, 0, NOLIM, F(X), 0 },
	{ { "X-RateLimit-Remaining: 10", "X-RateLimit-Reset: 999999999999999999999" }, NO_QUOTA },
	{ { "X-RateLimit-Remaining: 10", "X-RateLimit-Reset: 60", "X-RateLimit-Reset: 61" },
	  NO_QUOTA },
	/* ---- several families: the most conservative, and which were read */
	{ { "X-RateLimit-Remaining: 10", "X-RateLimit-Reset: 60", "RateLimit-Remaining: 100",
	    "RateLimit-Reset: 60" },
	  XRL,
	  10,
	  60,
	  NOLIM,
	  F(X) | F(DRAFT),
	  0 },
	{ { "RateLimit: \"p\";r=0;t=10", "X-RateLimit-Remaining: 100",
	    "X-RateLimit-Reset: 1785000060" },
	  IETF,
	  0,
	  10,
	  NOLIM,
	  F(IETF) | F(X),
	  0 },
	{ { "RateLimit: \"p\";r=100;t=10", "X-RateLimit-Remaining: 100",
	    "X-RateLimit-Reset: 1785000060" },
	  XRL,
	  100,
	  60,
	  NOLIM,
	  F(IETF) | F(X),
	  0 },
	{ { "RateLimit: \"p\";r=-3;t=10", "X-RateLimit-Remaining: 100", "X-RateLimit-Reset: 60" },
	  XRL,
	  100,
	  60,
	  NOLIM,
	  F(X),
	  0 },
	/* equal rates: the longer reset */
	{ { "X-RateLimit-Remaining: 5", "X-RateLimit-Reset: 10", "RateLimit-Remaining: 10",
	    "RateLimit-Reset: 20" },
	  DRAFT,
	  10,
	  20,
	  NOLIM,
	  F(X) | F(DRAFT),
	  0 },
	/* a reset of 0 constrains nothing */
	{ { "RateLimit-Remaining: 0", "RateLimit-Reset: 0", "X-RateLimit-Remaining: 100",
	    "X-RateLimit-Reset: 60" },
	  XRL,
	  100,
	  60,
	  NOLIM,
	  F(X) | F(DRAFT),
	  0 },
	/* two resets of 0: the first read stands */
	{ { "X-RateLimit-Remaining: 5", "X-RateLimit-Reset: 0", "RateLimit-Remaining: 0",
	    "RateLimit-Reset: 0" },
	  DRAFT,
	  0,
	  0,
	  NOLIM,
	  F(X) | F(DRAFT),
	  0 },
	/* ---- nothing of ours */
	{ { "Content-Type: application/json", "Retry-After: 5" }, NO_QUOTA },
	{ { NULL }, NO_QUOTA },
};

/* Splits "Name: value" rows into fields (value as sent after the colon). */
static size_t fields_of(const struct row *r, struct ratelimit_field *f)
{
	size_t n = 0;

	for (; n < 6 && r->fields[n]; n++) {
		const char *colon = strchr(r->fields[n], ':');

		ck_assert_ptr_nonnull(colon);
		f[n].name = r->fields[n];
		f[n].name_len = (size_t)(colon - r->fields[n]);
		f[n].value = colon + 1;
		f[n].value_len = strlen(colon + 1);
	}
	return n;
}

START_TEST(test_rows)
{
	const struct row *r = &rows[_i];
	struct ratelimit_field f[6];
	struct ratelimit_quota q;
	size_t n = fields_of(r, f);
	int rc;

	memset(&q, 0xa5, sizeof(q));
	rc = ratelimit_read(f, n, NOW, &q);
	if (r->family == NONE) {
		ck_assert_msg(rc == -ENOENT, "row %d ('%s'): no quota, got %d remaining %llu", _i,
			      r->fields[0] ? r->fields[0] : "", rc,
			      (unsigned long long)q.remaining);
		/* untouched on failure */
		ck_assert_uint_eq(q.remaining, 0xa5a5a5a5a5a5a5a5ULL);
		return;
	}
	ck_assert_msg(rc == 0, "row %d ('%s'): a quota", _i, r->fields[0]);
	ck_assert_int_eq(q.family, r->family);
	ck_assert_uint_eq(q.remaining, r->remaining);
	ck_assert_uint_eq(q.reset_s, r->reset_s);
	ck_assert_int_eq(q.has_limit, r->limit != NOLIM);
	if (r->limit != NOLIM)
		ck_assert_uint_eq(q.limit, (uint64_t)r->limit);
	ck_assert_uint_eq(q.families, r->families);
	ck_assert_int_eq(q.reset_clamped, r->clamped);
}
END_TEST

/* The window's length comes with the policy (w) and only with it: the
 * older families do not announce it. */
START_TEST(test_window)
{
	static const char *const with[] = { "RateLimit: \"q\";r=5;t=3",
					    "RateLimit-Policy: \"q\";q=100;w=10" };
	static const char *const huge[] = { "RateLimit: \"q\";r=5;t=3",
					    "RateLimit-Policy: \"q\";q=100;w=9999999" };
	static const char *const x[] = { "X-RateLimit-Limit: 100", "X-RateLimit-Remaining: 5",
					 "X-RateLimit-Reset: 3" };
	struct row r;
	struct ratelimit_field f[6];
	struct ratelimit_quota q;

	memset(&r, 0, sizeof(r));
	memcpy(r.fields, with, sizeof(with));
	ck_assert_int_eq(ratelimit_read(f, fields_of(&r, f), NOW, &q), 0);
	ck_assert_uint_eq(q.window_s, 10);
	memcpy(r.fields, huge, sizeof(huge));
	ck_assert_int_eq(ratelimit_read(f, fields_of(&r, f), NOW, &q), 0);
	ck_assert_uint_eq(q.window_s, RATELIMIT_RESET_MAX_S);
	memcpy(r.fields, x, sizeof(x));
	ck_assert_int_eq(ratelimit_read(f, fields_of(&r, f), NOW, &q), 0);
	ck_assert_uint_eq(q.window_s, 0);
}
END_TEST

/* A line longer than the limit is malformed; at the limit it is read. */
START_TEST(test_long_line)
{
	static const char head[] = "\"p\";r=5;t=10";
	size_t len = RATELIMIT_VALUE_MAX + _i; /* _i 0: at the limit, 1: over */
	char *value = malloc(len);
	struct ratelimit_field f = { "RateLimit", 9, value, len };
	struct ratelimit_quota q;

	ck_assert_ptr_nonnull(value);
	memset(value, ' ', len);
	memcpy(value, head, sizeof(head) - 1);
	ck_assert_int_eq(ratelimit_read(&f, 1, NOW, &q), _i == 0 ? 0 : -ENOENT);
	free(value);
}
END_TEST

/* Members up to the limit across lines are read; one more is malformed. */
START_TEST(test_many_members)
{
	struct ratelimit_field f[RATELIMIT_ITEMS_MAX + 1];
	char values[RATELIMIT_ITEMS_MAX + 1][64];
	struct ratelimit_quota q;
	size_t n = RATELIMIT_ITEMS_MAX + (size_t)_i;

	for (size_t k = 0; k < n; k++) {
		/* the last member is the strictest */
		snprintf(values[k], sizeof(values[k]), "\"p%zu\";r=%zu;t=100", k, n - k);
		f[k] = (struct ratelimit_field){ "RateLimit", 9, values[k], strlen(values[k]) };
	}
	if (_i == 0) {
		ck_assert_int_eq(ratelimit_read(f, n, NOW, &q), 0);
		ck_assert_uint_eq(q.remaining, 1);
	} else {
		ck_assert_int_eq(ratelimit_read(f, n, NOW, &q), -ENOENT);
	}
}
END_TEST

/* Bytes a header can carry that a C string cannot: a NUL inside a value. */
START_TEST(test_nul_in_value)
{
	static const char v[] = "\"p\";r=5\0;t=10";
	static const char tok[] = "p\0q;r=5;t=10";
	struct ratelimit_field f = { "RateLimit", 9, v, sizeof(v) - 1 };
	struct ratelimit_quota q;

	ck_assert_int_eq(ratelimit_read(&f, 1, NOW, &q), -ENOENT);
	f.value = tok;
	f.value_len = sizeof(tok) - 1;
	ck_assert_int_eq(ratelimit_read(&f, 1, NOW, &q), -ENOENT);
}
END_TEST

Suite *ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("read");

	tcase_add_loop_test(tc, test_rows, 0, N(rows));
	tcase_add_loop_test(tc, test_long_line, 0, 2);
	tcase_add_loop_test(tc, test_many_members, 0, 2);
	tcase_add_test(tc, test_nul_in_value);
	tcase_add_test(tc, test_window);
	suite_add_tcase(s, tc);
	return s;
}

/* Tests of daemon/policy/tokenclock.c: a token's refresh point and expiry
 * by table (refresh_before against 80% of the lifetime, a lifetime of one
 * second, refresh_before longer than the lifetime, none), time running
 * past expiry, the 401 rule's one second, and the fetch's backoff. */
#include <stdint.h>

#include <check.h>

#include "suites.h"

#include "tokenclock.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define S 1000000ULL
#define MS 1000ULL
#define T0 (5000 * S) /* the request was sent */

struct row {
	uint32_t lifetime_s;
	uint64_t refresh_before_us;
	uint64_t refresh_after_us; /* from T0 */
	uint64_t expires_after_us; /* from T0 */
};

static const struct row rows[] = {
	{ 3600, 60 * S, 3540 * S, 3600 * S }, /* refresh_before wins */
	{ 300, 60 * S, 240 * S, 300 * S },    /* both at 80% */
	{ 200, 60 * S, 160 * S, 200 * S },    /* 80% of a shorter lifetime */
	{ 30, 60 * S, 24 * S, 30 * S },       /* refresh_before past the lifetime */
	{ 1, 60 * S, 800 * MS, 1 * S },       /* one second */
	{ 1, 0, 1 * S, 1 * S },               /* no lead: at expiry */
	{ 3600, 0, 3600 * S, 3600 * S },      /* no lead */
	{ 3600, 1, 3600 * S - 1, 3600 * S },  /* a microsecond */
	{ 0, 60 * S, 800 * MS, 1 * S },       /* 0 reads as one second */
	{ 31536000, 60 * S, 31536000 * S - 60 * S, 31536000 * S },
	{ UINT32_MAX, UINT64_MAX, (uint64_t)UINT32_MAX *S / 100 * 80, (uint64_t)UINT32_MAX *S },
};

START_TEST(test_rows)
{
	const struct row *r = &rows[_i];
	struct tokenclock c;
	uint64_t refresh = T0 + r->refresh_after_us, expires = T0 + r->expires_after_us;

	tokenclock_start(&c, T0, T0 + 250 * MS, r->lifetime_s, r->refresh_before_us);
	ck_assert_uint_eq(c.refresh_us, refresh);
	ck_assert_uint_eq(c.expires_us, expires);
	ck_assert_int_eq(tokenclock_refresh_due(&c, refresh - 1), 0);
	ck_assert_int_eq(tokenclock_refresh_due(&c, refresh), 1);
	ck_assert_int_eq(tokenclock_expired(&c, expires - 1), 0);
	ck_assert_int_eq(tokenclock_expired(&c, expires), 1);
	ck_assert_uint_eq(tokenclock_remaining_us(&c, expires - 1), 1);
	ck_assert_uint_eq(tokenclock_remaining_us(&c, T0), r->expires_after_us);
}
END_TEST

/* Past expiry everything says so, and keeps saying so. */
START_TEST(test_past_expiry)
{
	struct tokenclock c;

	tokenclock_start(&c, T0, T0 + S / 2, 10, 60 * S);
	for (uint64_t now = T0 + 10 * S; now < T0 + 1000 * S; now += 7 * S) {
		ck_assert_int_eq(tokenclock_expired(&c, now), 1);
		ck_assert_int_eq(tokenclock_refresh_due(&c, now), 1);
		ck_assert_uint_eq(tokenclock_remaining_us(&c, now), 0);
		ck_assert_uint_eq(tokenclock_age_us(&c, now), now - (T0 + S / 2));
	}
	ck_assert_uint_eq(tokenclock_remaining_us(&c, UINT64_MAX), 0);
	ck_assert_int_eq(tokenclock_expired(&c, UINT64_MAX), 1);
}
END_TEST

/* The lifetime counts from the request, the age from the answer; an answer
 * stamped before its request is taken as arriving with it. */
START_TEST(test_request_and_answer)
{
	struct tokenclock c;

	tokenclock_start(&c, T0, T0 + 3 * S, 60, 10 * S);
	ck_assert_uint_eq(c.expires_us, T0 + 60 * S);
	ck_assert_uint_eq(tokenclock_age_us(&c, T0 + 3 * S), 0);
	ck_assert_uint_eq(tokenclock_age_us(&c, T0 + 1 * S), 0);
	ck_assert_uint_eq(tokenclock_age_us(&c, T0 + 5 * S), 2 * S);
	tokenclock_start(&c, T0, T0 - S, 60, 10 * S);
	ck_assert_uint_eq(c.obtained_us, T0);
	/* a clock near its end saturates rather than wraps */
	tokenclock_start(&c, UINT64_MAX - S, UINT64_MAX - S, 60, 10 * S);
	ck_assert_uint_eq(c.expires_us, UINT64_MAX);
	ck_assert_int_eq(tokenclock_expired(&c, UINT64_MAX - S), 0);
}
END_TEST

/* A 401 refreshes only a token obtained more than a second before the
 * attempt. */
START_TEST(test_401)
{
	struct tokenclock c;
	uint64_t got = T0 + 2 * S;

	tokenclock_start(&c, T0, got, 3600, 60 * S);
	ck_assert_int_eq(tokenclock_401_refreshes(&c, got - S), 0);
	ck_assert_int_eq(tokenclock_401_refreshes(&c, got), 0);
	ck_assert_int_eq(tokenclock_401_refreshes(&c, got + S / 2), 0);
	ck_assert_int_eq(tokenclock_401_refreshes(&c, got + S), 0);
	ck_assert_int_eq(tokenclock_401_refreshes(&c, got + S + 1), 1);
	ck_assert_int_eq(tokenclock_401_refreshes(&c, got + 3000 * S), 1);
	/* also past expiry: the attempt was made with it */
	ck_assert_int_eq(tokenclock_401_refreshes(&c, got + 4000 * S), 1);
}
END_TEST

/* The fetch's backoff grows as the profile's does, up to its max, and is
 * never shorter than the floor, whatever the jitter draws. */
START_TEST(test_backoff)
{
	struct retry_policy p = { .backoff_base_ms = 200, .backoff_max_ms = 3000 };
	struct rng rng;
	uint32_t prev = 0;

	rng_seed(&rng, 42);
	p.jitter = JITTER_NONE;
	ck_assert_uint_eq(tokenclock_retry_wait_ms(&p, 1, 0, &rng), 200);
	ck_assert_uint_eq(tokenclock_retry_wait_ms(&p, 2, 200, &rng), 400);
	ck_assert_uint_eq(tokenclock_retry_wait_ms(&p, 5, 0, &rng), 3000);
	ck_assert_uint_eq(tokenclock_retry_wait_ms(&p, 1000, 0, &rng), 3000);
	p.backoff_base_ms = 0;
	p.backoff_max_ms = 0;
	ck_assert_uint_eq(tokenclock_retry_wait_ms(&p, 1, 0, &rng), TOKENCLOCK_RETRY_MIN_MS);
	p.backoff_base_ms = 200;
	p.backoff_max_ms = 3000;
	for (int j = JITTER_FULL; j <= JITTER_NONE; j++) {
		p.jitter = (enum jitter)j;
		for (uint32_t n = 1; n < 40; n++) {
			uint32_t w = tokenclock_retry_wait_ms(&p, n, prev, &rng);

			ck_assert_uint_ge(w, TOKENCLOCK_RETRY_MIN_MS);
			ck_assert_uint_le(w, 3000);
			prev = w;
		}
	}
}
END_TEST

Suite *tokenclock_suite(void)
{
	Suite *s = suite_create("tokenclock");
	TCase *tc = tcase_create("clock");

	tcase_add_loop_test(tc, test_rows, 0, N(rows));
	tcase_add_test(tc, test_past_expiry);
	tcase_add_test(tc, test_request_and_answer);
	tcase_add_test(tc, test_401);
	tcase_add_test(tc, test_backoff);
	suite_add_tcase(s, tc);
	return s;
}

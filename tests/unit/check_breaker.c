/* Tests of daemon/policy/breaker.c: the circuit breaker of SPEC 4.8.
 * Time is a plain uint64_t of microseconds, written in milliseconds with MS(). */
#include <stdint.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "breaker.h"
#include "config.h"
#include "retry.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MS(ms) ((uint64_t)(ms) * 1000)

static struct retry_policy builtin_retry(void)
{
	struct policy pol;

	config_builtin_policy(&pol);
	return pol.retry;
}

static struct breaker_policy builtin_breaker(void)
{
	struct policy pol;

	config_builtin_policy(&pol);
	return pol.breaker;
}

/* ==== breaker (SPEC 4.8) ================================================ */

/* The built-in policy: window 10s, 20 requests, 50%, open 5s, 1 probe. */
static void breaker_default(struct breaker *b)
{
	struct breaker_policy pol = builtin_breaker();

	memset(b, 0, sizeof(*b));
	breaker_configure(b, &pol);
}

static void record_n(struct breaker *b, uint64_t now, uint32_t n, int failure)
{
	for (uint32_t i = 0; i < n; i++)
		breaker_record(b, now, failure, 0);
}

static const char *state_str(enum breaker_state s)
{
	return s == BREAKER_CLOSED ? "closed" : s == BREAKER_OPEN ? "open" : "half-open";
}

#define assert_state(b, now, expect)                                                               \
	do {                                                                                       \
		enum breaker_state got_ = breaker_state((b), (now));                               \
		ck_assert_msg(got_ == (expect), "at %lu µs: %s, expected %s",                      \
			      (unsigned long)(now), state_str(got_), state_str(expect));           \
	} while (0)

/* Opens the default breaker at now with 20 failures. */
static void open_it(struct breaker *b, uint64_t now)
{
	record_n(b, now, 20, 1);
	assert_state(b, now, BREAKER_OPEN);
}

START_TEST(test_breaker_below_min)
{
	struct breaker b;

	breaker_default(&b);
	assert_state(&b, MS(0), BREAKER_CLOSED);
	record_n(&b, MS(0), 19, 1);
	assert_state(&b, MS(0), BREAKER_CLOSED);
	ck_assert_int_eq(breaker_admit(&b, MS(0)), BREAKER_ALLOW);
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(0)), 0);
	breaker_record(&b, MS(0), 1, 0);
	assert_state(&b, MS(0), BREAKER_OPEN);
}
END_TEST

/* Threshold table: `ok` successes then `fail` failures, all in one slot. */
struct threshold_case {
	uint32_t min;
	double ratio;
	uint32_t ok, fail;
	enum breaker_state expect;
};

static const struct threshold_case threshold_cases[] = {
	{ 20, 0.5, 10, 10, BREAKER_OPEN },   /* exactly 50% of exactly 20 */
	{ 20, 0.5, 10, 9, BREAKER_CLOSED },  /* 19 attempts */
	{ 20, 0.5, 11, 9, BREAKER_CLOSED },  /* 45% */
	{ 20, 0.5, 11, 10, BREAKER_CLOSED }, /* 10/21 */
	{ 20, 0.5, 11, 11, BREAKER_OPEN },   /* 11/22 */
	{ 20, 0.5, 0, 20, BREAKER_OPEN },
	{ 20, 0.5, 100, 99, BREAKER_CLOSED },
	{ 20, 0.5, 100, 100, BREAKER_OPEN },
	{ 10, 0.7, 3, 7, BREAKER_OPEN },
	{ 10, 0.7, 4, 6, BREAKER_CLOSED },
	{ 5, 1.0, 0, 5, BREAKER_OPEN },
	{ 5, 1.0, 1, 5, BREAKER_CLOSED },
	{ 20, 0.25, 15, 5, BREAKER_OPEN },
	{ 20, 0.25, 16, 5, BREAKER_CLOSED },
	{ 1, 0.5, 0, 1, BREAKER_OPEN },
	{ 4, 0.75, 1, 3, BREAKER_OPEN },
	/* the ratio is reached exactly although failure_ratio × attempts is a
	 * hair above the integer in binary (0.07 * 100 = 7.000000000000001) */
	{ 100, 0.07, 93, 7, BREAKER_OPEN },
	{ 100, 0.55, 45, 55, BREAKER_OPEN },
	{ 50, 0.14, 43, 7, BREAKER_OPEN },
	{ 25, 0.28, 18, 7, BREAKER_OPEN },
};

START_TEST(test_breaker_threshold)
{
	const struct threshold_case *c = &threshold_cases[_i];
	struct breaker_policy pol = builtin_breaker();
	struct breaker b;
	enum breaker_state got;

	memset(&b, 0, sizeof(b));
	pol.min_requests = c->min;
	pol.failure_ratio = c->ratio;
	breaker_configure(&b, &pol);
	record_n(&b, MS(100), c->ok, 0);
	record_n(&b, MS(100), c->fail, 1);
	got = breaker_state(&b, MS(100));
	ck_assert_msg(got == c->expect, "min %u ratio %g, %u ok then %u failures: %s, expected %s",
		      c->min, c->ratio, c->ok, c->fail, state_str(got), state_str(c->expect));
}
END_TEST

/* What counts as a failure comes from retry_is_failure: a 429 or another
 * 4xx never opens the breaker, a 5xx does. */
START_TEST(test_breaker_failures_by_outcome)
{
	static const int statuses[] = { 429, 408, 425, 400, 404, 409, 200, 304 };
	struct retry_policy rp = builtin_retry();
	struct breaker b;

	for (int i = 0; i < N(statuses); i++) {
		breaker_default(&b);
		for (int k = 0; k < 100; k++) {
			enum outcome o = retry_classify_status(&rp, statuses[i]);

			breaker_record(&b, MS(0), retry_is_failure(o, statuses[i]), 0);
		}
		ck_assert_msg(breaker_state(&b, MS(0)) == BREAKER_CLOSED, "100 × %d opened the breaker",
			      statuses[i]);
	}
	{
		static const int fives[] = { 500, 502, 503, 504, 501, 505 };

		for (int i = 0; i < N(fives); i++) {
			breaker_default(&b);
			for (int k = 0; k < 20; k++) {
				enum outcome o = retry_classify_status(&rp, fives[i]);

				breaker_record(&b, MS(0), retry_is_failure(o, fives[i]), 0);
			}
			ck_assert_msg(breaker_state(&b, MS(0)) == BREAKER_OPEN,
				      "20 × %d left it closed", fives[i]);
		}
	}
	breaker_default(&b);
	for (int k = 0; k < 20; k++)
		breaker_record(&b, MS(0), retry_is_failure(k % 2 ? OUTCOME_RESET : OUTCOME_TIMEOUT, 0),
			       0);
	assert_state(&b, MS(0), BREAKER_OPEN);
	breaker_default(&b);
	for (int k = 0; k < 20; k++)
		breaker_record(&b, MS(0), retry_is_failure(OUTCOME_CONNECT, 0), 0);
	assert_state(&b, MS(0), BREAKER_OPEN);
}
END_TEST

START_TEST(test_breaker_open)
{
	struct breaker b;

	breaker_default(&b);
	open_it(&b, MS(1000));
	for (uint64_t t = 1000; t < 6000; t += 499) {
		ck_assert_int_eq(breaker_admit(&b, MS(t)), BREAKER_REJECT);
		ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(t)), 6000 - t);
	}
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(1000)), 5000);
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(2500)), 3500);
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(5999)), 1);
	ck_assert_int_eq(breaker_admit(&b, MS(5999)), BREAKER_REJECT);
	/* a part of a millisecond left still counts as one */
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(6000) - 1), 1);
	ck_assert_int_eq(breaker_admit(&b, MS(6000) - 1), BREAKER_REJECT);
	/* results reported while open change nothing */
	record_n(&b, MS(5000), 10, 0);
	{
		/* Tripped inside a millisecond: whole milliseconds of the clock
		 * are counted, as Retry-After and /status always showed them. */
		struct breaker c;

		breaker_default(&c);
		open_it(&c, MS(1000) + 700);
		ck_assert_uint_eq(breaker_retry_after_ms(&c, MS(2000) + 500), 4000);
		ck_assert_uint_eq(breaker_retry_after_ms(&c, MS(6000) + 500), 1);
	}
	assert_state(&b, MS(5999), BREAKER_OPEN);
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(6000)), 0);
	assert_state(&b, MS(6000), BREAKER_HALF_OPEN);
}
END_TEST

START_TEST(test_breaker_half_open_probes)
{
	struct breaker_policy pol = builtin_breaker();
	struct breaker b;
	uint32_t probes = (uint32_t)_i;

	memset(&b, 0, sizeof(b));
	pol.half_open_probes = probes;
	breaker_configure(&b, &pol);
	open_it(&b, MS(0));
	ck_assert_int_eq(breaker_admit(&b, MS(4999)), BREAKER_REJECT);
	for (uint32_t i = 0; i < probes; i++)
		ck_assert_msg(breaker_admit(&b, MS(5000 + i)) == BREAKER_ALLOW_PROBE,
			      "%u probes: request %u not a probe", probes, i + 1);
	ck_assert_int_eq(breaker_admit(&b, MS(5100)), BREAKER_REJECT);
	ck_assert_int_eq(breaker_admit(&b, MS(9000)), BREAKER_REJECT);
	assert_state(&b, MS(9000), BREAKER_HALF_OPEN);
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(9000)), 0);
}
END_TEST

START_TEST(test_breaker_probe_success)
{
	struct breaker b;

	breaker_default(&b);
	open_it(&b, MS(0));
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_ALLOW_PROBE);
	breaker_record(&b, MS(5100), 0, 1);
	assert_state(&b, MS(5100), BREAKER_CLOSED);
	ck_assert_int_eq(breaker_admit(&b, MS(5100)), BREAKER_ALLOW);
	ck_assert_int_eq(breaker_admit(&b, MS(5100)), BREAKER_ALLOW);
	/* a fresh window: 19 failures are not enough, the 20th is */
	record_n(&b, MS(5200), 19, 1);
	assert_state(&b, MS(5200), BREAKER_CLOSED);
	breaker_record(&b, MS(5200), 1, 0);
	assert_state(&b, MS(5200), BREAKER_OPEN);
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(5200)), 5000);
}
END_TEST

START_TEST(test_breaker_probe_failure)
{
	struct breaker b;

	breaker_default(&b);
	open_it(&b, MS(0));
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_ALLOW_PROBE);
	breaker_record(&b, MS(5300), 1, 1);
	assert_state(&b, MS(5300), BREAKER_OPEN);
	/* a new open_for from the probe's failure */
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(5300)), 5000);
	ck_assert_int_eq(breaker_admit(&b, MS(10299)), BREAKER_REJECT);
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(10299)), 1);
	ck_assert_int_eq(breaker_admit(&b, MS(10300)), BREAKER_ALLOW_PROBE);
	ck_assert_int_eq(breaker_admit(&b, MS(10300)), BREAKER_REJECT);
	breaker_record(&b, MS(10400), 0, 1);
	assert_state(&b, MS(10400), BREAKER_CLOSED);
}
END_TEST

/* Results of requests that were not probes (stragglers from before the
 * breaker opened) do not decide a half-open breaker. */
START_TEST(test_breaker_half_open_ignores_others)
{
	struct breaker b;

	breaker_default(&b);
	open_it(&b, MS(0));
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_ALLOW_PROBE);
	record_n(&b, MS(5001), 30, 1);
	assert_state(&b, MS(5001), BREAKER_HALF_OPEN);
	record_n(&b, MS(5002), 30, 0);
	assert_state(&b, MS(5002), BREAKER_HALF_OPEN);
	/* the probe is still out: nobody else goes through */
	ck_assert_int_eq(breaker_admit(&b, MS(5003)), BREAKER_REJECT);
	breaker_record(&b, MS(5004), 0, 1);
	assert_state(&b, MS(5004), BREAKER_CLOSED);
	/* and the ignored failures are not in the closed window */
	record_n(&b, MS(5005), 19, 1);
	assert_state(&b, MS(5005), BREAKER_CLOSED);
}
END_TEST

START_TEST(test_breaker_probe_abandoned)
{
	struct breaker_policy pol = builtin_breaker();
	struct breaker b;

	breaker_default(&b);
	open_it(&b, MS(0));
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_ALLOW_PROBE);
	ck_assert_int_eq(breaker_admit(&b, MS(5001)), BREAKER_REJECT);
	breaker_probe_abandoned(&b);
	ck_assert_int_eq(breaker_admit(&b, MS(5002)), BREAKER_ALLOW_PROBE);
	ck_assert_int_eq(breaker_admit(&b, MS(5003)), BREAKER_REJECT);
	assert_state(&b, MS(5003), BREAKER_HALF_OPEN);

	/* with 2 probes: one abandoned frees exactly one slot */
	memset(&b, 0, sizeof(b));
	pol.half_open_probes = 2;
	breaker_configure(&b, &pol);
	open_it(&b, MS(0));
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_ALLOW_PROBE);
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_ALLOW_PROBE);
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_REJECT);
	breaker_probe_abandoned(&b);
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_ALLOW_PROBE);
	ck_assert_int_eq(breaker_admit(&b, MS(5000)), BREAKER_REJECT);

	/* an abandoned probe of a closed breaker changes nothing */
	breaker_default(&b);
	breaker_probe_abandoned(&b);
	assert_state(&b, MS(0), BREAKER_CLOSED);
	ck_assert_int_eq(breaker_admit(&b, MS(0)), BREAKER_ALLOW);
}
END_TEST

START_TEST(test_breaker_disabled)
{
	struct breaker_policy pol = builtin_breaker();
	struct breaker b;

	memset(&b, 0, sizeof(b));
	pol.enabled = 0;
	breaker_configure(&b, &pol);
	for (uint64_t t = 0; t < 20000; t += 100) {
		breaker_record(&b, MS(t), 1, 0);
		ck_assert_int_eq(breaker_admit(&b, MS(t)), BREAKER_ALLOW);
		ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(t)), 0);
	}
	assert_state(&b, MS(20000), BREAKER_CLOSED);

	/* disabling an open breaker lets everything through */
	breaker_default(&b);
	open_it(&b, MS(0));
	breaker_configure(&b, &pol);
	ck_assert_int_eq(breaker_admit(&b, MS(1)), BREAKER_ALLOW);
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(1)), 0);
}
END_TEST

/* Failures older than the window no longer count. */
START_TEST(test_breaker_window_expiry)
{
	struct breaker b;

	/* 15 failures at 0 and 5 more 9 s later: all in the window */
	breaker_default(&b);
	record_n(&b, MS(0), 15, 1);
	record_n(&b, MS(9000), 5, 1);
	assert_state(&b, MS(9000), BREAKER_OPEN);

	/* 10.5 s later the first 15 are gone */
	breaker_default(&b);
	record_n(&b, MS(0), 15, 1);
	record_n(&b, MS(10500), 5, 1);
	assert_state(&b, MS(10500), BREAKER_CLOSED);

	/* 11 s later the first 15 are gone */
	breaker_default(&b);
	record_n(&b, MS(0), 15, 1);
	record_n(&b, MS(11000), 5, 1);
	assert_state(&b, MS(11000), BREAKER_CLOSED);
	record_n(&b, MS(11000), 14, 1);
	assert_state(&b, MS(11000), BREAKER_CLOSED);
	breaker_record(&b, MS(11000), 1, 0);
	assert_state(&b, MS(11000), BREAKER_OPEN);

	/* old successes do not dilute new failures either */
	breaker_default(&b);
	record_n(&b, MS(0), 100, 0);
	record_n(&b, MS(20000), 20, 1);
	assert_state(&b, MS(20000), BREAKER_OPEN);

	/* slot by slot: one failure then one success a second. A full window
	 * (20 attempts) is never there when a failure is counted, 19 at most:
	 * it stays closed as long as old seconds slide out */
	breaker_default(&b);
	for (uint64_t t = 0; t < 60000; t += 1000) {
		record_n(&b, MS(t), 1, 1);
		record_n(&b, MS(t), 1, 0);
		assert_state(&b, MS(t), BREAKER_CLOSED);
	}
	/* success first: the failure at 9 s completes 10 of 20 */
	breaker_default(&b);
	for (uint64_t t = 0; t < 9000; t += 1000) {
		record_n(&b, MS(t), 1, 0);
		record_n(&b, MS(t), 1, 1);
		assert_state(&b, MS(t), BREAKER_CLOSED);
	}
	record_n(&b, MS(9000), 1, 0);
	record_n(&b, MS(9000), 1, 1);
	assert_state(&b, MS(9000), BREAKER_OPEN);
}
END_TEST

/* What fleet.c applies from other instances: an opening that is never
 * shortened, a close, and nothing at all while the breaker is off. */
START_TEST(test_breaker_force)
{
	struct breaker b = { 0 };
	struct breaker_policy pol = { .enabled = 1,
				      .window_ms = 10000,
				      .min_requests = 5,
				      .failure_ratio = 0.5,
				      .open_for_ms = 1000,
				      .half_open_probes = 1 };

	breaker_configure(&b, &pol);
	breaker_force_open(&b, MS(100), MS(600));
	ck_assert_int_eq(breaker_state(&b, MS(100)), BREAKER_OPEN);
	breaker_force_open(&b, MS(100), MS(300)); /* never shortened */
	ck_assert_uint_eq(breaker_retry_after_ms(&b, MS(100)), 500);
	ck_assert_int_eq(breaker_state(&b, MS(600)), BREAKER_HALF_OPEN);
	breaker_force_close(&b);
	ck_assert_int_eq(breaker_state(&b, MS(700)), BREAKER_CLOSED);
	breaker_force_open(&b, MS(700), MS(700)); /* already over: nothing */
	ck_assert_int_eq(breaker_state(&b, MS(700)), BREAKER_CLOSED);
	pol.enabled = 0;
	breaker_configure(&b, &pol);
	breaker_force_open(&b, MS(700), MS(5000));
	ck_assert_int_eq(breaker_state(&b, MS(700)), BREAKER_CLOSED);
}
END_TEST

Suite *breaker_suite(void)
{
	Suite *s = suite_create("breaker");
	TCase *tc = tcase_create("breaker");

	tcase_add_test(tc, test_breaker_below_min);
	tcase_add_loop_test(tc, test_breaker_threshold, 0, N(threshold_cases));
	tcase_add_test(tc, test_breaker_failures_by_outcome);
	tcase_add_test(tc, test_breaker_open);
	tcase_add_loop_test(tc, test_breaker_half_open_probes, 1, 5);
	tcase_add_test(tc, test_breaker_probe_success);
	tcase_add_test(tc, test_breaker_probe_failure);
	tcase_add_test(tc, test_breaker_half_open_ignores_others);
	tcase_add_test(tc, test_breaker_probe_abandoned);
	tcase_add_test(tc, test_breaker_disabled);
	tcase_add_test(tc, test_breaker_window_expiry);
	tcase_add_test(tc, test_breaker_force);
	suite_add_tcase(s, tc);
	return s;
}

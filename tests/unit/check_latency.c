/* The latency estimate behind hedge.delay: pNN (buckets, quantiles, the
 * sliding window, the minimum sample count) and the adaptive concurrency
 * limiter (minimum-RTT measurement, the gradient both ways, bounds,
 * re-measurement), both over an injected clock. */
#include <errno.h>
#include <stdint.h>

#include <check.h>

#include "suites.h"

#include "latency.h"
#include "limiter.h"

#define S(x) ((uint64_t)(x) * 1000000ULL)

START_TEST(test_buckets)
{
	/* Every sample lies in its bucket: at most the upper bound, above the
	 * previous bucket's, and the bound at most 25% above the sample. */
	for (uint64_t us = 1; us < 100000000; us = us * 9 / 8 + 1) {
		unsigned b = latency_bucket(us);

		ck_assert_uint_lt(us, latency_bucket_upper(b));
		if (b > 0)
			ck_assert_uint_ge(us, latency_bucket_upper(b - 1));
		if (us >= 64)
			ck_assert_uint_le(latency_bucket_upper(b), us + us / 4 + 1);
	}
	ck_assert_uint_eq(latency_bucket(0), 0);
	ck_assert_uint_eq(latency_bucket(UINT64_MAX), LATENCY_BUCKETS - 1);
}
END_TEST

START_TEST(test_quantiles)
{
	struct latency l;
	uint64_t q = 0;

	latency_init(&l);
	ck_assert_int_eq(latency_quantile(&l, S(100), 50, &q), -EAGAIN);
	for (int i = 1; i <= 100; i++)
		latency_observe(&l, S(100), (uint64_t)i * 1000);
	ck_assert_uint_eq(latency_count(&l, S(100)), 100);
	ck_assert_int_eq(latency_quantile(&l, S(100), 50, &q), 0);
	ck_assert_uint_ge(q, 50000);
	ck_assert_uint_le(q, 62500);
	ck_assert_int_eq(latency_quantile(&l, S(100), 99, &q), 0);
	ck_assert_uint_ge(q, 99000);
	ck_assert_uint_le(q, 123750);
	ck_assert_int_eq(latency_quantile(&l, S(100), 0, &q), -EINVAL);
	ck_assert_int_eq(latency_quantile(&l, S(100), 100, &q), -EINVAL);
}
END_TEST

/* Fewer than LATENCY_MIN_SAMPLES: no estimate. */
START_TEST(test_min_samples)
{
	struct latency l;
	uint64_t q = 7;

	latency_init(&l);
	for (int i = 0; i < LATENCY_MIN_SAMPLES - 1; i++)
		latency_observe(&l, S(5), 1000);
	ck_assert_int_eq(latency_quantile(&l, S(5), 95, &q), -EAGAIN);
	ck_assert_uint_eq(q, 7);
	latency_observe(&l, S(5), 1000);
	ck_assert_int_eq(latency_quantile(&l, S(5), 95, &q), 0);
}
END_TEST

/* Samples leave the window after LATENCY_SUBWINDOWS sub-windows. */
START_TEST(test_window_slides)
{
	struct latency l;
	uint64_t q;

	latency_init(&l);
	for (int i = 0; i < 50; i++)
		latency_observe(&l, S(100), 100000);
	ck_assert_uint_eq(latency_count(&l, S(100) + 25000000), 50);
	for (int i = 0; i < 50; i++)
		latency_observe(&l, S(125), 1000);
	/* Both halves live: the median is at most the slow bucket. */
	ck_assert_int_eq(latency_quantile(&l, S(125), 90, &q), 0);
	ck_assert_uint_ge(q, 100000);
	/* 30 s later only the fast half is left. */
	ck_assert_uint_eq(latency_count(&l, S(131)), 50);
	ck_assert_int_eq(latency_quantile(&l, S(131), 90, &q), 0);
	ck_assert_uint_le(q, 1250);
	ck_assert_uint_eq(latency_count(&l, S(200)), 0);
}
END_TEST

/* ---- limiter ---- */

/* Feeds n samples of rtt_us spread over ms milliseconds from *now. */
static void feed_rtt(struct limiter *l, uint64_t *now, int n, uint64_t rtt_us, uint64_t ms)
{
	for (int i = 0; i < n; i++) {
		*now += ms * 1000 / (uint64_t)n;
		limiter_sample(l, *now, rtt_us);
	}
}

START_TEST(test_limiter_measures_then_grows)
{
	struct limiter l;
	uint64_t now = S(10);

	limiter_init(&l, 4, 512, now);
	ck_assert_uint_eq(limiter_limit(&l), 4);
	feed_rtt(&l, &now, LIMITER_MIN_RTT_SAMPLES, 20000, 50);
	ck_assert_uint_eq(l.min_rtt_us, 20000);
	ck_assert_int_eq(l.measuring, 0);
	/* RTT at the minimum: the gradient is 1.25 plus headroom: it grows. */
	for (int i = 0; i < 20; i++)
		feed_rtt(&l, &now, 10, 20000, LIMITER_INTERVAL_MS);
	ck_assert_uint_eq(limiter_limit(&l), 512);
}
END_TEST

START_TEST(test_limiter_shrinks_on_queueing)
{
	struct limiter l;
	uint64_t now = S(10);

	limiter_init(&l, 4, 512, now);
	feed_rtt(&l, &now, LIMITER_MIN_RTT_SAMPLES, 20000, 50);
	for (int i = 0; i < 20; i++)
		feed_rtt(&l, &now, 10, 20000, LIMITER_INTERVAL_MS);
	/* Latency four times the minimum: the gradient is at its floor, 0.5. */
	for (int i = 0; i < 20; i++)
		feed_rtt(&l, &now, 10, 80000, LIMITER_INTERVAL_MS);
	ck_assert_uint_lt(limiter_limit(&l), 10);
	ck_assert_uint_ge(limiter_limit(&l), 4);
}
END_TEST

/* A queueing upstream (capacity c, service time t): the limit settles near
 * c × (1 + buffer) plus headroom, well under 2c. */
START_TEST(test_limiter_settles_near_capacity)
{
	struct limiter l;
	uint64_t now = S(10);
	uint32_t peak = 0;

	limiter_init(&l, 4, 512, now);
	for (int i = 0; i < 300; i++) {
		uint32_t lim = limiter_limit(&l);
		uint64_t rtt = lim <= 8 ? 20000 : 20000ULL * lim / 8;

		feed_rtt(&l, &now, 10, rtt, LIMITER_INTERVAL_MS);
		if (i > 50 && limiter_limit(&l) > peak)
			peak = limiter_limit(&l);
	}
	ck_assert_uint_le(peak, 16);
	ck_assert_uint_ge(limiter_limit(&l), 8);
}
END_TEST

/* The minimum RTT is measured again after LIMITER_MIN_RTT_EVERY_MS: the
 * limit drops to min meanwhile, then comes back. */
START_TEST(test_limiter_remeasures)
{
	struct limiter l;
	uint64_t now = S(10);
	uint32_t before;

	limiter_init(&l, 4, 100, now);
	feed_rtt(&l, &now, LIMITER_MIN_RTT_SAMPLES, 20000, 50);
	for (int i = 0; i < 10; i++)
		feed_rtt(&l, &now, 10, 20000, LIMITER_INTERVAL_MS);
	before = limiter_limit(&l);
	ck_assert_uint_eq(before, 100);
	/* The upstream got faster; time passes to the next measurement. */
	now += (uint64_t)LIMITER_MIN_RTT_EVERY_MS * 1000;
	feed_rtt(&l, &now, 10, 10000, LIMITER_INTERVAL_MS);
	ck_assert_int_eq(l.measuring, 1);
	ck_assert_uint_eq(limiter_limit(&l), 4);
	feed_rtt(&l, &now, LIMITER_MIN_RTT_SAMPLES, 10000, 50);
	ck_assert_int_eq(l.measuring, 0);
	ck_assert_uint_eq(l.min_rtt_us, 10000);
	ck_assert_uint_eq(limiter_limit(&l), before);
}
END_TEST

START_TEST(test_limiter_bounds)
{
	struct limiter l;
	uint64_t now = S(10);

	limiter_init(&l, 8, 6, now);
	ck_assert_uint_eq(limiter_limit(&l), 8);
	limiter_configure(&l, 2, 3);
	ck_assert_uint_eq(limiter_limit(&l), 2);
	feed_rtt(&l, &now, LIMITER_MIN_RTT_SAMPLES, 1000, 50);
	for (int i = 0; i < 10; i++)
		feed_rtt(&l, &now, 10, 1000, LIMITER_INTERVAL_MS);
	ck_assert_uint_eq(limiter_limit(&l), 3);
	/* More samples in one interval than kept: no overflow. */
	for (int i = 0; i < LIMITER_MAX_SAMPLES * 3; i++)
		limiter_sample(&l, now, 1000);
	ck_assert_uint_le(l.n, LIMITER_MAX_SAMPLES);
}
END_TEST

Suite *latency_suite(void)
{
	Suite *s = suite_create("latency");
	TCase *tc = tcase_create("histogram");

	tcase_add_test(tc, test_buckets);
	tcase_add_test(tc, test_quantiles);
	tcase_add_test(tc, test_min_samples);
	tcase_add_test(tc, test_window_slides);
	suite_add_tcase(s, tc);
	tc = tcase_create("limiter");
	tcase_add_test(tc, test_limiter_measures_then_grows);
	tcase_add_test(tc, test_limiter_shrinks_on_queueing);
	tcase_add_test(tc, test_limiter_settles_near_capacity);
	tcase_add_test(tc, test_limiter_remeasures);
	tcase_add_test(tc, test_limiter_bounds);
	suite_add_tcase(s, tc);
	return s;
}

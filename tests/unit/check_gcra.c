/* Tests of daemon/policy/gcra.c: the outbound rate limit (SPEC 4.12):
 * spacing and order, the queue bound and its Retry-After, burst, release,
 * learned quotas (zero, spread, expiry, day clamp, the stricter of the
 * two), configuration limits and extreme rates.
 * Time is a plain uint64_t of microseconds, written with MS() and SEC(). */
#include <errno.h>
#include <stdint.h>

#include <check.h>

#include "suites.h"

#include "gcra.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MS(ms) ((uint64_t)(ms)*1000)
#define SEC(s) ((uint64_t)(s)*1000000)
#define MIN(m) (SEC(m) * 60)
#define HOUR(h) (SEC(h) * 3600)
#define DAY SEC(86400)
#define T0 SEC(1000) /* a start well away from 0 */

static struct gcra limiter(uint32_t count, uint64_t per_us, uint32_t burst)
{
	struct gcra g;

	gcra_init(&g);
	ck_assert_int_eq(gcra_configure(&g, count, per_us, burst), 0);
	return g;
}

static struct gcra_slot reserve(struct gcra *g, uint64_t now, uint64_t max_wait)
{
	struct gcra_slot s;

	ck_assert_int_eq(gcra_reserve(g, now, max_wait, &s), s.verdict);
	if (s.verdict != GCRA_REFUSED)
		ck_assert_uint_eq(s.at_us, now + s.wait_us);
	ck_assert_int_eq(s.verdict == GCRA_GO, s.verdict != GCRA_REFUSED && s.wait_us == 0);
	return s;
}

/* ==== configured rate ===================================================== */

START_TEST(test_off_lets_all_go)
{
	struct gcra g;

	gcra_init(&g);
	for (int i = 0; i < 100; i++) {
		struct gcra_slot s = reserve(&g, T0, 0);

		ck_assert_int_eq(s.verdict, GCRA_GO);
		ck_assert_int_eq(s.by, GCRA_BY_NONE);
	}
}
END_TEST

/* 30 attempts at once against 20/s, burst 1: slots 50 ms apart, in order. */
START_TEST(test_spacing_in_order)
{
	struct gcra g = limiter(20, SEC(1), 1);

	for (int k = 0; k < 30; k++) {
		struct gcra_slot s = reserve(&g, T0, SEC(2));

		ck_assert_int_eq(s.verdict, k == 0 ? GCRA_GO : GCRA_WAIT);
		ck_assert_uint_eq(s.at_us, T0 + MS(50) * (uint64_t)k);
		ck_assert_int_eq(s.by, k == 0 ? GCRA_BY_NONE : GCRA_BY_CONFIGURED);
	}
}
END_TEST

/* The queue bound: what does not fit is refused with the time to its slot,
 * and takes nothing. */
START_TEST(test_queue_refusal)
{
	struct gcra g = limiter(20, SEC(1), 1);
	struct gcra_slot s;

	for (int k = 0; k < 5; k++)
		ck_assert_int_ne(reserve(&g, T0, MS(200)).verdict, GCRA_REFUSED);
	s = reserve(&g, T0, MS(200));
	ck_assert_int_eq(s.verdict, GCRA_REFUSED);
	ck_assert_uint_eq(s.wait_us, MS(250));
	ck_assert_int_eq(s.by, GCRA_BY_CONFIGURED);
	/* nothing taken: the same answer again */
	s = reserve(&g, T0, MS(200));
	ck_assert_int_eq(s.verdict, GCRA_REFUSED);
	ck_assert_uint_eq(s.wait_us, MS(250));
	/* 50 ms later the slot at 250 ms fits */
	s = reserve(&g, T0 + MS(50), MS(200));
	ck_assert_int_eq(s.verdict, GCRA_WAIT);
	ck_assert_uint_eq(s.at_us, T0 + MS(250));
	/* a max wait of 0: refused at once, with the wait it would have had */
	s = reserve(&g, T0 + MS(50), 0);
	ck_assert_int_eq(s.verdict, GCRA_REFUSED);
	ck_assert_uint_eq(s.wait_us, MS(250));
}
END_TEST

/* Idle time gives the burst back, never more than the burst. */
START_TEST(test_burst_refills)
{
	struct gcra g = limiter(10, SEC(1), 5);

	for (int k = 0; k < 5; k++)
		ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
	ck_assert_uint_eq(reserve(&g, T0, SEC(1)).at_us, T0 + MS(100));
	/* TAT is now T0 + 600 ms: at T0 + 300 ms, two slots have come back */
	ck_assert_int_eq(reserve(&g, T0 + MS(300), 0).verdict, GCRA_GO);
	ck_assert_int_eq(reserve(&g, T0 + MS(300), 0).verdict, GCRA_GO);
	ck_assert_int_eq(reserve(&g, T0 + MS(300), 0).verdict, GCRA_REFUSED);
	/* a long idle time: burst again, not more */
	for (int k = 0; k < 5; k++)
		ck_assert_int_eq(reserve(&g, T0 + SEC(100), 0).verdict, GCRA_GO);
	ck_assert_uint_eq(reserve(&g, T0 + SEC(100), 0).wait_us, MS(100));
}
END_TEST

/* n attempts at once: all but the burst wait; the last one's wait. */
static const struct {
	uint32_t count;
	uint64_t per_us;
	uint32_t burst;
	int n;
	uint64_t last_wait_us;
} rate_cases[] = {
	{ 100, SEC(1), 10, 11, MS(10) },
	{ 6000, MIN(1), 5, 6, MS(10) },
	{ 50000, HOUR(1), 1, 2, MS(72) },
	{ 1, HOUR(1), 1, 2, HOUR(1) },
	{ 1, HOUR(1), 1, 3, HOUR(2) },
	{ 1000000, SEC(1), 1, 1001, 1000 },
	{ 1000000, SEC(1), 1000, 1001, 1 },
	/* 3/s: 333333.334 µs apart, rounded up: never faster than configured */
	{ 3, SEC(1), 1, 4, SEC(1) + 1 },
	/* 10^9/s: 1 ns apart, waits rounded up to whole µs */
	{ 1000000000, SEC(1), 1, 2001, 2 },
	{ 1000000000, SEC(1), 1, 2002, 3 },
	/* a burst so large its tolerance saturates: everything at once */
	{ 1, DAY, GCRA_BURST_MAX, 3, 0 },
};

START_TEST(test_rates)
{
	struct gcra g = limiter(rate_cases[_i].count, rate_cases[_i].per_us, rate_cases[_i].burst);
	struct gcra_slot s = { 0 };
	uint64_t prev = 0;

	for (int k = 0; k < rate_cases[_i].n; k++) {
		s = reserve(&g, T0, UINT64_MAX);
		ck_assert_int_ne(s.verdict, GCRA_REFUSED);
		ck_assert_uint_ge(s.at_us, prev);
		prev = s.at_us;
	}
	ck_assert_uint_eq(s.wait_us, rate_cases[_i].last_wait_us);
}
END_TEST

static const struct {
	uint32_t count;
	uint64_t per_us;
	uint32_t burst;
} bad_rates[] = {
	{ GCRA_COUNT_MAX + 1, SEC(1), 1 },  { 10, 0, 1 },   { 10, DAY + 1, 1 }, { 10, SEC(1), 0 },
	{ 10, SEC(1), GCRA_BURST_MAX + 1 }, { 2000, 1, 1 }, /* 2000 per µs: under 1 ns apart */
};

/* A refused configuration leaves the limiter as it was. */
START_TEST(test_bad_rates)
{
	struct gcra g = limiter(20, SEC(1), 1);

	ck_assert_int_eq(
	    gcra_configure(&g, bad_rates[_i].count, bad_rates[_i].per_us, bad_rates[_i].burst),
	    -EINVAL);
	ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
	ck_assert_uint_eq(reserve(&g, T0, SEC(1)).wait_us, MS(50));
}
END_TEST

/* A reload changes the rate and keeps the reservations already granted. */
START_TEST(test_reconfigure_keeps_schedule)
{
	struct gcra g = limiter(1, SEC(1), 1);

	ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
	ck_assert_uint_eq(reserve(&g, T0, SEC(5)).at_us, T0 + SEC(1));
	ck_assert_int_eq(gcra_configure(&g, 10, SEC(1), 1), 0);
	/* TAT was T0 + 2 s: the next slot is T0 + 2 s, then 100 ms apart */
	ck_assert_uint_eq(reserve(&g, T0, SEC(5)).at_us, T0 + SEC(2));
	ck_assert_uint_eq(reserve(&g, T0, SEC(5)).at_us, T0 + SEC(2) + MS(100));
	ck_assert_int_eq(gcra_configure(&g, 0, 0, 0), 0);
	ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
}
END_TEST

/* ==== release ============================================================= */

START_TEST(test_release_last)
{
	struct gcra g = limiter(20, SEC(1), 1);
	struct gcra_slot a, b;

	a = reserve(&g, T0, SEC(1));
	b = reserve(&g, T0, SEC(1));
	ck_assert_uint_eq(b.at_us, T0 + MS(50));
	ck_assert_int_eq(gcra_release(&g, &b), 1);
	/* the slot is free again, and the next one takes it */
	ck_assert_uint_eq(reserve(&g, T0 + MS(10), SEC(1)).at_us, T0 + MS(50));
	/* the same ticket twice: given back once */
	ck_assert_int_eq(gcra_release(&g, &b), 0);
	(void)a;
}
END_TEST

/* An earlier slot stays taken: the ones behind it are fixed. */
START_TEST(test_release_not_last)
{
	struct gcra g = limiter(20, SEC(1), 1);
	struct gcra_slot b, c;

	reserve(&g, T0, SEC(1));
	b = reserve(&g, T0, SEC(1));
	c = reserve(&g, T0, SEC(1));
	ck_assert_uint_eq(c.at_us, T0 + MS(100));
	ck_assert_int_eq(gcra_release(&g, &b), 0);
	ck_assert_uint_eq(reserve(&g, T0, SEC(1)).at_us, T0 + MS(150));
}
END_TEST

/* Only the last, and only once: the undo is one step deep. */
START_TEST(test_release_twice_in_a_row)
{
	struct gcra g = limiter(20, SEC(1), 1);
	struct gcra_slot b, c;

	reserve(&g, T0, SEC(1));
	b = reserve(&g, T0, SEC(1));
	c = reserve(&g, T0, SEC(1));
	ck_assert_int_eq(gcra_release(&g, &c), 1);
	ck_assert_int_eq(gcra_release(&g, &b), 0);
	ck_assert_uint_eq(reserve(&g, T0, SEC(1)).at_us, T0 + MS(100));
}
END_TEST

START_TEST(test_release_refused_or_after_learn)
{
	struct gcra g = limiter(20, SEC(1), 1);
	struct gcra_slot r, b;

	reserve(&g, T0, 0);
	r = reserve(&g, T0, 0);
	ck_assert_int_eq(r.verdict, GCRA_REFUSED);
	ck_assert_int_eq(gcra_release(&g, &r), 0);

	b = reserve(&g, T0, SEC(1));
	ck_assert_int_eq(gcra_learn(&g, 100, T0 + SEC(10), T0), 0);
	ck_assert_int_eq(gcra_release(&g, &b), 0);
	ck_assert_uint_eq(reserve(&g, T0, SEC(1)).at_us, T0 + MS(100));
}
END_TEST

/* Release gives the learned count back too. */
START_TEST(test_release_learned)
{
	struct gcra g;
	struct gcra_snapshot snap;
	struct gcra_slot a;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 2, T0 + SEC(10), T0), 0);
	a = reserve(&g, T0, SEC(20));
	gcra_snapshot(&g, T0, &snap);
	ck_assert_uint_eq(snap.learned_remaining, 1);
	ck_assert_int_eq(gcra_release(&g, &a), 1);
	gcra_snapshot(&g, T0, &snap);
	ck_assert_uint_eq(snap.learned_remaining, 2);
	ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
	ck_assert_uint_eq(reserve(&g, T0, SEC(20)).at_us, T0 + SEC(5));
}
END_TEST

/* ==== learned quota ======================================================= */

START_TEST(test_learn_zero_waits_for_reset)
{
	struct gcra g;
	struct gcra_slot s;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 0, T0 + SEC(10), T0), 0);
	s = reserve(&g, T0, SEC(5));
	ck_assert_int_eq(s.verdict, GCRA_REFUSED);
	ck_assert_uint_eq(s.wait_us, SEC(10));
	ck_assert_int_eq(s.by, GCRA_BY_LEARNED);
	s = reserve(&g, T0 + SEC(3), SEC(30));
	ck_assert_int_eq(s.verdict, GCRA_WAIT);
	ck_assert_uint_eq(s.at_us, T0 + SEC(10));
	/* expired at the reset */
	s = reserve(&g, T0 + SEC(10), 0);
	ck_assert_int_eq(s.verdict, GCRA_GO);
	ck_assert_int_eq(s.by, GCRA_BY_NONE);
}
END_TEST

/* remaining 5 over 10 s: 2 s apart, 5 before the reset, then free. */
START_TEST(test_learn_spread)
{
	struct gcra g;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 5, T0 + SEC(10), T0), 0);
	for (int k = 0; k < 5; k++) {
		struct gcra_slot s = reserve(&g, T0, SEC(60));

		ck_assert_uint_eq(s.at_us, T0 + SEC(2) * (uint64_t)k);
	}
	/* the sixth is held to the reset, and so is every later one */
	ck_assert_uint_eq(reserve(&g, T0, SEC(60)).at_us, T0 + SEC(10));
	ck_assert_uint_eq(reserve(&g, T0 + SEC(1), SEC(60)).at_us, T0 + SEC(10));
	ck_assert_int_eq(reserve(&g, T0 + SEC(10), 0).verdict, GCRA_GO);
}
END_TEST

START_TEST(test_learn_expires)
{
	struct gcra g;
	struct gcra_snapshot snap;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 1, T0 + SEC(1), T0), 0);
	gcra_snapshot(&g, T0 + SEC(1) - 1, &snap);
	ck_assert_int_eq(snap.learned, 1);
	ck_assert_uint_eq(snap.learned_reset_us, T0 + SEC(1));
	gcra_snapshot(&g, T0 + SEC(1), &snap);
	ck_assert_int_eq(snap.learned, 0);
	for (int k = 0; k < 10; k++)
		ck_assert_int_eq(reserve(&g, T0 + SEC(1), 0).verdict, GCRA_GO);
}
END_TEST

/* A reset beyond a day counts as a day; UINT64_MAX included. */
START_TEST(test_learn_day_clamp)
{
	static const uint64_t resets[] = { T0 + DAY + 1, T0 + DAY * 30, UINT64_MAX };
	struct gcra g;
	struct gcra_snapshot snap;
	struct gcra_slot s;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 0, resets[_i], T0), 0);
	gcra_snapshot(&g, T0, &snap);
	ck_assert_uint_eq(snap.learned_reset_us, T0 + DAY);
	s = reserve(&g, T0, UINT64_MAX);
	ck_assert_uint_eq(s.at_us, T0 + DAY);
}
END_TEST

START_TEST(test_learn_rejects_past_reset)
{
	struct gcra g;
	struct gcra_snapshot snap;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 0, T0, T0), -EINVAL);
	ck_assert_int_eq(gcra_learn(&g, 0, T0 - 1, T0), -EINVAL);
	gcra_snapshot(&g, T0, &snap);
	ck_assert_int_eq(snap.learned, 0);
	ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
}
END_TEST

/* The stricter of configured and learned sets each slot. */
static const struct {
	uint32_t count;
	uint64_t per_us;
	uint64_t remaining;
	uint64_t reset_us;
	uint64_t apart_us;
	enum gcra_by by;
} stricter_cases[] = {
	{ 10, SEC(1), 5, SEC(10), SEC(2), GCRA_BY_LEARNED },
	{ 1, SEC(1), 100, SEC(10), SEC(1), GCRA_BY_CONFIGURED },
	{ 100, SEC(1), 1000, SEC(1), MS(10), GCRA_BY_CONFIGURED },
	{ 1000, SEC(1), 100, SEC(1), MS(10), GCRA_BY_LEARNED },
};

START_TEST(test_stricter_of)
{
	struct gcra g = limiter(stricter_cases[_i].count, stricter_cases[_i].per_us, 1);
	struct gcra_slot s;

	ck_assert_int_eq(
	    gcra_learn(&g, stricter_cases[_i].remaining, T0 + stricter_cases[_i].reset_us, T0), 0);
	ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
	for (uint64_t k = 1; k < 4; k++) {
		s = reserve(&g, T0, SEC(60));
		ck_assert_uint_eq(s.at_us, T0 + stricter_cases[_i].apart_us * k);
		ck_assert_int_eq(s.by, stricter_cases[_i].by);
	}
}
END_TEST

/* Each answer of a paced run re-announces the quota: the spacing goes on
 * from the next learned slot instead of starting again at now. */
START_TEST(test_relearn_keeps_spacing)
{
	struct gcra g;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 5, T0 + SEC(10), T0), 0);
	ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
	ck_assert_int_eq(gcra_learn(&g, 4, T0 + SEC(10), T0 + MS(100)), 0);
	for (uint64_t k = 1; k <= 4; k++)
		ck_assert_uint_eq(reserve(&g, T0 + MS(100), SEC(60)).at_us, T0 + SEC(2) * k);
	ck_assert_uint_eq(reserve(&g, T0 + MS(100), SEC(60)).at_us, T0 + SEC(10));
}
END_TEST

/* A looser announcement takes effect at once: the older one's next slot
 * (10 s away) does not hold the new spacing (5 left in 4 s: one per 0.8 s)
 * beyond one new spacing from now. */
START_TEST(test_relearn_line_past_reset)
{
	struct gcra g;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 1, T0 + SEC(10), T0), 0);
	ck_assert_int_eq(reserve(&g, T0, 0).verdict, GCRA_GO);
	ck_assert_int_eq(gcra_learn(&g, 5, T0 + SEC(5), T0 + SEC(1)), 0);
	ck_assert_uint_eq(reserve(&g, T0 + SEC(1), SEC(60)).at_us, T0 + SEC(1) + MS(800));
}
END_TEST

/* After a zero window's reset, the announced quota renews: the attempts
 * that waited for the reset are spaced at limit ÷ window, not all at
 * once; after that window, nothing holds. Without the renewal, they all
 * go at the reset. */
START_TEST(test_renewal_spaces_the_waiting)
{
	struct gcra g;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 0, T0 + SEC(1), T0), 0);
	ck_assert_int_eq(gcra_learn_next(&g, 10, SEC(1)), 0);
	ck_assert_uint_eq(reserve(&g, T0, SEC(5)).at_us, T0 + SEC(1));
	ck_assert_uint_eq(reserve(&g, T0, SEC(5)).at_us, T0 + SEC(1) + MS(100));
	ck_assert_uint_eq(reserve(&g, T0, SEC(5)).at_us, T0 + SEC(1) + MS(200));
	/* Within the renewed window, an attempt asking later is spaced too. */
	ck_assert_uint_eq(reserve(&g, T0 + SEC(1) + MS(250), SEC(5)).at_us, T0 + SEC(1) + MS(300));
	/* The renewed window is over: nothing holds. */
	ck_assert_int_eq(reserve(&g, T0 + SEC(2) + MS(500), 0).verdict, GCRA_GO);
	ck_assert_int_eq(reserve(&g, T0 + SEC(2) + MS(500), 0).verdict, GCRA_GO);

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 0, T0 + SEC(1), T0), 0);
	ck_assert_int_eq(gcra_learn_next(&g, 0, SEC(1)), -EINVAL);
	ck_assert_uint_eq(reserve(&g, T0, SEC(5)).at_us, T0 + SEC(1));
	ck_assert_uint_eq(reserve(&g, T0, SEC(5)).at_us, T0 + SEC(1));
}
END_TEST

/* A later announcement replaces the earlier one (a new window). */
START_TEST(test_relearn_replaces)
{
	struct gcra g;

	gcra_init(&g);
	ck_assert_int_eq(gcra_learn(&g, 0, T0 + SEC(10), T0), 0);
	ck_assert_int_eq(gcra_learn(&g, 100, T0 + SEC(60), T0 + SEC(1)), 0);
	ck_assert_int_eq(reserve(&g, T0 + SEC(1), 0).verdict, GCRA_GO);
	ck_assert_uint_eq(reserve(&g, T0 + SEC(1), SEC(60)).at_us, T0 + SEC(1) + MS(590));
}
END_TEST

START_TEST(test_snapshot)
{
	struct gcra g = limiter(20, SEC(1), 2);
	struct gcra_snapshot snap;

	ck_assert_int_eq(gcra_learn(&g, 3, T0 + SEC(30), T0), 0);
	reserve(&g, T0, 0);
	gcra_snapshot(&g, T0, &snap);
	ck_assert_uint_eq(snap.count, 20);
	ck_assert_uint_eq(snap.per_us, SEC(1));
	ck_assert_uint_eq(snap.burst, 2);
	ck_assert_int_eq(snap.learned, 1);
	ck_assert_uint_eq(snap.learned_remaining, 2);
	ck_assert_uint_eq(snap.learned_reset_us, T0 + SEC(30));
	ck_assert_uint_eq(snap.next_free_us, T0 + SEC(10));
	ck_assert_int_eq(snap.next_by, GCRA_BY_LEARNED);
	/* a snapshot takes nothing */
	gcra_snapshot(&g, T0, &snap);
	ck_assert_uint_eq(snap.learned_remaining, 2);
	ck_assert_uint_eq(reserve(&g, T0, SEC(60)).at_us, T0 + SEC(10));
}
END_TEST

/* Times at the end of the clock saturate instead of wrapping. */
START_TEST(test_clock_end)
{
	static const uint64_t nows[] = { UINT64_MAX / 1000 - 1, UINT64_MAX / 1000 + 1,
					 UINT64_MAX - 1, UINT64_MAX };
	struct gcra g = limiter(1, HOUR(1), 1);
	struct gcra_slot s;
	int r;

	s = reserve(&g, nows[_i], 0);
	ck_assert_int_eq(s.verdict, GCRA_GO);
	s = reserve(&g, nows[_i], UINT64_MAX);
	ck_assert_uint_ge(s.at_us, nows[_i]);
	r = gcra_learn(&g, 1, UINT64_MAX, nows[_i]);
	ck_assert(r == 0 || r == -EINVAL);
	s = reserve(&g, nows[_i], UINT64_MAX);
	ck_assert_uint_ge(s.at_us, nows[_i]);
}
END_TEST

Suite *gcra_suite(void)
{
	Suite *s = suite_create("gcra");
	TCase *tc;

	tc = tcase_create("configured");
	tcase_add_test(tc, test_off_lets_all_go);
	tcase_add_test(tc, test_spacing_in_order);
	tcase_add_test(tc, test_queue_refusal);
	tcase_add_test(tc, test_burst_refills);
	tcase_add_loop_test(tc, test_rates, 0, N(rate_cases));
	tcase_add_loop_test(tc, test_bad_rates, 0, N(bad_rates));
	tcase_add_test(tc, test_reconfigure_keeps_schedule);
	tcase_add_loop_test(tc, test_clock_end, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("release");
	tcase_add_test(tc, test_release_last);
	tcase_add_test(tc, test_release_not_last);
	tcase_add_test(tc, test_release_twice_in_a_row);
	tcase_add_test(tc, test_release_refused_or_after_learn);
	tcase_add_test(tc, test_release_learned);
	suite_add_tcase(s, tc);

	tc = tcase_create("learned");
	tcase_add_test(tc, test_learn_zero_waits_for_reset);
	tcase_add_test(tc, test_learn_spread);
	tcase_add_test(tc, test_learn_expires);
	tcase_add_loop_test(tc, test_learn_day_clamp, 0, 3);
	tcase_add_test(tc, test_learn_rejects_past_reset);
	tcase_add_loop_test(tc, test_stricter_of, 0, N(stricter_cases));
	tcase_add_test(tc, test_relearn_keeps_spacing);
	tcase_add_test(tc, test_relearn_line_past_reset);
	tcase_add_test(tc, test_relearn_replaces);
	tcase_add_test(tc, test_renewal_spaces_the_waiting);
	tcase_add_test(tc, test_snapshot);
	suite_add_tcase(s, tc);
	return s;
}

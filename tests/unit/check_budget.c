/* Tests of daemon/policy/budget.c: the retry budget of SPEC 4.7 (the
 * Finagle/Linkerd algorithm). Time is a plain uint64_t of microseconds,
 * written in milliseconds with MS(). */
#include <stdint.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "budget.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MS(ms) ((uint64_t)(ms) * 1000)

/* ==== budget (SPEC 4.7) ================================================= */

/* Linkerd's defaults: ratio 0.2, 10/s, 10s window → a reserve of 100. */
static void budget_default(struct budget *b)
{
	memset(b, 0, sizeof(*b));
	budget_configure(b, 0.2, 10, 10000);
}

/* Withdraws while allowed; returns how many retries went through. */
static uint32_t drain(struct budget *b, uint64_t now, uint32_t limit)
{
	uint32_t n = 0;

	while (n < limit && budget_can_withdraw(b, now)) {
		budget_withdraw(b, now);
		n++;
	}
	return n;
}

static void deposit_n(struct budget *b, uint64_t now, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		budget_deposit(b, now);
}

static void assert_totals(struct budget *b, uint64_t now, uint32_t d, uint32_t w)
{
	uint32_t got_d = 0xffffffff, got_w = 0xffffffff;

	budget_totals(b, now, &got_d, &got_w);
	ck_assert_msg(got_d == d && got_w == w, "at %lu µs: totals %u/%u, expected %u/%u",
		      (unsigned long)now, got_d, got_w, d, w);
}

START_TEST(test_budget_reserve_only)
{
	struct budget b;

	budget_default(&b);
	assert_totals(&b, MS(0), 0, 0);
	ck_assert_uint_eq(drain(&b, MS(0), 1000), 100);
	ck_assert(!budget_can_withdraw(&b, MS(0)));
	assert_totals(&b, MS(0), 0, 100);
	/* spread over the window it is the same reserve */
	budget_default(&b);
	for (uint64_t t = 0; t < 10000; t += 1000)
		ck_assert_uint_eq(drain(&b, MS(50000 + t), 10), 10);
	ck_assert(!budget_can_withdraw(&b, MS(59999)));
}
END_TEST

START_TEST(test_budget_ratio)
{
	struct budget b;

	budget_default(&b);
	deposit_n(&b, MS(1000), 1000);
	assert_totals(&b, MS(1000), 1000, 0);
	/* 0.2 * 1000 + 100 = 300 retries, the 301st refused */
	ck_assert_uint_eq(drain(&b, MS(1000), 1000), 300);
	ck_assert(!budget_can_withdraw(&b, MS(1000)));
	assert_totals(&b, MS(1000), 1000, 300);
	/* five more originals earn one more retry */
	deposit_n(&b, MS(1000), 4);
	ck_assert(!budget_can_withdraw(&b, MS(1000)));
	budget_deposit(&b, MS(1000));
	ck_assert(budget_can_withdraw(&b, MS(1000)));
}
END_TEST

/* Other ratios: a table of (ratio, reserve/s, window, deposits) → retries. */
struct budget_case {
	double ratio;
	uint32_t per_second;
	uint32_t window_ms;
	uint32_t deposits;
	uint32_t retries;
};

static const struct budget_case budget_cases[] = {
	{ 0.2, 10, 10000, 0, 100 },
	{ 0.2, 10, 10000, 1000, 300 },
	{ 0.2, 10, 10000, 4, 100 },
	{ 0.2, 10, 10000, 5, 101 },
	{ 0.2, 0, 10000, 1000, 200 },
	{ 0.2, 0, 10000, 4, 0 },
	{ 0.5, 0, 10000, 10, 5 },
	{ 0.1, 1, 5000, 100, 15 },
	{ 1.0, 0, 10000, 7, 7 },
	{ 0.0, 3, 10000, 1000, 30 },
	{ 0.25, 2, 20000, 40, 50 },
	/* ratio × originals is an exact integer in decimal but a hair below it
	 * in binary (0.7 * 90 = 62.99999999999999): still that many retries */
	{ 0.7, 0, 10000, 90, 63 },
	{ 0.29, 0, 10000, 100, 29 },
	{ 0.29, 1, 1000, 100, 30 },
	{ 0.57, 0, 10000, 100, 57 },
};

START_TEST(test_budget_table)
{
	const struct budget_case *c = &budget_cases[_i];
	struct budget b;
	uint32_t got;

	memset(&b, 0, sizeof(b));
	budget_configure(&b, c->ratio, c->per_second, c->window_ms);
	deposit_n(&b, MS(0), c->deposits);
	got = drain(&b, MS(0), 100000);
	ck_assert_msg(got == c->retries,
		      "ratio %g, %u/s, window %u ms, %u deposits: %u retries, expected %u",
		      c->ratio, c->per_second, c->window_ms, c->deposits, got, c->retries);
}
END_TEST

START_TEST(test_budget_expiry)
{
	struct budget b;

	budget_default(&b);
	deposit_n(&b, MS(0), 1000);
	ck_assert_uint_eq(drain(&b, MS(0), 1000), 300);
	/* still inside the window 9 s later */
	assert_totals(&b, MS(9000), 1000, 300);
	ck_assert(!budget_can_withdraw(&b, MS(9000)));
	/* 10.5 s later (older than the window whatever the slot) they are gone */
	assert_totals(&b, MS(10500), 0, 0);
	/* 11 s later deposits and withdrawals are gone: the reserve again */
	assert_totals(&b, MS(11000), 0, 0);
	ck_assert_uint_eq(drain(&b, MS(11000), 1000), 100);
	/* and they are gone for good */
	ck_assert_uint_eq(drain(&b, MS(30000), 1000), 100);
	assert_totals(&b, MS(30000), 0, 100);
}
END_TEST

/* Half the deposits 6 s old, the other half older than the window: only the
 * young half counts. Expiry goes slot by slot (window / 10). */
START_TEST(test_budget_slots)
{
	struct budget b;

	budget_default(&b);
	deposit_n(&b, MS(0), 500);
	deposit_n(&b, MS(5000), 500);
	assert_totals(&b, MS(9000), 1000, 0);
	assert_totals(&b, MS(11000), 500, 0); /* 11 s and 6 s old */
	/* 0.2 * 500 + 100 */
	ck_assert_uint_eq(drain(&b, MS(11000), 1000), 200);
	/* the young half expires in its turn */
	assert_totals(&b, MS(14000), 500, 200);
	assert_totals(&b, MS(16000), 0, 200);
	assert_totals(&b, MS(22000), 0, 0);

	/* withdrawals expire slot-wise too: 100 at 0, 50 more allowed at
	 * 5000 by 250 deposits; at 11000 only the later ones remain */
	budget_default(&b);
	ck_assert_uint_eq(drain(&b, MS(0), 1000), 100);
	deposit_n(&b, MS(5000), 250);
	ck_assert_uint_eq(drain(&b, MS(5000), 1000), 50);
	assert_totals(&b, MS(11000), 250, 50);
	ck_assert_uint_eq(drain(&b, MS(11000), 1000), 100);
}
END_TEST

START_TEST(test_budget_configure)
{
	struct budget b;

	budget_default(&b);
	deposit_n(&b, MS(0), 1000);
	ck_assert_uint_eq(drain(&b, MS(0), 50), 50);
	/* same window: counts kept, new ratio applies */
	budget_configure(&b, 0.5, 10, 10000);
	assert_totals(&b, MS(0), 1000, 50);
	ck_assert_uint_eq(drain(&b, MS(0), 10000), 550); /* 0.5 * 1000 + 100 - 50 */
	/* another window: afresh, a reserve of 10/s * 20 s */
	budget_configure(&b, 0.5, 10, 20000);
	assert_totals(&b, MS(0), 0, 0);
	ck_assert_uint_eq(drain(&b, MS(0), 10000), 200);
}
END_TEST

Suite *budget_suite(void)
{
	Suite *s = suite_create("budget");
	TCase *tc = tcase_create("budget");

	tcase_add_test(tc, test_budget_reserve_only);
	tcase_add_test(tc, test_budget_ratio);
	tcase_add_loop_test(tc, test_budget_table, 0, N(budget_cases));
	tcase_add_test(tc, test_budget_expiry);
	tcase_add_test(tc, test_budget_slots);
	tcase_add_test(tc, test_budget_configure);
	suite_add_tcase(s, tc);
	return s;
}

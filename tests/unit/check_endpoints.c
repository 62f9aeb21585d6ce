/* Tests of daemon/policy/endpoints.c: a profile's endpoint set (SPEC 4.11):
 * updates, round robin, peak-EWMA with two random choices, avoidance of
 * endpoints a request tried, passive ejection, snapshot and totals.
 * Time is a plain uint64_t of microseconds, written with MS() and SEC(). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "endpoints.h"
#include "rng.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MS(ms) ((uint64_t)(ms)*1000)
#define SEC(s) ((uint64_t)(s)*1000000)
#define T0 SEC(1000) /* a start well away from 0 */

static const char *const abc[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80" };

static struct endpoint_policy policy(enum endpoint_balance balance, uint32_t failures,
				     uint64_t base_us, uint64_t max_us, uint32_t max_percent)
{
	struct endpoint_policy p = {
		.balance = balance,
		.consecutive_failures = failures,
		.base_us = base_us,
		.max_us = max_us,
		.max_percent = max_percent,
	};

	return p;
}

/* A set of names[0..n) under policy p, made at T0. */
static struct endpoints *set_of(const char *const *names, size_t n, struct endpoint_policy p)
{
	struct endpoints *s = endpoints_new();

	ck_assert_ptr_nonnull(s);
	endpoints_configure(s, &p);
	ck_assert_uint_eq(endpoints_update(s, names, n, T0), n);
	return s;
}

static uint32_t id_of(const struct endpoints *s, const char *name)
{
	uint32_t id = endpoints_find(s, name);

	ck_assert_msg(id != 0, "'%s' is in the set", name);
	return id;
}

/* Starts an attempt on `name` by avoiding every other endpoint of the set,
 * as a retry that tried all the others would. */
static uint32_t start_on(struct endpoints *s, uint64_t now, const char *name)
{
	struct endpoint_snapshot snap[ENDPOINTS_MAX];
	uint32_t avoid[ENDPOINTS_MAX], want = id_of(s, name), got;
	size_t n = endpoints_snapshot(s, now, snap, ENDPOINTS_MAX), navoid = 0;
	struct rng rng;

	rng_seed(&rng, now);
	for (size_t i = 0; i < n; i++)
		if (strcmp(snap[i].name, name) != 0)
			avoid[navoid++] = id_of(s, snap[i].name);
	got = endpoints_pick(s, now, &rng, avoid, navoid);
	ck_assert_msg(got == want, "an attempt on '%s' (got '%s')", name, endpoints_name(s, got));
	return got;
}

/* One whole attempt on `name`: returns what endpoints_done returned. */
static int attempt(struct endpoints *s, uint64_t now, const char *name, uint64_t rtt,
		   enum endpoint_result r, uint64_t *ret_until)
{
	uint32_t id = start_on(s, now, name);

	return endpoints_done(s, id, now, now + rtt, rtt, r, ret_until);
}

static struct endpoint_snapshot snap_of(const struct endpoints *s, uint64_t now, const char *name)
{
	struct endpoint_snapshot snap[ENDPOINTS_MAX];
	size_t n = endpoints_snapshot(s, now, snap, ENDPOINTS_MAX);

	for (size_t i = 0; i < n; i++)
		if (strcmp(snap[i].name, name) == 0)
			return snap[i];
	ck_abort_msg("'%s' is not in the snapshot", name);
	return snap[0];
}

static int ejected(const struct endpoints *s, uint64_t now, const char *name)
{
	return snap_of(s, now, name).state == ENDPOINT_EJECTED;
}

/* ==== updates ============================================================ */

START_TEST(test_update_keeps_state)
{
	static const char *const next[] = { "10.0.0.3:80", "10.0.0.9:80", "10.0.0.1:80" };
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 50));
	uint32_t a = id_of(s, abc[0]), c = id_of(s, abc[2]);
	struct endpoint_snapshot before, after, fresh;

	ck_assert_int_eq(attempt(s, T0, abc[0], MS(200), ENDPOINT_SUCCESS, NULL), 0);
	ck_assert_int_eq(attempt(s, T0, abc[0], MS(1), ENDPOINT_FAILURE, NULL), 0);
	before = snap_of(s, T0 + SEC(2), abc[0]);
	ck_assert_uint_eq(before.failures_in_row, 1);

	ck_assert_uint_eq(endpoints_update(s, next, 3, T0 + SEC(2)), 3);
	ck_assert_uint_eq(endpoints_count(s), 3);
	/* kept: same id, same estimate, same failures in a row */
	ck_assert_uint_eq(id_of(s, abc[0]), a);
	ck_assert_uint_eq(id_of(s, abc[2]), c);
	after = snap_of(s, T0 + SEC(2), abc[0]);
	ck_assert_uint_eq(after.estimate_us, before.estimate_us);
	ck_assert_uint_eq(after.failures_in_row, 1);
	/* new: unmeasured, with a new id */
	fresh = snap_of(s, T0 + SEC(2), "10.0.0.9:80");
	ck_assert_uint_eq(fresh.estimate_us, ENDPOINT_DEFAULT_RTT_US);
	ck_assert_uint_eq(fresh.inflight, 0);
	ck_assert_uint_eq(fresh.failures_in_row, 0);
	ck_assert_uint_eq(fresh.ejections, 0);
	ck_assert_uint_gt(id_of(s, "10.0.0.9:80"), c);
	/* gone, with nothing in flight: forgotten at once */
	ck_assert_uint_eq(endpoints_find(s, abc[1]), 0);
	ck_assert_uint_eq(endpoints_departed(s), 0);
	/* set order is the order given */
	{
		struct endpoint_snapshot snap[3];

		ck_assert_uint_eq(endpoints_snapshot(s, T0 + SEC(2), snap, 3), 3);
		for (int i = 0; i < 3; i++)
			ck_assert_str_eq(snap[i].name, next[i]);
	}
	endpoints_free(s);
}
END_TEST

/* An endpoint that leaves the set while in flight keeps its id and name
 * until its last attempt ends, and is never picked again. */
START_TEST(test_update_departed_in_flight)
{
	struct endpoints *s =
	    set_of(abc, 3, policy(ENDPOINT_ROUND_ROBIN, 5, SEC(10), SEC(300), 50));
	uint32_t a1 = start_on(s, T0, abc[0]), a2 = start_on(s, T0, abc[0]);
	uint32_t b = id_of(s, abc[1]);
	struct rng rng;

	rng_seed(&rng, 1);
	ck_assert_uint_eq(a1, a2);
	ck_assert_uint_eq(endpoints_update(s, abc + 1, 2, T0 + MS(1)), 2);
	ck_assert_uint_eq(endpoints_departed(s), 1);
	ck_assert_str_eq(endpoints_name(s, a1), abc[0]);
	ck_assert_uint_eq(endpoints_find(s, abc[0]), 0);
	for (int i = 0; i < 100; i++) {
		uint32_t id = endpoints_pick(s, T0 + MS(2), &rng, NULL, 0);

		ck_assert_uint_ne(id, a1);
		endpoints_done(s, id, (T0 + MS(3)) - (MS(1)), T0 + MS(3), MS(1), ENDPOINT_NEUTRAL,
			       NULL);
	}
	/* its failures eject nothing: it is not in the set */
	ck_assert_int_eq(endpoints_done(s, a1, (T0 + MS(4)) - (MS(1)), T0 + MS(4), MS(1),
					ENDPOINT_FAILURE, NULL),
			 0);
	ck_assert_str_eq(endpoints_name(s, a1), abc[0]);
	ck_assert_int_eq(endpoints_done(s, a1, (T0 + MS(5)) - (MS(1)), T0 + MS(5), MS(1),
					ENDPOINT_SUCCESS, NULL),
			 0);
	ck_assert_ptr_null(endpoints_name(s, a1));
	ck_assert_uint_eq(endpoints_departed(s), 0);
	/* one done too many is a no-op */
	ck_assert_int_eq(endpoints_done(s, a1, (T0 + MS(6)) - (MS(1)), T0 + MS(6), MS(1),
					ENDPOINT_FAILURE, NULL),
			 0);
	ck_assert_str_eq(endpoints_name(s, b), abc[1]);
	/* an empty set: nothing to pick, ids of the idle ones are gone */
	ck_assert_uint_eq(endpoints_update(s, NULL, 0, T0 + MS(7)), 0);
	ck_assert_uint_eq(endpoints_pick(s, T0 + MS(8), &rng, NULL, 0), 0);
	ck_assert_ptr_null(endpoints_name(s, b));
	endpoints_free(s);
}
END_TEST

/* One that comes back while its attempts are in flight is the same endpoint. */
START_TEST(test_update_departed_returns)
{
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 50));
	uint32_t a = start_on(s, T0, abc[0]);

	endpoints_update(s, abc + 1, 2, T0 + MS(1));
	ck_assert_uint_eq(endpoints_departed(s), 1);
	ck_assert_uint_eq(endpoints_update(s, abc, 3, T0 + MS(2)), 3);
	ck_assert_uint_eq(endpoints_departed(s), 0);
	ck_assert_uint_eq(id_of(s, abc[0]), a);
	ck_assert_uint_eq(snap_of(s, T0 + MS(2), abc[0]).inflight, 1);
	endpoints_done(s, a, (T0 + MS(3)) - (MS(3)), T0 + MS(3), MS(3), ENDPOINT_SUCCESS, NULL);
	ck_assert_str_eq(endpoints_name(s, a), abc[0]);
	ck_assert_uint_eq(snap_of(s, T0 + MS(3), abc[0]).inflight, 0);
	endpoints_free(s);
}
END_TEST

/* Which names make a set: duplicates once, NULL, empty and over-long ones
 * never, and at most ENDPOINTS_MAX. */
#define LONG47 "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
#define LONG48 "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:655350"
_Static_assert(sizeof(LONG47) == ENDPOINT_NAME_MAX, "the longest IPv6 endpoint fits");

struct names_case {
	const char *what;
	const char *names[6];
	size_t n;
	size_t expect;
};

static const struct names_case names_cases[] = {
	{ "distinct", { "a:1", "b:1", "c:1" }, 3, 3 },
	{ "duplicates", { "a:1", "a:1", "b:1", "a:1" }, 4, 2 },
	{ "one name six times", { "a:1", "a:1", "a:1", "a:1", "a:1", "a:1" }, 6, 1 },
	{ "longest IPv6", { LONG47 }, 1, 1 },
	{ "one byte too long", { LONG48, "a:1" }, 2, 1 },
	{ "NULL and empty", { NULL, "", "a:1" }, 3, 1 },
	{ "none", { NULL }, 0, 0 },
};

START_TEST(test_update_names)
{
	const struct names_case *c = &names_cases[_i];
	struct endpoints *s = endpoints_new();

	ck_assert_msg(endpoints_update(s, c->names, c->n, T0) == c->expect, "%s", c->what);
	ck_assert_uint_eq(endpoints_count(s), c->expect);
	ck_assert_uint_eq(endpoints_find(s, LONG48), 0);
	endpoints_free(s);
}
END_TEST

START_TEST(test_update_cap)
{
	char text[ENDPOINTS_MAX + 10][ENDPOINT_NAME_MAX];
	const char *names[2 * (ENDPOINTS_MAX + 10)];
	struct endpoints *s = endpoints_new();
	size_t n = 0;

	/* Duplicates do not use up the cap: each name twice in a row. */
	for (int i = 0; i < ENDPOINTS_MAX + 10; i++) {
		snprintf(text[i], sizeof(text[i]), "10.0.%d.%d:443", i / 256, i % 256);
		names[n++] = text[i];
		names[n++] = text[i];
	}
	ck_assert_uint_eq(endpoints_update(s, names, n, T0), ENDPOINTS_MAX);
	ck_assert_uint_ne(endpoints_find(s, text[ENDPOINTS_MAX - 1]), 0);
	ck_assert_uint_eq(endpoints_find(s, text[ENDPOINTS_MAX]), 0);
	endpoints_free(s);
}
END_TEST

/* ==== round robin ======================================================= */

START_TEST(test_round_robin)
{
	struct endpoints *s =
	    set_of(abc, 3, policy(ENDPOINT_ROUND_ROBIN, 5, SEC(10), SEC(300), 50));
	uint32_t a = id_of(s, abc[0]), b = id_of(s, abc[1]), c = id_of(s, abc[2]);
	const uint32_t in_turn[] = { a, b, c, a, b, c, a };
	const uint32_t without_b[] = { c, a, c, a };
	const uint32_t avoid_a[] = { a };
	struct rng rng;

	rng_seed(&rng, 7);
	for (int i = 0; i < N(in_turn); i++) {
		uint32_t id = endpoints_pick(s, T0, &rng, NULL, 0);

		ck_assert_uint_eq(id, in_turn[i]);
		endpoints_done(s, id, (T0) - (MS(1)), T0, MS(1), ENDPOINT_SUCCESS, NULL);
	}
	/* b ejected: a and c in turn */
	ck_assert_int_eq(endpoints_eject_until(s, abc[1], T0 + SEC(5), T0), 1);
	for (int i = 0; i < N(without_b); i++) {
		uint32_t id = endpoints_pick(s, T0 + SEC(1), &rng, NULL, 0);

		ck_assert_uint_eq(id, without_b[i]);
		endpoints_done(s, id, (T0 + SEC(1)) - (MS(1)), T0 + SEC(1), MS(1), ENDPOINT_SUCCESS,
			       NULL);
	}
	/* b ejected and a avoided: c every time */
	for (int i = 0; i < 4; i++) {
		uint32_t id = endpoints_pick(s, T0 + SEC(2), &rng, avoid_a, 1);

		ck_assert_uint_eq(id, c);
		endpoints_done(s, id, (T0 + SEC(2)) - (MS(1)), T0 + SEC(2), MS(1), ENDPOINT_SUCCESS,
			       NULL);
	}
	/* b back at the end of its ejection, and in turn again */
	{
		uint32_t seen = 0;

		for (int i = 0; i < 3; i++) {
			uint32_t id = endpoints_pick(s, T0 + SEC(5), &rng, NULL, 0);

			seen |= 1u << (id == a ? 0 : id == b ? 1 : 2);
			endpoints_done(s, id, (T0 + SEC(5)) - (MS(1)), T0 + SEC(5), MS(1),
				       ENDPOINT_SUCCESS, NULL);
		}
		ck_assert_uint_eq(seen, 7);
	}
	endpoints_free(s);
}
END_TEST

/* An update keeps the turn with the endpoint that was next. */
START_TEST(test_round_robin_update)
{
	static const char *const next[] = { "10.0.0.3:80", "10.0.0.2:80", "10.0.0.9:80" };
	struct endpoints *s =
	    set_of(abc, 3, policy(ENDPOINT_ROUND_ROBIN, 5, SEC(10), SEC(300), 50));
	uint32_t id;
	struct rng rng;

	rng_seed(&rng, 7);
	id = endpoints_pick(s, T0, &rng, NULL, 0);
	ck_assert_str_eq(endpoints_name(s, id), abc[0]);
	endpoints_done(s, id, (T0) - (MS(1)), T0, MS(1), ENDPOINT_SUCCESS, NULL);
	endpoints_update(s, next, 3, T0);
	for (int i = 0; i < 4; i++) {
		id = endpoints_pick(s, T0, &rng, NULL, 0);
		ck_assert_str_eq(endpoints_name(s, id), next[(1 + i) % 3]);
		endpoints_done(s, id, (T0) - (MS(1)), T0, MS(1), ENDPOINT_SUCCESS, NULL);
	}
	endpoints_free(s);
}
END_TEST

/* ==== peak-EWMA ========================================================== */

/* The rtt each of abc answers in: two fast ones and a slow one. */
static uint64_t rtt_of(const struct endpoints *s, uint32_t id, const uint64_t rtts[3])
{
	for (int i = 0; i < 3; i++)
		if (endpoints_find(s, abc[i]) == id)
			return rtts[i];
	ck_abort_msg("id %u is not one of abc", id);
	return 0;
}

/* Sequential picks from `from`, one every `step`, each answered at once in
 * its endpoint's rtt: counts how many went to abc[2], and when the first did. */
static unsigned run_picks(struct endpoints *s, struct rng *rng, const uint64_t rtts[3],
			  uint64_t from, uint64_t step, unsigned picks, uint64_t *ret_first)
{
	uint32_t slow = id_of(s, abc[2]);
	unsigned hits = 0;

	for (unsigned i = 0; i < picks; i++) {
		uint64_t now = from + i * step;
		uint32_t id = endpoints_pick(s, now, rng, NULL, 0);

		if (id == slow && hits++ == 0 && ret_first)
			*ret_first = now;
		endpoints_done(s, id, (now) - (rtt_of(s, id, rtts)), now, rtt_of(s, id, rtts),
			       ENDPOINT_SUCCESS, NULL);
	}
	return hits;
}

static struct endpoints *measured_abc(const uint64_t rtts[3])
{
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 50));

	for (int i = 0; i < 3; i++)
		attempt(s, T0, abc[i], rtts[i], ENDPOINT_SUCCESS, NULL);
	return s;
}

/* An endpoint that turns slow stops drawing attempts while its first slow
 * ones are still in flight: their age counts once it passes the estimate,
 * before any of them answers. */
START_TEST(test_inflight_age_counts)
{
	static const uint64_t rtts[3] = { MS(1), MS(1), MS(1) };
	struct endpoints *s = measured_abc(rtts);
	uint32_t b = id_of(s, abc[1]);
	struct endpoint_snapshot snap;
	struct rng rng;
	unsigned hits = 0;

	rng_seed(&rng, 7);
	/* abc[1] has one attempt picked 50 ms ago and not answered. */
	start_on(s, T0 + MS(10), abc[1]);
	snap = snap_of(s, T0 + MS(60), abc[1]);
	ck_assert_uint_eq(snap.cost_us, (MS(50) + 1) * 2);
	for (unsigned i = 0; i < 1000; i++) {
		uint64_t now = T0 + MS(60) + i;
		uint32_t id = endpoints_pick(s, now, &rng, NULL, 0);

		hits += id == b;
		endpoints_done(s, id, now, now + 1, MS(1), ENDPOINT_SUCCESS, NULL);
	}
	ck_assert_msg(hits == 0, "the endpoint with a 50 ms old attempt got %u of 1000", hits);
	/* Its attempt ends: the age is gone, the estimate alone counts. */
	endpoints_done(s, b, T0 + MS(10), T0 + MS(61), MS(51), ENDPOINT_NEUTRAL, NULL);
	snap = snap_of(s, T0 + MS(61), abc[1]);
	ck_assert_uint_eq(snap.cost_us, snap.estimate_us + 1);
	endpoints_free(s);
}
END_TEST

/* An attempt cut after it was sent (a lost hedge, an app that left, the
 * budget) gives its time so far as a lower bound: it raises the estimate
 * when above it, never lowers it, and counts neither failure nor success.
 * A hung endpoint, only ever cut, so stops looking cheap. */
START_TEST(test_cut_is_a_lower_bound)
{
	static const char *const one[] = { "10.0.0.1:80", "10.0.0.2:80" };
	struct endpoints *s = set_of(one, 2, policy(ENDPOINT_PEAK_EWMA, 1, SEC(10), SEC(300), 50));
	struct endpoint_snapshot snap, before;
	uint32_t id;

	/* never measured: a 300 ms cut is its first sample */
	id = start_on(s, T0, one[0]);
	ck_assert_int_eq(endpoints_done(s, id, T0, T0 + MS(300), MS(300), ENDPOINT_CUT, NULL), 0);
	snap = snap_of(s, T0 + MS(300), one[0]);
	ck_assert_uint_eq(snap.estimate_us, MS(300));
	ck_assert_uint_eq(snap.failures_in_row, 0);
	ck_assert_int_eq(snap.state, ENDPOINT_ACTIVE);
	endpoints_free(s);
	/* measured at 20 ms: a 5 ms cut says nothing, a 50 ms one raises it */
	s = set_of(one, 2, policy(ENDPOINT_PEAK_EWMA, 1, SEC(10), SEC(300), 50));
	attempt(s, T0, one[1], MS(20), ENDPOINT_SUCCESS, NULL);
	before = snap_of(s, T0 + MS(25), one[1]);
	id = start_on(s, T0 + MS(20), one[1]);
	endpoints_done(s, id, T0 + MS(20), T0 + MS(25), MS(5), ENDPOINT_CUT, NULL);
	snap = snap_of(s, T0 + MS(25), one[1]);
	ck_assert_uint_eq(snap.estimate_us, before.estimate_us);
	ck_assert_uint_eq(snap.failures_in_row, 0);
	id = start_on(s, T0 + MS(25), one[1]);
	endpoints_done(s, id, T0 + MS(25), T0 + MS(75), MS(50), ENDPOINT_CUT, NULL);
	snap = snap_of(s, T0 + MS(75), one[1]);
	ck_assert_uint_eq(snap.estimate_us, MS(50));
	ck_assert_uint_eq(snap.failures_in_row, 0);
	ck_assert_uint_eq(snap.inflight, 0);
	endpoints_free(s);
}
END_TEST

START_TEST(test_peak_ewma_slow_share)
{
	static const uint64_t rtts[3] = { MS(1), MS(1), MS(300) };
	struct endpoints *s = measured_abc(rtts);
	struct rng rng;
	unsigned hits;

	rng_seed(&rng, 42);
	/* 10,000 picks over 10 s, eight in flight at a time */
	{
		uint32_t ring[8] = { 0 };
		uint64_t picked[8] = { 0 };
		uint32_t slow = id_of(s, abc[2]);

		hits = 0;
		for (unsigned i = 0; i < 10000; i++) {
			uint64_t now = T0 + MS(1) + MS(i);
			uint32_t *slot = &ring[i % 8];

			if (*slot)
				endpoints_done(s, *slot, picked[i % 8], now, rtt_of(s, *slot, rtts),
					       ENDPOINT_SUCCESS, NULL);
			*slot = endpoints_pick(s, now, &rng, NULL, 0);
			picked[i % 8] = now;
			hits += *slot == slow;
		}
	}
	ck_assert_msg(hits < 300, "the 300 ms endpoint got %u of 10000 picks", hits);
	endpoints_free(s);
}
END_TEST

/* A slow endpoint left idle decays toward zero and is tried again: a 300 ms
 * estimate falls below the fast ones' 1 ms after tau * ln(300) ≈ 57 s. */
START_TEST(test_peak_ewma_decay)
{
	static const uint64_t rtts[3] = { MS(1), MS(1), MS(300) };
	struct endpoints *s = measured_abc(rtts);
	uint64_t first = 0;
	struct rng rng;

	rng_seed(&rng, 3);
	ck_assert_uint_eq(run_picks(s, &rng, rtts, T0 + MS(1), MS(100), 500, NULL), 0);
	ck_assert_uint_ge(run_picks(s, &rng, rtts, T0 + SEC(50), MS(100), 200, &first), 1);
	ck_assert_msg(first >= T0 + SEC(56) && first <= T0 + SEC(60),
		      "tried again %.1f s after its sample", (double)(first - T0) / 1e6);
	/* measured again at 300 ms: the peak is back at once */
	ck_assert_uint_eq(snap_of(s, first, abc[2]).estimate_us, MS(300));
	endpoints_free(s);
}
END_TEST

/* The estimate: a slower sample replaces it, a faster one is blended in by
 * the time since the last, and it decays with tau while idle. */
START_TEST(test_peak_ewma_estimate)
{
	static const char *const one[] = { "10.0.0.1:80" };
	struct endpoints *s = set_of(one, 1, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 50));
	uint64_t est;

	ck_assert_uint_eq(snap_of(s, T0, one[0]).estimate_us, ENDPOINT_DEFAULT_RTT_US);
	/* the first sample replaces the default, even below it */
	attempt(s, T0, one[0], MS(10), ENDPOINT_SUCCESS, NULL);
	ck_assert_uint_eq(snap_of(s, T0 + MS(10), one[0]).estimate_us, MS(10));
	/* a slower one is the new peak at once */
	attempt(s, T0 + MS(10), one[0], MS(100), ENDPOINT_SUCCESS, NULL);
	ck_assert_uint_eq(snap_of(s, T0 + MS(110), one[0]).estimate_us, MS(100));
	/* tau later, idle: 100 ms * e^-1 */
	est = snap_of(s, T0 + MS(110) + SEC(10), one[0]).estimate_us;
	ck_assert_uint_eq(est, 36788);
	/* a 10 ms sample then: blended with weight 1 - e^-1 into the decayed
	 * 36.8 ms: 36788 * e^-1 + 10000 * (1 - e^-1) */
	attempt(s, T0 + MS(100) + SEC(10), one[0], MS(10), ENDPOINT_SUCCESS, NULL);
	est = snap_of(s, T0 + MS(110) + SEC(10), one[0]).estimate_us;
	ck_assert_msg(est >= 19850 && est <= 19860, "blended estimate %lu", (unsigned long)est);
	/* a failure counts at least ENDPOINT_FAILURE_RTT_US */
	attempt(s, T0 + SEC(11), one[0], MS(1), ENDPOINT_FAILURE, NULL);
	ck_assert_uint_eq(snap_of(s, T0 + SEC(11) + MS(1), one[0]).estimate_us,
			  ENDPOINT_FAILURE_RTT_US);
	/* a cut attempt is no sample */
	attempt(s, T0 + SEC(12), one[0], MS(1), ENDPOINT_NEUTRAL, NULL);
	ck_assert_uint_eq(snap_of(s, T0 + SEC(11) + MS(1), one[0]).estimate_us,
			  ENDPOINT_FAILURE_RTT_US);
	endpoints_free(s);
}
END_TEST

START_TEST(test_peak_ewma_inflight)
{
	static const char *const two[] = { "10.0.0.1:80", "10.0.0.2:80" };
	struct endpoints *s = set_of(two, 2, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 50));
	uint32_t b = id_of(s, two[1]);
	struct rng rng;

	rng_seed(&rng, 5);
	attempt(s, T0, two[0], MS(10), ENDPOINT_SUCCESS, NULL);
	attempt(s, T0, two[1], MS(10), ENDPOINT_SUCCESS, NULL);
	for (int i = 0; i < 3; i++)
		start_on(s, T0 + MS(10), two[0]);
	ck_assert_uint_eq(snap_of(s, T0 + MS(10), two[0]).cost_us, (MS(10) + 1) * 4);
	ck_assert_uint_eq(snap_of(s, T0 + MS(10), two[1]).cost_us, MS(10) + 1);
	/* b is cheaper until it has as many in flight as a */
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(endpoints_pick(s, T0 + MS(10), &rng, NULL, 0), b);
	ck_assert_uint_eq(snap_of(s, T0 + MS(10), two[1]).inflight, 3);
	endpoints_free(s);
}
END_TEST

/* An endpoint that fails in 1 ms is not where traffic goes. */
START_TEST(test_peak_ewma_fast_failure)
{
	struct endpoints *s =
	    set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 1000000, SEC(10), SEC(300), 50));
	uint32_t bad = id_of(s, abc[0]);
	unsigned hits = 0;
	struct rng rng;

	rng_seed(&rng, 11);
	attempt(s, T0, abc[0], MS(1), ENDPOINT_FAILURE, NULL);
	attempt(s, T0, abc[1], MS(50), ENDPOINT_SUCCESS, NULL);
	attempt(s, T0, abc[2], MS(50), ENDPOINT_SUCCESS, NULL);
	for (unsigned i = 0; i < 10000; i++) {
		uint64_t now = T0 + MS(100) + MS(i);
		uint32_t id = endpoints_pick(s, now, &rng, NULL, 0);

		hits += id == bad;
		endpoints_done(s, id, (now + MS(id == bad ? 1 : 50)) - (MS(id == bad ? 1 : 50)),
			       now + MS(id == bad ? 1 : 50), MS(id == bad ? 1 : 50),
			       id == bad ? ENDPOINT_FAILURE : ENDPOINT_SUCCESS, NULL);
	}
	ck_assert_msg(hits < 300, "the failing endpoint got %u of 10000 picks", hits);
	endpoints_free(s);
}
END_TEST

/* ==== avoid ============================================================== */

START_TEST(test_avoid)
{
	const enum endpoint_balance balance = _i % 2 ? ENDPOINT_ROUND_ROBIN : ENDPOINT_PEAK_EWMA;
	const int third = _i / 2;
	struct endpoints *s = set_of(abc, 3, policy(balance, 5, SEC(10), SEC(300), 50));
	uint32_t ids[3], avoid[2], all[3];
	size_t navoid = 0;
	struct rng rng;

	rng_seed(&rng, (uint64_t)_i);
	for (int i = 0; i < 3; i++) {
		ids[i] = all[i] = id_of(s, abc[i]);
		if (i != third)
			avoid[navoid++] = ids[i];
	}
	for (int i = 0; i < 200; i++) {
		uint32_t id = endpoints_pick(s, T0, &rng, avoid, navoid);

		ck_assert_uint_eq(id, ids[third]);
		endpoints_done(s, id, (T0) - (MS(1)), T0, MS(1), ENDPOINT_SUCCESS, NULL);
	}
	/* all avoided: one is still picked */
	for (int i = 0; i < 20; i++) {
		uint32_t id = endpoints_pick(s, T0, &rng, all, 3);

		ck_assert_msg(id == ids[0] || id == ids[1] || id == ids[2], "picked %u", id);
		endpoints_done(s, id, (T0) - (MS(1)), T0, MS(1), ENDPOINT_SUCCESS, NULL);
	}
	/* the third ejected: an avoided one rather than an ejected one */
	ck_assert_int_eq(endpoints_eject_until(s, abc[third], T0 + SEC(1), T0), 1);
	for (int i = 0; i < 20; i++) {
		uint32_t id = endpoints_pick(s, T0, &rng, avoid, navoid);

		ck_assert_uint_ne(id, ids[third]);
		endpoints_done(s, id, (T0) - (MS(1)), T0, MS(1), ENDPOINT_SUCCESS, NULL);
	}
	endpoints_free(s);
}
END_TEST

/* ==== ejection =========================================================== */

/* Attempts in a row on one endpoint ('F' failure, 'S' success, 'N' neutral)
 * under consecutive_failures; eject_at is the attempt (1-based) that ejects,
 * 0 for none. */
struct eject_case {
	uint32_t failures;
	const char *seq;
	int eject_at;
};

static const struct eject_case eject_cases[] = {
	{ 3, "FFF", 3 },   { 3, "FF", 0 },        { 3, "FFSFF", 0 }, { 3, "FFSFFF", 6 },
	{ 1, "F", 1 },     { 1, "SSSF", 4 },      { 2, "FNF", 3 },   { 2, "NNNN", 0 },
	{ 5, "FFFFF", 5 }, { 5, "FFFFSFFFF", 0 }, { 0, "F", 1 },
};

START_TEST(test_eject_count)
{
	const struct eject_case *c = &eject_cases[_i];
	struct endpoints *s =
	    set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, c->failures, SEC(10), SEC(300), 100));
	int at = 0;

	for (int i = 0; c->seq[i]; i++) {
		enum endpoint_result r = c->seq[i] == 'F'   ? ENDPOINT_FAILURE
					 : c->seq[i] == 'S' ? ENDPOINT_SUCCESS
							    : ENDPOINT_NEUTRAL;
		uint64_t now = T0 + MS(10 * i), until = 0;

		if (attempt(s, now, abc[0], MS(1), r, &until)) {
			ck_assert_msg(at == 0, "%s: ejected twice", c->seq);
			at = i + 1;
			ck_assert_uint_eq(until, now + MS(1) + SEC(10));
		}
	}
	ck_assert_msg(at == c->eject_at, "%u failures, %s: ejected at %d, expected %d", c->failures,
		      c->seq, at, c->eject_at);
	ck_assert_int_eq(ejected(s, T0 + MS(10 * (int)strlen(c->seq)), abc[0]), at != 0);
	endpoints_free(s);
}
END_TEST

/* base, 2 base, 4 base... at most max, across ejections in a row; a success
 * sets k back to 0; an ejection ends at its instant. */
START_TEST(test_eject_backoff)
{
	static const uint64_t lengths[] = { SEC(1), SEC(2), SEC(4), SEC(5), SEC(5) };
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 2, SEC(1), SEC(5), 50));
	uint64_t now = T0, until = 0;
	struct rng rng;

	rng_seed(&rng, 9);
	for (int k = 0; k < N(lengths); k++) {
		ck_assert_int_eq(attempt(s, now, abc[0], 0, ENDPOINT_FAILURE, &until), 0);
		ck_assert_int_eq(attempt(s, now, abc[0], 0, ENDPOINT_FAILURE, &until), 1);
		ck_assert_uint_eq(until, now + lengths[k]);
		ck_assert_uint_eq(snap_of(s, now, abc[0]).ejections_in_row, (uint32_t)k + 1);
		/* ejected until the instant, not a µs more */
		ck_assert(ejected(s, until - 1, abc[0]));
		for (int i = 0; i < 50; i++) {
			uint32_t id = endpoints_pick(s, until - 1, &rng, NULL, 0);

			ck_assert_uint_ne(id, id_of(s, abc[0]));
			endpoints_done(s, id, (until - 1) - (MS(1)), until - 1, MS(1),
				       ENDPOINT_NEUTRAL, NULL);
		}
		ck_assert(!ejected(s, until, abc[0]));
		ck_assert_uint_eq(snap_of(s, until, abc[0]).failures_in_row, 0);
		now = until;
	}
	/* one success: the next ejection is base again */
	attempt(s, now, abc[0], MS(1), ENDPOINT_SUCCESS, NULL);
	ck_assert_uint_eq(snap_of(s, now, abc[0]).ejections_in_row, 0);
	attempt(s, now, abc[0], 0, ENDPOINT_FAILURE, &until);
	ck_assert_int_eq(attempt(s, now, abc[0], 0, ENDPOINT_FAILURE, &until), 1);
	ck_assert_uint_eq(until, now + SEC(1));
	ck_assert_uint_eq(snap_of(s, now, abc[0]).ejections, N(lengths) + 1);
	endpoints_free(s);
}
END_TEST

/* Attempts sent before an ejection that fail after it do not extend it nor
 * count toward the next one. */
START_TEST(test_eject_stragglers)
{
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 2, SEC(1), SEC(5), 50));
	uint32_t late[3];
	uint64_t until = 0, until2 = 0;

	for (int i = 0; i < 3; i++)
		late[i] = start_on(s, T0, abc[0]);
	attempt(s, T0, abc[0], 0, ENDPOINT_FAILURE, NULL);
	ck_assert_int_eq(attempt(s, T0, abc[0], 0, ENDPOINT_FAILURE, &until), 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(endpoints_done(s, late[i], (T0 + MS(1)) - (MS(1)), T0 + MS(1),
						MS(1), ENDPOINT_FAILURE, &until2),
				 0);
	ck_assert_uint_eq(snap_of(s, T0 + MS(1), abc[0]).ejected_until_us, until);
	/* back with no failures in a row: one failure does not eject again */
	ck_assert_int_eq(attempt(s, until, abc[0], 0, ENDPOINT_FAILURE, NULL), 0);
	ck_assert(!ejected(s, until, abc[0]));
	endpoints_free(s);
}
END_TEST

/* max_percent and "never the last one": with n endpoints each failing once
 * (consecutive_failures 1), how many end up ejected. */
struct percent_case {
	size_t n;
	uint32_t percent;
	uint32_t expect;
};

static const struct percent_case percent_cases[] = {
	{ 3, 50, 1 }, { 3, 0, 0 },   { 3, 100, 2 }, { 4, 50, 2 },  { 1, 100, 0 }, { 2, 100, 1 },
	{ 2, 50, 1 }, { 10, 10, 1 }, { 10, 9, 0 },  { 5, 100, 4 }, { 5, 39, 1 },  { 5, 40, 2 },
};

START_TEST(test_eject_max_percent)
{
	const struct percent_case *c = &percent_cases[_i];
	char text[10][ENDPOINT_NAME_MAX];
	const char *names[10] = { NULL };
	struct endpoints *s;
	uint32_t active, ejected_now, made = 0;
	uint64_t ever;

	for (size_t i = 0; i < c->n; i++) {
		snprintf(text[i], sizeof(text[i]), "10.0.0.%zu:80", i + 1);
		names[i] = text[i];
	}
	s = set_of(names, c->n, policy(ENDPOINT_PEAK_EWMA, 1, SEC(10), SEC(300), c->percent));
	for (size_t i = 0; i < c->n; i++)
		made += (uint32_t)attempt(s, T0, names[i], MS(1), ENDPOINT_FAILURE, NULL);
	endpoints_totals(s, T0 + MS(1), &active, &ejected_now, &ever);
	ck_assert_msg(ejected_now == c->expect, "%zu endpoints, %u%%: %u ejected, expected %u",
		      c->n, c->percent, ejected_now, c->expect);
	ck_assert_uint_eq(made, c->expect);
	ck_assert_uint_eq(active + ejected_now, c->n);
	ck_assert_uint_eq(ever, c->expect);
	endpoints_free(s);
}
END_TEST

/* An ejection refused for max_percent is made by the next failure once there
 * is room. */
START_TEST(test_eject_refused_then_made)
{
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 2, SEC(10), SEC(300), 50));
	uint64_t until = 0, a_until = 0;

	attempt(s, T0, abc[0], 0, ENDPOINT_FAILURE, NULL);
	ck_assert_int_eq(attempt(s, T0, abc[0], 0, ENDPOINT_FAILURE, &a_until), 1);
	attempt(s, T0, abc[1], 0, ENDPOINT_FAILURE, NULL);
	ck_assert_int_eq(attempt(s, T0, abc[1], 0, ENDPOINT_FAILURE, &until), 0);
	ck_assert(!ejected(s, T0, abc[1]));
	ck_assert_uint_eq(snap_of(s, T0, abc[1]).failures_in_row, 2);
	ck_assert_int_eq(attempt(s, a_until, abc[1], 0, ENDPOINT_FAILURE, &until), 1);
	ck_assert_uint_eq(until, a_until + SEC(10));
	endpoints_free(s);
}
END_TEST

/* An ejection from elsewhere in the fleet: extends, never shortens, never
 * ejects the last one nor more than max_percent, and is not counted here. */
START_TEST(test_eject_until)
{
	static const char *const one[] = { "10.0.0.1:80" };
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 100));
	uint64_t ever = 1;

	ck_assert_int_eq(endpoints_eject_until(s, abc[0], T0 + SEC(5), T0), 1);
	ck_assert_uint_eq(snap_of(s, T0, abc[0]).ejected_until_us, T0 + SEC(5));
	ck_assert_int_eq(endpoints_eject_until(s, abc[0], T0 + SEC(3), T0), 0);
	ck_assert_uint_eq(snap_of(s, T0, abc[0]).ejected_until_us, T0 + SEC(5));
	ck_assert_int_eq(endpoints_eject_until(s, abc[0], T0 + SEC(8), T0 + SEC(1)), 1);
	ck_assert_uint_eq(snap_of(s, T0 + SEC(1), abc[0]).ejected_until_us, T0 + SEC(8));
	ck_assert_int_eq(endpoints_eject_until(s, abc[1], T0 + SEC(8), T0 + SEC(1)), 1);
	/* c is the last one taking traffic */
	ck_assert_int_eq(endpoints_eject_until(s, abc[2], T0 + SEC(8), T0 + SEC(1)), 0);
	ck_assert(!ejected(s, T0 + SEC(1), abc[2]));
	/* past, unknown */
	ck_assert_int_eq(endpoints_eject_until(s, abc[2], T0, T0 + SEC(1)), 0);
	ck_assert_int_eq(endpoints_eject_until(s, "10.9.9.9:80", T0 + SEC(9), T0 + SEC(1)), 0);
	ck_assert_uint_eq(snap_of(s, T0 + SEC(1), abc[0]).ejections_in_row, 0);
	endpoints_totals(s, T0 + SEC(1), NULL, NULL, &ever);
	ck_assert_uint_eq(ever, 0);
	endpoints_free(s);

	s = set_of(one, 1, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 100));
	ck_assert_int_eq(endpoints_eject_until(s, one[0], T0 + SEC(5), T0), 0);
	endpoints_free(s);

	/* max_percent 34 of 3: one at most, whoever asks; 0: none */
	s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 34));
	ck_assert_int_eq(endpoints_eject_until(s, abc[0], T0 + SEC(5), T0), 1);
	ck_assert_int_eq(endpoints_eject_until(s, abc[1], T0 + SEC(5), T0), 0);
	ck_assert(!ejected(s, T0, abc[1]));
	endpoints_free(s);
	s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 5, SEC(10), SEC(300), 0));
	ck_assert_int_eq(endpoints_eject_until(s, abc[0], T0 + SEC(5), T0), 0);
	endpoints_free(s);
}
END_TEST

/* Ids wrap past 2^32 - 1, skipping 0 and the ids still held: a name
 * server rotating addresses for ever never freezes the set. */
START_TEST(test_ids_wrap)
{
	struct endpoints *s =
	    set_of(abc, 3, policy(ENDPOINT_ROUND_ROBIN, 5, SEC(10), SEC(300), 50));
	char name[ENDPOINT_NAME_MAX];
	const char *names[1] = { name };
	uint32_t seen = 0;

	endpoints_set_next_id(s, UINT32_MAX - 1);
	for (unsigned i = 0; i < 4; i++) {
		uint32_t id;

		snprintf(name, sizeof(name), "10.1.0.%u:80", i);
		ck_assert_uint_eq(endpoints_update(s, names, 1, T0), 1);
		id = endpoints_find(s, name);
		ck_assert_uint_ne(id, 0);
		ck_assert_uint_ne(id, seen);
		seen = id;
	}
	endpoints_free(s);
}
END_TEST

/* If every endpoint is ejected anyway (it should not happen), the one that
 * comes back first answers. */
START_TEST(test_all_ejected)
{
	struct endpoints *s =
	    set_of(abc, 3, policy(ENDPOINT_ROUND_ROBIN, 5, SEC(10), SEC(300), 100));
	struct rng rng;

	rng_seed(&rng, 1);
	ck_assert_int_eq(endpoints_eject_until(s, abc[0], T0 + SEC(9), T0), 1);
	ck_assert_int_eq(endpoints_eject_until(s, abc[1], T0 + SEC(7), T0), 1);
	/* the set shrinks to the two ejected ones */
	ck_assert_uint_eq(endpoints_update(s, abc, 2, T0), 2);
	for (int i = 0; i < 5; i++) {
		uint32_t id = endpoints_pick(s, T0 + SEC(1), &rng, NULL, 0);

		ck_assert_uint_eq(id, id_of(s, abc[1]));
		endpoints_done(s, id, (T0 + SEC(1)) - (MS(1)), T0 + SEC(1), MS(1), ENDPOINT_NEUTRAL,
			       NULL);
	}
	endpoints_free(s);
}
END_TEST

/* ==== snapshot, totals, misuse =========================================== */

START_TEST(test_snapshot_totals)
{
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 1, SEC(10), SEC(300), 100));
	struct endpoint_snapshot snap[3];
	uint32_t active = 0, ejected_now = 0;
	uint64_t ever = 0, until = 0, sum = 0;
	const uint64_t now = T0 + SEC(2);

	attempt(s, T0, abc[0], MS(20), ENDPOINT_SUCCESS, NULL);
	ck_assert_int_eq(attempt(s, T0, abc[1], MS(5), ENDPOINT_FAILURE, &until), 1);
	start_on(s, T0 + SEC(1), abc[2]);
	start_on(s, T0 + SEC(1), abc[2]);
	ck_assert_uint_eq(endpoints_snapshot(s, now, snap, 2), 2);
	ck_assert_uint_eq(endpoints_snapshot(s, now, snap, 3), 3);
	endpoints_totals(s, now, &active, &ejected_now, &ever);
	for (int i = 0; i < 3; i++) {
		/* abc[2]'s two attempts in flight are 1 s old, longer than its
		 * estimate: the cost takes their age. */
		uint64_t judged = i == 2 ? SEC(1) : snap[i].estimate_us;

		ck_assert_str_eq(snap[i].name, abc[i]);
		ck_assert_uint_eq(snap[i].cost_us, (judged + 1) * (snap[i].inflight + 1));
		ck_assert_uint_eq(snap[i].ejected_until_us != 0, snap[i].state == ENDPOINT_EJECTED);
		sum += snap[i].ejections;
	}
	ck_assert_uint_eq(active, 2);
	ck_assert_uint_eq(ejected_now, 1);
	ck_assert_uint_eq(ever, 1);
	ck_assert_uint_eq(sum, 1);
	ck_assert_int_eq(snap[1].state, ENDPOINT_EJECTED);
	ck_assert_uint_eq(snap[1].ejected_until_us, until);
	ck_assert_uint_eq(snap[1].ejections_in_row, 1);
	ck_assert_uint_eq(snap[1].estimate_us, 819140); /* 1 s as of T0 + 5 ms, 1.995 s decayed */
	ck_assert_int_eq(snap[0].state, ENDPOINT_ACTIVE);
	ck_assert_uint_eq(snap[2].inflight, 2);
	ck_assert_uint_eq(snap[2].estimate_us, ENDPOINT_DEFAULT_RTT_US); /* never measured */
	/* at the end of the ejection: all active, the count stays */
	endpoints_totals(s, until, &active, &ejected_now, &ever);
	ck_assert_uint_eq(active, 3);
	ck_assert_uint_eq(ejected_now, 0);
	ck_assert_uint_eq(ever, 1);
	endpoints_free(s);
}
END_TEST

START_TEST(test_unknown_ids)
{
	struct endpoints *s = set_of(abc, 3, policy(ENDPOINT_PEAK_EWMA, 1, SEC(10), SEC(300), 100));
	uint64_t until = 7;

	ck_assert_int_eq(endpoints_done(s, 0, (T0) - (MS(1)), T0, MS(1), ENDPOINT_FAILURE, &until),
			 0);
	ck_assert_int_eq(
	    endpoints_done(s, 999, (T0) - (MS(1)), T0, MS(1), ENDPOINT_FAILURE, &until), 0);
	ck_assert_uint_eq(until, 7);
	ck_assert_ptr_null(endpoints_name(s, 0));
	ck_assert_ptr_null(endpoints_name(s, 999));
	ck_assert_uint_eq(endpoints_find(s, "nope"), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(snap_of(s, T0, abc[i]).failures_in_row, 0);
	endpoints_free(s);
	endpoints_free(NULL);
}
END_TEST

Suite *endpoints_suite(void)
{
	Suite *s = suite_create("endpoints");
	TCase *tc = tcase_create("update");

	tcase_add_test(tc, test_update_keeps_state);
	tcase_add_test(tc, test_update_departed_in_flight);
	tcase_add_test(tc, test_update_departed_returns);
	tcase_add_loop_test(tc, test_update_names, 0, N(names_cases));
	tcase_add_test(tc, test_update_cap);
	suite_add_tcase(s, tc);

	tc = tcase_create("pick");
	tcase_add_test(tc, test_round_robin);
	tcase_add_test(tc, test_round_robin_update);
	tcase_add_test(tc, test_peak_ewma_slow_share);
	tcase_add_test(tc, test_inflight_age_counts);
	tcase_add_test(tc, test_cut_is_a_lower_bound);
	tcase_add_test(tc, test_ids_wrap);
	tcase_add_test(tc, test_peak_ewma_decay);
	tcase_add_test(tc, test_peak_ewma_estimate);
	tcase_add_test(tc, test_peak_ewma_inflight);
	tcase_add_test(tc, test_peak_ewma_fast_failure);
	tcase_add_loop_test(tc, test_avoid, 0, 6);
	suite_add_tcase(s, tc);

	tc = tcase_create("eject");
	tcase_add_loop_test(tc, test_eject_count, 0, N(eject_cases));
	tcase_add_test(tc, test_eject_backoff);
	tcase_add_test(tc, test_eject_stragglers);
	tcase_add_loop_test(tc, test_eject_max_percent, 0, N(percent_cases));
	tcase_add_test(tc, test_eject_refused_then_made);
	tcase_add_test(tc, test_eject_until);
	tcase_add_test(tc, test_all_ejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("report");
	tcase_add_test(tc, test_snapshot_totals);
	tcase_add_test(tc, test_unknown_ids);
	suite_add_tcase(s, tc);
	return s;
}

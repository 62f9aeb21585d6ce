/* Tests of daemon/policy/pace.c: a profile's outbound rate limiters (SPEC
 * 4.12): one per scope (the profile's, a route's own), configured from the
 * policy on use and reconfigured without losing the schedule, the queue of
 * attempts waiting for their slot, giving a slot back, learned quotas, the
 * views /status shows, the refusal counters and the wait histogram, and the
 * reuse of the least recently used limiter beyond PACE_LIMITERS_MAX.
 * Time is a plain uint64_t of microseconds, written with MS() and SEC(). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "pace.h"

#define MS(ms) ((uint64_t)(ms)*1000)
#define SEC(s) ((uint64_t)(s)*1000000)
#define T0 SEC(1000) /* a start well away from 0 */

static struct pace_set *ps;

static void setup(void)
{
	ps = pace_new();
	ck_assert_ptr_nonnull(ps);
}

static void teardown(void)
{
	pace_free(ps);
	ps = NULL;
}

/* count per second, burst 1, scope (NULL: the profile's). */
static struct rate_limit_policy rate(uint32_t count, const char *scope)
{
	return (struct rate_limit_policy){ .count = count,
					   .per_us = SEC(1),
					   .burst = 1,
					   .queue_ms = 1000,
					   .share = RATE_SHARE_LOCAL,
					   .scope = scope };
}

/* Reserves under rl at now, waiting at most max_wait; checks the verdict
 * the call returns is the ticket's. */
static struct pace_ticket reserve(const struct rate_limit_policy *rl, uint64_t now,
				  uint64_t max_wait)
{
	struct pace_ticket t;

	ck_assert_int_eq(pace_reserve(ps, rl, now, max_wait, &t), t.slot.verdict);
	return t;
}

static void expect(const struct pace_ticket *t, enum gcra_verdict v, uint64_t wait_us)
{
	ck_assert_int_eq(t->slot.verdict, v);
	ck_assert_uint_eq(t->slot.wait_us, wait_us);
}

/* The view of scope (NULL: the profile's) at now; fails when absent. */
static struct pace_view view_of(const char *scope, uint64_t now)
{
	struct pace_view v[PACE_LIMITERS_MAX + 1];
	size_t n = pace_views(ps, now, v, PACE_LIMITERS_MAX + 1);

	for (size_t i = 0; i < n; i++)
		if (scope ? v[i].scope && !strcmp(v[i].scope, scope) : !v[i].scope)
			return v[i];
	ck_abort_msg("no limiter for scope '%s'", scope ? scope : "(profile)");
	return v[0];
}

static int has_view(const char *scope, uint64_t now)
{
	struct pace_view v[PACE_LIMITERS_MAX + 1];
	size_t n = pace_views(ps, now, v, PACE_LIMITERS_MAX + 1);

	for (size_t i = 0; i < n; i++)
		if (scope ? v[i].scope && !strcmp(v[i].scope, scope) : !v[i].scope)
			return 1;
	return 0;
}

static size_t nviews(uint64_t now)
{
	struct pace_view v[PACE_LIMITERS_MAX + 1];

	return pace_views(ps, now, v, PACE_LIMITERS_MAX + 1);
}

/* The profile's limiter and a route's own are apart, whichever came
 * first; the same label, from another string, is the same route limiter. */
START_TEST(test_limiter_per_scope)
{
	char label[] = "GET /a";
	char same[sizeof(label)];
	struct rate_limit_policy prof = rate(10, NULL), route = rate(10, label), again;
	struct pace_ticket t;

	memcpy(same, label, sizeof(label));
	again = rate(10, same);
	/* The route's limiter first: the profile's is not that one. */
	t = reserve(&route, T0, MS(1000));
	expect(&t, GCRA_GO, 0);
	t = reserve(&prof, T0, MS(1000));
	expect(&t, GCRA_GO, 0);
	t = reserve(&prof, T0, MS(1000));
	expect(&t, GCRA_WAIT, MS(100));
	/* The same label (another pointer) is that limiter: its next waits. */
	t = reserve(&again, T0, MS(1000));
	expect(&t, GCRA_WAIT, MS(100));
	/* The profile's schedule was not touched by the route's. */
	t = reserve(&prof, T0, MS(1000));
	expect(&t, GCRA_WAIT, MS(200));
	ck_assert_uint_eq(nviews(T0), 2);
	/* Another route has yet another. */
	t = reserve(
	    &(struct rate_limit_policy){
		.count = 10, .per_us = SEC(1), .burst = 1, .scope = "GET /b" },
	    T0, MS(1000));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(nviews(T0), 3);
}
END_TEST

/* A ticket acts on the limiter that granted it: releasing a route's WAIT
 * takes it out of the route's queue and gives the route's slot back,
 * never the profile's. */
START_TEST(test_ticket_acts_on_its_limiter)
{
	struct rate_limit_policy prof = rate(10, NULL), route = rate(10, "GET /a");
	struct pace_ticket p2, r2, t;

	reserve(&prof, T0, SEC(1));
	p2 = reserve(&prof, T0, SEC(1));
	expect(&p2, GCRA_WAIT, MS(100));
	reserve(&route, T0, SEC(1));
	r2 = reserve(&route, T0, SEC(1));
	expect(&r2, GCRA_WAIT, MS(100));
	ck_assert_uint_ne(p2.limiter, r2.limiter);
	pace_release(ps, &r2);
	ck_assert_uint_eq(view_of("GET /a", T0).queue, 0);
	ck_assert_uint_eq(view_of(NULL, T0).queue, 1);
	t = reserve(&route, T0, SEC(1));
	expect(&t, GCRA_WAIT, MS(100));
	pace_arrived(ps, &t);
	ck_assert_uint_eq(view_of("GET /a", T0).queue, 0);
	ck_assert_uint_eq(view_of(NULL, T0).queue, 1);
	pace_arrived(ps, &p2);
	ck_assert_uint_eq(view_of(NULL, T0).queue, 0);
}
END_TEST

/* A changed rate (a reload, a fleet's slice) applies at once, to the slots
 * granted ahead too: they keep their number at the new spacing, so a raised
 * rate is not held back by the old one's backlog. */
START_TEST(test_reconfigure_keeps_schedule)
{
	struct rate_limit_policy fast = rate(10, NULL), slow = rate(1, NULL);
	struct pace_ticket t;
	struct pace_view v;

	t = reserve(&fast, T0, SEC(5));
	expect(&t, GCRA_GO, 0);
	/* One slot granted ahead: 1 s at the slow rate. */
	t = reserve(&slow, T0, SEC(5));
	expect(&t, GCRA_WAIT, SEC(1));
	/* And the slow rate spaces the one after by 1 s. */
	t = reserve(&slow, T0, SEC(5));
	expect(&t, GCRA_WAIT, SEC(2));
	/* Raised again: two slots ahead at 100 ms, the next at 300 ms. */
	t = reserve(&fast, T0, SEC(5));
	expect(&t, GCRA_WAIT, MS(300));
	t = reserve(&slow, T0, SEC(5));
	v = view_of(NULL, T0);
	ck_assert_uint_eq(v.gcra.count, 1);
	ck_assert_uint_eq(v.gcra.per_us, SEC(1));
	ck_assert_uint_eq(v.gcra.burst, 1);
	/* A larger burst is a change too. */
	slow.burst = 5;
	t = reserve(&slow, T0 + SEC(10), SEC(5));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(view_of(NULL, T0 + SEC(10)).gcra.burst, 5);
	/* Rate 0 turns the configured rate off. */
	t = reserve(&(struct rate_limit_policy){ .count = 0, .per_us = SEC(1), .burst = 1 },
		    T0 + SEC(10), 0);
	expect(&t, GCRA_GO, 0);
	t = reserve(&(struct rate_limit_policy){ .count = 0, .per_us = SEC(1), .burst = 1 },
		    T0 + SEC(10), 0);
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(view_of(NULL, T0 + SEC(10)).gcra.count, 0);
}
END_TEST

/* A WAIT counts in its limiter's queue until its slot comes or it is
 * given back; a GO and a refusal never do. */
START_TEST(test_queue_counts_waits)
{
	struct rate_limit_policy rl = rate(10, NULL);
	struct pace_ticket a, b, c, r;

	a = reserve(&rl, T0, MS(300));
	b = reserve(&rl, T0, MS(300));
	c = reserve(&rl, T0, MS(300));
	expect(&a, GCRA_GO, 0);
	expect(&b, GCRA_WAIT, MS(100));
	expect(&c, GCRA_WAIT, MS(200));
	ck_assert_int_eq(a.queued, 0);
	ck_assert_int_eq(b.queued, 1);
	ck_assert_uint_eq(view_of(NULL, T0).queue, 2);
	r = reserve(&rl, T0, MS(250));
	expect(&r, GCRA_REFUSED, MS(300));
	ck_assert_int_eq(r.queued, 0);
	ck_assert_uint_eq(view_of(NULL, T0).queue, 2);
	pace_arrived(ps, &b);
	ck_assert_int_eq(b.queued, 0);
	ck_assert_uint_eq(view_of(NULL, T0 + MS(100)).queue, 1);
	/* Arriving twice counts once. */
	pace_arrived(ps, &b);
	ck_assert_uint_eq(view_of(NULL, T0 + MS(100)).queue, 1);
	pace_release(ps, &c);
	ck_assert_uint_eq(view_of(NULL, T0 + MS(100)).queue, 0);
	/* Releasing a GO, or one already arrived, leaves the queue alone. */
	pace_release(ps, &a);
	pace_release(ps, &b);
	ck_assert_uint_eq(view_of(NULL, T0 + MS(100)).queue, 0);
}
END_TEST

/* Only the last slot granted can be given back: the slots behind an
 * earlier one are fixed. */
START_TEST(test_release_only_last)
{
	struct rate_limit_policy rl = rate(10, NULL);
	struct pace_ticket a, b, c, d, e;

	a = reserve(&rl, T0, SEC(1));
	b = reserve(&rl, T0, SEC(1));
	c = reserve(&rl, T0, SEC(1));
	expect(&a, GCRA_GO, 0);
	expect(&c, GCRA_WAIT, MS(200));
	/* b is not the last: its slot stays taken. */
	pace_release(ps, &b);
	d = reserve(&rl, T0, SEC(1));
	expect(&d, GCRA_WAIT, MS(300));
	/* d is the last: given back, the next one gets its slot again. */
	pace_release(ps, &d);
	e = reserve(&rl, T0, SEC(1));
	expect(&e, GCRA_WAIT, MS(300));
	/* c was the last once, no longer: it stays taken. */
	pace_release(ps, &c);
	d = reserve(&rl, T0, SEC(1));
	expect(&d, GCRA_WAIT, MS(400));
}
END_TEST

/* A learned quota paces a limiter with no configured rate: remaining 0
 * refuses every attempt until the reset, then they go. */
START_TEST(test_learn_without_rate)
{
	struct rate_limit_policy rl = rate(0, NULL);
	struct ratelimit_quota q = { .remaining = 0, .reset_s = 2 };
	struct pace_ticket t;
	struct pace_view v;

	t = reserve(&rl, T0, 0);
	expect(&t, GCRA_GO, 0);
	pace_learn(ps, &rl, &q, T0, T0);
	v = view_of(NULL, T0);
	ck_assert_int_eq(v.gcra.learned, 1);
	ck_assert_uint_eq(v.gcra.learned_remaining, 0);
	ck_assert_uint_eq(v.gcra.count, 0);
	t = reserve(&rl, T0, SEC(1));
	expect(&t, GCRA_REFUSED, SEC(2));
	ck_assert_int_eq(t.slot.by, GCRA_BY_LEARNED);
	t = reserve(&rl, T0 + MS(1500), SEC(1));
	expect(&t, GCRA_WAIT, MS(500));
	ck_assert_int_eq(t.slot.by, GCRA_BY_LEARNED);
	pace_release(ps, &t);
	t = reserve(&rl, T0 + SEC(2), 0);
	expect(&t, GCRA_GO, 0);
	ck_assert_int_eq(view_of(NULL, T0 + SEC(2)).gcra.learned, 0);
}
END_TEST

/* A learned quota applies to its scope's limiter only. */
START_TEST(test_learn_by_scope)
{
	struct rate_limit_policy prof = rate(0, NULL), route = rate(0, "GET /a");
	struct ratelimit_quota q = { .remaining = 0, .reset_s = 2 };
	struct pace_ticket t;

	pace_learn(ps, &route, &q, T0, T0);
	t = reserve(&route, T0, SEC(1));
	expect(&t, GCRA_REFUSED, SEC(2));
	t = reserve(&prof, T0, SEC(1));
	expect(&t, GCRA_GO, 0);
}
END_TEST

/* An announced reset of 0 (now) constrains nothing. */
START_TEST(test_learn_reset_zero_ignored)
{
	struct rate_limit_policy rl = rate(0, NULL);
	struct ratelimit_quota q = { .remaining = 0, .reset_s = 0 };
	struct pace_ticket t;

	pace_learn(ps, &rl, &q, T0, T0);
	ck_assert_int_eq(view_of(NULL, T0).gcra.learned, 0);
	t = reserve(&rl, T0, 0);
	expect(&t, GCRA_GO, 0);
	t = reserve(&rl, T0, 0);
	expect(&t, GCRA_GO, 0);
}
END_TEST

/* What /status shows of each limiter. */
START_TEST(test_views)
{
	struct rate_limit_policy prof = rate(10, NULL), route = rate(2, "GET /a");
	struct ratelimit_quota q = { .remaining = 5, .reset_s = 10 };
	struct pace_view v[4];
	struct pace_ticket t;
	size_t n;

	ck_assert_uint_eq(pace_views(ps, T0, v, 4), 0);
	t = reserve(&prof, T0, SEC(1));
	t = reserve(&prof, T0, SEC(1));
	expect(&t, GCRA_WAIT, MS(100));
	t = reserve(&route, T0, SEC(1));
	pace_learn(ps, &route, &q, T0, T0);
	n = pace_views(ps, T0, v, 4);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (!v[i].scope) {
			ck_assert_uint_eq(v[i].gcra.count, 10);
			ck_assert_uint_eq(v[i].gcra.per_us, SEC(1));
			ck_assert_uint_eq(v[i].queue, 1);
			ck_assert_int_eq(v[i].gcra.learned, 0);
			ck_assert_uint_eq(v[i].gcra.next_free_us, T0 + MS(200));
		} else {
			ck_assert_str_eq(v[i].scope, "GET /a");
			ck_assert_uint_eq(v[i].gcra.count, 2);
			ck_assert_uint_eq(v[i].queue, 0);
			ck_assert_int_eq(v[i].gcra.learned, 1);
			ck_assert_uint_eq(v[i].gcra.learned_remaining, 5);
			ck_assert_uint_eq(v[i].gcra.learned_reset_us, T0 + SEC(10));
		}
	}
	/* max bounds what is filled. */
	ck_assert_uint_eq(pace_views(ps, T0, v, 1), 1);
}
END_TEST

/* A route label longer than PACE_SCOPE_MAX is kept cut, and still finds
 * its limiter. */
START_TEST(test_long_scope)
{
	char label[PACE_SCOPE_MAX * 2];
	struct rate_limit_policy rl;
	struct pace_ticket t;
	struct pace_view v[2];

	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	rl = rate(10, label);
	t = reserve(&rl, T0, SEC(1));
	expect(&t, GCRA_GO, 0);
	t = reserve(&rl, T0, SEC(1));
	expect(&t, GCRA_WAIT, MS(100));
	ck_assert_uint_eq(pace_views(ps, T0, v, 2), 1);
	ck_assert_uint_eq(strlen(v[0].scope), PACE_SCOPE_MAX - 1);
}
END_TEST

/* The refusal counters, by configured rate and by learned quota. */
START_TEST(test_refusal_counters)
{
	uint64_t conf = 99, learned = 99;

	pace_refused(ps, &conf, &learned);
	ck_assert_uint_eq(conf, 0);
	ck_assert_uint_eq(learned, 0);
	pace_count_refused(ps, GCRA_BY_CONFIGURED);
	pace_count_refused(ps, GCRA_BY_CONFIGURED);
	pace_count_refused(ps, GCRA_BY_LEARNED);
	pace_refused(ps, &conf, &learned);
	ck_assert_uint_eq(conf, 2);
	ck_assert_uint_eq(learned, 1);
}
END_TEST

/* A refusal is not counted by pace_reserve() itself: the caller decides
 * whether the attempt was given up. */
START_TEST(test_reserve_does_not_count_refusal)
{
	struct rate_limit_policy rl = rate(10, NULL);
	struct pace_ticket t;
	uint64_t conf, learned;

	reserve(&rl, T0, 0);
	t = reserve(&rl, T0, 0);
	expect(&t, GCRA_REFUSED, MS(100));
	pace_refused(ps, &conf, &learned);
	ck_assert_uint_eq(conf, 0);
	ck_assert_uint_eq(learned, 0);
}
END_TEST

/* The wait histogram: 0 for a GO under a limit, nothing without one, a
 * WAIT's wait when its slot comes (not before). */
START_TEST(test_histogram)
{
	struct rate_limit_policy none = rate(0, NULL), rl = rate(10, "GET /a");
	const struct histogram *h = pace_waits(ps);
	struct pace_ticket t, w;

	ck_assert_uint_eq(h->count, 0);
	t = reserve(&none, T0, SEC(1));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(h->count, 0);
	t = reserve(&rl, T0, SEC(1));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(h->count, 1);
	ck_assert_uint_eq(h->buckets[0], 1);
	ck_assert(h->sum == 0);
	w = reserve(&rl, T0, SEC(1));
	expect(&w, GCRA_WAIT, MS(100));
	ck_assert_uint_eq(h->count, 1);
	pace_arrived(ps, &w);
	ck_assert_uint_eq(h->count, 2);
	ck_assert(h->sum > 0.0999 && h->sum < 0.1001);
	/* Arrived twice: observed once. */
	pace_arrived(ps, &w);
	ck_assert_uint_eq(h->count, 2);
	/* A WAIT given back observes nothing. */
	w = reserve(&rl, T0, SEC(1));
	expect(&w, GCRA_WAIT, MS(200));
	pace_release(ps, &w);
	ck_assert_uint_eq(h->count, 2);
	/* A learned quota alone is a limit too. */
	pace_learn(ps, &none, &(struct ratelimit_quota){ .remaining = 100, .reset_s = 100 },
		   T0 + SEC(1), T0 + SEC(1));
	t = reserve(&none, T0 + SEC(1), SEC(1));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(h->count, 3);
}
END_TEST

/* A refused attempt never started: it waited no time at all, and is not
 * one of the waits of paced attempts (it is counted as refused instead). */
START_TEST(test_histogram_refusal_not_observed)
{
	struct rate_limit_policy rl = rate(10, NULL);
	const struct histogram *h = pace_waits(ps);
	struct pace_ticket t;

	t = reserve(&rl, T0, SEC(1));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(h->count, 1);
	t = reserve(&rl, T0, 0);
	expect(&t, GCRA_REFUSED, MS(100));
	ck_assert_msg(h->count == 1, "a refusal was observed as a wait of 0 s (count %llu)",
		      (unsigned long long)h->count);
	ck_assert_uint_eq(h->buckets[0], 1);
}
END_TEST

static char names[PACE_LIMITERS_MAX + 2][16];

static struct rate_limit_policy route_n(int i)
{
	snprintf(names[i], sizeof(names[i]), "GET /r%d", i);
	return rate(10, names[i]);
}

/* Beyond PACE_LIMITERS_MAX the least recently used limiter is reused,
 * never one with attempts waiting; a ticket of the limiter reused no
 * longer touches it. */
START_TEST(test_lru_reuse)
{
	struct rate_limit_policy rl;
	struct pace_ticket t, old1;

	/* r0 first (least recent), with an attempt waiting. */
	rl = route_n(0);
	t = reserve(&rl, T0, SEC(1));
	expect(&t, GCRA_GO, 0);
	t = reserve(&rl, T0, SEC(1));
	expect(&t, GCRA_WAIT, MS(100));
	for (int i = 1; i < PACE_LIMITERS_MAX; i++) {
		rl = route_n(i);
		t = reserve(&rl, T0 + MS(i), SEC(1));
		expect(&t, GCRA_GO, 0);
		if (i == 1)
			old1 = t;
	}
	ck_assert_uint_eq(nviews(T0), PACE_LIMITERS_MAX);
	/* One more: r1, the least recent with nobody waiting, makes room. */
	rl = route_n(PACE_LIMITERS_MAX);
	t = reserve(&rl, T0 + MS(100), SEC(1));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(nviews(T0), PACE_LIMITERS_MAX);
	ck_assert(has_view(names[PACE_LIMITERS_MAX], T0));
	ck_assert(!has_view(names[1], T0));
	ck_assert(has_view(names[0], T0));
	ck_assert_uint_eq(view_of(names[0], T0).queue, 1);
	ck_assert(has_view(names[2], T0));
	/* r1's old ticket is of a limiter that is no more: releasing it gives
	 * nothing back from the one that took its place. */
	pace_release(ps, &old1);
	t = reserve(&rl, T0 + MS(100), SEC(1));
	expect(&t, GCRA_WAIT, MS(100));
	/* r1 again: a fresh limiter (r2's place), its first goes at once. */
	rl = route_n(1);
	t = reserve(&rl, T0 + MS(100), SEC(1));
	expect(&t, GCRA_GO, 0);
	ck_assert(!has_view(names[2], T0));
	ck_assert(has_view(names[0], T0));
}
END_TEST

/* Every limiter has attempts waiting: none is reused, and a new scope's
 * attempt goes unpaced (the limit fails open) without a limiter. */
START_TEST(test_lru_all_waiting)
{
	struct rate_limit_policy rl;
	struct pace_ticket t;

	for (int i = 0; i < PACE_LIMITERS_MAX; i++) {
		rl = route_n(i);
		reserve(&rl, T0, SEC(1));
		t = reserve(&rl, T0, SEC(1));
		expect(&t, GCRA_WAIT, MS(100));
	}
	rl = route_n(PACE_LIMITERS_MAX);
	t = reserve(&rl, T0 + MS(1), SEC(1));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(t.limiter, 0);
	ck_assert_uint_eq(nviews(T0), PACE_LIMITERS_MAX);
	ck_assert(!has_view(names[PACE_LIMITERS_MAX], T0));
	for (int i = 0; i < PACE_LIMITERS_MAX; i++)
		ck_assert_uint_eq(view_of(names[i], T0).queue, 1);
	/* Releasing that ticket touches no limiter. */
	pace_release(ps, &t);
	for (int i = 0; i < PACE_LIMITERS_MAX; i++)
		ck_assert_uint_eq(view_of(names[i], T0).queue, 1);
}
END_TEST

/* Answers can arrive out of order: one to an attempt sent before the one
 * that taught the quota in force does not replace it. */
START_TEST(test_learn_older_answer_ignored)
{
	struct rate_limit_policy none = rate(0, NULL);
	struct ratelimit_quota zero = { .remaining = 0, .reset_s = 10 };
	struct ratelimit_quota plenty = { .remaining = 1000, .reset_s = 10 };
	struct pace_ticket t;

	pace_learn(ps, &none, &zero, T0 + MS(200), T0 + SEC(1));
	/* Sent at T0 + 100 ms, answered later: older news. */
	pace_learn(ps, &none, &plenty, T0 + MS(100), T0 + SEC(1) + MS(10));
	t = reserve(&none, T0 + SEC(2), SEC(1));
	expect(&t, GCRA_REFUSED, SEC(9) + MS(0));
	/* Sent later: it replaces it. */
	pace_learn(ps, &none, &plenty, T0 + SEC(2), T0 + SEC(2));
	t = reserve(&none, T0 + SEC(2), SEC(1));
	ck_assert_int_ne(t.slot.verdict, GCRA_REFUSED);
}
END_TEST

/* A request still running under an older configuration does not undo the
 * rate a newer one set. */
START_TEST(test_older_generation_does_not_reconfigure)
{
	struct rate_limit_policy old = rate(1, NULL), cur = rate(100, NULL);
	struct pace_ticket t;

	old.generation = 1;
	cur.generation = 2;
	t = reserve(&cur, T0, SEC(5));
	expect(&t, GCRA_GO, 0);
	t = reserve(&old, T0, SEC(5));
	expect(&t, GCRA_WAIT, MS(10));
	ck_assert_uint_eq(view_of(NULL, T0).gcra.count, 100);
}
END_TEST

/* Two routes whose labels share their first PACE_SCOPE_MAX bytes still have
 * a limiter each. */
START_TEST(test_long_labels_apart)
{
	char a[300], b[300];
	struct rate_limit_policy ra, rb;
	struct pace_ticket t;

	memset(a, 'a', sizeof(a) - 2);
	a[sizeof(a) - 2] = '1';
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[sizeof(b) - 2] = '2';
	ra = rate(1, a);
	rb = rate(1, b);
	t = reserve(&ra, T0, 0);
	expect(&t, GCRA_GO, 0);
	t = reserve(&rb, T0, 0);
	expect(&t, GCRA_GO, 0);
	t = reserve(&ra, T0, 0);
	ck_assert_int_eq(t.slot.verdict, GCRA_REFUSED);
}
END_TEST

/* A shared limiter (share: fleet) learns its part of an announced quota:
 * remaining ÷ the instances the fleet counted. */
START_TEST(test_learn_shared_part)
{
	struct rate_limit_policy shared = rate(0, NULL);
	struct ratelimit_quota q = { .remaining = 9, .reset_s = 9 };
	struct pace_want w[2];

	shared.share = RATE_SHARE_FLEET;
	pace_fleet_up(ps, 1);
	reserve(&shared, T0, 0);
	ck_assert_uint_eq(pace_fleet_wants(ps, T0, w, 2), 1);
	pace_fleet_grant(ps, w[0].limiter, 0, 3, T0 + SEC(1));
	pace_learn(ps, &shared, &q, T0, T0);
	ck_assert_uint_eq(view_of(NULL, T0).gcra.learned_remaining, 3);
	ck_assert_uint_eq(view_of(NULL, T0).instances, 3);
}
END_TEST

/* A shared limiter paces at the fleet's slice while it holds (never above
 * the configured rate, whatever the fleet says), then at the rate ÷ the
 * instances counted; with the fleet away, at that too. */
START_TEST(test_fleet_slice_and_fallback)
{
	struct rate_limit_policy shared = rate(10, NULL);
	struct pace_want w[2];
	struct pace_ticket t;

	shared.share = RATE_SHARE_FLEET;
	pace_fleet_up(ps, 1);
	t = reserve(&shared, T0, SEC(5));
	expect(&t, GCRA_GO, 0);
	ck_assert_uint_eq(pace_fleet_wants(ps, T0 + MS(100), w, 2), 1);
	ck_assert_uint_eq(w[0].cap_milli, 10000);
	ck_assert_uint_eq(w[0].demand_milli, 10000); /* one in 100 ms: 10 per second */
	/* A slice of 2 per second: 500 ms apart. */
	pace_fleet_grant(ps, w[0].limiter, 2000, 2, T0 + SEC(1));
	t = reserve(&shared, T0 + MS(100), SEC(5));
	expect(&t, GCRA_GO, 0);
	t = reserve(&shared, T0 + MS(100), SEC(5));
	expect(&t, GCRA_WAIT, MS(500));
	/* A hostile slice beyond the rate is cut to it: 100 ms apart. */
	pace_fleet_grant(ps, w[0].limiter, 1000000000, 2, T0 + SEC(3));
	t = reserve(&shared, T0 + SEC(2), SEC(5));
	expect(&t, GCRA_GO, 0);
	t = reserve(&shared, T0 + SEC(2), SEC(5));
	expect(&t, GCRA_WAIT, MS(100));
	/* The slice lapsed: 10 ÷ 2 instances, 200 ms apart. */
	t = reserve(&shared, T0 + SEC(4), SEC(5));
	expect(&t, GCRA_GO, 0);
	t = reserve(&shared, T0 + SEC(4), SEC(5));
	expect(&t, GCRA_WAIT, MS(200));
	/* The fleet away with a slice still held: the same. */
	pace_fleet_grant(ps, w[0].limiter, 10000, 2, T0 + SEC(60));
	pace_fleet_up(ps, 0);
	t = reserve(&shared, T0 + SEC(6), SEC(5));
	expect(&t, GCRA_GO, 0);
	t = reserve(&shared, T0 + SEC(6), SEC(5));
	expect(&t, GCRA_WAIT, MS(200));
	ck_assert_uint_eq(view_of(NULL, T0 + SEC(6)).share_milli, 0);
}
END_TEST

Suite *pace_suite(void)
{
	Suite *s = suite_create("pace");
	TCase *tc = tcase_create("limiters");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_limiter_per_scope);
	tcase_add_test(tc, test_ticket_acts_on_its_limiter);
	tcase_add_test(tc, test_reconfigure_keeps_schedule);
	tcase_add_test(tc, test_queue_counts_waits);
	tcase_add_test(tc, test_release_only_last);
	tcase_add_test(tc, test_learn_without_rate);
	tcase_add_test(tc, test_learn_by_scope);
	tcase_add_test(tc, test_learn_reset_zero_ignored);
	tcase_add_test(tc, test_views);
	tcase_add_test(tc, test_long_scope);
	tcase_add_test(tc, test_refusal_counters);
	tcase_add_test(tc, test_reserve_does_not_count_refusal);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_histogram_refusal_not_observed);
	tcase_add_test(tc, test_lru_reuse);
	tcase_add_test(tc, test_lru_all_waiting);
	tcase_add_test(tc, test_learn_older_answer_ignored);
	tcase_add_test(tc, test_older_generation_does_not_reconfigure);
	tcase_add_test(tc, test_long_labels_apart);
	tcase_add_test(tc, test_learn_shared_part);
	tcase_add_test(tc, test_fleet_slice_and_fallback);
	suite_add_tcase(s, tc);
	return s;
}

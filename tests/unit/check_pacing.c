/* Outbound rate limits in the engine (SPEC 4.12): an attempt whose slot is
 * later waits for it (ENGINE_DO_WAIT) within rate_limit.queue and the
 * budget, else the request is answered 429 rate_limited with Retry-After
 * and nothing is sent; retries and hedges take slots; a waiting request
 * that leaves gives its slot back; the cool-down comes first; a learned
 * quota refuses as the configured rate does, counted apart.
 * Several requests share one guard (the profile's limiter). */
#include <stdint.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "config.h"
#include "engine.h"
#include "guard.h"
#include "problem.h"
#include "retry.h"
#include "rng.h"

#define T0_US 1000000000ULL
#define AT(ms) (T0_US + (uint64_t)(ms)*1000)
#define NREQ 4

static struct {
	struct policy pol;
	struct guard *guards, *g;
	struct rng rng;
	struct engine e[NREQ];
	struct engine_action act;
} px;

static void setup(void)
{
	memset(&px, 0, sizeof(px));
	config_builtin_policy(&px.pol);
	px.pol.retry.jitter = JITTER_NONE;
	/* 10 per second, one at a time, a wait of at most 1 s. */
	px.pol.rate_limit.count = 10;
	px.pol.rate_limit.per_us = 1000000;
	px.pol.rate_limit.burst = 1;
	px.pol.rate_limit.queue_ms = 1000;
	rng_seed(&px.rng, 7);
	for (int i = 0; i < NREQ; i++)
		engine_init(&px.e[i], &px.rng);
}

static void teardown(void)
{
	for (int i = 0; i < NREQ; i++)
		engine_release(&px.e[i], T0_US);
	guards_free(px.guards);
	px.guards = NULL;
}

/* The profile's guard, configured from px.pol as it is then. */
static struct guard *guard(void)
{
	if (!px.g) {
		px.g = guard_get(&px.guards, "p");
		ck_assert_ptr_nonnull(px.g);
		guard_configure(px.g, &px.pol);
	}
	return px.g;
}

static void feed(int i, const struct engine_event *ev)
{
	engine_feed(&px.e[i], ev, &px.act);
}

/* Routes request i (a GET) at at_ms with a budget of total_ms (0: the
 * policy's); px.act is what the engine does. */
static void routed_at(int i, uint32_t at_ms, uint32_t total_ms)
{
	struct engine_event ev = { .kind = ENGINE_EV_ROUTED, .now_us = AT(at_ms) };

	ev.u.routed = (struct engine_routed){
		.policy = &px.pol,
		.guard = guard(),
		.profile = "p",
		.method = METHOD_GET,
		.idempotency = IDEM_KEY_NONE,
		.total_ms = total_ms ? total_ms : px.pol.timeouts.total_ms,
		.max_attempts = px.pol.retry.attempts,
		.start_us = AT(at_ms),
		.max_response_body = 1024,
	};
	feed(i, &ev);
}

static void timer(int i, uint32_t at_ms, enum engine_timer which)
{
	struct engine_event ev = { .kind = ENGINE_EV_TIMER, .now_us = AT(at_ms) };

	ev.u.timer.which = which;
	feed(i, &ev);
}

static void answer(int i, uint32_t id, uint32_t at_ms, int status)
{
	struct engine_event ev = { .kind = ENGINE_EV_ATTEMPT, .now_us = AT(at_ms) };

	ev.u.attempt = (struct engine_result){
		.id = id, .end = ATTEMPT_OK, .status = status, .elapsed_us = 5000, .error = ""
	};
	feed(i, &ev);
}

static void gone(int i, uint32_t at_ms)
{
	struct engine_event ev = { .kind = ENGINE_EV_CLIENT_GONE, .now_us = AT(at_ms) };

	feed(i, &ev);
}

static void expect_start(uint32_t id)
{
	ck_assert_int_eq(px.act.kind, ENGINE_DO_START);
	ck_assert_uint_eq(px.act.u.start.id, id);
}

static void expect_wait(uint32_t ms)
{
	ck_assert_int_eq(px.act.kind, ENGINE_DO_WAIT);
	ck_assert_uint_eq(px.act.u.wait_ms, ms);
}

/* A 429 rate_limited problem with Retry-After ms; nothing was sent. */
static void expect_rate_limited(int i, uint64_t ms)
{
	const struct engine_answer *a = &px.act.u.answer;

	ck_assert_int_eq(px.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(a->kind, ENGINE_PROBLEM);
	ck_assert(a->has_code);
	ck_assert_int_eq(a->code, PROBLEM_RATE_LIMITED);
	ck_assert_int_eq(a->retry_after.set, 1);
	ck_assert_uint_eq(a->retry_after.ms, ms);
	ck_assert_int_eq(a->retryable, PROBLEM_RETRYABLE_YES);
	ck_assert_uint_eq(engine_attempts(&px.e[i]), 0);
	ck_assert_int_eq(engine_state(&px.e[i]), ENGINE_DONE);
}

/* Attempts waiting in the profile's limiter. */
static uint32_t queued(void)
{
	struct pace_view v[2];
	size_t n = pace_views(guard_paces(guard()), AT(0), v, 2);

	ck_assert_uint_eq(n, 1);
	return v[0].queue;
}

static struct guard_snapshot snap(uint32_t at_ms)
{
	struct guard_snapshot s;

	guard_snapshot(guard(), AT(at_ms), &s);
	return s;
}

/* The first starts at once; a second at the same instant waits 100 ms for
 * its slot, then starts. */
START_TEST(test_second_waits_for_its_slot)
{
	routed_at(0, 0, 0);
	expect_start(1);
	ck_assert_uint_eq(engine_rate_wait_ms(&px.e[0]), 0);
	routed_at(1, 0, 0);
	expect_wait(100);
	ck_assert_int_eq(engine_state(&px.e[1]), ENGINE_WAITING_FIRST);
	ck_assert_uint_eq(engine_attempts(&px.e[1]), 0);
	ck_assert_uint_eq(queued(), 1);
	timer(1, 100, ENGINE_TIMER_WAIT);
	expect_start(1);
	ck_assert_int_eq(engine_state(&px.e[1]), ENGINE_ATTEMPT);
	ck_assert_uint_eq(queued(), 0);
	ck_assert_uint_eq(engine_rate_wait_ms(&px.e[1]), 100);
	/* Both are in the wait histogram: 0 and 0.1 s. */
	ck_assert_uint_eq(snap(100).rate_wait->count, 2);
	ck_assert(snap(100).rate_wait->sum > 0.0999 && snap(100).rate_wait->sum < 0.1001);
	ck_assert_uint_eq(snap(100).rate_limited_configured, 0);
	/* Their answers end them as usual. */
	answer(1, 1, 110, 200);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(px.act.u.answer.kind, ENGINE_RELAY);
	ck_assert(!px.act.u.answer.has_code);
}
END_TEST

/* No rate: nothing waits. */
START_TEST(test_no_rate_no_wait)
{
	px.pol.rate_limit.count = 0;
	for (int i = 0; i < NREQ; i++) {
		routed_at(i, 0, 0);
		expect_start(1);
	}
	ck_assert_uint_eq(snap(0).rate_wait->count, 0);
}
END_TEST

/* A slot beyond rate_limit.queue: 429 with the time to that slot, no
 * attempt, counted as refused by the configured rate. */
START_TEST(test_beyond_queue_refused)
{
	const struct engine_answer *a = &px.act.u.answer;

	px.pol.rate_limit.queue_ms = 100;
	routed_at(0, 0, 0);
	expect_start(1);
	routed_at(1, 0, 0);
	expect_wait(100);
	routed_at(2, 0, 0);
	expect_rate_limited(2, 200);
	ck_assert_ptr_nonnull(strstr(a->detail, "rate limit of profile 'p'"));
	ck_assert_uint_eq(snap(0).rate_limited_configured, 1);
	ck_assert_uint_eq(snap(0).rate_limited_learned, 0);
	ck_assert_uint_eq(queued(), 1);
	/* The refusal took no slot: the next gets the same answer. */
	routed_at(3, 0, 0);
	expect_rate_limited(3, 200);
	ck_assert_uint_eq(snap(0).rate_limited_configured, 2);
}
END_TEST

/* The wait must fit the request's budget too (less the least an attempt
 * needs). */
START_TEST(test_budget_shorter_than_wait)
{
	routed_at(0, 0, 0);
	expect_start(1);
	/* 120 ms of budget leave 70 ms to wait: not enough for 100. */
	routed_at(1, 0, 120);
	expect_rate_limited(1, 100);
	ck_assert_uint_eq(snap(0).rate_limited_configured, 1);
	ck_assert_uint_eq(queued(), 0);
	/* 150 ms leave 100: it waits. */
	routed_at(2, 0, 150);
	expect_wait(100);
}
END_TEST

/* A retry takes a slot: after a 503 it waits for its backoff, then for
 * its slot when that is later. */
START_TEST(test_retry_waits_for_slot)
{
	struct guard_snapshot s;

	px.pol.rate_limit.count = 1; /* a slot a second */
	routed_at(0, 0, 0);
	expect_start(1);
	answer(0, 1, 10, 503);
	expect_wait(px.pol.retry.backoff_base_ms);
	ck_assert_uint_lt(px.pol.retry.backoff_base_ms, 990);
	timer(0, 10 + px.pol.retry.backoff_base_ms, ENGINE_TIMER_WAIT);
	expect_wait(990 - px.pol.retry.backoff_base_ms);
	ck_assert_int_eq(engine_state(&px.e[0]), ENGINE_WAITING_RETRY);
	ck_assert_uint_eq(queued(), 1);
	timer(0, 1000, ENGINE_TIMER_WAIT);
	expect_start(2);
	ck_assert_uint_eq(engine_rate_wait_ms(&px.e[0]), 990 - px.pol.retry.backoff_base_ms);
	s = snap(1000);
	ck_assert_uint_eq(s.retries, 1);
	ck_assert_uint_eq(s.suppressed[RETRY_STOP_RATE_LIMIT], 0);
	answer(0, 2, 1010, 200);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_ANSWER);
	ck_assert(!px.act.u.answer.has_code);
}
END_TEST

/* A retry with no slot within the queue is not made: the 503 is relayed,
 * the retry counted as suppressed for rate_limit, its token back. */
START_TEST(test_retry_without_slot_not_made)
{
	const struct engine_answer *a = &px.act.u.answer;
	struct guard_snapshot s;

	px.pol.rate_limit.count = 1;
	px.pol.rate_limit.queue_ms = 500;
	routed_at(0, 0, 0);
	expect_start(1);
	answer(0, 1, 10, 503);
	expect_wait(px.pol.retry.backoff_base_ms);
	timer(0, 10 + px.pol.retry.backoff_base_ms, ENGINE_TIMER_WAIT);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(a->kind, ENGINE_RELAY);
	ck_assert_int_eq(a->status, 503);
	ck_assert(a->has_code);
	ck_assert_int_eq(a->code, PROBLEM_UPSTREAM_STATUS);
	ck_assert_uint_eq(engine_attempts(&px.e[0]), 1);
	ck_assert_int_eq(engine_state(&px.e[0]), ENGINE_DONE);
	s = snap(300);
	ck_assert_uint_eq(s.suppressed[RETRY_STOP_RATE_LIMIT], 1);
	ck_assert_uint_eq(s.rate_limited_configured, 1);
	ck_assert_uint_eq(s.retries, 0);
	ck_assert_uint_eq(s.budget_retries, 0);
	ck_assert_uint_eq(queued(), 0);
	ck_assert_str_eq(retry_stop_name(RETRY_STOP_RATE_LIMIT), "rate_limit");
}
END_TEST

/* A waiting request whose app leaves gives its slot back: the next one
 * gets the wait it had. */
START_TEST(test_client_gone_gives_slot_back)
{
	routed_at(0, 0, 0);
	expect_start(1);
	routed_at(1, 0, 0);
	expect_wait(100);
	gone(1, 10);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_DROP);
	ck_assert_uint_eq(queued(), 0);
	routed_at(2, 10, 0);
	expect_wait(90);
	/* The late timer of the request gone starts nothing. */
	timer(1, 100, ENGINE_TIMER_WAIT);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_NOTHING);
	ck_assert_uint_eq(queued(), 1);
}
END_TEST

/* The same when the shell releases a waiting request. */
START_TEST(test_release_gives_slot_back)
{
	routed_at(0, 0, 0);
	expect_start(1);
	routed_at(1, 0, 0);
	expect_wait(100);
	engine_release(&px.e[1], AT(0));
	ck_assert_uint_eq(queued(), 0);
	routed_at(2, 0, 0);
	expect_wait(100);
}
END_TEST

/* The budget ends while a request waits for its slot: 504, slot back. */
START_TEST(test_deadline_gives_slot_back)
{
	routed_at(0, 0, 0);
	expect_start(1);
	routed_at(1, 0, 0);
	expect_wait(100);
	timer(1, 50, ENGINE_TIMER_DEADLINE);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(px.act.u.answer.code, PROBLEM_UPSTREAM_TIMEOUT);
	ck_assert_uint_eq(queued(), 0);
	routed_at(2, 50, 0);
	expect_wait(50);
}
END_TEST

/* A retry waiting for its slot whose app leaves: slot and token back. */
START_TEST(test_retry_gone_gives_back)
{
	struct guard_snapshot s;

	px.pol.rate_limit.count = 1;
	routed_at(0, 0, 0);
	expect_start(1);
	answer(0, 1, 10, 503);
	timer(0, 10 + px.pol.retry.backoff_base_ms, ENGINE_TIMER_WAIT);
	expect_wait(990 - px.pol.retry.backoff_base_ms);
	gone(0, 500);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_DROP);
	s = snap(500);
	ck_assert_uint_eq(s.budget_retries, 0);
	ck_assert_uint_eq(s.retries, 0);
	ck_assert_uint_eq(queued(), 0);
	routed_at(1, 500, 0);
	expect_wait(500);
}
END_TEST

/* A hedge needs a free slot now; it never waits, and takes no budget
 * token when it has none. */
START_TEST(test_hedge_without_slot)
{
	px.pol.hedge.delay_ms = 20;
	px.pol.hedge.max = 1;
	routed_at(0, 0, 0);
	expect_start(1);
	ck_assert_uint_eq(px.act.hedge_ms, 20);
	timer(0, 20, ENGINE_TIMER_HEDGE);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&px.e[0]), ENGINE_HEDGE_RATE_LIMIT);
	ck_assert_uint_eq(engine_hedges(&px.e[0]), 0);
	ck_assert_uint_eq(snap(20).budget_retries, 0);
	ck_assert_uint_eq(queued(), 0);
	/* Nothing was taken: the next request's slot is still T0+100. */
	routed_at(1, 20, 0);
	expect_wait(80);
}
END_TEST

/* A hedge with a slot free takes it. */
START_TEST(test_hedge_takes_slot)
{
	px.pol.hedge.delay_ms = 20;
	px.pol.hedge.max = 1;
	px.pol.rate_limit.burst = 2;
	routed_at(0, 0, 0);
	expect_start(1);
	timer(0, 20, ENGINE_TIMER_HEDGE);
	expect_start(2);
	ck_assert_int_eq(px.act.u.start.hedge, 1);
	ck_assert_int_eq(engine_hedge_stop(&px.e[0]), ENGINE_HEDGE_GO);
	ck_assert_uint_eq(snap(20).budget_retries, 1);
	/* Without the hedge's slot this one would go at once (burst 2). */
	routed_at(1, 20, 0);
	expect_wait(80);
}
END_TEST

/* A hedge the budget refuses gives back the slot it took. */
START_TEST(test_hedge_budget_gives_slot_back)
{
	px.pol.hedge.delay_ms = 20;
	px.pol.hedge.max = 1;
	px.pol.rate_limit.burst = 2;
	px.pol.retry.budget_ratio = 0;
	px.pol.retry.budget_min_per_second = 0;
	routed_at(0, 0, 0);
	expect_start(1);
	timer(0, 20, ENGINE_TIMER_HEDGE);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&px.e[0]), ENGINE_HEDGE_BUDGET);
	routed_at(1, 20, 0);
	expect_start(1);
}
END_TEST

/* A cool-down longer than the slot's wait is waited first; the slot is
 * taken after it, not before. */
START_TEST(test_cooldown_first)
{
	routed_at(0, 0, 0);
	expect_start(1);
	guard_cool_down(guard(), AT(500));
	routed_at(1, 0, 0);
	expect_wait(500);
	ck_assert_uint_eq(queued(), 0);
	timer(1, 500, ENGINE_TIMER_WAIT);
	expect_start(1);
	ck_assert_uint_eq(engine_rate_wait_ms(&px.e[1]), 0);
	/* Its slot was taken at T0+500: the next one's is T0+600. */
	routed_at(2, 500, 0);
	expect_wait(100);
}
END_TEST

/* A cool-down shorter than the wait: the cool-down, then the rest of the
 * wait for the slot. */
START_TEST(test_short_cooldown_then_slot)
{
	routed_at(0, 0, 0);
	expect_start(1);
	guard_cool_down(guard(), AT(30));
	routed_at(1, 0, 0);
	expect_wait(30);
	timer(1, 30, ENGINE_TIMER_WAIT);
	expect_wait(70);
	timer(1, 100, ENGINE_TIMER_WAIT);
	expect_start(1);
	ck_assert_uint_eq(engine_rate_wait_ms(&px.e[1]), 70);
}
END_TEST

/* A learned quota with nothing remaining refuses until its reset,
 * counted as refused by the learned quota. */
START_TEST(test_learned_quota_refuses)
{
	struct ratelimit_quota q = { .remaining = 0, .reset_s = 2 };
	const struct engine_answer *a = &px.act.u.answer;

	guard_pace_learn(guard(), &px.pol.rate_limit, &q, AT(0), AT(0));
	routed_at(0, 0, 0);
	expect_rate_limited(0, 2000);
	ck_assert_ptr_nonnull(strstr(a->detail, "quota"));
	ck_assert_uint_eq(snap(0).rate_limited_learned, 1);
	ck_assert_uint_eq(snap(0).rate_limited_configured, 0);
	/* With no configured rate, the learned quota still paces. */
	px.pol.rate_limit.count = 0;
	routed_at(1, 1500, 0);
	expect_wait(500);
	timer(1, 2000, ENGINE_TIMER_WAIT);
	expect_start(1);
	routed_at(2, 2000, 0);
	expect_start(1);
}
END_TEST

/* The breaker opens while a first attempt waits for its slot: nothing is
 * sent, the request is answered circuit_open with the breaker's wait. */
START_TEST(test_breaker_opens_while_waiting_for_a_slot)
{
	routed_at(0, 0, 0);
	expect_start(1);
	routed_at(1, 0, 0);
	expect_wait(100);
	guard_fleet_open(guard(), AT(50), AT(5050));
	timer(1, 100, ENGINE_TIMER_WAIT);
	ck_assert_int_eq(px.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(px.act.u.answer.code, PROBLEM_CIRCUIT_OPEN);
	ck_assert_uint_eq(px.act.u.answer.retry_after.ms, 4950);
	ck_assert_uint_eq(engine_attempts(&px.e[1]), 0);
}
END_TEST

Suite *pacing_suite(void)
{
	Suite *s = suite_create("pacing");
	TCase *tc = tcase_create("engine");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_second_waits_for_its_slot);
	tcase_add_test(tc, test_no_rate_no_wait);
	tcase_add_test(tc, test_beyond_queue_refused);
	tcase_add_test(tc, test_budget_shorter_than_wait);
	tcase_add_test(tc, test_retry_waits_for_slot);
	tcase_add_test(tc, test_retry_without_slot_not_made);
	tcase_add_test(tc, test_client_gone_gives_slot_back);
	tcase_add_test(tc, test_release_gives_slot_back);
	tcase_add_test(tc, test_deadline_gives_slot_back);
	tcase_add_test(tc, test_retry_gone_gives_back);
	tcase_add_test(tc, test_hedge_without_slot);
	tcase_add_test(tc, test_hedge_takes_slot);
	tcase_add_test(tc, test_hedge_budget_gives_slot_back);
	tcase_add_test(tc, test_cooldown_first);
	tcase_add_test(tc, test_short_cooldown_then_slot);
	tcase_add_test(tc, test_learned_quota_refuses);
	tcase_add_test(tc, test_breaker_opens_while_waiting_for_a_slot);
	suite_add_tcase(s, tc);
	return s;
}

/* Hedged requests in the engine (SPEC 4.10): every decision of the hedge
 * timer (start, and each reason to start none: budget, breaker, cool-down,
 * method, deadline, Brace-Max-Attempts, hedge.max, pNN without samples),
 * the first acceptable answer winning with the others cancelled, waiting
 * for the others after a bad answer, and the hedge counters. */
#include <errno.h>
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

static struct {
	struct policy pol;
	struct guard *guards, *g;
	struct rng rng;
	struct engine e;
	struct engine_action act;
} hx;

static void setup(void)
{
	memset(&hx, 0, sizeof(hx));
	config_builtin_policy(&hx.pol);
	hx.pol.retry.jitter = JITTER_NONE;
	hx.pol.hedge.delay_ms = 20;
	hx.pol.hedge.max = 1;
	rng_seed(&hx.rng, 7);
	engine_init(&hx.e, &hx.rng);
}

static void teardown(void)
{
	engine_release(&hx.e, T0_US);
	guards_free(hx.guards);
	hx.guards = NULL;
}

static void make_guard(void)
{
	hx.g = guard_get(&hx.guards, "p");
	ck_assert_ptr_nonnull(hx.g);
	guard_configure(hx.g, &hx.pol);
}

static void feed(const struct engine_event *ev)
{
	engine_feed(&hx.e, ev, &hx.act);
}

/* Routes a request; the first attempt (id 1) starts. */
static void routed(int method, int key, uint32_t total_ms, uint32_t max_attempts)
{
	struct engine_event ev = { .kind = ENGINE_EV_ROUTED, .now_us = T0_US };

	make_guard();
	ev.u.routed = (struct engine_routed){
		.policy = &hx.pol,
		.guard = hx.g,
		.profile = "p",
		.method = method,
		.idempotency = key ? IDEM_KEY_HONORED : IDEM_KEY_NONE,
		.total_ms = total_ms ? total_ms : hx.pol.timeouts.total_ms,
		.max_attempts = max_attempts ? max_attempts : hx.pol.retry.attempts,
		.start_us = T0_US,
		.max_response_body = 1024,
	};
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	ck_assert_uint_eq(hx.act.u.start.id, 1);
	ck_assert_int_eq(hx.act.u.start.hedge, 0);
}

static void hedge_timer(uint32_t at_ms)
{
	struct engine_event ev = { .kind = ENGINE_EV_TIMER, .now_us = AT(at_ms) };

	ev.u.timer.which = ENGINE_TIMER_HEDGE;
	feed(&ev);
}

static void result(uint32_t id, uint32_t at_ms, enum attempt_end end, int status)
{
	struct engine_event ev = { .kind = ENGINE_EV_ATTEMPT, .now_us = AT(at_ms) };

	ev.u.attempt = (struct engine_result){ .id = id,
					       .end = end,
					       .status = status,
					       .elapsed_us = 5000,
					       .error = "" };
	feed(&ev);
}

static void answer(uint32_t id, uint32_t at_ms, int status)
{
	result(id, at_ms, ATTEMPT_OK, status);
}

static void expect_hedges(uint64_t won, uint64_t lost, uint64_t cancelled)
{
	struct guard_snapshot snap;

	guard_snapshot(hx.g, T0_US, &snap);
	ck_assert_uint_eq(snap.hedges[GUARD_HEDGE_WON], won);
	ck_assert_uint_eq(snap.hedges[GUARD_HEDGE_LOST], lost);
	ck_assert_uint_eq(snap.hedges[GUARD_HEDGE_CANCELLED], cancelled);
}

/* The first attempt arms the timer; when it fires a hedge starts beside it. */
START_TEST(test_hedge_starts)
{
	routed(METHOD_GET, 0, 0, 0);
	ck_assert_uint_eq(hx.act.hedge_ms, 20);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	ck_assert_int_eq(hx.act.u.start.hedge, 1);
	ck_assert_uint_eq(hx.act.u.start.id, 2);
	ck_assert_int_eq(hx.act.cancel, 0);
	/* hedge.max is 1: no further hedge is armed. */
	ck_assert_uint_eq(hx.act.hedge_ms, 0);
	ck_assert_uint_eq(engine_hedges(&hx.e), 1);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_GO);
	/* A second firing starts nothing. */
	hedge_timer(40);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_MAX);
}
END_TEST

/* The hedge answers first: it wins, the original is cancelled. */
START_TEST(test_hedge_wins)
{
	const struct history_entry *h;
	size_t n;

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	answer(2, 25, 200);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(hx.act.u.answer.kind, ENGINE_RELAY);
	ck_assert(!hx.act.u.answer.has_code);
	ck_assert_int_eq(hx.act.cancel, 1);
	ck_assert_uint_eq(hx.act.cancel_ids[0], 1);
	expect_hedges(1, 0, 0);
	h = engine_history(&hx.e, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(h[0].outcome, "cancelled");
	ck_assert_int_eq(h[0].hedge, 0);
	ck_assert_uint_eq(h[0].ms, 25);
	ck_assert_str_eq(h[1].outcome, "ok");
	ck_assert_int_eq(h[1].hedge, 1);
	ck_assert_uint_eq(engine_attempts(&hx.e), 2);
	/* Overlapping attempts count their span once. */
	ck_assert_uint_eq(engine_upstream_ms(&hx.e), 25);
	/* A late result of the cancelled attempt changes nothing. */
	answer(1, 26, 200);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
}
END_TEST

/* The original answers first: the hedge is cancelled. */
START_TEST(test_hedge_cancelled)
{
	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	answer(1, 30, 200);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(hx.act.cancel, 1);
	ck_assert_uint_eq(hx.act.cancel_ids[0], 2);
	expect_hedges(0, 0, 1);
}
END_TEST

/* A retriable answer of one attempt waits for the other: the round is
 * undecided, a phase the log still names "attempt". */
START_TEST(test_bad_answer_waits_for_the_other)
{
	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	ck_assert_int_eq(engine_state(&hx.e), ENGINE_ATTEMPT);
	answer(1, 30, 503);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(hx.act.cancel, 0);
	ck_assert_int_eq(engine_state(&hx.e), ENGINE_ATTEMPT_UNDECIDED);
	ck_assert_str_eq(engine_state_name(engine_state(&hx.e)), "attempt");
	answer(2, 40, 200);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert(!hx.act.u.answer.has_code);
	ck_assert_int_eq(hx.act.cancel, 0);
	expect_hedges(1, 0, 0);
}
END_TEST

/* A status that is not retriable is a final answer: it wins at once. */
START_TEST(test_final_status_wins)
{
	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	answer(2, 30, 404);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(hx.act.u.answer.code, PROBLEM_UPSTREAM_STATUS);
	ck_assert_int_eq(hx.act.u.answer.status, 404);
	ck_assert_int_eq(hx.act.cancel, 1);
	ck_assert_uint_eq(hx.act.cancel_ids[0], 1);
	expect_hedges(1, 0, 0);
}
END_TEST

/* A transport failure waits for the other attempt too. */
START_TEST(test_transport_failure_waits)
{
	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	result(1, 30, ATTEMPT_RESET, 0);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	answer(2, 40, 200);
	ck_assert(!hx.act.u.answer.has_code);
	expect_hedges(1, 0, 0);
}
END_TEST

/* A schema failure (enforce) is not acceptable either; the original wins. */
START_TEST(test_schema_failure_loses)
{
	struct engine_event ev = { .kind = ENGINE_EV_ATTEMPT, .now_us = AT(30) };

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	ev.u.attempt = (struct engine_result){ .id = 2,
					       .end = ATTEMPT_OK,
					       .status = 200,
					       .schema_failed = 1,
					       .violations = 1,
					       .elapsed_us = 10000,
					       .error = "" };
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	answer(1, 40, 200);
	ck_assert(!hx.act.u.answer.has_code);
	expect_hedges(0, 1, 0);
}
END_TEST

/* Both fail: the usual retry decision, hedges counted as attempts. */
START_TEST(test_both_fail_then_retry)
{
	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	answer(2, 30, 503);
	answer(1, 40, 503);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_WAIT);
	ck_assert_uint_eq(hx.act.u.wait_ms, 400);
	ck_assert_uint_eq(engine_attempts(&hx.e), 2);
	expect_hedges(0, 1, 0);
}
END_TEST

/* Hedges withdraw from the retry budget; an empty budget starts none. */
START_TEST(test_budget_refuses)
{
	struct guard_snapshot snap;

	hx.pol.retry.budget_ratio = 0;
	hx.pol.retry.budget_min_per_second = 0;
	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_BUDGET);
	ck_assert_uint_eq(engine_hedges(&hx.e), 0);
	guard_snapshot(hx.g, AT(20), &snap);
	ck_assert_uint_eq(snap.budget_retries, 0);
}
END_TEST

START_TEST(test_budget_withdrawn)
{
	struct guard_snapshot snap;

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	guard_snapshot(hx.g, AT(20), &snap);
	ck_assert_uint_eq(snap.budget_retries, 1);
	/* Spent: the answer does not give it back. */
	answer(1, 30, 200);
	guard_snapshot(hx.g, AT(30), &snap);
	ck_assert_uint_eq(snap.budget_retries, 1);
}
END_TEST

/* No hedge while the breaker is open. */
START_TEST(test_breaker_refuses)
{
	hx.pol.breaker.min_requests = 1;
	routed(METHOD_GET, 0, 0, 0);
	guard_judge(hx.g, AT(10), 1, 0);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_BREAKER);
}
END_TEST

/* No hedge while a rate-limit cool-down holds. */
START_TEST(test_cooldown_refuses)
{
	routed(METHOD_GET, 0, 0, 0);
	guard_cool_down(hx.g, AT(1000));
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_COOLDOWN);
}
END_TEST

/* A POST without an idempotency key is never hedged: the timer is not even
 * armed; with a key it is (unsafe: with_key). */
START_TEST(test_non_idempotent_refused)
{
	routed(METHOD_POST, 0, 0, 0);
	ck_assert_uint_eq(hx.act.hedge_ms, 0);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_METHOD);
}
END_TEST

START_TEST(test_post_with_key_hedged)
{
	routed(METHOD_POST, 1, 0, 0);
	ck_assert_uint_eq(hx.act.hedge_ms, 20);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	ck_assert_int_eq(hx.act.u.start.hedge, 1);
}
END_TEST

START_TEST(test_post_with_key_unsafe_never)
{
	hx.pol.retry.unsafe = UNSAFE_NEVER;
	routed(METHOD_POST, 1, 0, 0);
	ck_assert_uint_eq(hx.act.hedge_ms, 0);
	hedge_timer(20);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_METHOD);
}
END_TEST

/* A hedge must fit the total budget. */
START_TEST(test_deadline_refuses)
{
	routed(METHOD_GET, 0, 60, 0);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_DEADLINE);
}
END_TEST

/* The deadline cuts every attempt in flight: both count as timeouts, except
 * one still queued for a connection; the hedge is cancelled. */
START_TEST(test_deadline_cuts_all)
{
	struct engine_event ev = { .kind = ENGINE_EV_TIMER, .now_us = AT(1000) };

	routed(METHOD_GET, 0, 1000, 0);
	hedge_timer(20);
	ev.u.timer.which = ENGINE_TIMER_DEADLINE;
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(hx.act.u.answer.code, PROBLEM_UPSTREAM_TIMEOUT);
	ck_assert_int_eq(hx.act.cancel, 2);
	ck_assert_uint_eq(engine_attempts(&hx.e), 2);
	expect_hedges(0, 0, 1);
}
END_TEST

START_TEST(test_deadline_queued_hedge)
{
	struct engine_event ev = { .kind = ENGINE_EV_TIMER, .now_us = AT(1000) };

	routed(METHOD_GET, 0, 1000, 0);
	hedge_timer(20);
	ev.u.timer.which = ENGINE_TIMER_DEADLINE;
	ev.u.timer.queued[0] = 2;
	ev.u.timer.nqueued = 1;
	feed(&ev);
	ck_assert_int_eq(hx.act.cancel, 2);
	ck_assert_uint_eq(engine_attempts(&hx.e), 1);
}
END_TEST

/* Brace-Max-Attempts counts hedges: with 1 there is none. */
START_TEST(test_max_attempts_refuses)
{
	routed(METHOD_GET, 0, 0, 1);
	ck_assert_uint_eq(hx.act.hedge_ms, 0);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_ATTEMPTS);
}
END_TEST

/* With 2 allowed, one hedge; then no retry after both fail. */
START_TEST(test_max_attempts_counts_hedge)
{
	routed(METHOD_GET, 0, 0, 2);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	answer(1, 30, 503);
	answer(2, 31, 503);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(hx.act.u.answer.code, PROBLEM_UPSTREAM_STATUS);
	ck_assert_uint_eq(engine_attempts(&hx.e), 2);
}
END_TEST

/* hedge.max 2: two hedges, 20 ms apart. */
START_TEST(test_two_hedges)
{
	hx.pol.hedge.max = 2;
	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	ck_assert_uint_eq(hx.act.u.start.id, 2);
	ck_assert_uint_eq(hx.act.hedge_ms, 20);
	hedge_timer(40);
	ck_assert_uint_eq(hx.act.u.start.id, 3);
	ck_assert_uint_eq(hx.act.hedge_ms, 0);
	answer(3, 45, 200);
	ck_assert_int_eq(hx.act.cancel, 2);
	expect_hedges(1, 0, 1);
}
END_TEST

/* Off: delay 0 arms nothing. */
START_TEST(test_off)
{
	hx.pol.hedge.delay_ms = 0;
	routed(METHOD_GET, 0, 0, 0);
	ck_assert_uint_eq(hx.act.hedge_ms, 0);
	hedge_timer(20);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_OFF);
}
END_TEST

/* pNN: no hedging until the profile has LATENCY_MIN_SAMPLES samples. */
START_TEST(test_quantile_needs_samples)
{
	hx.pol.hedge.delay_ms = 0;
	hx.pol.hedge.quantile = 95;
	routed(METHOD_GET, 0, 0, 0);
	ck_assert_uint_eq(hx.act.hedge_ms, 0);
	for (int i = 0; i < 19; i++)
		guard_observe_latency(hx.g, T0_US, 10000);
	hedge_timer(20);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_OFF);
	guard_observe_latency(hx.g, T0_US, 10000);
	hedge_timer(21);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	ck_assert_int_eq(hx.act.u.start.hedge, 1);
}
END_TEST

START_TEST(test_quantile_delay)
{
	uint32_t ms = 0;

	hx.pol.hedge.delay_ms = 0;
	hx.pol.hedge.quantile = 90;
	make_guard();
	ck_assert_int_eq(guard_hedge_delay(hx.g, T0_US, &hx.pol.hedge, &ms), -EAGAIN);
	for (int i = 0; i < 90; i++)
		guard_observe_latency(hx.g, T0_US, 2000);
	for (int i = 0; i < 10; i++)
		guard_observe_latency(hx.g, T0_US, 300000);
	ck_assert_int_eq(guard_hedge_delay(hx.g, T0_US, &hx.pol.hedge, &ms), 0);
	/* 2 ms samples: the bucket's upper bound, rounded up to whole ms. */
	ck_assert_uint_eq(ms, 3);
	hx.pol.hedge.quantile = 95;
	ck_assert_int_eq(guard_hedge_delay(hx.g, T0_US, &hx.pol.hedge, &ms), 0);
	ck_assert_uint_ge(ms, 300);
	ck_assert_uint_le(ms, 375);
}
END_TEST

/* The app leaves: every attempt in flight is cancelled. */
START_TEST(test_client_gone)
{
	struct engine_event ev = { .kind = ENGINE_EV_CLIENT_GONE, .now_us = AT(30) };

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_DROP);
	ck_assert_int_eq(hx.act.cancel, 2);
	expect_hedges(0, 0, 1);
}
END_TEST

/* Shutdown's grace ends with both attempts running: both are cut and
 * listed as cancelled (a draining app still gets a problem with the
 * history: every entry has an outcome). */
START_TEST(test_draining_cuts_both)
{
	struct engine_event ev = { .kind = ENGINE_EV_DRAINING, .now_us = AT(300) };
	const struct history_entry *h;
	size_t n;

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_DROP);
	ck_assert_int_eq(hx.act.cancel, 2);
	h = engine_history(&hx.e, &n);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(h[i].outcome);
		ck_assert_str_eq(h[i].outcome, "cancelled");
	}
	ck_assert_int_eq(h[1].hedge, 1);
	expect_hedges(0, 0, 1);
}
END_TEST

/* The same without a hedge: the one attempt has its history entry. */
START_TEST(test_draining_single_attempt)
{
	struct engine_event ev = { .kind = ENGINE_EV_DRAINING, .now_us = AT(300) };
	const struct history_entry *h;
	size_t n;

	hx.pol.hedge.delay_ms = 0;
	routed(METHOD_GET, 0, 0, 0);
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_DROP);
	h = engine_history(&hx.e, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_ptr_nonnull(h[0].outcome);
	ck_assert_uint_eq(h[0].ms, 300);
}
END_TEST

/* A hedge the backend could not start is forgotten; the original goes on. */
START_TEST(test_hedge_start_failed)
{
	struct engine_event ev = { .kind = ENGINE_EV_START_FAILED, .now_us = AT(20) };

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	ev.u.attempt.id = 2;
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	answer(1, 30, 200);
	ck_assert(!hx.act.u.answer.has_code);
	ck_assert_int_eq(hx.act.cancel, 0);
}
END_TEST

/* A hedge that found no pool connection sent nothing: the original goes on. */
START_TEST(test_hedge_pool_timeout)
{
	struct guard_snapshot snap;

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	result(2, 40, ATTEMPT_POOL_TIMEOUT, 0);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	/* Nothing was sent: its budget token is back. */
	guard_snapshot(hx.g, AT(40), &snap);
	ck_assert_uint_eq(snap.budget_retries, 0);
	answer(1, 50, 200);
	ck_assert(!hx.act.u.answer.has_code);
	ck_assert_uint_eq(engine_attempts(&hx.e), 1);
	expect_hedges(0, 1, 0);
}
END_TEST

/* The first attempt answers a retriable 503 while the hedge still waits for
 * a connection; the hedge then finds none. It was no attempt: its token goes
 * back, and the 503 is retried per policy (not a 503 overloaded). */
START_TEST(test_hedge_pool_timeout_after_retriable)
{
	struct guard_snapshot snap;

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	answer(1, 30, 503);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	result(2, 40, ATTEMPT_POOL_TIMEOUT, 0);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_WAIT);
	ck_assert_uint_eq(engine_attempts(&hx.e), 1);
	expect_hedges(0, 1, 0);
	/* Time upstream: the 30 ms of the attempt that ran, not the hedge's wait. */
	ck_assert_uint_eq(engine_upstream_ms(&hx.e), 30);
	/* The hedge's token back, the retry's taken. */
	guard_snapshot(hx.g, AT(40), &snap);
	ck_assert_uint_eq(snap.budget_retries, 1);
	/* The retry runs and answers. */
	feed(&(struct engine_event){
	    .kind = ENGINE_EV_TIMER, .now_us = AT(440), .u.timer.which = ENGINE_TIMER_WAIT });
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	ck_assert_int_eq(hx.act.u.start.hedge, 0);
	answer(hx.act.u.start.id, 450, 200);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert(!hx.act.u.answer.has_code);
	ck_assert_uint_eq(engine_attempts(&hx.e), 2);
}
END_TEST

/* The same when no retry fits the budget: the 503 that came is relayed
 * (passthrough), with the history of the one attempt that ran. */
START_TEST(test_hedge_pool_timeout_relays_earlier)
{
	size_t n;
	const struct history_entry *h;

	hx.pol.upstream_errors = UPSTREAM_ERRORS_PASSTHROUGH;
	routed(METHOD_GET, 0, 100, 0);
	hedge_timer(20);
	answer(1, 30, 503);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	result(2, 95, ATTEMPT_POOL_TIMEOUT, 0);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(hx.act.u.answer.kind, ENGINE_RELAY);
	ck_assert_int_eq(hx.act.u.answer.status, 503);
	ck_assert_int_eq(hx.act.u.answer.code, PROBLEM_UPSTREAM_STATUS);
	h = engine_history(&hx.e, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(h[0].status, 503);
	ck_assert_int_eq(h[0].hedge, 0);
	expect_hedges(0, 1, 0);
}
END_TEST

/* Envelope mode: the problem names the upstream's 503, not an overload. */
START_TEST(test_hedge_pool_timeout_envelope)
{
	hx.pol.upstream_errors = UPSTREAM_ERRORS_ENVELOPE;
	routed(METHOD_GET, 0, 100, 0);
	hedge_timer(20);
	answer(1, 30, 503);
	result(2, 95, ATTEMPT_POOL_TIMEOUT, 0);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(hx.act.u.answer.kind, ENGINE_PROBLEM);
	ck_assert_int_eq(hx.act.u.answer.code, PROBLEM_UPSTREAM_STATUS);
	ck_assert_int_eq(hx.act.u.answer.upstream_status, 503);
}
END_TEST

/* The first attempt wins while its hedge still waits for a connection:
 * the hedge is cut without being an attempt (not in the history, its token
 * back), and counted as cancelled. */
START_TEST(test_winner_cuts_queued_hedge)
{
	struct engine_event ev = { .kind = ENGINE_EV_ATTEMPT, .now_us = AT(40) };
	struct guard_snapshot snap;
	size_t n;

	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	ev.u.attempt = (struct engine_result){ .id = 1,
					       .end = ATTEMPT_OK,
					       .status = 200,
					       .elapsed_us = 40000,
					       .error = "",
					       .queued = { 2 },
					       .nqueued = 1 };
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert(!hx.act.u.answer.has_code);
	ck_assert_int_eq(hx.act.cancel, 1);
	ck_assert_uint_eq(hx.act.cancel_ids[0], 2);
	engine_history(&hx.e, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(engine_attempts(&hx.e), 1);
	guard_snapshot(hx.g, AT(40), &snap);
	ck_assert_uint_eq(snap.budget_retries, 0);
	expect_hedges(0, 0, 1);
}
END_TEST

/* Both the original and its hedge found no connection: 503 overloaded. */
START_TEST(test_all_pool_timeout_overloaded)
{
	routed(METHOD_GET, 0, 0, 0);
	hedge_timer(20);
	result(1, 200, ATTEMPT_POOL_TIMEOUT, 0);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	result(2, 220, ATTEMPT_POOL_TIMEOUT, 0);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(hx.act.u.answer.code, PROBLEM_OVERLOADED);
	ck_assert_uint_eq(engine_attempts(&hx.e), 0);
	expect_hedges(0, 1, 0);
}
END_TEST

/* The profile's limit stays between concurrency.min and
 * pool.max_connections whatever the samples, and across a reload that
 * lowers the pool. */
START_TEST(test_limit_bounds_through_the_guard)
{
	uint64_t now = AT(0);

	hx.pol.concurrency = (struct concurrency_policy){ .adaptive = 1, .min = 2, .max = 512 };
	hx.pol.pool_max_connections = 10;
	make_guard();
	ck_assert_uint_eq(guard_concurrency_limit(hx.g), 2);
	/* Fast and steady: the limiter grows to max, the pool caps it. */
	for (int i = 0; i < 2000; i++) {
		now += 10000;
		guard_limiter_sample(hx.g, now, 20000);
		ck_assert_uint_ge(guard_concurrency_limit(hx.g), 2);
		ck_assert_uint_le(guard_concurrency_limit(hx.g), 10);
	}
	ck_assert_uint_eq(guard_concurrency_limit(hx.g), 10);
	/* A reload lowers the pool: the limit follows at once. */
	hx.pol.pool_max_connections = 6;
	guard_configure(hx.g, &hx.pol);
	ck_assert_uint_eq(guard_concurrency_limit(hx.g), 6);
	/* Queueing (ten times the minimum RTT) for 5 s, before the minimum is
	 * measured again: down to min, never below. */
	for (int i = 0; i < 500; i++) {
		now += 10000;
		guard_limiter_sample(hx.g, now, 200000);
		ck_assert_uint_ge(guard_concurrency_limit(hx.g), 2);
		ck_assert_uint_le(guard_concurrency_limit(hx.g), 6);
	}
	ck_assert_uint_eq(guard_concurrency_limit(hx.g), 2);
}
END_TEST

/* ==== hedges and heads (design §2: the first acceptable head wins) ===== */

enum hh_kind { HH_NONE, HH_HEAD, HH_HELD, HH_END, HH_GONE, HH_DEADLINE };

/* cancel: the ids cut, 0-ended; discard: the id discarded or 0; answer:
 * the attempt answered (0: no answer) and whether it streams. */
struct hh_expect {
	enum engine_action_kind kind;
	uint32_t cancel[2];
	uint32_t discard;
	uint32_t answer;
	int stream;
	int code; /* -1: no Brace-Error */
	enum engine_state state;
};

struct hh_step {
	enum hh_kind k;
	uint32_t id, at;
	enum attempt_end end;
	int status;
	struct hh_expect x;
};

struct hh_case {
	const char *name;
	int passthrough;
	uint32_t max_attempts; /* 0: the policy's */
	struct hh_step steps[6];
	uint64_t won, lost, cancelled; /* hedges */
	uint64_t ok, status, reset;    /* attempts per outcome */
	uint64_t ra_ms; /* every answer's Retry-After; 0: none */
};

#define NOCODE (-1)
#define Z_NOTHING(st) { ENGINE_DO_NOTHING, { 0 }, 0, 0, 0, NOCODE, st }

/* clang-format off */
static const struct hh_case hh_cases[] = {
	{ "the hedge's head wins: the original is cut", 0, 0, {
		{ HH_HEAD, 2, 25, ATTEMPT_OK, 200,
		  { ENGINE_DO_ANSWER, { 1 }, 0, 2, 1, NOCODE, ENGINE_STREAMING } },
		{ HH_END, 1, 26, ATTEMPT_OK, 200, Z_NOTHING(ENGINE_STREAMING) },
		{ HH_END, 2, 90, ATTEMPT_OK, 200, { ENGINE_DO_END, { 0 }, 0, 0, 0, NOCODE, ENGINE_DONE } } },
	  1, 0, 0, 1, 0, 0, 0 },
	{ "the original's head wins: the hedge is cut", 0, 0, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 200,
		  { ENGINE_DO_ANSWER, { 2 }, 0, 1, 1, NOCODE, ENGINE_STREAMING } } },
	  0, 0, 1, 1, 0, 0, 0 },
	{ "a 503 head waits; the hedge's head wins, the 503 is discarded", 0, 0, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_HEAD, 2, 30, ATTEMPT_OK, 200,
		  { ENGINE_DO_ANSWER, { 0 }, 1, 2, 1, NOCODE, ENGINE_STREAMING } } },
	  1, 0, 0, 1, 1, 0, 0 },
	{ "a 503 head waits; the hedge fails: retried, the 503 discarded", 0, 0, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_END, 2, 30, ATTEMPT_RESET, 0,
		  { ENGINE_DO_WAIT, { 0 }, 1, 0, 0, NOCODE, ENGINE_WAITING_RETRY } } },
	  0, 1, 0, 0, 1, 1, 0 },
	/* Retry-After beyond retry_after.max: the 503 is final when it decides */
	{ "a 503 head waits; the hedge gets no connection: the 503 streams", 1, 0, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_END, 2, 30, ATTEMPT_POOL_TIMEOUT, 0,
		  { ENGINE_DO_ANSWER, { 0 }, 0, 1, 1, PROBLEM_UPSTREAM_STATUS, ENGINE_STREAMING } } },
	  0, 1, 0, 0, 1, 0, 60000 },
	{ "a 503 head waits, its body ends whole: relayed whole", 1, 0, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_END, 1, 28, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_END, 2, 30, ATTEMPT_POOL_TIMEOUT, 0,
		  { ENGINE_DO_ANSWER, { 0 }, 0, 1, 0, PROBLEM_UPSTREAM_STATUS, ENGINE_DONE } } },
	  0, 1, 0, 0, 1, 0, 60000 },
	{ "a 503 head waits; the hedge fails last, no retry left: the 503 discarded", 1, 2, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_END, 2, 30, ATTEMPT_RESET, 0,
		  { ENGINE_DO_ANSWER, { 0 }, 1, 2, 0, PROBLEM_UPSTREAM_UNAVAILABLE, ENGINE_DONE } } },
	  0, 1, 0, 0, 1, 1, 0 },
	{ "a 503 head waits, its body is cut: a reset, as the hedge's", 0, 2, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_END, 1, 28, ATTEMPT_RESET, 0, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_END, 2, 30, ATTEMPT_RESET, 0,
		  { ENGINE_DO_ANSWER, { 0 }, 0, 2, 0, PROBLEM_UPSTREAM_UNAVAILABLE, ENGINE_DONE } } },
	  0, 1, 0, 0, 1, 1, 0 },
	{ "a 503 head waits; the app leaves: both cancelled", 0, 0, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_GONE, 0, 30, 0, 0, { ENGINE_DO_DROP, { 2, 1 }, 0, 0, 0, NOCODE, ENGINE_DONE } } },
	  0, 0, 1, 0, 1, 0, 0 },
	{ "a 503 head waits; the budget ends: both cancelled", 0, 0, {
		{ HH_HEAD, 1, 25, ATTEMPT_OK, 503, Z_NOTHING(ENGINE_ATTEMPT_UNDECIDED) },
		{ HH_DEADLINE, 0, 10000, 0, 0,
		  { ENGINE_DO_ANSWER, { 2, 1 }, 0, 0, 0, PROBLEM_UPSTREAM_TIMEOUT, ENGINE_DONE } } },
	  0, 0, 1, 0, 1, 0, 0 },
	{ "a held head decides nothing; the original's whole answer wins", 0, 0, {
		{ HH_HELD, 2, 25, ATTEMPT_OK, 200, Z_NOTHING(ENGINE_ATTEMPT) },
		{ HH_END, 1, 30, ATTEMPT_OK, 200,
		  { ENGINE_DO_ANSWER, { 2 }, 0, 1, 0, NOCODE, ENGINE_DONE } } },
	  0, 0, 1, 1, 0, 0, 0 },
};
/* clang-format on */

static void check_hh(const struct hh_case *c, int i, const struct hh_expect *x)
{
	const struct engine_action *a = &hx.act;
	int ncancel = x->cancel[0] ? x->cancel[1] ? 2 : 1 : 0;

	ck_assert_msg(a->kind == x->kind, "%s: step %d: action %d", c->name, i, a->kind);
	ck_assert_msg(a->cancel == ncancel, "%s: step %d: cancel %d", c->name, i, a->cancel);
	for (int k = 0; k < ncancel; k++)
		ck_assert_msg(a->cancel_ids[k] == x->cancel[k], "%s: step %d: cancels %u",
			      c->name, i, a->cancel_ids[k]);
	ck_assert_msg(a->discard == (x->discard != 0), "%s: step %d: discard %d", c->name, i,
		      a->discard);
	if (x->discard)
		ck_assert_msg(a->discard_ids[0] == x->discard, "%s: step %d: discards %u",
			      c->name, i, a->discard_ids[0]);
	ck_assert_msg(engine_state(&hx.e) == x->state, "%s: step %d: state %d", c->name, i,
		      engine_state(&hx.e));
	if (a->kind == ENGINE_DO_ANSWER && x->answer) {
		ck_assert_msg(a->u.answer.id == x->answer, "%s: step %d: answer of %u", c->name,
			      i, a->u.answer.id);
		ck_assert_msg(a->u.answer.stream == x->stream, "%s: step %d: stream %d", c->name,
			      i, a->u.answer.stream);
	}
	if (a->kind == ENGINE_DO_ANSWER)
		ck_assert_msg((a->u.answer.has_code ? (int)a->u.answer.code : NOCODE) == x->code,
			      "%s: step %d: code %d", c->name, i, a->u.answer.code);
}

START_TEST(test_heads)
{
	const struct hh_case *c = &hh_cases[_i];
	struct guard_snapshot snap;
	int unsent = 0;

	if (c->passthrough)
		hx.pol.upstream_errors = UPSTREAM_ERRORS_PASSTHROUGH;
	routed(METHOD_GET, 0, 0, c->max_attempts);
	hedge_timer(20);
	ck_assert_uint_eq(hx.act.u.start.id, 2);
	for (int i = 0; i < (int)(sizeof(c->steps) / sizeof(c->steps[0])); i++) {
		const struct hh_step *s = &c->steps[i];
		struct engine_event ev = { .now_us = AT(s->at) };

		switch (s->k) {
		case HH_NONE:
			i = (int)(sizeof(c->steps) / sizeof(c->steps[0]));
			continue;
		case HH_HEAD:
		case HH_HELD:
		case HH_END:
			ev.kind = s->k == HH_END ? ENGINE_EV_ATTEMPT : ENGINE_EV_HEAD;
			ev.u.attempt = (struct engine_result){ .id = s->id,
							       .end = s->end,
							       .status = s->status,
							       .elapsed_us = 5000,
							       .error = "",
							       .retry_after = { c->ra_ms > 0, c->ra_ms },
							       .hold = s->k == HH_HELD };
			break;
		case HH_GONE:
			ev.kind = ENGINE_EV_CLIENT_GONE;
			break;
		case HH_DEADLINE:
			ev.kind = ENGINE_EV_TIMER;
			ev.u.timer.which = ENGINE_TIMER_DEADLINE;
			break;
		}
		feed(&ev);
		check_hh(c, i, &s->x);
	}
	expect_hedges(c->won, c->lost, c->cancelled);
	engine_release(&hx.e, T0_US);
	guard_snapshot(hx.g, T0_US, &snap);
	ck_assert_msg(snap.attempts[OUTCOME_OK] == c->ok && snap.attempts[OUTCOME_STATUS] == c->status &&
			  snap.attempts[OUTCOME_RESET] == c->reset,
		      "%s: attempts ok %llu status %llu reset %llu", c->name,
		      (unsigned long long)snap.attempts[OUTCOME_OK],
		      (unsigned long long)snap.attempts[OUTCOME_STATUS],
		      (unsigned long long)snap.attempts[OUTCOME_RESET]);
	engine_release(&hx.e, T0_US);
	guard_snapshot(hx.g, T0_US, &snap);
	ck_assert_uint_eq(snap.inflight, 0);
	/* The hedge's token is spent unless it got no connection; a retry's
	 * waiting token went back. */
	for (int i = 0; i < (int)(sizeof(c->steps) / sizeof(c->steps[0])); i++)
		unsent |= c->steps[i].k == HH_END && c->steps[i].end == ATTEMPT_POOL_TIMEOUT;
	ck_assert_uint_eq(snap.budget_retries, unsent ? 0 : 1);
}
END_TEST

/* A request body that streams is sent once: no hedge timer, and a timer
 * that fires anyway starts nothing. */
START_TEST(test_streamed_body_not_hedged)
{
	struct engine_event ev = { .kind = ENGINE_EV_ROUTED, .now_us = T0_US };

	make_guard();
	ev.u.routed = (struct engine_routed){
		.policy = &hx.pol,
		.guard = hx.g,
		.profile = "p",
		.method = METHOD_GET,
		.total_ms = hx.pol.timeouts.total_ms,
		.max_attempts = hx.pol.retry.attempts,
		.start_us = T0_US,
		.body_streamed = 1,
	};
	feed(&ev);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_START);
	ck_assert_uint_eq(hx.act.hedge_ms, 0);
	hedge_timer(20);
	ck_assert_int_eq(hx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_int_eq(engine_hedge_stop(&hx.e), ENGINE_HEDGE_METHOD);
	expect_hedges(0, 0, 0);
}
END_TEST

Suite *hedge_suite(void)
{
	Suite *s = suite_create("hedge");
	TCase *tc = tcase_create("decisions");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hedge_starts);
	tcase_add_test(tc, test_hedge_wins);
	tcase_add_test(tc, test_hedge_cancelled);
	tcase_add_test(tc, test_bad_answer_waits_for_the_other);
	tcase_add_test(tc, test_schema_failure_loses);
	tcase_add_test(tc, test_final_status_wins);
	tcase_add_test(tc, test_transport_failure_waits);
	tcase_add_test(tc, test_both_fail_then_retry);
	tcase_add_test(tc, test_budget_refuses);
	tcase_add_test(tc, test_budget_withdrawn);
	tcase_add_test(tc, test_breaker_refuses);
	tcase_add_test(tc, test_cooldown_refuses);
	tcase_add_test(tc, test_non_idempotent_refused);
	tcase_add_test(tc, test_post_with_key_hedged);
	tcase_add_test(tc, test_post_with_key_unsafe_never);
	tcase_add_test(tc, test_deadline_refuses);
	tcase_add_test(tc, test_deadline_cuts_all);
	tcase_add_test(tc, test_deadline_queued_hedge);
	tcase_add_test(tc, test_max_attempts_refuses);
	tcase_add_test(tc, test_max_attempts_counts_hedge);
	tcase_add_test(tc, test_two_hedges);
	tcase_add_test(tc, test_off);
	tcase_add_test(tc, test_quantile_needs_samples);
	tcase_add_test(tc, test_quantile_delay);
	tcase_add_test(tc, test_client_gone);
	tcase_add_test(tc, test_draining_cuts_both);
	tcase_add_test(tc, test_draining_single_attempt);
	tcase_add_test(tc, test_hedge_start_failed);
	tcase_add_test(tc, test_hedge_pool_timeout);
	tcase_add_test(tc, test_hedge_pool_timeout_after_retriable);
	tcase_add_test(tc, test_hedge_pool_timeout_relays_earlier);
	tcase_add_test(tc, test_hedge_pool_timeout_envelope);
	tcase_add_test(tc, test_all_pool_timeout_overloaded);
	tcase_add_test(tc, test_winner_cuts_queued_hedge);
	tcase_add_test(tc, test_limit_bounds_through_the_guard);
	tcase_add_loop_test(tc, test_heads, 0,
			    (int)(sizeof(hh_cases) / sizeof(hh_cases[0])));
	tcase_add_test(tc, test_streamed_body_not_hedged);
	suite_add_tcase(s, tc);
	return s;
}

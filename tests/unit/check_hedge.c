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
	guard_record(hx.g, AT(10), OUTCOME_RESET, 0, 0);
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
	suite_add_tcase(s, tc);
	return s;
}

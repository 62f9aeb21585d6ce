/* The request's life without I/O. Between routing and the answer it loops:
 * wait (backoff, cool-down) → attempt → outcome → retry decision (retry.c),
 * with the budget, breaker and cool-down asked through the guard. Every
 * state change goes through set_state(); every answer through answer_*(). */
#include "engine.h"

#include <stdio.h>
#include <string.h>

void engine_init(struct engine *e, struct rng *rng)
{
	memset(e, 0, sizeof(*e));
	e->state = ENGINE_NEW;
	e->rng = rng;
	e->last.retry_after_ms = -1;
}

/* The only place the state changes; the shell logs the change (request.c). */
static void set_state(struct engine *e, enum engine_state s)
{
	e->state = s;
}

const char *engine_state_name(enum engine_state s)
{
	static const char *const names[] = {
		[ENGINE_NEW] = "new",
		[ENGINE_WAITING] = "waiting",
		[ENGINE_ATTEMPT] = "attempt",
		[ENGINE_DONE] = "done",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

enum engine_state engine_state(const struct engine *e)
{
	return e->state;
}

uint32_t engine_attempts(const struct engine *e)
{
	return e->attempts;
}

uint64_t engine_upstream_us(const struct engine *e)
{
	return e->upstream_us;
}

uint32_t engine_upstream_ms(const struct engine *e)
{
	return (uint32_t)(e->upstream_us / 1000);
}

const struct history_entry *engine_history(const struct engine *e, size_t *ret_n)
{
	*ret_n = e->attempts < ENGINE_MAX_HISTORY ? e->attempts : ENGINE_MAX_HISTORY;
	return e->history;
}

uint32_t engine_remaining_ms(const struct engine *e, uint64_t now_us)
{
	uint64_t used;

	if (e->state == ENGINE_NEW)
		return 0;
	used = now_us > e->r.start_us ? (now_us - e->r.start_us) / 1000 : 0;
	return e->r.total_ms > used ? e->r.total_ms - (uint32_t)used : 0;
}

void engine_release(struct engine *e, uint64_t now_us)
{
	if (!e->admitted)
		return;
	guard_give_back(e->r.guard, now_us, &e->token);
	guard_leave(e->r.guard, e->probe);
	e->admitted = 0;
	e->probe = 0;
}

/* The Retry-After braced passes on: never longer than retry_after.max, the
 * longest pause braced itself honours (and holds a profile cooled for), so an
 * upstream cannot park the app for days through braced. -1 stays -1. */
static int64_t app_retry_after(const struct engine *e, int64_t ms)
{
	int64_t max = (int64_t)e->r.policy->retry.retry_after_max_ms;

	return ms > max ? max : ms;
}

static struct engine_answer *answer(struct engine *e, struct engine_action *act,
				    enum engine_answer_kind kind, int code)
{
	struct engine_answer *a = &act->u.answer;

	act->kind = ENGINE_DO_ANSWER;
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->code = code;
	a->retryable = -1;
	a->retry_after_ms = -1;
	set_state(e, ENGINE_DONE);
	return a;
}

/* Relays the last upstream answer; ra is its Retry-After whatever the status. */
static void answer_relay(struct engine *e, struct engine_action *act, int code, int64_t ra)
{
	struct engine_answer *a = answer(e, act, ENGINE_RELAY, code);

	a->status = e->last.status;
	a->retry_after_ms = app_retry_after(e, ra);
}

/* The total budget is spent: 504 with the story so far. */
static void answer_budget_spent(struct engine *e, struct engine_action *act)
{
	struct engine_answer *a = answer(e, act, ENGINE_PROBLEM, PROBLEM_UPSTREAM_TIMEOUT);

	snprintf(a->detail, sizeof(a->detail), "total budget of %u ms spent after %u attempt%s",
		 e->r.total_ms, e->attempts, e->attempts == 1 ? "" : "s");
	a->retryable = 1;
}

/* The final answer after the last attempt, given why braced stopped. */
static void answer_failure(struct engine *e, struct engine_action *act, int retryable,
			   int64_t retry_after_ms)
{
	static const char *const timeout_names[] = {
		[ENGINE_TIMEOUT_NONE] = "attempt",    [ENGINE_TIMEOUT_CONNECT] = "connect",
		[ENGINE_TIMEOUT_READ] = "read",       [ENGINE_TIMEOUT_WRITE] = "write",
		[ENGINE_TIMEOUT_ATTEMPT] = "attempt",
	};
	const struct engine_last *l = &e->last;
	const struct timeouts *t = &e->r.policy->timeouts;
	struct engine_answer *a;

	switch (l->end) {
	case ENGINE_END_OK:
		if (l->outcome == OUTCOME_SCHEMA) {
			a = answer(e, act, ENGINE_PROBLEM, PROBLEM_SCHEMA_VIOLATION);
			a->upstream_status = l->status;
			snprintf(a->detail, sizeof(a->detail),
				 "the upstream's %d answer failed the response schema (%zu "
				 "violation%s)",
				 l->status, l->violations, l->violations == 1 ? "" : "s");
			a->violations = 1;
			break;
		}
		/* The upstream asked for more time than braced may wait. */
		a = answer(e, act, ENGINE_PROBLEM,
			   l->status == 429 && retry_after_ms >= 0 ? PROBLEM_RATE_LIMITED
								   : PROBLEM_UPSTREAM_STATUS);
		a->status = l->status;
		a->upstream_status = l->status;
		a->upstream_body = 1;
		snprintf(a->detail, sizeof(a->detail), "upstream answered %d after %u attempt%s",
			 l->status, e->attempts, e->attempts == 1 ? "" : "s");
		break;
	case ENGINE_END_TIMEOUT: {
		enum engine_timeout k = l->timeout;
		uint32_t ms = k == ENGINE_TIMEOUT_CONNECT ? t->connect_ms
			      : k == ENGINE_TIMEOUT_READ  ? t->read_ms
			      : k == ENGINE_TIMEOUT_WRITE ? t->write_ms
							  : t->attempt_ms;

		a = answer(e, act, ENGINE_PROBLEM, PROBLEM_UPSTREAM_TIMEOUT);
		snprintf(a->detail, sizeof(a->detail), "%s timeout of %u ms reached on attempt %u",
			 timeout_names[k], ms, e->attempts);
		break;
	}
	case ENGINE_END_TOO_LARGE:
		a = answer(e, act, ENGINE_PROBLEM, PROBLEM_RESPONSE_TOO_LARGE);
		snprintf(a->detail, sizeof(a->detail),
			 "upstream response is larger than %llu bytes",
			 (unsigned long long)e->r.max_response_body);
		break;
	case ENGINE_END_POOL_TIMEOUT:
		a = answer(e, act, ENGINE_PROBLEM, PROBLEM_OVERLOADED);
		snprintf(a->detail, sizeof(a->detail),
			 "no upstream connection became free within %u ms (pool of %u)", t->pool_ms,
			 e->r.policy->pool_max_connections);
		break;
	case ENGINE_END_CONNECT:
	case ENGINE_END_RESET:
	case ENGINE_END_INTERNAL:
	default:
		a = answer(e, act, ENGINE_PROBLEM, PROBLEM_UPSTREAM_UNAVAILABLE);
		snprintf(a->detail, sizeof(a->detail), "%s after %u attempt%s: %s",
			 l->end == ENGINE_END_CONNECT ? "cannot connect to the upstream"
						      : "upstream connection failed",
			 e->attempts, e->attempts == 1 ? "" : "s",
			 l->error[0] ? l->error : "no detail");
		break;
	}
	a->retryable = retryable;
	a->retry_after_ms = app_retry_after(e, retry_after_ms);
}

/* A retry that holds a budget token will not start after all: the token
 * goes back, the retry is not counted as started but as refused for reason. */
static void retry_dropped(struct engine *e, uint64_t now_us, enum retry_stop reason)
{
	if (!e->retrying)
		return;
	e->retrying = 0;
	guard_give_back(e->r.guard, now_us, &e->token);
	guard_count_suppressed(e->r.guard, reason);
}

static void start_attempt(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	const struct timeouts *t = &e->r.policy->timeouts;
	uint32_t left = engine_remaining_ms(e, now_us);
	struct engine_start *s = &act->u.start;

	if (e->retrying) {
		/* The token is spent: the retry starts. */
		e->retrying = 0;
		e->token.held = 0;
		guard_count_retry(e->r.guard);
	}
	if (left == 0)
		left = 1;
	act->kind = ENGINE_DO_START;
	*s = (struct engine_start){
		.connect_ms = t->connect_ms < left ? t->connect_ms : left,
		.read_ms = t->read_ms,
		.write_ms = t->write_ms,
		.pool_ms = t->pool_ms < left ? t->pool_ms : left,
		.attempt_ms = t->attempt_ms && t->attempt_ms < left ? t->attempt_ms : 0,
		.probe = e->probe,
	};
	e->pool_wait_cut = s->pool_ms < t->pool_ms;
	e->attempt_start_us = now_us;
	set_state(e, ENGINE_ATTEMPT);
}

/* Waits wait_ms (and past any cool-down of the profile), then attempts;
 * answers 429 at once when the cool-down cannot fit the budget (SPEC 4.6). */
static void schedule(struct engine *e, uint64_t now_us, uint32_t wait_ms, struct engine_action *act)
{
	uint64_t until = guard_cooldown_until(e->r.guard);

	if (e->r.policy->rate_limit_cooldown && until > now_us + (uint64_t)wait_ms * 1000) {
		/* Rounded up: never a millisecond before the upstream's time. */
		uint64_t cool = (until - now_us + 999) / 1000;
		uint32_t left = engine_remaining_ms(e, now_us);

		if (cool + RETRY_MIN_ATTEMPT_MS > left) {
			struct engine_answer *a;

			retry_dropped(e, now_us, RETRY_STOP_DEADLINE);
			a = answer(e, act, ENGINE_PROBLEM, PROBLEM_RATE_LIMITED);
			snprintf(a->detail, sizeof(a->detail),
				 "the upstream asked for a pause of %llu ms more; the budget has "
				 "%u ms",
				 (unsigned long long)cool, left);
			/* The cool-down may come from a route with a longer
			 * retry_after.max: this request's route says what to tell. */
			a->retry_after_ms = app_retry_after(e, (int64_t)cool);
			a->retryable = 1;
			return;
		}
		wait_ms = (uint32_t)cool;
	}
	if (wait_ms == 0) {
		start_attempt(e, now_us, act);
		return;
	}
	set_state(e, ENGINE_WAITING);
	act->kind = ENGINE_DO_WAIT;
	act->u.wait_ms = wait_ms;
}

static void on_routed(struct engine *e, const struct engine_event *ev, struct engine_action *act)
{
	struct guard_admission adm;

	e->r = ev->u.routed;
	e->wait_since_us = e->r.start_us;
	e->admitted = 1;
	set_state(e, ENGINE_WAITING);
	guard_admit(e->r.guard, ev->now_us, &adm);
	if (adm.verdict == GUARD_REJECT) {
		struct engine_answer *a = answer(e, act, ENGINE_PROBLEM, PROBLEM_CIRCUIT_OPEN);

		snprintf(a->detail, sizeof(a->detail),
			 "the circuit breaker of profile '%s' is open", e->r.profile);
		a->retryable = 1;
		a->retry_after_ms = (int64_t)(adm.retry_after_ms ? adm.retry_after_ms : 1000);
		return;
	}
	e->probe = adm.verdict == GUARD_PROBE;
	schedule(e, ev->now_us, 0, act);
}

static enum outcome outcome_of(const struct engine *e, const struct engine_result *res)
{
	switch (res->end) {
	case ENGINE_END_OK:
		return retry_classify_status(&e->r.policy->retry, res->status);
	case ENGINE_END_CONNECT:
		return OUTCOME_CONNECT;
	case ENGINE_END_TIMEOUT:
		return OUTCOME_TIMEOUT;
	case ENGINE_END_TOO_LARGE:
		return OUTCOME_TOO_LARGE;
	case ENGINE_END_INTERNAL:
	case ENGINE_END_POOL_TIMEOUT:
		return OUTCOME_INTERNAL;
	case ENGINE_END_RESET:
	default:
		return OUTCOME_RESET;
	}
}

/* Counts one attempt that ended at now_us with outcome o (SPEC 4.2). */
static void count_attempt(struct engine *e, uint64_t now_us, enum outcome o, int status,
			  uint32_t ms)
{
	struct history_entry *h =
	    &e->history[e->attempts < ENGINE_MAX_HISTORY ? e->attempts : ENGINE_MAX_HISTORY - 1];

	e->attempts++;
	*h = (struct history_entry){
		.attempt = e->attempts,
		.outcome = retry_outcome_name(o),
		.status = status,
		.ms = ms,
		.wait_ms = (uint32_t)((e->attempt_start_us - e->wait_since_us) / 1000),
	};
	guard_record(e->r.guard, now_us, o, status, e->probe);
	/* A probe's first answer has decided the breaker's state. */
	e->probe = 0;
}

/* SPEC 4.3 in its order; the budget token is taken only when everything
 * before it holds, and kept only when the retry goes ahead. */
static enum retry_stop decide(struct engine *e, uint64_t now_us, uint32_t *ret_wait)
{
	const struct retry_policy *rp = &e->r.policy->retry;
	struct retry_input in = {
		.outcome = e->last.outcome,
		.status = e->last.status,
		.attempts = e->attempts,
		.max_attempts = e->r.max_attempts,
		.method = e->r.method,
		.has_idempotency_key = e->r.has_idempotency_key,
		.breaker_open = guard_refuses(e->r.guard, now_us, e->probe),
		.budget_has_room = 1,
		.retry_after_ms = rp->retry_after_honor ? e->last.retry_after_ms : -1,
		.remaining_ms = engine_remaining_ms(e, now_us),
		.prev_wait_ms = e->prev_wait_ms,
	};
	enum retry_stop stop = retry_decide(rp, &in, e->rng, ret_wait);

	if (stop != RETRY_GO && stop != RETRY_STOP_RETRY_AFTER && stop != RETRY_STOP_DEADLINE)
		return stop;
	if (!guard_try_withdraw(e->r.guard, now_us, &e->token))
		return RETRY_STOP_BUDGET;
	if (stop != RETRY_GO)
		guard_give_back(e->r.guard, now_us, &e->token);
	return stop;
}

static void on_attempt(struct engine *e, const struct engine_event *ev, struct engine_action *act)
{
	const struct engine_result *res = &ev->u.attempt;
	const struct policy *pol = e->r.policy;
	uint64_t now = ev->now_us;
	enum retry_stop stop;
	enum outcome o;
	uint32_t wait = 0;
	int status;

	e->upstream_us += res->elapsed_us ? res->elapsed_us : (uint64_t)res->elapsed_ms * 1000;
	if (res->end == ENGINE_END_POOL_TIMEOUT) {
		/* Nothing was sent: not an attempt, and nothing to retry into. When
		 * the budget, not timeouts.pool, ended the wait, the budget is spent. */
		if (e->pool_wait_cut) {
			answer_budget_spent(e, act);
		} else {
			e->last.end = ENGINE_END_POOL_TIMEOUT;
			answer_failure(e, act, 1, -1);
		}
		return;
	}
	o = outcome_of(e, res);
	status = res->end == ENGINE_END_OK ? res->status : 0;
	if (o == OUTCOME_OK && res->schema_failed)
		o = OUTCOME_SCHEMA;
	count_attempt(e, now, o, status, res->elapsed_ms);
	e->last = (struct engine_last){
		.outcome = o,
		.end = res->end,
		.timeout = res->timeout,
		.status = status,
		.retry_after_ms = status == 429 || status == 503 ? res->retry_after_ms : -1,
		.violations = res->schema_failed ? res->violations : 0,
	};
	snprintf(e->last.error, sizeof(e->last.error), "%s", res->error ? res->error : "");
	if (status == 429 && e->last.retry_after_ms > 0 && pol->rate_limit_cooldown) {
		/* One answer cannot silence the profile for longer than braced would wait. */
		uint64_t pause = (uint64_t)e->last.retry_after_ms < pol->retry.retry_after_max_ms
				     ? (uint64_t)e->last.retry_after_ms
				     : pol->retry.retry_after_max_ms;

		guard_cool_down(e->r.guard, now + pause * 1000);
	}
	if (o == OUTCOME_OK) {
		answer_relay(e, act, ENGINE_CODE_OK, res->retry_after_ms);
		return;
	}
	if (res->end == ENGINE_END_TOO_LARGE) {
		answer_failure(e, act, 0, -1);
		return;
	}
	stop = decide(e, now, &wait);
	if (stop == RETRY_GO) {
		e->retrying = 1;
		e->prev_wait_ms = wait;
		e->wait_since_us = now;
		schedule(e, now, wait, act);
		return;
	}
	if (stop != RETRY_STOP_OUTCOME)
		guard_count_suppressed(e->r.guard, stop);
	if (res->end == ENGINE_END_OK && o != OUTCOME_SCHEMA &&
	    pol->upstream_errors == UPSTREAM_ERRORS_PASSTHROUGH)
		answer_relay(e, act,
			     stop == RETRY_STOP_RETRY_AFTER && status == 429
				 ? PROBLEM_RATE_LIMITED
				 : PROBLEM_UPSTREAM_STATUS,
			     res->retry_after_ms);
	else
		answer_failure(e, act, stop != RETRY_STOP_OUTCOME, e->last.retry_after_ms);
}

/* The wait is over; the world may have changed meanwhile. */
static void on_wait_over(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	if (e->retrying && guard_refuses(e->r.guard, now_us, e->probe)) {
		/* The breaker opened while this retry waited: nothing more is sent. */
		retry_dropped(e, now_us, RETRY_STOP_BREAKER);
		answer_failure(e, act, 1, e->last.retry_after_ms);
		return;
	}
	/* Another answer may have extended the cool-down while this one waited. */
	schedule(e, now_us, 0, act);
}

static void on_deadline(struct engine *e, const struct engine_event *ev, struct engine_action *act)
{
	uint64_t now = ev->now_us;

	if (e->state == ENGINE_ATTEMPT) {
		act->cancel = 1;
		if (!ev->u.timer.attempt_queued) {
			/* The attempt in progress is cut and counted as a timeout. */
			uint32_t ms = (uint32_t)((now - e->attempt_start_us) / 1000);

			e->upstream_us += now - e->attempt_start_us;
			count_attempt(e, now, OUTCOME_TIMEOUT, 0, ms);
		}
		/* Still queued for a connection: nothing was sent, no attempt made. */
	}
	retry_dropped(e, now, RETRY_STOP_DEADLINE);
	answer_budget_spent(e, act);
}

/* The request goes without an answer: the app left, or shutdown's grace ended. */
static void on_drop(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	if (e->state == ENGINE_ATTEMPT) {
		act->cancel = 1;
		/* Counted for the access log line; nothing more is known of it. */
		e->attempts++;
	}
	if (e->retrying) {
		e->retrying = 0;
		guard_give_back(e->r.guard, now_us, &e->token);
	}
	act->kind = ENGINE_DO_DROP;
	set_state(e, ENGINE_DONE);
}

void engine_feed(struct engine *e, const struct engine_event *ev, struct engine_action *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->kind = ENGINE_DO_NOTHING;
	if (e->state == ENGINE_DONE)
		return;
	switch (ev->kind) {
	case ENGINE_EV_ROUTED:
		if (e->state == ENGINE_NEW)
			on_routed(e, ev, ret);
		break;
	case ENGINE_EV_ATTEMPT:
		if (e->state == ENGINE_ATTEMPT)
			on_attempt(e, ev, ret);
		break;
	case ENGINE_EV_START_FAILED:
		if (e->state == ENGINE_ATTEMPT) {
			struct engine_answer *a = answer(e, ret, ENGINE_PROBLEM, PROBLEM_INTERNAL);

			snprintf(a->detail, sizeof(a->detail), "%s",
				 "out of memory starting the upstream attempt");
		}
		break;
	case ENGINE_EV_TIMER:
		if (ev->u.timer.which == ENGINE_TIMER_DEADLINE && e->state != ENGINE_NEW)
			on_deadline(e, ev, ret);
		else if (ev->u.timer.which == ENGINE_TIMER_WAIT && e->state == ENGINE_WAITING)
			on_wait_over(e, ev->now_us, ret);
		break;
	case ENGINE_EV_CLIENT_GONE:
	case ENGINE_EV_DRAINING:
		on_drop(e, ev->now_us, ret);
		break;
	}
}

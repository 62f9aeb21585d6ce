/* The request's life without I/O. Between routing and the answer it loops:
 * wait (backoff, cool-down) → attempt → outcome → retry decision (retry.c),
 * with the budget, breaker and cool-down asked through the guard. While an
 * attempt runs, the hedge timer may start more beside it (SPEC 4.10); the
 * first acceptable answer wins and the rest are cancelled. An answer may
 * be judged at its head, its body still coming: relayed, it streams
 * (ENGINE_STREAMING) until its end, and nothing is retried any more.
 * Every state change goes through engine_set_state(); every answer through
 * answer_*(). */
#include "engine.h"
#include "engine_internal.h"

#include <stdio.h>
#include <string.h>

_Static_assert(ENDPOINT_NAME_MAX <= PROBLEM_ENDPOINT_MAX,
	       "an endpoint's name fits a history entry");

void engine_init(struct engine *e, struct rng *rng)
{
	memset(e, 0, sizeof(*e));
	e->state = ENGINE_NEW;
	e->rng = rng;
}

static int waiting(const struct engine *e)
{
	return e->state == ENGINE_WAITING_FIRST || e->state == ENGINE_WAITING_RETRY;
}

static int attempting(const struct engine *e)
{
	return e->state == ENGINE_ATTEMPT || e->state == ENGINE_ATTEMPT_UNDECIDED;
}

const char *engine_state_name(enum engine_state s)
{
	static const char *const names[] = {
		[ENGINE_NEW] = "new",
		[ENGINE_WAITING_FIRST] = "waiting",
		[ENGINE_WAITING_RETRY] = "waiting",
		[ENGINE_ATTEMPT] = "attempt",
		[ENGINE_ATTEMPT_UNDECIDED] = "attempt",
		[ENGINE_STREAMING] = "streaming",
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

uint32_t engine_hedges(const struct engine *e)
{
	return e->hedges;
}

enum engine_hedge_stop engine_hedge_stop(const struct engine *e)
{
	return e->hedge_stop;
}

uint32_t engine_rate_wait_ms(const struct engine *e)
{
	return (uint32_t)(e->rate_wait_us / 1000);
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
	engine_record_pending(e, now_us, OUTCOME_OK);
	if (!e->holds.inflight)
		return;
	engine_unpace(e);
	if (e->state == ENGINE_WAITING_RETRY)
		guard_give_back(e->r.guard, now_us, &e->token);
	guard_leave(e->r.guard, e->holds.probe);
	e->holds = (struct engine_holds){ 0 };
}

/* A retry that waits with its budget token will not start after all: the
 * token goes back, the retry is not counted as started but as refused for
 * reason. The caller leaves ENGINE_WAITING_RETRY next. */
void engine_retry_dropped(struct engine *e, uint64_t now_us, enum retry_stop reason)
{
	if (e->state != ENGINE_WAITING_RETRY)
		return;
	guard_give_back(e->r.guard, now_us, &e->token);
	guard_count_suppressed(e->r.guard, reason);
}

void engine_start_attempt_as(struct engine *e, uint64_t now_us, struct engine_action *act,
			     int hedge)
{
	const struct timeouts *t = &e->r.policy->timeouts;
	uint32_t left = engine_remaining_ms(e, now_us);
	struct engine_start *s = &act->u.start;
	struct engine_running *run = &e->running[e->nrunning++];

	if (e->state == ENGINE_WAITING_RETRY) {
		/* The token is spent: the retry starts. */
		e->token = (struct guard_token){ 0 };
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
		.probe = hedge ? 0 : e->holds.probe,
		.id = ++e->next_id,
		.hedge = hedge,
	};
	*run = (struct engine_running){ .id = s->id, .start_us = now_us, .hedge = hedge };
	/* Retries and hedges go where this request has not been yet. */
	s->endpoint = guard_endpoint_pick(e->r.guard, now_us, e->rng, e->tried, e->ntried);
	s->picked_us = now_us;
	if (s->endpoint) {
		const char *name = guard_endpoint_name(e->r.guard, s->endpoint);
		size_t len = name ? strnlen(name, sizeof(run->endpoint) - 1) : 0;

		/* Not snprintf: this runs for every attempt. */
		memcpy(run->endpoint, name ? name : "", len);
		run->endpoint[len] = '\0';
		if (e->ntried < ENGINE_MAX_HISTORY)
			e->tried[e->ntried++] = s->endpoint;
	}
	if (e->nrunning == 1) {
		e->group_start_us = now_us;
		e->group_size = 0;
	}
	e->group_size++;
	e->started++;
	if (hedge)
		e->hedges++;
	e->pool_wait_cut = s->pool_ms < t->pool_ms;
	/* A first attempt or a retry starts a new round: the answer before is
	 * decided. A hedge joins the round in flight. */
	if (!hedge)
		engine_set_state(e, ENGINE_ATTEMPT);
	engine_arm_hedge(e, now_us, act);
}

void engine_start_attempt(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	engine_start_attempt_as(e, now_us, act, 0);
}

static void on_routed(struct engine *e, const struct engine_event *ev, struct engine_action *act)
{
	struct guard_admission adm;

	e->r = ev->u.routed;
	e->wait_since_us = e->r.start_us;
	e->holds.inflight = 1;
	engine_set_state(e, ENGINE_WAITING_FIRST);
	guard_admit(e->r.guard, ev->now_us, &adm);
	if (adm.verdict == GUARD_REJECT) {
		engine_answer_circuit_open(e, act, adm.retry_after_ms);
		return;
	}
	e->holds.probe = adm.verdict == GUARD_PROBE;
	engine_schedule(e, ev->now_us, 0, act);
}

enum outcome engine_outcome_of(const struct engine *e, const struct engine_result *res)
{
	switch (res->end) {
	case ATTEMPT_OK:
		return retry_classify_status(&e->r.policy->retry, res->status);
	case ATTEMPT_CONNECT:
		return OUTCOME_CONNECT;
	case ATTEMPT_TIMEOUT:
		/* Nothing was sent before the connection was up (SPEC 4.2). */
		return res->timeout == LIMIT_CONNECT ? OUTCOME_CONNECT : OUTCOME_TIMEOUT;
	case ATTEMPT_TOO_LARGE:
		return OUTCOME_TOO_LARGE;
	case ATTEMPT_INTERNAL:
	case ATTEMPT_POOL_TIMEOUT:
		return OUTCOME_INTERNAL;
	case ATTEMPT_RESET:
	default:
		return OUTCOME_RESET;
	}
}

/* Adds the history entry of attempt run, ended with outcome name. */
static void add_history(struct engine *e, const struct engine_running *run, const char *outcome,
			int status, uint32_t ms)
{
	struct history_entry *h =
	    &e->history[e->attempts < ENGINE_MAX_HISTORY ? e->attempts : ENGINE_MAX_HISTORY - 1];
	uint64_t since = run->start_us > e->wait_since_us ? run->start_us - e->wait_since_us : 0;

	e->attempts++;
	*h = (struct history_entry){
		.attempt = e->attempts,
		.outcome = outcome,
		.status = status,
		.ms = ms,
		.wait_ms = (uint32_t)(since / 1000),
		.hedge = run->hedge,
	};
	memcpy(h->endpoint, run->endpoint, sizeof(h->endpoint));
}

/* Counts attempt run that ended at now_us with outcome o (SPEC 4.2). An
 * ok head whose body is still coming (defer) goes into the history now and
 * into the guard's counters at its body's end: engine_record_pending(), so
 * an attempt cut mid-body counts once, as the failure that ended it. */
static void count_attempt(struct engine *e, const struct engine_running *run, uint64_t now_us,
			  enum outcome o, int status, uint32_t ms, int defer)
{
	add_history(e, run, retry_outcome_name(o), status, ms);
	if (defer && o == OUTCOME_OK) {
		engine_record_pending(e, now_us, OUTCOME_OK);
		e->pending.set = 1;
		return;
	}
	guard_record(e->r.guard, o);
}

/* The deferred ok head is counted as o: OUTCOME_OK when its body came
 * whole or was not wanted, what cut the body otherwise. The history keeps
 * the head's outcome: the app saw that answer. */
void engine_record_pending(struct engine *e, uint64_t now_us, enum outcome o)
{
	(void)now_us;
	if (!e->pending.set)
		return;
	e->pending.set = 0;
	guard_record(e->r.guard, o);
}

/* Judges the request for the breaker (SPEC 4.8), once: after its retries,
 * as the app saw it. Only a request that made an attempt is judged: one
 * refused by the breaker, the cool-down or the pool never reached the
 * upstream. A half-open probe gives its slot back here. */
static void engine_judge(struct engine *e, uint64_t now_us, const enum problem_code *code,
			 int status)
{
	if (e->judged || e->attempts == 0)
		return;
	e->judged = 1;
	guard_judge(e->r.guard, now_us, guard_is_failure(code, status), e->holds.probe);
	e->holds.probe = 0;
}

/* The slot of attempt id, or NULL. */
static struct engine_running *find_running(struct engine *e, uint32_t id)
{
	for (unsigned i = 0; i < e->nrunning; i++)
		if (e->running[i].id == id)
			return &e->running[i];
	return NULL;
}

/* Takes attempt run out of the attempts in flight; *ret gets a copy. */
static void remove_running(struct engine *e, struct engine_running *run, struct engine_running *ret)
{
	*ret = *run;
	*run = e->running[--e->nrunning];
}

/* Hedge run sent nothing (no pool connection, or the backend could not
 * start it): not an attempt. Its budget token goes back; it counts as lost. */
static void hedge_not_sent(struct engine *e, uint64_t now_us, struct engine_running *run)
{
	guard_give_back(e->r.guard, now_us, &run->token);
	if (e->started > 0)
		e->started--;
	guard_count_hedge(e->r.guard, GUARD_HEDGE_LOST);
}

/* Time in attempts: one attempt alone counts its own time; attempts that
 * overlapped (hedges) count the span from the first start to now once. */
static void add_upstream_time(struct engine *e, uint64_t now_us, uint64_t alone_us)
{
	if (e->group_size <= 1)
		e->upstream_us += alone_us;
	else if (now_us > e->group_start_us)
		e->upstream_us += now_us - e->group_start_us;
	e->group_size = 0;
}

/* How the attempts still in flight are cut. */
enum cut_kind {
	CUT_LOSERS,   /* another answer won: "cancelled" in the history */
	CUT_DEADLINE, /* the budget is spent: a timeout, unless still queued */
	CUT_DROP,     /* the request is dropped: "cancelled" in the history */
};

/* Cancels every attempt in flight (listed in act), as kind says. queued
 * (nqueued ids) are the attempts that never left the pool's queue. */
static void cut_running(struct engine *e, uint64_t now_us, struct engine_action *act,
			enum cut_kind kind, const uint32_t *queued, unsigned nqueued)
{
	if (e->nrunning && kind != CUT_LOSERS)
		add_upstream_time(e, now_us, now_us - e->running[0].start_us);
	if (kind == CUT_DEADLINE)
		act->cancel_timeout = 1;
	for (unsigned i = 0; i < e->nrunning; i++) {
		const struct engine_running *run = &e->running[i];
		uint32_t ms = (uint32_t)((now_us - run->start_us) / 1000);
		int was_queued = 0;

		act->cancel_ids[act->cancel++] = run->id;
		for (unsigned q = 0; q < nqueued; q++)
			was_queued |= queued[q] == run->id;
		if (run->hedge)
			guard_count_hedge(e->r.guard, GUARD_HEDGE_CANCELLED);
		switch (kind) {
		case CUT_LOSERS:
			if (was_queued) {
				/* It never left the pool's queue: no attempt, and a
				 * hedge's token goes back. */
				guard_give_back(e->r.guard, now_us, &e->running[i].token);
				break;
			}
			/* Its time so far bounds its latency from below. */
			guard_observe_latency(e->r.guard, now_us, now_us - run->start_us);
			add_history(e, run, "cancelled", 0, ms);
			break;
		case CUT_DEADLINE:
			/* Still queued for a connection: nothing was sent, no attempt
			 * made, and a hedge's token goes back. */
			if (!was_queued)
				count_attempt(e, run, now_us, OUTCOME_TIMEOUT, 0, ms, 0);
			else
				guard_give_back(e->r.guard, now_us, &e->running[i].token);
			break;
		case CUT_DROP:
		default:
			/* Counted for the access log line and in the history (a
			 * problem still tells a draining app about it). */
			add_history(e, run, "cancelled", 0, ms);
			break;
		}
	}
	e->nrunning = 0;
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
		.idempotency = e->r.idempotency,
		.body_streamed = e->r.body_streamed,
		.body_sent = e->last.body_sent,
		.breaker_open = guard_refuses(e->r.guard, now_us, e->holds.probe),
		.budget_has_room = 1,
		.retry_after =
		    rp->retry_after_honor ? e->last.retry_after : (struct retry_after){ 0 },
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

/* 1 for an answer that ends the request whoever else is still running: a
 * success that passed its schema, or a status that is not retriable (the
 * usual answer for it follows). Retriable statuses, transport failures,
 * schema failures and oversized answers wait for the other attempts. */
static int acceptable(enum outcome o)
{
	return o == OUTCOME_OK || o == OUTCOME_CLIENT_ERROR || o == OUTCOME_SERVER_ERROR;
}

/* Feeds the profile's latency estimate and adaptive limit with a finished
 * attempt's time on the wire. */
static void observe(struct engine *e, uint64_t now_us, const struct engine_result *res)
{
	uint64_t us = res->elapsed_us;

	us = us > res->queued_us ? us - res->queued_us : 0;
	if (res->end == ATTEMPT_POOL_TIMEOUT || res->end == ATTEMPT_INTERNAL)
		return;
	guard_observe_latency(e->r.guard, now_us, us);
	if (res->end == ATTEMPT_OK)
		guard_limiter_sample(e->r.guard, now_us, us);
}

/* Every attempt of the round has ended and none was acceptable: the
 * answer in e->last (the last attempt that ran) is retried per policy, or
 * told to the app. */
static void conclude(struct engine *e, uint64_t now, struct engine_action *act)
{
	const struct engine_last *l = &e->last;
	enum retry_stop stop;
	uint32_t wait = 0;

	if (l->outcome == OUTCOME_OK) {
		engine_answer_relay(e, act, NULL, l->relay_retry_after);
		return;
	}
	if (l->end == ATTEMPT_TOO_LARGE) {
		engine_answer_failure(e, act, 0, (struct retry_after){ 0 });
		return;
	}
	stop = decide(e, now, &wait);
	if (stop == RETRY_GO) {
		engine_set_state(e, ENGINE_WAITING_RETRY);
		e->prev_wait_ms = wait;
		e->wait_since_us = now;
		engine_schedule(e, now, wait, act);
		return;
	}
	if (stop != RETRY_STOP_OUTCOME)
		guard_count_suppressed(e->r.guard, stop);
	engine_answer_last(e, act, stop);
}

/* The last answer, e->last, is the request's: no retry for stop. */
void engine_answer_last(struct engine *e, struct engine_action *act, enum retry_stop stop)
{
	const struct engine_last *l = &e->last;

	if (l->end == ATTEMPT_OK && l->outcome != OUTCOME_SCHEMA &&
	    e->r.policy->upstream_errors == UPSTREAM_ERRORS_PASSTHROUGH) {
		enum problem_code code = stop == RETRY_STOP_RETRY_AFTER && l->status == 429
					     ? PROBLEM_RATE_LIMITED
					     : PROBLEM_UPSTREAM_STATUS;

		engine_answer_relay(e, act, &code, l->relay_retry_after);
	} else {
		engine_answer_failure(e, act, stop != RETRY_STOP_OUTCOME, l->retry_after);
	}
}

/* Attempt id's head came, and its body is not wanted: the shell keeps
 * the start a problem may repeat, then cancels it. */
static void discard(struct engine_action *act, uint32_t id)
{
	if (act->discard < ENGINE_MAX_INFLIGHT)
		act->discard_ids[act->discard++] = id;
}

/* The request ends without e->last's answer: an attempt whose head made
 * it and whose body is still coming is cancelled with the others. */
static void cancel_headed(struct engine *e, uint64_t now, struct engine_action *act)
{
	if (!e->last_headed)
		return;
	e->last_headed = 0;
	engine_record_pending(e, now, OUTCOME_OK);
	if (act->cancel < ENGINE_MAX_INFLIGHT)
		act->cancel_ids[act->cancel++] = e->last_id;
}

/* Judges the answer of attempt run, out of the attempts in flight (SPEC
 * 4.2): its outcome, the losers it cuts when it wins, its count, the
 * cool-down of a 429 and the hedge's stats. e->last keeps it. Returns 1
 * when it is acceptable: it ends the request whoever else runs. */
static int judge(struct engine *e, uint64_t now, const struct engine_running *run,
		 const struct engine_result *res, int headed, struct engine_action *act)
{
	const struct policy *pol = e->r.policy;
	enum outcome o = engine_outcome_of(e, res);
	int status = res->end == ATTEMPT_OK ? res->status : 0;
	int final;

	if (o == OUTCOME_OK && res->schema_failed)
		o = OUTCOME_SCHEMA;
	/* The first acceptable answer wins; the others are cut at once (and
	 * come first in the history: they started first). */
	final = acceptable(o);
	if (final && e->nrunning > 0)
		cut_running(e, now, act, CUT_LOSERS, res->queued,
			    res->nqueued < ENGINE_MAX_INFLIGHT ? res->nqueued
							       : ENGINE_MAX_INFLIGHT);
	/* An earlier head left undecided is replaced by this answer. */
	if (e->last_headed)
		engine_record_pending(e, now, OUTCOME_OK);
	count_attempt(e, run, now, o, status, (uint32_t)(res->elapsed_us / 1000), headed);
	if (e->last_headed) {
		discard(act, e->last_id);
		e->last_headed = 0;
	}
	e->last = (struct engine_last){
		.outcome = o,
		.end = res->end,
		.timeout = res->timeout,
		.status = status,
		.retry_after =
		    status == 429 || status == 503 ? res->retry_after : (struct retry_after){ 0 },
		.relay_retry_after = res->retry_after,
		.violations = res->schema_failed ? res->violations : 0,
		.body_sent = res->body_sent,
	};
	e->last_id = run->id;
	snprintf(e->last.error, sizeof(e->last.error), "%s", res->error ? res->error : "");
	if (status == 429 && e->last.retry_after.set && e->last.retry_after.ms > 0 &&
	    pol->rate_limit_cooldown) {
		/* One answer cannot silence the profile for longer than braced would wait. */
		uint64_t pause = e->last.retry_after.ms < pol->retry.retry_after_max_ms
				     ? e->last.retry_after.ms
				     : pol->retry.retry_after_max_ms;

		guard_cool_down(e->r.guard, now + pause * 1000);
	}
	if (run->hedge)
		guard_count_hedge(e->r.guard, final ? GUARD_HEDGE_WON : GUARD_HEDGE_LOST);
	return final;
}

/* conclude(), then what a head changes: a relay of an answer whose body
 * is still coming streams it (ENGINE_STREAMING); a retry or a problem
 * instead discards that body. */
static void settle(struct engine *e, uint64_t now, struct engine_action *act)
{
	struct engine_answer *a = &act->u.answer;

	conclude(e, now, act);
	if (act->kind == ENGINE_DO_ANSWER)
		a->id = e->last_id;
	if (!e->last_headed)
		return;
	e->last_headed = 0;
	if (act->kind != ENGINE_DO_ANSWER || a->kind != ENGINE_RELAY) {
		engine_record_pending(e, now, OUTCOME_OK);
		discard(act, e->last_id);
		return;
	}
	a->stream = 1;
	act->stream_ms = e->r.policy->timeouts.stream_ms;
	e->streaming_id = e->last_id;
	e->stream_has_code = a->has_code;
	e->stream_code = a->code;
	e->stream_status = a->status;
	engine_set_state(e, ENGINE_STREAMING);
}

/* After attempt run was judged: the request is settled at once, or waits
 * for the others in flight when the answer was not acceptable. */
static void after_judge(struct engine *e, uint64_t now, int final, struct engine_action *act)
{
	if (final) {
		add_upstream_time(e, now, 0);
	} else if (e->nrunning > 0) {
		/* Others still run: one of them may yet answer well. */
		engine_set_state(e, ENGINE_ATTEMPT_UNDECIDED);
		e->undecided_us = now;
		return;
	}
	settle(e, now, act);
}

/* Takes attempt res->id out of the attempts in flight into *ret and
 * counts its time; 0 when it is not one of them. */
static int take_running(struct engine *e, uint64_t now, const struct engine_result *res,
			struct engine_running *ret)
{
	struct engine_running *slot = find_running(e, res->id);

	if (!slot)
		return 0;
	remove_running(e, slot, ret);
	observe(e, now, res);
	/* Time upstream ends with the last attempt that ran: a hedge's wait
	 * for a connection after it is not counted. */
	if (e->nrunning == 0)
		add_upstream_time(e,
				  res->end == ATTEMPT_POOL_TIMEOUT &&
					  e->state == ENGINE_ATTEMPT_UNDECIDED
				      ? e->undecided_us
				      : now,
				  res->elapsed_us);
	return 1;
}

/* The body of the undecided head in e->last ended: whole, the answer is
 * as good as one that came whole; cut short, it was never relayed and
 * is what cut it (SPEC 4.2: a reset, a timeout), recorded in the guard
 * as that when its head was ok, else under its status already. */
static void headed_body_end(struct engine *e, uint64_t now, const struct engine_result *res)
{
	e->last_headed = 0;
	if (res->end == ATTEMPT_OK) {
		engine_record_pending(e, now, OUTCOME_OK);
		return;
	}
	engine_record_pending(e, now, engine_outcome_of(e, res));
	e->last.outcome = engine_outcome_of(e, res);
	e->last.end = res->end;
	e->last.timeout = res->timeout;
	e->last.status = 0;
	e->last.retry_after = (struct retry_after){ 0 };
	e->last.relay_retry_after = (struct retry_after){ 0 };
	e->last.body_sent = res->body_sent;
	snprintf(e->last.error, sizeof(e->last.error), "%s", res->error ? res->error : "");
}

static void on_attempt(struct engine *e, const struct engine_event *ev, struct engine_action *act)
{
	const struct engine_result *res = &ev->u.attempt;
	uint64_t now = ev->now_us;
	struct engine_running run;

	if (e->last_headed && res->id == e->last_id) {
		headed_body_end(e, now, res);
		return;
	}
	if (!take_running(e, now, res, &run))
		return;
	if (res->end == ATTEMPT_POOL_TIMEOUT) {
		/* Nothing was sent: not an attempt. A hedge is lost, its token
		 * back; the attempts that ran decide. */
		if (run.hedge)
			hedge_not_sent(e, now, &run);
		if (e->nrunning > 0)
			return;
		if (e->state == ENGINE_ATTEMPT_UNDECIDED) {
			/* An earlier attempt of this round answered: its answer
			 * is relayed or retried, not an overload. */
			settle(e, now, act);
			return;
		}
		/* Nothing to retry into. When the budget, not timeouts.pool,
		 * ended the wait, the budget is spent. */
		if (e->pool_wait_cut) {
			engine_answer_budget_spent(e, act);
		} else {
			e->last.end = ATTEMPT_POOL_TIMEOUT;
			/* Overloaded: the app is told when to come back. */
			engine_answer_failure(
			    e, act, 1, engine_retry_after_ms(ENGINE_OVERLOADED_RETRY_AFTER_MS));
		}
		return;
	}
	after_judge(e, now, judge(e, now, &run, res, 0, act), act);
}

/* Attempt res->id has its final head, its body still coming (design §2):
 * an answer the shell holds whole is judged at its end; any other is
 * judged now, as a whole answer would be. */
static void on_head(struct engine *e, const struct engine_event *ev, struct engine_action *act)
{
	const struct engine_result *res = &ev->u.attempt;
	struct engine_result head = *res;
	struct engine_running run;
	int final;

	if (res->hold || !find_running(e, res->id))
		return;
	head.end = ATTEMPT_OK;
	head.schema_failed = 0;
	take_running(e, ev->now_us, &head, &run);
	final = judge(e, ev->now_us, &run, &head, 1, act);
	e->last_headed = 1;
	after_judge(e, ev->now_us, final, act);
}

static void on_deadline(struct engine *e, const struct engine_event *ev, struct engine_action *act)
{
	uint64_t now = ev->now_us;

	if (attempting(e)) {
		unsigned nq = ev->u.timer.nqueued;

		/* Attempts in progress are cut and counted as timeouts. */
		cut_running(e, now, act, CUT_DEADLINE, ev->u.timer.queued,
			    nq < ENGINE_MAX_INFLIGHT ? nq : ENGINE_MAX_INFLIGHT);
		cancel_headed(e, now, act);
	}
	engine_unpace(e);
	engine_retry_dropped(e, now, RETRY_STOP_DEADLINE);
	engine_answer_budget_spent(e, act);
}

/* The request goes without an answer: the app left, or shutdown's grace ended. */
static void on_drop(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	if (attempting(e)) {
		cut_running(e, now_us, act, CUT_DROP, NULL, 0);
		cancel_headed(e, now_us, act);
	}
	if (e->state == ENGINE_WAITING_RETRY)
		guard_give_back(e->r.guard, now_us, &e->token);
	engine_unpace(e);
	act->kind = ENGINE_DO_DROP;
	engine_set_state(e, ENGINE_DONE);
}

/* The backend could not start attempt id: with others in flight it is
 * forgotten, else the request ends in a 500. */
static void on_start_failed(struct engine *e, const struct engine_event *ev,
			    struct engine_action *act)
{
	struct engine_running *slot = find_running(e, ev->u.attempt.id);
	struct engine_running run;
	struct engine_answer *a;

	if (slot && e->nrunning > 1) {
		remove_running(e, slot, &run);
		if (run.hedge)
			hedge_not_sent(e, ev->now_us, &run);
		return;
	}
	if (slot)
		remove_running(e, slot, &run);
	cut_running(e, ev->now_us, act, CUT_DROP, NULL, 0);
	cancel_headed(e, ev->now_us, act);
	a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_INTERNAL);
	snprintf(a->detail, sizeof(a->detail), "%s", "out of memory starting the upstream attempt");
}

/* The breaker judges a request by its answer (SPEC 4.8): a whole answer
 * at once; a streamed one at its end, as the app saw it (a truncation is a
 * failure), but a half-open probe at its head, so a long stream never
 * holds the breaker half-open. */
static void judge_answer(struct engine *e, uint64_t now_us, const struct engine_action *act)
{
	if (act->kind == ENGINE_DO_ANSWER) {
		const struct engine_answer *a = &act->u.answer;

		if (a->stream && !e->holds.probe)
			return;
		engine_judge(e, now_us, a->has_code ? &a->code : NULL,
			     a->kind == ENGINE_RELAY ? a->status : a->upstream_status);
	} else if (act->kind == ENGINE_DO_END) {
		engine_judge(e, now_us, act->u.end.has_code ? &act->u.end.code : NULL,
			     e->stream_status);
	}
}

static void dispatch(struct engine *e, const struct engine_event *ev, struct engine_action *ret)
{
	if (e->state == ENGINE_STREAMING) {
		engine_feed_streaming(e, ev, ret);
		return;
	}
	switch (ev->kind) {
	case ENGINE_EV_ROUTED:
		if (e->state == ENGINE_NEW)
			on_routed(e, ev, ret);
		break;
	case ENGINE_EV_ATTEMPT:
		if (attempting(e))
			on_attempt(e, ev, ret);
		break;
	case ENGINE_EV_HEAD:
		if (attempting(e))
			on_head(e, ev, ret);
		break;
	case ENGINE_EV_START_FAILED:
		if (attempting(e))
			on_start_failed(e, ev, ret);
		break;
	case ENGINE_EV_TIMER:
		if (ev->u.timer.which == ENGINE_TIMER_DEADLINE && e->state != ENGINE_NEW)
			on_deadline(e, ev, ret);
		else if (ev->u.timer.which == ENGINE_TIMER_WAIT && waiting(e))
			engine_on_wait_over(e, ev->now_us, ret);
		else if (ev->u.timer.which == ENGINE_TIMER_HEDGE && attempting(e))
			engine_on_hedge_timer(e, ev->now_us, ret);
		break;
	case ENGINE_EV_CLIENT_GONE:
		/* The app gave up. A request one of whose attempts already
		 * failed as the breaker counts is a failure to it: a hung
		 * upstream with apps more impatient than the budget must
		 * still open it. Any other is not judged: it has no answer. */
		if (e->last_id && retry_is_failure(e->last.outcome, e->last.status))
			engine_judge(e, ev->now_us,
				     &(enum problem_code){ PROBLEM_UPSTREAM_TIMEOUT }, 0);
		on_drop(e, ev->now_us, ret);
		break;
	case ENGINE_EV_DRAINING:
		on_drop(e, ev->now_us, ret);
		break;
	case ENGINE_EV_BODY_END:
		if (e->state != ENGINE_NEW && e->r.body_streamed)
			e->r.start_us = ev->now_us;
		break;
	}
}

void engine_feed(struct engine *e, const struct engine_event *ev, struct engine_action *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->kind = ENGINE_DO_NOTHING;
	if (e->state == ENGINE_DONE)
		return;
	dispatch(e, ev, ret);
	judge_answer(e, ev->now_us, ret);
}

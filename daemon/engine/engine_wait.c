/* The waits before an attempt (SPEC 4.6, 4.12): the cool-down of a 429,
 * then a slot of the rate limit; what changed while the request waited
 * (the breaker, the cool-down) decides again when the wait is over. */
#include "engine_internal.h"

#include <stdio.h>

/* A rate-limit slot granted for later will not be used: given back. */
void engine_unpace(struct engine *e)
{
	if (!e->holds.paced)
		return;
	e->holds.paced = 0;
	guard_pace_release(e->r.guard, &e->holds.ticket);
}

/* The rate limit (SPEC 4.12) had no slot for the attempt within the
 * queue and the budget: a first attempt is answered 429 with the time to
 * that slot; a retry is not made, and the last answer stands. */
static void rate_refused(struct engine *e, uint64_t now_us, const struct pace_ticket *t,
			 uint64_t max_wait_us, struct engine_action *act)
{
	const struct rate_limit_policy *rl = &e->r.policy->rate_limit;
	uint64_t ms = (t->slot.wait_us + 999) / 1000;
	struct engine_answer *a;

	guard_count_rate_limited(e->r.guard, t->slot.by);
	if (e->state == ENGINE_WAITING_RETRY) {
		engine_retry_dropped(e, now_us, RETRY_STOP_RATE_LIMIT);
		engine_answer_last(e, act, RETRY_STOP_RATE_LIMIT);
		return;
	}
	a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_RATE_LIMITED);
	if (t->slot.by == GCRA_BY_LEARNED)
		snprintf(a->detail, sizeof(a->detail),
			 "the quota the upstream of profile '%s' announced has no room for "
			 "%llu ms; this request could wait %llu ms",
			 e->r.profile, (unsigned long long)ms,
			 (unsigned long long)(max_wait_us / 1000));
	else
		snprintf(a->detail, sizeof(a->detail),
			 "the rate limit of %s '%s' (%u per %llu ms) has no slot for %llu ms; this "
			 "request could wait %llu ms",
			 rl->scope ? "route" : "profile", rl->scope ? rl->scope : e->r.profile,
			 rl->count, (unsigned long long)(rl->per_us / 1000), (unsigned long long)ms,
			 (unsigned long long)(max_wait_us / 1000));
	a->retry_after = engine_retry_after_ms(ms ? ms : 1);
	a->retryable = PROBLEM_RETRYABLE_YES;
}

/* Takes the attempt's rate-limit slot (SPEC 4.12), then starts it: now,
 * or after a wait in the waiting state when the slot is later and fits in
 * rate_limit.queue and the budget; else pace_refused(). */
static void pace(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	uint32_t left = engine_remaining_ms(e, now_us);
	uint64_t max_wait = (uint64_t)e->r.policy->rate_limit.queue_ms * 1000;
	struct pace_ticket t;

	if (left < RETRY_MIN_ATTEMPT_MS)
		max_wait = 0;
	else if (max_wait > (uint64_t)(left - RETRY_MIN_ATTEMPT_MS) * 1000)
		max_wait = (uint64_t)(left - RETRY_MIN_ATTEMPT_MS) * 1000;
	switch (guard_pace(e->r.guard, &e->r.policy->rate_limit, now_us, max_wait, &t)) {
	case GCRA_WAIT:
		e->holds.paced = 1;
		e->holds.ticket = t;
		act->kind = ENGINE_DO_WAIT;
		/* Rounded up: never before the slot. */
		act->u.wait_ms = (uint32_t)((t.slot.wait_us + 999) / 1000);
		return;
	case GCRA_REFUSED:
		rate_refused(e, now_us, &t, max_wait, act);
		return;
	case GCRA_GO:
	default:
		engine_start_attempt(e, now_us, act);
		return;
	}
}

/* In a waiting state: waits wait_ms (and past any cool-down of the
 * profile), then attempts; answers 429 at once when the cool-down cannot fit
 * the budget (SPEC 4.6). */
void engine_schedule(struct engine *e, uint64_t now_us, uint32_t wait_ms, struct engine_action *act)
{
	uint64_t until = guard_cooldown_until(e->r.guard);

	if (e->r.policy->rate_limit_cooldown && until > now_us + (uint64_t)wait_ms * 1000) {
		/* Rounded up: never a millisecond before the upstream's time. */
		uint64_t cool = (until - now_us + 999) / 1000;
		uint32_t left = engine_remaining_ms(e, now_us);

		if (cool + RETRY_MIN_ATTEMPT_MS > left) {
			struct engine_answer *a;

			engine_retry_dropped(e, now_us, RETRY_STOP_DEADLINE);
			a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_RATE_LIMITED);
			snprintf(a->detail, sizeof(a->detail),
				 "the upstream asked for a pause of %llu ms more; the budget has "
				 "%u ms",
				 (unsigned long long)cool, left);
			/* The cool-down may come from a route with a longer
			 * retry_after.max: this request's route says what to tell. */
			a->retry_after = engine_app_retry_after(e, engine_retry_after_ms(cool));
			a->retryable = PROBLEM_RETRYABLE_YES;
			return;
		}
		wait_ms = (uint32_t)cool;
	}
	if (wait_ms == 0) {
		pace(e, now_us, act);
		return;
	}
	act->kind = ENGINE_DO_WAIT;
	act->u.wait_ms = wait_ms;
}

/* 503 circuit_open: nothing is sent while the breaker is open (SPEC 4.8). */
void engine_answer_circuit_open(struct engine *e, struct engine_action *act,
				uint64_t retry_after_ms)
{
	struct engine_answer *a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_CIRCUIT_OPEN);

	snprintf(a->detail, sizeof(a->detail), "the circuit breaker of profile '%s' is open",
		 e->r.profile);
	a->retryable = PROBLEM_RETRYABLE_YES;
	a->retry_after = engine_retry_after_ms(retry_after_ms ? retry_after_ms : 1000);
}

/* The wait is over; the world may have changed meanwhile. */
void engine_on_wait_over(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	int paced = e->holds.paced;

	if (paced) {
		/* The rate-limit slot came: it is spent whatever follows. */
		e->holds.paced = 0;
		e->rate_wait_us += e->holds.ticket.slot.wait_us;
		guard_pace_arrived(e->r.guard, &e->holds.ticket);
	}
	if (e->state == ENGINE_WAITING_RETRY && guard_refuses(e->r.guard, now_us, e->holds.probe)) {
		/* The breaker opened while this retry waited: nothing more is sent. */
		engine_retry_dropped(e, now_us, RETRY_STOP_BREAKER);
		engine_answer_failure(e, act, 1, e->last.retry_after);
		return;
	}
	if (e->state == ENGINE_WAITING_FIRST && guard_refuses(e->r.guard, now_us, e->holds.probe)) {
		/* It opened while the first attempt waited (a cool-down, a
		 * rate-limit slot): nothing is sent. */
		engine_answer_circuit_open(e, act,
					   guard_breaker_retry_after_ms(e->r.guard, now_us));
		return;
	}
	if (paced &&
	    !(e->r.policy->rate_limit_cooldown && guard_cooldown_until(e->r.guard) > now_us)) {
		engine_start_attempt(e, now_us, act);
		return;
	}
	/* Another answer may have extended the cool-down while this one waited. */
	engine_schedule(e, now_us, 0, act);
}

/* Hedged requests (SPEC 4.10): the hedge timer, and every reason it
 * starts no hedge. */
#include "engine_internal.h"

/* 1 when the request's method may be sent twice at once: what a retry after
 * a timeout may repeat (retry.methods, unsafe: always, or with_key and a
 * key the upstream honours; a key braced minted proves nothing here). */
static int hedge_method_ok(const struct engine *e)
{
	const struct retry_policy *rp = &e->r.policy->retry;

	/* A body that streams is sent once. */
	if (e->r.body_streamed)
		return 0;
	if (e->r.method >= 0 && e->r.method < METHOD__COUNT &&
	    (rp->methods & METHOD_BIT(e->r.method)))
		return 1;
	return rp->unsafe == UNSAFE_ALWAYS ||
	       (rp->unsafe == UNSAFE_WITH_KEY && e->r.idempotency == IDEM_KEY_HONORED);
}

/* Arms the hedge timer in act when one more hedge could follow: hedging on
 * (a delay known), hedge.max not reached, the method fit, attempts left.
 * The rest is checked when it fires. */
void engine_arm_hedge(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	uint32_t ms;

	if (e->hedges >= e->r.policy->hedge.max || !hedge_method_ok(e) ||
	    e->started >= e->r.max_attempts ||
	    guard_hedge_delay(e->r.guard, now_us, &e->r.policy->hedge, &ms) < 0)
		return;
	act->hedge_ms = ms ? ms : 1;
}

/* Why no hedge may start at now_us, or ENGINE_HEDGE_GO with *token taken
 * from the budget: last, only when everything else holds. The hedge keeps
 * it; it goes back only when the hedge sends nothing. */
static enum engine_hedge_stop hedge_check(struct engine *e, uint64_t now_us,
					  struct guard_token *token)
{
	struct pace_ticket slot;
	uint32_t ms;

	if (guard_hedge_delay(e->r.guard, now_us, &e->r.policy->hedge, &ms) < 0)
		return ENGINE_HEDGE_OFF;
	if (e->hedges >= e->r.policy->hedge.max || e->nrunning >= ENGINE_MAX_INFLIGHT)
		return ENGINE_HEDGE_MAX;
	if (!hedge_method_ok(e))
		return ENGINE_HEDGE_METHOD;
	if (e->started >= e->r.max_attempts)
		return ENGINE_HEDGE_ATTEMPTS;
	if (e->holds.probe || guard_refuses(e->r.guard, now_us, 0))
		return ENGINE_HEDGE_BREAKER;
	if (guard_cooldown_until(e->r.guard) > now_us)
		return ENGINE_HEDGE_COOLDOWN;
	if (engine_remaining_ms(e, now_us) < RETRY_MIN_ATTEMPT_MS)
		return ENGINE_HEDGE_DEADLINE;
	/* A hedge spends the quota too, and never waits for it. */
	if (guard_pace(e->r.guard, &e->r.policy->rate_limit, now_us, 0, &slot) != GCRA_GO)
		return ENGINE_HEDGE_RATE_LIMIT;
	if (!guard_try_withdraw(e->r.guard, now_us, token)) {
		guard_pace_release(e->r.guard, &slot);
		return ENGINE_HEDGE_BUDGET;
	}
	return ENGINE_HEDGE_GO;
}

/* The hedge delay passed without an answer: one more attempt beside the
 * ones in flight, when every limit allows. */
void engine_on_hedge_timer(struct engine *e, uint64_t now_us, struct engine_action *act)
{
	struct guard_token token = { 0 };

	e->hedge_stop = hedge_check(e, now_us, &token);
	if (e->hedge_stop == ENGINE_HEDGE_GO) {
		engine_start_attempt_as(e, now_us, act, 1);
		/* Spent once the hedge is sent; back if it sends nothing. */
		e->running[e->nrunning - 1].token = token;
	}
}

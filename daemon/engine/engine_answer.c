/* The answers the engine builds (engine_answer.c): relays and problems
 * with their detail, status and Retry-After, from the last attempt kept in
 * struct engine. */
#include "engine.h"
#include "engine_internal.h"

#include <stdio.h>
#include <string.h>

/* The Retry-After braced passes on: never longer than retry_after.max, the
 * longest pause braced itself honours (and holds a profile cooled for), so an
 * upstream cannot park the app for days through braced. None stays none. */
struct retry_after engine_app_retry_after(const struct engine *e, struct retry_after ra)
{
	uint64_t max = e->r.policy->retry.retry_after_max_ms;

	if (ra.set && ra.ms > max)
		ra.ms = max;
	return ra;
}

struct retry_after engine_retry_after_ms(uint64_t ms)
{
	return (struct retry_after){ .set = 1, .ms = ms };
}

static enum problem_retryable retryable_if(int yes)
{
	return yes ? PROBLEM_RETRYABLE_YES : PROBLEM_RETRYABLE_NO;
}

struct engine_answer *engine_answer_of(struct engine *e, struct engine_action *act,
				       enum engine_answer_kind kind, enum problem_code code)
{
	struct engine_answer *a = &act->u.answer;

	act->kind = ENGINE_DO_ANSWER;
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->has_code = 1;
	a->code = code;
	engine_set_state(e, ENGINE_DONE);
	return a;
}

/* Relays the last upstream answer: a success (code NULL) or an upstream
 * error passed through under *code; ra is its Retry-After whatever the
 * status. */
void engine_answer_relay(struct engine *e, struct engine_action *act, const enum problem_code *code,
			 struct retry_after ra)
{
	struct engine_answer *a =
	    engine_answer_of(e, act, ENGINE_RELAY, code ? *code : PROBLEM_INTERNAL);

	a->has_code = code != NULL;
	a->status = e->last.status;
	a->retry_after = engine_app_retry_after(e, ra);
}

/* The total budget is spent: 504 with the story so far. */
void engine_answer_budget_spent(struct engine *e, struct engine_action *act)
{
	struct engine_answer *a =
	    engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_UPSTREAM_TIMEOUT);

	snprintf(a->detail, sizeof(a->detail), "total budget of %u ms spent after %u attempt%s",
		 e->r.total_ms, e->attempts, e->attempts == 1 ? "" : "s");
	a->retryable = PROBLEM_RETRYABLE_YES;
}

/* The final answer after the last attempt, given why braced stopped. */
void engine_answer_failure(struct engine *e, struct engine_action *act, int retryable,
			   struct retry_after ra)
{
	static const char *const timeout_names[] = {
		[LIMIT_NONE] = "attempt", [LIMIT_CONNECT] = "connect", [LIMIT_READ] = "read",
		[LIMIT_WRITE] = "write",  [LIMIT_ATTEMPT] = "attempt",
	};
	const struct engine_last *l = &e->last;
	const struct timeouts *t = &e->r.policy->timeouts;
	struct engine_answer *a;

	switch (l->end) {
	case ATTEMPT_OK:
		if (l->outcome == OUTCOME_SCHEMA) {
			a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_SCHEMA_VIOLATION);
			a->upstream_status = l->status;
			snprintf(a->detail, sizeof(a->detail),
				 "the upstream's %d answer failed the response schema (%zu "
				 "violation%s)",
				 l->status, l->violations, l->violations == 1 ? "" : "s");
			a->violations = 1;
			break;
		}
		/* The upstream asked for more time than braced may wait. */
		a = engine_answer_of(e, act, ENGINE_PROBLEM,
				     l->status == 429 && ra.set ? PROBLEM_RATE_LIMITED
								: PROBLEM_UPSTREAM_STATUS);
		a->status = l->status;
		a->upstream_status = l->status;
		a->upstream_body = 1;
		snprintf(a->detail, sizeof(a->detail), "upstream answered %d after %u attempt%s",
			 l->status, e->attempts, e->attempts == 1 ? "" : "s");
		break;
	case ATTEMPT_TIMEOUT: {
		enum attempt_limit k = l->timeout;
		uint32_t ms = k == LIMIT_CONNECT ? t->connect_ms
			      : k == LIMIT_READ  ? t->read_ms
			      : k == LIMIT_WRITE ? t->write_ms
						 : t->attempt_ms;

		a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_UPSTREAM_TIMEOUT);
		snprintf(a->detail, sizeof(a->detail), "%s timeout of %u ms reached on attempt %u",
			 timeout_names[k], ms, e->attempts);
		break;
	}
	case ATTEMPT_TOO_LARGE:
		a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_RESPONSE_TOO_LARGE);
		snprintf(a->detail, sizeof(a->detail),
			 "upstream response is larger than %llu bytes",
			 (unsigned long long)e->r.max_response_body);
		break;
	case ATTEMPT_POOL_TIMEOUT:
		a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_OVERLOADED);
		snprintf(a->detail, sizeof(a->detail),
			 "no upstream connection became free within %u ms (pool of %u)", t->pool_ms,
			 e->r.policy->pool_max_connections);
		break;
	case ATTEMPT_CONNECT:
	case ATTEMPT_RESET:
	case ATTEMPT_INTERNAL:
	default:
		a = engine_answer_of(e, act, ENGINE_PROBLEM, PROBLEM_UPSTREAM_UNAVAILABLE);
		snprintf(a->detail, sizeof(a->detail), "%s after %u attempt%s: %s",
			 l->end == ATTEMPT_CONNECT ? "cannot connect to the upstream"
						   : "upstream connection failed",
			 e->attempts, e->attempts == 1 ? "" : "s",
			 l->error[0] ? l->error : "no detail");
		break;
	}
	a->retryable = retryable_if(retryable);
	a->retry_after = engine_app_retry_after(e, ra);
}

/* Private to the engine's modules (engine.c, engine_answer.c,
 * engine_stream.c): the one state setter, the answers, the streamed end. Nothing outside engine/ includes it. */
#ifndef BRACED_ENGINE_INTERNAL_H
#define BRACED_ENGINE_INTERNAL_H

#include "engine.h"

/* The only place the state changes; the shell logs the change (request.c). */
static inline void engine_set_state(struct engine *e, enum engine_state s)
{
	e->state = s;
}

/* The Retry-After braced passes on: never longer than retry_after.max. */
struct retry_after engine_app_retry_after(const struct engine *e, struct retry_after ra);
struct retry_after engine_retry_after_ms(uint64_t ms);

/* act answers with a fresh answer of kind under code (the request is done);
 * the caller fills the rest. */
struct engine_answer *engine_answer_of(struct engine *e, struct engine_action *act,
				       enum engine_answer_kind kind, enum problem_code code);
/* Relays the last upstream answer: a success (code NULL) or an upstream
 * error passed through under *code; ra is its Retry-After. */
void engine_answer_relay(struct engine *e, struct engine_action *act, const enum problem_code *code,
			 struct retry_after ra);
/* The total budget is spent: 504 with the story so far. */
void engine_answer_budget_spent(struct engine *e, struct engine_action *act);
/* The final answer after the last attempt, given why braced stopped. */
void engine_answer_failure(struct engine *e, struct engine_action *act, int retryable,
			   struct retry_after ra);

/* The outcome of an attempt's result (SPEC 4.2). */
enum outcome engine_outcome_of(const struct engine *e, const struct engine_result *res);
/* The ok head whose body still flowed is recorded in the guard as o (the
 * first record of the attempt): OUTCOME_OK when its body came whole or was
 * not wanted, what cut it otherwise. */
void engine_record_pending(struct engine *e, uint64_t now_us, enum outcome o);
/* ENGINE_STREAMING takes the streamed attempt's end, the stream timer, the
 * app leaving and shutdown (engine_stream.c). */
void engine_feed_streaming(struct engine *e, const struct engine_event *ev,
			   struct engine_action *act);

/* ---- between engine.c, engine_wait.c and engine_hedge.c ---- */

/* Starts an attempt (hedge: beside those in flight) with its endpoint. */
void engine_start_attempt_as(struct engine *e, uint64_t now_us, struct engine_action *act,
			     int hedge);
void engine_start_attempt(struct engine *e, uint64_t now_us, struct engine_action *act);
/* The retry waiting with its budget token will not start: the token goes
 * back, counted as refused for reason. */
void engine_retry_dropped(struct engine *e, uint64_t now_us, enum retry_stop reason);
/* The last answer, e->last, is the request's: no retry for stop. */
void engine_answer_last(struct engine *e, struct engine_action *act, enum retry_stop stop);
/* Arms the hedge timer after an attempt started, when a hedge may follow. */
void engine_arm_hedge(struct engine *e, uint64_t now_us, struct engine_action *act);

/* engine_wait.c: waits wait_ms (and past any cool-down), takes a rate-limit
 * slot, then attempts; or answers 429. */
void engine_schedule(struct engine *e, uint64_t now_us, uint32_t wait_ms,
		     struct engine_action *act);
/* A wait is over (ENGINE_TIMER_WAIT). */
void engine_on_wait_over(struct engine *e, uint64_t now_us, struct engine_action *act);
/* A rate-limit slot granted for later will not be used: given back. */
void engine_unpace(struct engine *e);
/* 503 circuit_open, nothing sent. */
void engine_answer_circuit_open(struct engine *e, struct engine_action *act,
				uint64_t retry_after_ms);

/* engine_hedge.c: the hedge timer fired. */
void engine_on_hedge_timer(struct engine *e, uint64_t now_us, struct engine_action *act);

#endif

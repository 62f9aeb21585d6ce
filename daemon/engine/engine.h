/* The life of one proxied request as a state machine without I/O: fed
 * events (routed, attempt finished, timer fired, client gone, draining)
 * with the time and the random source passed in, it returns the action to
 * carry out (start an attempt, wait, answer, cancel). Up to 1 + hedge.max
 * attempts run at once (hedging, SPEC 4.10), each known by an id. It holds
 * the attempt history and counts through the profile's guard; request.c
 * does the I/O. */
#ifndef BRACED_ENGINE_H
#define BRACED_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "attempt.h"
#include "config.h"
#include "guard.h"
#include "problem.h"
#include "retry.h"
#include "rng.h"

/* Attempts a request can make (retry.attempts is at most 10; hedges count). */
#define ENGINE_MAX_HISTORY 10
/* Attempts in flight at once: the first and its hedges. */
#define ENGINE_MAX_INFLIGHT (1 + POLICY_MAX_HEDGES)
/* Bytes of an attempt's error text kept for the answer. */
#define ENGINE_ERROR_MAX 256
/* Retry-After of a 503 overloaded for want of a connection (the pool or
 * the adaptive concurrency limit). */
#define ENGINE_OVERLOADED_RETRY_AFTER_MS 1000
/* Bytes of an answer's detail. */
#define ENGINE_DETAIL_MAX 512

/* Where a request is in its life. Every place is a state, so no flag beside
 * it says where the request is:
 * - a wait before the first attempt and a wait before a retry differ in
 *   what they hold: a retry waits with its budget token (e->token), spent
 *   when the retry starts and given back when it does not;
 * - attempts in flight differ once one of them has ended with an answer
 *   that does not settle the request (e->last) while others still run.
 * What a request holds in its guard whatever its state (the in-flight
 * count, a half-open probe slot) is kept apart in struct engine_holds, and
 * whether the last attempt's pool wait was cut by the budget is a fact
 * about that start (e->pool_wait_cut), not a place. */
enum engine_state {
	/* read, being checked by the front: no event yet */
	ENGINE_NEW,
	/* before the first attempt: the profile's rate-limit cool-down */
	ENGINE_WAITING_FIRST,
	/* before a retry (backoff, Retry-After, cool-down), holding the
	 * retry's budget token */
	ENGINE_WAITING_RETRY,
	/* attempts (one, or more when hedged) wait for a connection or run;
	 * none has ended yet in this round */
	ENGINE_ATTEMPT,
	/* as ENGINE_ATTEMPT, and one has ended with an answer that is not
	 * acceptable: e->last holds it, and it decides when the others bring
	 * nothing better */
	ENGINE_ATTEMPT_UNDECIDED,
	/* the head of attempt e->streaming_id was relayed and its body flows
	 * to the app: nothing is retried any more, only its end is awaited
	 * (ENGINE_DO_END) */
	ENGINE_STREAMING,
	/* answered or dropped: takes no more events */
	ENGINE_DONE,
};

enum engine_timer {
	ENGINE_TIMER_WAIT,     /* the wait of the last ENGINE_DO_WAIT is over */
	ENGINE_TIMER_DEADLINE, /* the total budget is spent */
	ENGINE_TIMER_HEDGE,    /* the hedge timer of the last action's hedge_ms fired */
	ENGINE_TIMER_STREAM,   /* the stream timer of the relay's stream_ms fired */
};

/* Why the hedge timer started no hedge (engine_hedge_stop()). */
enum engine_hedge_stop {
	ENGINE_HEDGE_GO,         /* a hedge started (or none was asked yet) */
	ENGINE_HEDGE_OFF,        /* hedge.delay is 0, or pNN without enough samples */
	ENGINE_HEDGE_MAX,        /* hedge.max hedges already started */
	ENGINE_HEDGE_METHOD,     /* the method may not be retried: not in retry.methods
				* and no idempotency key (or unsafe: never) */
	ENGINE_HEDGE_ATTEMPTS,   /* Brace-Max-Attempts (or retry.attempts) reached */
	ENGINE_HEDGE_BREAKER,    /* the breaker is open or half-open */
	ENGINE_HEDGE_COOLDOWN,   /* a rate-limit cool-down holds */
	ENGINE_HEDGE_DEADLINE,   /* the total budget has no room for another attempt */
	ENGINE_HEDGE_BUDGET,     /* the retry budget gave no token */
	ENGINE_HEDGE_RATE_LIMIT, /* the rate limit has no slot free now (SPEC 4.12) */
};

enum engine_event_kind {
	ENGINE_EV_ROUTED,  /* accepted by the front; starts the budget */
	ENGINE_EV_ATTEMPT, /* attempt u.attempt.id finished */
	/* attempt u.attempt.id got its final head, its body not complete:
	 * u.attempt as for an end ATTEMPT_OK, elapsed_us up to the head */
	ENGINE_EV_HEAD,
	ENGINE_EV_START_FAILED, /* the backend could not start attempt u.attempt.id */
	ENGINE_EV_TIMER,        /* a timer fired */
	ENGINE_EV_CLIENT_GONE,  /* the app left */
	ENGINE_EV_DRAINING,     /* shutdown's grace is over: drop the request */
	/* the app's streamed request body ended: the total budget counts from
	 * now (SPEC 4.1: from the moment the request was read whole) */
	ENGINE_EV_BODY_END,
};

struct engine_routed {
	const struct policy *policy;      /* borrowed until the engine is released */
	struct guard *guard;              /* the profile's; borrowed likewise */
	const char *profile;              /* name, borrowed likewise */
	int method;                       /* enum http_method */
	enum idempotency_key idempotency; /* what the request's key proves */
	uint32_t total_ms;                /* budget after Brace-Timeout-Ms */
	uint32_t max_attempts;            /* after Brace-Max-Attempts */
	uint64_t start_us;          /* when the request was read: the budget counts from there */
	uint64_t max_response_body; /* limits.max_response_body, for the detail */
	/* The request body streams upstream and is not held: no hedge, and no
	 * retry but after a connect failure with nothing of it sent. 0 (a
	 * held or no body) is every request's so far. */
	int body_streamed;
};

struct engine_result {
	uint32_t id; /* the attempt's, from its engine_start */
	enum attempt_end end;
	enum attempt_limit timeout;     /* ATTEMPT_TIMEOUT */
	int status;                     /* ATTEMPT_OK: the HTTP status */
	struct retry_after retry_after; /* the answer's Retry-After, parsed */
	int schema_failed;              /* failed the response schema in enforce mode */
	size_t violations;              /* how many, when schema_failed */
	uint64_t elapsed_us;            /* the attempt, its pool wait included */
	uint64_t queued_us;             /* of elapsed_us, the wait for a pool connection */
	const char *error;              /* the backend's message or ""; copied */
	/* ENGINE_EV_HEAD: the shell holds this answer whole (a schema checks
	 * it): no decision before its end, which comes as ENGINE_EV_ATTEMPT. */
	int hold;
	/* Bytes of a streamed request body sent in this attempt. */
	uint64_t body_sent;
	/* Ids of the other attempts still waiting for a connection: cut
	 * without being counted when this answer wins. */
	uint32_t queued[ENGINE_MAX_INFLIGHT];
	unsigned nqueued;
};

struct engine_event {
	enum engine_event_kind kind;
	uint64_t now_us; /* monotonic */
	union {
		struct engine_routed routed;  /* ENGINE_EV_ROUTED */
		struct engine_result attempt; /* ENGINE_EV_ATTEMPT, ENGINE_EV_HEAD */
		struct {
			enum engine_timer which;
			/* DEADLINE: ids of attempts still waiting for a connection */
			uint32_t queued[ENGINE_MAX_INFLIGHT];
			unsigned nqueued;
		} timer; /* ENGINE_EV_TIMER */
	} u;
};

enum engine_action_kind {
	ENGINE_DO_NOTHING, /* wait for the next event */
	ENGINE_DO_START,   /* start an attempt with do.start */
	ENGINE_DO_WAIT,    /* arm the wait timer for do.wait_ms, then send ENGINE_TIMER_WAIT */
	ENGINE_DO_ANSWER,  /* send do.answer, then release the request (a
			    * streamed relay: once ENGINE_DO_END came) */
	ENGINE_DO_DROP,    /* close without an answer (client gone, shutdown) */
	ENGINE_DO_END,     /* the streamed answer ends as do.end says; release the request */
};

/* Per-attempt timeouts already cut to what is left of the budget. */
struct engine_start {
	uint32_t connect_ms, read_ms, write_ms, pool_ms;
	uint32_t attempt_ms; /* 0: none (the deadline bounds it) */
	int probe;           /* the attempt is a half-open breaker probe */
	uint32_t id;         /* names the attempt in its result and in cancels */
	int hedge;           /* a hedge: runs beside the attempts in flight */
	/* The endpoint to dial (guard_endpoint_pick(), SPEC 4.11), 0 for
	 * none: the caller ends it with guard_endpoint_done() once the
	 * attempt's call is over, however it ends. */
	uint32_t endpoint;
	uint64_t picked_us; /* when it was picked: guard_endpoint_done() needs it */
};

enum engine_answer_kind {
	ENGINE_RELAY,   /* the last upstream answer as it was sent */
	ENGINE_PROBLEM, /* an application/problem+json body */
};

struct engine_answer {
	enum engine_answer_kind kind;
	/* The answer's Brace-Error: every PROBLEM has one, a RELAY only when
	 * it passes an upstream error through; a success relayed has none. */
	int has_code;
	enum problem_code code;
	int status; /* RELAY: the upstream's; PROBLEM: 0 for the code's own */
	/* Retry-After to tell the app, clamped to retry_after.max where it
	 * came from the upstream. */
	struct retry_after retry_after;
	/* PROBLEM only: */
	enum problem_retryable retryable;
	int upstream_status; /* 0 none */
	int upstream_body;   /* 1: repeat the start of the last answer's body */
	int violations;      /* 1: list the last answer's schema violations */
	char detail[ENGINE_DETAIL_MAX];
	/* The attempt whose answer this is (RELAY, and a PROBLEM built from
	 * an upstream answer); 0 when none. */
	uint32_t id;
	/* RELAY only: attempt id's body is still coming: relay the head now
	 * and stream the body (ENGINE_STREAMING), then wait for ENGINE_DO_END.
	 * 0: the body is whole, the request is over once sent. */
	int stream;
};

/* How a streamed answer ended (ENGINE_DO_END). */
enum engine_end_kind {
	ENGINE_END_COMPLETE,       /* the whole body was relayed */
	ENGINE_END_RESET_MID_BODY, /* the upstream failed mid-body: the app sees the truncation */
	ENGINE_END_STREAM_TIMEOUT, /* timeouts.stream ended the body */
	ENGINE_END_CLIENT_GONE,    /* the app left */
	ENGINE_END_SHUTDOWN,       /* shutdown's grace is over */
};

struct engine_end {
	enum engine_end_kind kind;
	/* Counted as the request's answer (guard_count_answer()) under code,
	 * NULL (has_code 0) for a success; not counted at all when count is 0
	 * (the app left, shutdown), as a dropped request. */
	int count;
	int has_code;
	enum problem_code code;
};

struct engine_action {
	enum engine_action_kind kind;
	/* Cancel these attempts first (their connections close): cancel ids. */
	int cancel;
	uint32_t cancel_ids[ENGINE_MAX_INFLIGHT];
	/* The total budget cut them: timeouts, for their endpoints too. */
	int cancel_timeout;
	/* > 0: (re)arm the hedge timer for hedge_ms, then send ENGINE_TIMER_HEDGE. */
	uint32_t hedge_ms;
	/* A streamed RELAY: > 0 arms the stream timer for stream_ms, then
	 * send ENGINE_TIMER_STREAM. */
	uint32_t stream_ms;
	/* Attempts whose head came and whose body is not wanted: keep the
	 * start of the body a later problem may repeat, then cancel them. */
	int discard;
	uint32_t discard_ids[ENGINE_MAX_INFLIGHT];
	union {
		struct engine_start start;
		uint32_t wait_ms;
		struct engine_answer answer;
		struct engine_end end;
	} u;
};

/* What is kept of the last attempt to answer with after a wait. */
struct engine_last {
	enum outcome outcome;
	enum attempt_end end;
	enum attempt_limit timeout;
	int status;
	struct retry_after retry_after;       /* of a 429 or 503, else none */
	struct retry_after relay_retry_after; /* the answer's Retry-After whatever the status */
	size_t violations;
	uint64_t body_sent; /* of a streamed request body */
	char error[ENGINE_ERROR_MAX];
};

/* One attempt in flight. */
struct engine_running {
	uint32_t id;
	uint64_t start_us;
	int hedge;
	char endpoint[PROBLEM_ENDPOINT_MAX]; /* "ADDR:PORT", "" for none */
	/* A hedge's budget token: given back when the hedge sends nothing. */
	struct guard_token token;
};

/* What a request holds in its guard apart from its state: engine_release()
 * gives back what is still held. */
struct engine_holds {
	int inflight; /* counted in by guard_admit(): guard_leave() is owed */
	int probe;    /* a half-open probe slot, until the request is judged */
	/* A rate-limit slot granted for later (SPEC 4.12): the request waits
	 * for it in a waiting state; given back when its attempt never starts. */
	int paced;
	struct pace_ticket ticket;
};

/* Embedded in the request; fields are the engine's own (read them through
 * the accessors below). */
struct engine {
	enum engine_state state;
	struct engine_routed r;
	struct rng *rng;
	struct engine_running running[ENGINE_MAX_INFLIGHT];
	unsigned nrunning;
	uint32_t next_id;
	uint32_t started;        /* attempts started, hedges included */
	uint32_t hedges;         /* hedges started */
	uint64_t group_start_us; /* when the attempts in flight began to overlap */
	unsigned group_size;     /* attempts started since then */
	enum engine_hedge_stop hedge_stop;
	uint64_t wait_since_us; /* end of the last attempt (or the start) */
	uint32_t attempts;
	uint64_t upstream_us;
	uint32_t prev_wait_ms; /* last backoff, for decorrelated jitter */
	/* ENGINE_ATTEMPT_UNDECIDED: when the attempt that left e->last ended. */
	uint64_t undecided_us;
	/* The last attempt started had its pool wait cut to what was left of
	 * the budget (below timeouts.pool): a fact about that start, read when
	 * its pool wait ends the request. */
	int pool_wait_cut;
	struct engine_holds holds;
	/* The retry's budget token: held in ENGINE_WAITING_RETRY only; spent
	 * when the retry starts, given back when it does not. */
	struct guard_token token;
	struct engine_last last;
	/* The attempt e->last came from (its answer's id). */
	uint32_t last_id;
	/* ENGINE_ATTEMPT_UNDECIDED: e->last came from a head, and attempt
	 * last_id's body is still coming (paused at the shell's window). */
	int last_headed;
	/* ENGINE_STREAMING: the attempt whose body flows to the app, and the
	 * code its answer is counted under at the end. */
	uint32_t streaming_id;
	/* A head judged ok is counted in the guard only once its body has
	 * come whole or been cut (or was not taken): each attempt is counted
	 * once, as it ended (record_pending()). */
	struct {
		int set;
	} pending;
	int stream_has_code;
	enum problem_code stream_code;
	int stream_status; /* the streamed answer's HTTP status */
	/* The breaker has judged this request (engine_judge()). */
	int judged;
	struct history_entry history[ENGINE_MAX_HISTORY];
	/* The endpoints attempts went to, for retry_elsewhere. */
	uint32_t tried[ENGINE_MAX_HISTORY];
	unsigned ntried;
	/* Time waited for rate-limit slots (SPEC 4.12), for the access log. */
	uint64_t rate_wait_us;
};

/* Initialises e (state ENGINE_NEW); rng (borrowed) draws the jitter. */
void engine_init(struct engine *e, struct rng *rng);
/* Gives back what the request still holds in its guard (in-flight count,
 * an unused probe, an unused retry token). Safe in every state, once. */
void engine_release(struct engine *e, uint64_t now_us);

/* Feeds one event and fills *ret with the action to carry out. Events
 * that make no sense in the current state (a timer after the answer)
 * return ENGINE_DO_NOTHING. */
void engine_feed(struct engine *e, const struct engine_event *ev, struct engine_action *ret);

enum engine_state engine_state(const struct engine *e);
/* "new", "waiting", "attempt", "streaming", "done" (for logs): the states of one phase
 * share its name. */
const char *engine_state_name(enum engine_state s);
/* Milliseconds left of the total budget at now_us (0 before ENGINE_EV_ROUTED). */
uint32_t engine_remaining_ms(const struct engine *e, uint64_t now_us);
/* Attempts made (an attempt cut by the client leaving counts). */
uint32_t engine_attempts(const struct engine *e);
/* Time spent in attempts, in milliseconds (rounded down) and microseconds. */
uint32_t engine_upstream_ms(const struct engine *e);
uint64_t engine_upstream_us(const struct engine *e);
/* Hedges started. */
uint32_t engine_hedges(const struct engine *e);
/* Milliseconds the request waited for rate-limit slots (SPEC 4.12). */
uint32_t engine_rate_wait_ms(const struct engine *e);
/* Why the last hedge timer started no hedge (ENGINE_HEDGE_GO when it did). */
enum engine_hedge_stop engine_hedge_stop(const struct engine *e);
/* The history of the attempts made (borrowed) and its length. */
const struct history_entry *engine_history(const struct engine *e, size_t *ret_n);

#endif

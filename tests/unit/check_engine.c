/* The request engine without a socket or an event base: scripted events
 * (routed, attempt results, timers, the app leaving, draining) against the
 * action expected after each one, covering the retry decisions of SPEC 4.3,
 * the waits of 4.4-4.6, the breaker of 4.8 and the codes of SPEC 5 that the
 * engine answers with. Also the guard's verbs (budget token, snapshot). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "config.h"
#include "engine.h"
#include "guard.h"
#include "problem.h"
#include "retry.h"
#include "rng.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Every script starts here on the monotonic clock (µs). */
#define T0_US 1000000000ULL
#define MAX_BODY 1048576

/* ==== the script runner ================================================= */

enum step_kind {
	S_NONE, /* end of the script */
	S_ROUTED,
	S_END,            /* an attempt finished */
	S_WAIT_OVER,      /* the wait timer fired */
	S_DEADLINE,       /* the total budget ran out during a running attempt or a wait */
	S_DEADLINE_QUEUED, /* ... while the attempt still waits for a connection */
	S_GONE,
	S_DRAIN,
	S_START_FAILED,
	S_SIDE_FAIL, /* another request of the profile records a connect failure */
	S_SIDE_COOL, /* another request's 429 cools the profile down for ra ms */
};

struct expect {
	enum engine_action_kind kind;
	int cancel;
	uint32_t wait; /* DO_WAIT */
	int probe;     /* DO_START */
	int relay;     /* DO_ANSWER: 1 relay, 0 problem */
	int code;      /* DO_ANSWER */
	int status;    /* DO_ANSWER: 0 for the code's own */
	int retryable; /* DO_ANSWER: -1 absent */
	int64_t ra;    /* DO_ANSWER: Retry-After told to the app, -1 none */
};

struct step {
	enum step_kind k;
	uint32_t at; /* ms after T0 */
	enum attempt_end end;
	int status;
	int64_t ra; /* the answer's Retry-After in ms, -1 none */
	int schema; /* failed the response schema */
	enum attempt_limit tk;
	struct expect x;
};

#define ROUTED(t, xx) { S_ROUTED, t, 0, 0, -1, 0, 0, xx }
#define ANS(t, st, xx) { S_END, t, ATTEMPT_OK, st, -1, 0, 0, xx }
#define ANS_RA(t, st, r, xx) { S_END, t, ATTEMPT_OK, st, r, 0, 0, xx }
#define BAD_SCHEMA(t, st, xx) { S_END, t, ATTEMPT_OK, st, -1, 1, 0, xx }
#define FAIL(t, e, xx) { S_END, t, e, 0, -1, 0, 0, xx }
#define TMO(t, kind, xx) { S_END, t, ATTEMPT_TIMEOUT, 0, -1, 0, kind, xx }
#define WAIT_OVER(t, xx) { S_WAIT_OVER, t, 0, 0, -1, 0, 0, xx }
#define DEADLINE(t, xx) { S_DEADLINE, t, 0, 0, -1, 0, 0, xx }
#define DEADLINE_QUEUED(t, xx) { S_DEADLINE_QUEUED, t, 0, 0, -1, 0, 0, xx }
#define GONE(t, xx) { S_GONE, t, 0, 0, -1, 0, 0, xx }
#define DRAIN(t, xx) { S_DRAIN, t, 0, 0, -1, 0, 0, xx }
#define START_FAILED(t, xx) { S_START_FAILED, t, 0, 0, -1, 0, 0, xx }
#define SIDE_FAIL(t) { S_SIDE_FAIL, t, 0, 0, -1, 0, 0, { 0 } }
#define SIDE_COOL(t, ms) { S_SIDE_COOL, t, 0, 0, ms, 0, 0, { 0 } }

#define X_NOTHING { ENGINE_DO_NOTHING, 0, 0, 0, 0, 0, 0, 0, 0 }
#define X_START { ENGINE_DO_START, 0, 0, 0, 0, 0, 0, 0, 0 }
#define X_PROBE { ENGINE_DO_START, 0, 0, 1, 0, 0, 0, 0, 0 }
#define X_WAIT(ms) { ENGINE_DO_WAIT, 0, ms, 0, 0, 0, 0, 0, 0 }
#define X_RELAY(c, st, r) { ENGINE_DO_ANSWER, 0, 0, 0, 1, c, st, -1, r }
#define X_PROBLEM(c, st, retry, r) { ENGINE_DO_ANSWER, 0, 0, 0, 0, c, st, retry, r }
#define X_CUT(c, st, retry, r) { ENGINE_DO_ANSWER, 1, 0, 0, 0, c, st, retry, r }
#define X_DROP(cancel) { ENGINE_DO_DROP, cancel, 0, 0, 0, 0, 0, 0, 0 }

/* A relay without Brace-Error (a success), in the code column. */
#define OK (-1)
#define UPSTREAM_STATUS PROBLEM_UPSTREAM_STATUS
#define RATE_LIMITED PROBLEM_RATE_LIMITED
#define UNAVAILABLE PROBLEM_UPSTREAM_UNAVAILABLE
#define SCHEMA PROBLEM_SCHEMA_VIOLATION
#define TOO_LARGE PROBLEM_RESPONSE_TOO_LARGE
#define CIRCUIT_OPEN PROBLEM_CIRCUIT_OPEN
#define OVERLOADED PROBLEM_OVERLOADED
#define TIMEOUT PROBLEM_UPSTREAM_TIMEOUT
#define INTERNAL PROBLEM_INTERNAL

#define KEY_MINTED 2

struct engine_case {
	const char *name;
	void (*tweak)(struct policy *p);
	int method;
	int key;           /* the request's idempotency key: 0 none, 1 honoured, KEY_MINTED */
	uint32_t total_ms; /* 0: the policy's */
	uint32_t max_attempts; /* 0: the policy's */
	struct step steps[12];
	/* after the script: */
	uint32_t attempts;
	uint64_t retries;                /* started */
	enum retry_stop suppressed;      /* RETRY_GO: none expected */
	uint32_t budget_retries;         /* tokens still withdrawn in the budget window */
	const char *detail;              /* a part of the last answer's detail, or NULL */
};

/* ---- policy tweaks ---- */

static void transport_none(struct policy *p)
{
	p->retry.transport = 0;
}
static void unsafe_never(struct policy *p)
{
	p->retry.unsafe = UNSAFE_NEVER;
}
static void unsafe_always(struct policy *p)
{
	p->retry.unsafe = UNSAFE_ALWAYS;
}
static void budget_empty(struct policy *p)
{
	p->retry.budget_ratio = 0;
	p->retry.budget_min_per_second = 0;
}
static void passthrough(struct policy *p)
{
	p->upstream_errors = UPSTREAM_ERRORS_PASSTHROUGH;
}
static void schema_retry(struct policy *p)
{
	p->retry.on_schema_violation = 1;
}
static void breaker_1(struct policy *p)
{
	p->breaker.min_requests = 1;
	p->breaker.open_for_ms = 1000;
}
static void breaker_2(struct policy *p)
{
	p->breaker.min_requests = 2;
}
static void no_honor(struct policy *p)
{
	p->retry.retry_after_honor = 0;
}
static void no_cooldown(struct policy *p)
{
	p->rate_limit_cooldown = 0;
}

/* clang-format off */
static const struct engine_case cases[] = {
	/* ---- successes and Retry-After waits (SPEC 4.5) ---- */
	{ "ok at once", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(10, 200, X_RELAY(OK, 200, -1)) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "503 with Retry-After 2 waits 2000, then ok", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 503, 2000, X_WAIT(2000)),
		WAIT_OVER(2010, X_START),
		ANS(2020, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "Retry-After shorter than the backoff waits the backoff", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 503, 100, X_WAIT(200)),
		WAIT_OVER(210, X_START),
		ANS(220, 204, X_RELAY(OK, 204, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "Retry-After not honoured: the backoff alone", no_honor, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 503, 2000, X_WAIT(200)),
		WAIT_OVER(210, X_START),
		ANS(220, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "a success's Retry-After is clamped to retry_after.max", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 200, 99999000, X_RELAY(OK, 200, 30000)) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "429 with Retry-After 1 cools down and waits 1000", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 429, 1000, X_WAIT(1000)),
		WAIT_OVER(1010, X_START),
		ANS(1020, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },

	/* ---- outcome kinds x retriable or not (4.2, 4.3 first condition) ---- */
	{ "connect retried", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_CONNECT, X_WAIT(200)),
		WAIT_OVER(205, X_START),
		ANS(210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "reset retried", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_RESET, X_WAIT(200)),
		WAIT_OVER(205, X_START),
		ANS(210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "timeout retried", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		TMO(4000, LIMIT_READ, X_WAIT(200)),
		WAIT_OVER(4200, X_START),
		ANS(4210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	/* a connect timeout is outcome connect: nothing was sent (4.2) */
	{ "connect timeout retried for a POST under unsafe: never", unsafe_never, METHOD_POST, 0, 0, 0, {
		ROUTED(0, X_START),
		TMO(2000, LIMIT_CONNECT, X_WAIT(200)),
		WAIT_OVER(2200, X_START),
		ANS(2210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	/* a key braced minted: retried only after answers that show the
	 * upstream did not act (SPEC 3) */
	{ "minted key: POST read timeout not retried", NULL, METHOD_POST, KEY_MINTED, 0, 0, {
		ROUTED(0, X_START),
		TMO(4000, LIMIT_READ, X_PROBLEM(TIMEOUT, 0, 1, -1)) },
	  1, 0, RETRY_STOP_METHOD, 0, "read timeout of 4000 ms reached on attempt 1" },
	{ "minted key: POST reset not retried", NULL, METHOD_POST, KEY_MINTED, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_RESET, X_PROBLEM(UNAVAILABLE, 0, 1, -1)) },
	  1, 0, RETRY_STOP_METHOD, 0, NULL },
	{ "minted key: POST 503 retried", NULL, METHOD_POST, KEY_MINTED, 0, 0, {
		ROUTED(0, X_START),
		ANS(5, 503, X_WAIT(200)),
		WAIT_OVER(205, X_START),
		ANS(210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "minted key: POST connect failure retried", NULL, METHOD_POST, KEY_MINTED, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_CONNECT, X_WAIT(200)),
		WAIT_OVER(205, X_START),
		ANS(210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "honoured key: POST read timeout retried", NULL, METHOD_POST, 1, 0, 0, {
		ROUTED(0, X_START),
		TMO(4000, LIMIT_READ, X_WAIT(200)),
		WAIT_OVER(4200, X_START),
		ANS(4210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "connect not listed: 502 upstream_unavailable", transport_none, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_CONNECT, X_PROBLEM(UNAVAILABLE, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, "cannot connect to the upstream after 1 attempt: boom" },
	{ "reset not listed: 502 upstream_unavailable", transport_none, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_RESET, X_PROBLEM(UNAVAILABLE, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, "upstream connection failed after 1 attempt: boom" },
	{ "read timeout not listed: 504 upstream_timeout", transport_none, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		TMO(4000, LIMIT_READ, X_PROBLEM(TIMEOUT, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, "read timeout of 4000 ms reached on attempt 1" },
	{ "connect timeout not listed", transport_none, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		TMO(2000, LIMIT_CONNECT, X_PROBLEM(TIMEOUT, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, "connect timeout of 2000 ms reached on attempt 1" },
	{ "write timeout not listed", transport_none, METHOD_PUT, 0, 0, 0, {
		ROUTED(0, X_START),
		TMO(2000, LIMIT_WRITE, X_PROBLEM(TIMEOUT, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, "write timeout of 2000 ms reached on attempt 1" },
	{ "internal is never retried", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(1, ATTEMPT_INTERNAL, X_PROBLEM(UNAVAILABLE, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, "upstream connection failed" },
	{ "too_large is never retried: 502 response_too_large", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_TOO_LARGE, X_PROBLEM(TOO_LARGE, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, "larger than 1048576 bytes" },
	{ "500 in retry.statuses is retried", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(5, 500, X_WAIT(200)),
		WAIT_OVER(205, X_START),
		ANS(210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "501 server_error is not retried", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(5, 501, X_PROBLEM(UPSTREAM_STATUS, 501, 0, -1)) },
	  1, 0, RETRY_GO, 0, "upstream answered 501 after 1 attempt" },
	{ "404 client_error is not retried", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(5, 404, X_PROBLEM(UPSTREAM_STATUS, 404, 0, -1)) },
	  1, 0, RETRY_GO, 0, NULL },

	/* ---- attempts left (second condition) ---- */
	{ "attempts exhausted after 4 x 503", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		WAIT_OVER(210, X_START),
		ANS(220, 503, X_WAIT(400)),
		WAIT_OVER(620, X_START),
		ANS(630, 503, X_WAIT(800)),
		WAIT_OVER(1430, X_START),
		ANS(1440, 503, X_PROBLEM(UPSTREAM_STATUS, 503, 1, -1)) },
	  4, 3, RETRY_STOP_ATTEMPTS, 3, "upstream answered 503 after 4 attempts" },
	{ "Brace-Max-Attempts 1: the 503 and its Retry-After go to the app", NULL, METHOD_GET,
	  0, 0, 1, {
		ROUTED(0, X_START),
		ANS_RA(10, 503, 1000, X_PROBLEM(UPSTREAM_STATUS, 503, 1, 1000)) },
	  1, 0, RETRY_STOP_ATTEMPTS, 0, NULL },

	/* ---- the method allows it (third condition) ---- */
	{ "POST without key, unsafe with_key: not retried", NULL, METHOD_POST, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_RESET, X_PROBLEM(UNAVAILABLE, 0, 1, -1)) },
	  1, 0, RETRY_STOP_METHOD, 0, NULL },
	{ "POST with key, unsafe with_key: retried", NULL, METHOD_POST, 1, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_RESET, X_WAIT(200)),
		WAIT_OVER(205, X_START),
		ANS(210, 201, X_RELAY(OK, 201, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "POST without key: connect failures are safe", NULL, METHOD_POST, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_CONNECT, X_WAIT(200)),
		WAIT_OVER(205, X_START),
		ANS(210, 201, X_RELAY(OK, 201, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "POST with key, unsafe never: not retried", unsafe_never, METHOD_POST, 1, 0, 0, {
		ROUTED(0, X_START),
		ANS(5, 503, X_PROBLEM(UPSTREAM_STATUS, 503, 1, -1)) },
	  1, 0, RETRY_STOP_METHOD, 0, NULL },
	{ "POST with key, unsafe never: connect still retried", unsafe_never, METHOD_POST, 1, 0,
	  0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_CONNECT, X_WAIT(200)),
		GONE(50, X_DROP(0)) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "PATCH without key, unsafe always: retried", unsafe_always, METHOD_PATCH, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_RESET, X_WAIT(200)),
		WAIT_OVER(205, X_START),
		ANS(210, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "GET is retried even with unsafe never", unsafe_never, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_RESET, X_WAIT(200)),
		GONE(50, X_DROP(0)) },
	  1, 0, RETRY_GO, 0, NULL },

	/* ---- breaker (fourth condition, SPEC 4.8) ---- */
	{ "a failed attempt does not move the breaker (it judges requests): retried", breaker_1,
	  METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		WAIT_OVER(210, X_START),
		ANS(220, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "breaker open at admission: 503 circuit_open", breaker_1, METHOD_GET, 0, 0, 0, {
		SIDE_FAIL(0),
		ROUTED(1, X_PROBLEM(CIRCUIT_OPEN, 0, 1, 999)) },
	  0, 0, RETRY_GO, 0, "the circuit breaker of profile 'p' is open" },
	{ "half-open: the request goes as a probe and closes it", breaker_1, METHOD_GET, 0, 0,
	  0, {
		SIDE_FAIL(0),
		ROUTED(1000, X_PROBE),
		ANS(1010, 200, X_RELAY(OK, 200, -1)) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "half-open: the probe is the whole request, its retries included", breaker_1, METHOD_GET,
	  0, 0, 0, {
		SIDE_FAIL(0),
		ROUTED(1000, X_PROBE),
		ANS(1010, 503, X_WAIT(200)),
		WAIT_OVER(1210, X_PROBE),
		ANS(1220, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "the breaker opens during the backoff: token given back", breaker_2, METHOD_GET, 0, 0,
	  0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		SIDE_FAIL(100),
		SIDE_FAIL(101),
		WAIT_OVER(210, X_PROBLEM(UPSTREAM_STATUS, 503, 1, -1)) },
	  1, 0, RETRY_STOP_BREAKER, 0, NULL },

	/* ---- budget (fifth condition, SPEC 4.7) ---- */
	{ "retry budget empty: not retried", budget_empty, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_PROBLEM(UPSTREAM_STATUS, 503, 1, -1)) },
	  1, 0, RETRY_STOP_BUDGET, 0, NULL },
	{ "retry budget empty wins over a long Retry-After", budget_empty, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 503, 60000, X_PROBLEM(UPSTREAM_STATUS, 503, 1, 30000)) },
	  1, 0, RETRY_STOP_BUDGET, 0, NULL },

	/* ---- the wait must fit (sixth condition, 4.5) ---- */
	{ "503 Retry-After beyond retry_after.max: answered at once, clamped", NULL, METHOD_GET,
	  0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 503, 60000, X_PROBLEM(UPSTREAM_STATUS, 503, 1, 30000)) },
	  1, 0, RETRY_STOP_RETRY_AFTER, 0, NULL },
	{ "429 Retry-After beyond retry_after.max: 429 rate_limited", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 429, 60000, X_PROBLEM(RATE_LIMITED, 429, 1, 30000)) },
	  1, 0, RETRY_STOP_RETRY_AFTER, 0, NULL },
	{ "503 Retry-After beyond the remaining budget", NULL, METHOD_GET, 0, 3000, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 503, 5000, X_PROBLEM(UPSTREAM_STATUS, 503, 1, 5000)) },
	  1, 0, RETRY_STOP_RETRY_AFTER, 0, NULL },
	{ "429 Retry-After beyond the budget, passthrough: relayed as rate_limited", passthrough,
	  METHOD_GET, 0, 3000, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 429, 5000, X_RELAY(RATE_LIMITED, 429, 5000)) },
	  1, 0, RETRY_STOP_RETRY_AFTER, 0, NULL },
	{ "no room for the backoff and a minimal attempt", NULL, METHOD_GET, 0, 250, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_PROBLEM(UPSTREAM_STATUS, 503, 1, -1)) },
	  1, 0, RETRY_STOP_DEADLINE, 0, NULL },

	/* ---- rate-limit cool-down (4.6) ---- */
	{ "a cool-down that fits is waited out", NULL, METHOD_GET, 0, 0, 0, {
		SIDE_COOL(0, 1000),
		ROUTED(0, X_WAIT(1000)),
		WAIT_OVER(1000, X_START),
		ANS(1010, 200, X_RELAY(OK, 200, -1)) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "a cool-down longer than the budget: 429 rate_limited at once", NULL, METHOD_GET, 0, 0,
	  0, {
		SIDE_COOL(0, 20000),
		ROUTED(0, X_PROBLEM(RATE_LIMITED, 0, 1, 20000)) },
	  0, 0, RETRY_GO, 0, "pause of 20000 ms more; the budget has 10000 ms" },
	{ "cool-down off: nothing waits", no_cooldown, METHOD_GET, 0, 0, 0, {
		SIDE_COOL(0, 20000),
		ROUTED(0, X_START) },
	  0, 0, RETRY_GO, 0, NULL },
	{ "cool-down extended past the budget during the backoff: token given back", NULL,
	  METHOD_GET, 0, 3000, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		SIDE_COOL(100, 10000),
		WAIT_OVER(210, X_PROBLEM(RATE_LIMITED, 0, 1, 9890)) },
	  1, 0, RETRY_STOP_DEADLINE, 0, NULL },
	{ "cool-down extended during the backoff within the budget: waits more", NULL,
	  METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		SIDE_COOL(100, 1000),
		WAIT_OVER(210, X_WAIT(890)),
		WAIT_OVER(1100, X_START),
		ANS(1110, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },

	/* ---- total budget (4.1) ---- */
	{ "deadline during an attempt: cut, counted as a timeout, 504", NULL, METHOD_GET, 0,
	  1000, 0, {
		ROUTED(0, X_START),
		DEADLINE(1000, X_CUT(TIMEOUT, 0, 1, -1)) },
	  1, 0, RETRY_GO, 0, "total budget of 1000 ms spent after 1 attempt" },
	{ "deadline while queued for a connection: no attempt", NULL, METHOD_GET, 0, 1000, 0, {
		ROUTED(0, X_START),
		DEADLINE_QUEUED(1000, X_CUT(TIMEOUT, 0, 1, -1)) },
	  0, 0, RETRY_GO, 0, "spent after 0 attempts" },
	{ "deadline during a wait: token given back", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		DEADLINE(100, X_PROBLEM(TIMEOUT, 0, 1, -1)) },
	  1, 0, RETRY_STOP_DEADLINE, 0, "spent after 1 attempt" },

	/* ---- connection pool (not an attempt) ---- */
	{ "pool timeout: 503 overloaded with Retry-After, no attempt", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		FAIL(2000, ATTEMPT_POOL_TIMEOUT, X_PROBLEM(OVERLOADED, 0, 1, 1000)) },
	  0, 0, RETRY_GO, 0, "within 2000 ms (pool of 100)" },
	{ "pool wait cut by the budget: 504 upstream_timeout", NULL, METHOD_GET, 0, 1000, 0, {
		ROUTED(0, X_START),
		FAIL(1000, ATTEMPT_POOL_TIMEOUT, X_PROBLEM(TIMEOUT, 0, 1, -1)) },
	  0, 0, RETRY_GO, 0, "total budget of 1000 ms spent after 0 attempts" },
	{ "pool timeout on a retry: no further retry", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		WAIT_OVER(210, X_START),
		FAIL(2210, ATTEMPT_POOL_TIMEOUT, X_PROBLEM(OVERLOADED, 0, 1, 1000)) },
	  1, 1, RETRY_GO, 1, NULL },

	/* ---- response schema (on_schema_violation) ---- */
	{ "schema violation, not retried: 502 schema_violation", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		BAD_SCHEMA(10, 200, X_PROBLEM(SCHEMA, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, "the upstream's 200 answer failed the response schema (3 violations)" },
	{ "schema violation retried with on_schema_violation", schema_retry, METHOD_GET, 0, 0,
	  0, {
		ROUTED(0, X_START),
		BAD_SCHEMA(10, 200, X_WAIT(200)),
		WAIT_OVER(210, X_START),
		ANS(220, 200, X_RELAY(OK, 200, -1)) },
	  2, 1, RETRY_GO, 1, NULL },
	{ "schema violations until attempts run out", schema_retry, METHOD_GET, 0, 0, 2, {
		ROUTED(0, X_START),
		BAD_SCHEMA(10, 200, X_WAIT(200)),
		WAIT_OVER(210, X_START),
		BAD_SCHEMA(220, 200, X_PROBLEM(SCHEMA, 0, 1, -1)) },
	  2, 1, RETRY_STOP_ATTEMPTS, 1, NULL },

	/* ---- passthrough vs envelope (SPEC 5) ---- */
	{ "passthrough: the last 503 is relayed with Brace-Error", passthrough, METHOD_GET, 0, 0,
	  2, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		WAIT_OVER(210, X_START),
		ANS(220, 503, X_RELAY(UPSTREAM_STATUS, 503, -1)) },
	  2, 1, RETRY_STOP_ATTEMPTS, 1, NULL },
	{ "passthrough: a 404 is relayed", passthrough, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS_RA(10, 404, 7000, X_RELAY(UPSTREAM_STATUS, 404, 7000)) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "passthrough: a schema violation is still a problem", passthrough, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		BAD_SCHEMA(10, 200, X_PROBLEM(SCHEMA, 0, 0, -1)) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "passthrough: transport failures are problems", passthrough, METHOD_GET, 0, 0, 1, {
		ROUTED(0, X_START),
		FAIL(5, ATTEMPT_RESET, X_PROBLEM(UNAVAILABLE, 0, 1, -1)) },
	  1, 0, RETRY_STOP_ATTEMPTS, 0, NULL },

	/* ---- the app leaves, the daemon stops, the backend fails ---- */
	{ "client gone during an attempt: dropped, attempt cancelled", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		GONE(50, X_DROP(1)) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "client gone during a backoff: token given back", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		ANS(10, 503, X_WAIT(200)),
		GONE(50, X_DROP(0)),
		WAIT_OVER(210, X_NOTHING) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "draining: dropped, attempt cancelled", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		DRAIN(50, X_DROP(1)),
		ANS(60, 200, X_NOTHING) },
	  1, 0, RETRY_GO, 0, NULL },
	{ "the backend cannot start the attempt: 500 internal", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		START_FAILED(0, X_PROBLEM(INTERNAL, 0, -1, -1)) },
	  0, 0, RETRY_GO, 0, "out of memory" },
	{ "events out of turn do nothing", NULL, METHOD_GET, 0, 0, 0, {
		ROUTED(0, X_START),
		WAIT_OVER(5, X_NOTHING),
		ROUTED(6, X_NOTHING),
		ANS(10, 200, X_RELAY(OK, 200, -1)),
		ANS(11, 200, X_NOTHING),
		DEADLINE(20, X_NOTHING) },
	  1, 0, RETRY_GO, 0, NULL },
};
/* clang-format on */

struct fixture {
	struct policy pol;
	struct guard *guards;
	struct guard *g;
	struct rng rng;
	struct engine e;
	struct engine_action act;
	uint32_t last_id; /* of the last attempt started: what results name */
};

static struct fixture fx;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	config_builtin_policy(&fx.pol);
	/* The scripts check the problems of upstream errors: envelope mode.
	 * Passthrough, the default (check_config), relays them: the passthrough
	 * cases above. */
	fx.pol.upstream_errors = UPSTREAM_ERRORS_ENVELOPE;
	/* Exact waits: base * 2^(n-1). Jitter has its own tests below. */
	fx.pol.retry.jitter = JITTER_NONE;
	rng_seed(&fx.rng, 42);
	engine_init(&fx.e, &fx.rng);
}

static void teardown(void)
{
	engine_release(&fx.e, T0_US);
	guards_free(fx.guards);
	fx.guards = NULL;
}

static void make_guard(void)
{
	fx.g = guard_get(&fx.guards, "p");
	ck_assert_ptr_nonnull(fx.g);
	guard_configure(fx.g, &fx.pol);
}

static struct engine_event routed_event(uint64_t now_us, int method, int key, uint32_t total_ms,
					uint32_t max_attempts)
{
	struct engine_event ev = { .kind = ENGINE_EV_ROUTED, .now_us = now_us };

	ev.u.routed = (struct engine_routed){
		.policy = &fx.pol,
		.guard = fx.g,
		.profile = "p",
		.method = method,
		.idempotency = key == KEY_MINTED ? IDEM_KEY_MINTED
			       : key           ? IDEM_KEY_HONORED
					       : IDEM_KEY_NONE,
		.total_ms = total_ms ? total_ms : fx.pol.timeouts.total_ms,
		.max_attempts = max_attempts ? max_attempts : fx.pol.retry.attempts,
		.start_us = T0_US,
		.max_response_body = MAX_BODY,
	};
	return ev;
}

/* The tables' notation: -1 for a Retry-After or a "retryable" left out. */
static int64_t table_ra(struct retry_after ra)
{
	return ra.set ? (int64_t)ra.ms : -1;
}

static struct retry_after ra_of(int64_t ms)
{
	return ms < 0 ? (struct retry_after){ 0 } : (struct retry_after){ 1, (uint64_t)ms };
}

static int table_retryable(enum problem_retryable r)
{
	return r == PROBLEM_RETRYABLE_UNSAID ? -1 : r == PROBLEM_RETRYABLE_YES;
}

static void check_action(const char *name, int i, const struct expect *x,
			 const struct engine_action *a)
{
	ck_assert_msg(a->kind == x->kind, "%s: step %d: action %d, expected %d", name, i, a->kind,
		      x->kind);
	ck_assert_msg(a->cancel == x->cancel, "%s: step %d: cancel %d", name, i, a->cancel);
	switch (a->kind) {
	case ENGINE_DO_WAIT:
		ck_assert_msg(a->u.wait_ms == x->wait, "%s: step %d: wait %u, expected %u", name,
			      i, a->u.wait_ms, x->wait);
		break;
	case ENGINE_DO_START:
		ck_assert_msg(a->u.start.probe == x->probe, "%s: step %d: probe %d", name, i,
			      a->u.start.probe);
		break;
	case ENGINE_DO_ANSWER: {
		const struct engine_answer *an = &a->u.answer;

		ck_assert_msg(an->kind == (x->relay ? ENGINE_RELAY : ENGINE_PROBLEM),
			      "%s: step %d: answer kind %d", name, i, an->kind);
		ck_assert_msg((an->has_code ? (int)an->code : OK) == x->code,
			      "%s: step %d: code %d, expected %d", name, i,
			      an->has_code ? (int)an->code : OK, x->code);
		ck_assert_msg(an->status == x->status, "%s: step %d: status %d, expected %d", name,
			      i, an->status, x->status);
		ck_assert_msg(table_ra(an->retry_after) == x->ra,
			      "%s: step %d: Retry-After %lld, expected %lld", name, i,
			      (long long)table_ra(an->retry_after), (long long)x->ra);
		if (!x->relay)
			ck_assert_msg(table_retryable(an->retryable) == x->retryable,
				      "%s: step %d: retryable %d, expected %d", name, i,
				      table_retryable(an->retryable), x->retryable);
		break;
	}
	default:
		break;
	}
}

static void run_case(const struct engine_case *c)
{
	char detail[ENGINE_DETAIL_MAX] = "";
	struct guard_snapshot snap;
	int i;

	if (c->tweak)
		c->tweak(&fx.pol);
	make_guard();
	for (i = 0; i < N(c->steps) && c->steps[i].k != S_NONE; i++) {
		const struct step *s = &c->steps[i];
		uint64_t now = T0_US + (uint64_t)s->at * 1000;
		struct engine_event ev = { .now_us = now };

		switch (s->k) {
		case S_ROUTED:
			ev = routed_event(now, c->method, c->key, c->total_ms, c->max_attempts);
			break;
		case S_END:
			ev.kind = ENGINE_EV_ATTEMPT;
			ev.u.attempt = (struct engine_result){
				.end = s->end,
				.timeout = s->tk,
				.status = s->status,
				.retry_after = ra_of(s->ra),
				.schema_failed = s->schema,
				.violations = s->schema ? 3 : 0,
				.elapsed_us = 5000,
				.error = s->end == ATTEMPT_OK ? "" : "boom",
			};
			break;
		case S_WAIT_OVER:
			ev.kind = ENGINE_EV_TIMER;
			ev.u.timer.which = ENGINE_TIMER_WAIT;
			break;
		case S_DEADLINE:
		case S_DEADLINE_QUEUED:
			ev.kind = ENGINE_EV_TIMER;
			ev.u.timer.which = ENGINE_TIMER_DEADLINE;
			if (s->k == S_DEADLINE_QUEUED) {
				ev.u.timer.queued[0] = fx.last_id;
				ev.u.timer.nqueued = 1;
			}
			break;
		case S_GONE:
			ev.kind = ENGINE_EV_CLIENT_GONE;
			break;
		case S_DRAIN:
			ev.kind = ENGINE_EV_DRAINING;
			break;
		case S_START_FAILED:
			ev.kind = ENGINE_EV_START_FAILED;
			break;
		case S_SIDE_FAIL:
			guard_judge(fx.g, now, 1, 0);
			continue;
		case S_SIDE_COOL:
			guard_cool_down(fx.g, now + (uint64_t)s->ra * 1000);
			continue;
		case S_NONE:
		default:
			ck_abort();
		}
		if (ev.kind == ENGINE_EV_ATTEMPT || ev.kind == ENGINE_EV_START_FAILED)
			ev.u.attempt.id = fx.last_id;
		engine_feed(&fx.e, &ev, &fx.act);
		if (fx.act.kind == ENGINE_DO_START)
			fx.last_id = fx.act.u.start.id;
		check_action(c->name, i, &s->x, &fx.act);
		if (fx.act.kind == ENGINE_DO_ANSWER)
			snprintf(detail, sizeof(detail), "%s", fx.act.u.answer.detail);
	}
	ck_assert_msg(engine_attempts(&fx.e) == c->attempts, "%s: %u attempts, expected %u",
		      c->name, engine_attempts(&fx.e), c->attempts);
	guard_snapshot(fx.g, T0_US + 5000000, &snap);
	ck_assert_msg(snap.retries == c->retries, "%s: %llu retries started, expected %llu",
		      c->name, (unsigned long long)snap.retries, (unsigned long long)c->retries);
	for (int r = RETRY_STOP_ATTEMPTS; r < RETRY_STOP__COUNT; r++)
		ck_assert_msg(snap.suppressed[r] == (c->suppressed == (enum retry_stop)r),
			      "%s: suppressed %s: %llu", c->name,
			      retry_stop_name((enum retry_stop)r),
			      (unsigned long long)snap.suppressed[r]);
	ck_assert_msg(snap.budget_retries == c->budget_retries,
		      "%s: %u budget tokens taken, expected %u", c->name, snap.budget_retries,
		      c->budget_retries);
	if (c->detail)
		ck_assert_msg(strstr(detail, c->detail), "%s: detail '%s' lacks '%s'", c->name,
			      detail, c->detail);
	/* In flight until released; a leftover probe or token would show here. */
	ck_assert_uint_eq(snap.inflight, engine_state(&fx.e) == ENGINE_NEW ? 0 : 1);
	engine_release(&fx.e, T0_US);
	guard_snapshot(fx.g, T0_US + 5000000, &snap);
	ck_assert_uint_eq(snap.inflight, 0);
	ck_assert_msg(snap.budget_retries == c->budget_retries, "%s: release changed the budget",
		      c->name);
}

START_TEST(test_script)
{
	run_case(&cases[_i]);
}
END_TEST

/* ==== single decisions ================================================== */

static void feed(struct engine_event ev)
{
	if (ev.kind == ENGINE_EV_ATTEMPT && ev.u.attempt.id == 0)
		ev.u.attempt.id = fx.last_id;
	engine_feed(&fx.e, &ev, &fx.act);
	if (fx.act.kind == ENGINE_DO_START)
		fx.last_id = fx.act.u.start.id;
}

static struct engine_event answer_ev(uint32_t at_ms, int status)
{
	struct engine_event ev = { .kind = ENGINE_EV_ATTEMPT, .now_us = T0_US + at_ms * 1000ULL };

	ev.u.attempt = (struct engine_result){ .end = ATTEMPT_OK,
					       .status = status,
					       .elapsed_us = 7000,
					       .error = "" };
	return ev;
}

static struct engine_event wait_over_ev(uint32_t at_ms)
{
	struct engine_event ev = { .kind = ENGINE_EV_TIMER, .now_us = T0_US + at_ms * 1000ULL };

	ev.u.timer.which = ENGINE_TIMER_WAIT;
	return ev;
}

/* The per-attempt timeouts are cut to what is left of the budget (4.1). */
START_TEST(test_start_timeouts_cut)
{
	fx.pol.timeouts.attempt_ms = 1000;
	make_guard();
	feed(routed_event(T0_US + 200000, METHOD_GET, 0, 1500, 0));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
	ck_assert_uint_eq(fx.act.u.start.connect_ms, 1300);
	ck_assert_uint_eq(fx.act.u.start.pool_ms, 1300);
	ck_assert_uint_eq(fx.act.u.start.read_ms, 4000);
	ck_assert_uint_eq(fx.act.u.start.write_ms, 2000);
	ck_assert_uint_eq(fx.act.u.start.attempt_ms, 1000);
	ck_assert_uint_eq(engine_remaining_ms(&fx.e, T0_US + 200000), 1300);
}
END_TEST

START_TEST(test_start_attempt_cap_beyond_budget)
{
	fx.pol.timeouts.attempt_ms = 5000;
	make_guard();
	feed(routed_event(T0_US, METHOD_GET, 0, 1500, 0));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
	/* The deadline, not the attempt cap, ends it. */
	ck_assert_uint_eq(fx.act.u.start.attempt_ms, 0);
	ck_assert_uint_eq(fx.act.u.start.connect_ms, 1500);
	ck_assert_uint_eq(fx.act.u.start.pool_ms, 1500);
}
END_TEST

/* The history the problem repeats: outcome, status, time and wait per attempt. */
START_TEST(test_history)
{
	const struct history_entry *h;
	size_t n;
	struct engine_event ev;

	make_guard();
	feed(routed_event(T0_US, METHOD_GET, 0, 0, 0));
	feed(answer_ev(10, 503));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_WAIT);
	feed(wait_over_ev(210));
	ev = answer_ev(220, 0);
	ev.u.attempt.end = ATTEMPT_TIMEOUT;
	ev.u.attempt.timeout = LIMIT_READ;
	feed(ev);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_WAIT);
	ck_assert_uint_eq(fx.act.u.wait_ms, 400);
	feed(wait_over_ev(620));
	feed(answer_ev(630, 200));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_ANSWER);
	h = engine_history(&fx.e, &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(h[0].outcome, "status");
	ck_assert_int_eq(h[0].status, 503);
	ck_assert_uint_eq(h[0].wait_ms, 0);
	ck_assert_uint_eq(h[0].ms, 7);
	ck_assert_str_eq(h[1].outcome, "timeout");
	ck_assert_int_eq(h[1].status, 0);
	ck_assert_uint_eq(h[1].wait_ms, 200);
	ck_assert_str_eq(h[2].outcome, "ok");
	ck_assert_uint_eq(h[2].attempt, 3);
	ck_assert_uint_eq(h[2].wait_ms, 400);
	ck_assert_uint_eq(engine_upstream_ms(&fx.e), 21);
}
END_TEST

/* Outcomes are counted per kind in the guard, with the schema override. */
START_TEST(test_outcome_counters)
{
	struct guard_snapshot snap;
	struct engine_event ev;

	fx.pol.retry.on_schema_violation = 1;
	make_guard();
	feed(routed_event(T0_US, METHOD_GET, 0, 0, 0));
	ev = answer_ev(10, 200);
	ev.u.attempt.schema_failed = 1;
	ev.u.attempt.violations = 1;
	feed(ev);
	feed(wait_over_ev(210));
	ev = answer_ev(220, 0);
	ev.u.attempt.end = ATTEMPT_CONNECT;
	feed(ev);
	feed(wait_over_ev(620));
	feed(answer_ev(630, 200));
	guard_snapshot(fx.g, T0_US, &snap);
	ck_assert_uint_eq(snap.attempts[OUTCOME_SCHEMA], 1);
	ck_assert_uint_eq(snap.attempts[OUTCOME_CONNECT], 1);
	ck_assert_uint_eq(snap.attempts[OUTCOME_OK], 1);
	ck_assert_uint_eq(snap.retries, 2);
}
END_TEST

/* A 429's Retry-After cools the profile down for at most retry_after.max. */
START_TEST(test_cooldown_from_429)
{
	struct engine_event ev;

	make_guard();
	feed(routed_event(T0_US, METHOD_GET, 0, 0, 0));
	ev = answer_ev(10, 429);
	ev.u.attempt.retry_after = ra_of(3000);
	feed(ev);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_WAIT);
	ck_assert_uint_eq(fx.act.u.wait_ms, 3000);
	ck_assert_int_eq(engine_state(&fx.e), ENGINE_WAITING_RETRY);
	ck_assert_str_eq(engine_state_name(engine_state(&fx.e)), "waiting");
	ck_assert_uint_eq(guard_cooldown_until(fx.g), T0_US + 3010000);
	ev = answer_ev(20, 429);
	ev.u.attempt.retry_after = ra_of(3600000);
	engine_release(&fx.e, T0_US);
	engine_init(&fx.e, &fx.rng);
	feed(routed_event(T0_US, METHOD_GET, 0, 0, 0));
	/* The cool-down of 3 s fits the budget: this request waits it out first. */
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_WAIT);
	ck_assert_uint_eq(fx.act.u.wait_ms, 3010);
	ck_assert_int_eq(engine_state(&fx.e), ENGINE_WAITING_FIRST);
	ck_assert_str_eq(engine_state_name(engine_state(&fx.e)), "waiting");
	feed(wait_over_ev(3010));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
	ck_assert_int_eq(engine_state(&fx.e), ENGINE_ATTEMPT);
	ev.now_us = T0_US + 3020000;
	feed(ev);
	ck_assert_int_eq(fx.act.u.answer.code, PROBLEM_RATE_LIMITED);
	ck_assert_uint_eq(guard_cooldown_until(fx.g), T0_US + 3020000 + 30000000ULL);
}
END_TEST

/* Half-open admits half_open_probes requests; the others get circuit_open. */
START_TEST(test_half_open_gating)
{
	struct engine other;
	struct engine_action act;
	struct engine_event ev;

	fx.pol.breaker.min_requests = 1;
	fx.pol.breaker.open_for_ms = 1000;
	make_guard();
	guard_judge(fx.g, T0_US, 1, 0);
	feed(routed_event(T0_US + 1000000, METHOD_GET, 0, 0, 0));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
	ck_assert_int_eq(fx.act.u.start.probe, 1);
	engine_init(&other, &fx.rng);
	ev = routed_event(T0_US + 1000000, METHOD_GET, 0, 0, 0);
	engine_feed(&other, &ev, &act);
	ck_assert_int_eq(act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(act.u.answer.code, PROBLEM_CIRCUIT_OPEN);
	ck_assert_int_eq(act.u.answer.retryable, PROBLEM_RETRYABLE_YES);
	/* Still half-open: its default Retry-After is one second. */
	ck_assert_int_eq(table_ra(act.u.answer.retry_after), 1000);
	engine_release(&other, T0_US);
	/* The probe leaves without an outcome: the next request may probe. */
	ev.kind = ENGINE_EV_CLIENT_GONE;
	feed(ev);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_DROP);
	engine_release(&fx.e, T0_US + 1000000);
	engine_init(&other, &fx.rng);
	ev = routed_event(T0_US + 1000000, METHOD_GET, 0, 0, 0);
	engine_feed(&other, &ev, &act);
	ck_assert_int_eq(act.kind, ENGINE_DO_START);
	ck_assert_int_eq(act.u.start.probe, 1);
	engine_release(&other, T0_US);
}
END_TEST

/* Backoff jitter kinds (4.4) with a seeded RNG: the engine draws exactly
 * what retry_backoff() draws from the same seed, prev wait included. */
struct jitter_case {
	enum jitter jitter;
};

static const struct jitter_case jitter_cases[] = {
	{ JITTER_FULL },
	{ JITTER_EQUAL },
	{ JITTER_DECORRELATED },
	{ JITTER_NONE },
};

START_TEST(test_jitter)
{
	struct rng mirror;
	uint32_t prev = 0;

	fx.pol.retry.jitter = jitter_cases[_i].jitter;
	fx.pol.retry.backoff_max_ms = 1000;
	make_guard();
	rng_seed(&fx.rng, 7 + (uint64_t)_i);
	rng_seed(&mirror, 7 + (uint64_t)_i);
	feed(routed_event(T0_US, METHOD_GET, 0, 60000, 0));
	for (uint32_t n = 1; n <= 3; n++) {
		uint32_t want = retry_backoff(&fx.pol.retry, n, prev, &mirror);
		uint32_t at = n * 2000;

		feed(answer_ev(at, 503));
		ck_assert_int_eq(fx.act.kind, ENGINE_DO_WAIT);
		ck_assert_uint_eq(fx.act.u.wait_ms, want);
		ck_assert_uint_le(fx.act.u.wait_ms, 1000);
		if (jitter_cases[_i].jitter == JITTER_EQUAL)
			ck_assert_uint_ge(fx.act.u.wait_ms, (n == 1 ? 200 : n == 2 ? 400 : 800) / 2);
		if (jitter_cases[_i].jitter == JITTER_DECORRELATED)
			ck_assert_uint_ge(fx.act.u.wait_ms, 200);
		prev = want;
		feed(wait_over_ev(at + want));
		ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
	}
}
END_TEST

/* ==== guard ============================================================= */

START_TEST(test_guard_token)
{
	struct guard_token t1 = { 0 }, t2 = { 0 }, t3 = { 0 };
	struct guard_snapshot snap;

	/* Exactly one retry fits: min_per_second 1 over a 1 s window. */
	fx.pol.retry.budget_ratio = 0;
	fx.pol.retry.budget_min_per_second = 1;
	fx.pol.retry.budget_window_ms = 1000;
	make_guard();
	ck_assert_int_eq(guard_try_withdraw(fx.g, T0_US, &t1), 1);
	ck_assert_int_eq(t1.held, 1);
	ck_assert_int_eq(guard_try_withdraw(fx.g, T0_US, &t2), 0);
	ck_assert_int_eq(t2.held, 0);
	guard_give_back(fx.g, T0_US + 1000, &t1);
	ck_assert_int_eq(t1.held, 0);
	/* Given back twice is given back once. */
	guard_give_back(fx.g, T0_US + 1000, &t1);
	ck_assert_int_eq(guard_try_withdraw(fx.g, T0_US + 2000, &t3), 1);
	guard_snapshot(fx.g, T0_US + 2000, &snap);
	ck_assert_uint_eq(snap.budget_retries, 1);
	ck_assert_int_eq(guard_try_withdraw(fx.g, T0_US + 2000, &t2), 0);
}
END_TEST

/* One request through the engine at t_ms: its first attempt answers first,
 * and, when a retry follows, the retry answers then (0: none expected).
 * Returns the final action's kind; the request is released. */
static enum engine_action_kind one_request(uint32_t t_ms, int method, int key, int first,
					   int then)
{
	enum engine_action_kind kind;

	engine_init(&fx.e, &fx.rng);
	feed(routed_event(T0_US + t_ms * 1000ULL, method, key, 0, 0));
	if (fx.act.kind == ENGINE_DO_START)
		feed(answer_ev(t_ms + 5, first));
	if (then && fx.act.kind == ENGINE_DO_WAIT) {
		feed(wait_over_ev(t_ms + 5 + fx.act.u.wait_ms));
		ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
		feed(answer_ev(t_ms + 10, then));
	}
	kind = fx.act.kind;
	engine_release(&fx.e, T0_US + (t_ms + 20) * 1000ULL);
	return kind;
}

/* SPEC 4.8: the breaker judges requests after their retries. A POST whose
 * first attempts all fail and whose retries all succeed is served, and the
 * breaker stays closed (it counted attempts, opened, and its probes, being
 * first attempts, always failed). Requests that fail after their retries
 * still open it. */
START_TEST(test_breaker_judges_requests)
{
	struct guard_snapshot snap;
	int refused = 0;

	fx.pol.breaker.min_requests = 20;
	fx.pol.breaker.failure_ratio = 0.5;
	fx.pol.timeouts.total_ms = 60000;
	fx.pol.retry.backoff_base_ms = 10;
	fx.pol.retry.budget_min_per_second = 1000;
	fx.pol.retry.unsafe = UNSAFE_ALWAYS;
	make_guard();
	for (uint32_t i = 0; i < 100; i++) {
		ck_assert_int_eq(one_request(i * 50, METHOD_POST, 1, 503, 200), ENGINE_DO_ANSWER);
		ck_assert_int_eq(fx.act.u.answer.has_code, 0);
	}
	guard_snapshot(fx.g, T0_US + 5000000, &snap);
	ck_assert_int_eq(snap.breaker, BREAKER_CLOSED);
	ck_assert_uint_eq(snap.attempts[OUTCOME_STATUS], 100);
	ck_assert_uint_eq(snap.attempts[OUTCOME_OK], 100);

	/* A window later, every attempt fails: the requests fail after their
	 * retries, and the breaker opens. */
	fx.pol.retry.attempts = 2;
	for (uint32_t i = 0; i < 40; i++) {
		one_request(20000 + i * 50, METHOD_GET, 0, 503, 503);
		refused += fx.act.u.answer.code == PROBLEM_CIRCUIT_OPEN;
	}
	guard_snapshot(fx.g, T0_US + 22100000, &snap);
	ck_assert_int_eq(snap.breaker, BREAKER_OPEN);
	ck_assert_int_eq(refused, 20); /* opened by the 20th failed request */
}
END_TEST

/* SPEC 4.11: each attempt names its endpoint; with retry_elsewhere a
 * retry goes to an endpoint the request has not tried while one is left,
 * then anywhere; the history names each attempt's endpoint. */
START_TEST(test_retries_go_elsewhere)
{
	static const char *const names[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80" };
	uint32_t seen[5];
	size_t n;
	const struct history_entry *h;

	fx.pol.retry.attempts = 5;
	fx.pol.retry.backoff_base_ms = 10;
	fx.pol.retry.budget_min_per_second = 1000;
	make_guard();
	guard_set_endpoints(fx.g, names, 3, T0_US);
	feed(routed_event(T0_US, METHOD_GET, 0, 0, 0));
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
		seen[i] = fx.act.u.start.endpoint;
		ck_assert_uint_ne(seen[i], 0);
		/* The shell ends the endpoint's attempt; a fast one looks
		 * cheapest, so only retry_elsewhere keeps the retry away. */
		guard_endpoint_done(fx.g, seen[i], fx.act.u.start.picked_us,
				    T0_US + (100 * (uint64_t)i + 5) * 1000, 1, ENDPOINT_SUCCESS);
		feed(answer_ev(100 * (uint32_t)i + 5, 503));
		if (i < 4) {
			ck_assert_int_eq(fx.act.kind, ENGINE_DO_WAIT);
			feed(wait_over_ev(100 * (uint32_t)i + 90));
		}
	}
	/* Three attempts, three endpoints; the rest may go anywhere. */
	ck_assert_uint_ne(seen[0], seen[1]);
	ck_assert_uint_ne(seen[1], seen[2]);
	ck_assert_uint_ne(seen[0], seen[2]);
	h = engine_history(&fx.e, &n);
	ck_assert_uint_eq(n, 5);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(h[i].endpoint, guard_endpoint_name(fx.g, seen[i]));
}
END_TEST

/* Without endpoints (a name not looked up yet) an attempt names none, and
 * libcurl resolves the name itself. */
START_TEST(test_no_endpoints_yet)
{
	size_t n;

	make_guard();
	feed(routed_event(T0_US, METHOD_GET, 0, 0, 0));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
	ck_assert_uint_eq(fx.act.u.start.endpoint, 0);
	feed(answer_ev(5, 200));
	ck_assert_str_eq(engine_history(&fx.e, &n)[0].endpoint, "");
}
END_TEST

/* An app that leaves after an attempt of its request failed leaves a
 * failure for the breaker (a hung upstream with impatient apps still opens
 * it); one that leaves before any attempt ended is not judged. A cut by
 * the budget is a timeout for the attempts' endpoints. */
START_TEST(test_client_gone_after_a_failure_is_judged)
{
	struct guard_snapshot snap;
	struct engine_event ev;

	fx.pol.breaker.min_requests = 3;
	fx.pol.breaker.failure_ratio = 0.5;
	fx.pol.retry.backoff_base_ms = 10;
	fx.pol.retry.budget_min_per_second = 1000;
	make_guard();
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t t = i * 1000;

		engine_init(&fx.e, &fx.rng);
		feed(routed_event(T0_US + t * 1000ULL, METHOD_GET, 0, 0, 0));
		ev = answer_ev(t + 300, 0);
		ev.u.attempt.end = ATTEMPT_TIMEOUT;
		ev.u.attempt.timeout = LIMIT_READ;
		feed(ev);
		ck_assert_int_eq(fx.act.kind, ENGINE_DO_WAIT);
		ev = (struct engine_event){ .kind = ENGINE_EV_CLIENT_GONE,
					    .now_us = T0_US + (t + 305) * 1000ULL };
		feed(ev);
		ck_assert_int_eq(fx.act.kind, ENGINE_DO_DROP);
		engine_release(&fx.e, T0_US + (t + 305) * 1000ULL);
	}
	guard_snapshot(fx.g, T0_US + 3000000, &snap);
	ck_assert_int_eq(snap.breaker, BREAKER_OPEN);
}
END_TEST

START_TEST(test_client_gone_before_any_end_is_not_judged)
{
	struct guard_snapshot snap;
	struct engine_event ev;

	fx.pol.breaker.min_requests = 1;
	make_guard();
	feed(routed_event(T0_US, METHOD_GET, 0, 0, 0));
	ev = (struct engine_event){ .kind = ENGINE_EV_CLIENT_GONE, .now_us = T0_US + 5000 };
	feed(ev);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_DROP);
	ck_assert_int_eq(fx.act.cancel, 1);
	ck_assert_int_eq(fx.act.cancel_timeout, 0);
	guard_snapshot(fx.g, T0_US + 5000, &snap);
	ck_assert_int_eq(snap.breaker, BREAKER_CLOSED);
}
END_TEST

START_TEST(test_deadline_cuts_are_timeouts)
{
	struct engine_event ev;

	make_guard();
	feed(routed_event(T0_US, METHOD_GET, 0, 1000, 0));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
	ev = (struct engine_event){ .kind = ENGINE_EV_TIMER, .now_us = T0_US + 1000000 };
	ev.u.timer.which = ENGINE_TIMER_DEADLINE;
	feed(ev);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(fx.act.cancel, 1);
	ck_assert_int_eq(fx.act.cancel_timeout, 1);
}
END_TEST

/* The token a suppressed retry gave back serves the next request. */
START_TEST(test_given_back_token_serves_another)
{

	fx.pol.retry.budget_ratio = 0;
	fx.pol.retry.budget_min_per_second = 1;
	fx.pol.retry.budget_window_ms = 10000;
	fx.pol.breaker.min_requests = 2;
	/* 10 tokens in the window: take 9 so that one is left. */
	make_guard();
	for (int i = 0; i < 9; i++) {
		struct guard_token t;

		ck_assert_int_eq(guard_try_withdraw(fx.g, T0_US, &t), 1);
	}
	feed(routed_event(T0_US, METHOD_GET, 0, 0, 0));
	feed(answer_ev(10, 503));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_WAIT);
	/* Two other requests fail after their retries: the breaker opens. */
	guard_judge(fx.g, T0_US + 20000, 1, 0);
	guard_judge(fx.g, T0_US + 20000, 1, 0);
	/* The waiting retry is suppressed and gives the last token back. */
	feed(wait_over_ev(210));
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(fx.act.u.answer.code, PROBLEM_UPSTREAM_STATUS);
	{
		struct guard_token t;

		ck_assert_int_eq(guard_try_withdraw(fx.g, T0_US + 300000, &t), 1);
	}
}
END_TEST

START_TEST(test_guard_snapshot)
{
	struct guard_snapshot snap;
	struct guard *other;

	make_guard();
	other = guard_get(&fx.guards, "q");
	ck_assert_ptr_eq(guard_get(&fx.guards, "p"), fx.g);
	ck_assert_str_eq(guard_name(other), "q");
	ck_assert_ptr_eq(guard_next(other), fx.g);
	ck_assert_ptr_null(guard_next(fx.g));
	guard_cool_down(fx.g, T0_US + 5000000);
	guard_cool_down(fx.g, T0_US + 1000000); /* never shortened */
	guard_count_answer(fx.g, NULL, 0.01);
	guard_count_answer(fx.g, &(enum problem_code){ PROBLEM_OVERLOADED }, 0.02);
	guard_count_retry(fx.g);
	guard_count_suppressed(fx.g, RETRY_STOP_BUDGET);
	guard_count_violation(fx.g, "GET /x", "response", "enforce");
	guard_snapshot(fx.g, T0_US + 1000000, &snap);
	ck_assert_str_eq(snap.name, "p");
	ck_assert_uint_eq(snap.cooldown_ms, 4000);
	ck_assert_uint_eq(snap.requests_ok, 1);
	ck_assert_uint_eq(snap.requests[PROBLEM_OVERLOADED], 1);
	ck_assert_uint_eq(snap.retries, 1);
	ck_assert_uint_eq(snap.suppressed[RETRY_STOP_BUDGET], 1);
	ck_assert_uint_eq(snap.duration->count, 2);
	ck_assert_uint_eq(snap.schema_counters->count, 1);
	ck_assert_int_eq(snap.breaker, BREAKER_CLOSED);
	ck_assert_int_eq(guard_refuses(fx.g, T0_US, 0), 0);
}
END_TEST

/* A streamed request body: the total budget counts from its end, and a
 * held body's request ignores the event (its budget began when it was read). */
START_TEST(test_budget_of_a_streamed_body_starts_at_its_end)
{
	struct engine_event ev;
	struct engine_event end = { .kind = ENGINE_EV_BODY_END, .now_us = T0_US + 5000000 };

	make_guard();
	ev = routed_event(T0_US, METHOD_PUT, 0, 1000, 1);
	ev.u.routed.body_streamed = 1;
	feed(ev);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_START);
	ck_assert_uint_eq(engine_remaining_ms(&fx.e, T0_US + 5000000), 0);
	feed(end);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_NOTHING);
	ck_assert_uint_eq(engine_remaining_ms(&fx.e, T0_US + 5100000), 900);
}
END_TEST

START_TEST(test_budget_of_a_held_body_ignores_the_body_end)
{
	struct engine_event end = { .kind = ENGINE_EV_BODY_END, .now_us = T0_US + 500000 };

	make_guard();
	feed(routed_event(T0_US, METHOD_PUT, 0, 1000, 1));
	feed(end);
	ck_assert_uint_eq(engine_remaining_ms(&fx.e, T0_US + 600000), 400);
}
END_TEST

/* A half-open probe is decided by its head: the breaker closes at once,
 * so a long stream holds no probe slot; the request is judged once, so its
 * truncation later does not count again. The request is released once. */
START_TEST(test_probe_decided_at_head)
{
	struct guard_snapshot snap;
	struct engine_event ev;

	fx.pol.breaker.min_requests = 1;
	fx.pol.breaker.open_for_ms = 1000;
	make_guard();
	guard_judge(fx.g, T0_US, 1, 0);
	feed(routed_event(T0_US + 1000000, METHOD_GET, 0, 0, 0));
	ck_assert_int_eq(fx.act.u.start.probe, 1);
	ev = answer_ev(1010, 200);
	ev.kind = ENGINE_EV_HEAD;
	ev.u.attempt.id = fx.last_id;
	feed(ev);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_ANSWER);
	ck_assert_int_eq(fx.act.u.answer.stream, 1);
	ck_assert_int_eq(engine_state(&fx.e), ENGINE_STREAMING);
	ck_assert_str_eq(engine_state_name(engine_state(&fx.e)), "streaming");
	guard_snapshot(fx.g, T0_US + 1010000, &snap);
	ck_assert_int_eq(snap.breaker, BREAKER_CLOSED);
	ev = answer_ev(1500, 0);
	ev.u.attempt.end = ATTEMPT_RESET;
	feed(ev);
	ck_assert_int_eq(fx.act.kind, ENGINE_DO_END);
	ck_assert_int_eq(fx.act.u.end.kind, ENGINE_END_RESET_MID_BODY);
	/* The request was judged once, at its head. */
	guard_snapshot(fx.g, T0_US + 1500000, &snap);
	ck_assert_int_eq(snap.breaker, BREAKER_CLOSED);
	ck_assert_uint_eq(snap.inflight, 1);
	engine_release(&fx.e, T0_US + 1500000);
	engine_release(&fx.e, T0_US + 1500000);
	guard_snapshot(fx.g, T0_US + 1500000, &snap);
	ck_assert_uint_eq(snap.inflight, 0);
}
END_TEST

/* ==== streamed answers: the decision at the head (design §2) ========== */

enum head_step_kind {
	H_NONE,
	H_ROUTED,
	H_HEAD,     /* an attempt's final head, its body not complete */
	H_HELD,     /* ... of an answer the shell holds whole */
	H_END,      /* an attempt finished */
	H_WAIT,     /* the wait timer */
	H_DEADLINE, /* the total budget */
	H_STREAM,   /* the stream timer */
	H_HEDGE,    /* the hedge timer */
	H_GONE,
	H_DRAIN,
};

/* What one step must give. code: OK (-1) for none; counted: the END's
 * count; discard and cancel: how many ids, the last one the attempt's. */
struct head_expect {
	enum engine_action_kind kind;
	int cancel;
	int discard;
	int relay;  /* ANSWER: 1 relay, 0 problem */
	int stream; /* ANSWER: the body streams */
	int code;   /* ANSWER, END */
	enum engine_end_kind end;
	int counted; /* END */
	enum engine_state state;
};

struct head_step {
	enum head_step_kind k;
	uint32_t at;
	enum attempt_end end;
	int status;
	uint64_t sent; /* request body bytes sent in the attempt */
	struct head_expect x;
};

#define H_ROUTE(x) { H_ROUTED, 0, 0, 0, 0, x }
#define HEAD(t, st, x) { H_HEAD, t, ATTEMPT_OK, st, 0, x }
#define HELD(t, st, x) { H_HELD, t, ATTEMPT_OK, st, 0, x }
#define END_OK(t, st, x) { H_END, t, ATTEMPT_OK, st, 0, x }
#define END_FAIL(t, e, sent, x) { H_END, t, e, 0, sent, x }
#define TIMER(k, t, x) { k, t, 0, 0, 0, x }

#define Y_START(st) { ENGINE_DO_START, 0, 0, 0, 0, 0, 0, 0, st }
#define Y_NOTHING(st) { ENGINE_DO_NOTHING, 0, 0, 0, 0, 0, 0, 0, st }
#define Y_WAIT { ENGINE_DO_WAIT, 0, 0, 0, 0, 0, 0, 0, ENGINE_WAITING_RETRY }
#define Y_WAIT_DISCARD { ENGINE_DO_WAIT, 0, 1, 0, 0, 0, 0, 0, ENGINE_WAITING_RETRY }
#define Y_STREAM(c) { ENGINE_DO_ANSWER, 0, 0, 1, 1, c, 0, 0, ENGINE_STREAMING }
#define Y_WHOLE(c) { ENGINE_DO_ANSWER, 0, 0, 1, 0, c, 0, 0, ENGINE_DONE }
#define Y_PROBLEM(c, d) { ENGINE_DO_ANSWER, 0, d, 0, 0, c, 0, 0, ENGINE_DONE }
#define Y_END(k, c, n, cut) { ENGINE_DO_END, cut, 0, 0, 0, c, k, n, ENGINE_DONE }
#define Y_DROP { ENGINE_DO_DROP, 1, 0, 0, 0, 0, 0, 0, ENGINE_DONE }

struct head_case {
	const char *name;
	void (*tweak)(struct policy *p);
	int method;
	int body_streamed;
	uint32_t max_attempts; /* 0: the policy's */
	struct head_step steps[8];
	/* after the script, in the guard: */
	uint64_t ok, status, reset, connect; /* attempts per outcome */
	uint64_t retries;
	enum retry_stop suppressed; /* RETRY_GO: none */
	enum breaker_state breaker;
	uint64_t timeout; /* attempts with outcome timeout */
};

static void stream_5s(struct policy *p)
{
	p->timeouts.stream_ms = 5000;
}

/* clang-format off */
static const struct head_case head_cases[] = {
	/* rule 1: held whole, judged at its end as today */
	{ "held head: nothing until the end", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HELD(10, 200, Y_NOTHING(ENGINE_ATTEMPT)),
		END_OK(20, 200, Y_WHOLE(OK)) },
	  1, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	/* rule 2: acceptable and final */
	{ "200 head streams, then completes", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 200, Y_STREAM(OK)),
		END_OK(900, 200, Y_END(ENGINE_END_COMPLETE, OK, 1, 0)) },
	  1, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	{ "passthrough 404 head streams under its code", passthrough, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 404, Y_STREAM(UPSTREAM_STATUS)),
		END_OK(20, 404, Y_END(ENGINE_END_COMPLETE, UPSTREAM_STATUS, 1, 0)) },
	  0, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	{ "passthrough 503 head with no retry left streams", passthrough, METHOD_GET, 0, 1, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 503, Y_STREAM(UPSTREAM_STATUS)) },
	  0, 1, 0, 0, 0, RETRY_STOP_ATTEMPTS, BREAKER_CLOSED, 0 },
	/* rule 4: a retry follows; the body is discarded */
	{ "503 head is retried, its body discarded", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 503, Y_WAIT_DISCARD),
		TIMER(H_WAIT, 210, Y_START(ENGINE_ATTEMPT)),
		HEAD(220, 200, Y_STREAM(OK)),
		END_OK(300, 200, Y_END(ENGINE_END_COMPLETE, OK, 1, 0)) },
	  1, 1, 0, 0, 1, RETRY_GO, BREAKER_CLOSED, 0 },
	/* rule 5: a final problem; the body gives its start, then goes */
	{ "envelope 404 head: problem, body discarded", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 404, Y_PROBLEM(UPSTREAM_STATUS, 1)) },
	  0, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	{ "envelope 503 head with no retry left: problem", NULL, METHOD_GET, 0, 1, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 503, Y_PROBLEM(UPSTREAM_STATUS, 1)) },
	  0, 1, 0, 0, 0, RETRY_STOP_ATTEMPTS, BREAKER_CLOSED, 0 },
	/* ENGINE_STREAMING x each event */
	{ "streaming: reset mid-body is an unavailable upstream", breaker_1, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 200, Y_STREAM(OK)),
		END_FAIL(50, ATTEMPT_RESET, 0, Y_END(ENGINE_END_RESET_MID_BODY, UNAVAILABLE, 1, 0)) },
	  /* one attempt, recorded once: as the reset that cut it */
	  0, 0, 1, 0, 0, RETRY_GO, BREAKER_OPEN, 0 },
	{ "streaming: a read timeout mid-body is a reset", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 200, Y_STREAM(OK)),
		{ H_END, 4010, ATTEMPT_TIMEOUT, 0, 0,
		  Y_END(ENGINE_END_RESET_MID_BODY, UNAVAILABLE, 1, 0) } },
	  0, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 1 },
	{ "streaming: the stream timer cuts it", stream_5s, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 200, Y_STREAM(OK)),
		TIMER(H_STREAM, 5010, Y_END(ENGINE_END_STREAM_TIMEOUT, OK, 1, 1)) },
	  1, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	{ "streaming: the total budget is over at the head", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 200, Y_STREAM(OK)),
		TIMER(H_DEADLINE, 10000, Y_NOTHING(ENGINE_STREAMING)),
		END_OK(20000, 200, Y_END(ENGINE_END_COMPLETE, OK, 1, 0)) },
	  1, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	{ "streaming: other timers and a stray head change nothing", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 200, Y_STREAM(OK)),
		TIMER(H_WAIT, 20, Y_NOTHING(ENGINE_STREAMING)),
		TIMER(H_HEDGE, 30, Y_NOTHING(ENGINE_STREAMING)),
		HEAD(40, 200, Y_NOTHING(ENGINE_STREAMING)),
		TIMER(H_STREAM, 50, Y_END(ENGINE_END_STREAM_TIMEOUT, OK, 1, 1)) },
	  1, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	{ "streaming: the app leaves", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 200, Y_STREAM(OK)),
		TIMER(H_GONE, 50, Y_END(ENGINE_END_CLIENT_GONE, OK, 0, 1)),
		END_FAIL(60, ATTEMPT_RESET, 0, Y_NOTHING(ENGINE_DONE)) },
	  1, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	{ "streaming: shutdown", NULL, METHOD_GET, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 200, Y_STREAM(OK)),
		TIMER(H_DRAIN, 50, Y_END(ENGINE_END_SHUTDOWN, OK, 0, 1)) },
	  1, 0, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
	/* streamed uploads: retried only when nothing of the body left */
	{ "streamed body: a connect failure is retried", NULL, METHOD_PUT, 1, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		END_FAIL(10, ATTEMPT_CONNECT, 0, Y_WAIT),
		TIMER(H_WAIT, 210, Y_START(ENGINE_ATTEMPT)),
		HEAD(220, 200, Y_STREAM(OK)) },
	  1, 0, 0, 1, 1, RETRY_GO, BREAKER_CLOSED, 0 },
	{ "streamed body: a reset after bytes sent is not", NULL, METHOD_PUT, 1, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		END_FAIL(10, ATTEMPT_RESET, 4096, Y_PROBLEM(UNAVAILABLE, 0)) },
	  0, 0, 1, 0, 0, RETRY_STOP_BODY, BREAKER_CLOSED, 0 },
	{ "streamed body: a 503 head is not retried", NULL, METHOD_PUT, 1, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 503, Y_PROBLEM(UPSTREAM_STATUS, 1)) },
	  0, 1, 0, 0, 0, RETRY_STOP_BODY, BREAKER_CLOSED, 0 },
	{ "held body: a 503 head of a PUT is retried", NULL, METHOD_PUT, 0, 0, {
		H_ROUTE(Y_START(ENGINE_ATTEMPT)),
		HEAD(10, 503, Y_WAIT_DISCARD) },
	  0, 1, 0, 0, 0, RETRY_GO, BREAKER_CLOSED, 0 },
};
/* clang-format on */

static void check_head_action(const char *name, int i, const struct head_expect *x,
			      uint32_t id, const struct engine_action *a)
{
	ck_assert_msg(a->kind == x->kind, "%s: step %d: action %d, expected %d", name, i, a->kind,
		      x->kind);
	ck_assert_msg(a->cancel == x->cancel, "%s: step %d: cancel %d", name, i, a->cancel);
	ck_assert_msg(a->discard == x->discard, "%s: step %d: discard %d", name, i, a->discard);
	if (a->discard)
		ck_assert_msg(a->discard_ids[a->discard - 1] == id, "%s: step %d: discards %u",
			      name, i, a->discard_ids[a->discard - 1]);
	ck_assert_msg(engine_state(&fx.e) == x->state, "%s: step %d: state %d, expected %d", name,
		      i, engine_state(&fx.e), x->state);
	if (a->kind == ENGINE_DO_ANSWER) {
		const struct engine_answer *an = &a->u.answer;

		ck_assert_msg(an->kind == (x->relay ? ENGINE_RELAY : ENGINE_PROBLEM),
			      "%s: step %d: answer kind %d", name, i, an->kind);
		ck_assert_msg(an->stream == x->stream, "%s: step %d: stream %d", name, i,
			      an->stream);
		ck_assert_msg((an->has_code ? (int)an->code : OK) == x->code,
			      "%s: step %d: code %d", name, i, an->has_code ? (int)an->code : OK);
		ck_assert_msg(an->id == id, "%s: step %d: answer of %u, expected %u", name, i,
			      an->id, id);
		ck_assert_msg(a->stream_ms == (an->stream ? fx.pol.timeouts.stream_ms : 0),
			      "%s: step %d: stream_ms %u", name, i, a->stream_ms);
	}
	if (a->kind == ENGINE_DO_END) {
		const struct engine_end *en = &a->u.end;

		ck_assert_msg(en->kind == x->end, "%s: step %d: end %d, expected %d", name, i,
			      en->kind, x->end);
		ck_assert_msg(en->count == x->counted, "%s: step %d: count %d", name, i,
			      en->count);
		if (en->count)
			ck_assert_msg((en->has_code ? (int)en->code : OK) == x->code,
				      "%s: step %d: end code %d", name, i,
				      en->has_code ? (int)en->code : OK);
		if (a->cancel)
			ck_assert_msg(a->cancel_ids[0] == id, "%s: step %d: cancels %u", name, i,
				      a->cancel_ids[0]);
	}
}

START_TEST(test_head)
{
	const struct head_case *c = &head_cases[_i];
	struct guard_snapshot snap;
	uint64_t last = T0_US;

	if (c->tweak)
		c->tweak(&fx.pol);
	make_guard();
	for (int i = 0; i < N(c->steps) && c->steps[i].k != H_NONE; i++) {
		const struct head_step *s = &c->steps[i];
		uint64_t now = T0_US + (uint64_t)s->at * 1000;
		struct engine_event ev = { .now_us = now };
		uint32_t id = fx.last_id;

		last = now;
		switch (s->k) {
		case H_ROUTED:
			ev = routed_event(now, c->method, 0, 0, c->max_attempts);
			ev.u.routed.body_streamed = c->body_streamed;
			break;
		case H_HEAD:
		case H_HELD:
		case H_END:
			ev.kind = s->k == H_END ? ENGINE_EV_ATTEMPT : ENGINE_EV_HEAD;
			ev.u.attempt = (struct engine_result){
				.id = id,
				.end = s->end,
				.timeout = s->end == ATTEMPT_TIMEOUT ? LIMIT_READ : LIMIT_NONE,
				.status = s->status,
				.elapsed_us = 5000,
				.error = s->end == ATTEMPT_OK ? "" : "boom",
				.hold = s->k == H_HELD,
				.body_sent = s->sent,
			};
			break;
		case H_WAIT:
		case H_DEADLINE:
		case H_STREAM:
		case H_HEDGE:
			ev.kind = ENGINE_EV_TIMER;
			ev.u.timer.which = s->k == H_WAIT       ? ENGINE_TIMER_WAIT
					   : s->k == H_DEADLINE ? ENGINE_TIMER_DEADLINE
					   : s->k == H_STREAM   ? ENGINE_TIMER_STREAM
								: ENGINE_TIMER_HEDGE;
			break;
		case H_GONE:
			ev.kind = ENGINE_EV_CLIENT_GONE;
			break;
		case H_DRAIN:
			ev.kind = ENGINE_EV_DRAINING;
			break;
		case H_NONE:
		default:
			ck_abort();
		}
		engine_feed(&fx.e, &ev, &fx.act);
		if (fx.act.kind == ENGINE_DO_START)
			fx.last_id = fx.act.u.start.id;
		check_head_action(c->name, i, &s->x, id, &fx.act);
	}
	/* The breaker as the last step left it, once the request is
	 * released (a stream still flowing records its head then); held
	 * in flight until then. */
	guard_snapshot(fx.g, last, &snap);
	ck_assert_uint_eq(snap.inflight, 1);
	engine_release(&fx.e, last);
	guard_snapshot(fx.g, last, &snap);
	ck_assert_msg(snap.attempts[OUTCOME_OK] == c->ok && snap.attempts[OUTCOME_STATUS] == c->status &&
			  snap.attempts[OUTCOME_RESET] == c->reset &&
			  snap.attempts[OUTCOME_CONNECT] == c->connect &&
			  snap.attempts[OUTCOME_TIMEOUT] == c->timeout,
		      "%s: attempts ok %llu status %llu reset %llu connect %llu timeout %llu",
		      c->name,
		      (unsigned long long)snap.attempts[OUTCOME_OK],
		      (unsigned long long)snap.attempts[OUTCOME_STATUS],
		      (unsigned long long)snap.attempts[OUTCOME_RESET],
		      (unsigned long long)snap.attempts[OUTCOME_CONNECT],
		      (unsigned long long)snap.attempts[OUTCOME_TIMEOUT]);
	ck_assert_msg(snap.retries == c->retries, "%s: %llu retries", c->name,
		      (unsigned long long)snap.retries);
	for (int r = RETRY_STOP_ATTEMPTS; r < RETRY_STOP__COUNT; r++)
		ck_assert_msg(snap.suppressed[r] == (c->suppressed == (enum retry_stop)r),
			      "%s: suppressed %s: %llu", c->name,
			      retry_stop_name((enum retry_stop)r),
			      (unsigned long long)snap.suppressed[r]);
	ck_assert_msg(snap.breaker == c->breaker, "%s: breaker %d", c->name, snap.breaker);
	/* Released once, in whatever state the script left it. */
	engine_release(&fx.e, T0_US);
	guard_snapshot(fx.g, T0_US + 5000000, &snap);
	ck_assert_uint_eq(snap.inflight, 0);
}
END_TEST

Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("scripts");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_script, 0, N(cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("heads");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_head, 0, N(head_cases));
	tcase_add_test(tc, test_probe_decided_at_head);
	tcase_add_test(tc, test_budget_of_a_streamed_body_starts_at_its_end);
	tcase_add_test(tc, test_budget_of_a_held_body_ignores_the_body_end);
	suite_add_tcase(s, tc);

	tc = tcase_create("decisions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_start_timeouts_cut);
	tcase_add_test(tc, test_start_attempt_cap_beyond_budget);
	tcase_add_test(tc, test_history);
	tcase_add_test(tc, test_outcome_counters);
	tcase_add_test(tc, test_cooldown_from_429);
	tcase_add_test(tc, test_half_open_gating);
	tcase_add_loop_test(tc, test_jitter, 0, N(jitter_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("guard");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_guard_token);
	tcase_add_test(tc, test_given_back_token_serves_another);
	tcase_add_test(tc, test_breaker_judges_requests);
	tcase_add_test(tc, test_retries_go_elsewhere);
	tcase_add_test(tc, test_no_endpoints_yet);
	tcase_add_test(tc, test_client_gone_after_a_failure_is_judged);
	tcase_add_test(tc, test_client_gone_before_any_end_is_not_judged);
	tcase_add_test(tc, test_deadline_cuts_are_timeouts);
	tcase_add_test(tc, test_guard_snapshot);
	suite_add_tcase(s, tc);
	return s;
}

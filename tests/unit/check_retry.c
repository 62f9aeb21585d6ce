/* Tests of daemon/policy/retry.c (SPEC 4.2-4.5): outcome classification and
 * breaker failures, the retry decision in SPEC 4.3's order, jittered backoff
 * (bounds and the distribution of tenacity's wait_random_exponential) and
 * Retry-After parsing. Randomness is a seeded rng. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "suites.h"

#include "config.h"
#include "retry.h"
#include "rng.h"


#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The built-in retry policy of SPEC 2 (base 200ms, max 3s, full jitter...). */
static struct retry_policy builtin_retry(void)
{
	struct policy pol;

	config_builtin_policy(&pol);
	return pol.retry;
}

/* min(max, base * 2^(n-1)) without overflow. */
static uint64_t expo(uint64_t base, uint64_t max, uint32_t n)
{
	uint64_t d = base;

	for (uint32_t i = 1; i < n && d < max; i++)
		d *= 2;
	return d < max ? d : max;
}

/* ==== retry: classification (SPEC 4.2) ================================== */

struct classify_case {
	int status;
	enum outcome outcome;
};

static const struct classify_case classify_default_cases[] = {
	{ 100, OUTCOME_OK },
	{ 200, OUTCOME_OK },
	{ 204, OUTCOME_OK },
	{ 301, OUTCOME_OK },
	{ 304, OUTCOME_OK },
	{ 399, OUTCOME_OK },
	/* every default retry status */
	{ 408, OUTCOME_STATUS },
	{ 425, OUTCOME_STATUS },
	{ 429, OUTCOME_STATUS },
	{ 500, OUTCOME_STATUS },
	{ 502, OUTCOME_STATUS },
	{ 503, OUTCOME_STATUS },
	{ 504, OUTCOME_STATUS },
	/* other 4xx / 5xx */
	{ 400, OUTCOME_CLIENT_ERROR },
	{ 401, OUTCOME_CLIENT_ERROR },
	{ 404, OUTCOME_CLIENT_ERROR },
	{ 409, OUTCOME_CLIENT_ERROR },
	{ 499, OUTCOME_CLIENT_ERROR },
	{ 501, OUTCOME_SERVER_ERROR },
	{ 505, OUTCOME_SERVER_ERROR },
	{ 599, OUTCOME_SERVER_ERROR },
};

START_TEST(test_classify_default)
{
	struct retry_policy p = builtin_retry();
	const struct classify_case *c = &classify_default_cases[_i];
	enum outcome got = retry_classify_status(&p, c->status);

	ck_assert_msg(got == c->outcome, "status %d: expected %s, got %s", c->status,
		      retry_outcome_name(c->outcome), retry_outcome_name(got));
}
END_TEST

/* statuses: [404, 501, 201]: listed ones are "status" whatever their class,
 * the defaults no longer are. */
static const struct classify_case classify_custom_cases[] = {
	{ 200, OUTCOME_OK },           { 201, OUTCOME_STATUS },       { 304, OUTCOME_OK },
	{ 404, OUTCOME_STATUS },       { 501, OUTCOME_STATUS },       { 400, OUTCOME_CLIENT_ERROR },
	{ 408, OUTCOME_CLIENT_ERROR }, { 429, OUTCOME_CLIENT_ERROR }, { 500, OUTCOME_SERVER_ERROR },
	{ 503, OUTCOME_SERVER_ERROR }, { 504, OUTCOME_SERVER_ERROR },
};

START_TEST(test_classify_custom)
{
	struct retry_policy p = builtin_retry();
	const struct classify_case *c = &classify_custom_cases[_i];
	enum outcome got;

	memset(p.statuses, 0, sizeof(p.statuses));
	p.statuses[404] = 1;
	p.statuses[501] = 1;
	p.statuses[201] = 1;
	got = retry_classify_status(&p, c->status);
	ck_assert_msg(got == c->outcome, "custom statuses, %d: expected %s, got %s", c->status,
		      retry_outcome_name(c->outcome), retry_outcome_name(got));
}
END_TEST

struct failure_case {
	enum outcome outcome;
	int status;
	int failure;
};

static const struct failure_case failure_cases[] = {
	{ OUTCOME_OK, 200, 0 },
	{ OUTCOME_OK, 304, 0 },
	{ OUTCOME_STATUS, 500, 1 },
	{ OUTCOME_STATUS, 502, 1 },
	{ OUTCOME_STATUS, 503, 1 },
	{ OUTCOME_STATUS, 504, 1 },
	{ OUTCOME_STATUS, 429, 0 },
	{ OUTCOME_STATUS, 408, 0 },
	{ OUTCOME_STATUS, 425, 0 },
	{ OUTCOME_STATUS, 404, 0 }, /* a custom 4xx retry status */
	{ OUTCOME_CLIENT_ERROR, 400, 0 },
	{ OUTCOME_CLIENT_ERROR, 404, 0 },
	{ OUTCOME_CLIENT_ERROR, 429, 0 },
	{ OUTCOME_SERVER_ERROR, 501, 1 },
	{ OUTCOME_SERVER_ERROR, 505, 1 },
	{ OUTCOME_CONNECT, 0, 1 },
	{ OUTCOME_RESET, 0, 1 },
	{ OUTCOME_TIMEOUT, 0, 1 },
	{ OUTCOME_SCHEMA, 200, 0 },
};

START_TEST(test_is_failure)
{
	const struct failure_case *c = &failure_cases[_i];

	ck_assert_msg(retry_is_failure(c->outcome, c->status) == c->failure,
		      "retry_is_failure(%s, %d): expected %d", retry_outcome_name(c->outcome),
		      c->status, c->failure);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(retry_outcome_name(OUTCOME_OK), "ok");
	ck_assert_str_eq(retry_outcome_name(OUTCOME_STATUS), "status");
	ck_assert_str_eq(retry_outcome_name(OUTCOME_CLIENT_ERROR), "client_error");
	ck_assert_str_eq(retry_outcome_name(OUTCOME_SERVER_ERROR), "server_error");
	ck_assert_str_eq(retry_outcome_name(OUTCOME_CONNECT), "connect");
	ck_assert_str_eq(retry_outcome_name(OUTCOME_RESET), "reset");
	ck_assert_str_eq(retry_outcome_name(OUTCOME_TIMEOUT), "timeout");
	ck_assert_str_eq(retry_outcome_name(OUTCOME_SCHEMA), "schema");
	ck_assert_str_eq(retry_stop_name(RETRY_STOP_ATTEMPTS), "attempts");
	ck_assert_str_eq(retry_stop_name(RETRY_STOP_METHOD), "method");
	ck_assert_str_eq(retry_stop_name(RETRY_STOP_BREAKER), "breaker");
	ck_assert_str_eq(retry_stop_name(RETRY_STOP_BUDGET), "budget");
	ck_assert_str_eq(retry_stop_name(RETRY_STOP_RETRY_AFTER), "retry_after");
	ck_assert_str_eq(retry_stop_name(RETRY_STOP_DEADLINE), "deadline");
}
END_TEST

/* ==== retry: the decision (SPEC 4.3, 4.5) =============================== */

/* A GET after a 503 on the first of 4 attempts, everything permitting. */
static struct retry_input go_input(void)
{
	return (struct retry_input){
		.outcome = OUTCOME_STATUS,
		.status = 503,
		.attempts = 1,
		.max_attempts = 4,
		.method = METHOD_GET,
		.idempotency = IDEM_KEY_NONE,
		.breaker_open = 0,
		.budget_has_room = 1,
		.remaining_ms = 10000,
		.prev_wait_ms = 0,
	};
}

static const char *stop_str(enum retry_stop s)
{
	return s == RETRY_GO ? "GO" : retry_stop_name(s);
}

static enum retry_stop decide(const struct retry_policy *p, const struct retry_input *in,
			      uint32_t *wait)
{
	struct rng rng;

	rng_seed(&rng, 42);
	*wait = 0xdeadbeef;
	return retry_decide(p, in, &rng, wait);
}

/* Every row has every refusal from its own one onwards: the first in SPEC
 * 4.3's order must win. */
struct order_case {
	const char *what;
	int first; /* 0 outcome .. 6 deadline, 7 none */
	enum retry_stop expect;
};

static const struct order_case order_cases[] = {
	{ "outcome", 0, RETRY_STOP_OUTCOME },   { "attempts", 1, RETRY_STOP_ATTEMPTS },
	{ "method", 2, RETRY_STOP_METHOD },     { "breaker", 3, RETRY_STOP_BREAKER },
	{ "budget", 4, RETRY_STOP_BUDGET },     { "retry_after", 5, RETRY_STOP_RETRY_AFTER },
	{ "deadline", 6, RETRY_STOP_DEADLINE }, { "none", 7, RETRY_GO },
};

START_TEST(test_decide_order)
{
	struct retry_policy p = builtin_retry();
	const struct order_case *c = &order_cases[_i];
	struct retry_input in = go_input();
	enum retry_stop got;
	uint32_t wait;

	p.jitter = JITTER_NONE; /* wait 200ms before attempt 2 */
	in.status = 429;
	in.remaining_ms = 40000;
	if (c->first <= 0) {
		in.outcome = OUTCOME_CLIENT_ERROR; /* a 429 not in statuses */
		p.statuses[429] = 0;
	}
	if (c->first <= 1)
		in.attempts = in.max_attempts;
	if (c->first <= 2) {
		in.method = METHOD_POST;
		in.idempotency = IDEM_KEY_NONE;
	}
	if (c->first <= 3)
		in.breaker_open = 1;
	if (c->first <= 4)
		in.budget_has_room = 0;
	if (c->first <= 5)
		/* beyond retry_after.max (30s) */
		in.retry_after = (struct retry_after){ .set = 1, .ms = 31000 };
	if (c->first <= 6) {
		/* 200ms of backoff + a minimal attempt do not fit; with a
		 * Retry-After row the RA is also beyond the remaining budget */
		in.remaining_ms = 200 + RETRY_MIN_ATTEMPT_MS - 1;
	}
	got = decide(&p, &in, &wait);
	ck_assert_msg(got == c->expect, "first refusal %s: expected %s, got %s", c->what,
		      stop_str(c->expect), stop_str(got));
	if (got == RETRY_GO)
		ck_assert_uint_eq(wait, 200);
}
END_TEST

/* Method rules: connect is safe for every method; other outcomes of
 * methods not in `methods` follow `unsafe`. */
struct method_case {
	int method;
	enum outcome outcome;
	enum unsafe_retry unsafe;
	int key; /* 0 none, 1 honoured (the app's, or idempotency.honored), MINTED */
	enum retry_stop expect;
	int status; /* of an OUTCOME_STATUS row; 0: 502 */
};

#define MINTED 2

static const struct method_case method_cases[] = {
	/* connect: nothing was sent */
	{ METHOD_POST, OUTCOME_CONNECT, UNSAFE_NEVER, 0, RETRY_GO, 0 },
	{ METHOD_POST, OUTCOME_CONNECT, UNSAFE_WITH_KEY, 0, RETRY_GO, 0 },
	{ METHOD_PATCH, OUTCOME_CONNECT, UNSAFE_NEVER, 0, RETRY_GO, 0 },
	{ -1, OUTCOME_CONNECT, UNSAFE_NEVER, 0, RETRY_GO, 0 },
	/* with_key */
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_WITH_KEY, 1, RETRY_GO, 0 },
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_WITH_KEY, 0, RETRY_STOP_METHOD, 0 },
	{ METHOD_POST, OUTCOME_RESET, UNSAFE_WITH_KEY, 1, RETRY_GO, 0 },
	{ METHOD_POST, OUTCOME_RESET, UNSAFE_WITH_KEY, 0, RETRY_STOP_METHOD, 0 },
	{ METHOD_PATCH, OUTCOME_TIMEOUT, UNSAFE_WITH_KEY, 1, RETRY_GO, 0 },
	{ METHOD_PATCH, OUTCOME_TIMEOUT, UNSAFE_WITH_KEY, 0, RETRY_STOP_METHOD, 0 },
	/* with_key and a key braced minted: only after answers that show the
	 * upstream did not act (connect failures, 429, 503) */
	{ METHOD_POST, OUTCOME_CONNECT, UNSAFE_WITH_KEY, MINTED, RETRY_GO, 0 },
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_WITH_KEY, MINTED, RETRY_GO, 503 },
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_WITH_KEY, MINTED, RETRY_GO, 429 },
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_WITH_KEY, MINTED, RETRY_STOP_METHOD, 502 },
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_WITH_KEY, MINTED, RETRY_STOP_METHOD, 504 },
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_WITH_KEY, MINTED, RETRY_STOP_METHOD, 500 },
	{ METHOD_POST, OUTCOME_TIMEOUT, UNSAFE_WITH_KEY, MINTED, RETRY_STOP_METHOD, 0 },
	{ METHOD_POST, OUTCOME_RESET, UNSAFE_WITH_KEY, MINTED, RETRY_STOP_METHOD, 0 },
	{ METHOD_PATCH, OUTCOME_TIMEOUT, UNSAFE_WITH_KEY, MINTED, RETRY_STOP_METHOD, 0 },
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_NEVER, MINTED, RETRY_STOP_METHOD, 503 },
	{ METHOD_POST, OUTCOME_TIMEOUT, UNSAFE_ALWAYS, MINTED, RETRY_GO, 0 },
	/* never */
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_NEVER, 1, RETRY_STOP_METHOD, 0 },
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_NEVER, 0, RETRY_STOP_METHOD, 0 },
	{ METHOD_POST, OUTCOME_RESET, UNSAFE_NEVER, 1, RETRY_STOP_METHOD, 0 },
	{ METHOD_PATCH, OUTCOME_TIMEOUT, UNSAFE_NEVER, 1, RETRY_STOP_METHOD, 0 },
	/* always */
	{ METHOD_POST, OUTCOME_STATUS, UNSAFE_ALWAYS, 0, RETRY_GO, 0 },
	{ METHOD_POST, OUTCOME_RESET, UNSAFE_ALWAYS, 0, RETRY_GO, 0 },
	{ METHOD_PATCH, OUTCOME_TIMEOUT, UNSAFE_ALWAYS, 0, RETRY_GO, 0 },
	/* methods in the default list are retried freely */
	{ METHOD_GET, OUTCOME_STATUS, UNSAFE_NEVER, 0, RETRY_GO, 0 },
	{ METHOD_HEAD, OUTCOME_RESET, UNSAFE_NEVER, 0, RETRY_GO, 0 },
	{ METHOD_OPTIONS, OUTCOME_TIMEOUT, UNSAFE_NEVER, 0, RETRY_GO, 0 },
	{ METHOD_PUT, OUTCOME_STATUS, UNSAFE_NEVER, 0, RETRY_GO, 0 },
	{ METHOD_DELETE, OUTCOME_RESET, UNSAFE_NEVER, 0, RETRY_GO, 0 },
	{ METHOD_TRACE, OUTCOME_STATUS, UNSAFE_NEVER, 0, RETRY_STOP_METHOD, 0 },
	{ METHOD_TRACE, OUTCOME_STATUS, UNSAFE_WITH_KEY, 1, RETRY_GO, 0 },
};

START_TEST(test_decide_method)
{
	struct retry_policy p = builtin_retry();
	const struct method_case *c = &method_cases[_i];
	struct retry_input in = go_input();
	enum retry_stop got;
	uint32_t wait;

	p.unsafe = c->unsafe;
	in.method = c->method;
	in.outcome = c->outcome;
	in.status = c->outcome != OUTCOME_STATUS ? 0 : c->status ? c->status : 502;
	in.idempotency = c->key == MINTED ? IDEM_KEY_MINTED
			 : c->key         ? IDEM_KEY_HONORED
					  : IDEM_KEY_NONE;
	got = decide(&p, &in, &wait);
	ck_assert_msg(got == c->expect,
		      "row %d (method %d, %s, unsafe %d, key %d): expected %s, got %s", _i,
		      c->method, retry_outcome_name(c->outcome), (int)c->unsafe, c->key,
		      stop_str(c->expect), stop_str(got));
}
END_TEST

/* methods: [GET] only: PUT now follows unsafe; methods: [POST] retries
 * POST even under unsafe: never. */
START_TEST(test_decide_methods_list)
{
	struct retry_policy p = builtin_retry();
	struct retry_input in = go_input();
	uint32_t wait;

	p.methods = METHOD_BIT(METHOD_GET);
	p.unsafe = UNSAFE_NEVER;
	in.method = METHOD_GET;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_GO);
	in.method = METHOD_PUT;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_METHOD);
	in.method = METHOD_DELETE;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_METHOD);
	p.unsafe = UNSAFE_WITH_KEY;
	in.method = METHOD_PUT;
	in.idempotency = IDEM_KEY_HONORED;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_GO);

	p.methods = METHOD_BIT(METHOD_POST);
	p.unsafe = UNSAFE_NEVER;
	in.idempotency = IDEM_KEY_NONE;
	in.method = METHOD_POST;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_GO);
	in.method = METHOD_GET;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_METHOD);

	p.methods = 0;
	in.method = METHOD_GET;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_METHOD);
	in.outcome = OUTCOME_CONNECT;
	in.status = 0;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_GO);
}
END_TEST

struct transport_case {
	uint32_t transport;
	enum outcome outcome;
	enum retry_stop expect;
};

static const struct transport_case transport_cases[] = {
	{ TRANSPORT_CONNECT | TRANSPORT_RESET | TRANSPORT_TIMEOUT, OUTCOME_CONNECT, RETRY_GO },
	{ TRANSPORT_CONNECT | TRANSPORT_RESET | TRANSPORT_TIMEOUT, OUTCOME_RESET, RETRY_GO },
	{ TRANSPORT_CONNECT | TRANSPORT_RESET | TRANSPORT_TIMEOUT, OUTCOME_TIMEOUT, RETRY_GO },
	/* timeout removed */
	{ TRANSPORT_CONNECT | TRANSPORT_RESET, OUTCOME_CONNECT, RETRY_GO },
	{ TRANSPORT_CONNECT | TRANSPORT_RESET, OUTCOME_RESET, RETRY_GO },
	{ TRANSPORT_CONNECT | TRANSPORT_RESET, OUTCOME_TIMEOUT, RETRY_STOP_OUTCOME },
	/* connect only */
	{ TRANSPORT_CONNECT, OUTCOME_RESET, RETRY_STOP_OUTCOME },
	{ TRANSPORT_CONNECT, OUTCOME_TIMEOUT, RETRY_STOP_OUTCOME },
	{ TRANSPORT_CONNECT, OUTCOME_CONNECT, RETRY_GO },
	/* none */
	{ 0, OUTCOME_CONNECT, RETRY_STOP_OUTCOME },
	{ 0, OUTCOME_RESET, RETRY_STOP_OUTCOME },
	{ 0, OUTCOME_TIMEOUT, RETRY_STOP_OUTCOME },
	/* the transport list does not affect statuses */
	{ 0, OUTCOME_STATUS, RETRY_GO },
};

START_TEST(test_decide_transport)
{
	struct retry_policy p = builtin_retry();
	const struct transport_case *c = &transport_cases[_i];
	struct retry_input in = go_input();
	enum retry_stop got;
	uint32_t wait;

	p.transport = c->transport;
	in.outcome = c->outcome;
	in.status = c->outcome == OUTCOME_STATUS ? 503 : 0;
	got = decide(&p, &in, &wait);
	ck_assert_msg(got == c->expect, "transport %u, %s: expected %s, got %s", c->transport,
		      retry_outcome_name(c->outcome), stop_str(c->expect), stop_str(got));
}
END_TEST

/* Outcomes that are never retriable, whatever else holds. */
START_TEST(test_decide_not_retriable)
{
	static const struct {
		enum outcome o;
		int status;
	} rows[] = {
		{ OUTCOME_OK, 200 },           { OUTCOME_OK, 304 },
		{ OUTCOME_CLIENT_ERROR, 404 }, { OUTCOME_CLIENT_ERROR, 400 },
		{ OUTCOME_SERVER_ERROR, 501 }, { OUTCOME_SERVER_ERROR, 505 },
	};
	struct retry_policy p = builtin_retry();
	struct retry_input in = go_input();
	uint32_t wait;

	p.unsafe = UNSAFE_ALWAYS;
	p.on_schema_violation = 1;
	for (int i = 0; i < N(rows); i++) {
		in.outcome = rows[i].o;
		in.status = rows[i].status;
		ck_assert_msg(decide(&p, &in, &wait) == RETRY_STOP_OUTCOME, "%s %d retried",
			      retry_outcome_name(rows[i].o), rows[i].status);
	}
}
END_TEST

START_TEST(test_decide_schema)
{
	struct retry_policy p = builtin_retry();
	struct retry_input in = go_input();
	uint32_t wait;

	in.outcome = OUTCOME_SCHEMA;
	in.status = 200;
	p.on_schema_violation = 0;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_OUTCOME);
	p.on_schema_violation = 1;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_GO);
	/* a schema failure comes from a sent request: unsafe rules apply */
	in.method = METHOD_POST;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_METHOD);
	in.idempotency = IDEM_KEY_HONORED;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_GO);
}
END_TEST

START_TEST(test_decide_attempts)
{
	struct retry_policy p = builtin_retry();
	struct retry_input in = go_input();
	uint32_t wait;

	in.max_attempts = 4;
	for (uint32_t a = 1; a <= 3; a++) {
		in.attempts = a;
		ck_assert_msg(decide(&p, &in, &wait) == RETRY_GO, "attempt %u of 4 not retried", a);
	}
	in.attempts = 4;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_ATTEMPTS);
	in.attempts = 5;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_ATTEMPTS);
	in.max_attempts = 1;
	in.attempts = 1;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_ATTEMPTS);
}
END_TEST

/* The wait of a GO is the backoff retry_backoff draws from the same rng. */
START_TEST(test_decide_wait_is_backoff)
{
	static const enum jitter jitters[] = { JITTER_FULL, JITTER_EQUAL, JITTER_DECORRELATED,
					       JITTER_NONE };
	struct retry_policy p = builtin_retry();
	struct retry_input in = go_input();

	in.remaining_ms = 60000;
	for (int j = 0; j < N(jitters); j++) {
		p.jitter = jitters[j];
		for (uint32_t a = 1; a <= 3; a++) {
			for (uint64_t seed = 1; seed <= 50; seed++) {
				struct rng r1, r2;
				uint32_t wait = 0, expect;

				in.attempts = a;
				in.prev_wait_ms = a == 1 ? 0 : 300 * a;
				rng_seed(&r1, seed);
				r2 = r1;
				expect = retry_backoff(&p, a, in.prev_wait_ms, &r2);
				ck_assert_int_eq(retry_decide(&p, &in, &r1, &wait), RETRY_GO);
				ck_assert_msg(wait == expect,
					      "jitter %d attempts %u: wait %u, backoff %u",
					      (int)p.jitter, a, wait, expect);
			}
		}
	}
}
END_TEST

/* Retry-After (SPEC 4.5). Jitter none: the backoff before attempt 2 is 200ms. */
struct ra_case {
	const char *what;
	int status;
	int honor;
	int64_t ra_ms;
	uint32_t remaining_ms;
	enum retry_stop expect;
	uint32_t wait;
};

static const struct ra_case ra_cases[] = {
	{ "no Retry-After", 503, 1, -1, 10000, RETRY_GO, 200 },
	{ "RA 0", 503, 1, 0, 10000, RETRY_GO, 200 },
	{ "RA below backoff", 503, 1, 100, 10000, RETRY_GO, 200 },
	{ "RA equal backoff", 429, 1, 200, 10000, RETRY_GO, 200 },
	{ "RA above backoff 429", 429, 1, 1000, 10000, RETRY_GO, 1000 },
	{ "RA above backoff 503", 503, 1, 2500, 10000, RETRY_GO, 2500 },
	{ "RA = max", 429, 1, 30000, 40000, RETRY_GO, 30000 },
	{ "RA beyond max", 429, 1, 30001, 40000, RETRY_STOP_RETRY_AFTER, 0 },
	{ "RA far beyond max", 503, 1, 3600000, 40000, RETRY_STOP_RETRY_AFTER, 0 },
	{ "RA beyond remaining", 429, 1, 5001, 5000, RETRY_STOP_RETRY_AFTER, 0 },
	{ "RA beyond remaining 503", 503, 1, 9000, 8000, RETRY_STOP_RETRY_AFTER, 0 },
	/* RA fits, RA + a minimal attempt does not: deadline, not retry_after */
	{ "RA = remaining", 429, 1, 5000, 5000, RETRY_STOP_DEADLINE, 0 },
	{ "RA + min attempt > remaining", 429, 1, 1000, 1000 + RETRY_MIN_ATTEMPT_MS - 1,
	  RETRY_STOP_DEADLINE, 0 },
	{ "RA + min attempt = remaining", 429, 1, 1000, 1000 + RETRY_MIN_ATTEMPT_MS, RETRY_GO,
	  1000 },
	/* honor: false ignores it entirely */
	{ "honor false", 429, 0, 1000, 10000, RETRY_GO, 200 },
	{ "honor false beyond max", 503, 0, 3600000, 10000, RETRY_GO, 200 },
	{ "honor false beyond remaining", 503, 0, 9000, 8000, RETRY_GO, 200 },
	/* only 429 and 503 carry a Retry-After that counts */
	{ "502 RA", 502, 1, 1000, 10000, RETRY_GO, 200 },
	{ "502 RA beyond max", 502, 1, 3600000, 10000, RETRY_GO, 200 },
	{ "500 RA", 500, 1, 5000, 10000, RETRY_GO, 200 },
	{ "504 RA", 504, 1, 5000, 10000, RETRY_GO, 200 },
	{ "408 RA", 408, 1, 5000, 10000, RETRY_GO, 200 },
};

START_TEST(test_decide_retry_after)
{
	struct retry_policy p = builtin_retry();
	const struct ra_case *c = &ra_cases[_i];
	struct retry_input in = go_input();
	enum retry_stop got;
	uint32_t wait;

	p.jitter = JITTER_NONE;
	p.retry_after_honor = c->honor;
	in.status = c->status;
	if (c->ra_ms >= 0) /* -1 in the table: none */
		in.retry_after = (struct retry_after){ .set = 1, .ms = (uint64_t)c->ra_ms };
	in.remaining_ms = c->remaining_ms;
	got = decide(&p, &in, &wait);
	ck_assert_msg(got == c->expect, "%s: expected %s, got %s", c->what, stop_str(c->expect),
		      stop_str(got));
	if (got == RETRY_GO)
		ck_assert_msg(wait == c->wait, "%s: wait %u, expected %u", c->what, wait, c->wait);
}
END_TEST

/* With full jitter the wait is max(the drawn backoff, Retry-After): never
 * earlier than the server asked, never shorter than the backoff. */
START_TEST(test_decide_retry_after_jitter)
{
	struct retry_policy p = builtin_retry();
	struct retry_input in = go_input();
	int below = 0, above = 0;

	in.status = 429;
	in.attempts = 3; /* backoff uniform(0, 800) */
	in.retry_after = (struct retry_after){ .set = 1, .ms = 400 };
	for (uint64_t seed = 1; seed <= 200; seed++) {
		struct rng r1, r2;
		uint32_t wait = 0, backoff;

		rng_seed(&r1, seed);
		r2 = r1;
		backoff = retry_backoff(&p, 3, 0, &r2);
		ck_assert_int_eq(retry_decide(&p, &in, &r1, &wait), RETRY_GO);
		ck_assert_uint_eq(wait, backoff > 400 ? backoff : 400);
		if (backoff < 400)
			below++;
		else
			above++;
	}
	ck_assert(below > 0 && above > 0);
}
END_TEST

/* The backoff plus RETRY_MIN_ATTEMPT_MS must fit in what is left. */
START_TEST(test_decide_deadline)
{
	struct retry_policy p = builtin_retry();
	struct retry_input in = go_input();
	uint32_t wait;

	p.jitter = JITTER_NONE;
	ck_assert_int_eq(RETRY_MIN_ATTEMPT_MS, 50);
	/* attempt 1 → 200ms */
	in.remaining_ms = 250;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_GO);
	ck_assert_uint_eq(wait, 200);
	in.remaining_ms = 249;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_DEADLINE);
	in.remaining_ms = 0;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_DEADLINE);
	/* attempt 3 → 800ms */
	in.attempts = 3;
	in.remaining_ms = 850;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_GO);
	ck_assert_uint_eq(wait, 800);
	in.remaining_ms = 849;
	ck_assert_int_eq(decide(&p, &in, &wait), RETRY_STOP_DEADLINE);
	/* full jitter: GO exactly when the drawn wait fits */
	p.jitter = JITTER_FULL;
	in.attempts = 3; /* uniform(0, 800) */
	in.remaining_ms = 500;
	{
		int go = 0, stop = 0;

		for (uint64_t seed = 1; seed <= 200; seed++) {
			struct rng r1, r2;
			enum retry_stop s;
			uint32_t backoff;

			rng_seed(&r1, seed);
			r2 = r1;
			backoff = retry_backoff(&p, 3, 0, &r2);
			s = retry_decide(&p, &in, &r1, &wait);
			ck_assert_int_eq(s, backoff + RETRY_MIN_ATTEMPT_MS <= 500
						? RETRY_GO
						: RETRY_STOP_DEADLINE);
			if (s == RETRY_GO)
				ck_assert_uint_eq(wait, backoff);
			go += s == RETRY_GO;
			stop += s != RETRY_GO;
		}
		ck_assert(go > 0 && stop > 0);
	}
}
END_TEST

/* ==== retry: backoff (SPEC 4.4) ========================================= */

#define DRAWS_PER_N 2000

START_TEST(test_backoff_none)
{
	static const uint32_t expect[] = { 200, 400, 800, 1600, 3000, 3000, 3000, 3000 };
	struct retry_policy p = builtin_retry();
	struct rng rng;

	p.jitter = JITTER_NONE;
	rng_seed(&rng, 1);
	for (uint32_t n = 1; n <= 8; n++)
		ck_assert_msg(retry_backoff(&p, n, 0, &rng) == expect[n - 1],
			      "none, n=%u: expected %u", n, expect[n - 1]);
	/* another base and max */
	p.backoff_base_ms = 100;
	p.backoff_max_ms = 1000;
	ck_assert_uint_eq(retry_backoff(&p, 1, 0, &rng), 100);
	ck_assert_uint_eq(retry_backoff(&p, 4, 0, &rng), 800);
	ck_assert_uint_eq(retry_backoff(&p, 5, 0, &rng), 1000);
}
END_TEST

START_TEST(test_backoff_full_bounds)
{
	struct retry_policy p = builtin_retry();
	struct rng rng;

	p.jitter = JITTER_FULL;
	rng_seed(&rng, 7);
	for (uint32_t n = 1; n <= 8; n++) {
		uint64_t d = expo(200, 3000, n), lo = UINT64_MAX, hi = 0;

		for (int i = 0; i < DRAWS_PER_N; i++) {
			uint32_t w = retry_backoff(&p, n, 0, &rng);

			ck_assert_msg(w <= d, "full n=%u: %u > %lu", n, w, (unsigned long)d);
			lo = w < lo ? w : lo;
			hi = w > hi ? w : hi;
		}
		/* the whole range is used */
		ck_assert_msg(lo < d / 20 && hi > d - d / 20,
			      "full n=%u: drew only [%lu, %lu] of [0, %lu]", n, (unsigned long)lo,
			      (unsigned long)hi, (unsigned long)d);
	}
}
END_TEST

START_TEST(test_backoff_equal_bounds)
{
	struct retry_policy p = builtin_retry();
	struct rng rng;

	p.jitter = JITTER_EQUAL;
	rng_seed(&rng, 8);
	for (uint32_t n = 1; n <= 8; n++) {
		uint64_t d = expo(200, 3000, n), lo = UINT64_MAX, hi = 0;

		for (int i = 0; i < DRAWS_PER_N; i++) {
			uint32_t w = retry_backoff(&p, n, 0, &rng);

			ck_assert_msg(w >= d / 2 && w <= d, "equal n=%u: %u outside [%lu, %lu]", n,
				      w, (unsigned long)(d / 2), (unsigned long)d);
			lo = w < lo ? w : lo;
			hi = w > hi ? w : hi;
		}
		ck_assert_msg(lo < d / 2 + d / 20 && hi > d - d / 20,
			      "equal n=%u: drew only [%lu, %lu]", n, (unsigned long)lo,
			      (unsigned long)hi);
	}
}
END_TEST

/* Decorrelated: each wait in [base, min(max, 3 * previous)], the first with
 * previous = 0 in [base, 3 * base]. */
START_TEST(test_backoff_decorrelated_bounds)
{
	struct retry_policy p = builtin_retry();
	struct rng rng;
	int at_max = 0;

	p.jitter = JITTER_DECORRELATED;
	rng_seed(&rng, 9);
	for (int chain = 0; chain < DRAWS_PER_N; chain++) {
		uint32_t prev = 0;

		for (uint32_t n = 1; n <= 8; n++) {
			uint64_t hi = 3 * (uint64_t)(prev ? prev : 200);
			uint32_t w = retry_backoff(&p, n, prev, &rng);

			hi = hi < 3000 ? hi : 3000;
			ck_assert_msg(w >= 200 && w <= hi,
				      "decorrelated n=%u prev=%u: %u outside [200, %lu]", n, prev,
				      w, (unsigned long)hi);
			at_max += w == 3000;
			prev = w;
		}
	}
	ck_assert_msg(at_max > 0, "decorrelated never reached the cap");
	/* from a fixed previous, the range [base, 3*prev] is used */
	{
		uint32_t lo = UINT32_MAX, hi = 0;

		for (int i = 0; i < DRAWS_PER_N; i++) {
			uint32_t w = retry_backoff(&p, 3, 500, &rng);

			ck_assert(w >= 200 && w <= 1500);
			lo = w < lo ? w : lo;
			hi = w > hi ? w : hi;
		}
		ck_assert_msg(lo < 260 && hi > 1440, "decorrelated prev 500: drew only [%u, %u]",
			      lo, hi);
	}
	/* a big previous: capped at max */
	for (int i = 0; i < 100; i++) {
		uint32_t w = retry_backoff(&p, 2, 3000, &rng);

		ck_assert(w >= 200 && w <= 3000);
	}
	ck_assert_uint_le(retry_backoff(&p, 2, UINT32_MAX, &rng), 3000);
}
END_TEST

/* Huge n: no overflow in base * 2^(n-1), the cap holds. */
START_TEST(test_backoff_huge_n)
{
	static const uint32_t ns[] = { 9, 16, 31, 32, 33, 63, 64, 65, 1000, UINT32_MAX };
	static const struct {
		uint32_t base, max;
	} policies[] = {
		{ 200, 3000 },
		{ 3000, 3000000 },
		{ 1, UINT32_MAX },
		{ 100000, 4000000000u },
	};
	struct retry_policy p = builtin_retry();
	struct rng rng;

	rng_seed(&rng, 10);
	for (int k = 0; k < N(policies); k++) {
		p.backoff_base_ms = policies[k].base;
		p.backoff_max_ms = policies[k].max;
		for (int i = 0; i < N(ns); i++) {
			uint64_t d = expo(policies[k].base, policies[k].max, ns[i]);

			p.jitter = JITTER_NONE;
			ck_assert_msg(retry_backoff(&p, ns[i], 0, &rng) == d,
				      "none base %u max %u n=%u: got %u, expected %lu",
				      policies[k].base, policies[k].max, ns[i],
				      retry_backoff(&p, ns[i], 0, &rng), (unsigned long)d);
			p.jitter = JITTER_FULL;
			for (int j = 0; j < 50; j++)
				ck_assert_uint_le(retry_backoff(&p, ns[i], 0, &rng), d);
			p.jitter = JITTER_EQUAL;
			for (int j = 0; j < 50; j++) {
				uint32_t w = retry_backoff(&p, ns[i], 0, &rng);

				ck_assert(w >= d / 2 && w <= d);
			}
		}
	}
}
END_TEST

/* Full jitter has tenacity's wait_random_exponential(multiplier=base,
 * max=max) distribution: uniform(0, min(max, base * 2^(n-1))). */
#define DIST_DRAWS 100000
#define DIST_BINS 10

START_TEST(test_backoff_full_distribution)
{
	struct retry_policy p = builtin_retry();
	uint32_t n = (uint32_t)_i;
	uint64_t d = expo(200, 3000, n);
	uint32_t bins[DIST_BINS] = { 0 };
	double sum = 0, mean, expect_bin = DIST_DRAWS / (double)DIST_BINS;
	struct rng rng;

	p.jitter = JITTER_FULL;
	rng_seed(&rng, 1000 + n);
	for (int i = 0; i < DIST_DRAWS; i++) {
		uint32_t w = retry_backoff(&p, n, 0, &rng);

		ck_assert_uint_le(w, d);
		sum += w;
		bins[(uint64_t)w * DIST_BINS / (d + 1)]++;
	}
	mean = sum / DIST_DRAWS;
	ck_assert_msg(mean > 0.98 * (double)d / 2 && mean < 1.02 * (double)d / 2,
		      "full n=%u: mean %.1f, expected %.1f ± 2%%", n, mean, (double)d / 2);
	for (int b = 0; b < DIST_BINS; b++)
		ck_assert_msg(bins[b] > 0.9 * expect_bin && bins[b] < 1.1 * expect_bin,
			      "full n=%u: bin %d holds %u, expected %.0f ± 10%%", n, b, bins[b],
			      expect_bin);
}
END_TEST

/* The worst total wait of NOTES' example: 0.2 + 0.4 + 0.8 s for 4 attempts. */
START_TEST(test_backoff_worst_total)
{
	struct retry_policy p = builtin_retry();
	struct rng rng;
	uint32_t total = 0;

	p.jitter = JITTER_NONE;
	rng_seed(&rng, 1);
	for (uint32_t n = 1; n < p.attempts; n++)
		total += retry_backoff(&p, n, 0, &rng);
	ck_assert_uint_eq(total, 1400);
}
END_TEST

/* The floor the fleet's reconnects use: full jitter from min_ms, and every
 * mode raised to it; no floor draws what retry_backoff draws. */
START_TEST(test_backoff_floor)
{
	const struct retry_backoff full = { 100, 5000, 10, JITTER_FULL };
	const struct retry_backoff tiny = { 4, 5, 10, JITTER_FULL };
	const struct retry_backoff none = { 4, 5, 10, JITTER_NONE };
	struct retry_policy p = builtin_retry();
	const struct retry_backoff same = { p.backoff_base_ms, p.backoff_max_ms, 0, p.jitter };
	struct rng a, b, c;

	rng_seed(&a, 3);
	rng_seed(&b, 4);
	rng_seed(&c, 4);
	for (uint32_t n = 1; n < 12; n++) {
		for (int k = 0; k < 100; k++) {
			uint32_t w = retry_backoff_wait(&full, n, 0, &a);

			ck_assert_uint_ge(w, 10);
			ck_assert_uint_le(w, n < 7 ? 100u << (n - 1) : 5000);
			ck_assert_uint_eq(retry_backoff_wait(&tiny, n, 0, &a), 10);
			ck_assert_uint_eq(retry_backoff_wait(&none, n, 0, &a), 10);
			ck_assert_uint_eq(retry_backoff_wait(&same, n, 0, &b),
					  retry_backoff(&p, n, 0, &c));
		}
	}
}
END_TEST

/* ==== retry: Retry-After parsing ======================================== */

struct ra_parse_case {
	const char *in;
	int ret;
	int64_t ms;
};

static const struct ra_parse_case ra_parse_cases[] = {
	{ "0", 0, 0 },
	{ "1", 0, 1000 },
	{ "120", 0, 120000 },
	{ " 5 ", 0, 5000 },
	{ "\t7\t", 0, 7000 },
	{ "30", 0, 30000 },
	{ "0030", 0, 30000 },
	{ "86400", 0, 86400000 },
	/* garbage */
	{ "soon", -EINVAL, 0 },
	{ "1.5", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ "", -EINVAL, 0 },
	{ " ", -EINVAL, 0 },
	{ "5s", -EINVAL, 0 },
	{ "5 5", -EINVAL, 0 },
	{ "0x10", -EINVAL, 0 },
	{ "1e3", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:49:37", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:49:37 GMT junk", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994", -EINVAL, 0 },
	{ "06 Nov 1994 08:49:37 GMT", -EINVAL, 0 },
};

START_TEST(test_ra_parse_table)
{
	const struct ra_parse_case *c = &ra_parse_cases[_i];
	int64_t ms = -12345;
	int ret = retry_after_parse(c->in, 1700000000, &ms);

	ck_assert_msg(ret == c->ret, "\"%s\": returned %d, expected %d", c->in, ret, c->ret);
	if (c->ret == 0)
		ck_assert_msg(ms == c->ms, "\"%s\": %lld ms, expected %lld", c->in, (long long)ms,
			      (long long)c->ms);
}
END_TEST

START_TEST(test_ra_parse_null)
{
	int64_t ms;

	ck_assert_int_eq(retry_after_parse(NULL, 1700000000, &ms), -EINVAL);
}
END_TEST

/* IMF-fixdate written with strftime from a fixed now. */
START_TEST(test_ra_parse_imf_future)
{
	static const int64_t deltas[] = { 1, 45, 3600, 86399 };
	const time_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */

	for (int i = 0; i < N(deltas); i++) {
		time_t t = now + deltas[i];
		struct tm tm;
		char buf[64];
		int64_t ms = -1;

		ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
		ck_assert_uint_gt(strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm), 0);
		ck_assert_msg(retry_after_parse(buf, now, &ms) == 0, "\"%s\" refused", buf);
		ck_assert_msg(ms == deltas[i] * 1000, "\"%s\": %lld ms, expected %lld", buf,
			      (long long)ms, (long long)(deltas[i] * 1000));
	}
}
END_TEST

/* The three forms of RFC 9110 §5.6.7 for the same instant, 784111777. */
static const char *const date_forms[] = {
	"Sun, 06 Nov 1994 08:49:37 GMT",  /* IMF-fixdate */
	"Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
	"Sun Nov  6 08:49:37 1994",       /* asctime */
};

START_TEST(test_ra_parse_forms_future)
{
	int64_t ms = -1;

	ck_assert_msg(retry_after_parse(date_forms[_i], 784111777 - 90, &ms) == 0, "\"%s\" refused",
		      date_forms[_i]);
	ck_assert_msg(ms == 90000, "\"%s\": %lld ms, expected 90000", date_forms[_i],
		      (long long)ms);
	ck_assert_int_eq(retry_after_parse(date_forms[_i], 784111777 - 1, &ms), 0);
	ck_assert_int_eq(ms, 1000);
}
END_TEST

START_TEST(test_ra_parse_forms_past)
{
	int64_t ms = -1;

	ck_assert_int_eq(retry_after_parse(date_forms[_i], 784111777 + 1000, &ms), 0);
	ck_assert_msg(ms == 0, "\"%s\" in the past: %lld ms", date_forms[_i], (long long)ms);
	ms = -1;
	ck_assert_int_eq(retry_after_parse(date_forms[_i], 784111777, &ms), 0);
	ck_assert_msg(ms == 0, "\"%s\" now: %lld ms", date_forms[_i], (long long)ms);
	ms = -1;
	ck_assert_int_eq(retry_after_parse(date_forms[_i], 1700000000, &ms), 0);
	ck_assert_int_eq(ms, 0);
}
END_TEST

/* Past dates around the epoch are past dates too. */
START_TEST(test_ra_parse_epoch_edges)
{
	static const char *const dates[] = {
		"Thu, 01 Jan 1970 00:00:00 GMT",
		"Thu, 01 Jan 1970 00:00:01 GMT",
		"Wed, 31 Dec 1969 23:59:58 GMT",
		"Wed, 31 Dec 1969 23:59:59 GMT", /* timegm() gives -1 */
		"Wednesday, 31-Dec-69 23:59:59 GMT",
		"Wed Dec 31 23:59:59 1969",
	};

	for (int i = 0; i < N(dates); i++) {
		int64_t ms = -1;
		int ret = retry_after_parse(dates[i], 1700000000, &ms);

		ck_assert_msg(ret == 0 && ms == 0, "\"%s\": returned %d, %lld ms; expected 0, 0 ms",
			      dates[i], ret, (long long)ms);
	}
}
END_TEST

/* A delta too big for any integer type stays big: beyond every limit,
 * never wrapped to something small or negative. */
START_TEST(test_ra_parse_huge)
{
	static const char *const huge[] = {
		"31622400",             /* a year and a day */
		"4294967296",           /* 2^32 s */
		"9223372036854775807",  /* INT64_MAX s */
		"18446744073709551617", /* 2^64 + 1: 1 when wrapped */
		"100000000000000000000000000000000000000000000000000000000000000001",
	};

	for (int i = 0; i < N(huge); i++) {
		int64_t ms = -1;

		ck_assert_msg(retry_after_parse(huge[i], 1700000000, &ms) == 0, "\"%s\" refused",
			      huge[i]);
		ck_assert_msg(ms == 31622400LL * 1000, "\"%s\": %lld ms", huge[i], (long long)ms);
	}
}
END_TEST

/* A date centuries ahead reads as the same year-long cap as a huge delta. */
START_TEST(test_ra_parse_far_date)
{
	int64_t ms = -1;

	ck_assert_int_eq(retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT", 1700000000, &ms), 0);
	ck_assert_int_eq(ms, 31622400LL * 1000);
	ck_assert_int_eq(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 1700000000, &ms), 0);
	ck_assert_int_eq(ms, 0);
}
END_TEST

Suite *retry_suite(void)
{
	Suite *s = suite_create("retry");
	TCase *tc = tcase_create("classify");

	tcase_add_loop_test(tc, test_classify_default, 0, N(classify_default_cases));
	tcase_add_loop_test(tc, test_classify_custom, 0, N(classify_custom_cases));
	tcase_add_loop_test(tc, test_is_failure, 0, N(failure_cases));
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("decide");
	tcase_add_loop_test(tc, test_decide_order, 0, N(order_cases));
	tcase_add_loop_test(tc, test_decide_method, 0, N(method_cases));
	tcase_add_test(tc, test_decide_methods_list);
	tcase_add_loop_test(tc, test_decide_transport, 0, N(transport_cases));
	tcase_add_test(tc, test_decide_not_retriable);
	tcase_add_test(tc, test_decide_schema);
	tcase_add_test(tc, test_decide_attempts);
	tcase_add_test(tc, test_decide_wait_is_backoff);
	tcase_add_loop_test(tc, test_decide_retry_after, 0, N(ra_cases));
	tcase_add_test(tc, test_decide_retry_after_jitter);
	tcase_add_test(tc, test_decide_deadline);
	suite_add_tcase(s, tc);

	tc = tcase_create("backoff");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_backoff_none);
	tcase_add_test(tc, test_backoff_full_bounds);
	tcase_add_test(tc, test_backoff_equal_bounds);
	tcase_add_test(tc, test_backoff_decorrelated_bounds);
	tcase_add_test(tc, test_backoff_huge_n);
	tcase_add_loop_test(tc, test_backoff_full_distribution, 1, 9);
	tcase_add_test(tc, test_backoff_worst_total);
	tcase_add_test(tc, test_backoff_floor);
	suite_add_tcase(s, tc);

	tc = tcase_create("retry_after");
	tcase_add_loop_test(tc, test_ra_parse_table, 0, N(ra_parse_cases));
	tcase_add_test(tc, test_ra_parse_null);
	tcase_add_test(tc, test_ra_parse_imf_future);
	tcase_add_loop_test(tc, test_ra_parse_forms_future, 0, N(date_forms));
	tcase_add_loop_test(tc, test_ra_parse_forms_past, 0, N(date_forms));
	tcase_add_test(tc, test_ra_parse_epoch_edges);
	tcase_add_test(tc, test_ra_parse_huge);
	tcase_add_test(tc, test_ra_parse_far_date);
	suite_add_tcase(s, tc);
	return s;
}

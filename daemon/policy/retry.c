/* Retry policy: classification, the retry decision, backoff and
 * Retry-After. Nothing here reads a clock or a socket. */
#include "retry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "httpdate.h"

static const char *const outcome_names[OUTCOME__COUNT] = {
	[OUTCOME_OK] = "ok",
	[OUTCOME_STATUS] = "status",
	[OUTCOME_CLIENT_ERROR] = "client_error",
	[OUTCOME_SERVER_ERROR] = "server_error",
	[OUTCOME_CONNECT] = "connect",
	[OUTCOME_RESET] = "reset",
	[OUTCOME_TIMEOUT] = "timeout",
	[OUTCOME_SCHEMA] = "schema",
	[OUTCOME_TOO_LARGE] = "too_large",
	[OUTCOME_INTERNAL] = "internal",
};

static const char *const stop_names[RETRY_STOP__COUNT] = {
	[RETRY_GO] = "retry",
	[RETRY_STOP_OUTCOME] = "outcome",
	[RETRY_STOP_ATTEMPTS] = "attempts",
	[RETRY_STOP_METHOD] = "method",
	[RETRY_STOP_BREAKER] = "breaker",
	[RETRY_STOP_BUDGET] = "budget",
	[RETRY_STOP_RETRY_AFTER] = "retry_after",
	[RETRY_STOP_DEADLINE] = "deadline",
	[RETRY_STOP_BODY] = "body",
	[RETRY_STOP_RATE_LIMIT] = "rate_limit",
};

const char *retry_outcome_name(enum outcome o)
{
	return (unsigned)o < OUTCOME__COUNT ? outcome_names[o] : "unknown";
}

const char *retry_stop_name(enum retry_stop s)
{
	return (unsigned)s < RETRY_STOP__COUNT ? stop_names[s] : "unknown";
}

enum outcome retry_classify_status(const struct retry_policy *p, int status)
{
	if (status >= 100 && status < 600 && p->statuses[status])
		return OUTCOME_STATUS;
	if (status < 400)
		return OUTCOME_OK;
	return status < 500 ? OUTCOME_CLIENT_ERROR : OUTCOME_SERVER_ERROR;
}

int retry_is_failure(enum outcome o, int status)
{
	switch (o) {
	case OUTCOME_CONNECT:
	case OUTCOME_RESET:
	case OUTCOME_TIMEOUT:
	case OUTCOME_SERVER_ERROR:
		return 1;
	case OUTCOME_STATUS:
		return status >= 500;
	default:
		return 0;
	}
}

static int outcome_retriable(const struct retry_policy *p, enum outcome o)
{
	switch (o) {
	case OUTCOME_STATUS:
		return 1;
	case OUTCOME_CONNECT:
		return (p->transport & TRANSPORT_CONNECT) != 0;
	case OUTCOME_RESET:
		return (p->transport & TRANSPORT_RESET) != 0;
	case OUTCOME_TIMEOUT:
		return (p->transport & TRANSPORT_TIMEOUT) != 0;
	case OUTCOME_SCHEMA:
		return p->on_schema_violation;
	default:
		return 0;
	}
}

static int method_allows(const struct retry_policy *p, const struct retry_input *in)
{
	/* Nothing reached the upstream: safe whatever the method. */
	if (in->outcome == OUTCOME_CONNECT)
		return 1;
	if (in->method >= 0 && (p->methods & METHOD_BIT(in->method)))
		return 1;
	switch (p->unsafe) {
	case UNSAFE_ALWAYS:
		return 1;
	case UNSAFE_WITH_KEY:
		/* A key braced minted protects only an upstream that de-duplicates
		 * by it: repeat only after answers that show it did not act. */
		if (in->idempotency == IDEM_KEY_MINTED)
			return in->outcome == OUTCOME_STATUS &&
			       (in->status == 429 || in->status == 503);
		return in->idempotency == IDEM_KEY_HONORED;
	case UNSAFE_NEVER:
	default:
		return 0;
	}
}

static uint64_t jittered(const struct retry_backoff *b, uint64_t d, uint32_t prev_ms,
			 struct rng *rng)
{
	uint64_t lo, hi;

	switch (b->jitter) {
	case JITTER_FULL:
		lo = d < b->min_ms ? d : b->min_ms;
		return lo + rng_below(rng, d - lo + 1);
	case JITTER_EQUAL:
		return d / 2 + rng_below(rng, d - d / 2 + 1);
	case JITTER_DECORRELATED:
		lo = b->base_ms;
		hi = (uint64_t)(prev_ms ? prev_ms : b->base_ms) * 3;
		if (hi < lo)
			hi = lo;
		d = lo + rng_below(rng, hi - lo + 1);
		return d > b->max_ms ? b->max_ms : d;
	case JITTER_NONE:
	default:
		return d;
	}
}

uint32_t retry_backoff_wait(const struct retry_backoff *b, uint32_t n, uint32_t prev_ms,
			    struct rng *rng)
{
	uint64_t base = b->base_ms, max = b->max_ms, d;

	if (n < 1)
		n = 1;
	d = n - 1 >= 32 ? max : base << (n - 1);
	if (d > max || (base && d < base))
		d = max;
	d = jittered(b, d, prev_ms, rng);
	return (uint32_t)(d < b->min_ms ? b->min_ms : d);
}

uint32_t retry_backoff(const struct retry_policy *p, uint32_t n, uint32_t prev_ms, struct rng *rng)
{
	const struct retry_backoff b = {
		.base_ms = p->backoff_base_ms,
		.max_ms = p->backoff_max_ms,
		.jitter = p->jitter,
	};

	return retry_backoff_wait(&b, n, prev_ms, rng);
}

enum retry_stop retry_decide(const struct retry_policy *p, const struct retry_input *in,
			     struct rng *rng, uint32_t *ret_wait_ms)
{
	uint64_t wait;

	if (!outcome_retriable(p, in->outcome))
		return RETRY_STOP_OUTCOME;
	if (in->attempts >= in->max_attempts)
		return RETRY_STOP_ATTEMPTS;
	if (!method_allows(p, in))
		return RETRY_STOP_METHOD;
	/* A streamed body is gone once any of it left: only an attempt that
	 * never connected can be made again. */
	if (in->body_streamed && (in->outcome != OUTCOME_CONNECT || in->body_sent > 0))
		return RETRY_STOP_BODY;
	if (in->breaker_open)
		return RETRY_STOP_BREAKER;
	if (!in->budget_has_room)
		return RETRY_STOP_BUDGET;
	wait = retry_backoff(p, in->attempts, in->prev_wait_ms, rng);
	if (p->retry_after_honor && in->retry_after.set &&
	    (in->status == 429 || in->status == 503)) {
		/* Never earlier than the server asked; give up when it asks too much. */
		if (in->retry_after.ms > p->retry_after_max_ms ||
		    in->retry_after.ms > in->remaining_ms)
			return RETRY_STOP_RETRY_AFTER;
		if (in->retry_after.ms > wait)
			wait = in->retry_after.ms;
	}
	if (wait + RETRY_MIN_ATTEMPT_MS > in->remaining_ms)
		return RETRY_STOP_DEADLINE;
	*ret_wait_ms = (uint32_t)wait;
	return RETRY_GO;
}

int retry_after_parse(const char *value, time_t now, int64_t *ret_ms)
{
	/* Beyond a year every limit refuses it anyway: longer values read as this. */
	const uint64_t cap_secs = 366ULL * 24 * 3600;
	const char *p = value;
	int64_t t;

	if (!value)
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p >= '0' && *p <= '9') {
		uint64_t secs = 0;

		for (; *p >= '0' && *p <= '9'; p++) {
			/* Beyond a year every limit refuses it anyway; avoid overflow. */
			if (secs < cap_secs)
				secs = secs * 10 + (uint64_t)(*p - '0');
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0')
			return -EINVAL;
		if (secs > cap_secs)
			secs = cap_secs;
		*ret_ms = (int64_t)secs * 1000;
		return 0;
	}
	if (httpdate_parse(p, strlen(p), &t) < 0)
		return -EINVAL;
	if (t > now && (uint64_t)t - (uint64_t)now > cap_secs)
		t = now + (time_t)cap_secs;
	*ret_ms = t > now ? (int64_t)(t - now) * 1000 : 0;
	return 0;
}

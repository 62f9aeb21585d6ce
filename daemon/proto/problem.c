/* problem+json rendering. Field order follows SPEC 5 so bodies read the same
 * in every answer; optional fields appear only when known. */
#include "problem.h"
#include "schema.h"
#include "strbuf.h"
#include "utf8.h"

#include <string.h>

/* The largest body a problem can have: the fixed fields, 512 body bytes
 * escaped (6 per byte at worst) and a bounded history. */
#define PROBLEM_MAX_BYTES (64 * 1024)

static const struct {
	const char *name;
	int status;
	const char *title;
} codes[PROBLEM__COUNT] = {
	[PROBLEM_BAD_REQUEST] = { "bad_request", 400, "Bad request" },
	[PROBLEM_UNKNOWN_PROFILE] = { "unknown_profile", 404, "Unknown profile" },
	[PROBLEM_ROUTE_NOT_FOUND] = { "route_not_found", 404, "No route matched" },
	[PROBLEM_REQUEST_TIMEOUT] = { "request_timeout", 408, "Request not received in time" },
	[PROBLEM_PAYLOAD_TOO_LARGE] = { "payload_too_large", 413, "Request body too large" },
	[PROBLEM_HEADERS_TOO_LARGE] = { "headers_too_large", 431, "Request headers too large" },
	[PROBLEM_NOT_IMPLEMENTED] = { "not_implemented", 501, "Transfer coding not implemented" },
	[PROBLEM_REQUEST_INVALID] = { "request_invalid", 422, "Request failed its schema" },
	[PROBLEM_UPSTREAM_STATUS] = { "upstream_status", 502, "Upstream answered with an error" },
	[PROBLEM_RATE_LIMITED] = { "rate_limited", 429, "Rate limited" },
	[PROBLEM_UPSTREAM_UNAVAILABLE] = { "upstream_unavailable", 502, "Upstream unavailable" },
	[PROBLEM_SCHEMA_VIOLATION] = { "schema_violation", 502, "Response failed its schema" },
	[PROBLEM_RESPONSE_TOO_LARGE] = { "response_too_large", 502, "Upstream response too large" },
	[PROBLEM_CIRCUIT_OPEN] = { "circuit_open", 503, "Circuit breaker open" },
	[PROBLEM_OVERLOADED] = { "overloaded", 503, "Overloaded" },
	[PROBLEM_UPSTREAM_TIMEOUT] = { "upstream_timeout", 504, "Upstream timed out" },
	[PROBLEM_INTERNAL] = { "internal", 500, "Internal error" },
};

const char *problem_code_name(enum problem_code code)
{
	return (unsigned)code < PROBLEM__COUNT ? codes[code].name : "internal";
}

int problem_code_status(enum problem_code code)
{
	return (unsigned)code < PROBLEM__COUNT ? codes[code].status : 500;
}

const char *problem_code_title(enum problem_code code)
{
	return (unsigned)code < PROBLEM__COUNT ? codes[code].title : "Internal error";
}

void problem_init(struct problem *p, enum problem_code code)
{
	memset(p, 0, sizeof(*p));
	p->code = code;
}

int problem_status(const struct problem *p)
{
	return p->status ? p->status : problem_code_status(p->code);
}

static void add_str(struct strbuf *b, const char *key, const char *v)
{
	if (!v)
		return;
	strbuf_addf(b, ",\"%s\":", key);
	strbuf_add_json_string(b, v, strlen(v));
}

char *problem_render(const struct problem *p, size_t *ret_len)
{
	const char *name = problem_code_name(p->code);
	const char *title = problem_code_title(p->code);
	struct strbuf b;

	strbuf_init(&b, PROBLEM_MAX_BYTES);
	strbuf_addf(&b, "{\"type\":\"urn:braced:problem:%s\",\"title\":", name);
	strbuf_add_json_string(&b, title, strlen(title));
	strbuf_addf(&b, ",\"status\":%d", problem_status(p));
	add_str(&b, "detail", p->detail ? p->detail : title);
	add_str(&b, "code", name);
	add_str(&b, "profile", p->profile);
	add_str(&b, "route", p->route);
	add_str(&b, "correlation_id", p->correlation_id);
	add_str(&b, "trace_id", p->trace_id);
	add_str(&b, "idempotency_key", p->idempotency_key);
	if (p->counted)
		strbuf_addf(&b, ",\"attempts\":%u,\"elapsed_ms\":%llu", p->attempts,
			    (unsigned long long)p->elapsed_ms);
	if (p->retryable != PROBLEM_RETRYABLE_UNSAID)
		strbuf_addf(&b, ",\"retryable\":%s",
			    p->retryable == PROBLEM_RETRYABLE_YES ? "true" : "false");
	if (p->retry_after.set)
		strbuf_addf(&b, ",\"retry_after_ms\":%llu", (unsigned long long)p->retry_after.ms);
	if (p->upstream_status > 0)
		strbuf_addf(&b, ",\"upstream_status\":%d", p->upstream_status);
	if (p->upstream_body) {
		size_t n = p->upstream_body_len;

		n = utf8_cut(p->upstream_body, n, PROBLEM_UPSTREAM_BODY_MAX);
		strbuf_adds(&b, ",\"upstream_body\":");
		strbuf_add_json_string(&b, p->upstream_body, n);
	}
	if (p->nviolations > 0) {
		strbuf_adds(&b, ",\"violations\":[");
		for (size_t i = 0; i < p->nviolations && i < SCHEMA_MAX_VIOLATIONS; i++) {
			const struct schema_violation *v = &p->violations[i];

			strbuf_adds(&b, i ? ",{\"pointer\":" : "{\"pointer\":");
			strbuf_add_json_string(&b, v->pointer, strlen(v->pointer));
			strbuf_adds(&b, ",\"keyword\":");
			strbuf_add_json_string(&b, v->keyword, strlen(v->keyword));
			strbuf_adds(&b, ",\"message\":");
			strbuf_add_json_string(&b, v->message, strlen(v->message));
			strbuf_adds(&b, "}");
		}
		strbuf_adds(&b, "]");
	}
	if (p->nhistory > 0) {
		strbuf_adds(&b, ",\"history\":[");
		for (size_t i = 0; i < p->nhistory; i++) {
			const struct history_entry *h = &p->history[i];

			strbuf_addf(&b, "%s{\"attempt\":%u,\"outcome\":", i ? "," : "", h->attempt);
			strbuf_add_json_string(&b, h->outcome, strlen(h->outcome));
			if (h->status)
				strbuf_addf(&b, ",\"status\":%d", h->status);
			if (h->endpoint[0]) {
				strbuf_adds(&b, ",\"endpoint\":");
				strbuf_add_json_string(&b, h->endpoint, strlen(h->endpoint));
			}
			strbuf_addf(&b, ",\"ms\":%u,\"wait_ms\":%u%s}", h->ms, h->wait_ms,
				    h->hedge ? ",\"hedge\":true" : "");
		}
		strbuf_adds(&b, "]");
	}
	/* A text body ends with a newline: curl and shells print it whole. */
	strbuf_adds(&b, "}\n");
	return strbuf_steal(&b, ret_len);
}

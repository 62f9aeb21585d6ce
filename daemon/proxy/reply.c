/* The answers of one request (request.h): the headers braced adds to every
 * answer, an upstream answer relayed with braced's Retry-After and without
 * the upstream's own Server-Timing entries for braced, and problem+json
 * answers (request_fail). Each ends in request_finish(). */
#include "reply.h"
#include "ascii.h"
#include "cacheentry.h"
#include "clock.h"
#include "exchange.h"
#include "flow.h"
#include "schema.h"
#include "upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>

static uint32_t elapsed_ms(struct request *req)
{
	return (uint32_t)((request_answer_us(req) - req->start_us) / 1000);
}

/* Headers an answer holds without allocating; relays with more allocate. */
#define REPLY_FIXED_HEADERS 32
/* Most headers braced adds to an answer itself. */
#define REPLY_OWN_HEADERS 8

/* The headers of one answer, lent to http_reply(): the values braced makes
 * live here until then. */
struct reply {
	struct http_header *h;
	size_t n, cap;
	struct http_header fixed[REPLY_FIXED_HEADERS];
	char attempts[16];
	char timing[80]; /* two put_ms() of 22 bytes at most, and the words */
	char retry_after[24];
	char age[24];
	char *kept; /* the upstream's Server-Timing values without braced's entries */
};

static void reply_init(struct reply *r)
{
	r->h = r->fixed;
	r->n = 0;
	r->cap = REPLY_FIXED_HEADERS;
	r->kept = NULL;
}

/* Room for more headers. Returns 0 or -ENOMEM. */
static int reply_reserve(struct reply *r, size_t more)
{
	struct http_header *h;

	if (r->n + more <= r->cap)
		return 0;
	h = malloc((r->n + more) * sizeof(*h));
	if (!h)
		return -ENOMEM;
	memcpy(h, r->h, r->n * sizeof(*h));
	if (r->h != r->fixed)
		free(r->h);
	r->h = h;
	r->cap = r->n + more;
	return 0;
}

/* Adds name and value (both borrowed until the reply); beyond the room
 * reserved the header is left out. */
static void reply_add(struct reply *r, const char *name, const char *value)
{
	if (r->n < r->cap)
		r->h[r->n++] = (struct http_header){ name, strlen(name), value, strlen(value) };
}

static void reply_release(struct reply *r)
{
	if (r->h != r->fixed)
		free(r->h);
	r->h = NULL;
	free(r->kept);
	r->kept = NULL;
}

/* Writers for the headers of every answer, without printf: each writes at
 * p and returns the end; the caller's buffer has the room. */
static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

/* Microseconds as milliseconds with one decimal, rounded: "12.3". */
static char *put_ms(char *p, uint64_t us)
{
	uint64_t tenths = (us + 50) / 100;

	p = ascii_put_uint(p, tenths / 10);
	*p++ = '.';
	*p++ = (char)('0' + tenths % 10);
	return p;
}

/* The idempotency key to tell the app, or NULL: a key braced minted for a
 * request it never sent names nothing the upstream saw. */
static const char *told_key(const struct request *req)
{
	if (!req->idempotency_key[0] ||
	    (req->idempotency_minted && engine_attempts(&req->engine) == 0))
		return NULL;
	return req->idempotency_key;
}

/* Headers braced adds to every answer. */
static void add_common_headers(struct request *req, struct reply *r)
{
	const char *key = told_key(req);
	if (req->cache_said)
		reply_add(r, "Brace-Cache", req->cache_said);
	if (req->correlation[0])
		reply_add(r, req->correlation_header, req->correlation);
	if (key)
		reply_add(r, req->idempotency_header, key);
	*ascii_put_uint(r->attempts, engine_attempts(&req->engine)) = '\0';
	reply_add(r, "Brace-Attempts", r->attempts);
	{
		/* Both from microseconds, at the same precision: the time in
		 * attempts never reads longer than the whole request. */
		uint64_t total = request_answer_us(req) - req->start_us;
		uint64_t up = engine_upstream_us(&req->engine);
		char *p = r->timing;

		p = put_str(p, "upstream;dur=");
		p = put_ms(p, up < total ? up : total);
		p = put_str(p, ", total;dur=");
		*put_ms(p, total) = '\0';
	}
	reply_add(r, "Server-Timing", r->timing);
}

/* Sends the reply with status, r's headers (released after) and body (len
 * bytes, taken) or else the bytes of buf (moved out, not copied), logs under
 * code (its problem code, NULL for a success, as guard_count_answer() takes
 * it), frees the request. */
static void send_and_free(struct request *req, int status, struct reply *r, char *body, size_t len,
			  struct evbuffer *buf, const enum problem_code *code)
{
	req->env->finish(req, status, r->h, r->n, body, len, buf, code);
	reply_release(r);
}

static void add_retry_after(struct reply *r, struct retry_after ra)
{
	if (!ra.set)
		return;
	/* Whole seconds, rounded up: never invite the app back too early. */
	snprintf(r->retry_after, sizeof(r->retry_after), "%llu",
		 (unsigned long long)(ra.ms + 999) / 1000);
	reply_add(r, "Retry-After", r->retry_after);
}

void reply_fail(struct request *req, struct problem *p)
{
	struct reply r;
	char *json;
	size_t len = 0;
	int status;

	p->profile = req->profile ? req->profile->name : p->profile;
	p->route = req->route ? req->route->label : p->route;
	p->correlation_id = req->correlation[0] ? req->correlation : NULL;
	p->trace_id = req->trace.valid ? req->trace.trace_id : NULL;
	p->idempotency_key = told_key(req);
	if (engine_state(&req->engine) != ENGINE_NEW) {
		if (!p->counted) {
			p->counted = 1;
			p->attempts = engine_attempts(&req->engine);
			p->elapsed_ms = elapsed_ms(req);
		}
		if (!p->history && engine_attempts(&req->engine) > 0)
			p->history = engine_history(&req->engine, &p->nhistory);
	}
	status = problem_status(p);
	json = problem_render(p, &len);
	reply_init(&r);
	reply_add(&r, "Content-Type", "application/problem+json");
	reply_add(&r, "Brace-Error", problem_code_name(p->code));
	add_retry_after(&r, p->retry_after);
	add_common_headers(req, &r);
	send_and_free(req, status, &r, json, json ? len : 0, NULL, &p->code);
}

/* 1 when an upstream header named name is left out of a relayed answer:
 * hop-by-hop or framing (connection lists more), or one braced sets. */
static int relay_drops(const struct request *req, const char *name, const char *connection)
{
	return headers_response_dropped(name, connection) ||
	       strcasecmp(name, req->correlation_header) == 0 ||
	       (req->idempotency_key[0] && strcasecmp(name, req->idempotency_header) == 0) ||
	       strcasecmp(name, "Retry-After") == 0;
}

/* Fills r with the headers of call's answer relayed as a says: the
 * upstream's but those relay_drops() names, its Server-Timing without
 * braced's entries, a's Retry-After and Brace-Error, and braced's own.
 * Returns 0 or -ENOMEM (r is released then). */
static int relay_headers(struct request *req, struct call *call, const struct engine_answer *a,
			 struct reply *r)
{
	const char *connection = NULL, *name, *value;
	size_t pos, n = 0, timing = 0;
	char *kept;

	/* The Connection header lists more names to drop. */
	for (pos = 0; call_header_next(call, &pos, &name, &value); n++)
		if (strcasecmp(name, "Connection") == 0)
			connection = value;
		else if (strcasecmp(name, "Server-Timing") == 0)
			timing += strlen(value) + 1;
	reply_init(r);
	if (reply_reserve(r, n + REPLY_OWN_HEADERS) < 0 ||
	    (timing && !(r->kept = malloc(timing)))) {
		reply_release(r);
		return -ENOMEM;
	}
	kept = r->kept;
	for (pos = 0; call_header_next(call, &pos, &name, &value);) {
		/* An upstream cannot speak for braced's own timing entries. */
		if (strcasecmp(name, "Server-Timing") == 0) {
			size_t len = headers_server_timing_keep(value, kept);

			if (len)
				reply_add(r, name, kept);
			kept += len + 1;
			continue;
		}
		/* HEAD: the server keeps the length the GET answer would have */
		if (req->method == METHOD_HEAD && strcasecmp(name, "Content-Length") == 0) {
			reply_add(r, name, value);
			continue;
		}
		if (!relay_drops(req, name, connection))
			reply_add(r, name, value);
	}
	add_retry_after(r, a->retry_after);
	if (a->has_code)
		reply_add(r, "Brace-Error", problem_code_name(a->code));
	add_common_headers(req, r);
	return 0;
}

static void fail_no_memory(struct request *req)
{
	struct problem p;

	problem_init(&p, PROBLEM_INTERNAL);
	p.detail = "out of memory";
	reply_fail(req, &p);
}

/* Relays the last upstream answer as the engine says (below 400, or
 * passthrough). The upstream's Retry-After is replaced by the engine's. */
void reply_relay(struct request *req, const struct engine_answer *a)
{
	struct call *call = req->last;
	struct reply r;

	if (relay_headers(req, call, a, &r) < 0) {
		fail_no_memory(req);
		return;
	}
	/* The received body itself goes out: an answer is held once, not twice. */
	send_and_free(req, a->status, &r, NULL, 0, call_body(call), a->has_code ? &a->code : NULL);
}

int reply_relay_stream(struct request *req, struct call *call, const struct engine_answer *a)
{
	struct reply r;
	int rc;

	if (relay_headers(req, call, a, &r) < 0) {
		fail_no_memory(req);
		return -ECANCELED;
	}
	rc = flow_begin(req, call, a->status, r.h, r.n);
	reply_release(&r);
	if (rc == -EINVAL) {
		struct problem p;

		problem_init(&p, PROBLEM_INTERNAL);
		p.detail = "the upstream's answer head could not be relayed";
		reply_fail(req, &p);
		return -ECANCELED;
	}
	return rc;
}

/* Answers with the problem the engine built, adding what only the shell
 * holds: the start of the last upstream body and the schema violations. */
void reply_problem(struct request *req, const struct engine_answer *a)
{
	struct problem p;

	problem_init(&p, a->code);
	p.status = a->status;
	p.detail = a->detail;
	p.retryable = a->retryable;
	p.retry_after = a->retry_after;
	p.upstream_status = a->upstream_status;
	if (a->upstream_body && req->prefix_id && req->prefix_id == a->id) {
		/* kept when its head came: the call itself is gone */
		p.upstream_body = req->prefix;
		p.upstream_body_len = req->prefix_len;
	} else if (a->upstream_body && req->last) {
		struct evbuffer *body = call_body(req->last);
		size_t blen = evbuffer_get_length(body);

		if (blen > PROBLEM_UPSTREAM_BODY_MAX + 4)
			blen = PROBLEM_UPSTREAM_BODY_MAX + 4;
		p.upstream_body = (const char *)evbuffer_pullup(body, (ev_ssize_t)blen);
		p.upstream_body_len = blen;
		if (!p.upstream_body)
			p.upstream_body = "";
	}
	if (a->violations && req->violations) {
		p.violations = req->violations->v;
		p.nviolations = req->violations->count;
	}
	reply_fail(req, &p);
}

void reply_error(struct request *req, enum problem_code code, const char *detail)
{
	struct problem p;

	problem_init(&p, code);
	p.detail = detail;
	reply_fail(req, &p);
}

void reply_internal(struct request *req, const char *detail)
{
	reply_error(req, PROBLEM_INTERNAL, detail);
}

void reply_waited_too_long(struct request *req)
{
	reply_error(req, PROBLEM_UPSTREAM_TIMEOUT,
		    "the budget ran out waiting for the answer of an identical request");
}

int reply_cached(struct request *req, const struct cacheentry_view *v, int64_t age,
		 const enum problem_code *avoided, struct evbuffer *body, int early)
{
	static const enum problem_code upstream_status = PROBLEM_UPSTREAM_STATUS;
	/* A kept 404 or 410 is the upstream's error, passed through as it was. */
	const enum problem_code *code = avoided                 ? avoided
					: v->meta.status >= 400 ? &upstream_status
								: NULL;
	struct reply r;

	reply_init(&r);
	if (reply_reserve(&r, v->nfields + REPLY_OWN_HEADERS + 3) < 0) {
		reply_release(&r);
		fail_no_memory(req);
		return -ENOMEM;
	}
	for (size_t i = 0; i < v->nfields; i++)
		r.h[r.n++] = (struct http_header){ v->fields[i].name, v->fields[i].name_len,
						   v->fields[i].value, v->fields[i].value_len };
	if (age >= 0) {
		*ascii_put_uint(r.age, (uint64_t)age) = '\0';
		reply_add(&r, "Age", r.age);
	}
	if (v->meta.status >= 400)
		reply_add(&r, "Brace-Error", problem_code_name(PROBLEM_UPSTREAM_STATUS));
	if (avoided)
		reply_add(&r, "Brace-Error-Avoided", problem_code_name(*avoided));
	add_common_headers(req, &r);
	if (early) {
		req->env->answer_early(req, v->meta.status, r.h, r.n, body);
		reply_release(&r);
		return 0;
	}
	send_and_free(req, v->meta.status, &r, NULL, 0, body, code);
	return 0;
}

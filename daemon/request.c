/* The I/O shell of one proxied request around its engine (engine.c): it
 * turns timers, finished attempts and the app leaving into engine events
 * and carries out the actions the engine returns. Every path ends in one
 * place: an answer (send_and_free()) or drop_request() when the app left or
 * the daemon stops; either gives the HTTP server its one http_reply(). The
 * server is touched only in the reply section below; curl only through
 * upstream.h. */
#include "request.h"
#include "ascii.h"
#include "front.h"
#include "decode.h"
#include "guard.h"
#include "log.h"
#include "path.h"
#include "retry.h"
#include "schema.h"
#include "upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/event.h>

uint64_t request_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint32_t elapsed_ms(const struct request *req)
{
	return (uint32_t)((request_now_us() - req->start_us) / 1000);
}

/* Freed requests kept for the next ones: struct request is past malloc's
 * small sizes, where each malloc/free pair cost about 1,800 instructions
 * under callgrind. At most REQUEST_SPARE are kept; the list lives as long as
 * the process. */
#define REQUEST_SPARE 64
static struct request *spare[REQUEST_SPARE];
static size_t nspare;

static struct request *request_alloc(void)
{
	struct request *req;

	if (!nspare)
		return calloc(1, sizeof(*req));
	req = spare[--nspare];
	memset(req, 0, sizeof(*req));
	return req;
}

static void request_dealloc(struct request *req)
{
	if (nspare < REQUEST_SPARE)
		spare[nspare++] = req;
	else
		free(req);
}

struct request *request_new(struct server *srv, struct http_request *hreq)
{
	struct request *req = request_alloc();

	if (!req)
		return NULL;
	req->srv = srv;
	engine_init(&req->engine, &srv->rng);
	req->hreq = hreq;
	hreq->user = req;
	req->start_us = request_now_us();
	req->cfg = config_ref(srv->cfg);
	req->policy = &req->cfg->defaults;
	req->correlation_header = req->cfg->defaults.correlation_header;
	req->method = -1;
	req->method_name = "-";
	TAILQ_INSERT_TAIL(&srv->requests, req, link);
	srv->inflight++;
	return req;
}

static void disarm(struct request *req)
{
	if (!req->timers_armed)
		return;
	event_del(&req->deadline);
	event_del(&req->wait_timer);
	event_del(&req->hedge_timer);
	req->timers_armed = 0;
}

/* Cancels the attempt of engine id (its connection closes with it); 0
 * cancels every attempt in flight. */
static void cancel_calls(struct request *req, uint32_t id)
{
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++) {
		struct request_call *rc = &req->calls[i];

		if (!rc->call || (id && rc->id != id))
			continue;
		upstream_cancel(rc->call);
		rc->call = NULL;
		req->ncalls--;
	}
}

static void request_free(struct request *req)
{
	struct server *srv = req->srv;

	disarm(req);
	cancel_calls(req, 0);
	call_free(req->last);
	req->last = NULL;
	free(req->violations);
	req->violations = NULL;
	engine_release(&req->engine, request_now_us());
	TAILQ_REMOVE(&srv->requests, req, link);
	srv->inflight--;
	header_list_release(&req->headers);
	free(req->url);
	config_unref(req->cfg);
	request_dealloc(req);
}

static void log_access(struct request *req, int status, const char *code)
{
	struct logline *l;

	if (!req->cfg->log_access)
		return;
	l = log_begin(LOG_INFO, "request");
	if (!l)
		return;
	log_str(l, "profile", req->profile ? req->profile->name : "-");
	log_str(l, "route", req->route ? req->route->label : "-");
	log_str(l, "method", req->method_name);
	if (req->path)
		log_strn(l, "path", req->path, req->path_len);
	log_int(l, "status", status);
	log_str(l, "code", code);
	log_int(l, "attempts", engine_attempts(&req->engine));
	log_int(l, "hedges", engine_hedges(&req->engine));
	{
		/* Rounded down from microseconds: upstream_ms never exceeds elapsed_ms. */
		uint64_t total = request_now_us() - req->start_us;
		uint64_t up = engine_upstream_us(&req->engine);

		log_int(l, "elapsed_ms", (long long)(total / 1000));
		log_int(l, "upstream_ms", (long long)((up < total ? up : total) / 1000));
	}
	log_str(l, "correlation_id", req->correlation[0] ? req->correlation : "-");
	log_str(l, "trace_id", req->trace.valid ? req->trace.trace_id : "-");
	log_end(l);
}

/* ==== I/O: building and sending the reply ============================ */

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

static char *put_uint(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* Microseconds as milliseconds with one decimal, rounded: "12.3". */
static char *put_ms(char *p, uint64_t us)
{
	uint64_t tenths = (us + 50) / 100;

	p = put_uint(p, tenths / 10);
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

	if (req->correlation[0])
		reply_add(r, req->correlation_header, req->correlation);
	if (key)
		reply_add(r, req->idempotency_header, key);
	*put_uint(r->attempts, engine_attempts(&req->engine)) = '\0';
	reply_add(r, "Brace-Attempts", r->attempts);
	{
		/* Both from microseconds, at the same precision: the time in
		 * attempts never reads longer than the whole request. */
		uint64_t total = request_now_us() - req->start_us;
		uint64_t up = engine_upstream_us(&req->engine);
		char *p = r->timing;

		p = put_str(p, "upstream;dur=");
		p = put_ms(p, up < total ? up : total);
		p = put_str(p, ", total;dur=");
		*put_ms(p, total) = '\0';
	}
	reply_add(r, "Server-Timing", r->timing);
}

/* Sends the reply with status, r's headers and body (len bytes, taken) or
 * else the bytes of buf (moved out, not copied), logs under code
 * (ENGINE_CODE_OK or an enum problem_code), frees the request. */
static void send_and_free(struct request *req, int status, struct reply *r, char *body, size_t len,
			  struct evbuffer *buf, int code)
{
	if (req->guard)
		guard_count_answer(req->guard, code,
				   (double)(request_now_us() - req->start_us) / 1e6);
	/* An attempt still running borrows the app's body, and the access log
	 * its path: both are the HTTP server's until the reply. */
	cancel_calls(req, 0);
	log_access(req, status, code == ENGINE_CODE_OK ? "ok" : problem_code_name(code));
	if (req->hreq) {
		req->hreq->user = NULL;
		if (buf)
			http_reply_buffer(req->hreq, status, r->h, r->n, buf);
		else
			http_reply(req->hreq, status, r->h, r->n, body, len);
		req->hreq = NULL;
	} else {
		free(body);
	}
	req->path = NULL;
	req->body = NULL;
	reply_release(r);
	request_free(req);
}

static void add_retry_after(struct reply *r, long long ms)
{
	if (ms < 0)
		return;
	/* Whole seconds, rounded up: never invite the app back too early. */
	snprintf(r->retry_after, sizeof(r->retry_after), "%lld", (ms + 999) / 1000);
	reply_add(r, "Retry-After", r->retry_after);
}

void request_fail(struct request *req, struct problem *p)
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
		if (p->attempts < 0)
			p->attempts = (int)engine_attempts(&req->engine);
		if (p->elapsed_ms < 0)
			p->elapsed_ms = elapsed_ms(req);
		if (!p->history && engine_attempts(&req->engine) > 0)
			p->history = engine_history(&req->engine, &p->nhistory);
	}
	status = problem_status(p);
	json = problem_render(p, &len);
	reply_init(&r);
	reply_add(&r, "Content-Type", "application/problem+json");
	reply_add(&r, "Brace-Error", problem_code_name(p->code));
	add_retry_after(&r, p->retry_after_ms);
	add_common_headers(req, &r);
	send_and_free(req, status, &r, json, json ? len : 0, NULL, (int)p->code);
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

/* Relays the last upstream answer as the engine says (below 400, or
 * passthrough). The upstream's Retry-After is replaced by the engine's. */
static void relay(struct request *req, const struct engine_answer *a)
{
	const char *connection = NULL, *name, *value;
	struct call *call = req->last;
	size_t pos, n = 0, timing = 0;
	struct reply r;
	char *kept;

	/* The Connection header lists more names to drop. */
	for (pos = 0; call_header_next(call, &pos, &name, &value); n++)
		if (strcasecmp(name, "Connection") == 0)
			connection = value;
		else if (strcasecmp(name, "Server-Timing") == 0)
			timing += strlen(value) + 1;
	reply_init(&r);
	if (reply_reserve(&r, n + REPLY_OWN_HEADERS) < 0 ||
	    (timing && !(r.kept = malloc(timing)))) {
		struct problem p;

		reply_release(&r);
		problem_init(&p, PROBLEM_INTERNAL);
		p.detail = "out of memory";
		request_fail(req, &p);
		return;
	}
	kept = r.kept;
	for (pos = 0; call_header_next(call, &pos, &name, &value);) {
		/* An upstream cannot speak for braced's own timing entries. */
		if (strcasecmp(name, "Server-Timing") == 0) {
			size_t len = headers_server_timing_keep(value, kept);

			if (len)
				reply_add(&r, name, kept);
			kept += len + 1;
			continue;
		}
		/* HEAD: the server keeps the length the GET answer would have */
		if (req->method == METHOD_HEAD && strcasecmp(name, "Content-Length") == 0) {
			reply_add(&r, name, value);
			continue;
		}
		if (!relay_drops(req, name, connection))
			reply_add(&r, name, value);
	}
	add_retry_after(&r, a->retry_after_ms);
	if (a->code != ENGINE_CODE_OK)
		reply_add(&r, "Brace-Error", problem_code_name(a->code));
	add_common_headers(req, &r);
	/* The received body itself goes out: an answer is held once, not twice. */
	send_and_free(req, a->status, &r, NULL, 0, call_body(call), a->code);
}

/* Answers with the problem the engine built, adding what only the shell
 * holds: the start of the last upstream body and the schema violations. */
static void answer_problem(struct request *req, const struct engine_answer *a)
{
	struct problem p;

	problem_init(&p, (enum problem_code)a->code);
	p.status = a->status;
	p.detail = a->detail;
	p.retryable = a->retryable;
	p.retry_after_ms = a->retry_after_ms;
	p.upstream_status = a->upstream_status;
	if (a->upstream_body && req->last) {
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
	request_fail(req, &p);
}

/* ==== the app leaving, and shutdown =================================== */

static void feed_simple(struct request *req, enum engine_event_kind kind);

/* Frees the request the engine dropped: the app left (its reply goes
 * nowhere) or shutdown's grace is over (the app still gets a 503). */
static void drop_request(struct request *req)
{
	cancel_calls(req, 0);
	if (req->hreq && !req->hreq->gone) {
		struct problem p;

		problem_init(&p, PROBLEM_OVERLOADED);
		p.detail = "braced is shutting down";
		request_fail(req, &p);
		return;
	}
	log_access(req, 499, "client_gone");
	if (req->hreq) {
		req->hreq->user = NULL;
		/* owed all the same; the server drops it, the app has left */
		http_reply(req->hreq, 503, NULL, 0, NULL, 0);
		req->hreq = NULL;
	}
	req->path = NULL;
	req->body = NULL;
	request_free(req);
}

void request_client_gone(struct request *req)
{
	feed_simple(req, ENGINE_EV_CLIENT_GONE);
}

void request_abort(struct request *req)
{
	feed_simple(req, ENGINE_EV_DRAINING);
}

/* ==== request validation (SPEC 2 schemas) ============================== */

/* Most query parameters a validated request may carry; more is a violation. */
#define QUERY_MAX_PARAMS 1000

/* Form-decodes [s, s+len) ('+' is a space, %XX a byte) into out (len + 1). */
static size_t form_decode(const char *s, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < len &&
			   ascii_hex_digit((unsigned char)s[i + 1]) >= 0 &&
			   ascii_hex_digit((unsigned char)s[i + 2]) >= 0) {
			out[o++] = (char)(ascii_hex_digit((unsigned char)s[i + 1]) * 16 +
					  ascii_hex_digit((unsigned char)s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return o;
}

struct query_param {
	char *key, *value;
	size_t vlen;
};

/* Splits and decodes the query string; returns the count or -1 (OOM or
 * more than QUERY_MAX_PARAMS). *ret is freed with free_params. */
static int parse_query(const char *q, struct query_param **ret)
{
	struct query_param *ps = NULL;
	int n = 0, cap = 0;

	while (*q) {
		size_t plen = strcspn(q, "&"), klen = strcspn(q, "=&");

		if (plen > 0) {
			if (n == QUERY_MAX_PARAMS)
				goto fail;
			if (n == cap) {
				struct query_param *grown;

				cap = cap ? cap * 2 : 8;
				grown = realloc(ps, (size_t)cap * sizeof(*ps));
				if (!grown)
					goto fail;
				ps = grown;
			}
			ps[n].key = malloc(klen + 1);
			ps[n].value = malloc(plen + 1);
			if (!ps[n].key || !ps[n].value) {
				free(ps[n].key);
				free(ps[n].value);
				goto fail;
			}
			form_decode(q, klen, ps[n].key);
			ps[n].vlen = klen < plen
					 ? form_decode(q + klen + 1, plen - klen - 1, ps[n].value)
					 : 0;
			ps[n].value[ps[n].vlen] = '\0';
			n++;
		}
		q += plen;
		if (*q == '&')
			q++;
	}
	*ret = ps;
	return n;
fail:
	while (n > 0) {
		n--;
		free(ps[n].key);
		free(ps[n].value);
	}
	free(ps);
	return -1;
}

static void free_params(struct query_param *ps, int n)
{
	for (int i = 0; i < n; i++) {
		free(ps[i].key);
		free(ps[i].value);
	}
	free(ps);
}

static void merge_result(struct schema_result *into, const struct schema_result *one)
{
	for (size_t i = 0; i < one->count && into->count < SCHEMA_MAX_VIOLATIONS; i++)
		into->v[into->count++] = one->v[i];
	into->total += one->total;
}

/* Adds one violation of the whole document (pointer "") to res; keyword and
 * msg are borrowed, copied and cut to fit. */
static void add_violation(struct schema_result *res, const char *keyword, const char *msg)
{
	struct schema_result one;

	memset(&one, 0, sizeof(one));
	snprintf(one.v[0].keyword, sizeof(one.v[0].keyword), "%s", keyword);
	snprintf(one.v[0].message, sizeof(one.v[0].message), "%s", msg);
	one.count = one.total = 1;
	merge_result(res, &one);
}

/* Validates instance against s, adding what fails to res. Returns 1 if invalid. */
static int validate_into(const struct schema *s, struct json_object *instance,
			 struct schema_result *res)
{
	struct schema_result one;

	memset(&one, 0, sizeof(one));
	if (schema_validate(s, instance, &one) == 0)
		return 0;
	merge_result(res, &one);
	return 1;
}

static struct json_object *param_value(const struct query_param *p)
{
	return json_object_new_string_len(p->value, (int)p->vlen);
}

/* Validates the query as an object of strings. A repeated parameter is
 * validated with each of its values, so no value the upstream may read
 * escapes the schema. Returns 1 when invalid. */
static int check_query(const struct schema *s, const char *q, struct schema_result *res)
{
	struct query_param *ps = NULL;
	struct json_object *obj;
	int n = parse_query(q, &ps), bad;

	if (n < 0) {
		char msg[64];

		snprintf(msg, sizeof(msg), "more than %d query parameters", QUERY_MAX_PARAMS);
		add_violation(res, "limit", msg);
		return 1;
	}
	obj = json_object_new_object();
	if (!obj) {
		free_params(ps, n);
		return 0;
	}
	for (int i = 0; i < n; i++)
		if (!json_object_object_get_ex(obj, ps[i].key, NULL))
			json_object_object_add(obj, ps[i].key, param_value(&ps[i]));
	bad = validate_into(s, obj, res);
	for (int i = 0; i < n; i++) {
		struct json_object *first;

		/* Later values of a repeated name, each in place of the first. */
		if (!json_object_object_get_ex(obj, ps[i].key, &first) ||
		    (json_object_get_string_len(first) == (int)ps[i].vlen &&
		     memcmp(json_object_get_string(first), ps[i].value, ps[i].vlen) == 0))
			continue;
		json_object_get(first);
		json_object_object_add(obj, ps[i].key, param_value(&ps[i]));
		bad |= validate_into(s, obj, res);
		json_object_object_add(obj, ps[i].key, first);
	}
	json_object_put(obj);
	free_params(ps, n);
	return bad;
}

/* Logs and counts a violation found in report or enforce mode. */
static void note_violations(struct request *req, const char *direction, enum schema_mode mode,
			    const struct schema_result *res)
{
	const char *m = mode == SCHEMA_MODE_ENFORCE ? "enforce" : "report";
	struct logline *l;

	guard_count_violation(req->guard, req->route->label, direction, m);
	l = log_begin(LOG_WARN, "schema violation");
	log_str(l, "profile", req->profile->name);
	log_str(l, "route", req->route->label);
	log_str(l, "direction", direction);
	log_str(l, "mode", m);
	log_int(l, "violations", (long long)res->total);
	if (res->count > 0) {
		log_str(l, "pointer", res->v[0].pointer);
		log_str(l, "keyword", res->v[0].keyword);
		log_str(l, "message", res->v[0].message);
	}
	log_str(l, "correlation_id", req->correlation);
	log_end(l);
}

/* Adds a "size" violation for a body of len bytes (what: "body", "decoded
 * body", ...) over limits.max_validated_body (max). */
static void add_size_violation(struct schema_result *res, const char *what, size_t len,
			       uint64_t max)
{
	char msg[128];

	if (len > max)
		snprintf(msg, sizeof(msg),
			 "%s of %zu bytes is over limits.max_validated_body (%llu)", what, len,
			 (unsigned long long)max);
	else
		snprintf(msg, sizeof(msg), "%s is over limits.max_validated_body (%llu)", what,
			 (unsigned long long)max);
	add_violation(res, "size", msg);
}

/* Validates len bytes of JSON against s, adding to res. A body over max
 * bytes is a "size" violation, refused before json-c sees it: json-c's tree
 * costs many times the text. Returns 1 if invalid. */
static int check_json(const struct schema *s, const char *buf, size_t len, uint64_t max,
		      struct schema_result *res)
{
	struct json_object *doc = NULL;
	struct schema_result one;
	char err[160];
	int bad;

	if (len > max) {
		add_size_violation(res, "body", len, max);
		return 1;
	}
	memset(&one, 0, sizeof(one));
	if (schema_parse_json(buf ? buf : "", len, &doc, err, sizeof(err)) < 0) {
		schema_result_set_json_error(&one, err);
		bad = 1;
	} else {
		bad = schema_validate(s, doc, &one) != 0;
		json_object_put(doc);
	}
	if (bad && one.total == 0)
		one.total = 1;
	merge_result(res, &one);
	return bad;
}

int request_validate(struct request *req)
{
	const struct schema_setting *s;
	struct schema_result *res;
	int bad = 0;

	if (!req->route || req->route->request.mode == SCHEMA_MODE_OFF)
		return 0;
	s = &req->route->request;
	if (!s->query_schema && !s->body_schema)
		return 0;
	res = calloc(1, sizeof(*res));
	if (!res)
		return 0;
	if (s->query_schema) {
		const char *q = memchr(req->path, '?', strlen(req->path));

		bad |= check_query(s->query_schema, q ? q + 1 : "", res);
	}
	if (s->body_schema)
		bad |= check_json(s->body_schema, req->body, req->body_len,
				  req->cfg->max_validated_body, res);
	if (bad) {
		note_violations(req, "request", s->mode, res);
		if (s->mode == SCHEMA_MODE_ENFORCE) {
			struct problem p;
			char detail[128];

			problem_init(&p, PROBLEM_REQUEST_INVALID);
			snprintf(
			    detail, sizeof(detail),
			    "the request failed its schema (%zu violation%s); nothing was sent",
			    res->total, res->total == 1 ? "" : "s");
			p.detail = detail;
			p.violations = res->v;
			p.nviolations = res->count;
			request_fail(req, &p);
			free(res);
			return -1;
		}
	}
	free(res);
	return 0;
}

/* 1 for answers that carry no whole document: 204 and 205 have no content,
 * 206 a part of one, 304 none. */
static int no_document(int status)
{
	return status == 204 || status == 205 || status == 206 || status == 304;
}

/* The Content-Encoding of an answer as one list: every such header's value
 * joined with commas into buf. Returns 0, or -E2BIG when it does not fit. */
static int response_codings(struct call *call, char *buf, size_t size)
{
	const char *name, *value;
	size_t pos = 0, used = 0;

	buf[0] = '\0';
	while (call_header_next(call, &pos, &name, &value)) {
		size_t vlen = strlen(value);

		if (strcasecmp(name, "Content-Encoding") != 0)
			continue;
		if (used + vlen + 2 > size)
			return -E2BIG;
		if (used > 0)
			buf[used++] = ',';
		memcpy(buf + used, value, vlen + 1);
		used += vlen;
	}
	return 0;
}

/* Validates an encoded body against s: undone with decode_body into a
 * buffer held to max bytes, for validation only (the encoded bytes are
 * what is relayed). Unknown codings and undecodable data are "encoding"
 * violations, a decoded body over max a "size" one. Returns 1 if invalid. */
static int check_encoded_json(const struct schema *s, const char *codings, const char *buf,
			      size_t len, uint64_t max, struct schema_result *res)
{
	size_t cap = max < SIZE_MAX - 1 ? (size_t)max : SIZE_MAX - 1;
	struct strbuf plain;
	char err[160];
	int r, bad;

	strbuf_init(&plain, cap);
	r = decode_body(codings, buf, len, cap, &plain, err, sizeof(err));
	if (r == -EFBIG) {
		add_size_violation(res, "decoded body", 0, max);
		bad = 1;
	} else if (r < 0) {
		add_violation(res, "encoding", err);
		bad = 1;
	} else {
		bad = check_json(s, plain.data, plain.len, max, res);
	}
	strbuf_release(&plain);
	return bad;
}

/* Validates a 2xx-class answer against the route's response schema. A body
 * with a content coding is decoded for the check (gzip, x-gzip, deflate);
 * any other coding is a violation, never a pass. Returns 1 when it failed
 * in enforce mode (kept in req->violations). */
static int response_invalid(struct request *req, struct call *call)
{
	const struct schema_setting *s;
	struct evbuffer *body = call_body(call);
	uint64_t max = req->cfg->max_validated_body;
	char codings[256];
	const char *buf;
	size_t len;
	struct schema_result res;
	int bad;

	if (!req->route)
		return 0;
	s = &req->route->response;
	if (s->mode == SCHEMA_MODE_OFF || !s->body_schema || !s->statuses[call_status(call)] ||
	    req->method == METHOD_HEAD || no_document(call_status(call)))
		return 0;
	memset(&res, 0, sizeof(res));
	len = evbuffer_get_length(body);
	if (response_codings(call, codings, sizeof(codings)) < 0) {
		add_violation(&res, "encoding", "content-encoding list too long");
		bad = 1;
	} else if (len > max) {
		/* Checked before anything is pulled up, decoded or parsed. */
		add_size_violation(&res, decode_is_identity(codings) ? "body" : "encoded body", len,
				   max);
		bad = 1;
	} else {
		buf = len ? (const char *)evbuffer_pullup(body, -1) : "";
		if (decode_is_identity(codings))
			bad = check_json(s->body_schema, buf, len, max, &res);
		else
			bad = check_encoded_json(s->body_schema, codings, buf, len, max, &res);
	}
	if (!bad)
		return 0;
	note_violations(req, "response", s->mode, &res);
	if (s->mode != SCHEMA_MODE_ENFORCE)
		return 0;
	free(req->violations);
	req->violations = malloc(sizeof(res));
	if (req->violations)
		*req->violations = res;
	return 1;
}

static void on_call_done(struct call *call, void *arg);

/* ==== the shell: engine events in, actions out ========================= */

static void feed(struct request *req, const struct engine_event *ev);

/* Starts the attempt the engine asked for. Returns -1 when the backend
 * could not. */
/* A free attempt slot, or NULL. A slot stays put while its call runs: the
 * call borrows the slot's traceparent line. */
static struct request_call *free_slot(struct request *req)
{
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (!req->calls[i].call)
			return &req->calls[i];
	return NULL;
}

static int start_call(struct request *req, const struct engine_start *s)
{
	struct request_call *rc = free_slot(req);
	const struct call_params params = {
		.url = req->url,
		.method = req->method_name,
		.head = req->method == METHOD_HEAD,
		.headers = &req->headers,
		.body = req->body,
		.body_len = req->body_len,
		.send_body = req->body_len > 0 || req->method == METHOD_POST ||
			     req->method == METHOD_PUT || req->method == METHOD_PATCH,
		.connect_ms = s->connect_ms,
		.read_ms = s->read_ms,
		.write_ms = s->write_ms,
		.pool_ms = s->pool_ms,
		.attempt_ms = s->attempt_ms,
		.tls_verify = req->profile->tls.verify,
		.ca_file = req->profile->tls.ca_file,
		.max_response_body = req->cfg->max_response_body,
		.extra_header = req->trace.valid && rc ? rc->traceparent : NULL,
	};

	if (!rc)
		return -1;
	if (req->trace.valid) {
		/* braced is a hop: the same trace, a parent-id of this attempt's own. */
		memcpy(rc->traceparent, "traceparent: ", sizeof("traceparent: ") - 1);
		trace_attempt(&req->trace, &req->srv->rng,
			      rc->traceparent + sizeof("traceparent: ") - 1);
	}
	if (!s->hedge) {
		/* The answer of the attempt before is not needed any more; a
		 * hedge's siblings may still answer with theirs. */
		call_free(req->last);
		req->last = NULL;
	}
	rc->id = s->id;
	rc->call = upstream_start(req->srv->up, req->pool, &params, on_call_done, req);
	if (!rc->call)
		return -1;
	req->ncalls++;
	return 0;
}

/* Carries out one action of the engine; the request may be freed after. */
static void carry_out(struct request *req, const struct engine_action *act)
{
	for (int i = 0; i < act->cancel; i++)
		cancel_calls(req, act->cancel_ids[i]);
	if (act->hedge_ms) {
		struct timeval tv = { .tv_sec = act->hedge_ms / 1000,
				      .tv_usec = (suseconds_t)(act->hedge_ms % 1000) * 1000 };

		evtimer_add(&req->hedge_timer, &tv);
	}
	switch (act->kind) {
	case ENGINE_DO_START:
		if (start_call(req, &act->u.start) < 0) {
			struct engine_event ev = { .kind = ENGINE_EV_START_FAILED,
						   .now_us = request_now_us() };

			ev.u.attempt.id = act->u.start.id;
			feed(req, &ev);
		}
		break;
	case ENGINE_DO_WAIT: {
		struct timeval tv = { .tv_sec = act->u.wait_ms / 1000,
				      .tv_usec = (suseconds_t)(act->u.wait_ms % 1000) * 1000 };

		evtimer_add(&req->wait_timer, &tv);
		break;
	}
	case ENGINE_DO_ANSWER:
		if (act->u.answer.kind == ENGINE_RELAY && req->last)
			relay(req, &act->u.answer);
		else
			answer_problem(req, &act->u.answer);
		break;
	case ENGINE_DO_DROP:
		drop_request(req);
		break;
	case ENGINE_DO_NOTHING:
	default:
		break;
	}
}

static void feed(struct request *req, const struct engine_event *ev)
{
	enum engine_state before = engine_state(&req->engine);
	struct engine_action act;

	engine_feed(&req->engine, ev, &act);
	if (engine_state(&req->engine) != before && log_enabled(LOG_DEBUG)) {
		struct logline *l = log_begin(LOG_DEBUG, "request state");

		log_str(l, "from", engine_state_name(before));
		log_str(l, "to", engine_state_name(engine_state(&req->engine)));
		log_int(l, "attempts", engine_attempts(&req->engine));
		log_str(l, "correlation_id", req->correlation[0] ? req->correlation : "-");
		log_end(l);
	}
	carry_out(req, &act);
}

static void feed_simple(struct request *req, enum engine_event_kind kind)
{
	const struct engine_event ev = { .kind = kind, .now_us = request_now_us() };

	feed(req, &ev);
}

/* Retry-After of an upstream answer in ms, or -1. */
static int64_t upstream_retry_after(const struct call *call)
{
	const char *name, *value;
	size_t pos = 0;
	int64_t ms;

	while (call_header_next(call, &pos, &name, &value)) {
		if (strcasecmp(name, "Retry-After") == 0 &&
		    retry_after_parse(value, time(NULL), &ms) == 0)
			return ms;
	}
	return -1;
}

static void on_call_done(struct call *call, void *arg)
{
	static const enum engine_end ends[] = {
		[CALL_OK] = ENGINE_END_OK,
		[CALL_CONNECT] = ENGINE_END_CONNECT,
		[CALL_RESET] = ENGINE_END_RESET,
		[CALL_TIMEOUT] = ENGINE_END_TIMEOUT,
		[CALL_TOO_LARGE] = ENGINE_END_TOO_LARGE,
		[CALL_POOL_TIMEOUT] = ENGINE_END_POOL_TIMEOUT,
		[CALL_INTERNAL] = ENGINE_END_INTERNAL,
	};
	static const enum engine_timeout kinds[] = {
		[CALL_TIMEOUT_NONE] = ENGINE_TIMEOUT_NONE,
		[CALL_TIMEOUT_CONNECT] = ENGINE_TIMEOUT_CONNECT,
		[CALL_TIMEOUT_READ] = ENGINE_TIMEOUT_READ,
		[CALL_TIMEOUT_WRITE] = ENGINE_TIMEOUT_WRITE,
		[CALL_TIMEOUT_ATTEMPT] = ENGINE_TIMEOUT_ATTEMPT,
	};
	struct request *req = arg;
	/* Both outlive the request, which feed() may free. */
	struct upstream_pool *pool = req->pool;
	struct guard *guard = req->guard;
	enum call_outcome co = call_outcome(call);
	/* A call that found no connection sent nothing: an answer kept from a
	 * sibling stays the one to relay, this call goes after the feed. */
	struct call *unused = NULL;
	struct engine_event ev = {
		.kind = ENGINE_EV_ATTEMPT,
		.u.attempt = {
			.end = (unsigned)co < sizeof(ends) / sizeof(ends[0]) ? ends[co]
									    : ENGINE_END_RESET,
			.timeout = kinds[call_timeout_kind(call)],
			.retry_after_ms = -1,
			.elapsed_ms = call_elapsed_ms(call),
			.elapsed_us = call_elapsed_us(call),
			.error = call_error(call),
		},
	};

	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++) {
		if (req->calls[i].call == call) {
			ev.u.attempt.id = req->calls[i].id;
			req->calls[i].call = NULL;
			req->ncalls--;
			break;
		}
	}
	ev.u.attempt.queued_us = call_queued_us(call);
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (req->calls[i].call && call_waiting(req->calls[i].call))
			ev.u.attempt.queued[ev.u.attempt.nqueued++] = req->calls[i].id;
	if (co == CALL_POOL_TIMEOUT && req->last) {
		unused = call;
	} else {
		call_free(req->last);
		req->last = call;
	}
	if (co == CALL_OK) {
		ev.u.attempt.status = call_status(call);
		ev.u.attempt.retry_after_ms = upstream_retry_after(call);
		/* Only an answer that would be relayed as a success is validated. */
		if (retry_classify_status(&req->policy->retry, ev.u.attempt.status) == OUTCOME_OK &&
		    response_invalid(req, call)) {
			ev.u.attempt.schema_failed = 1;
			ev.u.attempt.violations = req->violations ? req->violations->total : 0;
		}
	}
	ev.now_us = request_now_us();
	feed(req, &ev);
	call_free(unused);
	/* The answer may have moved the adaptive concurrency limit. */
	upstream_pool_set_max(pool, guard_concurrency_limit(guard));
}

static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
	const struct engine_event ev = { .kind = ENGINE_EV_TIMER,
					 .now_us = request_now_us(),
					 .u.timer.which = ENGINE_TIMER_WAIT };

	(void)fd;
	(void)what;
	feed(arg, &ev);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;
	struct engine_event ev = {
		.kind = ENGINE_EV_TIMER,
		.now_us = request_now_us(),
		.u.timer = { .which = ENGINE_TIMER_DEADLINE },
	};

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (req->calls[i].call && call_waiting(req->calls[i].call))
			ev.u.timer.queued[ev.u.timer.nqueued++] = req->calls[i].id;
	feed(req, &ev);
}

static void on_hedge_timer(evutil_socket_t fd, short what, void *arg)
{
	const struct engine_event ev = { .kind = ENGINE_EV_TIMER,
					 .now_us = request_now_us(),
					 .u.timer.which = ENGINE_TIMER_HEDGE };

	(void)fd;
	(void)what;
	feed(arg, &ev);
}

void request_start(struct request *req)
{
	struct event_base *base = req->srv->base;
	uint64_t now = request_now_us();
	/* The budget counts from the moment the request was read, routing and
	 * request validation included. */
	uint64_t used = (now - req->start_us) / 1000;
	uint32_t left = req->total_ms > used ? req->total_ms - (uint32_t)used : 0;
	struct timeval tv = { .tv_sec = left / 1000, .tv_usec = (suseconds_t)(left % 1000) * 1000 };
	const struct engine_event ev = {
		.kind = ENGINE_EV_ROUTED,
		.now_us = now,
		.u.routed = {
			.policy = req->policy,
			.guard = req->guard,
			.profile = req->profile->name,
			.method = req->method,
			.idempotency = !req->idempotency_key[0] ? IDEM_KEY_NONE
				       : req->idempotency_minted && !req->policy->idempotency_honored
					   ? IDEM_KEY_MINTED
					   : IDEM_KEY_HONORED,
			.total_ms = req->total_ms,
			.max_attempts = req->max_attempts,
			.start_us = req->start_us,
			.max_response_body = req->cfg->max_response_body,
		},
	};

	evtimer_assign(&req->deadline, base, on_deadline, req);
	evtimer_assign(&req->wait_timer, base, on_wait_over, req);
	evtimer_assign(&req->hedge_timer, base, on_hedge_timer, req);
	evtimer_add(&req->deadline, &tv);
	req->timers_armed = 1;
	feed(req, &ev);
}

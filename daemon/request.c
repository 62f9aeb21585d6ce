/* The life of one proxied request. Every path ends in one of two places:
 * an answer (relay() or request_fail(), both through send_and_free()) or
 * request_abort() when the app left. That one place sends the reply, writes
 * the access log line, releases the attempt and frees the request.
 *
 * Between the first attempt and the answer the request loops:
 * wait (backoff, cool-down) → attempt → outcome → retry decision (retry.c). */
#include "request.h"
#include "front.h"
#include "decode.h"
#include "guard.h"
#include "log.h"
#include "retry.h"
#include "schema.h"
#include "upstream.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>

uint64_t request_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	return request_now_us() / 1000;
}

static uint32_t elapsed_ms(const struct request *req)
{
	return (uint32_t)((request_now_us() - req->start_us) / 1000);
}

static uint32_t remaining_ms(const struct request *req)
{
	uint32_t used = elapsed_ms(req);

	return req->total_ms > used ? req->total_ms - used : 0;
}

struct request *request_new(struct server *srv, struct evhttp_request *hreq)
{
	struct request *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->srv = srv;
	req->state = REQ_ROUTING;
	req->hreq = hreq;
	req->evcon = evhttp_request_get_connection(hreq);
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
	event_del(&req->client_watch);
	event_del(&req->watch_delay);
	event_del(&req->wait_timer);
	req->timers_armed = 0;
}

static void request_free(struct request *req)
{
	struct server *srv = req->srv;

	disarm(req);
	if (req->evcon)
		evhttp_connection_set_closecb(req->evcon, NULL, NULL);
	upstream_cancel(req->call);
	req->call = NULL;
	call_free(req->last);
	req->last = NULL;
	free(req->violations);
	req->violations = NULL;
	if (req->started) {
		req->guard->inflight--;
		if (req->probe)
			breaker_probe_abandoned(&req->guard->breaker);
	}
	TAILQ_REMOVE(&srv->requests, req, link);
	srv->inflight--;
	curl_slist_free_all(req->headers);
	free(req->url);
	config_unref(req->cfg);
	free(req);
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
	log_int(l, "attempts", req->attempts);
	log_int(l, "elapsed_ms", elapsed_ms(req));
	log_int(l, "upstream_ms", req->upstream_ms);
	log_str(l, "correlation_id", req->correlation[0] ? req->correlation : "-");
	log_end(l);
}

/* Headers braced adds to every answer. */
static void add_common_headers(struct request *req, struct evkeyvalq *out)
{
	char buf[96];

	if (req->correlation[0]) {
		evhttp_remove_header(out, req->correlation_header);
		evhttp_add_header(out, req->correlation_header, req->correlation);
	}
	if (req->idempotency_key[0]) {
		evhttp_remove_header(out, req->idempotency_header);
		evhttp_add_header(out, req->idempotency_header, req->idempotency_key);
	}
	snprintf(buf, sizeof(buf), "%u", req->attempts);
	evhttp_add_header(out, "Brace-Attempts", buf);
	snprintf(buf, sizeof(buf), "upstream;dur=%u, total;dur=%.1f", req->upstream_ms,
		 (double)(request_now_us() - req->start_us) / 1000.0);
	evhttp_add_header(out, "Server-Timing", buf);
}

/* A reply being written out: counted until it is written or its connection
 * goes, whichever comes first (evhttp calls only one of the two). */
struct reply_watch {
	struct server *srv;
	struct evhttp_connection *evcon;
};

static void reply_gone(struct reply_watch *w)
{
	w->srv->writing--;
	free(w);
}

static void on_reply_written(struct evhttp_request *hreq, void *arg)
{
	struct reply_watch *w = arg;

	(void)hreq;
	evhttp_connection_set_closecb(w->evcon, NULL, NULL);
	reply_gone(w);
}

static void on_reply_connection_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	reply_gone(arg);
}

/* The code of a successful answer, beside enum problem_code. */
#define ANSWER_OK (-1)

/* Sends reply with status and body (taken), logs under code (ANSWER_OK or
 * an enum problem_code), frees the request. */
static void send_and_free(struct request *req, int status, struct evbuffer *body, int code)
{
	if (req->guard) {
		histogram_observe(&req->guard->duration,
				  (double)(request_now_us() - req->start_us) / 1e6);
		if (code == ANSWER_OK)
			req->guard->requests_ok++;
		else
			req->guard->requests[code]++;
	}
	if (req->hreq) {
		struct reply_watch *w = malloc(sizeof(*w));

		evhttp_connection_set_closecb(req->evcon, NULL, NULL);
		/* A draining daemon waits until replies are written out too. */
		if (w) {
			*w = (struct reply_watch){ .srv = req->srv, .evcon = req->evcon };
			req->srv->writing++;
			evhttp_connection_set_closecb(req->evcon, on_reply_connection_closed, w);
			evhttp_request_set_on_complete_cb(req->hreq, on_reply_written, w);
		}
		evhttp_send_reply(req->hreq, status, headers_reason_phrase(status), body);
		req->hreq = NULL;
		/* The connection's close callback now belongs to the reply watch. */
		req->evcon = NULL;
	}
	req->state = REQ_DONE;
	log_access(req, status, code == ANSWER_OK ? "ok" : problem_code_name(code));
	request_free(req);
}

static void add_retry_after(struct evkeyvalq *out, long long ms)
{
	char buf[24];

	if (ms < 0)
		return;
	/* Whole seconds, rounded up: never invite the app back too early. */
	snprintf(buf, sizeof(buf), "%lld", (ms + 999) / 1000);
	evhttp_remove_header(out, "Retry-After");
	evhttp_add_header(out, "Retry-After", buf);
}

void request_fail(struct request *req, struct problem *p)
{
	struct evkeyvalq *out;
	struct evbuffer *body;
	char *json;
	size_t len = 0;
	int status;

	p->profile = req->profile ? req->profile->name : p->profile;
	p->route = req->route ? req->route->label : p->route;
	p->correlation_id = req->correlation[0] ? req->correlation : NULL;
	p->idempotency_key = req->idempotency_key[0] ? req->idempotency_key : NULL;
	if (req->state != REQ_ROUTING) {
		if (p->attempts < 0)
			p->attempts = (int)req->attempts;
		if (p->elapsed_ms < 0)
			p->elapsed_ms = elapsed_ms(req);
		if (!p->history && req->attempts > 0) {
			p->history = req->history;
			p->nhistory = req->attempts < REQUEST_MAX_HISTORY ? req->attempts
									  : REQUEST_MAX_HISTORY;
		}
	}
	status = problem_status(p);
	json = problem_render(p, &len);
	body = evbuffer_new();
	if (req->hreq) {
		out = evhttp_request_get_output_headers(req->hreq);
		evhttp_add_header(out, "Content-Type", "application/problem+json");
		evhttp_add_header(out, "Brace-Error", problem_code_name(p->code));
		add_retry_after(out, p->retry_after_ms);
		add_common_headers(req, out);
		if (json && body)
			evbuffer_add(body, json, len);
	}
	free(json);
	send_and_free(req, status, body, (int)p->code);
	if (body)
		evbuffer_free(body);
}

/* The Retry-After braced passes on: never longer than retry_after.max, the
 * longest pause braced itself honours (and holds a profile cooled for), so an
 * upstream cannot park the app for days through braced. -1 stays -1. */
static long long app_retry_after(const struct request *req, long long ms)
{
	long long max = (long long)req->policy->retry.retry_after_max_ms;

	return ms > max ? max : ms;
}

static int64_t upstream_retry_after(const struct call *call);

/* Relays a complete upstream answer (below 400, or passthrough). The
 * upstream's Retry-After is replaced by its clamped value in seconds. */
static void relay(struct request *req, struct call *call, int code)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req->hreq);
	const char *connection = NULL, *name, *value;
	size_t pos;

	/* The Connection header lists more names to drop. */
	for (pos = 0; call_header_next(call, &pos, &name, &value);)
		if (strcasecmp(name, "Connection") == 0)
			connection = value;
	for (pos = 0; call_header_next(call, &pos, &name, &value);) {
		if (req->method == METHOD_HEAD && strcasecmp(name, "Content-Length") == 0) {
			evhttp_add_header(out, name, value);
			continue;
		}
		if (headers_response_dropped(name, connection) ||
		    strcasecmp(name, req->correlation_header) == 0 ||
		    strcasecmp(name, "Retry-After") == 0)
			continue;
		evhttp_add_header(out, name, value);
	}
	add_retry_after(out, app_retry_after(req, upstream_retry_after(call)));
	if (code != ANSWER_OK)
		evhttp_add_header(out, "Brace-Error", problem_code_name(code));
	add_common_headers(req, out);
	send_and_free(req, call_status(call), call_body(call), code);
}

/* Outcome of a finished attempt (SPEC 4.2). */
static enum outcome outcome_of(const struct request *req, const struct call *call)
{
	switch (call_outcome(call)) {
	case CALL_OK:
		return retry_classify_status(&req->policy->retry, call_status(call));
	case CALL_CONNECT:
		return OUTCOME_CONNECT;
	case CALL_TIMEOUT:
		return OUTCOME_TIMEOUT;
	case CALL_TOO_LARGE:
		return OUTCOME_TOO_LARGE;
	case CALL_INTERNAL:
	case CALL_POOL_TIMEOUT:
		return OUTCOME_INTERNAL;
	case CALL_RESET:
	default:
		return OUTCOME_RESET;
	}
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

/* The final answer after the last attempt, given why braced stopped. */
static void answer_failure(struct request *req, struct call *call, int retryable,
			   int64_t retry_after_ms)
{
	static const char *const timeout_names[] = {
		[CALL_TIMEOUT_NONE] = "attempt",    [CALL_TIMEOUT_CONNECT] = "connect",
		[CALL_TIMEOUT_READ] = "read",       [CALL_TIMEOUT_WRITE] = "write",
		[CALL_TIMEOUT_ATTEMPT] = "attempt",
	};
	const struct timeouts *t = &req->policy->timeouts;
	struct evbuffer *body;
	struct problem p;
	char detail[512];
	size_t blen;

	switch (call_outcome(call)) {
	case CALL_OK:
		if (req->violations && call_status(call) < 400) {
			problem_init(&p, PROBLEM_SCHEMA_VIOLATION);
			p.upstream_status = call_status(call);
			snprintf(
			    detail, sizeof(detail),
			    "the upstream's %d answer failed the response schema (%zu violation%s)",
			    call_status(call), req->violations->total,
			    req->violations->total == 1 ? "" : "s");
			p.violations = req->violations->v;
			p.nviolations = req->violations->count;
			break;
		}
		problem_init(&p, PROBLEM_UPSTREAM_STATUS);
		p.status = call_status(call);
		p.upstream_status = call_status(call);
		snprintf(detail, sizeof(detail), "upstream answered %d after %u attempt%s",
			 call_status(call), req->attempts, req->attempts == 1 ? "" : "s");
		body = call_body(call);
		blen = evbuffer_get_length(body);
		if (blen > PROBLEM_UPSTREAM_BODY_MAX + 4)
			blen = PROBLEM_UPSTREAM_BODY_MAX + 4;
		p.upstream_body = (const char *)evbuffer_pullup(body, (ev_ssize_t)blen);
		p.upstream_body_len = blen;
		if (!p.upstream_body)
			p.upstream_body = "";
		if (call_status(call) == 429 && retry_after_ms >= 0) {
			/* The upstream asked for more time than braced may wait. */
			p.code = PROBLEM_RATE_LIMITED;
		}
		break;
	case CALL_TIMEOUT: {
		enum call_timeout k = call_timeout_kind(call);
		uint32_t ms = k == CALL_TIMEOUT_CONNECT ? t->connect_ms
			      : k == CALL_TIMEOUT_READ  ? t->read_ms
			      : k == CALL_TIMEOUT_WRITE ? t->write_ms
							: t->attempt_ms;

		problem_init(&p, PROBLEM_UPSTREAM_TIMEOUT);
		snprintf(detail, sizeof(detail), "%s timeout of %u ms reached on attempt %u",
			 timeout_names[k], ms, req->attempts);
		break;
	}
	case CALL_TOO_LARGE:
		problem_init(&p, PROBLEM_RESPONSE_TOO_LARGE);
		snprintf(detail, sizeof(detail), "upstream response is larger than %llu bytes",
			 (unsigned long long)req->cfg->max_response_body);
		break;
	case CALL_POOL_TIMEOUT:
		problem_init(&p, PROBLEM_OVERLOADED);
		snprintf(detail, sizeof(detail),
			 "no upstream connection became free within %u ms (pool of %u)", t->pool_ms,
			 req->policy->pool_max_connections);
		break;
	case CALL_CONNECT:
	case CALL_RESET:
	case CALL_INTERNAL:
	default:
		problem_init(&p, PROBLEM_UPSTREAM_UNAVAILABLE);
		snprintf(detail, sizeof(detail), "%s after %u attempt%s: %s",
			 call_outcome(call) == CALL_CONNECT ? "cannot connect to the upstream"
							    : "upstream connection failed",
			 req->attempts, req->attempts == 1 ? "" : "s",
			 call_error(call)[0] ? call_error(call) : "no detail");
		break;
	}
	p.detail = detail;
	p.retryable = retryable;
	p.retry_after_ms = app_retry_after(req, retry_after_ms);
	request_fail(req, &p);
}

/* Most query parameters a validated request may carry; more is a violation. */
#define QUERY_MAX_PARAMS 1000

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Form-decodes [s, s+len) ('+' is a space, %XX a byte) into out (len + 1). */
static size_t form_decode(const char *s, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < len && hexval((unsigned char)s[i + 1]) >= 0 &&
			   hexval((unsigned char)s[i + 2]) >= 0) {
			out[o++] = (char)(hexval((unsigned char)s[i + 1]) * 16 +
					  hexval((unsigned char)s[i + 2]));
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

static void start_attempt(struct request *req);
static void fail_budget_spent(struct request *req);

/* Waits wait_ms (and past any cool-down of the profile), then attempts.
 * Returns -1 after answering when the cool-down cannot fit the budget. */
static int schedule_attempt(struct request *req, uint32_t wait_ms)
{
	uint64_t now = request_now_us(), until = req->guard->cooldown_until_us;
	struct timeval tv;

	if (req->policy->rate_limit_cooldown && until > now + (uint64_t)wait_ms * 1000) {
		/* Rounded up: never a millisecond before the upstream's time. */
		uint64_t cool = (until - now + 999) / 1000;

		if (cool + RETRY_MIN_ATTEMPT_MS > remaining_ms(req)) {
			struct problem p;
			char detail[160];

			problem_init(&p, PROBLEM_RATE_LIMITED);
			snprintf(
			    detail, sizeof(detail),
			    "the upstream asked for a pause of %llu ms more; the budget has %u ms",
			    (unsigned long long)cool, remaining_ms(req));
			p.detail = detail;
			/* The cool-down may come from a route with a longer
			 * retry_after.max: this request's route says what to tell. */
			p.retry_after_ms = app_retry_after(req, (long long)cool);
			p.retryable = 1;
			request_fail(req, &p);
			return -1;
		}
		wait_ms = (uint32_t)cool;
	}
	if (wait_ms == 0) {
		start_attempt(req);
		return 0;
	}
	req->state = REQ_WAITING;
	tv.tv_sec = wait_ms / 1000;
	tv.tv_usec = (suseconds_t)(wait_ms % 1000) * 1000;
	evtimer_add(&req->wait_timer, &tv);
	return 0;
}

/* The wait before a retry is over; the world may have changed meanwhile. */
static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;
	struct guard *g = req->guard;
	enum breaker_state bs = breaker_state(&g->breaker, request_now_us() / 1000);

	(void)fd;
	(void)what;
	if (req->last && (bs == BREAKER_OPEN || (bs == BREAKER_HALF_OPEN && !req->probe))) {
		/* The breaker opened while this retry waited: nothing more is sent. */
		g->suppressed[RETRY_STOP_BREAKER]++;
		answer_failure(req, req->last, 1, req->last_retry_after_ms);
		return;
	}
	/* Another answer may have extended the cool-down while this one waited. */
	schedule_attempt(req, 0);
}

static void on_call_done(struct call *call, void *arg)
{
	struct request *req = arg;
	struct guard *g = req->guard;
	struct retry_policy const *rp = &req->policy->retry;
	uint64_t now = now_ms();
	enum outcome o;
	enum retry_stop stop;
	struct history_entry *h;
	int64_t retry_after = -1;
	uint32_t wait = 0;
	int status;

	req->call = NULL;
	req->upstream_ms += call_elapsed_ms(call);
	if (call_outcome(call) == CALL_POOL_TIMEOUT) {
		/* Nothing was sent: not an attempt, and nothing to retry into. When
		 * the budget, not timeouts.pool, ended the wait, the budget is spent. */
		if (req->pool_wait_cut)
			fail_budget_spent(req);
		else
			answer_failure(req, call, 1, -1);
		call_free(call);
		return;
	}
	o = outcome_of(req, call);
	status = call_outcome(call) == CALL_OK ? call_status(call) : 0;
	if (o == OUTCOME_OK && response_invalid(req, call))
		o = OUTCOME_SCHEMA;
	h = &req->history[req->attempts < REQUEST_MAX_HISTORY ? req->attempts
							      : REQUEST_MAX_HISTORY - 1];
	req->attempts++;
	h->attempt = req->attempts;
	h->outcome = retry_outcome_name(o);
	h->status = status;
	h->ms = call_elapsed_ms(call);
	h->wait_ms = (uint32_t)((req->attempt_start_us - req->wait_since_us) / 1000);
	g->attempts[o]++;
	breaker_record(&g->breaker, now, retry_is_failure(o, status), req->probe);
	/* A probe's first answer has decided the breaker's state. */
	req->probe = 0;
	if (status == 429 || status == 503)
		retry_after = upstream_retry_after(call);
	if (status == 429 && retry_after > 0 && req->policy->rate_limit_cooldown) {
		/* One answer cannot silence the profile for longer than braced would wait. */
		uint64_t pause = (uint64_t)retry_after < rp->retry_after_max_ms
				     ? (uint64_t)retry_after
				     : rp->retry_after_max_ms;

		guard_cool_down(g, request_now_us() + pause * 1000);
	}
	if (o == OUTCOME_OK || call_outcome(call) == CALL_TOO_LARGE) {
		free(req->violations);
		req->violations = NULL;
		if (o == OUTCOME_OK)
			relay(req, call, ANSWER_OK);
		else
			answer_failure(req, call, 0, -1);
		call_free(call);
		return;
	}
	{
		enum breaker_state bs = breaker_state(&g->breaker, now);
		struct retry_input in = {
			.outcome = o,
			.status = status,
			.attempts = req->attempts,
			.max_attempts = req->max_attempts,
			.method = req->method,
			.has_idempotency_key = req->idempotency_key[0] != '\0',
			.breaker_open =
			    bs == BREAKER_OPEN || (bs == BREAKER_HALF_OPEN && !req->probe),
			.budget_has_room = budget_can_withdraw(&g->budget, now),
			.retry_after_ms = rp->retry_after_honor ? retry_after : -1,
			.remaining_ms = remaining_ms(req),
			.prev_wait_ms = req->prev_wait_ms,
		};

		stop = retry_decide(rp, &in, &req->srv->rng, &wait);
	}
	if (stop == RETRY_GO) {
		budget_withdraw(&g->budget, now);
		g->retries++;
		req->prev_wait_ms = wait;
		/* Kept to answer with, should the retry be stopped before it starts. */
		call_free(req->last);
		req->last = call;
		req->last_retry_after_ms = retry_after;
		req->wait_since_us = request_now_us();
		schedule_attempt(req, wait);
		return;
	}
	if (stop != RETRY_STOP_OUTCOME)
		g->suppressed[stop]++;
	if (call_outcome(call) == CALL_OK && o != OUTCOME_SCHEMA &&
	    req->policy->upstream_errors == UPSTREAM_ERRORS_PASSTHROUGH)
		relay(req, call,
		      stop == RETRY_STOP_RETRY_AFTER && status == 429 ? PROBLEM_RATE_LIMITED
								      : PROBLEM_UPSTREAM_STATUS);
	else
		answer_failure(req, call, stop != RETRY_STOP_OUTCOME,
			       stop == RETRY_STOP_RETRY_AFTER || retry_after >= 0 ? retry_after
										  : -1);
	call_free(call);
}

/* The total budget is spent: 504 with the story so far. */
static void fail_budget_spent(struct request *req)
{
	struct problem p;
	char detail[160];

	problem_init(&p, PROBLEM_UPSTREAM_TIMEOUT);
	snprintf(detail, sizeof(detail), "total budget of %u ms spent after %u attempt%s",
		 req->total_ms, req->attempts, req->attempts == 1 ? "" : "s");
	p.detail = detail;
	p.retryable = 1;
	request_fail(req, &p);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;

	(void)fd;
	(void)what;
	if (req->call && call_waiting(req->call)) {
		/* Still queued for a connection: nothing was sent, no attempt made. */
		upstream_cancel(req->call);
		req->call = NULL;
	} else if (req->call) {
		/* The attempt in progress is cut and counted as a timeout. */
		uint32_t ms = (uint32_t)((request_now_us() - req->attempt_start_us) / 1000);
		struct history_entry *h =
		    &req->history[req->attempts < REQUEST_MAX_HISTORY ? req->attempts
								      : REQUEST_MAX_HISTORY - 1];

		upstream_cancel(req->call);
		req->call = NULL;
		req->upstream_ms += ms;
		req->attempts++;
		*h = (struct history_entry){
			.attempt = req->attempts,
			.outcome = "timeout",
			.ms = ms,
			.wait_ms = (uint32_t)((req->attempt_start_us - req->wait_since_us) / 1000)
		};
		req->guard->attempts[OUTCOME_TIMEOUT]++;
		breaker_record(&req->guard->breaker, now_ms(), 1, req->probe);
		req->probe = 0;
	}
	fail_budget_spent(req);
}

static void on_client_gone(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	request_abort(arg);
}

/* evhttp frees the connection under us (shutdown): forget it, then abort. */
static void on_connection_freed(struct evhttp_connection *evcon, void *arg)
{
	struct request *req = arg;

	(void)evcon;
	req->evcon = NULL;
	req->hreq = NULL;
	request_abort(req);
}

void request_abort(struct request *req)
{
	struct evhttp_connection *evcon = req->evcon;

	if (req->call)
		req->attempts++;
	log_access(req, 499, "client_gone");
	req->state = req->state == REQ_ROUTING ? REQ_ROUTING : REQ_DONE;
	disarm(req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	req->evcon = NULL;
	req->hreq = NULL;
	request_free(req);
	/* Frees the pending evhttp request as well. */
	if (evcon)
		evhttp_connection_free(evcon);
}

static void start_attempt(struct request *req)
{
	const struct timeouts *t = &req->policy->timeouts;
	uint32_t left = remaining_ms(req);
	struct call_params params;

	if (left == 0)
		left = 1;
	params = (struct call_params){
		.url = req->url,
		.method = req->method_name,
		.head = req->method == METHOD_HEAD,
		.headers = req->headers,
		.body = req->body,
		.body_len = req->body_len,
		.send_body = req->body_len > 0 || req->method == METHOD_POST ||
			     req->method == METHOD_PUT || req->method == METHOD_PATCH,
		.connect_ms = t->connect_ms < left ? t->connect_ms : left,
		.read_ms = t->read_ms,
		.write_ms = t->write_ms,
		.pool_ms = t->pool_ms < left ? t->pool_ms : left,
		.attempt_ms = t->attempt_ms && t->attempt_ms < left ? t->attempt_ms : 0,
		.tls_verify = req->profile->tls.verify,
		.ca_file = req->profile->tls.ca_file,
		.max_response_body = req->cfg->max_response_body,
	};
	req->pool_wait_cut = params.pool_ms < t->pool_ms;
	req->state = REQ_ATTEMPT;
	req->attempt_start_us = request_now_us();
	call_free(req->last);
	req->last = NULL;
	req->call = upstream_start(req->srv->up, req->pool, &params, on_call_done, req);
	if (!req->call) {
		struct problem p;

		problem_init(&p, PROBLEM_INTERNAL);
		p.detail = "out of memory starting the upstream attempt";
		request_fail(req, &p);
	}
}

static void on_watch_delay(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;

	(void)fd;
	(void)what;
	event_add(&req->client_watch, NULL);
}

void request_start(struct request *req)
{
	static const struct timeval watch_after = { 0, REQUEST_WATCH_AFTER_MS * 1000 };
	struct event_base *base = req->srv->base;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(req->evcon);
	/* The budget counts from the moment the request was read, routing and
	 * request validation included. */
	uint32_t left = remaining_ms(req);
	struct timeval tv = { .tv_sec = left / 1000, .tv_usec = (suseconds_t)(left % 1000) * 1000 };
	struct guard *g = req->guard;
	uint64_t now = now_ms();

	evtimer_assign(&req->deadline, base, on_deadline, req);
	evtimer_assign(&req->wait_timer, base, on_wait_over, req);
	event_assign(&req->client_watch, base, bufferevent_getfd(bev), EV_CLOSED, on_client_gone,
		     req);
	evtimer_add(&req->deadline, &tv);
	/* Most answers come within a few milliseconds: watching the app's socket
	 * costs two epoll_ctl calls, so the watch starts only for slower ones. */
	evtimer_assign(&req->watch_delay, base, on_watch_delay, req);
	evtimer_add(&req->watch_delay, &watch_after);
	req->timers_armed = 1;
	evhttp_connection_set_closecb(req->evcon, on_connection_freed, req);
	req->state = REQ_WAITING;
	req->started = 1;
	req->wait_since_us = req->start_us;
	g->inflight++;
	budget_deposit(&g->budget, now);
	switch (breaker_admit(&g->breaker, now)) {
	case BREAKER_REJECT: {
		struct problem p;
		char detail[128];
		uint64_t ra = breaker_retry_after_ms(&g->breaker, now);

		problem_init(&p, PROBLEM_CIRCUIT_OPEN);
		snprintf(detail, sizeof(detail), "the circuit breaker of profile '%s' is open",
			 req->profile->name);
		p.detail = detail;
		p.retryable = 1;
		p.retry_after_ms = (long long)(ra ? ra : 1000);
		request_fail(req, &p);
		return;
	}
	case BREAKER_ALLOW_PROBE:
		req->probe = 1;
		break;
	case BREAKER_ALLOW:
	default:
		break;
	}
	schedule_attempt(req, 0);
}

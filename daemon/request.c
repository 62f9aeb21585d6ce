/* The life of one proxied request. Every path ends in request_finish() (an
 * answer) or request_abort() (the app left): one place sends the reply,
 * writes the access log line, releases the attempt and frees the request. */
#include "request.h"
#include "front.h"
#include "log.h"
#include "upstream.h"

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

static uint32_t elapsed_ms(const struct request *req)
{
	return (uint32_t)((request_now_us() - req->start_us) / 1000);
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

static void request_free(struct request *req)
{
	struct server *srv = req->srv;

	if (req->timers_armed) {
		event_del(&req->deadline);
		event_del(&req->client_watch);
		req->timers_armed = 0;
	}
	if (req->evcon)
		evhttp_connection_set_closecb(req->evcon, NULL, NULL);
	upstream_cancel(req->call);
	req->call = NULL;
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
	snprintf(buf, sizeof(buf), "%u", req->attempts);
	evhttp_add_header(out, "Brace-Attempts", buf);
	snprintf(buf, sizeof(buf), "upstream;dur=%u, total;dur=%.1f", req->upstream_ms,
		 (double)(request_now_us() - req->start_us) / 1000.0);
	evhttp_add_header(out, "Server-Timing", buf);
}

static void on_reply_written(struct evhttp_request *hreq, void *arg)
{
	struct server *srv = arg;

	(void)hreq;
	srv->writing--;
}

/* Sends reply with status and body (taken), logs, frees the request. */
static void send_and_free(struct request *req, int status, struct evbuffer *body,
			  const char *code)
{
	if (req->hreq) {
		evhttp_connection_set_closecb(req->evcon, NULL, NULL);
		/* A draining daemon waits until replies are written out too. */
		req->srv->writing++;
		evhttp_request_set_on_complete_cb(req->hreq, on_reply_written, req->srv);
		evhttp_send_reply(req->hreq, status, NULL, body);
		req->hreq = NULL;
	}
	req->state = REQ_DONE;
	log_access(req, status, code);
	request_free(req);
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
	if (p->attempts < 0 && req->state != REQ_ROUTING)
		p->attempts = (int)req->attempts;
	if (p->elapsed_ms < 0 && req->state != REQ_ROUTING)
		p->elapsed_ms = elapsed_ms(req);
	status = problem_status(p);
	json = problem_render(p, &len);
	body = evbuffer_new();
	if (req->hreq) {
		out = evhttp_request_get_output_headers(req->hreq);
		evhttp_add_header(out, "Content-Type", "application/problem+json");
		evhttp_add_header(out, "Brace-Error", problem_code_name(p->code));
		add_common_headers(req, out);
		if (json && body)
			evbuffer_add(body, json, len);
	}
	free(json);
	send_and_free(req, status, body, problem_code_name(p->code));
	if (body)
		evbuffer_free(body);
}

/* Relays a complete upstream answer (status below 400, or passthrough). */
static void relay(struct request *req, struct call *call, const char *error_code)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req->hreq);
	size_t hlen, off = 0;
	const char *h = call_headers(call, &hlen);
	const char *connection = NULL;
	int status = call_status(call);

	/* The Connection header lists more names to drop. */
	for (off = 0; off < hlen;) {
		const char *name = h + off, *value = name + strlen(name) + 1;

		if (strcasecmp(name, "Connection") == 0)
			connection = value;
		off = (size_t)(value - h) + strlen(value) + 1;
	}
	for (off = 0; off < hlen;) {
		const char *name = h + off, *value = name + strlen(name) + 1;

		off = (size_t)(value - h) + strlen(value) + 1;
		if (req->method == METHOD_HEAD && strcasecmp(name, "Content-Length") == 0) {
			evhttp_add_header(out, name, value);
			continue;
		}
		if (headers_response_dropped(name, connection) ||
		    strcasecmp(name, req->correlation_header) == 0)
			continue;
		evhttp_add_header(out, name, value);
	}
	if (error_code)
		evhttp_add_header(out, "Brace-Error", error_code);
	add_common_headers(req, out);
	send_and_free(req, status, call_body(call), error_code ? error_code : "ok");
}

static void fail_after_call(struct request *req, struct call *call)
{
	struct problem p;
	char detail[512];
	static const char *const timeout_names[] = {
		[CALL_TIMEOUT_NONE] = "attempt", [CALL_TIMEOUT_CONNECT] = "connect",
		[CALL_TIMEOUT_READ] = "read", [CALL_TIMEOUT_WRITE] = "write",
		[CALL_TIMEOUT_ATTEMPT] = "attempt",
	};
	const struct timeouts *t = &req->policy->timeouts;
	struct evbuffer *body;
	size_t blen;

	switch (call_outcome(call)) {
	case CALL_OK:
		/* A final upstream 4xx or 5xx. */
		problem_init(&p, PROBLEM_UPSTREAM_STATUS);
		p.status = call_status(call);
		p.upstream_status = call_status(call);
		snprintf(detail, sizeof(detail), "upstream answered %d", call_status(call));
		body = call_body(call);
		blen = evbuffer_get_length(body);
		if (blen > PROBLEM_UPSTREAM_BODY_MAX + 4)
			blen = PROBLEM_UPSTREAM_BODY_MAX + 4;
		p.upstream_body = (const char *)evbuffer_pullup(body, (ev_ssize_t)blen);
		p.upstream_body_len = blen;
		if (!p.upstream_body)
			p.upstream_body = "";
		break;
	case CALL_TIMEOUT: {
		enum call_timeout k = call_timeout_kind(call);
		uint32_t ms = k == CALL_TIMEOUT_CONNECT ? t->connect_ms
			    : k == CALL_TIMEOUT_READ    ? t->read_ms
			    : k == CALL_TIMEOUT_WRITE   ? t->write_ms
							: t->attempt_ms;

		problem_init(&p, PROBLEM_UPSTREAM_TIMEOUT);
		snprintf(detail, sizeof(detail), "%s timeout of %u ms reached", timeout_names[k], ms);
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
		snprintf(detail, sizeof(detail), "%s: %s",
			 call_outcome(call) == CALL_CONNECT ? "cannot connect to the upstream"
							    : "upstream connection failed",
			 call_error(call)[0] ? call_error(call) : "no detail");
		break;
	}
	p.detail = detail;
	request_fail(req, &p);
}

static void on_call_done(struct call *call, void *arg)
{
	struct request *req = arg;

	req->call = NULL;
	req->attempts++;
	req->upstream_ms += call_elapsed_ms(call);
	if (call_outcome(call) == CALL_POOL_TIMEOUT)
		req->attempts--; /* nothing was sent */
	if (call_outcome(call) == CALL_OK && call_status(call) < 400)
		relay(req, call, NULL);
	else if (call_outcome(call) == CALL_OK &&
		 req->policy->upstream_errors == UPSTREAM_ERRORS_PASSTHROUGH)
		relay(req, call, "upstream_status");
	else
		fail_after_call(req, call);
	call_free(call);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;
	struct problem p;
	char detail[160];

	(void)fd;
	(void)what;
	if (req->call) {
		req->upstream_ms += (uint32_t)((request_now_us() - req->attempt_start_us) / 1000);
		upstream_cancel(req->call);
		req->call = NULL;
		req->attempts++;
	}
	problem_init(&p, PROBLEM_UPSTREAM_TIMEOUT);
	snprintf(detail, sizeof(detail), "total budget of %u ms spent after %u attempt%s",
		 req->total_ms, req->attempts, req->attempts == 1 ? "" : "s");
	p.detail = detail;
	request_fail(req, &p);
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
	req->state = REQ_DONE;
	log_access(req, 499, "client_gone");
	if (req->timers_armed) {
		event_del(&req->deadline);
		event_del(&req->client_watch);
		req->timers_armed = 0;
	}
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
	uint32_t used = elapsed_ms(req);
	uint32_t left = req->total_ms > used ? req->total_ms - used : 1;
	struct call_params params = {
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

	req->state = REQ_ATTEMPT;
	req->attempt_start_us = request_now_us();
	req->call = upstream_start(req->srv->up, req->pool, &params, on_call_done, req);
	if (!req->call) {
		struct problem p;

		problem_init(&p, PROBLEM_INTERNAL);
		p.detail = "out of memory starting the upstream attempt";
		request_fail(req, &p);
	}
}

void request_start(struct request *req)
{
	struct event_base *base = req->srv->base;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(req->evcon);
	struct timeval tv = { .tv_sec = req->total_ms / 1000,
			      .tv_usec = (suseconds_t)(req->total_ms % 1000) * 1000 };

	evtimer_assign(&req->deadline, base, on_deadline, req);
	event_assign(&req->client_watch, base, bufferevent_getfd(bev), EV_CLOSED, on_client_gone,
		     req);
	evtimer_add(&req->deadline, &tv);
	event_add(&req->client_watch, NULL);
	req->timers_armed = 1;
	evhttp_connection_set_closecb(req->evcon, on_connection_freed, req);
	start_attempt(req);
}

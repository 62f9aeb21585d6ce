/* The I/O shell of one proxied request around its engine (engine.c): it
 * turns timers, finished attempts and the app leaving into engine events
 * and carries out the actions the engine returns. Every path ends in one
 * place: request_finish() for an answer (built by reply.c) or drop_request()
 * when the app left or the daemon stops; either gives the HTTP server its one
 * http_reply(). Schemas are checked through validate.h, curl only through
 * upstream.h. */
#include "request.h"
#include "cache.h"
#include "clock.h"
#include "flow.h"
#include "memory.h"
#include "guard.h"
#include "log.h"
#include "quota.h"
#include "reply.h"
#include "retry.h"
#include "schema.h"
#include "upstream.h"
#include "validate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/event.h>

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

static void on_deadline(evutil_socket_t fd, short what, void *arg);
static void on_wait_over(evutil_socket_t fd, short what, void *arg);
static void on_hedge_timer(evutil_socket_t fd, short what, void *arg);
static void on_stream_timer(evutil_socket_t fd, short what, void *arg);

struct request *request_new(struct request_env *env, struct http_request *hreq)
{
	struct request *req = request_alloc();

	if (!req)
		return NULL;
	req->env = env;
	engine_init(&req->engine, &env->rng);
	req->hreq = hreq;
	hreq->user = req;
	req->start_us = clock_now_us();
	req->cfg = config_ref(env->cfg);
	req->policy = &req->cfg->defaults;
	req->correlation_header = req->cfg->defaults.correlation_header;
	req->method = -1;
	req->method_name = "-";
	TAILQ_INSERT_TAIL(&env->requests, req, link);
	env->inflight++;
	return req;
}

/* The request's timers, assigned on first use: most requests use only the
 * deadline. */
enum request_timer { TIMER_DEADLINE, TIMER_WAIT, TIMER_HEDGE, TIMER_STREAM, TIMER__COUNT };

/* Each timer's event in struct request and its callback. */
static const struct {
	size_t offset;
	event_callback_fn cb;
} timer_table[TIMER__COUNT] = {
	[TIMER_DEADLINE] = { offsetof(struct request, deadline), on_deadline },
	[TIMER_WAIT] = { offsetof(struct request, wait_timer), on_wait_over },
	[TIMER_HEDGE] = { offsetof(struct request, hedge_timer), on_hedge_timer },
	[TIMER_STREAM] = { offsetof(struct request, stream_timer), on_stream_timer },
};

static struct event *timer_of(struct request *req, enum request_timer t)
{
	return (struct event *)((char *)req + timer_table[t].offset);
}

/* Arms timer t of req for ms. */
static void arm(struct request *req, enum request_timer t, uint32_t ms)
{
	struct event *ev = timer_of(req, t);
	struct timeval tv;

	if (!(req->timers & (1u << t)))
		evtimer_assign(ev, req->env->base, timer_table[t].cb, req);
	req->timers |= 1u << t;
	clock_ms_to_tv(ms, &tv);
	evtimer_add(ev, &tv);
}

/* Stops the timers req armed. */
static void disarm(struct request *req)
{
	for (unsigned t = 0; t < TIMER__COUNT; t++)
		if (req->timers & (1u << t))
			event_del(timer_of(req, (enum request_timer)t));
}

/* The attempt of slot rc is over for its endpoint: r after rtt_us. */
static void end_endpoint(struct request *req, struct request_call *rc, enum endpoint_result r,
			 uint64_t rtt_us)
{
	if (!rc->endpoint)
		return;
	guard_endpoint_done(req->guard, rc->endpoint, rc->picked_us, clock_now_us(), rtt_us, r);
	rc->endpoint = 0;
}

/* Cancels the attempt of engine id (its connection closes with it); 0
 * cancels every attempt in flight. An attempt sent and cut before its head
 * ends for its endpoint as cut says: ENDPOINT_FAILURE when the budget cut
 * it (a timeout), else ENDPOINT_CUT (its time so far is a lower bound);
 * one still waiting for a connection says nothing of it. */
static void cancel_calls(struct request *req, uint32_t id, enum endpoint_result cut)
{
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++) {
		struct request_call *rc = &req->calls[i];

		if (!rc->call || (id && rc->id != id))
			continue;
		if (req->hold_call == rc->call)
			memory_forget_call(req);
		if (rc->endpoint)
			end_endpoint(req, rc, call_waiting(rc->call) ? ENDPOINT_NEUTRAL : cut,
				     call_elapsed_us(rc->call) - call_queued_us(rc->call));
		upstream_cancel(rc->call);
		rc->call = NULL;
		req->ncalls--;
	}
}

static void request_free(struct request *req)
{
	struct request_env *env = req->env;

	/* First: waiters left on its exchange start their own. */
	cache_request_free(req);
	disarm(req);
	cancel_calls(req, 0, ENDPOINT_CUT);
	memory_release(req);
	call_free(req->last);
	req->last = NULL;
	free(req->body_owned);
	req->body_owned = NULL;
	free(req->violations);
	req->violations = NULL;
	if (req->tee)
		evbuffer_free(req->tee);
	req->tee = NULL;
	engine_release(&req->engine, request_answer_us(req));
	TAILQ_REMOVE(&env->requests, req, link);
	env->inflight--;
	header_list_release(&req->headers);
	free(req->url);
	config_unref(req->cfg);
	request_dealloc(req);
}

/* The access log line, but none for a request that answered its app
 * already and goes on only for the cache (cache_silent). */
static void log_access(struct request *req, int status, const char *code, const char *outcome)
{
	if (!cache_silent(req))
		request_log_line(req, status, code, outcome);
}

/* ==== the end of a request ============================================ */

void request_finish(struct request *req, int status, const struct http_header *h, size_t n,
		    char *body, size_t len, struct evbuffer *buf, const enum problem_code *code)
{
	if (req->guard && !cache_silent(req))
		guard_count_answer(req->guard, code,
				   (double)(request_answer_us(req) - req->start_us) / 1e6);
	/* An attempt still running borrows the app's body, and the access log
	 * its path: both are the HTTP server's until the reply. */
	cancel_calls(req, 0, ENDPOINT_CUT);
	log_access(req, status, code ? problem_code_name(*code) : "ok", NULL);
	if (req->hreq) {
		req->hreq->user = NULL;
		if (buf)
			http_reply_buffer(req->hreq, status, h, n, buf);
		else
			http_reply(req->hreq, status, h, n, body, len);
		req->hreq = NULL;
	} else {
		free(body);
	}
	req->path = NULL;
	req->body = NULL;
	request_free(req);
}

void request_reply_early(struct request *req, int status, const struct http_header *h, size_t n,
			 struct evbuffer *body)
{
	if (req->guard)
		guard_count_answer(req->guard, NULL,
				   (double)(request_answer_us(req) - req->start_us) / 1e6);
	log_access(req, status, "ok", NULL);
	if (req->hreq) {
		req->hreq->user = NULL;
		http_reply_buffer(req->hreq, status, h, n, body);
		req->hreq = NULL;
	}
	/* Both were the HTTP server's. */
	req->path = NULL;
	req->body = NULL;
}

void request_orphan(struct request *req)
{
	request_log_line(req, 499, "client_gone", NULL);
	if (req->hreq) {
		req->hreq->user = NULL;
		http_reply(req->hreq, 503, NULL, 0, NULL, 0); /* owed; dropped */
		req->hreq = NULL;
	}
	req->path = NULL;
	req->body = NULL;
}

/* The streamed answer is over as end says: its body is ended whole, or
 * cut so the app sees the truncation; then the count, the log line and
 * the free. Its duration was taken at the head (request_answer_us). */
static void request_end(struct request *req, const struct engine_end *end)
{
	int status = req->stream_status;

	static const enum guard_stream_end ends[] = {
		[ENGINE_END_COMPLETE] = GUARD_STREAM_COMPLETE,
		[ENGINE_END_RESET_MID_BODY] = GUARD_STREAM_RESET_MID_BODY,
		[ENGINE_END_STREAM_TIMEOUT] = GUARD_STREAM_TIMEOUT,
		[ENGINE_END_CLIENT_GONE] = GUARD_STREAM_CLIENT_GONE,
		[ENGINE_END_SHUTDOWN] = GUARD_STREAM_SHUTDOWN,
	};

	if (req->guard && end->count)
		guard_count_answer(req->guard, end->has_code ? &end->code : NULL,
				   (double)(request_answer_us(req) - req->start_us) / 1e6);
	if (req->guard)
		guard_count_stream(req->guard, ends[end->kind], req->bytes_out, req->pauses);
	/* Kept, or shared with those waiting, when its copy is whole. */
	cache_stream_end(req, end->kind == ENGINE_END_COMPLETE);
	cancel_calls(req, 0, ENDPOINT_CUT);
	req->streamed = NULL;
	log_access(req, status, req->stream_has_code ? problem_code_name(req->stream_code) : "ok",
		   request_end_name(end->kind));
	if (req->hreq) {
		req->hreq->user = NULL;
		if (end->kind == ENGINE_END_COMPLETE)
			http_stream_end(req->hreq);
		else
			http_stream_abort(req->hreq);
		req->hreq = NULL;
	}
	req->path = NULL;
	req->body = NULL;
	request_free(req);
}

/* ==== the app leaving, and shutdown =================================== */

static void feed_simple(struct request *req, enum engine_event_kind kind);

/* Frees the request the engine dropped: the app left (its reply goes
 * nowhere) or shutdown's grace is over (the app still gets a 503). */
static void drop_request(struct request *req)
{
	cancel_calls(req, 0, ENDPOINT_CUT);
	if (req->hreq && !req->hreq->gone) {
		struct problem p;

		problem_init(&p, PROBLEM_OVERLOADED);
		p.detail = "braced is shutting down";
		reply_fail(req, &p);
		return;
	}
	log_access(req, 499, "client_gone", NULL);
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
	if (cache_client_gone(req)) {
		request_orphan(req);
		return;
	}
	feed_simple(req, ENGINE_EV_CLIENT_GONE);
}

void request_abort(struct request *req)
{
	cache_abort(req);
	feed_simple(req, ENGINE_EV_DRAINING);
}

static void on_call_done(struct call *call, void *arg);
static void on_call_head(struct call *call, void *arg);

/* ==== the shell: engine events in, actions out ========================= */

static void feed(struct request *req, const struct engine_event *ev);

/* A free attempt slot, or NULL. A slot stays put while its call runs: the
 * call borrows the slot's traceparent line. */
static struct request_call *free_slot(struct request *req)
{
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (!req->calls[i].call)
			return &req->calls[i];
	return NULL;
}

/* Starts the attempt the engine asked for. Returns -1 when the backend
 * could not. */
static int start_call(struct request *req, const struct engine_start *s)
{
	struct request_call *rc = free_slot(req);
	struct call_params params = {
		.url = req->url,
		.method = req->method_name,
		.head = req->method == METHOD_HEAD,
		.headers = &req->headers,
		.body = req->body,
		.body_len = req->body_len,
		.send_body = req->body_len > 0 || req->upload == UPLOAD_PIPE ||
			     req->method == METHOD_POST || req->method == METHOD_PUT ||
			     req->method == METHOD_PATCH,
		.connect_ms = s->connect_ms,
		.read_ms = s->read_ms,
		.write_ms = s->write_ms,
		.pool_ms = s->pool_ms,
		.attempt_ms = s->attempt_ms,
		.tls_verify = req->profile->tls.verify,
		.ca_file = req->profile->tls.ca_file,
		.max_response_body = req->cfg->max_response_body,
		.extra_header = req->trace.valid && rc ? rc->traceparent : NULL,
		.read_body = req->upload == UPLOAD_PIPE ? req->read_body : NULL,
		.body_length = req->hreq ? req->hreq->body_length : 0,
		.window = req->cfg->stream_buffer,
		.on_head = on_call_head,
		.error_prefix = sizeof(req->prefix),
		.connect_to = s->endpoint ? guard_endpoint_name(req->guard, s->endpoint) : NULL,
	};

	/* The URL's own numeric address needs no CONNECT_TO: libcurl dials
	 * it as it is (and keeps its connections apart from those that have
	 * one). */
	if (params.connect_to && strcmp(params.connect_to, req->profile->url_endpoint) == 0)
		params.connect_to = NULL;

	if (!rc) {
		guard_endpoint_done(req->guard, s->endpoint, s->picked_us, clock_now_us(), 0,
				    ENDPOINT_NEUTRAL);
		return -1;
	}
	if (req->trace.valid) {
		/* braced is a hop: the same trace, a parent-id of this attempt's own. */
		memcpy(rc->traceparent, "traceparent: ", sizeof("traceparent: ") - 1);
		trace_attempt(&req->trace, &req->env->rng,
			      rc->traceparent + sizeof("traceparent: ") - 1);
	}
	if (!s->hedge) {
		/* The answer of the attempt before is not needed any more; a
		 * hedge's siblings may still answer with theirs. */
		call_free(req->last);
		req->last = NULL;
	}
	rc->id = s->id;
	rc->endpoint = s->endpoint;
	rc->picked_us = s->picked_us;
	rc->quota_read = 0;
	rc->call = upstream_start(req->env->up, req->pool, &params, on_call_done, req);
	if (!rc->call) {
		end_endpoint(req, rc, ENDPOINT_NEUTRAL, 0);
		return -1;
	}
	req->ncalls++;
	return 0;
}

/* The running call of engine id, or NULL. */
static struct call *call_of(struct request *req, uint32_t id)
{
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (req->calls[i].call && req->calls[i].id == id)
			return req->calls[i].call;
	return NULL;
}

/* The engine id of call, one of req's running calls; 0 when it is none. */
static uint32_t id_of(const struct request *req, const struct call *call)
{
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (call && req->calls[i].call == call)
			return req->calls[i].id;
	return 0;
}

/* Writes the ids of req's calls still waiting for a pool connection to
 * ids (ENGINE_MAX_INFLIGHT of them at most) and returns how many. */
static unsigned waiting_ids(const struct request *req, uint32_t *ids)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (req->calls[i].call && call_waiting(req->calls[i].call))
			ids[n++] = req->calls[i].id;
	return n;
}

/* The head of attempt id came and its body is not wanted: the start of
 * the body is kept for a problem that repeats it, then the call goes. */
static void discard_call(struct request *req, uint32_t id)
{
	struct call *call = call_of(req, id);

	if (!call)
		return;
	req->prefix_len = evbuffer_copyout(call_body(call), req->prefix, sizeof(req->prefix));
	if ((ev_ssize_t)req->prefix_len < 0)
		req->prefix_len = 0;
	req->prefix_id = id;
	cancel_calls(req, id, ENDPOINT_CUT);
}

static void stream_broken(struct request *req, const char *why);

/* The engine relays the head of a running attempt and streams its body:
 * the budget's timers stop (total ends at the relayed head), the stream
 * timer starts. */
static void stream_answer(struct request *req, const struct engine_action *act)
{
	const struct engine_answer *a = &act->u.answer;
	struct call *call = call_of(req, a->id);
	int rc;

	disarm(req);
	req->stream_status = a->status;
	req->stream_has_code = a->has_code;
	req->stream_code = a->code;
	if (!call) {
		struct problem p;

		problem_init(&p, PROBLEM_INTERNAL);
		p.detail = "the answer to relay is gone";
		reply_fail(req, &p);
		return;
	}
	cache_stream_begin(req, call);
	rc = reply_relay_stream(req, call, a);
	if (rc == -ECANCELED)
		return;
	if (rc == -EPIPE) {
		feed_simple(req, ENGINE_EV_CLIENT_GONE);
		return;
	}
	if (rc == -EIO) {
		stream_broken(req, "libcurl refused to resume the answer");
		return;
	}
	if (act->stream_ms)
		arm(req, TIMER_STREAM, act->stream_ms);
}

/* Carries out one action of the engine; the request may be freed after. */
static void carry_out(struct request *req, const struct engine_action *act)
{
	for (int i = 0; i < act->cancel; i++)
		cancel_calls(req, act->cancel_ids[i],
			     act->cancel_timeout ? ENDPOINT_FAILURE : ENDPOINT_CUT);
	for (int i = 0; i < act->discard; i++)
		discard_call(req, act->discard_ids[i]);
	if (act->hedge_ms)
		arm(req, TIMER_HEDGE, act->hedge_ms);
	switch (act->kind) {
	case ENGINE_DO_START:
		if (start_call(req, &act->u.start) < 0) {
			struct engine_event ev = { .kind = ENGINE_EV_START_FAILED,
						   .now_us = clock_now_us() };

			ev.u.attempt.id = act->u.start.id;
			feed(req, &ev);
		}
		break;
	case ENGINE_DO_WAIT:
		arm(req, TIMER_WAIT, act->u.wait_ms);
		break;
	case ENGINE_DO_ANSWER:
		if (req->cache && cache_on_answer(req, &act->u.answer))
			break;
		if (act->u.answer.kind == ENGINE_RELAY && act->u.answer.stream)
			stream_answer(req, act);
		else if (act->u.answer.kind == ENGINE_RELAY && req->last)
			reply_relay(req, &act->u.answer);
		else
			reply_problem(req, &act->u.answer);
		break;
	case ENGINE_DO_END:
		request_end(req, &act->u.end);
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
	/* The log names phases: a change between two states of one phase
	 * (attempt and attempt-undecided) is not logged. */
	if (engine_state(&req->engine) != before && log_enabled(LOG_DEBUG) &&
	    strcmp(engine_state_name(before), engine_state_name(engine_state(&req->engine))) != 0) {
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
	const struct engine_event ev = { .kind = kind, .now_us = clock_now_us() };

	feed(req, &ev);
}

/* The slot of call in req->calls, or NULL. */
static struct request_call *slot_of(struct request *req, const struct call *call)
{
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++)
		if (req->calls[i].call == call)
			return &req->calls[i];
	return NULL;
}

static void on_call_done(struct call *call, void *arg)
{
	struct request *req = arg;
	/* Both outlive the request, which feed() may free. */
	struct upstream_pool *pool = req->pool;
	struct guard *guard = req->guard;
	enum attempt_end co = call_outcome(call);
	/* A call that found no connection sent nothing: an answer kept from a
	 * sibling stays the one to relay, this call goes after the feed. */
	struct call *unused = NULL;
	struct engine_event ev = {
		.kind = ENGINE_EV_ATTEMPT,
		.u.attempt = {
			.end = co,
			.timeout = call_timeout_kind(call),
			.elapsed_us = call_elapsed_us(call),
			.error = call_error(call),
		},
	};

	struct request_call *slot = NULL, quota;

	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++) {
		if (req->calls[i].call == call) {
			slot = &req->calls[i];
			ev.u.attempt.id = slot->id;
			quota = *slot; /* the slot is free from here */
			slot->call = NULL;
			req->ncalls--;
			break;
		}
	}
	if (req->streamed == call)
		req->streamed = NULL;
	if (req->hold_call == call)
		memory_forget_call(req); /* ended while it waited to be held */
	ev.u.attempt.queued_us = call_queued_us(call);
	ev.u.attempt.body_sent = call_body_sent(call);
	ev.u.attempt.nqueued = waiting_ids(req, ev.u.attempt.queued);
	if (co == ATTEMPT_POOL_TIMEOUT && req->last) {
		unused = call;
	} else {
		call_free(req->last);
		req->last = call;
	}
	if (co == ATTEMPT_OK && validate_wants(req, call_status(call)) &&
	    evbuffer_get_length(call_body(call)) > req->cfg->max_response_body) {
		/* Came whole within the stream window, but an answer a schema
		 * checks is held, and max_response_body bounds what is held. */
		co = ATTEMPT_TOO_LARGE;
		ev.u.attempt.end = co;
	}
	if (co == ATTEMPT_OK) {
		ev.u.attempt.status = call_status(call);
		ev.u.attempt.retry_after = quota_read_answer(req, call, slot ? &quota : NULL);
		/* Only an answer that would be relayed as a success is validated. */
		if (retry_classify_status(&req->policy->retry, ev.u.attempt.status) == OUTCOME_OK &&
		    validate_response(req, call)) {
			ev.u.attempt.schema_failed = 1;
			ev.u.attempt.violations = req->violations ? req->violations->total : 0;
		}
	}
	if (slot && slot->endpoint) {
		/* An answer held whole, or one whole within the window: its
		 * endpoint is judged by all of it. (One reported at its head
		 * ended for its endpoint there.) */
		end_endpoint(req, slot,
			     guard_endpoint_result(co, ev.u.attempt.status,
						   ev.u.attempt.schema_failed,
						   req->policy->retry.on_schema_violation),
			     call_elapsed_us(call) - call_queued_us(call));
	}
	ev.now_us = clock_now_us();
	feed(req, &ev);
	call_free(unused);
	/* The answer may have moved the adaptive concurrency limit. */
	upstream_pool_set_max(pool, guard_concurrency_limit(guard));
}

/* Attempt call has its final head and its body is still coming: an answer
 * a schema checks is held whole (judged at its end, as before); any other
 * goes to the engine now, which relays it (streamed), waits, retries or
 * wraps it. */
static void on_call_head(struct call *call, void *arg)
{
	struct request *req = arg;
	struct engine_event ev = {
		.kind = ENGINE_EV_HEAD,
		.u.attempt = {
			.end = ATTEMPT_OK,
			.status = call_status(call),
			.elapsed_us = call_elapsed_us(call),
			.queued_us = call_queued_us(call),
			.error = "",
		},
	};

	/* An exchange whose app left, or a refresh, goes nowhere but to the
	 * cache and those waiting: held whole too. */
	if (cache_holds_whole(req) ||
	    (retry_classify_status(&req->policy->retry, ev.u.attempt.status) == OUTCOME_OK &&
	     validate_wants(req, ev.u.attempt.status))) {
		/* Held whole for its schema, within the memory budget: its
		 * Content-Length, else as much as may be held. The request's
		 * answers share one reservation (a retry's answer replaces the
		 * last), grown when this one needs more. It waits in line (paused
		 * at its window, the budget running) when that does not fit now;
		 * a request already in line, or an answer that can never fit, is
		 * not held: the attempt ends as too large. */
		int64_t len = call_content_length(call);
		uint64_t max = req->cfg->max_response_body;

		if (cache_holds_whole(req) && cache_holds_whole(req) < max) {
			max = cache_holds_whole(req);
			call_hold_at_most(call, max);
		}
		uint64_t want = len >= 0 && (uint64_t)len <= max ? (uint64_t)len : max;
		int rc;

		if (len >= 0 && (uint64_t)len > max)
			want = 0; /* refused as too large at once: nothing is held */
		if (want <= req->answer_held) {
			call_hold(call);
			return;
		}
		rc = req->in_line ? -EBUSY
				  : memory_reserve(req, want - req->answer_held, call, NULL);
		if (rc < 0) {
			call_refuse_hold(call);
			return;
		}
		if (rc == 0) {
			req->answer_held = want;
			call_hold(call);
		}
		return;
	}
	ev.u.attempt.id = id_of(req, call);
	for (unsigned i = 0; i < ENGINE_MAX_INFLIGHT; i++) {
		struct request_call *rc = &req->calls[i];

		/* The endpoint is judged by the head, as tower's PeakEwma
		 * ends its measure at the response: a long body (a stream, a
		 * download) is not load on it, and does not age its cost. */
		if (rc->call == call)
			end_endpoint(req, rc,
				     guard_endpoint_result(ATTEMPT_OK, ev.u.attempt.status, 0, 0),
				     ev.u.attempt.elapsed_us - ev.u.attempt.queued_us);
	}
	ev.u.attempt.nqueued = waiting_ids(req, ev.u.attempt.queued);
	ev.u.attempt.retry_after = quota_read_answer(req, call, slot_of(req, call));
	ev.now_us = clock_now_us();
	feed(req, &ev);
}

/* The streamed attempt cannot go on (libcurl refused to resume it): it
 * ends as a reset mid-body. */
static void stream_broken(struct request *req, const char *why)
{
	struct engine_event ev = {
		.kind = ENGINE_EV_ATTEMPT,
		.u.attempt = { .end = ATTEMPT_RESET, .error = why },
	};

	ev.u.attempt.id = id_of(req, req->streamed);
	cancel_calls(req, ev.u.attempt.id, ENDPOINT_CUT);
	req->streamed = NULL;
	ev.now_us = clock_now_us();
	feed(req, &ev);
}

void request_drained(struct request *req)
{
	if (flow_on_drain(req) < 0)
		stream_broken(req, "libcurl refused to resume the answer");
}

/* Feeds the firing of the wait or hedge timer. */
static void feed_timer(struct request *req, enum engine_timer which)
{
	const struct engine_event ev = { .kind = ENGINE_EV_TIMER,
					 .now_us = clock_now_us(),
					 .u.timer.which = which };

	feed(req, &ev);
}

static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	feed_timer(arg, ENGINE_TIMER_WAIT);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;
	struct engine_event ev = {
		.kind = ENGINE_EV_TIMER,
		.now_us = clock_now_us(),
		.u.timer = { .which = ENGINE_TIMER_DEADLINE },
	};

	(void)fd;
	(void)what;
	if (engine_state(&req->engine) == ENGINE_NEW && cache_wait_over(req))
		return;
	if (engine_state(&req->engine) == ENGINE_NEW) {
		/* Waited in line for memory to hold its body, the budget long. */
		struct problem p;

		problem_init(&p, PROBLEM_OVERLOADED);
		p.detail = "no memory for the request body within limits.max_buffered in time";
		p.retry_after = (struct retry_after){ .set = 1, .ms = 1000 };
		reply_fail(req, &p);
		return;
	}
	ev.u.timer.nqueued = waiting_ids(req, ev.u.timer.queued);
	feed(req, &ev);
}

static void on_hedge_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	feed_timer(arg, ENGINE_TIMER_HEDGE);
}

static void on_stream_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	feed_timer(arg, ENGINE_TIMER_STREAM);
}

void request_start(struct request *req)
{
	uint64_t now = clock_now_us();
	/* The budget counts from the moment the request was read, routing and
	 * request validation included. */
	uint64_t used = (now - req->start_us) / 1000;
	uint32_t left = req->total_ms > used ? req->total_ms - (uint32_t)used : 0;
	/* A piped body: the budget counts from its end (request_body_end). */
	int piped = req->upload == UPLOAD_PIPE;
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
			.body_streamed = piped,
		},
	};

	if (req->timers & (1u << TIMER_DEADLINE))
		event_del(&req->deadline); /* a wait for memory before it */
	if (!piped || req->body_ended)
		arm(req, TIMER_DEADLINE, left);
	feed(req, &ev);
}

void request_body_end(struct request *req)
{
	const struct engine_event ev = { .kind = ENGINE_EV_BODY_END, .now_us = clock_now_us() };

	if (engine_state(&req->engine) == ENGINE_NEW || engine_state(&req->engine) == ENGINE_DONE)
		return;
	if (engine_state(&req->engine) != ENGINE_STREAMING)
		arm(req, TIMER_DEADLINE, req->total_ms);
	feed(req, &ev);
}

void request_wait_memory(struct request *req)
{
	arm(req, TIMER_DEADLINE, req->total_ms);
}

void request_fail_body(struct request *req, enum problem_code code)
{
	struct problem p;

	cancel_calls(req, 0, ENDPOINT_CUT);
	problem_init(&p, code);
	p.detail = code == PROBLEM_PAYLOAD_TOO_LARGE
		       ? "the request body is larger than limits.max_request_body"
		   : code == PROBLEM_REQUEST_TIMEOUT ? "the request body stalled longer than "
						       "limits.body_timeout"
		   : code == PROBLEM_BAD_REQUEST ? "the request body's chunked framing is malformed"
						 : "out of memory reading the request body";
	reply_fail(req, &p);
}

/* One proxied request from the moment it is read to its single answer: the
 * I/O shell around its engine (engine.h): budget and wait timers, attempts
 * through the backend, the client leaving, and the one place that sends the
 * reply (http_reply), writes the access log line and frees everything. */
#ifndef BRACED_REQUEST_H
#define BRACED_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <event2/event_struct.h>

#include "config.h"
#include "engine.h"
#include "headers.h"
#include "http.h"
#include "problem.h"
#include "rng.h"
#include "trace.h"

struct call;
struct evbuffer;
struct upstream_pool;
struct schema_result;

TAILQ_HEAD(request_list, request);

/* What the requests of one server share: the server owns it, each request
 * borrows it for its life. */
struct request_env {
	struct event_base *base;
	struct upstream *up;
	struct config *cfg; /* the current configuration (one reference); a
				 * request takes its own */
	struct rng rng;
	unsigned inflight;
	struct request_list requests; /* every request not yet finished */
};

struct request {
	struct request_env *env;
	struct engine engine;      /* the request's state and every decision */
	struct http_request *hreq; /* the app's request, borrowed until the reply */
	struct event deadline;     /* total budget */
	struct event wait_timer;   /* backoff and cool-down waits */
	struct event hedge_timer;  /* the next hedge (SPEC 4.10) */
	int timers_armed;
	struct config *cfg;            /* reference held until the end */
	const struct profile *profile; /* NULL until routed */
	const struct route *route;
	const struct policy *policy;
	struct upstream_pool *pool;
	struct guard *guard; /* the profile's budget, breaker, cool-down */
	int method;          /* enum http_method */
	const char *method_name;
	const char *path; /* raw request target (borrowed from hreq until the reply) */
	size_t path_len;  /* bytes of path before '?' */
	char *url;
	struct header_list headers; /* to send upstream */
	const char *body;
	size_t body_len;
	uint64_t start_us;
	uint32_t total_ms;     /* budget after Brace-Timeout-Ms */
	uint32_t max_attempts; /* after Brace-Max-Attempts */
	/* The attempts in flight (one, or more when hedged), by engine id; a
	 * slot is free when call is NULL, and stays put while its call runs. */
	struct request_call {
		uint32_t id;
		struct call *call;
		/* "traceparent: ..." of this attempt: each its own parent-id. */
		char traceparent[sizeof("traceparent: ") + TRACE_PARENT_LEN];
	} calls[ENGINE_MAX_INFLIGHT];
	unsigned ncalls;                  /* slots in use */
	struct call *last;                /* the last finished attempt: what an answer relays */
	struct schema_result *violations; /* of the last answer, in enforce mode */
	const char *correlation_header;
	char correlation[HEADERS_CORRELATION_MAX + 1];
	const char *idempotency_header;
	char idempotency_key[HEADERS_IDEMPOTENCY_MAX + 1]; /* "" when none */
	int idempotency_minted; /* braced made the key up; the app sent none */
	struct trace trace;     /* W3C trace context, when the policy keeps one */
	TAILQ_ENTRY(request) link;
};

/* A request for hreq (borrowed until the answer; hreq->user is set to it)
 * counted in env's in-flight list. NULL on OOM (the caller answers 500
 * itself). */
struct request *request_new(struct request_env *env, struct http_request *hreq);

/* Starts the budget and the first attempt; the request is routed and its
 * url, headers and body are set. */
void request_start(struct request *req);

/* Validates the app's query and body against the route's request schemas
 * (SPEC 2). Returns 0 to go on (valid, report mode, or nothing to check), or
 * -1 after answering 422 request_invalid. In validate.c. */
int request_validate(struct request *req);

/* Answers with a problem built from p (borrowed) and frees the request. In
 * reply.c. */
void request_fail(struct request *req, struct problem *p);

/* The one end of an answered request, for reply.c: counts the answer with
 * the guard under code (ENGINE_CODE_OK or an enum problem_code), cancels the
 * attempts, writes the access log line, sends status with the n headers h
 * (borrowed for the call) and body (len bytes, taken) or else the bytes of
 * buf (moved out, not copied), and frees the request. */
void request_finish(struct request *req, int status, const struct http_header *h, size_t n,
		    char *body, size_t len, struct evbuffer *buf, int code);

/* The app left (the HTTP server's on_gone): cancels the attempt, gives the
 * server its reply (dropped) and frees the request. */
void request_client_gone(struct request *req);

/* Shutdown's grace is over: cancels the request, answers 503 overloaded if
 * the app is still there, and frees it. */
void request_abort(struct request *req);

#endif

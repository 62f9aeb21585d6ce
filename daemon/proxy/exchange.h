/* One proxied exchange as data: struct request and what the requests of a
 * server share (struct request_env). The shell (request.c), the answers
 * (reply.c) and the schema checks (validate.c) read and write it; only
 * the shell drives its life. */
#ifndef BRACED_EXCHANGE_H
#define BRACED_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <event2/event_struct.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "headers.h"
#include "hold.h"
#include "http.h"
#include "problem.h"
#include "rng.h"
#include "trace.h"

struct call;
struct evbuffer;
struct upstream_pool;
struct schema_result;
struct cache_store;
struct cache_req;

TAILQ_HEAD(request_list, request);
TAILQ_HEAD(request_line, request);

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
	/* What is held whole at once (limits.max_buffered), and the requests
	 * waiting in line for room, first come first served (hold.h). */
	struct hold hold;
	struct request_line hold_line;
	struct event hold_wake;    /* serves the line from the loop, never re-entrantly */
	struct cache_store *cache; /* kept answers and exchanges in flight (cache.h); NULL: none */
	int draining;              /* shutting down: nothing new starts */
	/* The one end of an answered request (request_finish, wired by the
	 * front): reply.c hands it what it built. */
	void (*finish)(struct request *req, int status, const struct http_header *h, size_t n,
		       char *body, size_t len, struct evbuffer *buf, const enum problem_code *code);
	/* The app answered while the request goes on (request_reply_early),
	 * and a routed request started (request_start): wired by the front
	 * for reply.c and cache.c. */
	void (*answer_early)(struct request *req, int status, const struct http_header *h, size_t n,
			     struct evbuffer *body);
	void (*start)(struct request *req);
};

struct request {
	struct request_env *env;
	struct engine engine;          /* the request's state and every decision */
	struct http_request *hreq;     /* the app's request, borrowed until the reply */
	struct event deadline;         /* total budget */
	struct event wait_timer;       /* backoff and cool-down waits */
	struct event hedge_timer;      /* the next hedge (SPEC 4.10) */
	struct event stream_timer;     /* timeouts.stream of a streamed answer */
	unsigned timers;               /* the timers assigned so far (request.c) */
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
	const char *body;           /* held whole: the app's, or body_owned */
	size_t body_len;
	char *body_owned; /* a body read out of the pipe whole (upload.c) */
	/* How the request body goes upstream (upload.c): none or held whole,
	 * collected from the pipe until its end (then held), or piped to the
	 * upstream as it comes (not replayable). */
	enum { UPLOAD_NONE, UPLOAD_COLLECT, UPLOAD_PIPE } upload;
	uint64_t collect_room; /* UPLOAD_COLLECT: the most it holds */
	int body_ended;        /* UPLOAD_PIPE: the app's body ended */
	/* UPLOAD_PIPE: the attempts' read source (upstream.h call_read_fn) */
	long (*read_body)(void *req, char *buf, size_t n, int *ret_end);
	uint64_t start_us;
	/* When the answer was built: the clock read once for its headers, its
	 * log line and its counters (request_answer_us()), once answer_read. */
	uint64_t answer_us;
	int answer_read;
	uint32_t total_ms;     /* budget after Brace-Timeout-Ms */
	int controlled;        /* the app sent Brace-Timeout-Ms or Brace-Max-Attempts */
	uint32_t max_attempts; /* after Brace-Max-Attempts */
	/* The attempts in flight (one, or more when hedged), by engine id; a
	 * slot is free when call is NULL, and stays put while its call runs. */
	struct request_call {
		uint32_t id;
		struct call *call;
		/* The endpoint it dials (0: none), ended once
		 * (guard_endpoint_done): at the answer's head when one is
		 * reported before the call's end, else with the call. */
		uint32_t endpoint;
		uint64_t picked_us;
		/* Its answer's quota headers were read (SPEC 4.12): once,
		 * at its head or at its end. */
		int quota_read;
		/* "traceparent: ..." of this attempt: each its own parent-id. */
		char traceparent[sizeof("traceparent: ") + TRACE_PARENT_LEN];
	} calls[ENGINE_MAX_INFLIGHT];
	unsigned ncalls;   /* slots in use */
	struct call *last; /* the last finished attempt: what an answer relays */
	/* The attempt whose body flows to the app (flow.c), once its head
	 * was relayed; still one of calls[] until it ends. */
	struct call *streamed;
	uint64_t bytes_out; /* of a streamed body, taken by the app's stream */
	uint32_t pauses;    /* times a slow app paused the streamed body */
	int stream_begun;   /* the app got a streamed head: it ends in request_end() */
	int stream_status;  /* the status relayed with it */
	int stream_has_code;
	enum problem_code stream_code; /* its Brace-Error, when stream_has_code */
	/* The start of the body of an answer whose head came and which was
	 * discarded (engine_action.discard): what a problem repeats. */
	char prefix[PROBLEM_UPSTREAM_BODY_MAX + 4];
	size_t prefix_len;
	uint32_t prefix_id; /* the attempt it came from; 0 none */
	/* Memory reserved in env->hold, given back when the request ends. */
	uint64_t held;
	uint64_t answer_held; /* of held, the answers' one reservation */
	/* In env->hold_line for hold_want bytes: to hold the answer of
	 * hold_call for its schema, or (hold_call NULL) the request body. */
	int in_line;
	uint64_t hold_want;
	struct call *hold_call;
	void (*hold_granted)(struct request *req); /* when hold_call is NULL */
	TAILQ_ENTRY(request) hold_link;
	struct schema_result *violations; /* of the last answer, in enforce mode */
	int schema_bad;                   /* the last answer failed its schema, in any mode */
	struct cache_req *cache;          /* on a route with a cache (cache.h); NULL: none */
	const char *cache_said;           /* its Brace-Cache value, NULL: none */
	/* A copy of the streamed body for the cache (flow.c adds to it), while
	 * it fits tee_room; dropped beyond (tee NULL, tee_over 1). */
	struct evbuffer *tee;
	uint64_t tee_room;
	int tee_over;
	const char *correlation_header;
	char correlation[HEADERS_CORRELATION_MAX + 1];
	const char *idempotency_header;
	char idempotency_key[HEADERS_IDEMPOTENCY_MAX + 1]; /* "" when none */
	int idempotency_minted; /* braced made the key up; the app sent none */
	struct trace trace;     /* W3C trace context, when the policy keeps one */
	TAILQ_ENTRY(request) link;
};

/* The moment req is answered, read from the clock on the first call and
 * the same for every later one, so that Server-Timing, the problem's
 * elapsed_ms, the access log and the duration histogram agree. */
static inline uint64_t request_answer_us(struct request *req)
{
	if (!req->answer_read) {
		req->answer_us = clock_now_us();
		req->answer_read = 1;
	}
	return req->answer_us;
}

#endif

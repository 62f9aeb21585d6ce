/* The backend: libcurl's multi interface driven by the daemon's libevent
 * loop (socket and timer callbacks, hiperfifo shape), reused easy handles,
 * per-profile connection pools with a FIFO of waiters, and one attempt from
 * start to outcome with its connect, read, write and attempt timeouts. */
#ifndef BRACED_UPSTREAM_H
#define BRACED_UPSTREAM_H

#include "attempt.h"

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

struct upstream;
struct upstream_pool;
struct call;
struct header_list;

/* The final head of an attempt came and its body did not within its
 * params->window: called once, from the backend's loop and never inside
 * libcurl. The call then waits (paused once its window is full) for
 * call_stream(), call_hold() or upstream_cancel(). */
typedef void (*call_head_fn)(struct call *call, void *arg);

/* Takes the next n bytes of a streamed answer: returns n, or 0 to take
 * none of them now (the call pauses; call_resume() delivers them again). */
typedef size_t (*call_sink_fn)(void *arg, const char *buf, size_t n);

/* Gives the next bytes of a streamed request body: copies at most n into
 * buf and returns how many. 0 with *ret_end set: the body is over. 0
 * without: none yet (the upload pauses until call_upload_more()). -1: the
 * app's body failed; the attempt ends ATTEMPT_INTERNAL, never charged to
 * the upstream. */
typedef long (*call_read_fn)(void *arg, char *buf, size_t n, int *ret_end);

struct call_params {
	const char *url;                   /* borrowed until done */
	const char *method;                /* "GET", ...; borrowed */
	int head;                          /* HEAD: no response body */
	const struct header_list *headers; /* borrowed until done */
	const char *body;                  /* borrowed until done; NULL when none */
	size_t body_len;
	int send_body; /* send a body (possibly empty) */
	uint32_t connect_ms, read_ms, write_ms, pool_ms;
	uint32_t attempt_ms; /* whole attempt incl. pool wait; 0 = none */
	int tls_verify;
	const char *ca_file; /* borrowed; NULL: system default */
	size_t max_response_body;
	const char *extra_header; /* one more "Name: value" line for this attempt
				   * (borrowed until done), or NULL */
	/* > 0: bytes of the body kept before the answer is decided; an
	 * answer not whole by then is reported to on_head (with the done
	 * callback's arg). 0: every answer is held whole, up to
	 * max_response_body. */
	size_t window;
	call_head_fn on_head;
	/* An error answer (status >= 400) is reported to on_head only once
	 * this many bytes of its body came (or it ended): the start a problem
	 * repeats. At most window. */
	size_t error_prefix;
	/* A streamed request body, instead of body/body_len: read_body (with
	 * the done callback's arg) gives its bytes, body_length is the app's
	 * Content-Length or -1 (sent chunked). send_body must be set. */
	call_read_fn read_body;
	int64_t body_length;
	/* The endpoint to dial, "ADDR:PORT" (an IPv6 address in brackets),
	 * or NULL: libcurl resolves the URL's name itself. Host, TLS SNI and
	 * certificate checks keep the URL's name (CURLOPT_CONNECT_TO), and a
	 * connection is reused only by attempts to the same endpoint.
	 * Copied. */
	const char *connect_to;
};

/* Called once when the attempt ends, never from inside a libcurl callback.
 * The callee owns call from then on and must call_free() it. */
typedef void (*call_done_fn)(struct call *call, void *arg);

/* Creates the backend on base. NULL on failure. */
struct upstream *upstream_new(struct event_base *base);
/* Cancels and frees every call, waiting or running, without a callback
 * (their owners must not touch them again), then frees everything; NULL is
 * a no-op. */
void upstream_free(struct upstream *up);
/* Idle connections kept open across all upstreams once the load goes away;
 * never a cap on busy ones. */
void upstream_set_max_idle(struct upstream *up, long max_idle);

/* The pool named name (a profile), created on first use, with at most
 * max_connections attempts in flight; a later call updates the limit as
 * upstream_pool_set_max() does.
 * Borrowed: pools live as long as the upstream. NULL on OOM. */
struct upstream_pool *upstream_pool_get(struct upstream *up, const char *name,
					unsigned max_connections);

/* Changes pool's limit of attempts in flight (the adaptive concurrency
 * limit follows it); a raised limit starts the oldest waiters at once.
 * Attempts running beyond a lowered limit finish undisturbed. */
void upstream_pool_set_max(struct upstream_pool *pool, unsigned max_connections);

/* Starts an attempt through pool: at once when the pool has room, else
 * after waiting up to params->pool_ms. Returns the call (owned by the
 * backend until done fires) or NULL on OOM. */
struct call *upstream_start(struct upstream *up, struct upstream_pool *pool,
			    const struct call_params *params, call_done_fn done, void *arg);

/* Stops an attempt that has not finished; done is not called and the call
 * is freed. Must not be called from inside a libcurl callback. */
void upstream_cancel(struct call *call);

/* 1 while the call waits for a free connection of its pool (nothing sent). */
int call_waiting(const struct call *call);

/* Asks the call to take no more of the answer: the next block libcurl hands
 * over is left with libcurl, which reads nothing more from the connection
 * until call_resume(). The connection stays the call's, and the read idle
 * limit does not count the time braced holds it (the attempt cap does).
 * Nothing for a call that is not running. */
void call_pause_recv(struct call *call);
/* Takes the answer again after call_pause_recv(): the block libcurl kept is
 * delivered before this returns. Never from inside a libcurl callback.
 * Returns 0, or -EIO when libcurl refused (the caller should cancel). */
int call_resume(struct call *call);

/* After on_head: the body goes to sink (with arg) as it comes, the bytes
 * in call_body() first being the caller's to send. The attempt cap stops
 * here; the read limit bounds each silence, and the time sink holds the
 * call paused does not count. */
void call_stream(struct call *call, call_sink_fn sink, void *arg);
/* After on_head: the body is collected whole in call_body(), up to
 * max_response_body (beyond, the attempt ends ATTEMPT_TOO_LARGE). Resumes
 * a call paused at its window. Never from inside a libcurl callback. */
void call_hold(struct call *call);
/* A streamed request body has more bytes (or ended) after read_body said
 * none yet: the upload goes on. Never from inside a libcurl callback. */
void call_upload_more(struct call *call);
/* Bytes of the request body sent in this attempt so far. */
uint64_t call_body_sent(const struct call *call);

/* After on_head: the answer is not held (no memory for it); the attempt
 * ends ATTEMPT_TOO_LARGE. Never from inside a libcurl callback. */
void call_refuse_hold(struct call *call);
/* Before call_hold(): the answer is held only up to max bytes (less than
 * params.max_response_body); a longer one ends ATTEMPT_TOO_LARGE. */
void call_hold_at_most(struct call *call, uint64_t max);

/* The answer's Content-Length, or -1 when it has none (chunked, or
 * delimited by the close). Valid from on_head. */
int64_t call_content_length(const struct call *call);

/* Results, valid in and after the done callback. */
enum attempt_end call_outcome(const struct call *call);
enum attempt_limit call_timeout_kind(const struct call *call);
int call_status(const struct call *call); /* also from on_head */
/* Response body; the caller may take its contents (evbuffer_add_buffer). */
struct evbuffer *call_body(struct call *call);
/* Walks the response headers in the order received: returns 1 with the
 * next *ret_name and *ret_value (borrowed) and advances *pos (start at 0),
 * or 0 after the last. */
int call_header_next(const struct call *call, size_t *pos, const char **ret_name,
		     const char **ret_value);
/* Microseconds the call waited for its pool before it ran (all of its
 * time when it never ran). */
uint64_t call_queued_us(const struct call *call);
/* Microseconds from start to end (to now while it runs), the pool wait
 * included. */
uint64_t call_elapsed_us(const struct call *call);
/* libcurl's message for a failure, or "". */
const char *call_error(const struct call *call);
/* Frees a finished call; NULL is a no-op. */
void call_free(struct call *call);

#endif

/* One proxied request from the moment it is read to its single answer: the
 * I/O shell around its engine (engine.h): budget and wait timers, attempts
 * through the backend, the client leaving, and the one place that sends the
 * reply (http_reply), writes the access log line and frees everything. */
#ifndef BRACED_REQUEST_H
#define BRACED_REQUEST_H

#include <stddef.h>

#include "exchange.h"

/* A request for hreq (borrowed until the answer; hreq->user is set to it)
 * counted in env's in-flight list. NULL on OOM (the caller answers 500
 * itself). */
struct request *request_new(struct request_env *env, struct http_request *hreq);

/* Starts the budget and the first attempt; the request is routed and its
 * url, headers and body are set. */
void request_start(struct request *req);

/* The one end of an answered request (env->finish, for reply.c): counts the answer with
 * the guard under code (its problem code, NULL for a success), cancels the
 * attempts, writes the access log line, sends status with the n headers h
 * (borrowed for the call) and body (len bytes, taken) or else the bytes of
 * buf (moved out, not copied), and frees the request. */
void request_finish(struct request *req, int status, const struct http_header *h, size_t n,
		    char *body, size_t len, struct evbuffer *buf, const enum problem_code *code);

/* Answers the app of req now (status, the n headers h borrowed for the
 * call, the bytes of body moved out), counted and logged, while req goes
 * on without it (a refresh behind a stale answer): it ends silently. */
void request_reply_early(struct request *req, int status, const struct http_header *h, size_t n,
			 struct evbuffer *body);

/* The app of req left, and req goes on for others (an exchange identical
 * requests wait for): the app's reply is dropped, the line logged. */
void request_orphan(struct request *req);

/* The app's piped request body ended: the budget counts from now (SPEC
 * 4.1). */
void request_body_end(struct request *req);

/* req waits, its whole total budget at most: in line for memory to hold
 * its body (memory.h; then 503 overloaded), or for an identical request's
 * exchange (cache.h). */
void request_wait_memory(struct request *req);

/* The app's request body failed (the HTTP server's problem: bad_request
 * for its framing, request_timeout for a stall, payload_too_large over
 * max_request_body, internal out of memory) before any answer began: the
 * attempts are cancelled and the app gets the problem. req is freed. */
void request_fail_body(struct request *req, enum problem_code code);

/* The app left (the HTTP server's on_gone): cancels the attempt, gives the
 * server its reply (dropped) and frees the request. */
void request_client_gone(struct request *req);

/* The app's queue of req's streamed answer drained (the HTTP server's
 * on_drain): the paused attempt goes on. */
void request_drained(struct request *req);

/* Shutdown's grace is over: cancels the request, answers 503 overloaded if
 * the app is still there, and frees it. */
void request_abort(struct request *req);

/* The access log line of req (request_log.c): its answer's status and
 * code; outcome is how a streamed answer ended (NULL for one sent whole). */
void request_log_line(struct request *req, int status, const char *code, const char *outcome);
/* How a streamed answer ended, as the access log names it. */
const char *request_end_name(enum engine_end_kind k);

#endif

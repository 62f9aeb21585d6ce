/* The answers of one request (request.h) built from what its engine
 * decided: an upstream answer relayed, or a problem. Both add the headers
 * braced puts on every answer and end the request (request_finish). */
#ifndef BRACED_REPLY_H
#define BRACED_REPLY_H

struct request;
struct engine_answer;
struct problem;
struct call;
struct cacheentry_view;
struct evbuffer;

#include <stdint.h>

#include "problem.h"

/* Answers req with a problem built from p (borrowed) and frees the request. */
void reply_fail(struct request *req, struct problem *p);

/* Relays req's last upstream answer (req->last, set) as a (borrowed) says:
 * hop-by-hop headers and those braced sets are left out, the upstream's
 * Server-Timing loses braced's own entries, its Retry-After is replaced by
 * a's. The received body is moved, not copied. req is freed afterwards;
 * out of memory it is answered 500 internal instead. */
void reply_relay(struct request *req, const struct engine_answer *a);

/* Relays the head of call's answer (still running, borrowed) as a says,
 * then its body as it comes (flow.h). Returns 0; -ECANCELED when req was
 * answered otherwise and freed (out of memory, a head the app cannot be
 * sent); -EPIPE or -EIO from flow_begin(): the stream must end. */
int reply_relay_stream(struct request *req, struct call *call, const struct engine_answer *a);

/* Answers with the problem the engine built (a, borrowed), adding the start
 * of the last upstream body and the schema violations kept in req when a
 * asks for them. req is freed afterwards. */
void reply_problem(struct request *req, const struct engine_answer *a);

/* Answers req with the problem code and detail (static) and frees it. */
void reply_error(struct request *req, enum problem_code code, const char *detail);

/* Answers req 500 internal with detail (static) and frees it. */
void reply_internal(struct request *req, const char *detail);

/* Answers req, which waited its whole budget for an identical request's
 * exchange, 504 upstream_timeout, and frees it. */
void reply_waited_too_long(struct request *req);

/* Answers req with a kept answer (v, borrowed): its status, its fields and
 * the bytes of body (moved out; body stays the caller's), with Age when age
 * is not negative, Brace-Error: upstream_status for a kept 4xx, and
 * Brace-Error-Avoided when avoided is set, plus the headers of every
 * answer. Counted and logged under avoided, else upstream_status for a
 * 4xx, else as a success. early: the app is answered and req goes on
 * (request_env.answer_early), else req is freed. Returns 0, or -ENOMEM
 * when req was answered 500 and freed instead. */
int reply_cached(struct request *req, const struct cacheentry_view *v, int64_t age,
		 const enum problem_code *avoided, struct evbuffer *body, int early);

#endif

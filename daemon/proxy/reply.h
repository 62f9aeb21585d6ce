/* The answers of one request (request.h) built from what its engine
 * decided: an upstream answer relayed, or a problem. Both add the headers
 * braced puts on every answer and end the request (request_finish). */
#ifndef BRACED_REPLY_H
#define BRACED_REPLY_H

struct request;
struct engine_answer;
struct problem;
struct call;

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

#endif

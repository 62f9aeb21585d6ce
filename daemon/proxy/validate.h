/* Schema validation of one request's query and body and of its upstream
 * answers (SPEC 2). Violations are logged, counted
 * with the route's guard and, in enforce mode, kept in the request. */
#ifndef BRACED_VALIDATE_H
#define BRACED_VALIDATE_H

struct request;
struct call;

/* Validates the app's query and body against the route's request schemas.
 * Returns 0 to go on (valid, report mode, or nothing to check), or -1 after
 * answering 422 request_invalid (the request is freed then). */
int validate_request(struct request *req);

/* Validates call's answer (borrowed) against req's route response schema
 * when the route checks its status: a body with a content coding is decoded
 * for the check (gzip, x-gzip, deflate), any other coding is a violation.
 * Returns 1 when it failed in enforce mode, its violations kept in
 * req->violations (owned by req), else 0. */
int validate_response(struct request *req, struct call *call);

/* 1 when an answer with status would be checked by the route's response
 * schema: it is then held whole, never streamed. */
int validate_wants(const struct request *req, int status);

#endif

/* An upstream answer's Retry-After and announced quota (SPEC 4.5, 4.12). */
#ifndef BRACED_QUOTA_H
#define BRACED_QUOTA_H

#include "exchange.h"
#include "retry.h"

/* Reads the answer of call in one pass over its headers: returns its
 * Retry-After (if one parses) and, once per attempt (slot, NULL for
 * none), teaches the request's rate limiter the quota the answer announces
 * (ratelimit_headers: pace), its reset capped by that Retry-After. */
struct retry_after quota_read_answer(struct request *req, const struct call *call,
				     struct request_call *slot);

#endif

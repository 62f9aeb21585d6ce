/* How one upstream attempt ended: the words the backend (upstream/)
 * reports in and the engine (engine/) reads, so neither translates the
 * other's. */
#ifndef BRACED_ATTEMPT_H
#define BRACED_ATTEMPT_H

enum attempt_end {
	ATTEMPT_OK,           /* a complete response with a status */
	ATTEMPT_CONNECT,      /* refused, unreachable, DNS, TLS handshake: nothing was sent */
	ATTEMPT_RESET,        /* closed or reset before a complete (well-formed) response */
	ATTEMPT_TIMEOUT,      /* a per-attempt limit ran out, see enum attempt_limit */
	ATTEMPT_TOO_LARGE,    /* response body over limits.max_response_body */
	ATTEMPT_POOL_TIMEOUT, /* no pooled connection in time: nothing sent, not an attempt */
	ATTEMPT_INTERNAL,     /* the backend could not run the attempt */
};

/* Which limit ran out, for ATTEMPT_TIMEOUT. */
enum attempt_limit {
	LIMIT_NONE,
	LIMIT_CONNECT,
	LIMIT_READ,
	LIMIT_WRITE,
	LIMIT_ATTEMPT,
};

#endif

/* Header rules of SPEC 3: which request and response headers pass, which
 * values are acceptable, and the correlation id check. Pure functions. */
#ifndef BRACED_HEADERS_H
#define BRACED_HEADERS_H

#include <stddef.h>

/* Longest correlation id kept from the app. */
#define HEADERS_CORRELATION_MAX 128
/* Longest idempotency key kept from the app. */
#define HEADERS_IDEMPOTENCY_MAX 255

/* 1 when name is hop-by-hop by itself (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade). */
int headers_is_hop_by_hop(const char *name);

/* 1 when a request header must not be forwarded: hop-by-hop, Host,
 * Content-Length, Expect, the control headers (Brace-*), or a name listed in
 * the request's Connection header (connection_value, may be NULL). */
int headers_request_dropped(const char *name, const char *connection_value);

/* 1 when a response header from the upstream must not reach the app:
 * hop-by-hop, Content-Length (braced frames its own answer), braced's own
 * Brace-* headers, or one named in the response's Connection header. */
int headers_response_dropped(const char *name, const char *connection_value);

/* 1 when value may be forwarded: no CR, LF, NUL or other control byte except
 * horizontal tab. */
int headers_value_ok(const char *value);

/* 1 when value is a usable correlation id: 1 to 128 visible ASCII chars. */
int headers_correlation_ok(const char *value);

/* 1 when value is a usable idempotency key: 1 to 255 visible ASCII chars. */
int headers_idempotency_ok(const char *value);

/* Reason phrase for statuses libevent 2.1 does not know (it says "Client
 * Error" for 429), or NULL to keep libevent's. */
const char *headers_reason_phrase(int status);

/* 1 when name appears as a token in a comma-separated list (case-insensitive). */
int headers_list_contains(const char *list, const char *name);

#endif

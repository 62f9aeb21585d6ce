/* Header rules of SPEC 3: which request and response headers pass, which
 * values are acceptable, and the correlation id check. Pure functions. */
#ifndef BRACED_HEADERS_H
#define BRACED_HEADERS_H

#include <stddef.h>
#include <stdint.h>

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

/* 1 when [name, name+len) is a non-empty token (RFC 9110 5.1, 5.6.2): the
 * only header names braced accepts from the app or the upstream. */
int headers_name_ok(const char *name, size_t len);

/* Longest Content-Length value read, in digits (beyond any body limit). */
#define HEADERS_CL_MAX_DIGITS 18

/* The framing rules braced enforces on an upstream's answer, fed one line at
 * a time as it arrives: status lines (a 1xx block may come before the final
 * one), header lines, the blank line ending a block, then trailer lines.
 * Plain data; headers_check_init() before the first line. */
struct headers_check {
	int status;      /* of the last status line, 0 before one */
	int in_trailers; /* the final block ended: trailers follow */
	int seen_cl;     /* a Content-Length was seen in this block */
	int seen_te;     /* a Transfer-Encoding was seen in this block */
	uint64_t content_length;
	const char *why; /* static: what was wrong, once a line was refused */
};

void headers_check_init(struct headers_check *hc);

/* Checks one line of an upstream answer, [line, line+len), its CR LF or LF
 * included or not. Refuses (-EPROTO, with hc->why saying what was wrong): a
 * status line that is not HTTP/VERSION SP 3DIGIT or whose code is outside
 * 100-599, a 101 (braced never asks to switch protocols), a header line that
 * starts with whitespace (obs-fold) or has no colon, a name that is not a
 * token, a value with a control byte other than tab, a Content-Length that
 * is not digits or differs from an earlier one, a Transfer-Encoding other
 * than one line of exactly "chunked" (any other coding, a list, a repeat),
 * Content-Length together with Transfer-Encoding, and a header line before
 * any status line.
 * Returns 0 otherwise. */
int headers_check_line(struct headers_check *hc, const char *line, size_t len);

/* 1 when name appears as a token in a comma-separated list (case-insensitive). */
int headers_list_contains(const char *list, const char *name);

/* braced writes its own Server-Timing entries `upstream` and `total`: an
 * upstream's Server-Timing value (a comma-separated list of entries `name
 * *(;param)`, whose quoted strings may hold commas) is copied to out
 * without the entries so named (case-insensitive), entries joined by ", ".
 * out has room for strlen(value) + 1 bytes; the result is never longer.
 * Returns the length written: 0 when no entry is left. */
size_t headers_server_timing_keep(const char *value, char *out);

/* The header lines of an upstream request, in order, as "Name: value"
 * ("Name;" for an empty value). Embedded: zeroed is empty. */
struct header_list {
	char **lines;
	size_t n, cap;
};

/* Appends name and value (both copied). Returns 0 or -ENOMEM. */
int header_list_add(struct header_list *l, const char *name, const char *value);
/* 1 when the list has a line for name (case-insensitive). */
int header_list_has(const struct header_list *l, const char *name);
/* Frees the lines; the list is empty again. */
void header_list_release(struct header_list *l);

#endif

/* RFC 9457 problem+json bodies for every error braced answers, with the codes
 * and fields of SPEC 5. Pure: builds bytes, touches no socket. */
#ifndef BRACED_PROBLEM_H
#define BRACED_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

enum problem_code {
	PROBLEM_BAD_REQUEST,
	PROBLEM_UNKNOWN_PROFILE,
	PROBLEM_ROUTE_NOT_FOUND,
	PROBLEM_REQUEST_TIMEOUT,
	PROBLEM_PAYLOAD_TOO_LARGE,
	PROBLEM_HEADERS_TOO_LARGE,
	PROBLEM_NOT_IMPLEMENTED, /* a transfer coding braced cannot forward with its label */
	PROBLEM_REQUEST_INVALID,
	PROBLEM_UPSTREAM_STATUS,
	PROBLEM_RATE_LIMITED,
	PROBLEM_UPSTREAM_UNAVAILABLE,
	PROBLEM_SCHEMA_VIOLATION,
	PROBLEM_RESPONSE_TOO_LARGE,
	PROBLEM_CIRCUIT_OPEN,
	PROBLEM_OVERLOADED,
	PROBLEM_UPSTREAM_TIMEOUT,
	PROBLEM_INTERNAL,
	PROBLEM__COUNT
};

/* Most upstream body bytes a problem repeats. */
#define PROBLEM_UPSTREAM_BODY_MAX 512

/* An endpoint's text in a history entry: "[IPV6]:PORT" and its NUL. */
#define PROBLEM_ENDPOINT_MAX 48

struct history_entry {
	unsigned attempt;
	const char *outcome; /* "ok", "status", "timeout", ... */
	int status;          /* 0 when no HTTP status was received */
	uint32_t ms;
	uint32_t wait_ms;
	int hedge; /* a hedged attempt (SPEC 4.10): rendered "hedge": true */
	/* "ADDR:PORT" the attempt dialled (SPEC 4.11); "" when libcurl
	 * resolved the name itself. */
	char endpoint[PROBLEM_ENDPOINT_MAX];
};

/* A Retry-After in milliseconds that may be absent: set 0 says none. */
struct retry_after {
	int set;
	uint64_t ms;
};

/* Whether the app may send the request again: "retryable" in a problem,
 * left out when PROBLEM_RETRYABLE_UNSAID. */
enum problem_retryable {
	PROBLEM_RETRYABLE_UNSAID,
	PROBLEM_RETRYABLE_NO,
	PROBLEM_RETRYABLE_YES,
};

struct schema_violation;

struct problem {
	enum problem_code code;
	int status;          /* 0: the code's own status */
	const char *detail;  /* borrowed; NULL: the title */
	const char *profile; /* borrowed, optional fields below: NULL = absent */
	const char *route;
	const char *correlation_id;
	const char *trace_id; /* W3C trace-id of the request */
	const char *idempotency_key;
	int counted; /* attempts and elapsed_ms are rendered */
	unsigned attempts;
	uint64_t elapsed_ms;
	enum problem_retryable retryable;
	struct retry_after retry_after;
	int upstream_status; /* 0 absent */
	const char *upstream_body;
	size_t upstream_body_len;
	const struct history_entry *history;
	size_t nhistory;
	const struct schema_violation *violations; /* at most 10 rendered */
	size_t nviolations;
};

/* Code name ("upstream_timeout"), default HTTP status and title. */
const char *problem_code_name(enum problem_code code);
int problem_code_status(enum problem_code code);
const char *problem_code_title(enum problem_code code);

/* Initialises p for code with every optional field absent. */
void problem_init(struct problem *p, enum problem_code code);

/* The HTTP status the problem is answered with. */
int problem_status(const struct problem *p);

/* Renders p as JSON, ending with a newline. Returns a malloc'd NUL-terminated body (the caller
 * frees it) and its length in *ret_len, or NULL on OOM. */
char *problem_render(const struct problem *p, size_t *ret_len);

#endif

/* W3C Trace Context (https://www.w3.org/TR/trace-context/): reading the
 * app's traceparent and tracestate, starting a trace, and the traceparent of
 * each attempt, which keeps the trace-id and gets a parent-id of its own
 * because braced is a hop. Pure: the random source is the caller's. */
#ifndef BRACED_TRACE_H
#define BRACED_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/* "00-" 32 hex "-" 16 hex "-" 2 hex. */
#define TRACE_PARENT_LEN 55
/* Longest tracestate forwarded; a longer one is dropped (the spec allows
 * cutting whole members, braced keeps all or none). */
#define TRACE_STATE_MAX 512

/* How a profile treats trace context (config key tracing.traceparent). */
enum trace_mode {
	TRACE_OFF,       /* neither read nor sent: the app's headers pass as any other */
	TRACE_PROPAGATE, /* the app's valid traceparent continues; none: none sent */
	TRACE_GENERATE,  /* as propagate, and a request without one starts a trace */
};

/* A request's trace: the trace-id and flags every attempt carries. */
struct trace {
	int valid;
	int from_app;      /* read from the app's traceparent, not started here */
	char trace_id[33]; /* 32 lower-case hex digits */
	char flags[3];     /* 2 lower-case hex digits */
};

/* Reads a traceparent value (NUL-terminated, borrowed). Version 00 must be
 * exactly TRACE_PARENT_LEN characters; a later version may carry more
 * fields after a '-', which are ignored; version ff, upper-case hex, an
 * all-zero trace-id or parent-id are invalid. Returns 0 and fills *ret, or
 * -EINVAL (the caller drops the header: a malformed traceparent is no
 * error, the spec says to restart the trace or ignore it). */
int trace_parse(const char *value, struct trace *ret);

/* Starts a trace: a random non-zero trace-id, flags "00" (not sampled). */
void trace_start(struct trace *t, struct rng *rng);

/* Writes the traceparent of one attempt into out (TRACE_PARENT_LEN + 1
 * bytes): version 00, t's trace-id and flags, a fresh random parent-id. */
void trace_attempt(const struct trace *t, struct rng *rng, char out[TRACE_PARENT_LEN + 1]);

/* 1 when value may be forwarded as tracestate: at most TRACE_STATE_MAX
 * bytes of printable ASCII (0x20-0x7e) with no more than 32 list members. */
int trace_state_ok(const char *value);

#endif

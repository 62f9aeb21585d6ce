/* What a call tells about itself once started: how it ended, its answer's
 * status, head fields and body, and its times. Read-only over struct call
 * (upstream_internal.h). */
#include "upstream_internal.h"

#include <string.h>

#include "clock.h"

uint64_t call_queued_us(const struct call *c)
{
	if (!c->begin_us)
		return c->elapsed_us;
	return c->begin_us > c->start_us ? c->begin_us - c->start_us : 0;
}

int call_waiting(const struct call *c)
{
	return c->state == CALL_WAITING;
}

uint64_t call_body_sent(const struct call *c)
{
	return c->body_sent;
}

int64_t call_content_length(const struct call *c)
{
	return c->head_length;
}

enum attempt_end call_outcome(const struct call *c)
{
	return c->outcome;
}

enum attempt_limit call_timeout_kind(const struct call *c)
{
	return c->timeout;
}

int call_status(const struct call *c)
{
	return c->status;
}

struct evbuffer *call_body(struct call *c)
{
	return c->body;
}

int call_header_next(const struct call *c, size_t *pos, const char **ret_name,
		     const char **ret_value)
{
	/* Stored as "name\0value\0" pairs; an overflowed store shows nothing. */
	size_t len = c->headers.failed ? 0 : c->headers.len;
	const char *name, *value;

	if (*pos >= len)
		return 0;
	name = c->headers.data + *pos;
	value = name + strlen(name) + 1;
	*pos = (size_t)(value - c->headers.data) + strlen(value) + 1;
	*ret_name = name;
	*ret_value = value;
	return 1;
}

uint64_t call_elapsed_us(const struct call *c)
{
	return c->state == CALL_DONE ? c->elapsed_us : clock_now_us() - c->start_us;
}

const char *call_error(const struct call *c)
{
	return c->errbuf;
}

/* What an upstream answer says of when to come back: its Retry-After, and
 * the quota it announces, taught to the profile's rate limiter (SPEC 4.5,
 * 4.12). */
#include "quota.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "guard.h"
#include "ratelimit.h"
#include "upstream.h"

/* Fields of one answer that may carry its quota: at most this many read. */
#define REQUEST_QUOTA_FIELDS 16

struct retry_after quota_read_answer(struct request *req, const struct call *call,
				     struct request_call *slot)
{
	struct ratelimit_field fields[REQUEST_QUOTA_FIELDS];
	struct retry_after ra = { 0 };
	int learn =
	    slot && !slot->quota_read && req->policy->ratelimit_headers == RATELIMIT_HEADERS_PACE;
	const char *name, *value;
	size_t pos = 0, n = 0;
	int64_t ms;

	while (call_header_next(call, &pos, &name, &value)) {
		if (!ra.set && strcasecmp(name, "Retry-After") == 0 &&
		    retry_after_parse(value, time(NULL), &ms) == 0)
			ra = (struct retry_after){ .set = 1, .ms = (uint64_t)ms };
		else if (learn && n < REQUEST_QUOTA_FIELDS &&
			 (!strncasecmp(name, "ratelimit", 9) ||
			  !strncasecmp(name, "x-ratelimit", 11)))
			fields[n++] = (struct ratelimit_field){ .name = name,
								.name_len = strlen(name),
								.value = value,
								.value_len = strlen(value) };
	}
	if (learn) {
		struct ratelimit_quota q;

		slot->quota_read = 1;
		if (n && ratelimit_read(fields, n, (int64_t)time(NULL), &q) == 0) {
			/* Retry-After comes first (SPEC 4.12): the same answer's
			 * quota cannot hold traffic past it. */
			if (ra.set && q.reset_s * 1000 > ra.ms)
				q.reset_s = (ra.ms + 999) / 1000;
			guard_pace_learn(req->guard, &req->policy->rate_limit, &q, slot->picked_us,
					 clock_now_us());
		}
	}
	return ra;
}

/* W3C traceparent reading and writing (see trace.h). The checks follow the
 * spec's parsing rules for version 00 and for future versions. */
#include "trace.h"

#include <errno.h>
#include <string.h>

/* Members a tracestate list may have. */
#define TRACE_STATE_MEMBERS 32

static int lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return 0;
	return 1;
}

int trace_parse(const char *value, struct trace *ret)
{
	size_t len = strlen(value);

	/* version "-" trace-id "-" parent-id "-" flags */
	if (len < TRACE_PARENT_LEN || value[2] != '-' || value[35] != '-' || value[52] != '-')
		return -EINVAL;
	if (!lower_hex(value, 2) || memcmp(value, "ff", 2) == 0)
		return -EINVAL;
	if (memcmp(value, "00", 2) == 0 ? len != TRACE_PARENT_LEN
					: len > TRACE_PARENT_LEN && value[TRACE_PARENT_LEN] != '-')
		return -EINVAL;
	if (!lower_hex(value + 3, 32) || all_zero(value + 3, 32) || !lower_hex(value + 36, 16) ||
	    all_zero(value + 36, 16) || !lower_hex(value + 53, 2))
		return -EINVAL;
	memcpy(ret->trace_id, value + 3, 32);
	ret->trace_id[32] = '\0';
	memcpy(ret->flags, value + 53, 2);
	ret->flags[2] = '\0';
	ret->valid = 1;
	ret->from_app = 1;
	return 0;
}

static void random_hex(struct rng *rng, char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	do {
		for (size_t i = 0; i < n; i += 16) {
			uint64_t r = rng_next(rng);

			for (size_t k = i; k < n && k < i + 16; k++, r >>= 4)
				out[k] = digits[r & 15];
		}
	} while (all_zero(out, n));
}

void trace_start(struct trace *t, struct rng *rng)
{
	random_hex(rng, t->trace_id, 32);
	t->trace_id[32] = '\0';
	memcpy(t->flags, "00", 3);
	t->valid = 1;
	t->from_app = 0;
}

void trace_attempt(const struct trace *t, struct rng *rng, char out[TRACE_PARENT_LEN + 1])
{
	memcpy(out, "00-", 3);
	memcpy(out + 3, t->trace_id, 32);
	out[35] = '-';
	random_hex(rng, out + 36, 16);
	out[52] = '-';
	memcpy(out + 53, t->flags, 2);
	out[55] = '\0';
}

int trace_state_ok(const char *value)
{
	size_t len = strlen(value), members = 1;

	if (len > TRACE_STATE_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (value[i] < 0x20 || value[i] > 0x7e)
			return 0;
		members += value[i] == ',';
	}
	return members <= TRACE_STATE_MEMBERS;
}

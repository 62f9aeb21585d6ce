/* Fuzz target: retry_after_parse() on an arbitrary header value, at a fixed
 * "now" (2026-07-25T17:20:00Z). A value is a wait of zero or more
 * milliseconds, or refused. */
#include <errno.h>

#include "retry.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value = fuzz_cstring(data, size);
	int64_t ms = -1;
	int r;

	if (!value)
		return 0;
	r = retry_after_parse(value, (time_t)1785000000, &ms);
	if ((r == 0 && ms < 0) || (r != 0 && r != -EINVAL))
		abort();
	free(value);
	return 0;
}

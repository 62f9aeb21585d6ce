/* Fuzz target: the configuration's durations and sizes, units_parse_duration()
 * and units_parse_size(), on the same string. An accepted value is within its
 * limit; a refused one leaves the output untouched. */
#include <errno.h>

#include "units.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	uint64_t v;
	int r;

	if (!s)
		return 0;
	v = UINT64_MAX;
	r = units_parse_duration(s, &v);
	if (r == 0 ? v > UNITS_MAX_DURATION_MS
		   : (v != UINT64_MAX || (r != -EINVAL && r != -ERANGE)))
		abort();
	v = UINT64_MAX;
	r = units_parse_size(s, &v);
	if (r == 0 ? v > UNITS_MAX_SIZE : (v != UINT64_MAX || (r != -EINVAL && r != -ERANGE)))
		abort();
	free(s);
	return 0;
}

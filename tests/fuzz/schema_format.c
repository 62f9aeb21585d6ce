/* Fuzz target: every format check and the base64 check over one string.
 * The first byte picks nothing; the whole input, NUL-terminated like a
 * json-c string and possibly invalid UTF-8, goes to each check. Results
 * must be 0 or 1 (or -ENOMEM), and base64's decoded length must be what
 * schema_base64_decode() writes. */
#include <errno.h>

#include "schema_format.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	unsigned char *out;
	size_t dlen;
	int f, r;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (f = 0; f < SCHEMA_FORMAT__COUNT; f++) {
		r = schema_format_check((enum schema_format)f, s, size);
		if (r != 0 && r != 1 && r != -ENOMEM)
			abort();
	}
	if (schema_base64_check(s, size, &dlen)) {
		out = malloc(dlen ? dlen : 1);
		if (out && schema_base64_decode(s, size, out) != dlen)
			abort();
		free(out);
	}
	free(s);
	return 0;
}

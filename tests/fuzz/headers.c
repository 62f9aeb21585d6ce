/* Fuzz target: the header rules on both sides. The input is an upstream
 * answer's head, fed line by line to headers_check_line() as libcurl hands
 * it over; each line's name is also put to headers_name_ok() and its value
 * to headers_value_ok(), as config.c does with configured headers. An
 * accepted head must keep the checker's own promises. The whole input is
 * also an upstream's Server-Timing value: what is kept is never longer and
 * never holds an entry named like braced's own. */
#include <errno.h>

#include "headers.h"
#include "fuzz.h"

/* A token accepted as a name is never empty and never holds a separator. */
static void check_name(const char *name, size_t len)
{
	if (!headers_name_ok(name, len))
		return;
	if (len == 0 || memchr(name, ':', len) || memchr(name, ' ', len) ||
	    memchr(name, '\t', len) || memchr(name, '\0', len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct headers_check hc;
	char *value;

	headers_check_init(&hc);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		const char *colon = memchr(p, ':', len);
		int r = headers_check_line(&hc, p, len);

		if (r != 0 && (r != -EPROTO || !hc.why))
			abort();
		if (colon)
			check_name(p, (size_t)(colon - p));
		if (r == 0 && hc.status != 0 &&
		    (hc.status < 100 || hc.status > 599 || hc.status == 101))
			abort();
		if (r < 0)
			break;
		p += len;
	}
	value = fuzz_cstring(data, size);
	if (value) {
		char *kept = malloc(strlen(value) + 1), *again;

		headers_value_ok(value);
		if (kept) {
			size_t n = headers_server_timing_keep(value, kept);

			if (n > strlen(value) || n != strlen(kept))
				abort();
			/* Filtering what was kept changes nothing: no entry named
			 * upstream or total survived. */
			again = malloc(n + 1);
			if (again && (headers_server_timing_keep(kept, again) != n ||
				      strcmp(again, kept) != 0))
				abort();
			free(again);
			free(kept);
		}
		free(value);
	}
	return 0;
}

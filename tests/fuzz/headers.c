/* Fuzz target: the header rules on both sides. The input is an upstream
 * answer's head, fed line by line to headers_check_line() as libcurl hands
 * it over; each line's name is also put to headers_name_ok() and its value
 * to headers_value_ok(), as config.c does with configured headers. An
 * accepted head must keep the checker's own promises (a status in range;
 * at most one Transfer-Encoding line, and it says exactly chunked, the only
 * framing libcurl does not decode by itself). The whole input is
 * also an upstream's Server-Timing value: what is kept is never longer and
 * never holds an entry named like braced's own. */
#include <errno.h>

#include "headers.h"
#include "fuzz.h"

/* 1 when line (len bytes) is a Transfer-Encoding field whose value, spaces
 * and line end trimmed, is not exactly "chunked" (any case). */
static int te_not_chunked(const char *line, size_t len)
{
	const char *v = line + 18, *e = line + len;

	if (len < 18 || strncasecmp(line, "Transfer-Encoding:", 18) != 0)
		return 0;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	return e - v != 7 || strncasecmp(v, "chunked", 7) != 0;
}

static int is_te(const char *line, size_t len)
{
	return len >= 18 && strncasecmp(line, "Transfer-Encoding:", 18) == 0;
}

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
	int te_lines = 0, last_status = 0;

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
		if (hc.status != last_status) { /* a new head: its own framing */
			last_status = hc.status;
			te_lines = 0;
		}
		if (r == 0 && !hc.in_trailers && is_te(p, len) &&
		    (++te_lines > 1 || te_not_chunked(p, len)))
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

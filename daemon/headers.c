/* Header forwarding rules. Names compare case-insensitively; the lists are
 * short, so a linear scan beats any table setup. */
#include "headers.h"

#include <string.h>
#include <strings.h>

static const char *const hop_by_hop[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", NULL,
};

int headers_is_hop_by_hop(const char *name)
{
	for (const char *const *h = hop_by_hop; *h; h++)
		if (strcasecmp(*h, name) == 0)
			return 1;
	return 0;
}

int headers_list_contains(const char *list, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = list;

	while (p && *p) {
		const char *start, *end;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - start) == nlen && strncasecmp(start, name, nlen) == 0)
			return 1;
	}
	return 0;
}

int headers_request_dropped(const char *name, const char *connection_value)
{
	if (headers_is_hop_by_hop(name) || strcasecmp(name, "Host") == 0 ||
	    strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Expect") == 0 ||
	    strncasecmp(name, "Brace-", 6) == 0)
		return 1;
	return connection_value && headers_list_contains(connection_value, name);
}

int headers_response_dropped(const char *name, const char *connection_value)
{
	if (headers_is_hop_by_hop(name) || strcasecmp(name, "Content-Length") == 0)
		return 1;
	return connection_value && headers_list_contains(connection_value, name);
}

int headers_value_ok(const char *value)
{
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

int headers_correlation_ok(const char *value)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)value; *p; p++, n++)
		if (*p < 0x21 || *p > 0x7e || n >= HEADERS_CORRELATION_MAX)
			return 0;
	return n > 0;
}

/* Header forwarding rules. Names compare case-insensitively; the lists are
 * short, so a linear scan beats any table setup. */
#include "headers.h"

#include <string.h>
#include <strings.h>

static const char *const hop_by_hop[] = {
	"Connection", "Keep-Alive",        "Proxy-Connection", "TE",
	"Trailer",    "Transfer-Encoding", "Upgrade",          NULL,
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
	/* Brace-* headers are braced's own: an upstream cannot set them. */
	if (headers_is_hop_by_hop(name) || strcasecmp(name, "Content-Length") == 0 ||
	    strncasecmp(name, "Brace-", 6) == 0)
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

static int visible_ascii(const char *value, size_t max)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)value; *p; p++, n++)
		if (*p < 0x21 || *p > 0x7e || n >= max)
			return 0;
	return n > 0;
}

int headers_correlation_ok(const char *value)
{
	return visible_ascii(value, HEADERS_CORRELATION_MAX);
}

int headers_idempotency_ok(const char *value)
{
	return visible_ascii(value, HEADERS_IDEMPOTENCY_MAX);
}

const char *headers_reason_phrase(int status)
{
	switch (status) {
	case 421:
		return "Misdirected Request";
	case 422:
		return "Unprocessable Content";
	case 425:
		return "Too Early";
	case 426:
		return "Upgrade Required";
	case 428:
		return "Precondition Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 451:
		return "Unavailable For Legal Reasons";
	case 506:
		return "Variant Also Negotiates";
	case 507:
		return "Insufficient Storage";
	case 508:
		return "Loop Detected";
	case 511:
		return "Network Authentication Required";
	default:
		return NULL;
	}
}

/* Header forwarding rules. Names compare case-insensitively; the lists are
 * short, so a linear scan beats any table setup. */
#include "headers.h"
#include "ascii.h"

#include <errno.h>
#include <stdlib.h>
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

int headers_name_ok(const char *name, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!ascii_is_tchar((unsigned char)name[i]))
			return 0;
	return 1;
}

void headers_check_init(struct headers_check *hc)
{
	memset(hc, 0, sizeof(*hc));
}

static int refuse(struct headers_check *hc, const char *why)
{
	hc->why = why;
	return -EPROTO;
}

static int is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* "HTTP/" DIGIT ["." DIGIT] SP 3DIGIT [SP reason]. */
static int check_status_line(struct headers_check *hc, const char *s, size_t len)
{
	size_t i = 5;
	int code;

	if (i >= len || s[i] < '0' || s[i] > '9')
		return refuse(hc, "the status line has no HTTP version");
	i++;
	if (i + 1 < len && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9')
		i += 2;
	if (i + 4 > len || s[i] != ' ')
		return refuse(hc, "the status line is not 'HTTP/VERSION CODE REASON'");
	i++;
	for (size_t k = i; k < i + 3; k++)
		if (s[k] < '0' || s[k] > '9')
			return refuse(hc, "the status code is not three digits");
	code = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
	i += 3;
	if (i < len && s[i] != ' ')
		return refuse(hc, "the status code is not three digits");
	for (; i < len; i++)
		if (is_ctl((unsigned char)s[i]))
			return refuse(hc, "the reason phrase contains a control character");
	if (code < 100 || code > 599)
		return refuse(hc, "the status code is outside 100-599");
	if (code == 101)
		return refuse(hc, "a 101 Switching Protocols braced did not ask for");
	/* A new response (a final one after 1xx, or libcurl's resend). */
	headers_check_init(hc);
	hc->status = code;
	return 0;
}

/* Content-Length: 1*DIGIT, or a list of equal values (RFC 9110 8.6). */
static int check_content_length(struct headers_check *hc, const char *v, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t n = 0;
		size_t digits = 0;

		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		for (; i < len && v[i] >= '0' && v[i] <= '9'; i++, digits++)
			if (digits < HEADERS_CL_MAX_DIGITS)
				n = n * 10 + (uint64_t)(v[i] - '0');
		if (digits == 0)
			return refuse(hc, "a Content-Length value is not a number");
		if (digits > HEADERS_CL_MAX_DIGITS)
			return refuse(hc, "a Content-Length value is too long");
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i < len && v[i] != ',')
			return refuse(hc, "a Content-Length value is not a number");
		if (i < len)
			i++;
		if (hc->seen_cl && n != hc->content_length)
			return refuse(hc, "differing Content-Length values");
		hc->seen_cl = 1;
		hc->content_length = n;
	}
	if (!hc->seen_cl)
		return refuse(hc, "a Content-Length value is not a number");
	return 0;
}

/* Transfer-Encoding: exactly chunked, once. libcurl 7.88 builds a decoder
 * for any other coding even without CURLOPT_ACCEPT_ENCODING (http.c
 * Curl_http_header, content_encoding.c Curl_build_unencoding_stack), and one
 * 16 KiB read of gzip could then inflate into megabytes braced never asked
 * for; a repeated chunked is no framing braced can trust either. */
static int check_transfer_encoding(struct headers_check *hc, const char *v, size_t len)
{
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (hc->seen_te || len != 7 || strncasecmp(v, "chunked", 7) != 0)
		return refuse(hc, "a Transfer-Encoding other than exactly 'chunked'");
	hc->seen_te = 1;
	return 0;
}

int headers_check_line(struct headers_check *hc, const char *line, size_t len)
{
	const char *colon, *v, *end;

	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	/* A status line only where one is due: first, or after a 1xx block.
	 * Elsewhere "HTTP/1.1 200 a:b" is a header line to libcurl, and must
	 * not restart the checks (its name is no token: it is refused). */
	if (hc->status == 0 && !hc->in_trailers && len >= 5 && memcmp(line, "HTTP/", 5) == 0)
		return check_status_line(hc, line, len);
	if (len == 0) {
		if (hc->status == 0)
			return refuse(hc, "a blank line before the status line");
		if (hc->status < 200) {
			hc->status = 0; /* the final status line follows */
			return 0;
		}
		if (!hc->in_trailers && hc->seen_cl && hc->seen_te)
			return refuse(hc, "both Content-Length and Transfer-Encoding");
		hc->in_trailers = 1;
		return 0;
	}
	if (hc->status == 0 && !hc->in_trailers)
		return refuse(hc, "a header line before the status line");
	if (line[0] == ' ' || line[0] == '\t')
		return refuse(hc, "an obs-fold continuation line");
	colon = memchr(line, ':', len);
	if (!colon)
		return refuse(hc, "a header line without a colon");
	if (!headers_name_ok(line, (size_t)(colon - line)))
		return refuse(hc, "a header name that is not a token");
	end = line + len;
	for (v = colon + 1; v < end; v++)
		if (is_ctl((unsigned char)*v))
			return refuse(hc, "a header value contains a control character");
	if (hc->in_trailers)
		return 0;
	v = colon + 1;
	if ((size_t)(colon - line) == 14 && strncasecmp(line, "Content-Length", 14) == 0)
		return check_content_length(hc, v, (size_t)(end - v));
	if ((size_t)(colon - line) == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0)
		return check_transfer_encoding(hc, v, (size_t)(end - v));
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

int header_list_add(struct header_list *l, const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen = strlen(value);
	char *line;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **grown = realloc(l->lines, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		l->lines = grown;
		l->cap = cap;
	}
	line = malloc(nlen + vlen + 3);
	if (!line)
		return -ENOMEM;
	memcpy(line, name, nlen);
	/* "Name;" is how an empty value is written (libcurl's form). */
	if (vlen == 0) {
		line[nlen] = ';';
		line[nlen + 1] = '\0';
	} else {
		line[nlen] = ':';
		line[nlen + 1] = ' ';
		memcpy(line + nlen + 2, value, vlen + 1);
	}
	l->lines[l->n++] = line;
	return 0;
}

int header_list_has(const struct header_list *l, const char *name)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < l->n; i++)
		if (strncasecmp(l->lines[i], name, nlen) == 0 &&
		    (l->lines[i][nlen] == ':' || l->lines[i][nlen] == ';'))
			return 1;
	return 0;
}

void header_list_release(struct header_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->lines[i]);
	free(l->lines);
	*l = (struct header_list){ 0 };
}

/* The end of the Server-Timing entry starting at p: its comma, or the NUL. */
static const char *timing_entry_end(const char *p)
{
	int quoted = 0;

	for (; *p; p++) {
		if (quoted && *p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == ',' && !quoted)
			break;
	}
	return p;
}

size_t headers_server_timing_keep(const char *value, char *out)
{
	size_t n = 0;

	for (const char *p = value; *p;) {
		const char *end = timing_entry_end(p), *start = p, *name_end;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		name_end = p;
		while (name_end < end && ascii_is_tchar((unsigned char)*name_end))
			name_end++;
		if (name_end > p && !((name_end - p == 8 && strncasecmp(p, "upstream", 8) == 0) ||
				      (name_end - p == 5 && strncasecmp(p, "total", 5) == 0))) {
			const char *last = end;

			while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
				last--;
			/* Each kept entry but the first goes with its own comma and
			 * leading space: never longer than the value. */
			if (n) {
				out[n++] = ',';
				p = start;
			}
			memcpy(out + n, p, (size_t)(last - p));
			n += (size_t)(last - p);
		}
		p = *end ? end + 1 : end;
	}
	out[n] = '\0';
	return n;
}

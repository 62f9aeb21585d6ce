/* Growable, capped byte buffer and JSON string escaping. */
#include "strbuf.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(struct strbuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void strbuf_release(struct strbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

char *strbuf_steal(struct strbuf *b, size_t *ret_len)
{
	char *d = b->data;

	if (!b->failed && !d)
		d = calloc(1, 1); /* nothing added yet: an empty string */
	if (b->failed || !d) {
		strbuf_release(b);
		return NULL;
	}
	if (ret_len)
		*ret_len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}

static int reserve(struct strbuf *b, size_t more)
{
	size_t need, cap;
	char *d;

	if (b->failed)
		return -1;
	need = b->len + more + 1;
	if (b->len + more > b->max) {
		b->failed = 1;
		return -1;
	}
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	/* Never more than the cap allows: a capped buffer near its max (a
	 * decoded body) would otherwise hold twice what it may. */
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	d = realloc(b->data, cap);
	if (!d) {
		b->failed = 1;
		return -1;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

void strbuf_add(struct strbuf *b, const void *data, size_t len)
{
	if (reserve(b, len) < 0)
		return;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void strbuf_truncate(struct strbuf *b, size_t len)
{
	if (b->failed || len >= b->len)
		return;
	b->len = len;
	b->data[len] = '\0';
}

void strbuf_adds(struct strbuf *b, const char *s)
{
	strbuf_add(b, s, strlen(s));
}

const char *strbuf_str(const struct strbuf *b)
{
	return b->data ? b->data : "";
}

void strbuf_add_pointer_token(struct strbuf *b, const char *s, size_t len)
{
	size_t i, start = 0;

	strbuf_add(b, "/", 1);
	for (i = 0; i < len; i++) {
		if (s[i] != '~' && s[i] != '/')
			continue;
		strbuf_add(b, s + start, i - start);
		strbuf_add(b, s[i] == '~' ? "~0" : "~1", 2);
		start = i + 1;
	}
	strbuf_add(b, s + start, len - start);
}

void strbuf_addf(struct strbuf *b, const char *fmt, ...)
{
	size_t room = b->cap > b->len ? b->cap - b->len : 0;
	va_list ap;
	int n;

	if (b->failed)
		return;
	/* Format straight into the free space; only a miss formats twice. */
	va_start(ap, fmt);
	n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0 || b->len + (size_t)n > b->max) {
		b->failed = 1;
		if (room)
			b->data[b->len] = '\0';
		return;
	}
	if ((size_t)n >= room) {
		if (reserve(b, (size_t)n) < 0)
			return;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void strbuf_add_json_string(struct strbuf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	strbuf_add(b, "\"", 1);
	while (p < end) {
		const unsigned char *run = p;
		uint32_t cp;
		size_t n;

		/* Copy the longest run that needs no escaping in one go. */
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			strbuf_add(b, run, (size_t)(p - run));
		if (p >= end)
			break;
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };

			strbuf_add(b, esc, 2);
			p++;
		} else if (*p < 0x20) {
			char esc[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };

			if (*p == '\n')
				strbuf_add(b, "\\n", 2);
			else if (*p == '\r')
				strbuf_add(b, "\\r", 2);
			else if (*p == '\t')
				strbuf_add(b, "\\t", 2);
			else
				strbuf_add(b, esc, 6);
			p++;
		} else if ((n = utf8_decode((const char *)p, (size_t)(end - p), &cp)) > 0) {
			strbuf_add(b, p, n);
			p += n;
		} else {
			strbuf_add(b, "\xef\xbf\xbd", 3);
			p++;
		}
	}
	strbuf_add(b, "\"", 1);
}

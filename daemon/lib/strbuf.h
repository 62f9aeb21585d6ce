/* A growable byte buffer with a hard cap, and JSON writing helpers on it.
 * Used to build log lines and problem+json bodies without json-c's cost. */
#ifndef BRACED_STRBUF_H
#define BRACED_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *data; /* NUL-terminated while not failed */
	size_t len, cap;
	size_t max; /* hard cap on len; writes past it set failed */
	int failed; /* out of memory or over max: contents incomplete */
};

/* Starts an empty buffer that may grow to max bytes. */
void strbuf_init(struct strbuf *b, size_t max);
/* Frees the contents; the buffer can be reused after strbuf_init. */
void strbuf_release(struct strbuf *b);
/* Returns the contents and gives them to the caller (free()); the buffer is
 * empty afterwards. NULL when failed. */
char *strbuf_steal(struct strbuf *b, size_t *ret_len);

void strbuf_add(struct strbuf *b, const void *data, size_t len);
/* Drops every byte from len on; a len at or past the end, or a failed
 * buffer, is left as it is. */
void strbuf_truncate(struct strbuf *b, size_t len);
void strbuf_adds(struct strbuf *b, const char *s);
/* The contents so far (borrowed from b), "" before the first byte. */
const char *strbuf_str(const struct strbuf *b);
void strbuf_addf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s (len bytes) as a JSON string literal with quotes; bytes that are
 * not valid UTF-8 become U+FFFD so the output is always valid JSON. */
void strbuf_add_json_string(struct strbuf *b, const char *s, size_t len);

/* Appends "/" and s (len bytes) as a JSON pointer reference token
 * (RFC 6901): '~' becomes "~0" and '/' becomes "~1". */
void strbuf_add_pointer_token(struct strbuf *b, const char *s, size_t len);

#endif

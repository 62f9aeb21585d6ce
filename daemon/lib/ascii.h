/* Character classes of the protocols braced reads, without locale: the one
 * place for hex digits (of %XX escapes, in paths, query strings, schema
 * URIs and formats), token characters, and unsigned numbers read strictly
 * (ports, indexes) and written without printf. */
#ifndef BRACED_ASCII_H
#define BRACED_ASCII_H

#include <stddef.h>
#include <stdint.h>

/* The value of the hex digit c (either case), or -1. */
int ascii_hex_digit(int c);

/* The byte the percent escape at s encodes (len bytes there, borrowed):
 * 0-255 when s starts with '%' and two hex digits, else -1. Every %XX of
 * paths, query strings, schema URIs and formats is read here. */
int ascii_pct_byte(const char *s, size_t len);

/* Options of ascii_pct_decode. */
enum {
	/* '+' is a space (application/x-www-form-urlencoded). */
	ASCII_PCT_PLUS_SPACE = 1u << 0,
	/* A '%' without two hex digits after it is kept as it is, instead of
	 * failing the whole decode. */
	ASCII_PCT_KEEP_MALFORMED = 1u << 1,
	/* %00 fails the decode: the result is a C string. */
	ASCII_PCT_REFUSE_NUL = 1u << 2,
};

/* Percent-decodes s[0..len) (borrowed) into out, which has room for len + 1
 * bytes and may be s itself (decoding never grows), and ends it with a NUL.
 * Returns 0 and the decoded length in *ret_len, or -EINVAL for a malformed
 * escape (unless ASCII_PCT_KEEP_MALFORMED) or %00 under
 * ASCII_PCT_REFUSE_NUL; out then holds a partial result. */
int ascii_pct_decode(const char *s, size_t len, char *out, unsigned flags, size_t *ret_len);

/* 1 when c is a tchar of RFC 9110 5.6.2 ("!#$%&'*+-.^_`|~", digits,
 * letters). Inline, and a switch rather than strchr(): every header name
 * of every request and answer comes here. */
static inline int ascii_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	switch (c) {
	case '!':
	case '#':
	case '$':
	case '%':
	case '&':
	case '\'':
	case '*':
	case '+':
	case '-':
	case '.':
	case '^':
	case '_':
	case '`':
	case '|':
	case '~':
		return 1;
	default:
		return 0;
	}
}

/* Writes v in decimal at p (20 bytes at most, no NUL); returns the end. */
char *ascii_put_uint(char *p, uint64_t v);

/* Reads the decimal digits at s, as many as there are, into *ret_value and
 * their count into *ret_len. Strict where strtol is not: no sign, no
 * space, at least one digit, at most max. Returns 0, or -EINVAL (no digit,
 * a value over max); the outputs are untouched on failure. */
int ascii_parse_uint(const char *s, uint64_t max, uint64_t *ret_value, size_t *ret_len);

#endif

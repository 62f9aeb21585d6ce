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

/* Character classes of the protocols braced reads, without locale: the one
 * place for hex digits (of %XX escapes, in paths, query strings, schema
 * URIs and formats) and for strict unsigned numbers (ports, indexes). */
#ifndef BRACED_ASCII_H
#define BRACED_ASCII_H

#include <stddef.h>
#include <stdint.h>

/* The value of the hex digit c (either case), or -1. */
int ascii_hex_digit(int c);

/* Reads the decimal digits at s, as many as there are, into *ret_value and
 * their count into *ret_len. Strict where strtol is not: no sign, no
 * space, at least one digit, at most max. Returns 0, or -EINVAL (no digit,
 * a value over max); the outputs are untouched on failure. */
int ascii_parse_uint(const char *s, uint64_t max, uint64_t *ret_value, size_t *ret_len);

#endif

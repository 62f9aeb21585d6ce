/* UTF-8 (RFC 3629): the one decoder, a character count and a cut at a
 * character boundary. Pure; no allocation. */
#ifndef BRACED_UTF8_H
#define BRACED_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the character at s (len >= 1 bytes, borrowed) into *ret_cp.
 * Returns its length in bytes (1-4), or 0, leaving *ret_cp alone, for a
 * sequence that is not valid UTF-8: a stray
 * continuation byte, an overlong form, a surrogate, a code point above
 * U+10FFFF, or a sequence cut short by len. */
size_t utf8_decode(const char *s, size_t len, uint32_t *ret_cp);

/* The characters in s[0..len): every byte but continuation bytes (10xxxxxx)
 * counts, so each byte of an invalid sequence that is not a continuation
 * byte counts as one. */
size_t utf8_count(const char *s, size_t len);

/* The length of the longest prefix of s[0..len) of at most max bytes that
 * does not end inside a sequence: len itself when it fits, else max moved
 * back over at most three continuation bytes (the most a sequence has). */
size_t utf8_cut(const char *s, size_t len, size_t max);

#endif

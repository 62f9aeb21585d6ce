/* What every fuzz target shares: libFuzzer's entry points (declared here so
 * the targets build with -Wmissing-prototypes) and a copy of the input as a
 * C string for the parsers that take one. */
#ifndef BRACED_FUZZ_H
#define BRACED_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Runs one input; returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, once before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input up to its first NUL, NUL-terminated, in a buffer of exactly that
 * size so AddressSanitizer sees any read past the end. Returned to the
 * caller (free); NULL on OOM. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	size_t len = strnlen((const char *)data, size);
	char *s = malloc(len + 1);

	if (s) {
		memcpy(s, data, len);
		s[len] = '\0';
	}
	return s;
}

/* The input's lines (cut at '\n', the last one unterminated), at most max,
 * each copied into a buffer of exactly its size so AddressSanitizer sees a
 * read past a line's end: ret_lines[i] (to free, with fuzz_free_lines) and
 * ret_lens[i]. Returns how many; fewer than there are on OOM. */
static inline size_t fuzz_lines(const uint8_t *data, size_t size, char **ret_lines,
				size_t *ret_lens, size_t max)
{
	const char *p = (const char *)data, *end = p + size;
	size_t n = 0;

	while (p < end && n < max) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((eol ? eol : end) - p);

		ret_lines[n] = malloc(len ? len : 1);
		if (!ret_lines[n])
			break;
		memcpy(ret_lines[n], p, len);
		ret_lens[n++] = len;
		p = eol ? eol + 1 : end;
	}
	return n;
}

static inline void fuzz_free_lines(char **lines, size_t n)
{
	while (n > 0)
		free(lines[--n]);
}

#endif

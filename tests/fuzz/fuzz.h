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

#endif

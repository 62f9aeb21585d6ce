/* Request paths as routes see them: one normal spelling per path, so that
 * `/v1//weather/`, `/v1/%77eather` and `/v1/weather;x` cannot slip past a
 * route written `/v1/weather`. Pure string work, no I/O; the bytes sent
 * upstream are never rewritten, only matched in this form. */
#ifndef BRACED_PATH_H
#define BRACED_PATH_H

#include <stddef.h>

/* Normalizes the path raw (len bytes, not NUL-terminated, the part before
 * any '?'; empty or starting with '/') for route matching:
 * - every %XX is decoded (an upstream may decode `%3A` to `:`), except
 *   %25 ('%'), %3B (';'), %3F ('?') and %23 ('#'), which are kept with their
 *   hex digits upper-cased, so the result reads the same when normalized
 *   again;
 * - empty segments (repeated slashes, a trailing slash) are dropped; a path
 *   of only slashes is "/", and an empty raw stays empty;
 * - each segment is cut at its first ';' (parameters are not matched);
 * - with fold_case, ASCII letters are lower-cased (not the hex digits).
 * Refuses with -EINVAL: a raw not starting with '/', a '%' without two hex
 * digits, %2F, %5C, %00, a raw '\' or NUL, and a "." or ".." segment after
 * the rules above. Returns -ENOSPC when out (outsize bytes) cannot hold the
 * result and its NUL; len + 1 bytes always suffice. On success writes the
 * NUL-terminated result to out (the caller's) and its length to *ret_len;
 * on failure *ret_len is untouched and out holds garbage. */
int path_normalize(const char *raw, size_t len, int fold_case, char *out, size_t outsize,
		   size_t *ret_len);

#endif

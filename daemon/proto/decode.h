/* Content codings undone for validation: gzip (x-gzip) and deflate bodies
 * decoded with zlib into a capped buffer, so a schema can see what an
 * encoded answer says. Pure: no I/O; the caller keeps the encoded bytes. */
#ifndef BRACED_DECODE_H
#define BRACED_DECODE_H

#include <stddef.h>

#include "strbuf.h"

/* Most codings one Content-Encoding list may stack. */
#define DECODE_MAX_CODINGS 8

/* 1 when the Content-Encoding value codings (borrowed, NUL-terminated; NULL
 * is no header) asks for no decoding: empty, or only "identity" members. */
int decode_is_identity(const char *codings);

/* Decodes inlen bytes of in (borrowed), encoded with the one content coding
 * named by coding (borrowed, case-insensitive: "gzip" or "x-gzip" (RFC 1952,
 * concatenated members too), "deflate" (zlib-wrapped per RFC 9110, raw
 * RFC 1951 data accepted as well) or "identity"), appending the result to
 * out (caller-owned; its max must be at least out->len + max). Never
 * appends more than max bytes: stops inflating there. Returns 0; -ENOTSUP
 * for an unknown coding; -EINVAL for data that is corrupt, truncated or
 * followed by garbage; -EFBIG when the decoded data passes max; -ENOMEM.
 * Every error leaves a lower-case message in err; on error out holds an
 * unspecified prefix of the output. */
int decode_coding(const char *coding, const void *in, size_t inlen, size_t max, struct strbuf *out,
		  char *err, size_t errlen);

/* Decodes a body labelled with the Content-Encoding value codings (borrowed:
 * a comma-separated list, applied in order, so undone last to first; empty
 * members and "identity" are skipped). Every member is checked before any
 * data is decoded. out (caller-owned, empty, with a max of at least max)
 * receives the decoded body, never more than max bytes; every intermediate
 * stage is held to max too. Returns 0; -ENOTSUP naming the first unknown
 * coding; -E2BIG for more than DECODE_MAX_CODINGS codings; otherwise the
 * errors of decode_coding. Messages in err as there. */
int decode_body(const char *codings, const void *in, size_t inlen, size_t max, struct strbuf *out,
		char *err, size_t errlen);

#endif

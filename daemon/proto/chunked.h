/* A strict decoder of a chunked upstream body (RFC 9112 7.1), for the
 * bytes libcurl hands over undecoded: libcurl's own chunk parser takes a
 * bare LF, a bare CR in an extension or a space after the size (SPEC 3: an
 * upstream answer with such faults is malformed, never relayed).
 *
 * Accepted: 1 to 16 hex digits of size (at most 2^63-1), extensions as
 * `;name` or `;name=value` with tokens or quoted strings and no white
 * space, CRLF line ends only, data exactly as long as its size followed by
 * CRLF, and trailer lines `name: value` (a token name and its colon, no
 * control byte but tab in the value) until an empty line. Pure: no I/O. */
#ifndef BRACED_CHUNKED_H
#define BRACED_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of extensions on one chunk line, and of all trailer lines. */
#define CHUNKED_EXTENSION_MAX 4096
#define CHUNKED_TRAILERS_MAX (64 * 1024)

struct chunked {
	int state;       /* where in the grammar the next byte is */
	uint64_t left;   /* CK_DATA: data bytes of this chunk still to come */
	unsigned digits; /* hex digits of the size so far */
	size_t ext;      /* extension bytes of this chunk line */
	size_t trailers; /* trailer bytes so far */
	int done;        /* the body ended (its trailers' empty line came) */
	const char *why; /* static: what was malformed */
};

/* Ready for a body's first byte. */
void chunked_init(struct chunked *c);

/* Decodes the n bytes at in, writing the data they carry to out (room for
 * n bytes: data is never longer than its framing) and its length to
 * *ret_out. Returns the bytes of in consumed: all of them, or fewer once
 * the body ended (c->done; what follows belongs to no body). -EPROTO when
 * the framing is malformed (c->why says how); the decoder is then spent.
 * The state is plain data: a copy of *c taken before a call may be put
 * back to decode the same bytes again. */
long chunked_decode(struct chunked *c, const char *in, size_t n, char *out, size_t *ret_out);

#endif

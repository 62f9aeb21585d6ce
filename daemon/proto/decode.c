/* Content codings undone for validation with zlib: one coding at a time
 * into a capped strbuf, and Content-Encoding lists undone last to first.
 * Output is produced in small chunks and checked against the cap before it
 * is kept, so a compression bomb costs at most the cap. */
#include "decode.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* Bytes inflated per zlib call before they are checked and kept. */
#define DECODE_CHUNK 16384
/* Longest coding name kept from a list; longer names are unknown anyway. */
#define DECODE_MAX_NAME 32

enum coding {
	CODING_IDENTITY,
	CODING_GZIP,
	CODING_DEFLATE,
	CODING_UNKNOWN,
};

static enum coding coding_of(const char *name, size_t len)
{
	if (len == 8 && strncasecmp(name, "identity", 8) == 0)
		return CODING_IDENTITY;
	if ((len == 4 && strncasecmp(name, "gzip", 4) == 0) ||
	    (len == 6 && strncasecmp(name, "x-gzip", 6) == 0))
		return CODING_GZIP;
	if (len == 7 && strncasecmp(name, "deflate", 7) == 0)
		return CODING_DEFLATE;
	return CODING_UNKNOWN;
}

/* 1 when the first two bytes are a zlib header (RFC 1950 2.2): method 8, a
 * window of at most 32 KiB, and a check that makes them a multiple of 31. */
static int looks_zlib(const unsigned char *in, size_t inlen)
{
	return inlen >= 2 && (in[0] & 0x0f) == 8 && (in[0] >> 4) <= 7 &&
	       ((unsigned)in[0] << 8 | in[1]) % 31 == 0;
}

/* Inflates in with zlib's windowBits wbits, appending at most max bytes to
 * out. With gzip set, further gzip members after the first are decoded too
 * (RFC 1952 2.2). Returns as decode_coding. */
static int inflate_all(const unsigned char *in, size_t inlen, int wbits, int gzip, size_t max,
		       struct strbuf *out, const char *what, char *err, size_t errlen)
{
	unsigned char chunk[DECODE_CHUNK];
	size_t left = inlen, kept = 0;
	z_stream zs;
	int zr, ret;

	memset(&zs, 0, sizeof(zs));
	zr = inflateInit2(&zs, wbits);
	if (zr != Z_OK) {
		snprintf(err, errlen, "%s: cannot start zlib", what);
		return zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
	}
	zs.next_in = (Bytef *)in;
	for (;;) {
		size_t n;

		/* zlib counts input in uInt; a larger body is fed in slices. */
		if (zs.avail_in == 0 && left > 0) {
			zs.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
			left -= zs.avail_in;
		}
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		zr = inflate(&zs, Z_NO_FLUSH);
		n = sizeof(chunk) - zs.avail_out;
		if (n > max - kept) {
			snprintf(err, errlen, "%s: decoded body over %zu bytes", what, max);
			ret = -EFBIG;
			break;
		}
		if (n > 0) {
			strbuf_add(out, chunk, n);
			if (out->failed) {
				snprintf(err, errlen, "%s: out of memory", what);
				ret = -ENOMEM;
				break;
			}
			kept += n;
		}
		if (zr == Z_STREAM_END) {
			int more = zs.avail_in > 0 || left > 0;

			if (more && gzip && zs.avail_in >= 2 && zs.next_in[0] == 0x1f &&
			    zs.next_in[1] == 0x8b) {
				inflateReset(&zs);
				continue;
			}
			if (more) {
				snprintf(err, errlen, "%s: data after the end of the stream", what);
				ret = -EINVAL;
			} else {
				ret = 0;
			}
			break;
		}
		if (zr == Z_OK)
			continue;
		if (zr == Z_MEM_ERROR) {
			snprintf(err, errlen, "%s: out of memory", what);
			ret = -ENOMEM;
		} else if (zr == Z_BUF_ERROR) {
			/* No progress with room to write: the input ran out early. */
			snprintf(err, errlen, "%s: truncated data", what);
			ret = -EINVAL;
		} else if (zr == Z_NEED_DICT) {
			snprintf(err, errlen, "%s: needs a preset dictionary", what);
			ret = -EINVAL;
		} else {
			snprintf(err, errlen, "%s: invalid data (%s)", what,
				 zs.msg ? zs.msg : "corrupt stream");
			ret = -EINVAL;
		}
		break;
	}
	inflateEnd(&zs);
	return ret;
}

static int decode_one(enum coding c, const char *name, const void *in, size_t inlen, size_t max,
		      struct strbuf *out, char *err, size_t errlen)
{
	size_t start = out->len;
	char first[160];
	int ret;

	switch (c) {
	case CODING_IDENTITY:
		if (inlen > max) {
			snprintf(err, errlen, "identity: body over %zu bytes", max);
			return -EFBIG;
		}
		strbuf_add(out, in, inlen);
		if (out->failed) {
			snprintf(err, errlen, "identity: out of memory");
			return -ENOMEM;
		}
		return 0;
	case CODING_GZIP:
		return inflate_all(in, inlen, 16 + MAX_WBITS, 1, max, out, "gzip", err, errlen);
	case CODING_DEFLATE:
		if (!looks_zlib(in, inlen))
			return inflate_all(in, inlen, -MAX_WBITS, 0, max, out, "deflate", err,
					   errlen);
		ret = inflate_all(in, inlen, MAX_WBITS, 0, max, out, "deflate", err, errlen);
		if (ret != -EINVAL)
			return ret;
		/* Raw deflate data can start like a zlib header by chance. */
		snprintf(first, sizeof(first), "%s", err);
		strbuf_truncate(out, start);
		ret = inflate_all(in, inlen, -MAX_WBITS, 0, max, out, "deflate", err, errlen);
		if (ret == -EINVAL)
			snprintf(err, errlen, "%s", first);
		return ret;
	case CODING_UNKNOWN:
		break;
	}
	snprintf(err, errlen, "unknown content coding '%s'", name);
	return -ENOTSUP;
}

int decode_is_identity(const char *codings)
{
	const char *p = codings;

	while (p && *p) {
		size_t skip = strspn(p, " \t,"), len;

		p += skip;
		len = strcspn(p, ",");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > 0 && coding_of(p, len) != CODING_IDENTITY)
			return 0;
		p += strcspn(p, ",");
	}
	return 1;
}

int decode_coding(const char *coding, const void *in, size_t inlen, size_t max, struct strbuf *out,
		  char *err, size_t errlen)
{
	return decode_one(coding_of(coding, strlen(coding)), coding, in, inlen, max, out, err,
			  errlen);
}

int decode_body(const char *codings, const void *in, size_t inlen, size_t max, struct strbuf *out,
		char *err, size_t errlen)
{
	enum coding list[DECODE_MAX_CODINGS];
	struct strbuf stage[2];
	const char *p = codings;
	const void *data = in;
	size_t n = 0, len = inlen;
	int ret = 0;

	while (p && *p) {
		size_t nlen;
		enum coding c;

		p += strspn(p, " \t,");
		nlen = strcspn(p, ",");
		while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
			nlen--;
		if (nlen == 0)
			continue;
		c = coding_of(p, nlen);
		if (c == CODING_UNKNOWN) {
			int shown = nlen > DECODE_MAX_NAME ? DECODE_MAX_NAME : (int)nlen;

			snprintf(err, errlen, "unknown content coding '%.*s%s'", shown, p,
				 nlen > DECODE_MAX_NAME ? "..." : "");
			return -ENOTSUP;
		}
		p += strcspn(p, ",");
		if (c == CODING_IDENTITY)
			continue;
		if (n == DECODE_MAX_CODINGS) {
			snprintf(err, errlen, "more than %d content codings", DECODE_MAX_CODINGS);
			return -E2BIG;
		}
		list[n++] = c;
	}
	if (n == 0)
		return decode_one(CODING_IDENTITY, "identity", in, inlen, max, out, err, errlen);
	strbuf_init(&stage[0], max);
	strbuf_init(&stage[1], max);
	/* The last coding applied is the first undone; the final one lands in out. */
	for (size_t i = n; i-- > 0;) {
		struct strbuf *to = i == 0 ? out : &stage[i % 2];

		strbuf_truncate(to, 0);
		ret = decode_one(list[i], list[i] == CODING_GZIP ? "gzip" : "deflate", data, len,
				 max, to, err, errlen);
		if (ret < 0)
			break;
		data = to->data;
		len = to->len;
	}
	strbuf_release(&stage[0]);
	strbuf_release(&stage[1]);
	return ret;
}

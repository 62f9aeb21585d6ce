/* The strict chunked decoder (chunked.h): one byte at a time through the
 * grammar, data copied out in runs. */
#include "chunked.h"

#include <errno.h>
#include <string.h>

#include "ascii.h"
#include "headers.h"

enum {
	CK_SIZE,          /* hex digits of the size */
	CK_EXT,           /* after ';': an extension name, '=' or its value */
	CK_EXT_QUOTED,    /* inside a quoted extension value */
	CK_EXT_ESCAPE,    /* after a backslash in a quoted value */
	CK_SIZE_LF,       /* the CR of the size line came: its LF */
	CK_DATA,          /* data bytes (left of them) */
	CK_DATA_CR,       /* the CR after the data */
	CK_DATA_LF,       /* its LF */
	CK_TRAILER_START, /* the start of a trailer line, or the final CR */
	CK_TRAILER_NAME,  /* the name of a trailer line, up to its colon */
	CK_TRAILER,       /* the value of a trailer line */
	CK_TRAILER_LF,    /* the LF of a trailer line */
	CK_END_LF,        /* the LF of the final empty line */
	CK_DONE,
};

void chunked_init(struct chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CK_SIZE;
}

static long fail(struct chunked *c, const char *why)
{
	c->why = why;
	return -EPROTO;
}

/* A byte of a token (RFC 9110 5.6.2). */
static int tchar(unsigned char b)
{
	char s[1] = { (char)b };

	return headers_name_ok(s, 1);
}

/* One byte of the size line, its extensions or its CR. Returns 0 or -EPROTO. */
static long size_line(struct chunked *c, unsigned char b)
{
	int h;

	switch (c->state) {
	case CK_SIZE:
		if ((h = ascii_hex_digit(b)) >= 0) {
			if (c->digits == 16 || c->left > (UINT64_C(0x7fffffffffffffff) >> 4))
				return fail(c, "a chunk size that overflows");
			c->left = (c->left << 4) | (uint64_t)h;
			c->digits++;
			return 0;
		}
		if (!c->digits)
			return fail(c, "a chunk size without hex digits");
		if (b == ';') {
			c->state = CK_EXT;
			return 0;
		}
		if (b == '\r') {
			c->state = CK_SIZE_LF;
			return 0;
		}
		return fail(c, "a byte after a chunk size that is not ';' or CR");
	case CK_EXT:
		if (b == '\r') {
			c->state = CK_SIZE_LF;
			return 0;
		}
		if (b == '"') {
			c->state = CK_EXT_QUOTED;
			return 0;
		}
		if (b == ';' || b == '=' || tchar(b))
			return 0;
		return fail(c, "a byte in a chunk extension that is not a token");
	case CK_EXT_QUOTED:
		if (b == '"')
			c->state = CK_EXT;
		else if (b == '\\')
			c->state = CK_EXT_ESCAPE;
		else if ((b < 0x20 && b != '\t') || b == 0x7f)
			return fail(c, "a control byte in a quoted chunk extension");
		return 0;
	case CK_EXT_ESCAPE:
		if ((b < 0x20 && b != '\t') || b == 0x7f)
			return fail(c, "a control byte in a quoted chunk extension");
		c->state = CK_EXT_QUOTED;
		return 0;
	default:
		return fail(c, "a chunked decoder in no state");
	}
}

long chunked_decode(struct chunked *c, const char *in, size_t n, char *out, size_t *ret_out)
{
	size_t i = 0, o = 0;

	*ret_out = 0;
	if (c->why)
		return -EPROTO;
	while (i < n && c->state != CK_DONE) {
		unsigned char b = (unsigned char)in[i];

		switch (c->state) {
		case CK_DATA: {
			size_t run = n - i < c->left ? n - i : (size_t)c->left;

			memcpy(out + o, in + i, run);
			o += run;
			i += run;
			c->left -= run;
			if (!c->left)
				c->state = CK_DATA_CR;
			continue;
		}
		case CK_SIZE_LF:
			if (b != '\n')
				return fail(c, "a chunk size line ending in a bare CR");
			c->ext = 0;
			c->digits = 0;
			c->state = c->left ? CK_DATA : CK_TRAILER_START;
			break;
		case CK_DATA_CR:
			if (b != '\r')
				return fail(
				    c, "chunk data longer than its size, or not ended by CRLF");
			c->state = CK_DATA_LF;
			break;
		case CK_DATA_LF:
			if (b != '\n')
				return fail(c, "chunk data ended by a bare CR");
			c->state = CK_SIZE;
			break;
		case CK_TRAILER_START:
			if (b == '\r') {
				c->state = CK_END_LF;
				break;
			}
			if (!tchar(b))
				return fail(c, "a trailer line that does not start with a name");
			c->state = CK_TRAILER_NAME;
			break;
		case CK_TRAILER_NAME:
			if (b == ':')
				c->state = CK_TRAILER;
			else if (!tchar(b))
				return fail(c, "a trailer name that is not a token");
			break;
		case CK_TRAILER:
			if (b == '\r')
				c->state = CK_TRAILER_LF;
			else if ((b < 0x20 && b != '\t') || b == 0x7f)
				return fail(c, "a control byte in a trailer line");
			break;
		case CK_TRAILER_LF:
			if (b != '\n')
				return fail(c, "a trailer line ending in a bare CR");
			c->state = CK_TRAILER_START;
			break;
		case CK_END_LF:
			if (b != '\n')
				return fail(c, "the chunked body's last line ending in a bare CR");
			c->state = CK_DONE;
			c->done = 1;
			break;
		default:
			if (size_line(c, b) < 0)
				return -EPROTO;
			if (c->state != CK_SIZE && ++c->ext > CHUNKED_EXTENSION_MAX)
				return fail(c, "chunk extensions too long");
			break;
		}
		if (c->state >= CK_TRAILER_START && c->state <= CK_TRAILER_LF &&
		    ++c->trailers > CHUNKED_TRAILERS_MAX)
			return fail(c, "trailers too long");
		i++;
	}
	*ret_out = o;
	return (long)i;
}

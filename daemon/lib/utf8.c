/* The UTF-8 decoder shared by the JSON string writer (strbuf) and the
 * schema formats, and the byte-level count and cut the schema validator and
 * its messages use. */
#include "utf8.h"

static int is_continuation(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

size_t utf8_decode(const char *str, size_t len, uint32_t *ret_cp)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		goto invalid;
	if (n > len)
		goto invalid;
	for (i = 1; i < n; i++) {
		if (!is_continuation(s[i]))
			goto invalid;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		goto invalid;
	*ret_cp = cp;
	return n;
invalid:
	return 0;
}

size_t utf8_count(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += !is_continuation((unsigned char)s[i]);
	return n;
}

size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	/* A sequence has at most three continuation bytes: past them the
	 * text is not UTF-8 and any cut will do. */
	for (int back = 0; back < 3 && max > 0 && is_continuation((unsigned char)s[max]); back++)
		max--;
	return max;
}

/* Character classes without locale (see ascii.h). */
#include "ascii.h"

#include <errno.h>

int ascii_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ascii_pct_byte(const char *s, size_t len)
{
	int hi, lo;

	if (len < 3 || s[0] != '%')
		return -1;
	hi = ascii_hex_digit((unsigned char)s[1]);
	lo = hi < 0 ? -1 : ascii_hex_digit((unsigned char)s[2]);
	return lo < 0 ? -1 : hi * 16 + lo;
}

int ascii_pct_decode(const char *s, size_t len, char *out, unsigned flags, size_t *ret_len)
{
	size_t i, o = 0;
	int c;

	for (i = 0; i < len; i++) {
		if (s[i] == '+' && (flags & ASCII_PCT_PLUS_SPACE)) {
			out[o++] = ' ';
			continue;
		}
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		c = ascii_pct_byte(s + i, len - i);
		if (c < 0 && (flags & ASCII_PCT_KEEP_MALFORMED)) {
			out[o++] = s[i];
			continue;
		}
		if (c < 0 || (c == 0 && (flags & ASCII_PCT_REFUSE_NUL)))
			return -EINVAL;
		out[o++] = (char)c;
		i += 2;
	}
	out[o] = '\0';
	*ret_len = o;
	return 0;
}

int ascii_parse_uint(const char *s, uint64_t max, uint64_t *ret_value, size_t *ret_len)
{
	uint64_t v = 0;
	size_t n = 0;

	for (; s[n] >= '0' && s[n] <= '9'; n++) {
		v = v * 10 + (uint64_t)(s[n] - '0');
		if (v > max)
			return -EINVAL;
	}
	if (n == 0)
		return -EINVAL;
	*ret_value = v;
	*ret_len = n;
	return 0;
}

char *ascii_put_uint(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* Route-matching form of request paths (see path.h). Matching a route on raw
 * bytes let other spellings of the same resource reach the upstream without
 * the route's schema; everything that can spell a path twice is folded here,
 * and what cannot be folded safely is refused. */
#include "path.h"

#include "ascii.h"

#include <errno.h>
#include <stdint.h>

/* Escapes that stay escaped: decoded, '%', ';', '?' and '#' would change
 * how the path itself is read ('/', '\\' and NUL are refused outright).
 * Every other %XX is decoded: an upstream that decodes its paths reads
 * `items%3Abatch` as `items:batch`, so a route must too. */
static int keep_encoded(unsigned char c)
{
	return c == '%' || c == ';' || c == '?' || c == '#';
}

static char fold(unsigned char c, int fold_case)
{
	return (char)(fold_case && c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/* Appends n bytes of a segment, preceded by its slash when they are its
 * first (*lead): an empty segment leaves no trace, so the output never needs
 * room for a slash that is later dropped. -ENOSPC when the bytes and a final
 * NUL do not fit. */
static int put(char *out, size_t outsize, size_t *o, int *lead, const char *s, size_t n)
{
	if (outsize - *o < n + (size_t)*lead + 1)
		return -ENOSPC;
	if (*lead)
		out[(*o)++] = '/';
	*lead = 0;
	for (size_t i = 0; i < n; i++)
		out[(*o)++] = s[i];
	return 0;
}

/* Appends the segment raw[0..len) in normal form, with its slash unless it
 * comes out empty. The parameters after ';' are still checked: a malformed
 * or forbidden escape there is as suspicious as anywhere else. */
static int put_segment(const char *raw, size_t len, int fold_case, char *out, size_t outsize,
		       size_t *o)
{
	int param = 0, lead = 1, r = 0;

	for (size_t i = 0; i < len && r == 0; i++) {
		unsigned char c = (unsigned char)raw[i];
		char enc[3];
		int byte;

		if (c == '\0' || c == '\\')
			return -EINVAL;
		if (c == ';')
			param = 1;
		if (c != '%') {
			if (!param)
				r = put(out, outsize, o, &lead, (char[]){ fold(c, fold_case) }, 1);
			continue;
		}
		byte = ascii_pct_byte(raw + i, len - i);
		if (byte < 0)
			return -EINVAL;
		c = (unsigned char)byte;
		i += 2;
		/* An encoded separator would make one segment look like two to
		 * the upstream and like one to us. */
		if (c == '/' || c == '\\' || c == '\0')
			return -EINVAL;
		if (param)
			continue;
		if (!keep_encoded(c)) {
			r = put(out, outsize, o, &lead, (char[]){ fold(c, fold_case) }, 1);
		} else {
			enc[0] = '%';
			enc[1] = "0123456789ABCDEF"[c >> 4];
			enc[2] = "0123456789ABCDEF"[c & 15];
			r = put(out, outsize, o, &lead, enc, 3);
		}
	}
	return r;
}

int path_normalize(const char *raw, size_t len, int fold_case, char *out, size_t outsize,
		   size_t *ret_len)
{
	size_t o = 0, i = 0;

	if (len > 0 && raw[0] != '/')
		return -EINVAL;
	if (outsize < 1)
		return -ENOSPC;
	while (i < len) {
		size_t start = i + 1, end = start, slash = o, n;
		int r;

		while (end < len && raw[end] != '/')
			end++;
		r = put_segment(raw + start, end - start, fold_case, out, outsize, &o);
		if (r < 0)
			return r;
		n = o > slash ? o - slash - 1 : 0;
		/* Only reachable through %2e or ".;x": the front refuses the
		 * plain spellings before routing. */
		if ((n == 1 || n == 2) && out[slash + 1] == '.' && out[slash + n] == '.')
			return -EINVAL;
		i = end;
	}
	if (o == 0 && len > 0) {
		/* Only slashes: the root. */
		if (outsize < 2)
			return -ENOSPC;
		out[o++] = '/';
	}
	out[o] = '\0';
	*ret_len = o;
	return 0;
}

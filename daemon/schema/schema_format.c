/* Format assertions for JSON Schema: dates and times (RFC 3339), e-mail
 * addresses, host names (RFC 1123, IDNA 2008 through libidn2), IP
 * addresses, URIs and IRIs (RFC 3986/3987), URI templates (RFC 6570), JSON
 * pointers, UUIDs, durations and ECMA-262 regexes; and base64. Each check
 * reads the string once, left to right, and keeps its state on the stack. */
#include "schema_format.h"
#include "ascii.h"
#include "utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema_regex.h"

/* RFC 1034/1123 limits on a host name and on one of its labels, and
 * RFC 5321's on the local part of a mailbox. */
#define HOSTNAME_MAX 253
#define LABEL_MAX 63
#define LOCAL_PART_MAX 64
/* Longest IPv6 text, a zone excluded: eight groups of four digits and an
 * IPv4 tail ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"). */
#define IPV6_TEXT_MAX 45

/* ---- characters -------------------------------------------------------- */

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(int c)
{
	return ascii_hex_digit(c) >= 0;
}

static int is_ascii(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

/* Not a character: what utf8_next() gives for bytes that are not UTF-8 (a
 * percent-decoded query value may hold any); every code-point check refuses
 * it. */
#define NOT_A_CHARACTER UINT32_MAX

/* Decodes the character at s[*i] (len is where s ends), advances *i past it
 * (one byte when it is not UTF-8) and returns its code point, or
 * NOT_A_CHARACTER. */
static uint32_t utf8_next(const char *s, size_t len, size_t *i)
{
	uint32_t cp;
	size_t n = utf8_decode(s + *i, len - *i, &cp);

	*i += n ? n : 1;
	return n ? cp : NOT_A_CHARACTER;
}

/* RFC 3987's ucschar, and iprivate (only in a query). */
static int is_ucschar(uint32_t cp)
{
	if ((cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xf900 && cp <= 0xfdcf) ||
	    (cp >= 0xfdf0 && cp <= 0xffef))
		return 1;
	return cp >= 0x10000 && cp <= 0xefffd && (cp & 0xfffe) != 0xfffe;
}

static int is_iprivate(uint32_t cp)
{
	return (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xf0000 && cp <= 0xffffd) ||
	       (cp >= 0x100000 && cp <= 0x10fffd);
}

/* ---- dates and times (RFC 3339) ---------------------------------------- */

/* Reads exactly n digits at s[*i] into *ret. */
static int digits(const char *s, size_t len, size_t *i, int n, int *ret)
{
	int v = 0, k;

	if (*i + (size_t)n > len)
		return 0;
	for (k = 0; k < n; k++) {
		if (!is_digit(s[*i + k]))
			return 0;
		v = v * 10 + (s[*i + k] - '0');
	}
	*i += (size_t)n;
	*ret = v;
	return 1;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return 0;
	(*i)++;
	return 1;
}

static int full_date(const char *s, size_t len, size_t *i)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d, leap;

	if (!digits(s, len, i, 4, &y) || !expect(s, len, i, '-') || !digits(s, len, i, 2, &m) ||
	    !expect(s, len, i, '-') || !digits(s, len, i, 2, &d))
		return 0;
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return 0;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m != 2 || d != 29 || leap;
}

/* full-time: partial-time and an offset; a leap second must fall on
 * 23:59:60 UTC. */
static int full_time(const char *s, size_t len, size_t *i)
{
	int h, m, sec, oh = 0, om = 0, sign = 0, utc;

	if (!digits(s, len, i, 2, &h) || !expect(s, len, i, ':') || !digits(s, len, i, 2, &m) ||
	    !expect(s, len, i, ':') || !digits(s, len, i, 2, &sec))
		return 0;
	if (h > 23 || m > 59 || sec > 60)
		return 0;
	if (*i < len && s[*i] == '.') {
		(*i)++;
		if (*i >= len || !is_digit(s[*i]))
			return 0;
		while (*i < len && is_digit(s[*i]))
			(*i)++;
	}
	if (*i >= len)
		return 0;
	if (s[*i] == 'Z' || s[*i] == 'z') {
		(*i)++;
	} else if (s[*i] == '+' || s[*i] == '-') {
		sign = s[*i] == '-' ? -1 : 1;
		(*i)++;
		if (!digits(s, len, i, 2, &oh) || !expect(s, len, i, ':') ||
		    !digits(s, len, i, 2, &om) || oh > 23 || om > 59)
			return 0;
	} else {
		return 0;
	}
	if (sec == 60) {
		utc = ((h * 60 + m - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
		return utc == 23 * 60 + 59;
	}
	return 1;
}

static int check_date_time(const char *s, size_t len)
{
	size_t i = 0;

	if (!full_date(s, len, &i) || i >= len || (s[i] != 'T' && s[i] != 't'))
		return 0;
	i++;
	return full_time(s, len, &i) && i == len;
}

static int check_date(const char *s, size_t len)
{
	size_t i = 0;

	return full_date(s, len, &i) && i == len;
}

static int check_time(const char *s, size_t len)
{
	size_t i = 0;

	return full_time(s, len, &i) && i == len;
}

/* One "<digits>[.<digits>]<unit>" of a duration: the unit letter, or 0. A
 * fraction is accepted on the last number only (Pydantic writes
 * "PT0.5S"); *ret_frac says there was one. */
static char duration_part(const char *s, size_t len, size_t *i, int *ret_frac)
{
	size_t start = *i;

	while (*i < len && is_digit(s[*i]))
		(*i)++;
	if (*i == start)
		return 0;
	*ret_frac = 0;
	if (*i < len && (s[*i] == '.' || s[*i] == ',')) {
		(*i)++;
		start = *i;
		while (*i < len && is_digit(s[*i]))
			(*i)++;
		if (*i == start)
			return 0;
		*ret_frac = 1;
	}
	return *i < len ? s[(*i)++] : 0;
}

/* RFC 3339 appendix A: P then Y, M, D in order (each optional), then T and
 * H, M, S in order; or P and weeks alone. At least one part; a T has at
 * least one part after it. */
static int check_duration(const char *s, size_t len)
{
	static const char date_units[] = "YMD", time_units[] = "HMS";
	const char *units = date_units, *u;
	size_t i = 1, next = 0;
	int parts = 0, in_time = 0, frac = 0;
	char c;

	if (len < 3 || s[0] != 'P')
		return 0;
	while (i < len) {
		if (frac)
			return 0;
		if (s[i] == 'T') {
			if (in_time)
				return 0;
			in_time = 1;
			units = time_units;
			next = 0;
			i++;
			if (i >= len)
				return 0;
			continue;
		}
		c = duration_part(s, len, &i, &frac);
		if (c == 'W' && !in_time && parts == 0 && i == len)
			return 1;
		u = c ? strchr(units + next, c) : NULL;
		if (!u)
			return 0;
		next = (size_t)(u - units) + 1;
		parts++;
		if (frac && (c != 'S' || i != len))
			return 0;
	}
	return parts > 0 && s[len - 1] != 'T';
}

/* ---- host names and addresses ------------------------------------------ */

/* RFC 1123: dot-separated labels of letters, digits and inner hyphens. */
static int check_hostname(const char *s, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > HOSTNAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > LABEL_MAX)
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

/* IDNA 2008: libidn2 maps (TR46 non-transitional), checks every label and
 * converts it to an A-label; the result must then be a hostname. ASCII
 * input is a hostname already, and costs no allocation. */
static int check_idn_hostname(const char *s, size_t len)
{
	char buf[HOSTNAME_MAX * 4 + 1];
	char *out = NULL;
	int r, ok;

	if (is_ascii(s, len))
		return check_hostname(s, len);
	if (len >= sizeof(buf) || memchr(s, '\0', len))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	r = idn2_lookup_u8((const uint8_t *)buf, (uint8_t **)&out, IDN2_NONTRANSITIONAL);
	if (r == IDN2_MALLOC)
		return -ENOMEM;
	ok = r == IDN2_OK && check_hostname(out, strlen(out));
	idn2_free(out);
	return ok;
}

/* Dotted quad of decimal numbers 0-255 without leading zeros. */
static int check_ipv4(const char *s, size_t len)
{
	size_t i = 0, start;
	int part, v;

	for (part = 0; part < 4; part++) {
		if (part && !expect(s, len, &i, '.'))
			return 0;
		start = i;
		v = 0;
		while (i < len && is_digit(s[i]) && i - start < 3)
			v = v * 10 + (s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return 0;
	}
	return i == len;
}

static int check_ipv6(const char *s, size_t len)
{
	char buf[IPV6_TEXT_MAX + 1];
	unsigned char addr[16];
	size_t i;

	if (len > IPV6_TEXT_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
			return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, addr) == 1;
}

/* ---- e-mail addresses (RFC 5321, RFC 6531) ----------------------------- */

static int is_atext(int c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* dot-atom or quoted-string; utf8 allows RFC 6531's non-ASCII atext. */
static int local_part(const char *s, size_t len, int utf8)
{
	size_t i;

	if (len == 0)
		return 0;
	if (s[0] == '"') {
		if (len < 2 || s[len - 1] != '"' || len - 2 > LOCAL_PART_MAX)
			return 0;
		for (i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {
				if (++i >= len - 1 || (unsigned char)s[i] < 0x20)
					return 0;
			} else if (c == '"' || (c < 0x20 && c != '\t') || c == 0x7f ||
				   (c >= 0x80 && !utf8)) {
				return 0;
			}
		}
		return 1;
	}
	if (len > LOCAL_PART_MAX || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.' && s[i + 1] == '.')
			return 0;
		if (c != '.' && !is_atext(c) && !(utf8 && c >= 0x80))
			return 0;
	}
	return 1;
}

/* "[IPv4]" or "[IPv6:address]" */
static int address_literal(const char *s, size_t len)
{
	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return 0;
	if (len > 7 && !strncmp(s + 1, "IPv6:", 5))
		return check_ipv6(s + 6, len - 7);
	return check_ipv4(s + 1, len - 2);
}

static int check_email(const char *s, size_t len, int idn)
{
	const char *at = NULL;
	size_t i, dlen;

	/* The domain never holds '@': the last one ends the local part,
	 * which may quote one. */
	for (i = len; i > 0; i--)
		if (s[i - 1] == '@') {
			at = s + i - 1;
			break;
		}
	if (!at || !local_part(s, (size_t)(at - s), idn))
		return 0;
	dlen = len - (size_t)(at - s) - 1;
	if (dlen && at[1] == '[')
		return address_literal(at + 1, dlen);
	return idn ? check_idn_hostname(at + 1, dlen) : check_hostname(at + 1, dlen);
}

/* ---- URIs and IRIs (RFC 3986, RFC 3987) -------------------------------- */

enum uri_part { UP_USERINFO, UP_HOST, UP_PATH, UP_QUERY, UP_FRAGMENT };

static int is_unreserved(int c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_sub_delim(int c)
{
	return c && strchr("!$&'()*+,;=", c);
}

/* Checks s[from..to) as one part: unreserved, percent-encoded, sub-delims
 * and the part's own extra characters; iri adds ucschar (and iprivate in a
 * query). */
static int uri_chars(const char *s, size_t from, size_t to, enum uri_part part, int iri)
{
	size_t i = from;

	while (i < to) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80) {
			uint32_t cp;

			if (!iri)
				return 0;
			cp = utf8_next(s, to, &i);
			if (!is_ucschar(cp) && !(part == UP_QUERY && is_iprivate(cp)))
				return 0;
			continue;
		}
		if (c == '%') {
			if (ascii_pct_byte(s + i, to - i) < 0)
				return 0;
			i += 3;
			continue;
		}
		if (!is_unreserved(c) && !is_sub_delim(c)) {
			int ok;

			switch (part) {
			case UP_USERINFO:
				ok = c == ':';
				break;
			case UP_HOST:
				ok = 0;
				break;
			case UP_PATH:
				ok = c == ':' || c == '@' || c == '/';
				break;
			default:
				ok = c == ':' || c == '@' || c == '/' || c == '?';
				break;
			}
			if (!ok)
				return 0;
		}
		i++;
	}
	return 1;
}

/* "[" IPv6address / IPvFuture "]" */
static int ip_literal(const char *s, size_t len)
{
	size_t i;

	if (len < 2 || s[len - 1] != ']')
		return 0;
	s++;
	len -= 2;
	if (len && (s[0] == 'v' || s[0] == 'V')) {
		for (i = 1; i < len && is_hex(s[i]); i++)
			;
		if (i == 1 || i + 1 >= len || s[i] != '.')
			return 0;
		for (i++; i < len; i++)
			if (!is_unreserved(s[i]) && !is_sub_delim(s[i]) && s[i] != ':')
				return 0;
		return 1;
	}
	return check_ipv6(s, len);
}

/* authority = [ userinfo "@" ] host [ ":" port ], in s[from..to). */
static int authority(const char *s, size_t from, size_t to, int iri)
{
	const char *at = memchr(s + from, '@', to - from);
	size_t host = from, colon;

	if (at) {
		host = (size_t)(at - s) + 1;
		if (!uri_chars(s, from, host - 1, UP_USERINFO, iri))
			return 0;
	}
	if (host < to && s[host] == '[') {
		const char *close = memchr(s + host, ']', to - host);

		if (!close || !ip_literal(s + host, (size_t)(close - s) - host + 1))
			return 0;
		colon = (size_t)(close - s) + 1;
		if (colon < to && s[colon] != ':')
			return 0;
	} else {
		for (colon = host; colon < to && s[colon] != ':'; colon++)
			;
		if (!uri_chars(s, host, colon, UP_HOST, iri))
			return 0;
	}
	for (colon++; colon < to; colon++)
		if (!is_digit(s[colon]))
			return 0;
	return 1;
}

/* The first index in s[from..len) holding one of stops, or len. */
static size_t span_until(const char *s, size_t from, size_t len, const char *stops)
{
	while (from < len && !strchr(stops, s[from]))
		from++;
	return from;
}

/* URI or URI-reference (relative allowed), IRI when iri. */
static int check_uri(const char *s, size_t len, int relative, int iri)
{
	size_t i = 0, end;
	int scheme = 0;

	if (len && is_alpha(s[0])) {
		for (i = 1; i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' ||
					s[i] == '-' || s[i] == '.');
		     i++)
			;
		scheme = i < len && s[i] == ':';
	}
	if (scheme)
		i++;
	else if (!relative)
		return 0;
	else
		i = 0;
	if (i + 1 < len && s[i] == '/' && s[i + 1] == '/') {
		i += 2;
		end = span_until(s, i, len, "/?#");
		if (!authority(s, i, end, iri))
			return 0;
		i = end;
	} else if (!scheme) {
		/* path-noscheme: no ':' in the first segment */
		if (memchr(s, ':', span_until(s, 0, len, "/?#")))
			return 0;
	}
	end = span_until(s, i, len, "?#");
	if (!uri_chars(s, i, end, UP_PATH, iri))
		return 0;
	i = end;
	if (i < len && s[i] == '?') {
		end = span_until(s, i + 1, len, "#");
		if (!uri_chars(s, i + 1, end, UP_QUERY, iri))
			return 0;
		i = end;
	}
	if (i < len && s[i] == '#' && !uri_chars(s, i + 1, len, UP_FRAGMENT, iri))
		return 0;
	return 1;
}

/* ---- URI templates (RFC 6570 section 2) -------------------------------- */

/* varspec list inside "{...}": [operator] varname [":" 1-9999 / "*"], ... */
static int template_expression(const char *s, size_t from, size_t to)
{
	size_t i = from, start;

	if (i < to && strchr("+#./;?&=,!@|", s[i]))
		i++;
	for (;;) {
		start = i;
		while (i < to) {
			if (ascii_pct_byte(s + i, to - i) >= 0)
				i += 3;
			else if (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_')
				i++;
			else if (s[i] == '.' && i > start && i + 1 < to && s[i + 1] != '.')
				i++;
			else
				break;
		}
		if (i == start || s[i - 1] == '.')
			return 0;
		if (i < to && s[i] == ':') {
			start = ++i;
			while (i < to && is_digit(s[i]) && i - start < 4)
				i++;
			if (i == start || s[start] == '0')
				return 0;
		} else if (i < to && s[i] == '*') {
			i++;
		}
		if (i == to)
			return 1;
		if (s[i] != ',')
			return 0;
		i++;
	}
}

static int check_uri_template(const char *s, size_t len)
{
	size_t i = 0, close;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '{') {
			for (close = i + 1; close < len && s[close] != '}'; close++)
				if (s[close] == '{')
					return 0;
			if (close >= len || !template_expression(s, i + 1, close))
				return 0;
			i = close + 1;
		} else if (c >= 0x80) {
			uint32_t cp = utf8_next(s, len, &i);

			if (!is_ucschar(cp) && !is_iprivate(cp))
				return 0;
		} else if (c == '%') {
			if (ascii_pct_byte(s + i, len - i) < 0)
				return 0;
			i += 3;
		} else if (c <= 0x20 || c == 0x7f || strchr("\"'<>\\^`|}", c)) {
			return 0;
		} else {
			i++;
		}
	}
	return 1;
}

/* ---- JSON pointers, UUIDs --------------------------------------------- */

static int check_json_pointer(const char *s, size_t len)
{
	size_t i;

	if (len && s[0] != '/')
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
			return 0;
	return 1;
}

/* A non-negative integer without leading zeros, then "#" or a JSON
 * pointer. */
static int check_relative_json_pointer(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && is_digit(s[i]))
		i++;
	if (i == 0 || (s[0] == '0' && i > 1))
		return 0;
	if (i < len && s[i] == '#')
		return i + 1 == len;
	return check_json_pointer(s + i, len - i);
}

static int check_uuid(const char *s, size_t len)
{
	size_t i;

	if (len != 36)
		return 0;
	for (i = 0; i < len; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!is_hex(s[i])) {
			return 0;
		}
	}
	return 1;
}

/* Each format's name, and its check when it reads the text alone (NULL
 * for email and the URI formats, which are also told their variant, see
 * schema_format_check()). */
static const struct format {
	const char *name;
	int (*check)(const char *s, size_t len);
} formats[SCHEMA_FORMAT__COUNT] = {
	[SCHEMA_FORMAT_NONE] = { "", NULL },
	[SCHEMA_FORMAT_DATE_TIME] = { "date-time", check_date_time },
	[SCHEMA_FORMAT_DATE] = { "date", check_date },
	[SCHEMA_FORMAT_TIME] = { "time", check_time },
	[SCHEMA_FORMAT_DURATION] = { "duration", check_duration },
	[SCHEMA_FORMAT_EMAIL] = { "email", NULL },
	[SCHEMA_FORMAT_IDN_EMAIL] = { "idn-email", NULL },
	[SCHEMA_FORMAT_HOSTNAME] = { "hostname", check_hostname },
	[SCHEMA_FORMAT_IDN_HOSTNAME] = { "idn-hostname", check_idn_hostname },
	[SCHEMA_FORMAT_IPV4] = { "ipv4", check_ipv4 },
	[SCHEMA_FORMAT_IPV6] = { "ipv6", check_ipv6 },
	[SCHEMA_FORMAT_URI] = { "uri", NULL },
	[SCHEMA_FORMAT_URI_REFERENCE] = { "uri-reference", NULL },
	[SCHEMA_FORMAT_IRI] = { "iri", NULL },
	[SCHEMA_FORMAT_IRI_REFERENCE] = { "iri-reference", NULL },
	[SCHEMA_FORMAT_URI_TEMPLATE] = { "uri-template", check_uri_template },
	[SCHEMA_FORMAT_UUID] = { "uuid", check_uuid },
	[SCHEMA_FORMAT_JSON_POINTER] = { "json-pointer", check_json_pointer },
	[SCHEMA_FORMAT_RELATIVE_JSON_POINTER] = { "relative-json-pointer",
						  check_relative_json_pointer },
	[SCHEMA_FORMAT_REGEX] = { "regex", schema_regex_valid },
};

enum schema_format schema_format_lookup(const char *name)
{
	int f;

	for (f = 1; f < SCHEMA_FORMAT__COUNT; f++)
		if (!strcmp(name, formats[f].name))
			return (enum schema_format)f;
	return SCHEMA_FORMAT_NONE;
}

const char *schema_format_name(enum schema_format f)
{
	return f > SCHEMA_FORMAT_NONE && f < SCHEMA_FORMAT__COUNT ? formats[f].name : "";
}

int schema_format_check(enum schema_format f, const char *s, size_t len)
{
	int reference = f == SCHEMA_FORMAT_URI_REFERENCE || f == SCHEMA_FORMAT_IRI_REFERENCE;
	int iri = f == SCHEMA_FORMAT_IRI || f == SCHEMA_FORMAT_IRI_REFERENCE;

	if (f != SCHEMA_FORMAT_NONE && memchr(s, '\0', len))
		return 0;
	switch (f) {
	case SCHEMA_FORMAT_EMAIL:
	case SCHEMA_FORMAT_IDN_EMAIL:
		return check_email(s, len, f == SCHEMA_FORMAT_IDN_EMAIL);
	case SCHEMA_FORMAT_URI:
	case SCHEMA_FORMAT_URI_REFERENCE:
	case SCHEMA_FORMAT_IRI:
	case SCHEMA_FORMAT_IRI_REFERENCE:
		return check_uri(s, len, reference, iri);
	default:
		if (f <= SCHEMA_FORMAT_NONE || f >= SCHEMA_FORMAT__COUNT || !formats[f].check)
			return 1;
		return formats[f].check(s, len);
	}
}

/* ---- base64 (RFC 4648 section 4) --------------------------------------- */

/* The value of base64 digit c (its place in the alphabet), or -1. */
static int b64_value(unsigned char c)
{
	static const char alphabet[64] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = memchr(alphabet, c, sizeof(alphabet));

	return p ? (int)(p - alphabet) : -1;
}

int schema_base64_check(const char *s, size_t len, size_t *ret_len)
{
	size_t i, pad = 0;

	if (len % 4)
		return 0;
	if (len && s[len - 1] == '=')
		pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (b64_value((unsigned char)s[i]) < 0)
			return 0;
	/* The bits padding drops must be zero, or two texts decode alike. */
	if (pad == 1 && (b64_value((unsigned char)s[len - 2]) & 0x3))
		return 0;
	if (pad == 2 && (b64_value((unsigned char)s[len - 3]) & 0xf))
		return 0;
	if (ret_len)
		*ret_len = len / 4 * 3 - pad;
	return 1;
}

size_t schema_base64_decode(const char *s, size_t len, unsigned char *out)
{
	size_t i, n = 0;
	uint32_t acc = 0;
	int bits = 0, v;

	for (i = 0; i < len && s[i] != '='; i++) {
		v = b64_value((unsigned char)s[i]);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return n;
}

/* The "format" assertions of JSON Schema draft-07 (and "uuid", "duration"
 * from later drafts, which Pydantic emits) and the "contentEncoding" base64
 * check: pure functions over a string, no I/O, no allocation except where a
 * function says so. */
#ifndef BRACED_SCHEMA_FORMAT_H
#define BRACED_SCHEMA_FORMAT_H

#include <stddef.h>

enum schema_format {
	SCHEMA_FORMAT_NONE = 0, /* unknown: an annotation */
	SCHEMA_FORMAT_DATE_TIME,
	SCHEMA_FORMAT_DATE,
	SCHEMA_FORMAT_TIME,
	SCHEMA_FORMAT_DURATION,
	SCHEMA_FORMAT_EMAIL,
	SCHEMA_FORMAT_IDN_EMAIL,
	SCHEMA_FORMAT_HOSTNAME,
	SCHEMA_FORMAT_IDN_HOSTNAME,
	SCHEMA_FORMAT_IPV4,
	SCHEMA_FORMAT_IPV6,
	SCHEMA_FORMAT_URI,
	SCHEMA_FORMAT_URI_REFERENCE,
	SCHEMA_FORMAT_IRI,
	SCHEMA_FORMAT_IRI_REFERENCE,
	SCHEMA_FORMAT_URI_TEMPLATE,
	SCHEMA_FORMAT_UUID,
	SCHEMA_FORMAT_JSON_POINTER,
	SCHEMA_FORMAT_RELATIVE_JSON_POINTER,
	SCHEMA_FORMAT_REGEX,
	SCHEMA_FORMAT__COUNT
};

/* The format called name (borrowed, exact and case-sensitive, like
 * "date-time"), or SCHEMA_FORMAT_NONE when braced does not know it. */
enum schema_format schema_format_lookup(const char *name);

/* The name of f ("date-time"); "" for SCHEMA_FORMAT_NONE. */
const char *schema_format_name(enum schema_format f);

/* Checks the string s (len bytes, borrowed, UTF-8 already checked by the
 * JSON parser; embedded NULs make it invalid) against f:
 * date-time, date, time: RFC 3339 (T and Z in either case, a leap second
 * only at 23:59:60 UTC); duration: RFC 3339 appendix A, the last number may
 * have a fraction ("PT0.5S"); email: RFC 5321 mailbox (dot-atom or quoted
 * local part, a hostname or an address literal); idn-email: the same with
 * UTF-8 in the local part and an idn-hostname; hostname: RFC 1123 (labels of
 * 1-63 letters, digits and inner hyphens, at most 253 bytes); idn-hostname:
 * IDNA 2008 through libidn2 (TR46 non-transitional mapping), the A-labels it
 * yields then checked as a hostname; ipv4: dotted quad without leading
 * zeros; ipv6: RFC 4291 text; uri, uri-reference, iri, iri-reference:
 * RFC 3986 and RFC 3987; uri-template: RFC 6570 syntax; uuid: RFC 9562
 * 8-4-4-4-12 hex digits; json-pointer: RFC 6901; relative-json-pointer:
 * draft-handrews-relative-json-pointer-01; regex: ECMA-262 syntax braced can
 * run (schema_regex_valid()).
 * Does not allocate, except for regex (PCRE2 compiles the pattern) and for
 * an idn-hostname or idn-email domain with non-ASCII characters (libidn2).
 * Returns 1 when s is valid (always for SCHEMA_FORMAT_NONE), 0 when it is
 * not, -ENOMEM. */
int schema_format_check(enum schema_format f, const char *s, size_t len);

/* Checks that s (len bytes, borrowed) is RFC 4648 base64 with its padding
 * and no white space; stores the decoded length in *ret_len when ret_len is
 * not NULL. Returns 1 when it is, 0 when not. Does not allocate. */
int schema_base64_check(const char *s, size_t len, size_t *ret_len);

/* Decodes base64 s (len bytes, already accepted by schema_base64_check) into
 * out, which has room for the decoded length; returns the bytes written. */
size_t schema_base64_decode(const char *s, size_t len, unsigned char *out);

#endif

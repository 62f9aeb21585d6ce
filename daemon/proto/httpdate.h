/* HTTP-dates (RFC 9110 5.6.7): the one reader of the three forms an
 * answer's Date, Expires, Last-Modified and Retry-After may carry. Pure: no
 * clock, no locale set here (the daemon keeps the C locale). */
#ifndef BRACED_HTTPDATE_H
#define BRACED_HTTPDATE_H

#include <stddef.h>
#include <stdint.h>

/* Longest value read, surrounding spaces and tabs not counted (the longest
 * valid form, RFC 850 with "Wednesday", has 33 characters). */
#define HTTPDATE_MAX 64

/* Reads [s, s+len) (borrowed, not NUL-terminated) as an IMF-fixdate, an
 * RFC 850 date or an asctime date, with optional spaces and tabs around it.
 * Returns 0 and *ret_epoch (seconds since the epoch, negative before 1970),
 * or -EINVAL (anything else, a NUL byte, longer than HTTPDATE_MAX; *ret_epoch
 * untouched). */
int httpdate_parse(const char *s, size_t len, int64_t *ret_epoch);

#endif

/* HTTP-dates through strptime(3) and timegm(3), one format per form, the
 * value copied into a bounded buffer first so strptime sees a C string. */
#include "httpdate.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int httpdate_parse(const char *s, size_t len, int64_t *ret_epoch)
{
	static const char *const formats[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",      /* asctime */
	};
	char buf[HTTPDATE_MAX + 1];
	struct tm tm;

	if (!s)
		return -EINVAL;
	while (len && (s[0] == ' ' || s[0] == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len > HTTPDATE_MAX || memchr(s, '\0', len))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(buf, formats[i], &tm);
		if (!end || *end != '\0')
			continue;
		/* -1 is also 1969-12-31T23:59:59: a date in the past either way. */
		*ret_epoch = (int64_t)timegm(&tm);
		return 0;
	}
	return -EINVAL;
}

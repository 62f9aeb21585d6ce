/* Durations and sizes with units, as the configuration writes them. Only
 * whole, unambiguous forms are accepted: a number, an optional fraction for
 * durations, and one unit from a short table. */
#include "units.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct unit {
	const char *suffix;
	uint64_t scale;
};

static const struct unit duration_units[] = {
	{ "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 3600 * 1000 }, { NULL, 0 },
};

static const struct unit size_units[] = {
	{ "", 1 },
	{ "B", 1 },
	{ "KiB", 1024 },
	{ "MiB", 1024 * 1024 },
	{ "GiB", 1024 * 1024 * 1024 },
	{ NULL, 0 },
};

/* Reads digits, then optionally '.' and up to 3 fraction digits (as
 * thousandths). Returns the position after the number, or NULL when p is
 * NULL or no such number. */
static const char *parse_number(const char *p, int allow_fraction, uint64_t *ret_whole,
				uint64_t *ret_milli)
{
	uint64_t whole = 0, milli = 0;
	const char *start = p;

	if (!p)
		return NULL;
	while (*p >= '0' && *p <= '9') {
		if (whole > (UINT64_MAX - 9) / 10)
			return NULL;
		whole = whole * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == start)
		return NULL;
	if (allow_fraction && *p == '.') {
		const char *f = ++p;
		uint64_t scale = 100;

		while (*p >= '0' && *p <= '9') {
			if (p - f >= 3)
				return NULL;
			milli += (uint64_t)(*p - '0') * scale;
			scale /= 10;
			p++;
		}
		if (p == f)
			return NULL;
	}
	*ret_whole = whole;
	*ret_milli = milli;
	return p;
}

static const struct unit *find_unit(const struct unit *table, const char *suffix)
{
	for (; table->suffix; table++)
		if (strcmp(table->suffix, suffix) == 0)
			return table;
	return NULL;
}

int units_parse_duration(const char *s, uint64_t *ret_ms)
{
	uint64_t whole, milli, ms;
	const struct unit *u;
	const char *p = parse_number(s, 1, &whole, &milli);

	if (!p)
		return -EINVAL;
	if (*p == '\0') {
		/* A bare number is only unambiguous when it is zero. */
		if (whole != 0 || milli != 0)
			return -EINVAL;
		*ret_ms = 0;
		return 0;
	}
	u = find_unit(duration_units, p);
	if (!u)
		return -EINVAL;
	if (whole > UNITS_MAX_DURATION_MS)
		return -ERANGE;
	ms = whole * u->scale + milli * u->scale / 1000;
	if (milli * u->scale % 1000 != 0)
		return -EINVAL; /* "1.5ms": finer than a millisecond */
	if (ms > UNITS_MAX_DURATION_MS)
		return -ERANGE;
	*ret_ms = ms;
	return 0;
}

int units_parse_size(const char *s, uint64_t *ret_bytes)
{
	uint64_t whole, milli;
	const char *p = parse_number(s, 0, &whole, &milli);
	const struct unit *u = p ? find_unit(size_units, p) : NULL;

	if (!u)
		return -EINVAL;
	if (whole > UNITS_MAX_SIZE || whole * u->scale > UNITS_MAX_SIZE)
		return -ERANGE;
	*ret_bytes = whole * u->scale;
	return 0;
}

int units_parse_rate(const char *s, uint64_t *ret_count, uint64_t *ret_per_ms)
{
	uint64_t count = 0, per_ms;
	const char *p = s;
	char period[32];
	size_t len;

	if (!strcmp(s, "0")) {
		*ret_count = 0;
		*ret_per_ms = 0;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (count > UNITS_MAX_RATE_COUNT)
			return -ERANGE;
		count = count * 10 + (uint64_t)(*p - '0');
	}
	if (count > UNITS_MAX_RATE_COUNT)
		return -ERANGE;
	if (*p++ != '/')
		return -EINVAL;
	len = strlen(p);
	if (len == 0 || len >= sizeof(period))
		return -EINVAL;
	/* "/s", "/m", "/h", "/d": one of the unit; else a duration ("/10s"). */
	if (len == 1 && strchr("smhd", *p)) {
		snprintf(period, sizeof(period), "%s", *p == 'd' ? "24h" : (char[]){ '1', *p, 0 });
		p = period;
	}
	if (units_parse_duration(p, &per_ms) < 0 || per_ms == 0)
		return -EINVAL;
	*ret_count = count;
	*ret_per_ms = per_ms;
	return 0;
}

/* units_parse_duration, units_parse_size and units_parse_rate: accepted
 * forms and their values, malformed input (-EINVAL, output untouched) and
 * values over the 24h and 1GiB limits and rate counts over 10^9 (-ERANGE). Every table row runs as its own loop test. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "suites.h"
#include "units.h"

#define UNTOUCHED 0xdeadbeefULL

struct unit_case {
	const char *in;
	int ret;
	uint64_t value; /* expected when ret == 0 */
};

static const struct unit_case duration_cases[] = {
	/* valid */
	{ "0", 0, 0 },
	{ "0ms", 0, 0 },
	{ "0s", 0, 0 },
	{ "0.0", 0, 0 },
	{ "1ms", 0, 1 },
	{ "250ms", 0, 250 },
	{ "2s", 0, 2000 },
	{ "1m", 0, 60000 },
	{ "1h", 0, 3600000 },
	{ "1.5s", 0, 1500 },
	{ "0.25s", 0, 250 },
	{ "1.001s", 0, 1001 },
	{ "1.5m", 0, 90000 },
	{ "0.5h", 0, 1800000 },
	{ "24h", 0, 86400000 },
	{ "1440m", 0, 86400000 },
	{ "86400000ms", 0, 86400000 },
	/* not a duration */
	{ "", -EINVAL, 0 },
	{ "5", -EINVAL, 0 },
	{ "0.5", -EINVAL, 0 },
	{ "s", -EINVAL, 0 },
	{ "ms", -EINVAL, 0 },
	{ "-1s", -EINVAL, 0 },
	{ "+1s", -EINVAL, 0 },
	{ "1.5ms", -EINVAL, 0 },
	{ "1.2345s", -EINVAL, 0 },
	{ "1.s", -EINVAL, 0 },
	{ ".5s", -EINVAL, 0 },
	{ "2 s", -EINVAL, 0 },
	{ " 2s", -EINVAL, 0 },
	{ "2s ", -EINVAL, 0 },
	{ "2S", -EINVAL, 0 },
	{ "2sec", -EINVAL, 0 },
	{ "2 seconds", -EINVAL, 0 },
	{ "1d", -EINVAL, 0 },
	{ "1h30m", -EINVAL, 0 },
	{ "1e3ms", -EINVAL, 0 },
	{ "0x10s", -EINVAL, 0 },
	/* over 24h */
	{ "25h", -ERANGE, 0 },
	{ "24.001h", -ERANGE, 0 },
	{ "1441m", -ERANGE, 0 },
	{ "86401s", -ERANGE, 0 },
	{ "86400001ms", -ERANGE, 0 },
	{ "100000000h", -ERANGE, 0 },
};

static const struct unit_case size_cases[] = {
	/* valid */
	{ "0", 0, 0 },
	{ "1024", 0, 1024 },
	{ "512B", 0, 512 },
	{ "16KiB", 0, 16384 },
	{ "1MiB", 0, 1048576 },
	{ "8MiB", 0, 8388608 },
	{ "1GiB", 0, 1073741824 },
	{ "1024MiB", 0, 1073741824 },
	{ "1073741824", 0, 1073741824 },
	{ "1073741824B", 0, 1073741824 },
	/* not a size */
	{ "", -EINVAL, 0 },
	{ "B", -EINVAL, 0 },
	{ "KiB", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "1.5MiB", -EINVAL, 0 },
	{ "1KB", -EINVAL, 0 },
	{ "1kib", -EINVAL, 0 },
	{ "1K", -EINVAL, 0 },
	{ "1MB", -EINVAL, 0 },
	{ "1 KiB", -EINVAL, 0 },
	{ " 1KiB", -EINVAL, 0 },
	{ "1KiB ", -EINVAL, 0 },
	{ "1TiB", -EINVAL, 0 },
	{ "1e3", -EINVAL, 0 },
	/* over 1GiB */
	{ "1073741825", -ERANGE, 0 },
	{ "1073741825B", -ERANGE, 0 },
	{ "2GiB", -ERANGE, 0 },
	{ "1025MiB", -ERANGE, 0 },
	{ "1048577KiB", -ERANGE, 0 },
};

/* units_parse_rate: count and period (ms), or the error. */
struct rate_case {
	const char *in;
	int ret;
	uint64_t count, per_ms; /* expected when ret == 0 */
};

static const struct rate_case rate_cases[] = {
	/* valid */
	{ "0", 0, 0, 0 },
	{ "100/s", 0, 100, 1000 },
	{ "6000/m", 0, 6000, 60000 },
	{ "50000/h", 0, 50000, 3600000 },
	{ "1/d", 0, 1, 86400000 },
	{ "100/10s", 0, 100, 10000 },
	{ "1/250ms", 0, 1, 250 },
	{ "1000000000/s", 0, 1000000000, 1000 },
	{ "7/1.5s", 0, 7, 1500 },
	/* not a rate */
	{ "", -EINVAL, 0, 0 },
	{ "/s", -EINVAL, 0, 0 },
	{ "0/s", -EINVAL, 0, 0 },
	{ "00", -EINVAL, 0, 0 },
	{ "010/s", -EINVAL, 0, 0 },
	{ "-1/s", -EINVAL, 0, 0 },
	{ "+1/s", -EINVAL, 0, 0 },
	{ "1.5/s", -EINVAL, 0, 0 },
	{ "10", -EINVAL, 0, 0 },
	{ "10/", -EINVAL, 0, 0 },
	{ "10/x", -EINVAL, 0, 0 },
	{ "10/S", -EINVAL, 0, 0 },
	{ "10/sec", -EINVAL, 0, 0 },
	{ "10/0s", -EINVAL, 0, 0 },
	{ "10/0", -EINVAL, 0, 0 },
	{ "10/10", -EINVAL, 0, 0 },
	{ "10/s ", -EINVAL, 0, 0 },
	{ " 10/s", -EINVAL, 0, 0 },
	{ "10 /s", -EINVAL, 0, 0 },
	{ "10/ s", -EINVAL, 0, 0 },
	{ "10/s/s", -EINVAL, 0, 0 },
	{ "10/25h", -EINVAL, 0, 0 },
	{ "10/2d", -EINVAL, 0, 0 },
	{ "10/-1s", -EINVAL, 0, 0 },
	{ "10/123456789012345678901234567890123s", -EINVAL, 0, 0 },
	/* a count too large */
	{ "1000000001/s", -ERANGE, 0, 0 },
	{ "99999999999999999999999999999999999999999999999999/s", -ERANGE, 0, 0 },
	{ "184467440737095516160000/s", -ERANGE, 0, 0 },
};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void check_case(const char *what, const struct unit_case *c,
		       int (*parse)(const char *, uint64_t *))
{
	uint64_t v = UNTOUCHED;
	int r = parse(c->in, &v);

	ck_assert_msg(r == c->ret, "%s(\"%s\") returned %d, expected %d", what, c->in, r, c->ret);
	if (c->ret == 0)
		ck_assert_msg(v == c->value, "%s(\"%s\") gave %llu, expected %llu", what, c->in,
			      (unsigned long long)v, (unsigned long long)c->value);
	else
		ck_assert_msg(v == UNTOUCHED, "%s(\"%s\") wrote %llu on failure", what, c->in,
			      (unsigned long long)v);
}

START_TEST(test_duration_table)
{
	check_case("units_parse_duration", &duration_cases[_i], units_parse_duration);
}
END_TEST

START_TEST(test_size_table)
{
	check_case("units_parse_size", &size_cases[_i], units_parse_size);
}
END_TEST

START_TEST(test_rate_table)
{
	const struct rate_case *c = &rate_cases[_i];
	uint64_t count = UNTOUCHED, per = UNTOUCHED;
	int r = units_parse_rate(c->in, &count, &per);

	ck_assert_msg(r == c->ret, "units_parse_rate(\"%s\") returned %d, expected %d", c->in, r,
		      c->ret);
	if (c->ret == 0) {
		ck_assert_msg(count == c->count && per == c->per_ms,
			      "units_parse_rate(\"%s\") gave %llu per %llu ms, expected %llu per "
			      "%llu ms",
			      c->in, (unsigned long long)count, (unsigned long long)per,
			      (unsigned long long)c->count, (unsigned long long)c->per_ms);
	} else {
		ck_assert_msg(count == UNTOUCHED && per == UNTOUCHED,
			      "units_parse_rate(\"%s\") wrote its outputs on failure", c->in);
	}
}
END_TEST

/* A count of any length is read without overflow: -ERANGE, never a
 * wrapped value that passes. */
START_TEST(test_rate_long_digits)
{
	char s[4096];
	uint64_t count = UNTOUCHED, per = UNTOUCHED;

	memset(s, '9', sizeof(s) - 3);
	memcpy(s + sizeof(s) - 3, "/s", 3);
	ck_assert_int_eq(units_parse_rate(s, &count, &per), -ERANGE);
	ck_assert_uint_eq(count, UNTOUCHED);
	ck_assert_uint_eq(per, UNTOUCHED);
	/* 2^64 exactly, which wraps to 0 in 64 bits. */
	ck_assert_int_eq(units_parse_rate("18446744073709551616/s", &count, &per), -ERANGE);
	ck_assert_uint_eq(UNITS_MAX_RATE_COUNT, 1000000000ULL);
}
END_TEST

START_TEST(test_null_input)
{
	uint64_t v = UNTOUCHED;

	ck_assert_int_eq(units_parse_duration(NULL, &v), -EINVAL);
	ck_assert_int_eq(units_parse_size(NULL, &v), -EINVAL);
	ck_assert_uint_eq(v, UNTOUCHED);
}
END_TEST

START_TEST(test_limits_match_header)
{
	uint64_t v;

	ck_assert_uint_eq(UNITS_MAX_DURATION_MS, 86400000ULL);
	ck_assert_uint_eq(UNITS_MAX_SIZE, 1073741824ULL);
	ck_assert_int_eq(units_parse_duration("24h", &v), 0);
	ck_assert_uint_eq(v, UNITS_MAX_DURATION_MS);
	ck_assert_int_eq(units_parse_size("1GiB", &v), 0);
	ck_assert_uint_eq(v, UNITS_MAX_SIZE);
}
END_TEST

Suite *units_suite(void)
{
	Suite *s = suite_create("units");
	TCase *tc = tcase_create("duration");

	tcase_add_loop_test(tc, test_duration_table, 0, N(duration_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("size");
	tcase_add_loop_test(tc, test_size_table, 0, N(size_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("rate");
	tcase_add_loop_test(tc, test_rate_table, 0, N(rate_cases));
	tcase_add_test(tc, test_rate_long_digits);
	suite_add_tcase(s, tc);
	tc = tcase_create("edges");
	tcase_add_test(tc, test_null_input);
	tcase_add_test(tc, test_limits_match_header);
	suite_add_tcase(s, tc);
	return s;
}

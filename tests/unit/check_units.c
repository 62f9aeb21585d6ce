/* units_parse_duration and units_parse_size: accepted forms and their values,
 * malformed input (-EINVAL, output untouched) and values over the 24h and
 * 1GiB limits (-ERANGE). Every table row runs as its own loop test. */
#include <errno.h>
#include <stdint.h>

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
	tc = tcase_create("edges");
	tcase_add_test(tc, test_null_input);
	tcase_add_test(tc, test_limits_match_header);
	suite_add_tcase(s, tc);
	return s;
}

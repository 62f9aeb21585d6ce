/* Tests of daemon/lib/ascii.c's percent decoding: one escape reader and one
 * decoder whose options give the form, the schema URI and the path readers
 * what each had. */
#include "suites.h"
#include "ascii.h"

#include <errno.h>
#include <string.h>

START_TEST(pct_byte_table)
{
	ck_assert_int_eq(ascii_pct_byte("%41", 3), 'A');
	ck_assert_int_eq(ascii_pct_byte("%ff", 3), 255);
	ck_assert_int_eq(ascii_pct_byte("%00", 3), 0);
	ck_assert_int_eq(ascii_pct_byte("%4", 2), -1);
	ck_assert_int_eq(ascii_pct_byte("%41", 2), -1);
	ck_assert_int_eq(ascii_pct_byte("%g1", 3), -1);
	ck_assert_int_eq(ascii_pct_byte("%1g", 3), -1);
	ck_assert_int_eq(ascii_pct_byte("A41", 3), -1);
}
END_TEST

START_TEST(pct_decode_options)
{
	static const struct {
		const char *in;
		unsigned flags;
		int r;
		const char *out;
		size_t len;
	} cases[] = {
		{ "a%20b+c", 0, 0, "a b+c", 5 },
		{ "a%20b+c", ASCII_PCT_PLUS_SPACE, 0, "a b c", 5 },
		{ "%zz%4", ASCII_PCT_KEEP_MALFORMED, 0, "%zz%4", 5 },
		{ "%zz", 0, -EINVAL, NULL, 0 },
		{ "50%", 0, -EINVAL, NULL, 0 },
		{ "a%00b", 0, 0, "a", 3 },
		{ "a%00b", ASCII_PCT_REFUSE_NUL, -EINVAL, NULL, 0 },
		{ "%7e%2F", ASCII_PCT_REFUSE_NUL, 0, "~/", 2 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32];
		size_t n = 99;
		int r = ascii_pct_decode(cases[i].in, strlen(cases[i].in), buf, cases[i].flags, &n);

		ck_assert_int_eq(r, cases[i].r);
		if (r == 0) {
			ck_assert_uint_eq(n, cases[i].len);
			ck_assert_str_eq(buf, cases[i].out);
		}
	}
}
END_TEST

START_TEST(pct_decode_in_place)
{
	char s[] = "%2Fa%25";
	size_t n;

	ck_assert_int_eq(ascii_pct_decode(s, strlen(s), s, 0, &n), 0);
	ck_assert_str_eq(s, "/a%");
	ck_assert_uint_eq(n, 3);
}
END_TEST

Suite *ascii_suite(void)
{
	Suite *s = suite_create("ascii");
	TCase *tc = tcase_create("pct");

	tcase_add_test(tc, pct_byte_table);
	tcase_add_test(tc, pct_decode_options);
	tcase_add_test(tc, pct_decode_in_place);
	suite_add_tcase(s, tc);
	return s;
}

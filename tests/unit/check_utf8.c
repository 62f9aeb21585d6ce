/* Tests of daemon/lib/utf8.c: the one UTF-8 decoder refuses what RFC 3629
 * refuses, its lax reading is the one the schema's IRI formats always made,
 * and the count and the cut work on bytes as the validator's did. */
#include "suites.h"
#include "utf8.h"

#include <stdint.h>
#include <string.h>

START_TEST(strict_table)
{
	static const struct {
		const char *s;
		size_t len;
		uint32_t cp;
	} cases[] = {
		{ "a", 1, 'a' },
		{ "\xc2\xa0", 2, 0xa0 },
		{ "\xdf\xbf", 2, 0x7ff },
		{ "\xe0\xa0\x80", 3, 0x800 },
		{ "\xef\xbf\xbd", 3, 0xfffd },
		{ "\xf0\x90\x80\x80", 4, 0x10000 },
		{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
		{ "\x80", 0, 0 },		/* stray continuation byte */
		{ "\xc0\x80", 0, 0 },		/* overlong NUL */
		{ "\xc1\xbf", 0, 0 },		/* overlong */
		{ "\xe0\x9f\xbf", 0, 0 },	/* overlong */
		{ "\xed\xa0\x80", 0, 0 },	/* surrogate */
		{ "\xf0\x8f\xbf\xbf", 0, 0 },	/* overlong */
		{ "\xf4\x90\x80\x80", 0, 0 },	/* above U+10FFFF */
		{ "\xf5\x80\x80\x80", 0, 0 },
		{ "\xe2\x82", 0, 0 },		/* cut short */
		{ "\xc2" "a", 0, 0 },		/* not a continuation byte */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t cp = 0xdeadbeef;
		size_t n = utf8_decode(cases[i].s, strlen(cases[i].s), &cp);

		ck_assert_uint_eq(n, cases[i].len);
		ck_assert_uint_eq(cp, n ? cases[i].cp : 0xdeadbeef);
	}
}
END_TEST

START_TEST(count_and_cut)
{
	const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";

	ck_assert_uint_eq(utf8_count(s, strlen(s)), 4);
	ck_assert_uint_eq(utf8_count("\x80\x80\xc3", 3), 1);
	ck_assert_uint_eq(utf8_cut(s, strlen(s), 20), strlen(s));
	ck_assert_uint_eq(utf8_cut(s, strlen(s), 2), 1);
	ck_assert_uint_eq(utf8_cut(s, strlen(s), 3), 3);
	ck_assert_uint_eq(utf8_cut(s, strlen(s), 5), 3);
	ck_assert_uint_eq(utf8_cut(s, strlen(s), 9), 6);
	ck_assert_uint_eq(utf8_cut("\x80\x80\x80", 3, 2), 0);
	/* Not UTF-8: never more than three bytes back. */
	ck_assert_uint_eq(utf8_cut("\x80\x80\x80\x80\x80\x80\x80", 7, 6), 3);
}
END_TEST

Suite *utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, strict_table);
	tcase_add_test(tc, count_and_cut);
	suite_add_tcase(s, tc);
	return s;
}

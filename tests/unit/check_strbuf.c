/* Tests of daemon/lib/strbuf.c: the one string buffer holds its cap, reads
 * as "" before the first byte, and writes JSON strings and JSON pointer
 * tokens as the schema compiler and the problem bodies need them. */
#include "suites.h"
#include "strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

START_TEST(empty_reads_as_empty_string)
{
	struct strbuf b;

	strbuf_init(&b, 16);
	ck_assert_ptr_null(b.data);
	ck_assert_str_eq(strbuf_str(&b), "");
	strbuf_add(&b, "", 0);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_str_eq(strbuf_str(&b), "");
	strbuf_release(&b);
}
END_TEST

START_TEST(cap_fails_and_keeps_contents)
{
	struct strbuf b;

	strbuf_init(&b, 5);
	strbuf_adds(&b, "abc");
	strbuf_adds(&b, "def");
	ck_assert_int_eq(b.failed, 1);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_str_eq(strbuf_str(&b), "abc");
	ck_assert_ptr_null(strbuf_steal(&b, NULL));
	strbuf_release(&b);
}
END_TEST

START_TEST(truncate_and_steal)
{
	struct strbuf b;
	size_t n = 0;
	char *s;

	strbuf_init(&b, SIZE_MAX);
	strbuf_addf(&b, "%s-%d", "abc", 42);
	strbuf_truncate(&b, 3);
	strbuf_truncate(&b, 10);
	s = strbuf_steal(&b, &n);
	ck_assert_str_eq(s, "abc");
	ck_assert_uint_eq(n, 3);
	ck_assert_ptr_null(b.data);
	free(s);
}
END_TEST

START_TEST(pointer_tokens_escape_tilde_and_slash)
{
	struct strbuf b;

	strbuf_init(&b, SIZE_MAX);
	strbuf_add_pointer_token(&b, "a/b~c", 5);
	strbuf_add_pointer_token(&b, "", 0);
	strbuf_add_pointer_token(&b, "~~", 2);
	ck_assert_str_eq(strbuf_str(&b), "/a~1b~0c//~0~0");
	strbuf_release(&b);
}
END_TEST

START_TEST(json_string_replaces_bad_utf8)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "\n\r\t\x01", "\"\\n\\r\\t\\u0001\"" },
		{ "\xc3\xa9", "\"\xc3\xa9\"" },
		{ "\xc0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
		{ "\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
		{ "\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
		{ "\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
		{ "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"" },
	};
	struct strbuf b;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		strbuf_init(&b, SIZE_MAX);
		strbuf_add_json_string(&b, cases[i].in, strlen(cases[i].in));
		ck_assert_str_eq(strbuf_str(&b), cases[i].out);
		strbuf_release(&b);
	}
}
END_TEST

Suite *strbuf_suite(void)
{
	Suite *s = suite_create("strbuf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, empty_reads_as_empty_string);
	tcase_add_test(tc, cap_fails_and_keeps_contents);
	tcase_add_test(tc, truncate_and_steal);
	tcase_add_test(tc, pointer_tokens_escape_tilde_and_slash);
	tcase_add_test(tc, json_string_replaces_bad_utf8);
	suite_add_tcase(s, tc);
	return s;
}

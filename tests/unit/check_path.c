/* Path normalization for route matching (path_normalize): every rule of
 * path.h as a table of raw path -> normal form or refusal, folding, and the
 * size contract of the output buffer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "path.h"
#include "suites.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

struct norm_case {
	const char *raw;
	int fold_case;
	const char *want; /* NULL: refused with -EINVAL */
};

static const struct norm_case norm_cases[] = {
	/* already normal */
	{ "", 0, "" },
	{ "/", 0, "/" },
	{ "/v1/weather", 0, "/v1/weather" },
	{ "/v1/{id}/**", 0, "/v1/{id}/**" },
	/* unreserved characters decoded, in either hex case */
	{ "/v1/%77eather", 0, "/v1/weather" },
	{ "/v1/%57eather", 0, "/v1/Weather" },
	{ "/%41%5a%61%7A%30%39", 0, "/AZaz09" },
	{ "/a%2Db%2eC%5F%7e", 0, "/a-b.C_~" },
	{ "/a%2eb", 0, "/a.b" },
	/* reserved and other characters decoded too: an upstream may decode them */
	{ "/a%20b", 0, "/a b" },
	{ "/caf%c3%a9", 0, "/caf\xc3\xa9" },
	{ "/v1/items%3Abatch", 0, "/v1/items:batch" },
	{ "/v1/items%3abatch", 0, "/v1/items:batch" },
	{ "/%40%21%24%26%27%28%29%2A%2B%2C%3D", 0, "/@!$&'()*+,=" },
	{ "/%7f%80%ff", 0, "/\x7f\x80\xff" },
	/* escapes that would change how the path reads stay escaped, hex upper-cased */
	{ "/a%3bb", 0, "/a%3Bb" },
	{ "/a%3F", 0, "/a%3F" },
	{ "/a%23", 0, "/a%23" },
	{ "/%25", 0, "/%25" },
	{ "/%2541", 0, "/%2541" },
	/* malformed escapes */
	{ "/a%", 0, NULL },
	{ "/a%2", 0, NULL },
	{ "/a%zz", 0, NULL },
	{ "/a%2g", 0, NULL },
	{ "/a%g2", 0, NULL },
	{ "/a%2/b", 0, NULL },
	{ "/a%%41", 0, NULL },
	/* repeated slashes merged, trailing slash ignored */
	{ "//", 0, "/" },
	{ "///", 0, "/" },
	{ "//v1/weather", 0, "/v1/weather" },
	{ "/v1//weather", 0, "/v1/weather" },
	{ "/v1///weather//", 0, "/v1/weather" },
	{ "/v1/weather/", 0, "/v1/weather" },
	/* segment parameters ignored */
	{ "/v1/weather;x", 0, "/v1/weather" },
	{ "/a;x/b", 0, "/a/b" },
	{ "/a;x;y=1/b;", 0, "/a/b" },
	{ "/a/;x/b", 0, "/a/b" },
	{ "/;x", 0, "/" },
	{ "/a;%41", 0, "/a" },
	{ "/a%3Bx", 0, "/a%3Bx" },
	/* refused separators and NUL, also inside parameters */
	{ "/v1/weather%2f", 0, NULL },
	{ "/v1/weather%2F", 0, NULL },
	{ "/a%2Fb", 0, NULL },
	{ "/a%5cb", 0, NULL },
	{ "/a%5Cb", 0, NULL },
	{ "/a\\b", 0, NULL },
	{ "/a%00b", 0, NULL },
	{ "/a;%2F", 0, NULL },
	{ "/a;%zz", 0, NULL },
	{ "/a;\\", 0, NULL },
	/* dot segments after normalization */
	{ "/.", 0, NULL },
	{ "/..", 0, NULL },
	{ "/a/./b", 0, NULL },
	{ "/a/../b", 0, NULL },
	{ "/a/%2e", 0, NULL },
	{ "/a/%2E%2e/b", 0, NULL },
	{ "/a/.;x/b", 0, NULL },
	{ "/a/..;x", 0, NULL },
	{ "/a/.%2e;x/", 0, NULL },
	{ "/a/...", 0, "/a/..." },
	{ "/a/.b", 0, "/a/.b" },
	{ "/a/..b", 0, "/a/..b" },
	/* not a path */
	{ "v1/weather", 0, NULL },
	{ ";/a", 0, NULL },
	/* folding: letters, decoded letters, never hex digits */
	{ "/V1/WeAther", 1, "/v1/weather" },
	{ "/V1/WeAther", 0, "/V1/WeAther" },
	{ "/v1/%57EATHER", 1, "/v1/weather" },
	{ "/CAF%c3%a9", 1, "/caf\xc3\xa9" },
	{ "/A;B/C", 1, "/a/c" },
	{ "/{ID}", 1, "/{id}" },
};

START_TEST(test_normalize_table)
{
	const struct norm_case *c = &norm_cases[_i];
	size_t len = strlen(c->raw), got = 12345;
	char out[128];
	int r;

	r = path_normalize(c->raw, len, c->fold_case, out, len + 1, &got);
	if (!c->want) {
		ck_assert_msg(r == -EINVAL, "'%s' gave %d, '%.*s'", c->raw, r, r ? 0 : (int)got,
			      out);
		ck_assert_uint_eq(got, 12345);
		return;
	}
	ck_assert_msg(r == 0, "'%s' refused with %d", c->raw, r);
	ck_assert_msg(strcmp(out, c->want) == 0, "'%s' gave '%s', expected '%s'", c->raw, out,
		      c->want);
	ck_assert_uint_eq(got, strlen(c->want));
}
END_TEST

/* The length bounds the path: bytes after it are not read. */
START_TEST(test_normalize_by_length)
{
	char out[64];
	size_t got;

	ck_assert_int_eq(path_normalize("/v1/weather?a=%zz", 11, 0, out, sizeof(out), &got), 0);
	ck_assert_str_eq(out, "/v1/weather");
	ck_assert_int_eq(path_normalize("/a%41", 3, 0, out, sizeof(out), &got), -EINVAL);
	ck_assert_int_eq(path_normalize("/a\0b", 4, 0, out, sizeof(out), &got), -EINVAL);
}
END_TEST

/* len + 1 bytes always do; one byte fewer than the result needs fails
 * with -ENOSPC, never writing past outsize. */
START_TEST(test_normalize_room)
{
	static const char raw[] = "/v1//weather/";
	char out[32];
	size_t got = 0;

	for (size_t size = 0; size < sizeof("/v1/weather"); size++) {
		memset(out, 'X', sizeof(out));
		ck_assert_int_eq(path_normalize(raw, strlen(raw), 0, out, size, &got), -ENOSPC);
		ck_assert_uint_eq(got, 0);
		for (size_t i = size; i < sizeof(out); i++)
			ck_assert_int_eq(out[i], 'X');
	}
	ck_assert_int_eq(path_normalize(raw, strlen(raw), 0, out, sizeof("/v1/weather"), &got), 0);
	ck_assert_str_eq(out, "/v1/weather");
	ck_assert_int_eq(path_normalize("", 0, 0, out, 0, &got), -ENOSPC);
	ck_assert_int_eq(path_normalize("//", 2, 0, out, 2, &got), 0);
	ck_assert_str_eq(out, "/");
}
END_TEST

Suite *path_suite(void)
{
	Suite *s = suite_create("path");
	TCase *tc = tcase_create("normalize");

	tcase_add_loop_test(tc, test_normalize_table, 0, N(norm_cases));
	tcase_add_test(tc, test_normalize_by_length);
	tcase_add_test(tc, test_normalize_room);
	suite_add_tcase(s, tc);
	return s;
}

/* Tests of daemon/lib/strbuf.c: growth, the hard cap and what a write past
 * it leaves, truncate, steal, addf at every fill level, JSON string
 * writing that stays valid JSON whatever the bytes (control characters,
 * invalid UTF-8), the text of an empty buffer and JSON pointer tokens. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <json-c/json.h>

#include "strbuf.h"
#include "suites.h"

START_TEST(test_strbuf_grows_and_keeps_bytes)
{
	struct strbuf b;
	char chunk[97];

	strbuf_init(&b, SIZE_MAX);
	ck_assert_uint_eq(b.len, 0);
	for (int i = 0; i < 2000; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		strbuf_add(&b, chunk, sizeof(chunk));
	}
	ck_assert_int_eq(b.failed, 0);
	ck_assert_uint_eq(b.len, 2000 * sizeof(chunk));
	ck_assert_uint_ge(b.cap, b.len + 1);
	for (size_t i = 0; i < b.len; i++)
		ck_assert_int_eq(b.data[i], 'a' + (int)(i / sizeof(chunk)) % 26);
	ck_assert_int_eq(b.data[b.len], '\0');
	/* Binary bytes, NUL included, are kept as they are. */
	strbuf_truncate(&b, 0);
	strbuf_add(&b, "a\0b", 3);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_int_eq(memcmp(b.data, "a\0b", 4), 0);
	strbuf_release(&b);
	strbuf_release(&b); /* twice is harmless */
}
END_TEST

/* Exactly max bytes fit; one more fails the buffer, which then ignores
 * every write and gives nothing to steal. */
START_TEST(test_strbuf_cap)
{
	struct strbuf b;
	size_t len = 1;
	char *s;

	strbuf_init(&b, 10);
	strbuf_adds(&b, "0123456789");
	ck_assert_int_eq(b.failed, 0);
	ck_assert_str_eq(b.data, "0123456789");
	strbuf_adds(&b, "x");
	ck_assert_int_eq(b.failed, 1);
	strbuf_adds(&b, ""); /* nothing helps a failed buffer */
	strbuf_addf(&b, "%s", "");
	ck_assert_int_eq(b.failed, 1);
	strbuf_truncate(&b, 2);
	ck_assert_int_eq(b.failed, 1);
	ck_assert_ptr_null(strbuf_steal(&b, &len));
	ck_assert_uint_eq(len, 1); /* untouched */
	/* Stealing a failed buffer released it: it can be used again. */
	ck_assert_int_eq(b.failed, 0);
	strbuf_adds(&b, "ok");
	s = strbuf_steal(&b, &len);
	ck_assert_str_eq(s, "ok");
	free(s);

	/* A large add that would pass the cap leaves what was there. */
	strbuf_init(&b, 100);
	strbuf_adds(&b, "keep");
	{
		char big[101];

		memset(big, 'x', sizeof(big));
		strbuf_add(&b, big, sizeof(big));
	}
	ck_assert_int_eq(b.failed, 1);
	ck_assert_uint_eq(b.len, 4);
	strbuf_release(&b);

	/* max 0: only the empty string. */
	strbuf_init(&b, 0);
	strbuf_add(&b, "", 0);
	ck_assert_int_eq(b.failed, 0);
	strbuf_adds(&b, "a");
	ck_assert_int_eq(b.failed, 1);
	strbuf_release(&b);
}
END_TEST

/* The cap also holds for addf, at the byte. */
START_TEST(test_strbuf_addf_cap)
{
	struct strbuf b;

	strbuf_init(&b, 8);
	strbuf_addf(&b, "%d-%s", 123, "abcd");
	ck_assert_int_eq(b.failed, 0);
	ck_assert_str_eq(b.data, "123-abcd");
	strbuf_addf(&b, "%c", 'z');
	ck_assert_int_eq(b.failed, 1);
	ck_assert_ptr_null(strbuf_steal(&b, NULL));

	strbuf_init(&b, 300);
	strbuf_adds(&b, "x");
	strbuf_addf(&b, "%0300d", 7); /* 301 bytes in all */
	ck_assert_int_eq(b.failed, 1);
	strbuf_release(&b);
}
END_TEST

/* addf appends exactly what snprintf makes, whatever the fill of the
 * buffer when it is called (room to spare, just enough, one byte short). */
START_TEST(test_strbuf_addf_every_fill)
{
	static const char word[] = "0123456789abcdefghijklmnopqrstuvwxyz";

	for (size_t k = 0; k < 1100; k++) {
		struct strbuf b;
		char want[64];
		int n;

		strbuf_init(&b, SIZE_MAX);
		for (size_t i = 0; i < k; i++)
			strbuf_add(&b, "-", 1);
		strbuf_addf(&b, "%s|%zu", word, k);
		n = snprintf(want, sizeof(want), "%s|%zu", word, k);
		ck_assert_int_eq(b.failed, 0);
		ck_assert_uint_eq(b.len, k + (size_t)n);
		ck_assert_int_eq(memcmp(b.data + k, want, (size_t)n + 1), 0);
		for (size_t i = 0; i < k; i++)
			ck_assert_int_eq(b.data[i], '-');
		strbuf_release(&b);
	}
}
END_TEST

START_TEST(test_strbuf_truncate)
{
	struct strbuf b;

	strbuf_init(&b, 64);
	strbuf_adds(&b, "hello world");
	strbuf_truncate(&b, 5);
	ck_assert_uint_eq(b.len, 5);
	ck_assert_str_eq(b.data, "hello");
	strbuf_truncate(&b, 5);  /* at the end: as it is */
	strbuf_truncate(&b, 50); /* past it: as it is */
	ck_assert_str_eq(b.data, "hello");
	strbuf_adds(&b, "!");
	ck_assert_str_eq(b.data, "hello!");
	strbuf_truncate(&b, 0);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(b.data, "");
	strbuf_release(&b);
}
END_TEST

START_TEST(test_strbuf_steal)
{
	struct strbuf b;
	size_t len = 0;
	char *s;

	strbuf_init(&b, 64);
	strbuf_adds(&b, "abc");
	s = strbuf_steal(&b, &len);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, 3);
	ck_assert_str_eq(s, "abc");
	/* The buffer is empty and keeps its cap. */
	ck_assert_uint_eq(b.len, 0);
	strbuf_adds(&b, "defgh");
	ck_assert_str_eq(b.data, "defgh");
	ck_assert_str_eq(s, "abc"); /* the stolen bytes are the caller's */
	free(s);
	s = strbuf_steal(&b, NULL);
	ck_assert_str_eq(s, "defgh");
	free(s);
	{
		char big[65];

		memset(big, 'x', sizeof(big));
		strbuf_add(&b, big, sizeof(big));
		ck_assert_int_eq(b.failed, 1);
		strbuf_release(&b);
	}
	strbuf_init(&b, 3);
	strbuf_adds(&b, "abcd");
	ck_assert_ptr_null(strbuf_steal(&b, &len));
	strbuf_release(&b);
	/* Nothing added is not a failure: an empty string (admin answers
	 * with an empty body, not a 500). */
	strbuf_init(&b, 3);
	len = 7;
	s = strbuf_steal(&b, &len);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(s, "");
	free(s);
	strbuf_release(&b);
}
END_TEST

/* ---- JSON strings ---- */

/* 1 when s (len bytes) is well-formed UTF-8 (RFC 3629). */
static int utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i], n, cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc0 && c < 0xe0)
			n = 2, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c < 0xf0)
			n = 3, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c < 0xf8)
			n = 4, cp = c & 0x07, min = 0x10000;
		else
			return 0;
		if (i + n > len)
			return 0;
		for (unsigned k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n;
	}
	return 1;
}

/* Writes s as a JSON string, checks the text is strict JSON in valid UTF-8
 * with no raw control character, and returns the decoded string (the
 * caller frees it) with its length. */
static char *json_round_trip(const char *s, size_t len, size_t *ret_len)
{
	struct strbuf b;
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	char *out;

	strbuf_init(&b, SIZE_MAX);
	strbuf_add_json_string(&b, s, len);
	ck_assert_int_eq(b.failed, 0);
	ck_assert_msg(utf8_valid((const unsigned char *)b.data, b.len), "not UTF-8: %s", b.data);
	for (size_t i = 0; i < b.len; i++)
		ck_assert_msg((unsigned char)b.data[i] >= 0x20, "raw control byte at %zu", i);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, b.data, (int)b.len);
	ck_assert_msg(o && json_object_is_type(o, json_type_string), "not a JSON string: %s",
		      b.data);
	*ret_len = (size_t)json_object_get_string_len(o);
	out = malloc(*ret_len + 1);
	memcpy(out, json_object_get_string(o), *ret_len + 1);
	json_object_put(o);
	json_tokener_free(tok);
	strbuf_release(&b);
	return out;
}

/* Every ASCII byte, the controls and NUL included, comes back as it was. */
START_TEST(test_json_ascii_round_trip)
{
	char in[128];
	size_t len;
	char *out;

	for (int c = 0; c < 128; c++)
		in[c] = (char)c;
	out = json_round_trip(in, sizeof(in), &len);
	ck_assert_uint_eq(len, sizeof(in));
	ck_assert_int_eq(memcmp(out, in, sizeof(in)), 0);
	free(out);
}
END_TEST

START_TEST(test_json_escapes)
{
	struct strbuf b;

	strbuf_init(&b, 256);
	strbuf_add_json_string(&b, "a\"b\\c/\n\r\t\x01\x1f", 11);
	/* Quote and backslash escaped; the controls as \n \r \t or \u00XX. */
	ck_assert_str_eq(b.data, "\"a\\\"b\\\\c/\\n\\r\\t\\u0001\\u001f\"");
	strbuf_truncate(&b, 0);
	strbuf_add_json_string(&b, "", 0);
	ck_assert_str_eq(b.data, "\"\"");
	strbuf_truncate(&b, 0);
	strbuf_add_json_string(&b, "x\0y", 3);
	ck_assert_str_eq(b.data, "\"x\\u0000y\"");
	strbuf_release(&b);
	/* Under a cap too small for the escaped text, the buffer fails. */
	strbuf_init(&b, 5);
	strbuf_add_json_string(&b, "\x01", 1);
	ck_assert_int_eq(b.failed, 1);
	strbuf_release(&b);
}
END_TEST

/* Valid UTF-8 passes untouched, 2 to 4 bytes long. */
START_TEST(test_json_utf8_kept)
{
	static const char in[] =
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf";
	size_t len;
	char *out = json_round_trip(in, sizeof(in) - 1, &len);

	ck_assert_uint_eq(len, sizeof(in) - 1);
	ck_assert_str_eq(out, in);
	free(out);
}
END_TEST

/* Bytes that are not UTF-8 become U+FFFD; the text around them is kept. */
static const struct {
	const char *what, *bytes;
} invalid_cases[] = {
	{ "lone continuation", "\x80" },
	{ "0xff", "\xff" },
	{ "0xfe", "\xfe" },
	{ "overlong slash", "\xc0\xaf" },
	{ "overlong 3-byte", "\xe0\x80\xaf" },
	{ "overlong 4-byte", "\xf0\x80\x80\xaf" },
	{ "surrogate", "\xed\xa0\x80" },
	{ "past U+10FFFF", "\xf4\x90\x80\x80" },
	{ "5-byte form", "\xf8\x88\x80\x80\x80" },
	{ "truncated 2-byte", "\xc3" },
	{ "truncated 3-byte", "\xe2\x82" },
	{ "truncated 4-byte", "\xf0\x9f\x98" },
	{ "lead then ASCII", "\xe2(" },
};

START_TEST(test_json_invalid_utf8)
{
	const char *bad = invalid_cases[_i].bytes;
	char in[32];
	size_t n, len;
	char *out;

	n = (size_t)snprintf(in, sizeof(in), "<%s>", bad);
	out = json_round_trip(in, n, &len);
	ck_assert_msg(len >= 2 && out[0] == '<' && out[len - 1] == '>', "%s: around lost",
		      invalid_cases[_i].what);
	ck_assert_msg(strstr(out, "\xef\xbf\xbd") != NULL, "%s: no U+FFFD", invalid_cases[_i].what);
	/* Nothing of the invalid sequence went out but ASCII and U+FFFD. */
	for (size_t i = 1; i + 1 < len;) {
		if (memcmp(out + i, "\xef\xbf\xbd", 3) == 0)
			i += 3;
		else
			ck_assert_msg((unsigned char)out[i++] < 0x80, "%s: raw byte kept",
				      invalid_cases[_i].what);
	}
	free(out);
}
END_TEST

/* The schema compiler reads its location as a string before the first byte. */
START_TEST(test_strbuf_str_of_empty)
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

START_TEST(test_pointer_tokens_escape_tilde_and_slash)
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

Suite *strbuf_suite(void)
{
	Suite *s = suite_create("strbuf");
	TCase *tc = tcase_create("strbuf");

	tcase_add_test(tc, test_strbuf_grows_and_keeps_bytes);
	tcase_add_test(tc, test_strbuf_cap);
	tcase_add_test(tc, test_strbuf_addf_cap);
	tcase_add_test(tc, test_strbuf_addf_every_fill);
	tcase_add_test(tc, test_strbuf_truncate);
	tcase_add_test(tc, test_strbuf_steal);
	tcase_add_test(tc, test_json_ascii_round_trip);
	tcase_add_test(tc, test_json_escapes);
	tcase_add_test(tc, test_json_utf8_kept);
	tcase_add_loop_test(tc, test_json_invalid_utf8, 0,
			    (int)(sizeof(invalid_cases) / sizeof(invalid_cases[0])));
	tcase_add_test(tc, test_strbuf_str_of_empty);
	tcase_add_test(tc, test_pointer_tokens_escape_tilde_and_slash);
	suite_add_tcase(s, tc);
	return s;
}

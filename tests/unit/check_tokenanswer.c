/* Tests of daemon/proto/tokenanswer.c: a token endpoint's answer, one row
 * per body: RFC 6749's examples, what servers send in practice (a quoted
 * expires_in, a lowercase bearer, no token_type), and every refusal; then
 * the bounds, error answers, and the wiping of tokens. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "tokenanswer.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define DEF TOKENANSWER_LIFETIME_DEFAULT_S
#define CAP TOKENANSWER_LIFETIME_MAX_S

struct row {
	const char *body;
	enum tokenanswer_status status;
	const char *token; /* TOKENANSWER_OK */
	uint32_t lifetime_s;
};

static const struct row rows[] = {
	/* RFC 6749 5.1's example, and 4.4.3's */
	{ "{\"access_token\":\"2YotnFZFEjr1zCsicMWpAA\",\"token_type\":\"example\","
	  "\"expires_in\":3600,\"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\","
	  "\"example_parameter\":\"example_value\"}",
	  TOKENANSWER_BAD_TOKEN_TYPE, NULL, 0 },
	{ "{\"access_token\":\"2YotnFZFEjr1zCsicMWpAA\",\"token_type\":\"Bearer\","
	  "\"expires_in\":3600,\"example_parameter\":\"example_value\"}",
	  TOKENANSWER_OK, "2YotnFZFEjr1zCsicMWpAA", 3600 },
	/* token_type in any case, or absent, or null */
	{ "{\"access_token\":\"a\",\"token_type\":\"bearer\",\"expires_in\":60}", TOKENANSWER_OK,
	  "a", 60 },
	{ "{\"access_token\":\"a\",\"token_type\":\"BEARER\",\"expires_in\":60}", TOKENANSWER_OK,
	  "a", 60 },
	{ "{\"access_token\":\"a\",\"expires_in\":60}", TOKENANSWER_OK, "a", 60 },
	{ "{\"access_token\":\"a\",\"token_type\":null,\"expires_in\":60}", TOKENANSWER_OK, "a",
	  60 },
	{ "{\"access_token\":\"a\",\"token_type\":\"Bearer \"}", TOKENANSWER_BAD_TOKEN_TYPE, NULL,
	  0 },
	{ "{\"access_token\":\"a\",\"token_type\":\"DPoP\"}", TOKENANSWER_BAD_TOKEN_TYPE, NULL, 0 },
	{ "{\"access_token\":\"a\",\"token_type\":\"mac\"}", TOKENANSWER_BAD_TOKEN_TYPE, NULL, 0 },
	{ "{\"access_token\":\"a\",\"token_type\":1}", TOKENANSWER_BAD_TOKEN_TYPE, NULL, 0 },
	{ "{\"access_token\":\"a\",\"token_type\":\"bear\"}", TOKENANSWER_BAD_TOKEN_TYPE, NULL, 0 },
	{ "{\"access_token\":\"a\",\"token_type\":\"bearer\\u0000\"}", TOKENANSWER_BAD_TOKEN_TYPE,
	  NULL, 0 },
	/* expires_in: missing or null is an hour; a quoted number is read */
	{ "{\"access_token\":\"a\",\"token_type\":\"Bearer\"}", TOKENANSWER_OK, "a", DEF },
	{ "{\"access_token\":\"a\",\"expires_in\":null}", TOKENANSWER_OK, "a", DEF },
	{ "{\"access_token\":\"a\",\"expires_in\":\"3599\"}", TOKENANSWER_OK, "a", 3599 },
	{ "{\"access_token\":\"a\",\"expires_in\":\"007\"}", TOKENANSWER_OK, "a", 7 },
	{ "{\"access_token\":\"a\",\"expires_in\":1}", TOKENANSWER_OK, "a", 1 },
	{ "{\"access_token\":\"a\",\"expires_in\":31536000}", TOKENANSWER_OK, "a", CAP },
	{ "{\"access_token\":\"a\",\"expires_in\":31536001}", TOKENANSWER_OK, "a", CAP },
	{ "{\"access_token\":\"a\",\"expires_in\":9223372036854775807}", TOKENANSWER_OK, "a", CAP },
	{ "{\"access_token\":\"a\",\"expires_in\":99999999999999999999999}", TOKENANSWER_OK, "a",
	  CAP },
	{ "{\"access_token\":\"a\",\"expires_in\":\"18446744073709551615\"}", TOKENANSWER_OK, "a",
	  CAP },
	{ "{\"access_token\":\"a\",\"expires_in\":\"18446744073709551616\"}",
	  TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":0}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":\"0\"}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":-1}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":-9223372036854775808}",
	  TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":\"-1\"}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":\"+5\"}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":\" 5\"}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":\"5 \"}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":\"\"}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":\"5\\u0000\"}", TOKENANSWER_BAD_EXPIRES_IN, NULL,
	  0 },
	{ "{\"access_token\":\"a\",\"expires_in\":\"1h\"}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":3600.0}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":3600.5}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":36e2}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":true}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":[60]}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":{}}", TOKENANSWER_BAD_EXPIRES_IN, NULL, 0 },
	/* access_token: RFC 6750's b64token, nothing else */
	{ "{\"access_token\":\"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~+/==\"}", TOKENANSWER_OK,
	  "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~+/==", DEF },
	{ "{\"access_token\":\"mF_9.B5f-4.1JqM\"}", TOKENANSWER_OK, "mF_9.B5f-4.1JqM", DEF },
	{ "{\"access_token\":\"a=b\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"=\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"a b\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"a\\r\\nX-Evil: 1\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"a\\n\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"a\\u0000b\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"a\\tb\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"a,b\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"a\\\"b\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":\"caf\\u00e9\"}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":12345}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":[\"a\"]}", TOKENANSWER_BAD_TOKEN, NULL, 0 },
	{ "{\"access_token\":null}", TOKENANSWER_NO_ACCESS_TOKEN, NULL, 0 },
	{ "{\"token_type\":\"Bearer\",\"expires_in\":3600}", TOKENANSWER_NO_ACCESS_TOKEN, NULL, 0 },
	{ "{\"Access_Token\":\"a\"}", TOKENANSWER_NO_ACCESS_TOKEN, NULL, 0 },
	{ "{}", TOKENANSWER_NO_ACCESS_TOKEN, NULL, 0 },
	/* a bad member is refused even when the token is good */
	{ "{\"access_token\":\"a\",\"token_type\":\"mac\",\"expires_in\":60}",
	  TOKENANSWER_BAD_TOKEN_TYPE, NULL, 0 },
	/* unknown members are ignored, whatever they hold; repeated: the last */
	{ "{\"x\":{\"y\":[1,2,{\"z\":null}]},\"access_token\":\"a\",\"scope\":\"r w\"}",
	  TOKENANSWER_OK, "a", DEF },
	{ "{\"access_token\":\"first\",\"access_token\":\"second\"}", TOKENANSWER_OK, "second",
	  DEF },
	{ "{\"access_token\":\"a b\",\"access_token\":\"ok\"}", TOKENANSWER_OK, "ok", DEF },
	{ "{\"access_token\":\"ok\",\"expires_in\":0,\"expires_in\":5}", TOKENANSWER_OK, "ok", 5 },
	/* whitespace around the document is JSON */
	{ " \r\n\t{\"access_token\":\"a\"}\r\n", TOKENANSWER_OK, "a", DEF },
	/* not a JSON object */
	{ "", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ " ", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{\"access_token\":\"a\"", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{\"access_token\":\"a\"}x", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{\"access_token\":\"a\"}{}", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{\"access_token\":\"a\",}", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{'access_token':'a'}", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{access_token:\"a\"}", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":NaN}", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{\"access_token\":\"a\",\"expires_in\":1e999}", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{\"access_token\":\"a\x01\"}", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "{\"access_token\":\"\xff\"}", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "access_token=a&expires_in=60", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "<html>502 Bad Gateway</html>", TOKENANSWER_NOT_JSON, NULL, 0 },
	{ "[{\"access_token\":\"a\"}]", TOKENANSWER_NOT_OBJECT, NULL, 0 },
	{ "\"a\"", TOKENANSWER_NOT_OBJECT, NULL, 0 },
	{ "null", TOKENANSWER_NOT_OBJECT, NULL, 0 },
	{ "42", TOKENANSWER_NOT_OBJECT, NULL, 0 },
	/* an error answer wins over a token */
	{ "{\"error\":\"invalid_client\"}", TOKENANSWER_ERROR, NULL, 0 },
	{ "{\"error\":\"x\",\"access_token\":\"a\"}", TOKENANSWER_ERROR, NULL, 0 },
	{ "{\"error\":null,\"access_token\":\"a\"}", TOKENANSWER_OK, "a", DEF },
	{ "{\"error\":42}", TOKENANSWER_ERROR, NULL, 0 },
};

START_TEST(test_rows)
{
	const struct row *row = &rows[_i];
	struct tokenanswer a;
	int r = tokenanswer_parse(row->body, strlen(row->body), &a);

	ck_assert_msg(a.status == row->status, "%s: %s, expected %s", row->body,
		      tokenanswer_status_name(a.status), tokenanswer_status_name(row->status));
	if (row->status == TOKENANSWER_OK) {
		ck_assert_int_eq(r, 0);
		ck_assert_str_eq(a.token.value, row->token);
		ck_assert_uint_eq(a.token.len, strlen(row->token));
		ck_assert_uint_eq(a.token.lifetime_s, row->lifetime_s);
		ck_assert_int_eq(a.lifetime_default, strstr(row->body, "\"expires_in\":") == NULL ||
							 strstr(row->body, "\"expires_in\":null"));
		ck_assert(!a.lifetime_capped || row->lifetime_s == CAP);
	} else {
		ck_assert_int_eq(r, -EINVAL);
		ck_assert_uint_eq(a.token.len, 0);
		ck_assert_str_eq(a.token.value, "");
		ck_assert_uint_eq(a.token.lifetime_s, 0);
	}
	tokenanswer_release(&a);
}
END_TEST

/* The cap is flagged only when expires_in was over it. */
START_TEST(test_capped_flag)
{
	static const char at[] = "{\"access_token\":\"a\",\"expires_in\":31536000}";
	static const char over[] = "{\"access_token\":\"a\",\"expires_in\":\"31536001\"}";
	struct tokenanswer a;

	ck_assert_int_eq(tokenanswer_parse(at, strlen(at), &a), 0);
	ck_assert_int_eq(a.lifetime_capped, 0);
	ck_assert_int_eq(tokenanswer_parse(over, strlen(over), &a), 0);
	ck_assert_int_eq(a.lifetime_capped, 1);
	ck_assert_uint_eq(a.token.lifetime_s, CAP);
	tokenanswer_release(&a);
}
END_TEST

/* RFC 6749 5.2's example, and a description that is not printable ASCII. */
START_TEST(test_error_answer)
{
	static const char rfc[] = "{\"error\":\"invalid_request\"}";
	static const char described[] =
	    "{\"error\":\"invalid_client\",\"error_description\":\"Client "
	    "authentication failed\\r\\n\\u00e9\\t\\u0000!\",\"error_uri\":\"https://x\"}";
	struct tokenanswer a;

	ck_assert_int_eq(tokenanswer_parse(rfc, strlen(rfc), &a), -EINVAL);
	ck_assert_int_eq(a.status, TOKENANSWER_ERROR);
	ck_assert_str_eq(a.error, "invalid_request");
	ck_assert_str_eq(a.error_description, "");
	ck_assert_int_eq(tokenanswer_parse(described, strlen(described), &a), -EINVAL);
	ck_assert_str_eq(a.error, "invalid_client");
	/* é is two bytes in UTF-8 */
	ck_assert_str_eq(a.error_description, "Client authentication failed?????\?!");
	tokenanswer_release(&a);
	ck_assert_str_eq(a.error, "");
}
END_TEST

/* error and error_description are cut to their bounds. */
START_TEST(test_error_cut)
{
	char body[1024], want[TOKENANSWER_DESCRIPTION_MAX + 1];
	char code[TOKENANSWER_ERROR_MAX + 11], desc[TOKENANSWER_DESCRIPTION_MAX + 11];
	struct tokenanswer a;

	memset(code, 'e', sizeof(code) - 1);
	code[sizeof(code) - 1] = '\0';
	memset(desc, 'd', sizeof(desc) - 1);
	desc[sizeof(desc) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"error\":\"%s\",\"error_description\":\"%s\"}", code, desc);
	ck_assert_int_eq(tokenanswer_parse(body, strlen(body), &a), -EINVAL);
	ck_assert_uint_eq(strlen(a.error), TOKENANSWER_ERROR_MAX);
	memset(want, 'd', TOKENANSWER_DESCRIPTION_MAX);
	want[TOKENANSWER_DESCRIPTION_MAX] = '\0';
	ck_assert_str_eq(a.error_description, want);
	tokenanswer_release(&a);
}
END_TEST

/* A token of TOKENANSWER_TOKEN_MAX bytes is kept; one more is refused. */
START_TEST(test_token_bound)
{
	size_t tlen = TOKENANSWER_TOKEN_MAX + (size_t)_i;
	char *body = malloc(tlen + 32);
	struct tokenanswer a;
	int n;

	ck_assert_ptr_nonnull(body);
	n = sprintf(body, "{\"access_token\":\"");
	memset(body + n, 'T', tlen);
	strcpy(body + n + tlen, "\"}");
	if (_i == 0) {
		ck_assert_int_eq(tokenanswer_parse(body, strlen(body), &a), 0);
		ck_assert_uint_eq(a.token.len, TOKENANSWER_TOKEN_MAX);
		ck_assert_uint_eq(strlen(a.token.value), TOKENANSWER_TOKEN_MAX);
	} else {
		ck_assert_int_eq(tokenanswer_parse(body, strlen(body), &a), -EINVAL);
		ck_assert_int_eq(a.status, TOKENANSWER_TOKEN_TOO_LONG);
	}
	tokenanswer_release(&a);
	free(body);
}
END_TEST

/* An answer of TOKENANSWER_MAX bytes is read; one byte more is not, even
 * when it would parse. */
START_TEST(test_size_bound)
{
	size_t len = TOKENANSWER_MAX + (size_t)_i;
	char *body = malloc(len + 1);
	static const char head[] = "{\"access_token\":\"a\"}";
	struct tokenanswer a;

	ck_assert_ptr_nonnull(body);
	memcpy(body, head, sizeof(head) - 1);
	memset(body + sizeof(head) - 1, ' ', len - (sizeof(head) - 1));
	body[len] = '\0';
	ck_assert_int_eq(tokenanswer_parse(body, len, &a), _i == 0 ? 0 : -EINVAL);
	ck_assert_int_eq(a.status, _i == 0 ? TOKENANSWER_OK : TOKENANSWER_TOO_LARGE);
	tokenanswer_release(&a);
	free(body);
}
END_TEST

/* Unknown members may nest up to the depth limit; deeper is not JSON to
 * this parser. */
START_TEST(test_depth)
{
	char body[256];
	int depth = TOKENANSWER_DEPTH_MAX + _i, n = 0;
	struct tokenanswer a;

	/* the answer object itself is the first level */
	n += sprintf(body + n, "{\"access_token\":\"a\",\"x\":");
	for (int k = 1; k < depth; k++)
		body[n++] = '[';
	body[n++] = '1';
	for (int k = 1; k < depth; k++)
		body[n++] = ']';
	body[n++] = '}';
	body[n] = '\0';
	ck_assert_int_eq(tokenanswer_parse(body, (size_t)n, &a), _i == 0 ? 0 : -EINVAL);
	ck_assert_int_eq(a.status, _i == 0 ? TOKENANSWER_OK : TOKENANSWER_NOT_JSON);
	tokenanswer_release(&a);
}
END_TEST

/* The bytes after len are not read: a NUL-free prefix parses alone. */
START_TEST(test_length_not_nul)
{
	static const char body[] = "{\"access_token\":\"a\"}garbage";
	static const char nul[] = "{\"access_token\":\"a\"}\0";
	struct tokenanswer a;

	ck_assert_int_eq(tokenanswer_parse(body, 20, &a), 0);
	ck_assert_int_eq(tokenanswer_parse(nul, sizeof(nul) - 1, &a), -EINVAL);
	ck_assert_int_eq(a.status, TOKENANSWER_NOT_JSON);
	tokenanswer_release(&a);
}
END_TEST

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* Release and move wipe every byte of the token they let go. */
START_TEST(test_wipe)
{
	static const char body[] = "{\"access_token\":\"s3cr3t\",\"expires_in\":60}";
	struct tokenanswer a;
	struct token *held = malloc(sizeof(*held));

	ck_assert_ptr_nonnull(held);
	memset(held, 0x5a, sizeof(*held));
	held->len = 3;
	ck_assert_int_eq(tokenanswer_parse(body, strlen(body), &a), 0);
	token_move(held, &a.token);
	ck_assert_str_eq(held->value, "s3cr3t");
	ck_assert_uint_eq(held->len, 6);
	ck_assert_uint_eq(held->lifetime_s, 60);
	/* the old value's bytes past the new one are gone too */
	ck_assert(all_zero(held->value + 7, sizeof(held->value) - 7));
	ck_assert(all_zero(&a.token, sizeof(a.token)));
	token_move(held, held);
	ck_assert_str_eq(held->value, "s3cr3t");
	tokenanswer_release(&a);
	ck_assert(all_zero(&a, sizeof(a)));
	token_release(held);
	ck_assert(all_zero(held, sizeof(*held)));
	free(held);
}
END_TEST

START_TEST(test_names)
{
	for (int s = 0; s < TOKENANSWER__COUNT; s++) {
		const char *name = tokenanswer_status_name((enum tokenanswer_status)s);

		ck_assert_ptr_nonnull(name);
		ck_assert_str_ne(name, "unknown");
		for (int t = 0; t < s; t++)
			ck_assert_str_ne(name, tokenanswer_status_name((enum tokenanswer_status)t));
	}
	ck_assert_str_eq(tokenanswer_status_name(TOKENANSWER_NOT_JSON), "not_json");
	ck_assert_str_eq(tokenanswer_status_name(TOKENANSWER__COUNT), "unknown");
}
END_TEST

Suite *tokenanswer_suite(void)
{
	Suite *s = suite_create("tokenanswer");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_rows, 0, N(rows));
	tcase_add_test(tc, test_capped_flag);
	tcase_add_test(tc, test_error_answer);
	tcase_add_test(tc, test_error_cut);
	tcase_add_loop_test(tc, test_token_bound, 0, 2);
	tcase_add_loop_test(tc, test_size_bound, 0, 2);
	tcase_add_loop_test(tc, test_depth, 0, 2);
	tcase_add_test(tc, test_length_not_nul);
	tcase_add_test(tc, test_wipe);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return s;
}

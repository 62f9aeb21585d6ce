/* Tests of daemon/proto/tokenrequest.c: the client-credentials request,
 * with RFC 6749's examples (2.3.1's Basic credentials and its body
 * parameters, 4.4.2's grant, appendix B's encoded value), the field order,
 * the reserved names, the bounds and the wiping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "schema_format.h"
#include "tokenrequest.h"

static struct tokenrequest *req;

static void setup(void)
{
	req = malloc(sizeof(*req));
	ck_assert_ptr_nonnull(req);
}

static void teardown(void)
{
	free(req);
	req = NULL;
}

/* RFC 6749 2.3.1: "Authorization: Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW" for
 * s6BhdRkqt3 and gX1fBat3bV; 4.4.2: the body is the grant alone. */
START_TEST(test_rfc_basic)
{
	struct tokenrequest_params p = { .client_id = "s6BhdRkqt3",
					 .client_secret = "gX1fBat3bV",
					 .client_auth = TOKENREQUEST_AUTH_BASIC };

	ck_assert_int_eq(tokenrequest_build(&p, req), 0);
	ck_assert_str_eq(req->authorization, "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW");
	ck_assert_uint_eq(req->authorization_len, strlen(req->authorization));
	ck_assert_str_eq(req->body, "grant_type=client_credentials");
	ck_assert_uint_eq(req->body_len, strlen(req->body));
}
END_TEST

/* RFC 6749 2.3.1's credentials in the body. */
START_TEST(test_rfc_post)
{
	struct tokenrequest_params p = { .client_id = "s6BhdRkqt3",
					 .client_secret = "7Fjfp0ZBr1KtDRbnfVdmIw",
					 .client_auth = TOKENREQUEST_AUTH_POST };

	ck_assert_int_eq(tokenrequest_build(&p, req), 0);
	ck_assert_str_eq(req->body, "grant_type=client_credentials&client_id=s6BhdRkqt3"
				    "&client_secret=7Fjfp0ZBr1KtDRbnfVdmIw");
	ck_assert_str_eq(req->authorization, "");
	ck_assert_uint_eq(req->authorization_len, 0);
}
END_TEST

/* Appendix B: " %&+£€" is encoded "+%25%26%2B%C2%A3%E2%82%AC"; scope and
 * params follow the grant in order, the credentials come last. */
START_TEST(test_order_and_encoding)
{
	static const struct tokenrequest_param extra[] = {
		{ "audience", "https://api.example/v1?a=b&c" },
		{ "resource", " %&+\xc2\xa3\xe2\x82\xac" },
		{ "x y", "*-._~!'()" },
	};
	struct tokenrequest_params p = { .client_id = "id",
					 .client_secret = "se cret",
					 .scope = "read write",
					 .params = extra,
					 .n_params = 3,
					 .client_auth = TOKENREQUEST_AUTH_POST };

	ck_assert_int_eq(tokenrequest_build(&p, req), 0);
	ck_assert_str_eq(req->body, "grant_type=client_credentials&scope=read+write"
				    "&audience=https%3A%2F%2Fapi.example%2Fv1%3Fa%3Db%26c"
				    "&resource=+%25%26%2B%C2%A3%E2%82%AC&x+y=*-._%7E%21%27%28%29"
				    "&client_id=id&client_secret=se+cret");
	/* an empty scope is no scope */
	p.scope = "";
	p.n_params = 0;
	ck_assert_int_eq(tokenrequest_build(&p, req), 0);
	ck_assert_str_eq(req->body,
			 "grant_type=client_credentials&client_id=id&client_secret=se+cret");
}
END_TEST

/* Basic encodes id and secret before base64, so a ':' in the id stays in
 * the id; the decoded user-pass says so. */
START_TEST(test_basic_encodes_first)
{
	struct tokenrequest_params p = { .client_id = "my:client",
					 .client_secret = "p@ss w%rd:\xc3\xa9",
					 .scope = "a",
					 .client_auth = TOKENREQUEST_AUTH_BASIC };
	unsigned char decoded[TOKENREQUEST_AUTHORIZATION_MAX];
	const char *b64;
	size_t len, n;

	ck_assert_int_eq(tokenrequest_build(&p, req), 0);
	ck_assert_str_eq(req->body, "grant_type=client_credentials&scope=a");
	ck_assert(strncmp(req->authorization, "Basic ", 6) == 0);
	b64 = req->authorization + 6;
	ck_assert(schema_base64_check(b64, strlen(b64), &len));
	n = schema_base64_decode(b64, strlen(b64), decoded);
	ck_assert_uint_eq(n, len);
	decoded[n] = '\0';
	ck_assert_str_eq((char *)decoded, "my%3Aclient:p%40ss+w%25rd%3A%C3%A9");
}
END_TEST

/* Every padding length of base64: user-pass lengths 3, 4 and 5. */
START_TEST(test_base64_padding)
{
	static const char *const ids[] = { "a", "ab", "abc" };
	static const char *const want[] = { "Basic YTpi", "Basic YWI6Yg==", "Basic YWJjOmI=" };
	struct tokenrequest_params p = { .client_secret = "b" };

	p.client_id = ids[_i];
	ck_assert_int_eq(tokenrequest_build(&p, req), 0);
	ck_assert_str_eq(req->authorization, want[_i]);
}
END_TEST

START_TEST(test_reserved)
{
	static const char *const bad[] = { "grant_type", "scope", "client_id", "client_secret",
					   "" };
	struct tokenrequest_param extra = { NULL, "v" };
	struct tokenrequest_params p = {
		.client_id = "id", .client_secret = "s", .params = &extra, .n_params = 1
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		extra.name = bad[i];
		ck_assert_int_eq(tokenrequest_param_allowed(bad[i]), 0);
		ck_assert_int_eq(tokenrequest_build(&p, req), -EINVAL);
	}
	ck_assert_int_eq(tokenrequest_param_allowed(NULL), 0);
	ck_assert_int_eq(tokenrequest_param_allowed("Scope"), 1);
	ck_assert_int_eq(tokenrequest_param_allowed("audience"), 1);
	extra.name = "audience";
	extra.value = NULL;
	ck_assert_int_eq(tokenrequest_build(&p, req), -EINVAL);
	extra.value = "";
	ck_assert_int_eq(tokenrequest_build(&p, req), 0);
	ck_assert_str_eq(req->body, "grant_type=client_credentials&audience=");
	p.client_secret = NULL;
	ck_assert_int_eq(tokenrequest_build(&p, req), -EINVAL);
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

/* A body that fills the bound exactly is built; one byte more is -E2BIG
 * and leaves nothing behind. */
START_TEST(test_body_bound)
{
	static const char fixed[] = "grant_type=client_credentials&client_id=i&client_secret=";
	size_t room = TOKENREQUEST_BODY_MAX - (sizeof(fixed) - 1) + (size_t)_i;
	char *secret = malloc(room + 1);
	struct tokenrequest_params p = { .client_id = "i", .client_auth = TOKENREQUEST_AUTH_POST };

	ck_assert_ptr_nonnull(secret);
	memset(secret, 's', room);
	secret[room] = '\0';
	p.client_secret = secret;
	if (_i == 0) {
		ck_assert_int_eq(tokenrequest_build(&p, req), 0);
		ck_assert_uint_eq(req->body_len, TOKENREQUEST_BODY_MAX);
	} else {
		ck_assert_int_eq(tokenrequest_build(&p, req), -E2BIG);
		ck_assert(all_zero(req, sizeof(*req)));
	}
	free(secret);
}
END_TEST

/* The Basic value's bound: "Basic " and the base64 of a user-pass of 3066
 * bytes is 4094 bytes (within), of 3069 bytes 4098 (over). */
START_TEST(test_authorization_bound)
{
	size_t pass = _i == 0 ? 3066 : 3069;
	char *secret = malloc(pass - 2 + 1);
	struct tokenrequest_params p = { .client_id = "i", .client_auth = TOKENREQUEST_AUTH_BASIC };

	ck_assert_ptr_nonnull(secret);
	memset(secret, 's', pass - 2);
	secret[pass - 2] = '\0';
	p.client_secret = secret;
	if (_i == 0) {
		ck_assert_int_eq(tokenrequest_build(&p, req), 0);
		ck_assert_uint_eq(req->authorization_len, 6 + 3066 / 3 * 4);
	} else {
		ck_assert_int_eq(tokenrequest_build(&p, req), -E2BIG);
		ck_assert(all_zero(req, sizeof(*req)));
	}
	free(secret);
}
END_TEST

START_TEST(test_release_wipes)
{
	struct tokenrequest_params p = { .client_id = "id", .client_secret = "secret" };

	ck_assert_int_eq(tokenrequest_build(&p, req), 0);
	ck_assert(!all_zero(req, sizeof(*req)));
	tokenrequest_release(req);
	ck_assert(all_zero(req, sizeof(*req)));
}
END_TEST

Suite *tokenrequest_suite(void)
{
	Suite *s = suite_create("tokenrequest");
	TCase *tc = tcase_create("build");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rfc_basic);
	tcase_add_test(tc, test_rfc_post);
	tcase_add_test(tc, test_order_and_encoding);
	tcase_add_test(tc, test_basic_encodes_first);
	tcase_add_loop_test(tc, test_base64_padding, 0, 3);
	tcase_add_test(tc, test_reserved);
	tcase_add_loop_test(tc, test_body_bound, 0, 2);
	tcase_add_loop_test(tc, test_authorization_bound, 0, 2);
	tcase_add_test(tc, test_release_wipes);
	suite_add_tcase(s, tc);
	return s;
}

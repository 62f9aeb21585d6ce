/* problem+json bodies (SPEC 5) parsed back with json-c: fixed and optional
 * fields, status defaults and overrides, the code table, upstream_body
 * truncation at a UTF-8 boundary, escaping of control bytes and invalid
 * UTF-8, history entries; strbuf's cap and JSON string escaping. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "problem.h"
#include "strbuf.h"
#include "suites.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Parses the whole of text strictly (valid UTF-8 required); fails the test
 * on any syntax error or trailing bytes. */
static struct json_object *parse_strict(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	ck_assert_ptr_nonnull(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	ck_assert_msg(o != NULL && json_tokener_get_error(tok) == json_tokener_success,
		      "not valid JSON (%s): %s",
		      json_tokener_error_desc(json_tokener_get_error(tok)), text);
	ck_assert_msg(json_tokener_get_parse_end(tok) == len, "trailing bytes after JSON: %s",
		      text);
	json_tokener_free(tok);
	ck_assert(json_object_is_type(o, json_type_object));
	return o;
}

/* Renders p, checks the length and parses the body back. */
static struct json_object *render(const struct problem *p)
{
	struct json_object *o, *lax;
	size_t len = 0;
	char *body = problem_render(p, &len);

	ck_assert_ptr_nonnull(body);
	ck_assert_uint_eq(len, strlen(body));
	o = parse_strict(body, len);
	lax = json_tokener_parse(body);
	ck_assert_ptr_nonnull(lax);
	json_object_put(lax);
	free(body);
	return o;
}

static struct json_object *field(struct json_object *o, const char *key, enum json_type type)
{
	struct json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "field '%s' missing", key);
	ck_assert_msg(json_object_is_type(v, type), "field '%s' has type %s", key,
		      json_type_to_name(json_object_get_type(v)));
	return v;
}

static const char *str_field(struct json_object *o, const char *key)
{
	return json_object_get_string(field(o, key, json_type_string));
}

static long long int_field(struct json_object *o, const char *key)
{
	return (long long)json_object_get_int64(field(o, key, json_type_int));
}

static void assert_absent(struct json_object *o, const char *key)
{
	ck_assert_msg(!json_object_object_get_ex(o, key, NULL), "field '%s' should be absent", key);
}

/* ---- the code table ---------------------------------------------------- */

static const struct {
	enum problem_code code;
	const char *name;
	int status;
} spec_codes[] = {
	{ PROBLEM_BAD_REQUEST, "bad_request", 400 },
	{ PROBLEM_UNKNOWN_PROFILE, "unknown_profile", 404 },
	{ PROBLEM_ROUTE_NOT_FOUND, "route_not_found", 404 },
	{ PROBLEM_REQUEST_TIMEOUT, "request_timeout", 408 },
	{ PROBLEM_PAYLOAD_TOO_LARGE, "payload_too_large", 413 },
	{ PROBLEM_HEADERS_TOO_LARGE, "headers_too_large", 431 },
	{ PROBLEM_REQUEST_INVALID, "request_invalid", 422 },
	{ PROBLEM_UPSTREAM_STATUS, "upstream_status", 502 },
	{ PROBLEM_RATE_LIMITED, "rate_limited", 429 },
	{ PROBLEM_UPSTREAM_UNAVAILABLE, "upstream_unavailable", 502 },
	{ PROBLEM_SCHEMA_VIOLATION, "schema_violation", 502 },
	{ PROBLEM_RESPONSE_TOO_LARGE, "response_too_large", 502 },
	{ PROBLEM_CIRCUIT_OPEN, "circuit_open", 503 },
	{ PROBLEM_OVERLOADED, "overloaded", 503 },
	{ PROBLEM_UPSTREAM_TIMEOUT, "upstream_timeout", 504 },
	{ PROBLEM_INTERNAL, "internal", 500 },
	{ PROBLEM_NOT_IMPLEMENTED, "not_implemented", 501 },
};

START_TEST(test_code_table)
{
	int seen[PROBLEM__COUNT] = { 0 };

	ck_assert_int_eq(N(spec_codes), PROBLEM__COUNT);
	for (int i = 0; i < N(spec_codes); i++) {
		enum problem_code c = spec_codes[i].code;
		const char *title = problem_code_title(c);

		ck_assert_int_eq(seen[c], 0);
		seen[c] = 1;
		ck_assert_str_eq(problem_code_name(c), spec_codes[i].name);
		ck_assert_msg(problem_code_status(c) == spec_codes[i].status, "%s: status %d, want %d",
			      spec_codes[i].name, problem_code_status(c), spec_codes[i].status);
		ck_assert_ptr_nonnull(title);
		ck_assert_uint_gt(strlen(title), 0);
	}
	for (int i = 0; i < PROBLEM__COUNT; i++)
		for (int j = i + 1; j < PROBLEM__COUNT; j++)
			ck_assert_str_ne(problem_code_name((enum problem_code)i),
					 problem_code_name((enum problem_code)j));
	ck_assert_str_eq(problem_code_name(PROBLEM__COUNT), "internal");
	ck_assert_int_eq(problem_code_status(PROBLEM__COUNT), 500);
	ck_assert_str_eq(problem_code_title(PROBLEM_UPSTREAM_TIMEOUT), "Upstream timed out");
}
END_TEST

/* Every code renders to a body whose fixed fields agree with the table. */
START_TEST(test_render_each_code)
{
	enum problem_code c = spec_codes[_i].code;
	struct problem p;
	struct json_object *o;
	char type[128];

	problem_init(&p, c);
	o = render(&p);
	snprintf(type, sizeof(type), "urn:braced:problem:%s", spec_codes[_i].name);
	ck_assert_str_eq(str_field(o, "type"), type);
	ck_assert_str_eq(str_field(o, "title"), problem_code_title(c));
	ck_assert_int_eq(int_field(o, "status"), spec_codes[_i].status);
	ck_assert_str_eq(str_field(o, "code"), spec_codes[_i].name);
	ck_assert_str_eq(str_field(o, "detail"), problem_code_title(c));
	ck_assert_int_eq(problem_status(&p), spec_codes[_i].status);
	json_object_put(o);
}
END_TEST

/* ---- fields ------------------------------------------------------------ */

static const char *const optional_fields[] = {
	"profile", "route", "correlation_id", "idempotency_key", "attempts", "elapsed_ms",
	"retryable", "retry_after_ms", "upstream_status", "upstream_body", "history",
};

START_TEST(test_minimal_has_no_optional_fields)
{
	struct problem p;
	struct json_object *o;

	problem_init(&p, PROBLEM_UNKNOWN_PROFILE);
	ck_assert_int_eq(p.status, 0);
	ck_assert_ptr_null(p.detail);
	o = render(&p);
	ck_assert_int_eq(json_object_object_length(o), 5);
	for (int i = 0; i < N(optional_fields); i++)
		assert_absent(o, optional_fields[i]);
	ck_assert_str_eq(str_field(o, "type"), "urn:braced:problem:unknown_profile");
	ck_assert_str_eq(str_field(o, "title"), "Unknown profile");
	ck_assert_int_eq(int_field(o, "status"), 404);
	ck_assert_str_eq(str_field(o, "detail"), "Unknown profile");
	ck_assert_str_eq(str_field(o, "code"), "unknown_profile");
	json_object_put(o);
}
END_TEST

START_TEST(test_all_fields)
{
	static const struct history_entry hist[] = {
		{ 1, "status", 503, 12, 143, 0, "10.0.0.5:443" },
		{ 2, "timeout", 0, 4000, 0, 0, "[2001:db8::6]:443" },
		{ 3, "ok", 200, 7, 250, 0, "" },
	};
	static const char *const spec_order[] = {
		"type", "title", "status", "detail", "code", "profile", "route",
		"correlation_id", "idempotency_key", "attempts", "elapsed_ms", "retryable",
		"retry_after_ms", "upstream_status", "upstream_body", "history",
	};
	struct problem p;
	struct json_object *o, *h, *e;
	int k = 0;

	problem_init(&p, PROBLEM_UPSTREAM_TIMEOUT);
	p.detail = "total budget of 10000 ms spent after 3 attempts";
	p.profile = "weather";
	p.route = "GET /v1/weather";
	p.correlation_id = "c0ffee";
	p.idempotency_key = "0d6f1c3e-6b7a-4c47-9a9e-2f0b3a5f7c11";
	p.counted = 1;
	p.attempts = 3;
	p.elapsed_ms = 10002;
	p.retryable = PROBLEM_RETRYABLE_YES;
	p.retry_after = (struct retry_after){ .set = 1, .ms = 1000 };
	p.upstream_status = 503;
	p.upstream_body = "busy";
	p.upstream_body_len = 4;
	p.history = hist;
	p.nhistory = N(hist);
	o = render(&p);

	ck_assert_int_eq(int_field(o, "status"), 504);
	ck_assert_str_eq(str_field(o, "detail"), "total budget of 10000 ms spent after 3 attempts");
	ck_assert_str_eq(str_field(o, "profile"), "weather");
	ck_assert_str_eq(str_field(o, "route"), "GET /v1/weather");
	ck_assert_str_eq(str_field(o, "correlation_id"), "c0ffee");
	ck_assert_str_eq(str_field(o, "idempotency_key"), "0d6f1c3e-6b7a-4c47-9a9e-2f0b3a5f7c11");
	ck_assert_int_eq(int_field(o, "attempts"), 3);
	ck_assert_int_eq(int_field(o, "elapsed_ms"), 10002);
	ck_assert(json_object_get_boolean(field(o, "retryable", json_type_boolean)));
	ck_assert_int_eq(int_field(o, "retry_after_ms"), 1000);
	ck_assert_int_eq(int_field(o, "upstream_status"), 503);
	ck_assert_str_eq(str_field(o, "upstream_body"), "busy");

	h = field(o, "history", json_type_array);
	ck_assert_uint_eq(json_object_array_length(h), 3);
	for (size_t i = 0; i < 3; i++) {
		e = json_object_array_get_idx(h, i);
		ck_assert(json_object_is_type(e, json_type_object));
		ck_assert_int_eq(int_field(e, "attempt"), hist[i].attempt);
		ck_assert_str_eq(str_field(e, "outcome"), hist[i].outcome);
		ck_assert_int_eq(int_field(e, "ms"), hist[i].ms);
		ck_assert_int_eq(int_field(e, "wait_ms"), hist[i].wait_ms);
		if (hist[i].status)
			ck_assert_int_eq(int_field(e, "status"), hist[i].status);
		else
			assert_absent(e, "status");
		/* The endpoint dialled, when braced chose one (SPEC 4.11). */
		if (hist[i].endpoint[0])
			ck_assert_str_eq(str_field(e, "endpoint"), hist[i].endpoint);
		else
			assert_absent(e, "endpoint");
	}

	/* Keys come in SPEC 5's order. */
	json_object_object_foreach(o, key, val) {
		(void)val;
		ck_assert_int_lt(k, N(spec_order));
		ck_assert_str_eq(key, spec_order[k]);
		k++;
	}
	ck_assert_int_eq(k, N(spec_order));
	json_object_put(o);
}
END_TEST

START_TEST(test_zero_values_are_present)
{
	struct problem p;
	struct json_object *o;

	problem_init(&p, PROBLEM_BAD_REQUEST);
	p.counted = 1;
	p.attempts = 0;
	p.elapsed_ms = 0;
	p.retryable = PROBLEM_RETRYABLE_NO;
	p.retry_after = (struct retry_after){ .set = 1, .ms = 0 };
	p.upstream_body = "";
	p.upstream_body_len = 0;
	o = render(&p);
	ck_assert_int_eq(int_field(o, "attempts"), 0);
	ck_assert_int_eq(int_field(o, "elapsed_ms"), 0);
	ck_assert(!json_object_get_boolean(field(o, "retryable", json_type_boolean)));
	ck_assert_int_eq(int_field(o, "retry_after_ms"), 0);
	ck_assert_str_eq(str_field(o, "upstream_body"), "");
	assert_absent(o, "upstream_status");
	assert_absent(o, "history");
	json_object_put(o);
}
END_TEST

START_TEST(test_upstream_status_override)
{
	struct problem p;
	struct json_object *o;

	problem_init(&p, PROBLEM_UPSTREAM_STATUS);
	ck_assert_int_eq(problem_status(&p), 502);
	o = render(&p);
	ck_assert_int_eq(int_field(o, "status"), 502);
	json_object_put(o);

	p.status = 404;
	p.upstream_status = 404;
	ck_assert_int_eq(problem_status(&p), 404);
	o = render(&p);
	ck_assert_int_eq(int_field(o, "status"), 404);
	ck_assert_int_eq(int_field(o, "upstream_status"), 404);
	ck_assert_str_eq(str_field(o, "code"), "upstream_status");
	ck_assert_str_eq(str_field(o, "type"), "urn:braced:problem:upstream_status");
	json_object_put(o);

	problem_init(&p, PROBLEM_UPSTREAM_STATUS);
	p.status = 503;
	o = render(&p);
	ck_assert_int_eq(int_field(o, "status"), 503);
	assert_absent(o, "upstream_status");
	json_object_put(o);
}
END_TEST

/* ---- upstream_body ----------------------------------------------------- */

static char *render_body(const char *body, size_t len, size_t *ret_out_len)
{
	struct problem p;
	struct json_object *o;
	const char *s;
	char *copy;

	problem_init(&p, PROBLEM_UPSTREAM_STATUS);
	p.upstream_body = body;
	p.upstream_body_len = len;
	o = render(&p);
	s = str_field(o, "upstream_body");
	*ret_out_len = (size_t)json_object_get_string_len(field(o, "upstream_body",
								 json_type_string));
	copy = malloc(*ret_out_len + 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, s, *ret_out_len + 1);
	json_object_put(o);
	return copy;
}

START_TEST(test_body_ascii_truncated)
{
	char body[1000];
	size_t n;
	char *out;

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	out = render_body(body, sizeof(body), &n);
	ck_assert_uint_eq(n, PROBLEM_UPSTREAM_BODY_MAX);
	ck_assert(memcmp(out, body, n) == 0);
	free(out);

	out = render_body(body, 512, &n);
	ck_assert_uint_eq(n, 512);
	free(out);
	out = render_body(body, 511, &n);
	ck_assert_uint_eq(n, 511);
	free(out);
	out = render_body(body, 513, &n);
	ck_assert_uint_eq(n, 512);
	free(out);
}
END_TEST

/* A multi-byte character straddling byte 512 is left out whole. */
START_TEST(test_body_utf8_boundary)
{
	static const struct {
		const char *ch;
		size_t at;     /* offset of the character's first byte */
		size_t expect; /* bytes kept */
	} cases[] = {
		{ "\xc3\xa9", 511, 511 },             /* é over 511-512 */
		{ "\xc3\xa9", 510, 512 },             /* é at 510-511: fits */
		{ "\xe2\x82\xac", 510, 510 },         /* € over 510-512 */
		{ "\xe2\x82\xac", 511, 511 },         /* € over 511-513 */
		{ "\xe2\x82\xac", 509, 512 },         /* € at 509-511: fits */
		{ "\xf0\x9f\x98\x80", 509, 509 },     /* 😀 over 509-512 */
		{ "\xf0\x9f\x98\x80", 510, 510 },
		{ "\xf0\x9f\x98\x80", 511, 511 },
		{ "\xf0\x9f\x98\x80", 508, 512 },     /* 😀 at 508-511: fits */
	};

	for (int c = 0; c < N(cases); c++) {
		char body[600];
		size_t n, clen = strlen(cases[c].ch);
		char *out;

		memset(body, 'x', sizeof(body));
		memcpy(body + cases[c].at, cases[c].ch, clen);
		out = render_body(body, sizeof(body), &n);
		ck_assert_msg(n == cases[c].expect, "case %d: kept %zu bytes, want %zu", c, n,
			      cases[c].expect);
		ck_assert(memcmp(out, body, n) == 0);
		free(out);
	}
}
END_TEST

START_TEST(test_body_all_multibyte)
{
	char body[3 * 300];
	size_t n;
	char *out;

	for (int i = 0; i < 300; i++)
		memcpy(body + 3 * i, "\xe2\x82\xac", 3);
	out = render_body(body, sizeof(body), &n);
	ck_assert_uint_eq(n, 510); /* 170 whole euro signs */
	ck_assert(memcmp(out, body, n) == 0);
	free(out);
}
END_TEST

/* ---- escaping ---------------------------------------------------------- */

START_TEST(test_escaping_control_and_invalid_utf8)
{
	static const char raw[] = "q\"b\\s/n\nr\rt\tz\x01" "e\x1f" "d\x7f"
				  "bad\xff" "over\xc0\xaf" "sur\xed\xa0\x80" "cut\xe2\x82";
	static const char want[] = "q\"b\\s/n\nr\rt\tz\x01" "e\x1f" "d\x7f"
				   "bad\xef\xbf\xbd" "over\xef\xbf\xbd\xef\xbf\xbd"
				   "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
				   "cut\xef\xbf\xbd\xef\xbf\xbd";
	struct problem p;
	struct json_object *o;
	size_t n;
	char *out;

	problem_init(&p, PROBLEM_BAD_REQUEST);
	p.detail = raw;
	p.profile = "caf\xc3\xa9";
	p.route = "GET /\xe2\x82\xac/\xf0\x9f\x98\x80";
	p.correlation_id = "\xff\xfe";
	o = render(&p);
	ck_assert_str_eq(str_field(o, "detail"), want);
	ck_assert_str_eq(str_field(o, "profile"), "caf\xc3\xa9");
	ck_assert_str_eq(str_field(o, "route"), "GET /\xe2\x82\xac/\xf0\x9f\x98\x80");
	ck_assert_str_eq(str_field(o, "correlation_id"), "\xef\xbf\xbd\xef\xbf\xbd");
	json_object_put(o);

	/* NUL and binary in the upstream body. */
	out = render_body("a\0b\x80\x01", 5, &n);
	ck_assert_uint_eq(n, 7);
	ck_assert(memcmp(out, "a\0b\xef\xbf\xbd\x01", 7) == 0);
	free(out);
}
END_TEST

START_TEST(test_every_byte_gives_valid_json)
{
	char body[256];
	struct problem p;
	struct json_object *o;

	for (int i = 0; i < 256; i++)
		body[i] = (char)(255 - i);
	problem_init(&p, PROBLEM_UPSTREAM_STATUS);
	p.upstream_body = body;
	p.upstream_body_len = sizeof(body);
	o = render(&p); /* strict, UTF-8 validating parse */
	json_object_put(o);
}
END_TEST

START_TEST(test_history_outcome_escaped)
{
	static const struct history_entry hist[] = { { 1, "we\"ird\n", 0, 0, 0, 0, "" } };
	struct problem p;
	struct json_object *o, *e;

	problem_init(&p, PROBLEM_UPSTREAM_UNAVAILABLE);
	p.history = hist;
	p.nhistory = 1;
	o = render(&p);
	e = json_object_array_get_idx(field(o, "history", json_type_array), 0);
	ck_assert_str_eq(str_field(e, "outcome"), "we\"ird\n");
	assert_absent(e, "status");
	json_object_put(o);
}
END_TEST

/* ---- strbuf ------------------------------------------------------------ */

START_TEST(test_strbuf_cap)
{
	struct strbuf b;
	size_t len = 99;
	char *s;

	strbuf_init(&b, 10);
	strbuf_add(&b, "0123456789", 10);
	ck_assert_int_eq(b.failed, 0);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_str_eq(b.data, "0123456789");
	strbuf_add(&b, "x", 1);
	ck_assert_int_eq(b.failed, 1);
	strbuf_adds(&b, "");
	ck_assert_int_eq(b.failed, 1);
	ck_assert_ptr_null(strbuf_steal(&b, &len));
	ck_assert_ptr_null(b.data);

	/* Reusable after release. */
	strbuf_init(&b, 10);
	strbuf_adds(&b, "abc");
	strbuf_add_json_string(&b, "de", 2);
	ck_assert_int_eq(b.failed, 0);
	s = strbuf_steal(&b, &len);
	ck_assert_str_eq(s, "abc\"de\"");
	ck_assert_uint_eq(len, 7);
	free(s);

	strbuf_init(&b, 10);
	strbuf_add_json_string(&b, "0123456789", 10); /* 12 with quotes */
	ck_assert_int_eq(b.failed, 1);
	strbuf_release(&b);

	strbuf_init(&b, 1000);
	strbuf_addf(&b, "%0900d", 7);
	ck_assert_int_eq(b.failed, 0);
	ck_assert_uint_eq(b.len, 900);
	strbuf_addf(&b, "%0101d", 7);
	ck_assert_int_eq(b.failed, 1);
	strbuf_release(&b);
}
END_TEST

/* strbuf_addf must only fail when its output does not fit under the cap. */
START_TEST(test_strbuf_addf_near_cap)
{
	struct strbuf b;

	strbuf_init(&b, 16);
	strbuf_addf(&b, "%d-%s", 42, "ok");
	ck_assert_int_eq(b.failed, 0);
	ck_assert_str_eq(b.data, "42-ok");
	strbuf_release(&b);

	strbuf_init(&b, 100);
	strbuf_add(&b, "0123456789012345678901234567890123456789012345678901234567890123456789",
		   70);
	strbuf_addf(&b, ",\"n\":%d", 5);
	ck_assert_int_eq(b.failed, 0);
	ck_assert_uint_eq(b.len, 76);
	strbuf_release(&b);
}
END_TEST

START_TEST(test_strbuf_growth)
{
	struct strbuf b;
	char big[5000];
	size_t len;
	char *s;

	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	strbuf_init(&b, 1 << 20);
	for (int i = 0; i < 10; i++)
		strbuf_addf(&b, "%s|", big);
	ck_assert_int_eq(b.failed, 0);
	s = strbuf_steal(&b, &len);
	ck_assert_uint_eq(len, 10 * 5000);
	ck_assert_uint_eq(strlen(s), len);
	ck_assert_int_eq(s[4999], '|');
	ck_assert_int_eq(s[len - 1], '|');
	free(s);
}
END_TEST

START_TEST(test_strbuf_json_string)
{
	static const char in[] = "a\"\\\b\f\n\r\t\x01\x1f z";
	struct strbuf b;
	char *s;

	strbuf_init(&b, 1024);
	strbuf_add_json_string(&b, in, sizeof(in) - 1);
	s = strbuf_steal(&b, NULL);
	ck_assert_str_eq(s, "\"a\\\"\\\\\\u0008\\u000c\\n\\r\\t\\u0001\\u001f z\"");
	free(s);
}
END_TEST

Suite *problem_suite(void)
{
	Suite *s = suite_create("problem");
	TCase *tc = tcase_create("codes");

	tcase_add_test(tc, test_code_table);
	tcase_add_loop_test(tc, test_render_each_code, 0, N(spec_codes));
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, test_minimal_has_no_optional_fields);
	tcase_add_test(tc, test_all_fields);
	tcase_add_test(tc, test_zero_values_are_present);
	tcase_add_test(tc, test_upstream_status_override);
	tcase_add_test(tc, test_history_outcome_escaped);
	suite_add_tcase(s, tc);

	tc = tcase_create("body");
	tcase_add_test(tc, test_body_ascii_truncated);
	tcase_add_test(tc, test_body_utf8_boundary);
	tcase_add_test(tc, test_body_all_multibyte);
	tcase_add_test(tc, test_escaping_control_and_invalid_utf8);
	tcase_add_test(tc, test_every_byte_gives_valid_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("strbuf");
	tcase_add_test(tc, test_strbuf_cap);
	tcase_add_test(tc, test_strbuf_addf_near_cap);
	tcase_add_test(tc, test_strbuf_growth);
	tcase_add_test(tc, test_strbuf_json_string);
	suite_add_tcase(s, tc);
	return s;
}

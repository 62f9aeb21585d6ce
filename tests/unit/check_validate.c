/* Tests of daemon/proxy/validate.c: request schemas in enforce mode fail
 * closed. The unit test binary links with -Wl,--wrap=json_object_new_object,
 * so a test can make that allocation fail. */
#include "suites.h"
#include "config.h"
#include "exchange.h"
#include "validate.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_object *__real_json_object_new_object(void);
struct json_object *__wrap_json_object_new_object(void);

static int fail_new_object;

struct json_object *__wrap_json_object_new_object(void)
{
	return fail_new_object ? NULL : __real_json_object_new_object();
}

static const char yaml_fmt[] = "profiles:\n"
			       "  p:\n"
			       "    upstream: http://127.0.0.1:9\n"
			       "    routes:\n"
			       "      - match: GET /v1/weather\n"
			       "        request:\n"
			       "          mode: %s\n"
			       "          query: {type: object, required: [city]}\n";

static struct config *cfg;
static struct request_env env;
static struct request req;
static int answered_status;

static void fake_finish(struct request *r, int status, const struct http_header *h, size_t n,
			char *body, size_t len, struct evbuffer *buf, const enum problem_code *code)
{
	(void)r;
	(void)h;
	(void)n;
	(void)len;
	(void)buf;
	(void)code;
	answered_status = status;
	free(body);
}

static void load(const char *mode)
{
	char text[512];
	struct config_errors errs = { 0 };

	snprintf(text, sizeof(text), yaml_fmt, mode);
	cfg = config_load_string("/etc/braced/v.yaml", text, strlen(text), &errs);
	ck_assert_uint_eq(errs.count, 0);
	config_errors_release(&errs);
	ck_assert_ptr_nonnull(cfg);
	memset(&env, 0, sizeof(env));
	env.finish = fake_finish;
	memset(&req, 0, sizeof(req));
	req.env = &env;
	req.cfg = cfg;
	req.profile = &cfg->profiles[0];
	req.route = &cfg->profiles[0].routes[0];
	req.path = "/v1/weather?city=Oslo";
	req.correlation_header = "X-Correlation-ID";
	req.idempotency_header = "Idempotency-Key";
	answered_status = 0;
}

static void teardown(void)
{
	fail_new_object = 0;
	config_unref(cfg);
	cfg = NULL;
}

START_TEST(valid_query_goes_on)
{
	load("enforce");
	ck_assert_int_eq(validate_request(&req), 0);
	ck_assert_int_eq(answered_status, 0);
}
END_TEST

START_TEST(enforce_fails_closed_when_the_check_cannot_run)
{
	load("enforce");
	fail_new_object = 1;
	/* Before the fix the request went on (0) unchecked. */
	ck_assert_int_eq(validate_request(&req), -1);
	ck_assert_int_eq(answered_status, 500);
}
END_TEST

START_TEST(report_mode_lets_an_unchecked_request_go)
{
	load("report");
	fail_new_object = 1;
	ck_assert_int_eq(validate_request(&req), 0);
	ck_assert_int_eq(answered_status, 0);
}
END_TEST

Suite *validate_suite(void)
{
	Suite *s = suite_create("validate");
	TCase *tc = tcase_create("request");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, valid_query_goes_on);
	tcase_add_test(tc, enforce_fails_closed_when_the_check_cannot_run);
	tcase_add_test(tc, report_mode_lets_an_unchecked_request_go);
	suite_add_tcase(s, tc);
	return s;
}

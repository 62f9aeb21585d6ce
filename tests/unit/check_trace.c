/* Unit tests for trace.c: traceparent reading per the W3C rules, trace
 * starts and per-attempt parent-ids, tracestate limits. */
#include <check.h>
#include <string.h>

#include "suites.h"
#include "trace.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct {
	const char *in;
	int ok;
} parse_cases[] = {
	{ "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1 },
	{ "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 1 },
	/* a later version may add fields */
	{ "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", 1 },
	{ "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1 },
	/* refused */
	{ "", 0 },
	{ "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", 0 },
	{ "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", 0 },
	{ "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0 },
	{ "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", 0 },
	{ "00-00000000000000000000000000000000-00f067aa0ba902b7-01", 0 },
	{ "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", 0 },
	{ "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", 0 },
	{ "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0 },
	{ "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", 0 },
	{ "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0 },
	{ " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0 },
};

START_TEST(test_parse_table)
{
	struct trace t;

	memset(&t, 0, sizeof(t));
	ck_assert_msg((trace_parse(parse_cases[_i].in, &t) == 0) == parse_cases[_i].ok,
		      "'%s' expected %s", parse_cases[_i].in,
		      parse_cases[_i].ok ? "valid" : "refused");
	if (parse_cases[_i].ok) {
		ck_assert_int_eq(t.valid, 1);
		ck_assert_int_eq(memcmp(t.trace_id, parse_cases[_i].in + 3, 32), 0);
		ck_assert_int_eq(memcmp(t.flags, parse_cases[_i].in + 53, 2), 0);
	}
}
END_TEST

START_TEST(test_attempts_keep_the_trace_and_change_the_parent)
{
	struct rng rng;
	struct trace t, again;
	char a[TRACE_PARENT_LEN + 1], b[TRACE_PARENT_LEN + 1];

	rng_seed(&rng, 42);
	ck_assert_int_eq(trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &t), 0);
	trace_attempt(&t, &rng, a);
	trace_attempt(&t, &rng, b);
	ck_assert_int_eq((int)strlen(a), TRACE_PARENT_LEN);
	ck_assert_int_eq(trace_parse(a, &again), 0);
	ck_assert_str_eq(again.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(again.flags, "01");
	ck_assert_int_eq(memcmp(a, b, 36), 0);
	ck_assert_int_ne(memcmp(a + 36, b + 36, 16), 0);
	ck_assert_int_ne(memcmp(a + 36, "00f067aa0ba902b7", 16), 0);
}
END_TEST

START_TEST(test_start_makes_a_valid_trace)
{
	struct rng rng;
	struct trace t, back;
	char tp[TRACE_PARENT_LEN + 1];

	rng_seed(&rng, 7);
	for (int i = 0; i < 1000; i++) {
		trace_start(&t, &rng);
		trace_attempt(&t, &rng, tp);
		ck_assert_msg(trace_parse(tp, &back) == 0, "generated '%s' does not parse", tp);
		ck_assert_str_eq(back.trace_id, t.trace_id);
		ck_assert_str_eq(back.flags, "00");
	}
}
END_TEST

START_TEST(test_state_limits)
{
	char big[TRACE_STATE_MAX + 2], many[200] = "";

	ck_assert_int_eq(trace_state_ok("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"), 1);
	ck_assert_int_eq(trace_state_ok(""), 1);
	ck_assert_int_eq(trace_state_ok("a=b\tc"), 0);
	ck_assert_int_eq(trace_state_ok("a=\x7f"), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(trace_state_ok(big), 0);
	big[TRACE_STATE_MAX] = '\0';
	ck_assert_int_eq(trace_state_ok(big), 1);
	for (int i = 0; i < 33; i++)
		strcat(many, i ? ",k=v" : "k=v");
	ck_assert_int_eq(trace_state_ok(many), 0);
}
END_TEST

Suite *trace_suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("traceparent");

	tcase_add_loop_test(tc, test_parse_table, 0, N(parse_cases));
	tcase_add_test(tc, test_attempts_keep_the_trace_and_change_the_parent);
	tcase_add_test(tc, test_start_makes_a_valid_trace);
	tcase_add_test(tc, test_state_limits);
	suite_add_tcase(s, tc);
	return s;
}

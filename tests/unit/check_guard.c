/* Tests of daemon/policy/guard.c: the per-profile registry that outlives a
 * reload, admission and the counters it keeps, and the fleet verbs (gate,
 * probe lock, fleet budget, events). Time is µs on the monotonic clock. */
#include <stdint.h>
#include <string.h>

#include <check.h>

#include "config.h"
#include "guard.h"
#include "suites.h"

struct events {
	int n[5];
	uint64_t until[5];
};

static void on_event(void *arg, struct guard *g, const struct guard_event *ev)
{
	struct events *e = arg;

	(void)g;
	e->n[ev->kind]++;
	e->until[ev->kind] = ev->until_us;
}

static struct guard *hooked_guard(struct guard **list, struct events *ev, const struct policy *p)
{
	struct guard *g = guard_get(list, "p");
	struct guard_hooks h = { .event = on_event, .arg = ev };

	ck_assert_ptr_nonnull(g);
	guard_configure(g, p);
	guard_set_hooks(g, &h);
	return g;
}

static void test_policy(struct policy *p)
{
	config_builtin_policy(p);
	p->breaker.min_requests = 2;
	p->breaker.failure_ratio = 0.5;
	p->breaker.open_for_ms = 1000;
	p->breaker.half_open_probes = 1;
	p->retry.budget_ratio = 0.2;
	p->retry.budget_min_per_second = 1;
	p->retry.budget_window_ms = 10000;
}

#define T0 1000000000ull /* µs */

START_TEST(test_guard_events_and_remote_state)
{
	struct guard *list = NULL, *g;
	struct events ev = { 0 };
	struct policy p;
	struct guard_admission adm;

	test_policy(&p);
	g = hooked_guard(&list, &ev, &p);
	guard_cool_down(g, T0 + 2000000);
	ck_assert_int_eq(ev.n[GUARD_EV_COOLDOWN], 1);
	guard_cool_down(g, T0 + 1000000); /* not later: nothing to tell */
	ck_assert_int_eq(ev.n[GUARD_EV_COOLDOWN], 1);
	guard_fleet_cool_down(g, T0 + 3000000); /* from the fleet: extends, tells nobody */
	ck_assert_uint_eq(guard_cooldown_until(g), T0 + 3000000);
	ck_assert_int_eq(ev.n[GUARD_EV_COOLDOWN], 1);

	/* Two failures open the breaker: told once, with its end. */
	guard_admit(g, T0, &adm);
	guard_judge(g, T0, 1, 0);
	guard_leave(g, 0);
	guard_admit(g, T0, &adm);
	guard_judge(g, T0, 1, 0);
	guard_leave(g, 0);
	ck_assert_int_eq(ev.n[GUARD_EV_OPEN], 1);
	ck_assert_uint_eq(ev.until[GUARD_EV_OPEN], T0 + 1000000);

	/* Another instance closes it; another opens it again for longer. */
	guard_fleet_close(g, T0 + 1000);
	guard_admit(g, T0 + 2000, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_ALLOW);
	guard_leave(g, 0);
	guard_fleet_open(g, T0 + 2000, T0 + 5000000);
	guard_admit(g, T0 + 3000, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_REJECT);
	ck_assert_uint_ge(adm.retry_after_ms, 4990);
	guard_leave(g, 0);
	ck_assert_int_eq(ev.n[GUARD_EV_OPEN], 1); /* applied, not told back */
	guards_free(list);
}
END_TEST

START_TEST(test_guard_probe_lock)
{
	struct guard *list = NULL, *g;
	struct events ev = { 0 };
	struct policy p;
	struct guard_admission adm;
	uint64_t t;

	test_policy(&p);
	g = hooked_guard(&list, &ev, &p);
	guard_fleet_gate(g, 1);
	guard_fleet_open(g, T0, T0 + 1000000);
	t = T0 + 1000000; /* half-open */
	guard_admit(g, t, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_REJECT); /* no lock yet */
	guard_leave(g, 0);
	ck_assert_int_eq(ev.n[GUARD_EV_WANT_PROBE], 1);
	guard_admit(g, t + 1, &adm); /* asked already: no second request */
	guard_leave(g, 0);
	ck_assert_int_eq(ev.n[GUARD_EV_WANT_PROBE], 1);
	guard_fleet_probe_lock(g, 0, t + 500000); /* lost */
	guard_admit(g, t + 2, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_REJECT);
	guard_leave(g, 0);
	ck_assert_int_eq(ev.n[GUARD_EV_WANT_PROBE], 1); /* not before t + 0.5 s */
	guard_admit(g, t + 500000, &adm);
	guard_leave(g, 0);
	ck_assert_int_eq(ev.n[GUARD_EV_WANT_PROBE], 2);
	guard_fleet_probe_lock(g, 1, 0); /* won */
	guard_admit(g, t + 500001, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_PROBE);
	guard_admit(g, t + 500002, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_REJECT); /* half_open_probes: 1 */
	guard_leave(g, 0);
	guard_judge(g, t + 600000, 0, 1);
	guard_leave(g, 0);
	ck_assert_int_eq(ev.n[GUARD_EV_CLOSE], 1);

	/* Ungated (Redis away), the local half-open decides as without a fleet. */
	guard_fleet_open(g, t + 700000, t + 1700000);
	guard_fleet_gate(g, 0);
	guard_admit(g, t + 1700000, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_PROBE);
	guard_leave(g, 1);
	guards_free(list);
}
END_TEST

START_TEST(test_guard_fleet_budget)
{
	struct guard *list = NULL, *g;
	struct events ev = { 0 };
	struct policy p;
	struct guard_admission adm;
	struct guard_token tok;
	uint64_t d, w;

	test_policy(&p);
	g = hooked_guard(&list, &ev, &p);
	for (int i = 0; i < 5; i++) {
		guard_admit(g, T0, &adm);
		guard_leave(g, 0);
	}
	ck_assert_int_eq(guard_try_withdraw(g, T0, &tok), 1);
	guard_fleet_take_counts(g, &d, &w);
	ck_assert_uint_eq(d, 5);
	ck_assert_uint_eq(w, 1);
	guard_fleet_take_counts(g, &d, &w);
	ck_assert_uint_eq(d + w, 0);
	/* The fleet: 90 requests, 27 retries (what was in transit included):
	 * one more fits (0.2 × 90 + 10 = 28), then none. */
	guard_fleet_budget(g, 90, 27, T0 + 1000000);
	ck_assert_int_eq(guard_try_withdraw(g, T0, &tok), 1);
	ck_assert_int_eq(guard_try_withdraw(g, T0, &tok), 0);
	/* A token given back is room again. */
	guard_give_back(g, T0, &tok);
	guard_fleet_budget(g, 90, 27, T0 + 1000000);
	ck_assert_int_eq(guard_try_withdraw(g, T0, &tok), 1);
	guard_give_back(g, T0, &tok);
	/* A token whose withdrawal already went to the fleet, given back, does
	 * not cancel another request's retry that has not gone yet. */
	{
		struct guard_token sent, other;

		guard_fleet_take_counts(g, &d, &w);
		guard_fleet_budget(g, 0, 0, T0 + 1000000);
		ck_assert_int_eq(guard_try_withdraw(g, T0, &sent), 1);
		guard_fleet_take_counts(g, &d, &w);
		ck_assert_uint_eq(w, 1);
		ck_assert_int_eq(guard_try_withdraw(g, T0, &other), 1);
		guard_give_back(g, T0, &sent);
		guard_fleet_take_counts(g, &d, &w);
		ck_assert_uint_eq(w, 1);
		guard_give_back(g, T0, &other);
	}
	/* Stale fleet totals: the local budget decides again. */
	guard_fleet_budget(g, 0, 1000, T0 + 1000);
	ck_assert_int_eq(guard_try_withdraw(g, T0 + 2000, &tok), 1);
	guard_fleet_budget_lost(g);
	{
		struct guard_snapshot s;

		guard_snapshot(g, T0, &s);
		ck_assert_int_eq(s.fleet, 1);
		ck_assert_int_eq(s.fleet_budget, 0);
	}
	guard_set_hooks(g, NULL);
	guard_cool_down(g, T0 + 9000000); /* unhooked: nobody told */
	ck_assert_int_eq(ev.n[GUARD_EV_COOLDOWN], 0);
	guards_free(list);
}
END_TEST

/* The fleet syncs only while a guard is busy: the first count after a take
 * is told once, and an idle guard (nothing in flight, nothing to send) is
 * not busy. */
START_TEST(test_guard_counts_and_busy)
{
	struct guard *list = NULL, *g;
	struct events ev = { 0 };
	struct policy p;
	struct guard_admission adm;
	struct guard_token tok;
	uint64_t d, w;

	test_policy(&p);
	g = hooked_guard(&list, &ev, &p);
	ck_assert_int_eq(guard_fleet_busy(g), 0);
	guard_admit(g, T0, &adm);
	ck_assert_int_eq(ev.n[GUARD_EV_COUNTS], 1);
	guard_admit(g, T0, &adm);
	ck_assert_int_eq(guard_try_withdraw(g, T0, &tok), 1);
	ck_assert_int_eq(ev.n[GUARD_EV_COUNTS], 1); /* told once per take */
	guard_fleet_take_counts(g, &d, &w);
	ck_assert_int_eq(guard_fleet_busy(g), 1); /* two in flight */
	ck_assert_int_eq(guard_try_withdraw(g, T0, &tok), 1);
	ck_assert_int_eq(ev.n[GUARD_EV_COUNTS], 2); /* a retry counts too */
	guard_fleet_take_counts(g, &d, &w);
	guard_leave(g, 0);
	ck_assert_int_eq(guard_fleet_busy(g), 1);
	guard_leave(g, 0);
	ck_assert_int_eq(guard_fleet_busy(g), 0); /* idle: no sync needed */
	guard_set_hooks(g, NULL);
	guard_admit(g, T0, &adm); /* unhooked: nobody told */
	guard_leave(g, 0);
	ck_assert_int_eq(ev.n[GUARD_EV_COUNTS], 2);
	guards_free(list);
}
END_TEST

/* A reload finds each profile's guard by name: the breaker that opened,
 * the counters and the cool-down are still there after the new policy is
 * applied, and another profile's guard is a different one. */
START_TEST(test_guard_registry_survives_reload)
{
	struct guard *list = NULL, *g, *again, *other, *it;
	struct events ev = { 0 };
	struct policy p;
	struct guard_admission adm;
	struct guard_snapshot s;
	int n = 0;

	test_policy(&p);
	g = hooked_guard(&list, &ev, &p);
	for (int i = 0; i < 2; i++) {
		guard_admit(g, T0, &adm);
		guard_record(g, OUTCOME_CONNECT);
		guard_judge(g, T0, 1, 0);
		guard_count_answer(g, &(enum problem_code){ PROBLEM_UPSTREAM_UNAVAILABLE }, 0.002);
		guard_leave(g, 0);
	}
	guard_cool_down(g, T0 + 4000000);
	other = guard_get(&list, "q");
	ck_assert_ptr_nonnull(other);
	ck_assert_ptr_ne(other, g);

	/* The reload: same name, a new policy value (equal settings). */
	again = guard_get(&list, "p");
	ck_assert_ptr_eq(again, g);
	test_policy(&p);
	guard_configure(again, &p);
	guard_admit(again, T0 + 1000, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_REJECT);
	ck_assert_uint_eq(adm.cooldown_until_us, T0 + 4000000);
	guard_leave(again, 0);
	guard_snapshot(again, T0 + 1000, &s);
	ck_assert_str_eq(s.name, "p");
	ck_assert_int_eq(s.breaker, BREAKER_OPEN);
	ck_assert_uint_eq(s.requests[PROBLEM_UPSTREAM_UNAVAILABLE], 2);
	ck_assert_uint_eq(s.attempts[OUTCOME_CONNECT], 2);
	ck_assert_uint_eq(s.duration->count, 2);
	ck_assert_uint_eq(s.inflight, 0);

	for (it = list; it; it = guard_next(it)) {
		ck_assert(strcmp(guard_name(it), "p") == 0 || strcmp(guard_name(it), "q") == 0);
		n++;
	}
	ck_assert_int_eq(n, 2);
	guards_free(list);
	guards_free(NULL);
}
END_TEST

/* What /status and /metrics read: requests in flight, answers by code,
 * their durations, and schema violations by route, direction and mode. */
START_TEST(test_guard_counts_answers)
{
	struct guard *list = NULL, *g;
	struct policy p;
	struct guard_admission adm;
	struct guard_snapshot s;
	const struct schema_counter *sc;
	static const char request[] = "request", response[] = "response";
	static const char enforce[] = "enforce", report[] = "report";
	uint64_t total = 0;
	int entries = 0;

	test_policy(&p);
	g = guard_get(&list, "p");
	ck_assert_ptr_nonnull(g);
	guard_configure(g, &p);
	guard_admit(g, T0, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_ALLOW);
	guard_admit(g, T0, &adm);
	guard_snapshot(g, T0, &s);
	ck_assert_uint_eq(s.inflight, 2);
	guard_count_answer(g, NULL, 0.003);
	guard_count_answer(g, &(enum problem_code){ PROBLEM_CIRCUIT_OPEN }, 0.5);
	guard_count_answer(g, &(enum problem_code){ PROBLEM__COUNT },
			   0.5); /* no such code: timed, not counted */
	guard_leave(g, 0);
	guard_leave(g, 0);
	guard_count_violation(g, "GET /a", request, enforce);
	guard_count_violation(g, "GET /a", request, enforce);
	guard_count_violation(g, "GET /a", response, report);
	guard_count_violation(g, "GET /b", request, enforce);
	guard_count_retry(g);
	guard_count_suppressed(g, RETRY_STOP_BUDGET);
	guard_count_suppressed(g, RETRY_STOP__COUNT); /* ignored */

	guard_snapshot(g, T0, &s);
	ck_assert_uint_eq(s.inflight, 0);
	ck_assert_uint_eq(s.requests_ok, 1);
	ck_assert_uint_eq(s.requests[PROBLEM_CIRCUIT_OPEN], 1);
	ck_assert_uint_eq(s.duration->count, 3);
	ck_assert(s.duration->sum > 1.0 && s.duration->sum < 1.01);
	ck_assert_uint_eq(s.retries, 1);
	ck_assert_uint_eq(s.suppressed[RETRY_STOP_BUDGET], 1);
	for (sc = s.schema_counters; sc; sc = sc->next) {
		entries++;
		total += sc->count;
		if (strcmp(sc->route, "GET /a") == 0 && sc->direction == request)
			ck_assert_uint_eq(sc->count, 2);
		else
			ck_assert_uint_eq(sc->count, 1);
	}
	ck_assert_int_eq(entries, 3);
	ck_assert_uint_eq(total, 4);
	guards_free(list);
}
END_TEST

/* The cool-down only ever moves later, and admission reports it. */
START_TEST(test_guard_cool_down_never_shortened)
{
	struct guard *list = NULL, *g = guard_get(&list, "p");
	struct policy p;
	struct guard_admission adm;
	struct guard_snapshot s;

	test_policy(&p);
	guard_configure(g, &p);
	ck_assert_uint_eq(guard_cooldown_until(g), 0);
	guard_cool_down(g, T0 + 3000000);
	guard_cool_down(g, T0 + 1000000);
	guard_fleet_cool_down(g, T0 + 2000000);
	ck_assert_uint_eq(guard_cooldown_until(g), T0 + 3000000);
	guard_admit(g, T0, &adm);
	ck_assert_int_eq(adm.verdict, GUARD_ALLOW);
	ck_assert_uint_eq(adm.cooldown_until_us, T0 + 3000000);
	guard_leave(g, 0);
	guard_snapshot(g, T0, &s);
	ck_assert_uint_eq(s.cooldown_ms, 3000);
	guard_snapshot(g, T0 + 3000000, &s);
	ck_assert_uint_eq(s.cooldown_ms, 0);
	guards_free(list);
}
END_TEST

Suite *guard_suite(void)
{
	Suite *s = suite_create("guard");
	TCase *tc = tcase_create("guard");

	tcase_add_test(tc, test_guard_registry_survives_reload);
	tcase_add_test(tc, test_guard_counts_answers);
	tcase_add_test(tc, test_guard_cool_down_never_shortened);
	tcase_add_test(tc, test_guard_events_and_remote_state);
	tcase_add_test(tc, test_guard_probe_lock);
	tcase_add_test(tc, test_guard_fleet_budget);
	tcase_add_test(tc, test_guard_counts_and_busy);
	suite_add_tcase(s, tc);
	return s;
}

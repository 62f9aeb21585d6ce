/* Tests of daemon/policy/window.c: the ring slot of a time, its reuse once
 * the time it held falls out, which slots count at a given time, and the
 * lookup of a past time's slot (a budget's give-back). */
#include "suites.h"
#include "window.h"

#include <stdint.h>

START_TEST(slots_and_reuse)
{
	struct window w;
	int reused;
	unsigned a, b;

	window_init(&w, 4, 1000);
	a = window_slot(&w, 0, &reused);
	ck_assert_int_eq(reused, 1); /* never filled */
	ck_assert_uint_eq(window_slot(&w, 999, &reused), a);
	ck_assert_int_eq(reused, 0);
	b = window_slot(&w, 1000, &reused);
	ck_assert_uint_ne(a, b);
	ck_assert_int_eq(reused, 1);
	/* Four slots later the ring comes back to a, for another time. */
	ck_assert_uint_eq(window_slot(&w, 4000, &reused), a);
	ck_assert_int_eq(reused, 1);
}
END_TEST

START_TEST(live_slots)
{
	struct window w;
	int reused;
	unsigned i0, i3;

	window_init(&w, 4, 1000);
	i0 = window_slot(&w, 500, &reused);
	i3 = window_slot(&w, 3500, &reused);
	ck_assert(window_live(&w, i0, window_epoch(&w, 3999)));
	ck_assert(!window_live(&w, i0, window_epoch(&w, 4000)));
	ck_assert(window_live(&w, i3, window_epoch(&w, 6999)));
	/* A time before the slot's: the slot does not count. */
	ck_assert(!window_live(&w, i3, window_epoch(&w, 2999)));
	/* Never filled: never counts. */
	for (unsigned i = 0; i < 4; i++)
		if (i != i0 && i != i3)
			ck_assert(!window_live(&w, i, window_epoch(&w, 3500)));
	window_clear(&w);
	ck_assert(!window_live(&w, i3, window_epoch(&w, 3500)));
}
END_TEST

START_TEST(find_past_time)
{
	struct window w;
	int reused;
	unsigned i;

	window_init(&w, 10, 100);
	i = window_slot(&w, 250, &reused);
	ck_assert_int_eq(window_find(&w, 299), (int)i);
	ck_assert_int_eq(window_find(&w, 300), -1);
	window_slot(&w, 1250, &reused); /* the same ring slot, ten slots later */
	ck_assert_int_eq(window_find(&w, 250), -1);
}
END_TEST

START_TEST(shape_is_clamped)
{
	struct window w;
	int reused;

	window_init(&w, 0, 0);
	ck_assert_uint_eq(w.nslots, 1);
	ck_assert_uint_eq(w.slot_us, 1);
	ck_assert_uint_eq(window_slot(&w, 12345, &reused), 0);
	window_init(&w, 99, 1);
	ck_assert_uint_eq(w.nslots, WINDOW_SLOTS_MAX);
}
END_TEST

Suite *window_suite(void)
{
	Suite *s = suite_create("window");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, slots_and_reuse);
	tcase_add_test(tc, live_slots);
	tcase_add_test(tc, find_past_time);
	tcase_add_test(tc, shape_is_clamped);
	suite_add_tcase(s, tc);
	return s;
}

/* The memory budget of held bodies: reservations within max_buffered, a
 * strict line for those that do not fit, and nothing lost on give-back. */
#include <check.h>
#include <errno.h>

#include "hold.h"
#include "suites.h"

#define MIB (1024ULL * 1024)

START_TEST(test_reserves_within_the_budget)
{
	struct hold h;

	hold_init(&h, 4 * MIB);
	ck_assert_int_eq(hold_take(&h, 3 * MIB), 0);
	ck_assert_int_eq(hold_take(&h, 2 * MIB), -ENOSPC);
	ck_assert_int_eq(hold_take(&h, 1 * MIB), 0);
	ck_assert_uint_eq(h.held, 4 * MIB);
	ck_assert_int_eq(hold_take(&h, 1), -ENOSPC);
	hold_give(&h, 3 * MIB);
	ck_assert_uint_eq(h.held, 1 * MIB);
	ck_assert_uint_eq(h.peak, 4 * MIB);
	/* more given back than held is clamped, never wraps */
	hold_give(&h, 2 * MIB);
	ck_assert_uint_eq(h.held, 0);
}
END_TEST

START_TEST(test_never_fits_is_told_apart)
{
	struct hold h;

	hold_init(&h, 4 * MIB);
	ck_assert_int_eq(hold_take(&h, 4 * MIB + 1), -E2BIG);
	ck_assert_int_eq(hold_take(&h, 4 * MIB), 0);
	ck_assert_int_eq(hold_take(&h, 4 * MIB), -ENOSPC);
}
END_TEST

/* A large holder in line is not overtaken by small newcomers. */
START_TEST(test_line_is_first_come_first_served)
{
	struct hold h;

	hold_init(&h, 4 * MIB);
	ck_assert_int_eq(hold_take(&h, 3 * MIB), 0);
	ck_assert_int_eq(hold_take(&h, 2 * MIB), -ENOSPC);
	hold_wait(&h);
	/* fits, but someone waits: in line behind it */
	ck_assert_int_eq(hold_take(&h, 1 * MIB), -ENOSPC);
	hold_wait(&h);
	ck_assert_uint_eq(h.waiting, 2);
	ck_assert_int_eq(hold_take_first(&h, 2 * MIB), -ENOSPC);
	hold_give(&h, 3 * MIB);
	ck_assert_int_eq(hold_take_first(&h, 2 * MIB), 0);
	ck_assert_uint_eq(h.waiting, 1);
	ck_assert_int_eq(hold_take_first(&h, 1 * MIB), 0);
	ck_assert_uint_eq(h.waiting, 0);
	ck_assert_uint_eq(h.held, 3 * MIB);
	ck_assert_int_eq(hold_take(&h, 1 * MIB), 0);
}
END_TEST

START_TEST(test_leaving_the_line_and_a_lowered_budget)
{
	struct hold h;

	hold_init(&h, 4 * MIB);
	ck_assert_int_eq(hold_take(&h, 4 * MIB), 0);
	hold_wait(&h);
	hold_leave(&h);
	hold_leave(&h); /* once too often: stays 0 */
	ck_assert_uint_eq(h.waiting, 0);
	/* a reload lowers the budget below what is held: nothing fits until
	 * enough came back */
	hold_set_max(&h, 2 * MIB);
	ck_assert_int_eq(hold_take(&h, 1), -ENOSPC);
	hold_give(&h, 3 * MIB);
	ck_assert_int_eq(hold_take(&h, 1 * MIB), 0);
	ck_assert_int_eq(hold_take(&h, 1), -ENOSPC);
}
END_TEST

Suite *hold_suite(void)
{
	Suite *s = suite_create("hold");
	TCase *tc = tcase_create("budget");

	tcase_add_test(tc, test_reserves_within_the_budget);
	tcase_add_test(tc, test_never_fits_is_told_apart);
	tcase_add_test(tc, test_line_is_first_come_first_served);
	tcase_add_test(tc, test_leaving_the_line_and_a_lowered_budget);
	suite_add_tcase(s, tc);
	return s;
}

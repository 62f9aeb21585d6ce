/* Tests of daemon/lib/registry.c: objects found again by name (what a
 * reload relies on to keep a profile's guard and pool), newest first. */
#include "suites.h"
#include "registry.h"

#include <stdlib.h>
#include <string.h>

struct thing {
	struct registry_entry entry;
	int value;
};

START_TEST(find_add_release)
{
	struct registry_entry *head = NULL;
	struct thing a = { .value = 1 }, b = { .value = 2 };

	ck_assert_ptr_null(registry_find(head, "a"));
	ck_assert_int_eq(registry_add(&head, &a.entry, "a"), 0);
	ck_assert_int_eq(registry_add(&head, &b.entry, "b"), 0);
	ck_assert_ptr_eq(head, &b.entry);
	ck_assert_ptr_eq(b.entry.next, &a.entry);
	ck_assert_int_eq(registry_object(registry_find(head, "a"), struct thing, entry)->value, 1);
	ck_assert_int_eq(registry_object(registry_find(head, "b"), struct thing, entry)->value, 2);
	ck_assert_ptr_null(registry_find(head, "c"));
	ck_assert_str_eq(a.entry.name, "a");
	registry_entry_release(&a.entry);
	registry_entry_release(&b.entry);
	ck_assert_ptr_null(a.entry.name);
}
END_TEST

Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, find_add_release);
	suite_add_tcase(s, tc);
	return s;
}

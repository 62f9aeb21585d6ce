/* Tests of daemon/lib/readfile.c: the one bounded file reader refuses what is
 * not a regular file without waiting on it, and holds its size limit. */
#include "suites.h"
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/braced-readfile-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static void write_file(const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

START_TEST(reads_a_regular_file_whole)
{
	char *buf = NULL, err[64];
	size_t len = 0;

	write_file("a: 1\n", 5);
	ck_assert_int_eq(readfile_regular(path, 5, &buf, &len, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_str_eq(buf, "a: 1\n"); /* NUL-terminated */
	free(buf);
}
END_TEST

START_TEST(refuses_a_file_over_the_limit_untouched_outputs)
{
	char *buf = (char *)"unchanged", err[64];
	size_t len = 7;

	write_file("123456", 6);
	ck_assert_int_eq(readfile_regular(path, 5, &buf, &len, err, sizeof(err)), -EFBIG);
	ck_assert_str_eq(buf, "unchanged");
	ck_assert_uint_eq(len, 7);
	ck_assert_ptr_nonnull(strstr(err, "larger than 5 bytes"));
}
END_TEST

START_TEST(refuses_a_fifo_without_waiting_for_a_writer)
{
	char *buf = NULL, err[64];
	size_t len = 0;

	/* A blocking open of a FIFO with no writer never returns: the test
	 * would hang (and time out) if the reader waited. */
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(readfile_regular(path, 100, &buf, &len, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "not a regular file");
	ck_assert_ptr_null(buf);
}
END_TEST

START_TEST(refuses_a_directory_and_reports_a_missing_file)
{
	char *buf = NULL, err[64];
	size_t len = 0;

	ck_assert_int_eq(readfile_regular(dir, 100, &buf, &len, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(readfile_regular(path, 100, &buf, &len, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

Suite *readfile_suite(void)
{
	Suite *s = suite_create("readfile");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, reads_a_regular_file_whole);
	tcase_add_test(tc, refuses_a_file_over_the_limit_untouched_outputs);
	tcase_add_test(tc, refuses_a_fifo_without_waiting_for_a_writer);
	tcase_add_test(tc, refuses_a_directory_and_reports_a_missing_file);
	suite_add_tcase(s, tc);
	return s;
}

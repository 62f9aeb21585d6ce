/* The strict decoder of chunked upstream bodies: the data of good framing
 * in any cutting, the end and what follows it, and every fault braced's
 * front refuses in a request refused here too. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chunked.h"
#include "suites.h"

/* Decodes in [0, n) in slices of step bytes into out; returns the bytes
 * consumed in all, or -EPROTO. */
static long decode_sliced(struct chunked *c, const char *in, size_t n, size_t step, char *out,
			  size_t *ret_out)
{
	size_t pos = 0, total = 0;

	while (pos < n && !c->done) {
		size_t len = n - pos < step ? n - pos : step, got = 0;
		long used = chunked_decode(c, in + pos, len, out + total, &got);

		if (used < 0)
			return used;
		total += got;
		pos += (size_t)used;
		if ((size_t)used < len)
			break;
	}
	*ret_out = total;
	return (long)pos;
}

START_TEST(test_good_framing_in_any_cutting)
{
	static const char in[] = "5\r\nhello\r\n6;name=value;q=\"x y\"\r\n world\r\n"
				 "0\r\nTrailer: t\r\n\r\nNEXT";
	size_t n = sizeof(in) - 1;

	for (size_t step = 1; step <= n; step++) {
		struct chunked c;
		char out[sizeof(in)];
		size_t got = 0;
		long used;

		chunked_init(&c);
		used = decode_sliced(&c, in, n, step, out, &got);
		ck_assert_msg(used == (long)(n - 4), "step %zu: used %ld", step, used);
		ck_assert_int_eq(c.done, 1);
		ck_assert_uint_eq(got, 11);
		ck_assert(memcmp(out, "hello world", 11) == 0);
	}
}
END_TEST

/* A state copied before a call decodes the same bytes again (a paused
 * block delivered twice). */
START_TEST(test_a_saved_state_decodes_again)
{
	static const char in[] = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
	struct chunked c, saved;
	char out[64];
	size_t got = 0;

	chunked_init(&c);
	ck_assert_int_eq(chunked_decode(&c, in, 10, out, &got), 10);
	ck_assert_uint_eq(got, 3); /* "abc" */
	saved = c;
	ck_assert_int_eq(chunked_decode(&c, in + 10, sizeof(in) - 11, out, &got), sizeof(in) - 11);
	ck_assert_uint_eq(got, 3);
	ck_assert_int_eq(c.done, 1);
	c = saved;
	ck_assert_int_eq(chunked_decode(&c, in + 10, sizeof(in) - 11, out, &got), sizeof(in) - 11);
	ck_assert_uint_eq(got, 3);
	ck_assert(memcmp(out, "def", 3) == 0);
}
END_TEST

START_TEST(test_faults_are_refused)
{
	static const char *const bad[] = {
		"zz\r\nx\r\n",                      /* not hex */
		"20\nEVIL-BYTES-BEYOND-THE-FRAMING\r\n", /* bare LF after the size */
		"20;a=\rEVIL\r\n",                  /* bare CR in an extension */
		"20 \r\n",                          /* space after the size */
		"-20\r\n",                          /* a sign */
		"0x20\r\n",                         /* a prefix */
		"ffffffffffffffffff\r\n",           /* overflows */
		"3\r\nabcX\r\n",                    /* data longer than its size */
		"3\r\nabc\n0\r\n\r\n",              /* bare LF after the data */
		"0\r\nHTTP/1.1 200 a:b\r\n\r\n",      /* a status line among the trailers */
		"0\r\nnocolon\r\n\r\n",              /* a trailer without a colon */
		"0\r\nT: a\x01b\r\n\r\n",            /* a control byte in a trailer */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct chunked c;
		char out[128];
		size_t got;

		chunked_init(&c);
		ck_assert_msg(chunked_decode(&c, bad[i], strlen(bad[i]), out, &got) == -EPROTO,
			      "accepted #%zu", i);
		ck_assert_ptr_nonnull(c.why);
		/* spent: nothing more is taken */
		ck_assert_int_eq(chunked_decode(&c, "0\r\n\r\n", 5, out, &got), -EPROTO);
	}
}
END_TEST

START_TEST(test_extensions_and_trailers_are_bounded)
{
	static char in[CHUNKED_TRAILERS_MAX + 64];
	struct chunked c;
	static char out[sizeof(in)];
	size_t got, n;

	chunked_init(&c);
	n = (size_t)snprintf(in, sizeof(in), "1;");
	memset(in + n, 'e', CHUNKED_EXTENSION_MAX + 1);
	n += CHUNKED_EXTENSION_MAX + 1;
	ck_assert_int_eq(chunked_decode(&c, in, n, out, &got), -EPROTO);
	chunked_init(&c);
	n = (size_t)snprintf(in, sizeof(in), "0\r\nT: ");
	memset(in + n, 'v', CHUNKED_TRAILERS_MAX);
	n += CHUNKED_TRAILERS_MAX;
	ck_assert_int_eq(chunked_decode(&c, in, n, out, &got), -EPROTO);
}
END_TEST

Suite *chunked_suite(void)
{
	Suite *s = suite_create("chunked");
	TCase *tc = tcase_create("decode");

	tcase_add_test(tc, test_good_framing_in_any_cutting);
	tcase_add_test(tc, test_a_saved_state_decodes_again);
	tcase_add_test(tc, test_faults_are_refused);
	tcase_add_test(tc, test_extensions_and_trailers_are_bounded);
	suite_add_tcase(s, tc);
	return s;
}

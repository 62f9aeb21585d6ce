/* decode_coding and decode_body: gzip, x-gzip and deflate (zlib-wrapped
 * and raw) undone exactly; unknown codings, truncated, corrupt and padded
 * input refused with a message; a compression bomb stopped at the cap with
 * no more than the cap kept; Content-Encoding lists undone last to first. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "decode.h"
#include "suites.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char DOC[] = "{\"city\":\"Oslo\",\"temperature\":3.5,\"condition\":\"rain\"}";

struct blob {
	unsigned char *data;
	size_t len;
};

/* Compresses len bytes of in with zlib's windowBits wbits (31 gzip, 15 zlib,
 * -15 raw deflate); the caller frees the data. */
static struct blob squeeze(const void *in, size_t len, int wbits)
{
	struct blob b;
	z_stream zs;

	memset(&zs, 0, sizeof(zs));
	ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	b.len = deflateBound(&zs, len);
	b.data = malloc(b.len);
	ck_assert_ptr_nonnull(b.data);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = b.data;
	zs.avail_out = (uInt)b.len;
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	b.len = zs.total_out;
	deflateEnd(&zs);
	return b;
}

static struct blob gz(const void *in, size_t len)
{
	return squeeze(in, len, 31);
}

/* Decodes with one coding into a fresh buffer capped at max; returns the
 * result and leaves the output in out (released by the caller). */
static int one(const char *coding, struct blob in, size_t max, struct strbuf *out, char *err)
{
	strbuf_init(out, max);
	err[0] = '\0';
	return decode_coding(coding, in.data, in.len, max, out, err, 160);
}

static void assert_doc(const struct strbuf *out)
{
	ck_assert_uint_eq(out->len, strlen(DOC));
	ck_assert_mem_eq(out->data, DOC, out->len);
}

START_TEST(test_gzip_names)
{
	static const char *const names[] = { "gzip", "x-gzip", "GZIP", "X-Gzip" };
	struct blob in = gz(DOC, strlen(DOC));
	struct strbuf out;
	char err[160];

	for (int i = 0; i < N(names); i++) {
		ck_assert_int_eq(one(names[i], in, 1024, &out, err), 0);
		assert_doc(&out);
		strbuf_release(&out);
	}
	free(in.data);
}
END_TEST

START_TEST(test_deflate_zlib_and_raw)
{
	static const int wbits[] = { 15, -15, 9, -9 };
	struct strbuf out;
	char err[160];

	for (int i = 0; i < N(wbits); i++) {
		struct blob in = squeeze(DOC, strlen(DOC), wbits[i]);

		ck_assert_msg(one("deflate", in, 1024, &out, err) == 0, "wbits %d: %s", wbits[i],
			      err);
		assert_doc(&out);
		strbuf_release(&out);
		free(in.data);
	}
}
END_TEST

START_TEST(test_identity_copies)
{
	struct blob in = { (unsigned char *)DOC, strlen(DOC) };
	struct strbuf out;
	char err[160];

	ck_assert_int_eq(one("identity", in, 1024, &out, err), 0);
	assert_doc(&out);
	strbuf_release(&out);
	ck_assert_int_eq(one("identity", in, 10, &out, err), -EFBIG);
	strbuf_release(&out);
}
END_TEST

START_TEST(test_unknown_coding)
{
	static const char *const names[] = { "x-none", "br", "compress", "zstd", "", "gzip2" };
	struct blob in = { (unsigned char *)DOC, strlen(DOC) };
	struct strbuf out;
	char err[160];

	for (int i = 0; i < N(names); i++) {
		ck_assert_int_eq(one(names[i], in, 1024, &out, err), -ENOTSUP);
		ck_assert_msg(strstr(err, names[i]) && strstr(err, "unknown"), "%s", err);
		ck_assert_uint_eq(out.len, 0);
		strbuf_release(&out);
	}
}
END_TEST

START_TEST(test_truncated_input)
{
	struct blob in = gz(DOC, strlen(DOC)), cut;
	struct strbuf out;
	char err[160];

	/* Every proper prefix, the empty one included, is refused. */
	for (size_t n = 0; n < in.len; n++) {
		cut.data = in.data;
		cut.len = n;
		ck_assert_int_eq(one("gzip", cut, 1024, &out, err), -EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "gzip"));
		strbuf_release(&out);
	}
	cut.len = in.len - 3;
	ck_assert_int_eq(one("gzip", cut, 1024, &out, err), -EINVAL);
	ck_assert_msg(strstr(err, "truncated") != NULL, "%s", err);
	strbuf_release(&out);
	free(in.data);
}
END_TEST

START_TEST(test_corrupt_input)
{
	struct blob in = gz(DOC, strlen(DOC)), text = { (unsigned char *)DOC, strlen(DOC) };
	struct strbuf out;
	char err[160];

	/* A damaged CRC-32, a damaged length, and text that is no gzip at all. */
	in.data[in.len - 5] ^= 0x40;
	ck_assert_int_eq(one("gzip", in, 1024, &out, err), -EINVAL);
	ck_assert_msg(strstr(err, "invalid") != NULL, "%s", err);
	strbuf_release(&out);
	in.data[in.len - 5] ^= 0x40;
	in.data[in.len - 1] ^= 0x01;
	ck_assert_int_eq(one("gzip", in, 1024, &out, err), -EINVAL);
	strbuf_release(&out);
	ck_assert_int_eq(one("gzip", text, 1024, &out, err), -EINVAL);
	strbuf_release(&out);
	ck_assert_int_eq(one("deflate", text, 1024, &out, err), -EINVAL);
	strbuf_release(&out);
	free(in.data);
}
END_TEST

START_TEST(test_trailing_data_and_members)
{
	struct blob in = gz(DOC, strlen(DOC)), two, padded;
	struct strbuf out;
	char err[160];

	/* Two gzip members are one body (RFC 1952 2.2); anything else after
	 * the stream is refused. */
	two.len = 2 * in.len;
	two.data = malloc(two.len);
	ck_assert_ptr_nonnull(two.data);
	memcpy(two.data, in.data, in.len);
	memcpy(two.data + in.len, in.data, in.len);
	ck_assert_int_eq(one("gzip", two, 1024, &out, err), 0);
	ck_assert_uint_eq(out.len, 2 * strlen(DOC));
	strbuf_release(&out);
	padded = two;
	padded.len = in.len + 1;
	padded.data[in.len] = 'x';
	ck_assert_int_eq(one("gzip", padded, 1024, &out, err), -EINVAL);
	ck_assert_msg(strstr(err, "after the end") != NULL, "%s", err);
	strbuf_release(&out);
	free(two.data);
	free(in.data);
}
END_TEST

START_TEST(test_bomb_stops_at_the_cap)
{
	size_t big = 32u << 20, cap = 64u << 10;
	unsigned char *zeros = calloc(1, big);
	struct blob in;
	struct strbuf out;
	char err[160];

	ck_assert_ptr_nonnull(zeros);
	in = gz(zeros, big);
	free(zeros);
	ck_assert_uint_lt(in.len, 64u << 10);
	ck_assert_int_eq(one("gzip", in, cap, &out, err), -EFBIG);
	ck_assert_msg(strstr(err, "over") != NULL, "%s", err);
	/* Nothing past the cap was kept, nor room for it allocated. */
	ck_assert_uint_le(out.len, cap);
	ck_assert_uint_le(out.cap, cap + 1);
	strbuf_release(&out);
	ck_assert_int_eq(one("deflate", in, cap, &out, err), -EINVAL);
	strbuf_release(&out);
	/* The same stream with room for it decodes; the cap itself is allowed. */
	ck_assert_int_eq(one("gzip", in, big, &out, err), 0);
	ck_assert_uint_eq(out.len, big);
	strbuf_release(&out);
	free(in.data);
}
END_TEST

START_TEST(test_list_undone_last_to_first)
{
	struct blob inner = squeeze(DOC, strlen(DOC), 15), outer = gz(inner.data, inner.len);
	struct blob twice = gz(outer.data, outer.len);
	struct strbuf out;
	char err[160];

	/* "deflate, gzip": deflated first, then gzipped. */
	strbuf_init(&out, 1024);
	ck_assert_int_eq(decode_body("deflate, gzip", outer.data, outer.len, 1024, &out, err,
				     sizeof(err)),
			 0);
	assert_doc(&out);
	strbuf_release(&out);
	strbuf_init(&out, 1024);
	ck_assert_int_eq(decode_body(" identity,deflate ,, x-gzip,identity ", outer.data,
				     outer.len, 1024, &out, err, sizeof(err)),
			 0);
	assert_doc(&out);
	strbuf_release(&out);
	strbuf_init(&out, 1024);
	ck_assert_int_eq(decode_body("deflate, gzip, gzip", twice.data, twice.len, 1024, &out,
				     err, sizeof(err)),
			 0);
	assert_doc(&out);
	strbuf_release(&out);
	/* The wrong order fails to decode. */
	strbuf_init(&out, 1024);
	ck_assert_int_eq(
	    decode_body("gzip, deflate", outer.data, outer.len, 1024, &out, err, sizeof(err)),
	    -EINVAL);
	strbuf_release(&out);
	free(inner.data);
	free(outer.data);
	free(twice.data);
}
END_TEST

START_TEST(test_list_refusals)
{
	struct blob in = gz(DOC, strlen(DOC));
	struct strbuf out;
	char err[160];

	/* An unknown member anywhere refuses the whole list before decoding. */
	strbuf_init(&out, 1024);
	ck_assert_int_eq(decode_body("gzip, x-none", in.data, in.len, 1024, &out, err, sizeof(err)),
			 -ENOTSUP);
	ck_assert_msg(strstr(err, "'x-none'") != NULL, "%s", err);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_int_eq(decode_body("x-none, gzip", in.data, in.len, 1024, &out, err, sizeof(err)),
			 -ENOTSUP);
	ck_assert_int_eq(decode_body("gzip,gzip,gzip,gzip,gzip,gzip,gzip,gzip,gzip", in.data,
				     in.len, 1024, &out, err, sizeof(err)),
			 -E2BIG);
	/* Only identity: the body as it is, held to the cap. */
	ck_assert_int_eq(decode_body("identity", (const unsigned char *)DOC, strlen(DOC), 1024,
				     &out, err, sizeof(err)),
			 0);
	assert_doc(&out);
	strbuf_release(&out);
	strbuf_init(&out, 1024);
	ck_assert_int_eq(
	    decode_body(NULL, (const unsigned char *)DOC, strlen(DOC), 8, &out, err, sizeof(err)),
	    -EFBIG);
	strbuf_release(&out);
	free(in.data);
}
END_TEST

struct identity_case {
	const char *codings;
	int identity;
};

static const struct identity_case identity_cases[] = {
	{ NULL, 1 },		 { "", 1 },	       { "identity", 1 },
	{ " Identity , ,", 1 },	 { "gzip", 0 },	       { "identity, gzip", 0 },
	{ "x-none", 0 },	 { "identityx", 0 },   { ",deflate", 0 },
};

START_TEST(test_is_identity)
{
	const struct identity_case *c = &identity_cases[_i];

	ck_assert_msg(decode_is_identity(c->codings) == c->identity, "'%s'",
		      c->codings ? c->codings : "(null)");
}
END_TEST

Suite *decode_suite(void)
{
	Suite *s = suite_create("decode");
	TCase *tc = tcase_create("coding");

	tcase_add_test(tc, test_gzip_names);
	tcase_add_test(tc, test_deflate_zlib_and_raw);
	tcase_add_test(tc, test_identity_copies);
	tcase_add_test(tc, test_unknown_coding);
	tcase_add_test(tc, test_truncated_input);
	tcase_add_test(tc, test_corrupt_input);
	tcase_add_test(tc, test_trailing_data_and_members);
	tcase_add_test(tc, test_bomb_stops_at_the_cap);
	suite_add_tcase(s, tc);
	tc = tcase_create("list");
	tcase_add_test(tc, test_list_undone_last_to_first);
	tcase_add_test(tc, test_list_refusals);
	tcase_add_loop_test(tc, test_is_identity, 0, N(identity_cases));
	suite_add_tcase(s, tc);
	return s;
}

/* A kept answer's blob (SPEC 4.13): what is written reads back exactly,
 * every truncation and every corrupted length is refused, limits hold, and
 * an entry's age grows with the time it is held. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "suites.h"

#include "cacheentry.h"

static const struct cacheentry_meta META = {
	.status = 200,
	.stored_at = 1785000000,
	.lifetime_s = 60,
	.age_s = 3,
	.stale_while_revalidate_s = 10,
	.stale_if_error_s = 300,
	.never_stale = 0,
	.revalidate = 1,
};

static const struct cacheentry_field FIELDS[] = {
	{ "Content-Type", 12, "application/json", 16 },
	{ "ETag", 4, "\"v1\"", 4 },
	{ "X-Empty", 7, "", 0 },
};

static unsigned char *encode(const struct cacheentry_field *f, size_t n, const char *body,
			     size_t *ret_len)
{
	size_t size = cacheentry_size(f, n, strlen(body));
	unsigned char *out = malloc(size ? size : 1);

	ck_assert_uint_gt(size, 0);
	ck_assert_uint_eq(cacheentry_encode(&META, f, n, body, strlen(body), out, size), size);
	*ret_len = size;
	return out;
}

START_TEST(test_round_trip)
{
	static struct cacheentry_view v;
	size_t len;
	unsigned char *blob = encode(FIELDS, 3, "{\"a\":1}", &len);

	ck_assert_int_eq(cacheentry_decode(blob, len, &v), 0);
	ck_assert_int_eq(v.meta.status, 200);
	ck_assert_int_eq(v.meta.stored_at, 1785000000);
	ck_assert_uint_eq(v.meta.lifetime_s, 60);
	ck_assert_uint_eq(v.meta.age_s, 3);
	ck_assert_uint_eq(v.meta.stale_while_revalidate_s, 10);
	ck_assert_uint_eq(v.meta.stale_if_error_s, 300);
	ck_assert_int_eq(v.meta.never_stale, 0);
	ck_assert_int_eq(v.meta.revalidate, 1);
	ck_assert_uint_eq(v.nfields, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(v.fields[i].name_len, FIELDS[i].name_len);
		ck_assert(!memcmp(v.fields[i].name, FIELDS[i].name, FIELDS[i].name_len));
		ck_assert_uint_eq(v.fields[i].value_len, FIELDS[i].value_len);
		ck_assert(!memcmp(v.fields[i].value, FIELDS[i].value, FIELDS[i].value_len));
		/* views into the blob, not copies */
		ck_assert((const unsigned char *)v.fields[i].name >= blob &&
			  (const unsigned char *)v.fields[i].name < blob + len);
	}
	ck_assert_uint_eq(v.body_len, 7);
	ck_assert(!memcmp(v.body, "{\"a\":1}", 7));
	free(blob);
	/* No fields and no body. */
	blob = encode(NULL, 0, "", &len);
	ck_assert_int_eq(cacheentry_decode(blob, len, &v), 0);
	ck_assert_uint_eq(v.nfields, 0);
	ck_assert_uint_eq(v.body_len, 0);
	free(blob);
}
END_TEST

/* Every prefix of a blob, and the blob with a byte more, is refused. */
START_TEST(test_truncated_and_extended)
{
	static struct cacheentry_view v;
	size_t len;
	unsigned char *blob = encode(FIELDS, 3, "body", &len);
	unsigned char *longer = malloc(len + 1);

	for (size_t cut = 0; cut < len; cut++)
		ck_assert_msg(cacheentry_decode(blob, cut, &v) == -EINVAL, "a prefix of %zu read",
			      cut);
	memcpy(longer, blob, len);
	longer[len] = 'x';
	ck_assert_int_eq(cacheentry_decode(longer, len + 1, &v), -EINVAL);
	free(longer);
	free(blob);
}
END_TEST

/* A corrupted byte anywhere either reads back as a valid entry within the
 * blob or is refused: never a view outside it. */
START_TEST(test_corrupted_bytes)
{
	static struct cacheentry_view v;
	size_t len;
	unsigned char *blob = encode(FIELDS, 3, "body", &len);

	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			blob[i] ^= (unsigned char)(1u << bit);
			if (cacheentry_decode(blob, len, &v) == 0) {
				for (size_t k = 0; k < v.nfields; k++)
					ck_assert((const unsigned char *)v.fields[k].value +
						      v.fields[k].value_len <=
						  blob + len);
				ck_assert((const unsigned char *)v.body + v.body_len == blob + len);
			}
			blob[i] ^= (unsigned char)(1u << bit);
		}
	}
	ck_assert_int_eq(cacheentry_decode(blob, len, &v), 0);
	/* The magic is checked. */
	blob[0] = 'X';
	ck_assert_int_eq(cacheentry_decode(blob, len, &v), -EINVAL);
	free(blob);
}
END_TEST

START_TEST(test_limits)
{
	static struct cacheentry_field many[CACHEENTRY_FIELDS_MAX + 1];
	static char value[CACHEENTRY_VALUE_MAX + 1];
	struct cacheentry_field f;
	unsigned char out[64];

	for (size_t i = 0; i <= CACHEENTRY_FIELDS_MAX; i++)
		many[i] = (struct cacheentry_field){ "A", 1, "b", 1 };
	ck_assert_uint_gt(cacheentry_size(many, CACHEENTRY_FIELDS_MAX, 0), 0);
	ck_assert_uint_eq(cacheentry_size(many, CACHEENTRY_FIELDS_MAX + 1, 0), 0);
	memset(value, 'v', sizeof(value));
	f = (struct cacheentry_field){ "A", 1, value, CACHEENTRY_VALUE_MAX };
	ck_assert_uint_gt(cacheentry_size(&f, 1, 0), 0);
	f.value_len++;
	ck_assert_uint_eq(cacheentry_size(&f, 1, 0), 0);
	f = (struct cacheentry_field){ "", 0, "v", 1 };
	ck_assert_uint_eq(cacheentry_size(&f, 1, 0), 0);
	/* Too little room, or a status out of range: nothing written. */
	f = (struct cacheentry_field){ "A", 1, "b", 1 };
	ck_assert_uint_eq(cacheentry_encode(&META, &f, 1, "x", 1, out, 10), 0);
	ck_assert_uint_eq(
	    cacheentry_encode(&(struct cacheentry_meta){ .status = 1000 }, &f, 1, "", 0, out, 64),
	    0);
}
END_TEST

START_TEST(test_age)
{
	ck_assert_uint_eq(cacheentry_age(&META, 1785000000), 3);
	ck_assert_uint_eq(cacheentry_age(&META, 1785000010), 13);
	/* A clock set back does not make it younger than when kept. */
	ck_assert_uint_eq(cacheentry_age(&META, 1784000000), 3);
}
END_TEST

Suite *cacheentry_suite(void)
{
	Suite *s = suite_create("cacheentry");
	TCase *tc = tcase_create("blob");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_truncated_and_extended);
	tcase_add_test(tc, test_corrupted_bytes);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_age);
	suite_add_tcase(s, tc);
	return s;
}

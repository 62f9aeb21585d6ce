/* The answers the cache keeps (SPEC 4.13): found by the request's key,
 * with Vary, key_headers and purges by profile. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <check.h>

#include "suites.h"

#include "answers.h"
#include "cacheable.h"

/* A request's headers: name/value pairs, NULL-ended. */
struct hdrs {
	const char *kv[8][2];
};

static const char *header_of(void *arg, const char *name, size_t *ret_len)
{
	const struct hdrs *h = arg;

	for (int i = 0; i < 8 && h->kv[i][0]; i++)
		if (!strcasecmp(h->kv[i][0], name)) {
			*ret_len = strlen(h->kv[i][1]);
			return h->kv[i][1];
		}
	*ret_len = 0;
	return NULL;
}

static struct cache_policy plain = { .enabled = 1 };

static struct answers_request req(const char *path, struct hdrs *h)
{
	return (struct answers_request){ .profile = "p",
					 .method = "GET",
					 .path = path,
					 .path_len = strlen(path),
					 .query = NULL,
					 .cp = &plain,
					 .header = header_of,
					 .arg = h,
					 .group = 1 };
}

/* The value kept for r as a string ("" when none). */
static const char *found(struct answers *a, const struct answers_request *r)
{
	static char buf[64];
	struct lru_entry *e = answers_find(a, r);
	size_t len;
	const char *v;

	if (!e)
		return "";
	v = lru_entry_value(e, &len);
	ck_assert_uint_lt(len, sizeof(buf));
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

static struct cachecontrol_vary vary_of(const char *line)
{
	struct cachecontrol_vary v;
	struct cachecontrol_line l = { line, strlen(line) };

	cachecontrol_vary_parse(&l, line[0] ? 1 : 0, &v);
	return v;
}

START_TEST(test_keep_and_find)
{
	struct answers *a = answers_new(1 << 20, 1 << 16, 42);
	struct hdrs none = { { { NULL } } };
	struct answers_request r = req("/a", &none), other = req("/b", &none);

	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(found(a, &r), "");
	ck_assert_int_eq(answers_keep(a, &r, NULL, "one", 3), 0);
	ck_assert_str_eq(found(a, &r), "one");
	ck_assert_str_eq(found(a, &other), "");
	/* replaced */
	ck_assert_int_eq(answers_keep(a, &r, NULL, "two", 3), 0);
	ck_assert_str_eq(found(a, &r), "two");
	answers_free(a);
}
END_TEST

START_TEST(test_vary)
{
	struct answers *a = answers_new(1 << 20, 1 << 16, 42);
	struct hdrs en = { { { "Accept-Language", "en" } } },
		    fr = { { { "accept-language", "fr" } } }, none = { { { NULL } } },
		    en2 = { { { "X-Other", "1" }, { "Accept-Language", "en" } } };
	struct answers_request ren = req("/a", &en), rfr = req("/a", &fr), rnone = req("/a", &none),
			       ren2 = req("/a", &en2);
	struct cachecontrol_vary v = vary_of("Accept-Language"), star = vary_of("*");

	ck_assert_int_eq(answers_keep(a, &ren, &v, "english", 7), 0);
	ck_assert_str_eq(found(a, &ren), "english");
	ck_assert_str_eq(found(a, &ren2), "english"); /* other headers do not matter */
	ck_assert_str_eq(found(a, &rfr), "");         /* another value: not this answer */
	ck_assert_str_eq(found(a, &rnone), "");       /* absent is not "en" */
	ck_assert_int_eq(answers_keep(a, &rfr, &v, "french", 6), 0);
	ck_assert_str_eq(found(a, &rfr), "french");
	ck_assert_str_eq(found(a, &ren), "english");
	ck_assert_int_eq(answers_keep(a, &rnone, &v, "default", 7), 0);
	ck_assert_str_eq(found(a, &rnone), "default");
	/* Vary: * is never kept */
	ck_assert_int_eq(answers_keep(a, &ren, &star, "x", 1), -EINVAL);
	ck_assert_str_eq(found(a, &ren), "english");
	/* An answer without Vary now: every request finds it */
	ck_assert_int_eq(answers_keep(a, &rfr, NULL, "same", 4), 0);
	ck_assert_str_eq(found(a, &ren), "same");
	ck_assert_str_eq(found(a, &rnone), "same");
	/* And with Vary again: the plain one is out of reach */
	ck_assert_int_eq(answers_keep(a, &ren, &v, "english2", 8), 0);
	ck_assert_str_eq(found(a, &ren), "english2");
	ck_assert_str_eq(found(a, &rfr), "french");
	answers_free(a);
}
END_TEST

START_TEST(test_key_headers_and_purge)
{
	struct answers *a = answers_new(1 << 20, 1 << 16, 42);
	struct cache_policy with_auth = { .enabled = 1, .nkey_headers = 1 };
	struct hdrs alice = { { { "Authorization", "Bearer alice" } } },
		    bob = { { { "Authorization", "Bearer bob" } } };
	struct answers_request ra = req("/me", &alice), rb = req("/me", &bob), q;

	strcpy(with_auth.key_headers[0], "Authorization");
	ra.cp = &with_auth;
	rb.cp = &with_auth;
	ck_assert_int_eq(answers_keep(a, &ra, NULL, "alice's", 7), 0);
	ck_assert_str_eq(found(a, &ra), "alice's");
	ck_assert_str_eq(found(a, &rb), "");
	/* another profile, purged alone */
	q = req("/x", &alice);
	q.profile = "q";
	q.group = 2;
	ck_assert_int_eq(answers_keep(a, &q, NULL, "q's", 3), 0);
	ck_assert_uint_eq(lru_purge_group(answers_store(a), 1), 1);
	ck_assert_str_eq(found(a, &ra), "");
	ck_assert_str_eq(found(a, &q), "q's");
	answers_free(a);
}
END_TEST

/* Identical requests share an exchange by the base key: the key_headers
 * values count, the Vary ones (unknown before the answer) do not, and the
 * key is apart from every kept entry's. */
START_TEST(test_base_key)
{
	struct cache_policy with_auth = { .enabled = 1, .nkey_headers = 1 };
	struct hdrs alice_en = { { { "Authorization", "a" }, { "Accept-Language", "en" } } },
		    alice_fr = { { { "Authorization", "a" }, { "Accept-Language", "fr" } } },
		    bob = { { { "Authorization", "b" } } };
	struct answers_request r1 = req("/me", &alice_en), r2 = req("/me", &alice_fr),
			       r3 = req("/me", &bob), r4 = req("/you", &alice_en);
	struct strbuf k1, k2, k3, k4;

	strcpy(with_auth.key_headers[0], "Authorization");
	r1.cp = r2.cp = r3.cp = r4.cp = &with_auth;
	strbuf_init(&k1, CACHEABLE_KEY_MAX + 2);
	strbuf_init(&k2, CACHEABLE_KEY_MAX + 2);
	strbuf_init(&k3, CACHEABLE_KEY_MAX + 2);
	strbuf_init(&k4, CACHEABLE_KEY_MAX + 2);
	ck_assert_int_eq(answers_base_key(&r1, &k1), 0);
	ck_assert_int_eq(answers_base_key(&r2, &k2), 0);
	ck_assert_int_eq(answers_base_key(&r3, &k3), 0);
	ck_assert_int_eq(answers_base_key(&r4, &k4), 0);
	ck_assert_uint_gt(k1.len, 0);
	ck_assert(k1.len == k2.len && memcmp(k1.data, k2.data, k1.len) == 0);
	ck_assert(k1.len != k3.len || memcmp(k1.data, k3.data, k1.len) != 0);
	ck_assert(k1.len != k4.len || memcmp(k1.data, k4.data, k1.len) != 0);
	ck_assert_int_eq(k1.data[0], 'F'); /* never an entry's ('E') or a record's ('V') */
	strbuf_release(&k1);
	strbuf_release(&k2);
	strbuf_release(&k3);
	strbuf_release(&k4);
}
END_TEST

START_TEST(test_too_long_and_too_large)
{
	static char path[CACHEABLE_KEY_MAX + 10];
	struct answers *a = answers_new(1 << 20, 1 << 10, 42);
	struct hdrs none = { { { NULL } } };
	struct answers_request r;
	static char big[2048];

	memset(path, 'a', sizeof(path) - 1);
	r = req(path, &none);
	ck_assert_int_eq(answers_keep(a, &r, NULL, "x", 1), -ENAMETOOLONG);
	ck_assert_ptr_null(answers_find(a, &r));
	r = req("/big", &none);
	ck_assert_int_eq(answers_keep(a, &r, NULL, big, sizeof(big)), -E2BIG);
	ck_assert_ptr_null(answers_find(a, &r));
	answers_free(a);
}
END_TEST

Suite *answers_suite(void)
{
	Suite *s = suite_create("answers");
	TCase *tc = tcase_create("store");

	tcase_add_test(tc, test_keep_and_find);
	tcase_add_test(tc, test_vary);
	tcase_add_test(tc, test_key_headers_and_purge);
	tcase_add_test(tc, test_too_long_and_too_large);
	tcase_add_test(tc, test_base_key);
	suite_add_tcase(s, tc);
	return s;
}

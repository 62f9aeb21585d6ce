/* Tests of daemon/lib/lru.c, the answer cache's store: what a put keeps and
 * refuses, the order of eviction, the charge against max_bytes after every
 * step of a random run checked against a model, references that outlive
 * eviction and replacement, and keys chosen to collide under FNV-1a. */
#include "suites.h"
#include "hash.h"
#include "lru.h"
#include "rng.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define TABLE_MIN_BYTES (LRU_TABLE_MIN * LRU_BUCKET_BYTES)

/* For the loops that check a million times: every ck_assert writes a
 * checkpoint to check's log, which would take minutes. */
#define MUST(cond)                                                                                 \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg("line %d: %s", __LINE__, #cond);                              \
	} while (0)

static struct lru *lru;

static void teardown(void)
{
	lru_free(lru);
	lru = NULL;
}

static int put_str(const char *key, const char *value, uint64_t group)
{
	return lru_put(lru, key, strlen(key), value, strlen(value), group);
}

/* The value under key as a string (borrowed), or NULL; touches recency. */
static const char *get_str(const char *key)
{
	static char buf[256];
	struct lru_entry *e = lru_get(lru, key, strlen(key));
	const char *v;
	size_t len;

	if (!e)
		return NULL;
	v = lru_entry_value(e, &len);
	ck_assert_uint_lt(len, sizeof(buf));
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

static bool has(const char *key)
{
	return lru_peek(lru, key, strlen(key)) != NULL;
}

static struct lru_stats stats(void)
{
	struct lru_stats st;

	lru_stats(lru, &st);
	return st;
}

START_TEST(siphash_vectors)
{
	/* The reference vectors of the SipHash paper: key 00..0f, messages
	 * 00..(n-1). */
	unsigned char msg[15];
	uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;

	for (int i = 0; i < 15; i++)
		msg[i] = (unsigned char)i;
	ck_assert_uint_eq(hash_siphash24(k0, k1, msg, 0), 0x726fdb47dd0e0e31ULL);
	ck_assert_uint_eq(hash_siphash24(k0, k1, msg, 15), 0xa129ca6149be45e5ULL);
}
END_TEST

START_TEST(put_get_replace_remove)
{
	struct lru_entry *e;
	struct lru_stats st;
	size_t len;

	lru = lru_new(1 << 20, 1 << 16, 42);
	ck_assert_ptr_nonnull(lru);
	ck_assert_ptr_null(get_str("a"));
	st = stats();
	ck_assert_uint_eq(st.bytes, 0);
	ck_assert_uint_eq(st.table_bytes, 0);

	ck_assert_int_eq(put_str("a", "alpha", 1), 0);
	ck_assert_int_eq(put_str("b", "beta", 2), 0);
	ck_assert_str_eq(get_str("a"), "alpha");
	ck_assert_str_eq(get_str("b"), "beta");
	e = lru_peek(lru, "a", 1);
	ck_assert_uint_eq(lru_entry_group(e), 1);
	st = stats();
	ck_assert_uint_eq(st.entries, 2);
	ck_assert_uint_eq(st.table_bytes, TABLE_MIN_BYTES);
	ck_assert_uint_eq(st.bytes, TABLE_MIN_BYTES + lru_charge(1, 5) + lru_charge(1, 4));

	/* Replacing re-charges and keeps one entry under the key. */
	ck_assert_int_eq(put_str("a", "a much longer alpha", 3), 0);
	ck_assert_str_eq(get_str("a"), "a much longer alpha");
	ck_assert_uint_eq(lru_entry_group(lru_peek(lru, "a", 1)), 3);
	st = stats();
	ck_assert_uint_eq(st.entries, 2);
	ck_assert_uint_eq(st.bytes, TABLE_MIN_BYTES + lru_charge(1, 19) + lru_charge(1, 4));

	/* An empty value is a value. */
	ck_assert_int_eq(lru_put(lru, "c", 1, NULL, 0, 0), 0);
	e = lru_get(lru, "c", 1);
	ck_assert_ptr_nonnull(e);
	lru_entry_value(e, &len);
	ck_assert_uint_eq(len, 0);

	/* Keys are bytes: a NUL inside counts, a prefix is another key. */
	ck_assert_int_eq(lru_put(lru, "k\0x", 3, "1", 1, 0), 0);
	ck_assert_ptr_null(lru_peek(lru, "k", 1));
	ck_assert_ptr_nonnull(lru_peek(lru, "k\0x", 3));

	ck_assert_int_eq(lru_remove(lru, "a", 1), 0);
	ck_assert_int_eq(lru_remove(lru, "a", 1), -ENOENT);
	ck_assert_ptr_null(get_str("a"));
	ck_assert_str_eq(get_str("b"), "beta");
	ck_assert_int_eq(lru_remove(lru, "b", 1), 0);
	ck_assert_int_eq(lru_remove(lru, "c", 1), 0);
	ck_assert_int_eq(lru_remove(lru, "k\0x", 3), 0);
	st = stats();
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.bytes, 0);
	ck_assert_uint_eq(st.evictions, 0);
}
END_TEST

START_TEST(charges)
{
	static char big[LRU_PAGED_FROM + 1];
	struct lru_stats st;

	ck_assert_uint_eq(lru_charge(1, 0), LRU_ENTRY_OVERHEAD + 1);
	ck_assert_uint_eq(lru_charge(1, LRU_PAGED_FROM - LRU_ENTRY_OVERHEAD - 2),
			  LRU_PAGED_FROM - 1);
	/* From LRU_PAGED_FROM on, whole pages. */
	ck_assert_uint_eq(lru_charge(1, LRU_PAGED_FROM - LRU_ENTRY_OVERHEAD - 1), LRU_PAGED_FROM);
	ck_assert_uint_eq(lru_charge(1, LRU_PAGED_FROM - LRU_ENTRY_OVERHEAD),
			  LRU_PAGED_FROM + LRU_PAGE);
	ck_assert_uint_eq(lru_charge(SIZE_MAX - 10, 100), SIZE_MAX);
	ck_assert_uint_eq(lru_charge(100, SIZE_MAX - 10), SIZE_MAX);

	lru = lru_new(1 << 20, 1 << 20, 2);
	ck_assert_int_eq(lru_put(lru, "big", 3, big, sizeof(big), 0), 0);
	st = stats();
	ck_assert_uint_eq(st.bytes, TABLE_MIN_BYTES + LRU_PAGED_FROM + LRU_PAGE);
}
END_TEST

START_TEST(bad_keys)
{
	static char big[LRU_KEY_MAX + 1];

	lru = lru_new(1 << 20, 1 << 20, 1);
	ck_assert_int_eq(lru_put(lru, "", 0, "v", 1, 0), -EINVAL);
	ck_assert_int_eq(lru_put(lru, big, LRU_KEY_MAX + 1, "v", 1, 0), -EINVAL);
	ck_assert_int_eq(lru_put(lru, big, LRU_KEY_MAX, "v", 1, 0), 0);
	ck_assert_ptr_nonnull(lru_peek(lru, big, LRU_KEY_MAX));
	ck_assert_ptr_null(lru_peek(lru, big, LRU_KEY_MAX + 1));
	ck_assert_uint_eq(stats().refused, 0);
}
END_TEST

#define V100                                                                                       \
	"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567" \
	"890123456789"

/* A value of len bytes (len up to 4096). */
static const char *filler(size_t len)
{
	static char buf[4096];

	ck_assert_uint_le(len, sizeof(buf));
	memset(buf, 'x', len);
	return buf;
}

/* The charge of two one-byte-key, 100-byte-value entries, as one. */
#define TWO_ENTRIES_VALUE (2 * 100 + LRU_ENTRY_OVERHEAD + 1)

START_TEST(evicts_least_recently_used)
{
	size_t three = TABLE_MIN_BYTES + 3 * lru_charge(1, 100);
	struct lru_stats st;

	lru = lru_new(three, three, 7);
	ck_assert_int_eq(put_str("a", V100, 0), 0);
	ck_assert_int_eq(put_str("b", V100, 0), 0);
	ck_assert_int_eq(put_str("c", V100, 0), 0);
	ck_assert_uint_eq(stats().bytes, three);
	ck_assert_uint_eq(stats().evictions, 0);

	/* a is used, so b is the oldest; a peek does not count as a use. */
	ck_assert_ptr_nonnull(get_str("a"));
	ck_assert(has("b"));
	ck_assert_int_eq(put_str("d", V100, 0), 0);
	ck_assert(!has("b"));
	ck_assert(has("a") && has("c") && has("d"));
	ck_assert_int_eq(put_str("e", V100, 0), 0);
	ck_assert(!has("c"));
	ck_assert(has("a") && has("d") && has("e"));

	/* Replacing makes the key the newest: a survives the next two. */
	ck_assert_int_eq(put_str("a", V100, 0), 0);
	ck_assert_int_eq(put_str("f", V100, 0), 0);
	ck_assert_int_eq(put_str("g", V100, 0), 0);
	ck_assert(has("a") && has("f") && has("g"));
	ck_assert(!has("d") && !has("e"));

	/* One entry the size of two evicts the two oldest and no more. */
	ck_assert_uint_eq(lru_charge(1, TWO_ENTRIES_VALUE), 2 * lru_charge(1, 100));
	ck_assert_int_eq(lru_put(lru, "h", 1, filler(TWO_ENTRIES_VALUE), TWO_ENTRIES_VALUE, 0), 0);
	ck_assert(!has("a") && !has("f"));
	ck_assert(has("g") && has("h"));
	st = stats();
	ck_assert_uint_eq(st.evictions, 6);
	ck_assert_uint_eq(st.entries, 2);
	ck_assert_uint_eq(st.bytes, three);
}
END_TEST

START_TEST(refuses_too_large)
{
	size_t max = TABLE_MIN_BYTES + 3 * lru_charge(1, 100);
	size_t entry = lru_charge(1, 150);
	char value[1024];
	struct lru_stats st;

	memset(value, 'v', sizeof(value));
	lru = lru_new(max, entry, 3);
	ck_assert_int_eq(put_str("a", "first", 0), 0);
	ck_assert_int_eq(put_str("b", "second", 0), 0);

	ck_assert_int_eq(lru_put(lru, "c", 1, value, 150, 0), 0);
	ck_assert_int_eq(lru_put(lru, "d", 1, value, 151, 0), -E2BIG);
	/* A refused replacement leaves the entry it would have replaced. */
	ck_assert_int_eq(lru_put(lru, "a", 1, value, 151, 0), -E2BIG);
	ck_assert_str_eq(get_str("a"), "first");
	ck_assert(has("b") && has("c") && !has("d"));

	/* Above max_bytes (less the smallest table) with max_entry out of
	 * the way: refused too, and nothing evicted for it. */
	lru_resize(lru, max, SIZE_MAX);
	ck_assert_int_eq(lru_put(lru, "d", 1, value, max - TABLE_MIN_BYTES - LRU_ENTRY_OVERHEAD, 0),
			 -E2BIG);
	ck_assert(has("a") && has("b") && has("c"));
	st = stats();
	ck_assert_uint_eq(st.refused, 3);
	ck_assert_uint_eq(st.evictions, 0);

	/* The largest that fits takes the whole store. */
	ck_assert_int_eq(
	    lru_put(lru, "d", 1, value, max - TABLE_MIN_BYTES - LRU_ENTRY_OVERHEAD - 1, 0), 0);
	st = stats();
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_uint_eq(st.bytes, max);
	ck_assert_uint_eq(st.evictions, 3);

	/* max_bytes 0: every put refused. */
	lru_resize(lru, 0, 0);
	ck_assert_uint_eq(stats().bytes, 0);
	ck_assert_int_eq(put_str("e", "v", 0), -E2BIG);
}
END_TEST

START_TEST(purge_by_group)
{
	char key[16];
	struct lru_stats st;
	size_t sum;

	lru = lru_new(1 << 20, 1 << 20, 5);
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(put_str(key, "value", (uint64_t)(i % 3)), 0);
	}
	ck_assert_uint_eq(lru_purge_group(lru, 1), 100);
	ck_assert_uint_eq(lru_purge_group(lru, 1), 0);
	ck_assert_uint_eq(lru_purge_group(lru, 99), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert(has(key) == (i % 3 != 1));
	}
	st = stats();
	ck_assert_uint_eq(st.entries, 200);
	sum = 0;
	for (int i = 0; i < 300; i++)
		if (i % 3 != 1)
			sum += lru_charge((size_t)snprintf(key, sizeof(key), "k%d", i), 5);
	ck_assert_uint_eq(st.bytes, st.table_bytes + sum);
	ck_assert_uint_eq(st.evictions, 0);

	ck_assert_uint_eq(lru_purge_all(lru), 200);
	st = stats();
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.bytes, 0);
	ck_assert_uint_eq(st.table_bytes, 0);
	ck_assert_int_eq(put_str("again", "v", 0), 0);
	ck_assert(has("again"));
}
END_TEST

START_TEST(resize_down_and_up)
{
	char key[16];
	struct lru_stats st;
	size_t c = lru_charge(3, 100);

	lru = lru_new(1 << 20, 1 << 20, 9);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		ck_assert_int_eq(lru_put(lru, key, 3, V100, 100, 0), 0);
	}
	st = stats();
	ck_assert_uint_eq(st.bytes, st.table_bytes + 100 * c);

	/* Down to ten entries and a table of 16: the table shrinks as entries
	 * go, but is still 32 buckets at 9 entries (above a quarter), so nine
	 * are left, the newest. */
	lru_resize(lru, 10 * c + 16 * LRU_BUCKET_BYTES, 1 << 20);
	st = stats();
	ck_assert_uint_le(st.bytes, 10 * c + 16 * LRU_BUCKET_BYTES);
	ck_assert_uint_eq(st.bytes, st.table_bytes + st.entries * c);
	ck_assert_uint_eq(st.entries, 9);
	ck_assert_uint_eq(st.evictions, 100 - st.entries);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		ck_assert(has(key) == (i >= 100 - (int)st.entries));
	}

	/* Up again: nothing comes back, new entries fit. */
	lru_resize(lru, 1 << 20, 1 << 20);
	ck_assert_uint_eq(stats().entries, st.entries);
	ck_assert_int_eq(put_str("new", V100, 0), 0);
	ck_assert_uint_eq(stats().evictions, st.evictions);
}
END_TEST

START_TEST(reference_survives_replacement_and_removal)
{
	struct lru_entry *e, *f;
	struct lru_stats st;
	const char *v;
	size_t len;

	lru = lru_new(1 << 20, 1 << 20, 11);
	ck_assert_int_eq(put_str("k", "old answer", 1), 0);
	e = lru_get(lru, "k", 1);
	lru_ref(lru, e);
	lru_ref(lru, e);

	ck_assert_int_eq(put_str("k", "new answer", 1), 0);
	ck_assert_str_eq(get_str("k"), "new answer");
	v = lru_entry_value(e, &len);
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(v, "old answer", 10);
	st = stats();
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_uint_eq(st.detached, 1);
	/* Both are charged until the old one is released. */
	ck_assert_uint_eq(st.bytes, st.table_bytes + 2 * lru_charge(1, 10));

	lru_unref(lru, e);
	ck_assert_uint_eq(stats().detached, 1);
	ck_assert_mem_eq(lru_entry_value(e, &len), "old answer", 10);
	lru_unref(lru, e);
	st = stats();
	ck_assert_uint_eq(st.detached, 0);
	ck_assert_uint_eq(st.bytes, st.table_bytes + lru_charge(1, 10));

	/* Removed and purged while referenced: gone from the map at once. */
	f = lru_get(lru, "k", 1);
	lru_ref(lru, f);
	ck_assert_int_eq(lru_remove(lru, "k", 1), 0);
	ck_assert(!has("k"));
	ck_assert_mem_eq(lru_entry_value(f, &len), "new answer", 10);
	st = stats();
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.detached, 1);
	ck_assert_uint_eq(st.bytes, lru_charge(1, 10));
	lru_unref(lru, f);
	ck_assert_uint_eq(stats().bytes, 0);

	ck_assert_int_eq(put_str("p", "purged", 4), 0);
	f = lru_get(lru, "p", 1);
	lru_ref(lru, f);
	ck_assert_uint_eq(lru_purge_group(lru, 4), 1);
	ck_assert(!has("p"));
	ck_assert_int_eq(put_str("p", "again", 4), 0);
	ck_assert_mem_eq(lru_entry_value(f, &len), "purged", 6);
	ck_assert_uint_eq(lru_purge_all(lru), 1);
	ck_assert_uint_eq(stats().detached, 1);
	lru_unref(lru, f);
	st = stats();
	ck_assert_uint_eq(st.detached, 0);
	ck_assert_uint_eq(st.bytes, 0);
}
END_TEST

START_TEST(reference_holds_off_eviction)
{
	size_t three = TABLE_MIN_BYTES + 3 * lru_charge(1, 100);
	struct lru_entry *a;
	struct lru_stats st;

	lru = lru_new(three, three, 13);
	ck_assert_int_eq(put_str("a", V100, 0), 0);
	ck_assert_int_eq(put_str("b", V100, 0), 0);
	ck_assert_int_eq(put_str("c", V100, 0), 0);
	a = lru_peek(lru, "a", 1);
	lru_ref(lru, a);

	/* a is the oldest but in use: b and c go instead. */
	ck_assert_int_eq(put_str("d", V100, 0), 0);
	ck_assert_int_eq(put_str("e", V100, 0), 0);
	ck_assert(has("a") && has("d") && has("e"));
	ck_assert(!has("b") && !has("c"));

	/* With a held, an entry that would need its room is refused, and
	 * nothing is evicted for it. */
	ck_assert_int_eq(
	    lru_put(lru, "f", 1, filler(TWO_ENTRIES_VALUE + 1), TWO_ENTRIES_VALUE + 1, 0), -ENOSPC);
	ck_assert(has("a") && has("d") && has("e"));
	st = stats();
	ck_assert_uint_eq(st.refused, 1);
	ck_assert_uint_eq(st.evictions, 2);

	/* A resize below what a holds evicts the rest and keeps a charged. */
	lru_resize(lru, 10, 10);
	st = stats();
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_uint_eq(st.bytes, TABLE_MIN_BYTES + lru_charge(1, 100));
	ck_assert_int_eq(put_str("g", "", 0), -E2BIG);
	lru_resize(lru, three, three);
	ck_assert_int_eq(
	    lru_put(lru, "f", 1, filler(TWO_ENTRIES_VALUE + 1), TWO_ENTRIES_VALUE + 1, 0), -ENOSPC);
	ck_assert_int_eq(lru_put(lru, "f", 1, filler(TWO_ENTRIES_VALUE), TWO_ENTRIES_VALUE, 0), 0);
	ck_assert_uint_eq(stats().bytes, three);

	lru_unref(lru, a);
	ck_assert_int_eq(put_str("h", V100, 0), 0);
	ck_assert(!has("a"));
	ck_assert(has("f") && has("h"));
}
END_TEST

START_TEST(free_with_references)
{
	struct lru_entry *a, *b;
	size_t len;

	lru = lru_new(1 << 20, 1 << 20, 17);
	ck_assert_int_eq(put_str("a", "alpha", 0), 0);
	ck_assert_int_eq(put_str("b", "beta", 0), 0);
	ck_assert_int_eq(put_str("c", "gamma", 0), 0);
	a = lru_get(lru, "a", 1);
	b = lru_get(lru, "b", 1);
	lru_ref(lru, a);
	lru_ref(lru, b);
	/* The store stays until the last reference goes (ASan checks the
	 * frees in the sanitizer build). */
	lru_free(lru);
	ck_assert_mem_eq(lru_entry_value(a, &len), "alpha", 5);
	lru_unref(lru, a);
	ck_assert_mem_eq(lru_entry_value(b, &len), "beta", 4);
	lru_unref(lru, b);
	lru = NULL;
}
END_TEST

/* Keys whose bytes differ only in their top bit: the low seven bits of
 * FNV-1a depend only on the low seven bits of each byte, so without a key
 * all of them fall into one bucket in 128. */
START_TEST(flooding_keys_spread)
{
	enum { N = 4096, LEN = 16 };
	unsigned char key[LEN];
	uint64_t fnv_low = 0;
	struct lru_stats st;

	lru = lru_new(64u << 20, 1 << 20, (uint64_t)_i * 0x9e3779b97f4a7c15ULL + 1);
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < LEN; j++)
			key[j] = (unsigned char)('a' | ((i >> (j % 12)) & 1) << 7);
		if (i == 0)
			fnv_low = hash_fnv1a64(key, LEN) & 127;
		MUST((hash_fnv1a64(key, LEN) & 127) == (fnv_low));
		MUST((lru_put(lru, key, LEN, &i, sizeof(i), 0)) == (0));
	}
	st = stats();
	ck_assert_uint_eq(st.entries, N);
	ck_assert_uint_ge(st.table_bytes, N * LRU_BUCKET_BYTES);
	/* A load of at most one under a keyed hash: the longest chain of
	 * 4096 keys in 4096 buckets is about 7; FNV-1a would give 128. */
	ck_assert_uint_le(lru_longest_chain(lru), 16);
	for (int i = 0; i < N; i++) {
		struct lru_entry *e;
		size_t len;
		int v;

		for (int j = 0; j < LEN; j++)
			key[j] = (unsigned char)('a' | ((i >> (j % 12)) & 1) << 7);
		e = lru_peek(lru, key, LEN);
		MUST(e);
		memcpy(&v, lru_entry_value(e, &len), sizeof(v));
		MUST((v) == (i));
	}
}
END_TEST

/* The random run: a model of what the store must hold, checked after every
 * operation. */
enum { MODEL_KEYS = 48, MODEL_STEPS = 10000, MODEL_VALUE_MAX = 700 };

struct model_entry {
	bool present;
	uint64_t group;
	size_t len;
	unsigned char fill;
	uint64_t used; /* tick of the last put or get */
};

struct model {
	struct model_entry e[MODEL_KEYS];
	size_t max_bytes, max_entry;
	uint64_t tick, evictions, refused;
};

static size_t model_key(int id, char *key)
{
	return (size_t)snprintf(key, 16, "key-%d", id);
}

/* Entries the store no longer holds must be the least recently used of
 * those the model has (but the one just put); they are dropped from the
 * model and counted as evictions. */
static void model_evicted(struct model *m, int except)
{
	uint64_t newest_gone = 0, oldest_kept = UINT64_MAX;
	char key[16];

	for (int id = 0; id < MODEL_KEYS; id++) {
		struct model_entry *me = &m->e[id];

		if (!me->present || id == except)
			continue;
		if (lru_peek(lru, key, model_key(id, key))) {
			if (me->used < oldest_kept)
				oldest_kept = me->used;
			continue;
		}
		if (me->used > newest_gone)
			newest_gone = me->used;
		me->present = false;
		m->evictions++;
	}
	MUST((newest_gone) < (oldest_kept));
}

static void model_check(const struct model *m)
{
	struct lru_stats st = stats();
	size_t sum = 0, n = 0;
	char key[16];

	for (int id = 0; id < MODEL_KEYS; id++) {
		const struct model_entry *me = &m->e[id];
		struct lru_entry *e = lru_peek(lru, key, model_key(id, key));
		const unsigned char *v;
		size_t len;

		MUST(me->present == (e != NULL));
		if (!e)
			continue;
		v = lru_entry_value(e, &len);
		MUST((len) == (me->len));
		MUST((lru_entry_group(e)) == (me->group));
		for (size_t i = 0; i < len; i++)
			MUST((v[i]) == (me->fill));
		sum += lru_charge(strlen(key), me->len);
		n++;
	}
	MUST((st.entries) == (n));
	MUST((st.detached) == (0));
	MUST((st.bytes) == (st.table_bytes + sum));
	MUST((st.bytes) <= (m->max_bytes));
	/* The table: none without entries, a load of at most one. */
	MUST((st.table_bytes == 0) == (n == 0));
	MUST((n * LRU_BUCKET_BYTES) <= (st.table_bytes));
	MUST((st.evictions) == (m->evictions));
	MUST((st.refused) == (m->refused));
}

static void model_put(struct model *m, struct rng *r, int id)
{
	static unsigned char value[MODEL_VALUE_MAX];
	struct model_entry *me = &m->e[id];
	size_t len = rng_below(r, MODEL_VALUE_MAX);
	unsigned char fill = (unsigned char)rng_next(r);
	uint64_t group = rng_below(r, 4);
	char key[16];
	size_t klen = model_key(id, key);
	size_t c = lru_charge(klen, len);
	int ret;

	memset(value, fill, len);
	ret = lru_put(lru, key, klen, value, len, group);
	if (c > m->max_entry || c + TABLE_MIN_BYTES > m->max_bytes) {
		MUST((ret) == (-E2BIG));
		m->refused++;
		return;
	}
	MUST((ret) == (0));
	*me = (struct model_entry){
		.present = true, .group = group, .len = len, .fill = fill, .used = ++m->tick
	};
	model_evicted(m, id);
}

static void model_step(struct model *m, struct rng *r)
{
	int id = (int)rng_below(r, MODEL_KEYS);
	uint64_t op = rng_below(r, 100);
	char key[16];
	size_t klen = model_key(id, key);

	if (op < 45) {
		model_put(m, r, id);
	} else if (op < 75) {
		MUST((lru_get(lru, key, klen) != NULL) == m->e[id].present);
		if (m->e[id].present)
			m->e[id].used = ++m->tick;
	} else if (op < 80) {
		MUST((lru_peek(lru, key, klen) != NULL) == m->e[id].present);
	} else if (op < 93) {
		MUST((lru_remove(lru, key, klen)) == (m->e[id].present ? 0 : -ENOENT));
		m->e[id].present = false;
	} else if (op < 96) {
		uint64_t g = rng_below(r, 5);
		size_t n = 0;

		for (int i = 0; i < MODEL_KEYS; i++)
			if (m->e[i].present && m->e[i].group == g) {
				m->e[i].present = false;
				n++;
			}
		MUST((lru_purge_group(lru, g)) == (n));
	} else if (op < 99) {
		m->max_bytes = rng_below(r, 24 * 1024);
		m->max_entry = rng_below(r, 2 * MODEL_VALUE_MAX);
		lru_resize(lru, m->max_bytes, m->max_entry);
		model_evicted(m, -1);
	} else {
		size_t n = 0;

		for (int i = 0; i < MODEL_KEYS; i++) {
			n += m->e[i].present;
			m->e[i].present = false;
		}
		MUST((lru_purge_all(lru)) == (n));
	}
}

START_TEST(random_run_against_model)
{
	static struct model m;
	struct rng r;

	memset(&m, 0, sizeof(m));
	m.max_bytes = 8 * 1024;
	m.max_entry = MODEL_VALUE_MAX + 200;
	rng_seed(&r, 0x5eed0000u + (uint64_t)_i);
	lru = lru_new(m.max_bytes, m.max_entry, rng_next(&r));
	for (int step = 0; step < MODEL_STEPS; step++) {
		model_step(&m, &r);
		model_check(&m);
	}
	ck_assert_uint_gt(m.evictions, 100);
	ck_assert_uint_gt(m.refused, 10);
}
END_TEST

Suite *lru_suite(void)
{
	Suite *s = suite_create("lru");
	TCase *tc = tcase_create("core");
	TCase *refs = tcase_create("references");
	TCase *hostile = tcase_create("hostile");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, siphash_vectors);
	tcase_add_test(tc, put_get_replace_remove);
	tcase_add_test(tc, charges);
	tcase_add_test(tc, bad_keys);
	tcase_add_test(tc, evicts_least_recently_used);
	tcase_add_test(tc, refuses_too_large);
	tcase_add_test(tc, purge_by_group);
	tcase_add_test(tc, resize_down_and_up);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(refs, NULL, teardown);
	tcase_add_test(refs, reference_survives_replacement_and_removal);
	tcase_add_test(refs, reference_holds_off_eviction);
	tcase_add_test(refs, free_with_references);
	suite_add_tcase(s, refs);

	tcase_add_checked_fixture(hostile, NULL, teardown);
	tcase_add_loop_test(hostile, flooding_keys_spread, 0, 2);
	tcase_add_loop_test(hostile, random_run_against_model, 0, 3);
	tcase_set_timeout(hostile, 60);
	suite_add_tcase(s, hostile);
	return s;
}

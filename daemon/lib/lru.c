/* The answer cache's store: a chained hash table under a keyed hash, whose
 * power-of-two array grows to keep at most one entry per bucket, and a
 * recency list evicted from its oldest end. Each entry is one allocation
 * (header, key, value); referenced entries leave the table and the list
 * when removed but keep their charge until released. */
#include "lru.h"
#include "hash.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum lru_entry_state {
	LRU_LINKED,   /* in the table and the recency list */
	LRU_DETACHED, /* out of both, kept for its references */
};

struct lru_entry {
	struct lru_entry *chain;         /* next in the bucket */
	struct lru_entry *older, *newer; /* recency list */
	uint64_t hash;
	uint64_t group;
	size_t key_len;
	size_t value_len;
	unsigned refs;
	enum lru_entry_state state;
	unsigned char data[]; /* the key, then the value */
};

/* glibc's malloc adds an 8-byte header and rounds chunks up to 16 bytes;
 * 32 leaves room for allocators that spend a little more. */
#define LRU_MALLOC_SLACK 32
_Static_assert(sizeof(struct lru_entry) + LRU_MALLOC_SLACK <= LRU_ENTRY_OVERHEAD,
	       "LRU_ENTRY_OVERHEAD must cover an entry's header and the allocator's");

struct lru {
	struct lru_entry **table;
	size_t nbuckets; /* 0 (no entries) or a power of two >= LRU_TABLE_MIN */
	struct lru_entry *oldest, *newest;
	size_t max_bytes;
	size_t max_entry;
	uint64_t k0, k1; /* the hash key */
	size_t bytes;
	size_t pinned_bytes;  /* charge of referenced entries, linked or not */
	size_t linked_pinned; /* referenced entries still linked */
	size_t entries;
	size_t detached;
	uint64_t evictions;
	uint64_t refused;
	bool closing; /* lru_free was called; the last detached entry frees it */
};

_Static_assert(sizeof(struct lru) + LRU_MALLOC_SLACK <= LRU_STORE_OVERHEAD,
	       "LRU_STORE_OVERHEAD must cover the store and the table's allocator header");

size_t lru_charge(size_t key_len, size_t value_len)
{
	size_t c;

	if (key_len > SIZE_MAX - LRU_ENTRY_OVERHEAD - LRU_PAGE ||
	    value_len > SIZE_MAX - LRU_ENTRY_OVERHEAD - LRU_PAGE - key_len)
		return SIZE_MAX;
	c = LRU_ENTRY_OVERHEAD + key_len + value_len;
	if (c >= LRU_PAGED_FROM)
		c = (c + LRU_PAGE - 1) / LRU_PAGE * LRU_PAGE;
	return c;
}

static size_t entry_charge(const struct lru_entry *e)
{
	return lru_charge(e->key_len, e->value_len);
}

static size_t table_bytes(size_t nbuckets)
{
	return nbuckets * LRU_BUCKET_BYTES;
}

/* Buckets for n entries at a load of at most one: since every entry is
 * charged at least LRU_ENTRY_OVERHEAD, this never passes twice
 * max_bytes / LRU_ENTRY_OVERHEAD. */
static size_t buckets_for(size_t n)
{
	size_t b = LRU_TABLE_MIN;

	if (n == 0)
		return 0;
	while (b < n)
		b *= 2;
	return b;
}

static uint64_t key_hash(const struct lru *lru, const void *key, size_t key_len)
{
	return hash_siphash24(lru->k0, lru->k1, key, key_len);
}

struct lru *lru_new(size_t max_bytes, size_t max_entry, uint64_t seed)
{
	struct lru *lru = calloc(1, sizeof(*lru));

	if (!lru)
		return NULL;
	lru->max_bytes = max_bytes;
	lru->max_entry = max_entry;
	lru->k0 = seed;
	lru->k1 = hash_mix64(seed);
	return lru;
}

static struct lru_entry *find(const struct lru *lru, uint64_t h, const void *key, size_t key_len)
{
	struct lru_entry *e;

	if (lru->nbuckets == 0)
		return NULL;
	for (e = lru->table[h & (lru->nbuckets - 1)]; e; e = e->chain)
		if (e->hash == h && e->key_len == key_len && memcmp(e->data, key, key_len) == 0)
			return e;
	return NULL;
}

static void list_unlink(struct lru *lru, struct lru_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		lru->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		lru->newest = e->older;
	e->older = NULL;
	e->newer = NULL;
}

static void list_push_newest(struct lru *lru, struct lru_entry *e)
{
	e->older = lru->newest;
	e->newer = NULL;
	if (lru->newest)
		lru->newest->newer = e;
	else
		lru->oldest = e;
	lru->newest = e;
}

/* Takes e out of the table and the list; frees it unless referenced. */
static void drop(struct lru *lru, struct lru_entry *e)
{
	struct lru_entry **p = &lru->table[e->hash & (lru->nbuckets - 1)];

	while (*p != e)
		p = &(*p)->chain;
	*p = e->chain;
	e->chain = NULL;
	list_unlink(lru, e);
	lru->entries--;
	if (e->refs) {
		e->state = LRU_DETACHED;
		lru->linked_pinned--;
		lru->detached++;
		return;
	}
	lru->bytes -= entry_charge(e);
	free(e);
}

/* Evicts the least recently used unreferenced entry. Returns false when
 * there is none. Referenced entries are passed over: unlinking them would
 * give no memory back. */
static bool evict_one(struct lru *lru)
{
	struct lru_entry *e = lru->oldest;

	while (e && e->refs)
		e = e->newer;
	if (!e)
		return false;
	drop(lru, e);
	lru->evictions++;
	return true;
}

/* Moves the linked entries into a table of nbuckets (0: none) and charges
 * it instead of the old one. Returns 0, or -ENOMEM with nothing changed. */
static int rehash(struct lru *lru, size_t nbuckets)
{
	struct lru_entry **t = NULL;

	if (nbuckets) {
		t = calloc(nbuckets, sizeof(*t));
		if (!t)
			return -ENOMEM;
	}
	for (struct lru_entry *e = lru->oldest; e; e = e->newer) {
		struct lru_entry **b = &t[e->hash & (nbuckets - 1)];

		e->chain = *b;
		*b = e;
	}
	free(lru->table);
	lru->bytes = lru->bytes - table_bytes(lru->nbuckets) + table_bytes(nbuckets);
	lru->table = t;
	lru->nbuckets = nbuckets;
	return 0;
}

/* Once a quarter of the table or less is used, shrinks it to a load of a
 * half (the gap keeps a store near a power of two from rehashing at every
 * put and remove); without entries, frees it. A failed shrink keeps the
 * larger table, still charged. */
static void maybe_shrink(struct lru *lru)
{
	if (lru->entries == 0) {
		(void)rehash(lru, 0);
		return;
	}
	if (lru->nbuckets > LRU_TABLE_MIN && lru->entries * 4 <= lru->nbuckets)
		(void)rehash(lru, buckets_for(lru->entries * 2));
}

/* What the table must grow by to hold n entries. */
static size_t growth(const struct lru *lru, size_t n)
{
	size_t need = buckets_for(n);

	return need > lru->nbuckets ? table_bytes(need) - table_bytes(lru->nbuckets) : 0;
}

/* Whether c more bytes can be charged with the table grown for one more
 * entry. */
static bool fits(const struct lru *lru, size_t c)
{
	size_t g = growth(lru, lru->entries + 1);

	return lru->bytes <= lru->max_bytes && c <= lru->max_bytes - lru->bytes &&
	       g <= lru->max_bytes - lru->bytes - c;
}

/* Evicts until an entry of charge c fits; once only referenced entries are
 * left, shrinks the table to what they and the new entry need. */
static int make_room(struct lru *lru, size_t c)
{
	while (!fits(lru, c)) {
		if (evict_one(lru))
			continue;
		if (buckets_for(lru->entries + 1) >= lru->nbuckets)
			return -ENOSPC;
		if (rehash(lru, buckets_for(lru->entries + 1)) < 0)
			return -ENOMEM;
	}
	if (growth(lru, lru->entries + 1))
		return rehash(lru, buckets_for(lru->entries + 1));
	return 0;
}

int lru_put(struct lru *lru, const void *key, size_t key_len, const void *value, size_t value_len,
	    uint64_t group)
{
	size_t c = lru_charge(key_len, value_len);
	size_t table_min = table_bytes(LRU_TABLE_MIN);
	size_t keep, floor;
	struct lru_entry *old, *e;
	uint64_t h;
	int r;

	if (key_len == 0 || key_len > LRU_KEY_MAX)
		return -EINVAL;
	if (c > lru->max_entry || lru->max_bytes < table_min || c > lru->max_bytes - table_min) {
		lru->refused++;
		return -E2BIG;
	}
	h = key_hash(lru, key, key_len);
	old = find(lru, h, key, key_len);
	/* The least the store can come down to: the referenced entries, the
	 * new one, and a table for those of them that are linked. */
	keep = lru->linked_pinned - (old && old->refs ? 1 : 0) + 1;
	floor = table_bytes(buckets_for(keep));
	if (floor > lru->max_bytes || lru->pinned_bytes > lru->max_bytes - floor ||
	    c > lru->max_bytes - floor - lru->pinned_bytes) {
		lru->refused++;
		return -ENOSPC;
	}
	e = malloc(sizeof(*e) + key_len + value_len);
	if (!e)
		return -ENOMEM;
	*e = (struct lru_entry){ .hash = h,
				 .group = group,
				 .key_len = key_len,
				 .value_len = value_len,
				 .state = LRU_LINKED };
	memcpy(e->data, key, key_len);
	if (value_len)
		memcpy(e->data + key_len, value, value_len);
	if (old)
		drop(lru, old);
	r = make_room(lru, c);
	if (r < 0) {
		free(e);
		if (r == -ENOSPC)
			lru->refused++;
		return r;
	}
	e->chain = lru->table[h & (lru->nbuckets - 1)];
	lru->table[h & (lru->nbuckets - 1)] = e;
	list_push_newest(lru, e);
	lru->entries++;
	lru->bytes += c;
	maybe_shrink(lru);
	return 0;
}

struct lru_entry *lru_get(struct lru *lru, const void *key, size_t key_len)
{
	struct lru_entry *e = lru_peek(lru, key, key_len);

	if (e && e != lru->newest) {
		list_unlink(lru, e);
		list_push_newest(lru, e);
	}
	return e;
}

struct lru_entry *lru_peek(const struct lru *lru, const void *key, size_t key_len)
{
	if (key_len == 0 || key_len > LRU_KEY_MAX || lru->nbuckets == 0)
		return NULL;
	return find(lru, key_hash(lru, key, key_len), key, key_len);
}

const void *lru_entry_value(const struct lru_entry *e, size_t *ret_len)
{
	*ret_len = e->value_len;
	return e->data + e->key_len;
}

uint64_t lru_entry_group(const struct lru_entry *e)
{
	return e->group;
}

void lru_ref(struct lru *lru, struct lru_entry *e)
{
	if (e->refs++ > 0)
		return;
	lru->pinned_bytes += entry_charge(e);
	if (e->state == LRU_LINKED)
		lru->linked_pinned++;
}

void lru_unref(struct lru *lru, struct lru_entry *e)
{
	assert(e->refs > 0);
	if (--e->refs > 0)
		return;
	lru->pinned_bytes -= entry_charge(e);
	if (e->state == LRU_LINKED) {
		lru->linked_pinned--;
		return;
	}
	lru->detached--;
	lru->bytes -= entry_charge(e);
	free(e);
	if (lru->closing && lru->detached == 0)
		free(lru);
}

int lru_remove(struct lru *lru, const void *key, size_t key_len)
{
	struct lru_entry *e = lru_peek(lru, key, key_len);

	if (!e)
		return -ENOENT;
	drop(lru, e);
	maybe_shrink(lru);
	return 0;
}

static size_t purge(struct lru *lru, bool all, uint64_t group)
{
	struct lru_entry *e = lru->oldest, *next;
	size_t n = 0;

	for (; e; e = next) {
		next = e->newer;
		if (all || e->group == group) {
			drop(lru, e);
			n++;
		}
	}
	maybe_shrink(lru);
	return n;
}

size_t lru_purge_group(struct lru *lru, uint64_t group)
{
	return purge(lru, false, group);
}

size_t lru_purge_all(struct lru *lru)
{
	return purge(lru, true, 0);
}

void lru_resize(struct lru *lru, size_t max_bytes, size_t max_entry)
{
	lru->max_bytes = max_bytes;
	lru->max_entry = max_entry;
	/* Shrinking the table as entries go gives back its charge too. */
	while (lru->bytes > lru->max_bytes && evict_one(lru))
		maybe_shrink(lru);
	maybe_shrink(lru);
}

void lru_stats(const struct lru *lru, struct lru_stats *ret)
{
	*ret = (struct lru_stats){
		.bytes = lru->bytes,
		.table_bytes = table_bytes(lru->nbuckets),
		.entries = lru->entries,
		.detached = lru->detached,
		.evictions = lru->evictions,
		.refused = lru->refused,
	};
}

size_t lru_longest_chain(const struct lru *lru)
{
	size_t longest = 0;

	for (size_t i = 0; i < lru->nbuckets; i++) {
		size_t n = 0;

		for (const struct lru_entry *e = lru->table[i]; e; e = e->chain)
			n++;
		if (n > longest)
			longest = n;
	}
	return longest;
}

void lru_free(struct lru *lru)
{
	if (!lru)
		return;
	purge(lru, true, 0);
	if (lru->detached > 0) {
		lru->closing = true;
		return;
	}
	free(lru);
}

/* A bounded map from byte keys to opaque byte values, evicting the least
 * recently used: the storage of the answer cache (SPEC 4.13). Every entry
 * is charged its key, its value and LRU_ENTRY_OVERHEAD, and the hash
 * table's array is charged too, so what the store allocates is at most its
 * charge plus LRU_STORE_OVERHEAD, and the charge stays within max_bytes.
 * Pure: no I/O, no clock; one thread. */
#ifndef BRACED_LRU_H
#define BRACED_LRU_H

#include <stddef.h>
#include <stdint.h>

/* Longest key accepted: a cache key is a profile, a method, a path, a query
 * and a few header values, all of them bounded well below this. */
#define LRU_KEY_MAX 16384

/* Charged per entry besides its key and value: at least the entry's header
 * (sizeof(struct lru_entry), checked at compile time in lru.c) plus the
 * allocator's own header and rounding for the one allocation that holds
 * the entry, its key and its value. */
#define LRU_ENTRY_OVERHEAD 128

/* From this charge up, an entry is charged in whole pages: allocators map
 * blocks this large (glibc's default mmap threshold) from the kernel a page
 * at a time. */
#define LRU_PAGED_FROM (128 * 1024)
#define LRU_PAGE 4096

/* Fewest buckets of a table that holds an entry; the table is charged
 * LRU_BUCKET_BYTES per bucket and exists only while entries do. */
#define LRU_TABLE_MIN 8
#define LRU_BUCKET_BYTES sizeof(void *)

/* What the store allocates beyond its charge, whatever max_bytes: the
 * struct lru and the allocator's header on the table (checked in lru.c).
 * The allocator's fragmentation is not counted. */
#define LRU_STORE_OVERHEAD 256

struct lru;
struct lru_entry;

struct lru_stats {
	size_t bytes;       /* charged: table + entries, detached ones included */
	size_t table_bytes; /* the table's part of bytes */
	size_t entries;     /* entries found by key */
	size_t detached;    /* evicted, replaced or removed but still referenced */
	uint64_t evictions; /* entries evicted to make room */
	uint64_t refused;   /* puts that stored nothing for want of room */
};

/* A store of at most max_bytes of charge, refusing entries charged more
 * than max_entry. seed keys the bucket hash: take it from a seeded rng
 * (lib/rng) so that clients, who choose the keys, cannot choose collisions.
 * Returned to the caller (lru_free); NULL on OOM. */
struct lru *lru_new(size_t max_bytes, size_t max_entry, uint64_t seed);

/* Frees every unreferenced entry and the store. Referenced entries stay
 * valid, and the store with them, until their last lru_unref, which frees
 * what is left; no other call is allowed on the store once freed. NULL is a
 * no-op. */
void lru_free(struct lru *lru);

/* What an entry of that key and value is charged: LRU_ENTRY_OVERHEAD +
 * key_len + value_len, rounded up to LRU_PAGE from LRU_PAGED_FROM on;
 * SIZE_MAX if that overflows. */
size_t lru_charge(size_t key_len, size_t value_len);

/* Stores a copy of the value_len bytes at value under a copy of the
 * key_len bytes at key (both borrowed), in group (a caller's id, e.g. a
 * profile's, for lru_purge_group), as the most recently used entry. An
 * entry already under key is replaced: unlinked at once, freed now or at
 * its last lru_unref. Least recently used unreferenced entries are evicted
 * until the new one fits. Returns 0;
 * -EINVAL for an empty key or one longer than LRU_KEY_MAX;
 * -E2BIG when the charge is above max_entry, or above max_bytes less the
 *  smallest table: nothing is evicted, the old entry under key stays;
 * -ENOSPC when referenced entries hold so much that it cannot fit even
 *  with every other entry evicted: nothing is evicted, the old entry stays;
 * -ENOMEM, with the store consistent but the old entry and others possibly
 *  gone.
 * E2BIG and ENOSPC count in refused. */
int lru_put(struct lru *lru, const void *key, size_t key_len, const void *value, size_t value_len,
	    uint64_t group);

/* The entry under key (borrowed), made the most recently used; NULL if
 * none. The entry and its value stay valid until the next call that may
 * change the store (put, remove, purge, resize, free), or for as long as
 * the caller holds a reference (lru_ref). */
struct lru_entry *lru_get(struct lru *lru, const void *key, size_t key_len);

/* Like lru_get, without touching the recency order. */
struct lru_entry *lru_peek(const struct lru *lru, const void *key, size_t key_len);

/* The value of e (borrowed from e) and, in *ret_len, its length. */
const void *lru_entry_value(const struct lru_entry *e, size_t *ret_len);
uint64_t lru_entry_group(const struct lru_entry *e);

/* Takes a reference on e, an entry of lru, for a caller that keeps its
 * value across calls that change the store (an answer streamed over
 * several event-loop turns). While referenced, e is never evicted to make
 * room (its memory would not come back); removed, replaced or purged, it is
 * unlinked at once and no longer found, but its value stays valid and its
 * charge counts until the last lru_unref frees it. */
void lru_ref(struct lru *lru, struct lru_entry *e);

/* Drops a reference taken by lru_ref; the last one on an unlinked entry
 * frees it (and a store freed meanwhile, with its last such entry). */
void lru_unref(struct lru *lru, struct lru_entry *e);

/* Removes the entry under key. Returns 0, or -ENOENT if there is none. */
int lru_remove(struct lru *lru, const void *key, size_t key_len);

/* Removes every entry of group (a purge of one profile), or every entry.
 * Returns how many were removed. */
size_t lru_purge_group(struct lru *lru, uint64_t group);
size_t lru_purge_all(struct lru *lru);

/* New limits (a reload): evicts least recently used unreferenced entries
 * until the charge is within max_bytes. Entries above the new max_entry
 * stay until evicted. Referenced entries may keep the charge above
 * max_bytes until they are released; puts are refused (ENOSPC) until then. */
void lru_resize(struct lru *lru, size_t max_bytes, size_t max_entry);

/* The counters, into *ret. */
void lru_stats(const struct lru *lru, struct lru_stats *ret);

/* The longest bucket chain (walks the table: for tests and diagnosis). */
size_t lru_longest_chain(const struct lru *lru);

#endif

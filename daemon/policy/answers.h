/* The answers the cache keeps (SPEC 4.13), over a bounded store (lru.h):
 * found and kept by the key of cacheable.h, with Vary. An answer that
 * names headers in its Vary is kept under a key that adds the request's
 * values of them, and a small record under the request's base key says
 * which headers to add when the next request looks. Pure: the caller
 * passes the request's facts and a way to read its headers. */
#ifndef BRACED_ANSWERS_H
#define BRACED_ANSWERS_H

#include <stddef.h>
#include <stdint.h>

#include "cachecontrol.h"
#include "lru.h"
#include "policy.h"
#include "strbuf.h"

struct answers;

/* A request as the store sees it; borrowed for the call. */
struct answers_request {
	const char *profile;
	const char *method;
	const char *path; /* as sent, after the profile */
	size_t path_len;
	const char *query; /* as sent; NULL: none */
	size_t query_len;
	const struct cache_policy *cp; /* its key_headers */
	/* The request's value of header name, all its lines joined with ", ";
	 * NULL when absent. */
	const char *(*header)(void *arg, const char *name, size_t *ret_len);
	void *arg;
	uint64_t group; /* its profile's: what a purge of one profile removes */
};

/* A store of at most max_bytes (lru_new()). NULL on OOM. */
struct answers *answers_new(size_t max_bytes, size_t max_entry, uint64_t seed);
void answers_free(struct answers *a);
/* The store underneath: lru_ref/lru_unref an entry to hold it over loop
 * turns, purge, resize and stats. */
struct lru *answers_store(struct answers *a);

/* The entry kept for r (its value is the blob given to answers_keep()),
 * marked recently used; NULL when none, or when r's key is too long.
 * Borrowed until the store changes. */
struct lru_entry *answers_find(struct answers *a, const struct answers_request *r);

/* Writes r's base key (its key without any Vary) to out: what identical
 * requests share while one exchange for them is in flight. 0 or
 * -ENAMETOOLONG. */
int answers_base_key(const struct answers_request *r, struct strbuf *out);

/* Keeps blob (len bytes, copied) as the answer to r, whose Vary is vary
 * (NULL or n 0: none; a star is refused with -EINVAL, never kept). It
 * replaces what was kept for the same request. Returns 0, -ENAMETOOLONG
 * (the key), or lru_put()'s errors (-E2BIG, -ENOSPC, -ENOMEM). */
int answers_keep(struct answers *a, const struct answers_request *r,
		 const struct cachecontrol_vary *vary, const void *blob, size_t len);

#endif

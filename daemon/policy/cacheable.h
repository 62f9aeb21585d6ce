/* The cache's decisions (SPEC 4.13), pure: whether a request may use the
 * cache, whether an answer may be kept, and the key an answer is kept
 * under. The caller reads the messages (cachecontrol.h) and passes the
 * facts in; nothing here touches a socket or the store. */
#ifndef BRACED_CACHEABLE_H
#define BRACED_CACHEABLE_H

#include <stddef.h>
#include <stdint.h>

#include "cacheentry.h"
#include "cachecontrol.h"
#include "policy.h"
#include "strbuf.h"

/* Longest key: a request whose key would be longer bypasses the cache. */
#define CACHEABLE_KEY_MAX 16384

/* What a request does with the cache. */
enum cache_use {
	CACHE_USE,                /* look it up; a fresh entry answers */
	CACHE_USE_REVALIDATE,     /* the app's no-cache: an entry is validated before use */
	CACHE_BYPASS_OFF,         /* no store, or cache.enabled false */
	CACHE_BYPASS_METHOD,      /* neither GET nor HEAD */
	CACHE_BYPASS_CREDENTIALS, /* Authorization or Cookie, not in key_headers */
	CACHE_BYPASS_NO_STORE,    /* the app's no-store */
	CACHE_BYPASS_CONDITIONAL, /* the app's own validators or Range (the caller's check) */
	CACHE_USE__COUNT
};

struct cache_request {
	int method;                    /* enum http_method */
	int has_authorization;         /* the request carries Authorization */
	int has_cookie;                /* ... Cookie */
	const struct cachecontrol *cc; /* the app's Cache-Control (cachecontrol_parse, REQUEST) */
};

/* Whether request r uses the cache under cp, with a store (store_on) or
 * not: GET and HEAD only; a request carrying Authorization or Cookie only
 * when that header is in cp->key_headers (its value then keys the entry);
 * no-store bypasses, no-cache revalidates. */
enum cache_use cacheable_request(const struct cache_policy *cp, int store_on,
				 const struct cache_request *r);
/* "use", "revalidate", "off", "method", "credentials", "no_store". */
const char *cacheable_use_name(enum cache_use u);

/* Why an answer is kept or not. */
enum cache_keep {
	CACHE_KEEP,
	CACHE_NOT_STATUS,     /* not 200, 203, 204, 300, 301, 404 or 410 */
	CACHE_NOT_NO_STORE,   /* no-store (or a Cache-Control past its bounds) */
	CACHE_NOT_SET_COOKIE, /* it sets a cookie: meant for one client */
	CACHE_NOT_VARY_STAR,  /* Vary: * or a Vary braced does not key on */
	CACHE_NOT_LIFETIME,   /* no max-age, no Expires and no configured ttl */
	CACHE_NOT_SCHEMA,     /* it failed the route's response schema (any mode) */
	CACHE_NOT_TOO_LARGE,  /* larger than cache.max_entry */
	CACHE_KEEP__COUNT
};

struct cache_answer {
	int status;
	const struct cachecontrol_freshness *f; /* cachecontrol_freshness() of it */
	const struct cachecontrol_vary *vary;   /* its Vary (n 0: none) */
	int set_cookie;                         /* it carries Set-Cookie */
	int schema_failed; /* a response schema applies and it did not pass (report mode too) */
	uint64_t size;     /* what keeping it would charge (head and body) */
	uint64_t max_entry;
};

/* Whether answer a may be kept (the first reason it may not, in the
 * order of enum cache_keep). An answer whose lifetime came from max-age or
 * Expires is kept even when 0 (stale at once: it still serves a
 * revalidation and stale-if-error); one with neither needs a ttl above 0. */
enum cache_keep cacheable_answer(const struct cache_answer *a);
/* "keep", "status", "no_store", "set_cookie", "vary", "lifetime", "schema",
 * "too_large". */
const char *cacheable_keep_name(enum cache_keep k);

/* What a kept entry can do for a request at one instant. */
enum cache_state {
	CACHE_FRESH,       /* answers at once: Brace-Cache: hit */
	CACHE_STALE_SERVE, /* stale within stale_while_revalidate: answers at once, one
			    * revalidation behind it (Brace-Cache: stale) */
	CACHE_REVALIDATE,  /* asked of the upstream with its validators; a 304 refreshes it */
};

/* The state of an entry kept with meta, for a request that uses the cache
 * as use says, under cp, at now (seconds since the epoch). An entry marked
 * revalidate (the answer's no-cache), or asked for by the app's no-cache,
 * is validated first; a fresh one answers; a stale one answers within the
 * larger of cp's stale_while_revalidate and the answer's own, unless the
 * answer said must-revalidate or no-cache (never_stale). */
enum cache_state cacheable_state(const struct cacheentry_meta *meta, const struct cache_policy *cp,
				 enum cache_use use, int64_t now);

/* 1 when an entry kept with meta may stand in for a failed exchange at now
 * (SPEC 4.13): stale by less than the larger of cp's stale_if_error and the
 * answer's own, and not never_stale. A fresh entry always may. */
int cacheable_stands_in(const struct cacheentry_meta *meta, const struct cache_policy *cp,
			int64_t now);

/* A request header's value as the key reads it: present (possibly empty)
 * or absent, the two never equal. Borrowed. */
struct cache_header_value {
	const char *name;  /* as configured or as the Vary names it */
	const char *value; /* all its lines joined with ", "; NULL: absent */
	size_t len;
};

/* Appends the key of a request to out: the profile, the method, the
 * path and the query (as sent), and the values of headers (the
 * key_headers, then the headers the answer's Vary names), each part
 * length-prefixed so that no two different requests share a key. Returns 0,
 * or -ENAMETOOLONG when the key would pass CACHEABLE_KEY_MAX (out then holds
 * nothing usable). */
int cacheable_key(struct strbuf *out, const char *profile, const char *method, const char *path,
		  size_t path_len, const char *query, size_t query_len,
		  const struct cache_header_value *headers, size_t nheaders);

/* What Brace-Cache says of an answer, and the metrics' result label. */
enum cache_result {
	CACHE_R_NONE, /* the route does not use a cache: no header */
	CACHE_R_HIT,
	CACHE_R_STALE,
	CACHE_R_STALE_IF_ERROR,
	CACHE_R_REVALIDATED,
	CACHE_R_MISS,
	CACHE_R_COALESCED,
	CACHE_R_BYPASS,
	CACHE_R__COUNT
};

/* "hit", "stale", "stale-if-error", ...: the header's value. */
const char *cacheable_result_header(enum cache_result r);
/* "hit", "stale", "stale_if_error", ...: the metric's label. */
const char *cacheable_result_label(enum cache_result r);

#endif

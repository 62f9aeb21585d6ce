/* What the two halves of the cache on the request path share (cache.h):
 * cache.c holds the store, the keys, the exchanges in flight, answering
 * from memory and a request's beginning and end; cache_keep.c what an
 * exchange's answer does (kept, shared with its waiters, standing in for a
 * failure, a streamed answer's copy). Private to them. */
#ifndef BRACED_CACHE_INTERNAL_H
#define BRACED_CACHE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "answers.h"
#include "cache.h"
#include "cacheable.h"
#include "cacheentry.h"
#include "lru.h"
#include "problem.h"

struct request;
struct evbuffer;

/* Buckets of the table of exchanges in flight (a power of two). */
#define CACHE_FLIGHT_BUCKETS 1024
/* Header values joined from several lines for one key, at most. */
#define CACHE_JOINED_MAX 24

struct cache_req;
TAILQ_HEAD(cache_waiters, cache_req);

/* An exchange identical requests wait for. */
struct flight {
	struct flight *next;
	uint64_t hash;
	char *key;
	size_t key_len;
	struct cache_req *leader;
	struct cache_waiters waiters;
	unsigned nwaiters;
};

struct cache_store {
	struct answers *answers;
	uint64_t max_bytes, max_entry;
	uint64_t seed;
	uint64_t purges; /* purges and reloads that removed entries, so far */
	struct flight *flights[CACHE_FLIGHT_BUCKETS];
};

struct cache_req {
	struct request *req;
	enum cache_result result;
	enum cache_use use;
	int counted;
	struct answers_request ar;
	char *path;              /* as sent, then the query: ar points into it */
	struct lru_entry *entry; /* held (lru_ref) while it is revalidated */
	struct lru *entry_store; /* the store it was held in */
	int validators;          /* If-None-Match or If-Modified-Since went up */
	struct flight *flight;
	int leads;
	TAILQ_ENTRY(cache_req) wait_link;
	int silent;                     /* answered already: goes on for the store or the waiters */
	char *joined[CACHE_JOINED_MAX]; /* header values joined from several lines */
	char *joined_name[CACHE_JOINED_MAX];
	unsigned njoined;
	int key_bad;     /* a header value of the key could not be read */
	uint64_t purges; /* the store's purges when it began: one since, and nothing is kept */
	char *upstream;  /* the profile's upstream when it began (a reload may change it) */
};

/* An answer's bytes shared by several replies without a copy: the replies
 * reference them (evbuffer_add_reference) and the last one written frees
 * them. */
struct shared {
	unsigned refs;
	char *p;
	size_t len;
};

/* What holds the bytes of a reply: an entry of a store (held with lru_ref
 * until the reply is written) or a shared blob. */
struct owner {
	struct lru *lru;
	struct lru_entry *e;
	struct shared *sh;
};

/* The value of header name in the request's upstream lines, joined over
 * several lines (answers_request.header). */
const char *cache_list_value(void *arg, const char *name, size_t *ret_len);
/* Sets what Brace-Cache will say of c's answer. */
void cache_set_result(struct cache_req *c, enum cache_result r);
/* Ends the exchange c leads: its waiters are moved to *ret. */
void cache_flight_end(struct cache_req *c, struct cache_waiters *ret);
/* A waiter goes on alone (503 while shutting down). */
void cache_start_alone(struct cache_req *w);
/* Each waiter of ws goes on alone. */
void cache_release_waiters(struct cache_waiters *ws);
/* Drops one reference to a shared blob. */
void cache_shared_put(struct shared *sh);
/* Answers req with entry blob (len bytes, held by own) as r says. Returns
 * 0, or -1 when req was answered otherwise and freed. */
int cache_answer_blob(struct request *req, const void *blob, size_t len, const struct owner *own,
		      enum cache_result r, const enum problem_code *avoided, int early);
/* The same with entry e of store lru. */
int cache_answer_entry(struct request *req, struct lru *lru, struct lru_entry *e,
		       enum cache_result r, const enum problem_code *avoided, int early);
/* The entry that may stand in for a failure of c's exchange, or NULL; its
 * store in *ret_lru (cache_keep.c). */
struct lru_entry *cache_stand_in(struct cache_req *c, struct lru **ret_lru);

#endif

/* The cache on the request path (SPEC 4.13): the store of a server's kept
 * answers and the exchanges in flight that identical requests wait for.
 * The decisions are policy/cacheable.h's and the store policy/answers.h's;
 * this is the glue that reads a request and its answers, answers from
 * memory, keeps what may be kept and shares an exchange with its waiters.
 * request.c calls it at each turn of a request's life. */
#ifndef BRACED_CACHE_H
#define BRACED_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cacheable.h"

struct request;
struct request_env;
struct config;
struct call;
struct engine_answer;
struct engine_end;

/* Most requests waiting for one exchange; a request beyond it makes its
 * own. */
#define CACHE_WAITERS_MAX 1024

/* Makes env's store fit cfg (a reload: old is the configuration before,
 * NULL at start): created, resized or freed with cache.max_bytes; the
 * entries of a profile that is gone, or whose upstream changed, are
 * removed. Returns 0 or -ENOMEM (the store is
 * then gone, and the cache off until the next reload). */
int cache_env_configure(struct request_env *env, const struct config *old,
			const struct config *cfg);
/* Frees the store; every request is gone. */
void cache_env_free(struct request_env *env);

/* Empties the store, or (profile not NULL) one profile's entries.
 * Returns the entries removed. */
size_t cache_purge(struct request_env *env, const char *profile);

struct cache_stats {
	uint64_t max_bytes; /* 0: no store */
	uint64_t bytes;
	uint64_t entries;
};
void cache_stats(const struct request_env *env, struct cache_stats *ret);

/* A request with a body, on a route with a cache: it does not use it
 * (Brace-Cache: bypass). */
void cache_bypass(struct request *req);

/* What a request does after its look-up. */
enum cache_next {
	CACHE_GO,       /* start it: a miss, a revalidation, a bypass, a refresh */
	CACHE_WAIT,     /* it waits for an identical request's exchange, its budget long */
	CACHE_ANSWERED, /* answered from memory and freed */
};

/* A routed request with its body read: looks it up. */
enum cache_next cache_begin(struct request *req);

/* The engine answers req as a says. Returns 1 when the cache answered
 * instead (a 304 to a revalidation, a stale entry standing in for a
 * failure): req is freed. Otherwise 0, and the answer goes out as the
 * engine said; an answer relayed whole is kept (when it may be) and shared
 * with those waiting first. */
int cache_on_answer(struct request *req, const struct engine_answer *a);

/* The body of call's answer streams to req's app: a copy is taken
 * (req->tee, by flow.c) when it may be kept or shared and its length (or,
 * none said, cache.max_entry) fits in limits.max_buffered; waiters that
 * could not get it (no length, or one past max_entry) go alone now. */
void cache_stream_begin(struct request *req, struct call *call);
/* The streamed answer ended (complete or not). */
void cache_stream_end(struct request *req, int complete);

/* The app of req left. Returns 1 when req is to go on without it (it
 * leads an exchange others wait for): the caller orphans it
 * (request_orphan). 0: the usual end (a waiter has left its exchange). */
int cache_client_gone(struct request *req);

/* req waited for an identical request's exchange for its whole budget:
 * answered (stale-if-error or 504) and freed. Returns 0 when req is not a
 * waiter. */
int cache_wait_over(struct request *req);

/* Shutdown: a waiter leaves its exchange (the caller answers it 503). */
void cache_abort(struct request *req);

/* req is being freed: its entry reference, its copy, its exchange (the
 * waiters left start their own). */
void cache_request_free(struct request *req);

/* The most of req's answer to hold whole (cache.max_entry) when it goes
 * nowhere but to the store and those waiting (an exchange whose app left,
 * a refresh behind a stale answer); 0 when it is not held for the cache. */
uint64_t cache_holds_whole(const struct request *req);

/* 1 when req answered its app already and goes on only to refresh the
 * store: no count, no log line of its own. */
int cache_silent(const struct request *req);

#endif

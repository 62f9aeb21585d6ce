/* The line for limits.max_buffered (policy/hold.h): a request reserves
 * what it will hold whole (an answer for its schema, a request body for its
 * retries) and waits, first come first served, when that does not fit;
 * everything a request reserved comes back when it ends. */
#ifndef BRACED_MEMORY_H
#define BRACED_MEMORY_H

#include <stdint.h>

struct request;
struct request_env;
struct call;

/* Sets up env's budget and its line (env->base is set); _done() stops
 * serving the line (every request is gone). */
void memory_env_init(struct request_env *env, uint64_t max_buffered);
void memory_env_done(struct request_env *env);
/* A reload: the new budget, and the line served again under it. */
void memory_env_set_max(struct request_env *env, uint64_t max_buffered);

/* Reserves n bytes for req: 0 when reserved; 1 when req waits in line,
 * to hold the answer of call (then call_hold() is called when it fits) or,
 * call NULL, something else (then granted(req) is called); -E2BIG when n
 * is more than the whole budget, -EBUSY when req waits in line already. */
int memory_reserve(struct request *req, uint64_t n, struct call *call,
		   void (*granted)(struct request *req));
/* Reserves n bytes for req now or not at all: 0, or -ENOSPC (or -E2BIG)
 * without waiting. */
int memory_try(struct request *req, uint64_t n);
/* Gives back part of what req reserved (a body shorter than reserved). */
void memory_give(struct request *req, uint64_t n);
/* The call req waits for is cancelled: req leaves the line. */
void memory_forget_call(struct request *req);
/* req ends: it leaves the line and gives back all it reserved. */
void memory_release(struct request *req);

#endif

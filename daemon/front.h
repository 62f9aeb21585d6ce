/* The front: evhttp on every listener, request limits, routing of
 * /PROFILE/REST?QUERY to a profile and route, control headers. It turns each
 * accepted HTTP request into a struct request (request.c). */
#ifndef BRACED_FRONT_H
#define BRACED_FRONT_H

#include <stdint.h>
#include <sys/queue.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>

#include "config.h"
#include "rng.h"

struct upstream;
struct upstream_pool;
struct guard;
struct request;

TAILQ_HEAD(request_list, request);

struct server {
	struct event_base *base;
	struct config *cfg;               /* current configuration (one reference) */
	struct upstream_pool **pools;     /* by profile index of cfg */
	struct guard **guards_by_profile; /* by profile index of cfg */
	struct guard *guards;             /* every guard, kept across reloads */
	struct upstream *up;
	struct evhttp *http;
	struct evhttp_bound_socket *bound[CONFIG_MAX_LISTENERS];
	size_t nbound;
	char *unix_paths[CONFIG_MAX_LISTENERS]; /* unix sockets created, to unlink */
	size_t nunix;
	struct rng rng;
	unsigned inflight;
	unsigned writing;             /* replies queued but not yet written out;
					       may overcount when an app leaves mid-write */
	struct request_list requests; /* every request not yet finished */
	int draining;
	struct event accept_timer; /* resumes accepting after a pause */
	int accept_paused;
};

/* Creates the front for cfg (takes a reference) on base with the backend
 * up (borrowed). Binds nothing yet. NULL on failure. */
struct server *server_new(struct event_base *base, struct config *cfg, struct upstream *up);

struct evconnlistener;

/* Binds ls on base with backlog (a unix path: a stale socket is replaced,
 * any other file refused; mode 0660) and logs what with the bound address.
 * Returns the listener (the caller owns it) or NULL with errno set, after
 * logging why. */
struct evconnlistener *front_bind(struct event_base *base, const struct listener_setting *ls,
				  int backlog, const char *what);

/* Binds every listener of the configuration; logs each bound address.
 * Returns 0 or a negative errno after logging what failed. */
int server_listen(struct server *srv);

/* Makes cfg the configuration for new requests (takes a reference);
 * requests in flight keep theirs. Returns 0 or -ENOMEM. */
int server_set_config(struct server *srv, struct config *cfg);

/* Stops accepting new connections. */
void server_stop_listening(struct server *srv);

/* Cancels every request in flight and frees the front; NULL is a no-op. */
void server_free(struct server *srv);

#endif

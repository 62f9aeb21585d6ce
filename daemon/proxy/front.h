/* The front: binds the listeners and hands them to braced's HTTP server
 * (http.h), routes /PROFILE/REST?QUERY to a profile and route, reads the
 * control headers, and turns each request into a struct request
 * (request.c); admin requests go to the handler main wires in (admin.c). */
#ifndef BRACED_FRONT_H
#define BRACED_FRONT_H

#include <stdint.h>
#include <sys/queue.h>
#include <event2/event.h>

#include "config.h"
#include "http.h"
#include "request.h"
#include "rng.h"

struct upstream;
struct upstream_pool;
struct guard;
struct request;

/* Longest bound address logged: "[IPV6]:PORT" or "unix:/PATH". */
#define FRONT_ADDR_MAX 128

struct server {
	struct request_env env;           /* base, backend, configuration, rng, requests */
	struct upstream_pool **pools;     /* by profile index of cfg */
	struct guard **guards_by_profile; /* by profile index of cfg */
	struct guard *guards;             /* every guard, kept across reloads */
	struct http_server *http;         /* every listener, the admin one too */
	char *unix_paths[CONFIG_MAX_LISTENERS + 1]; /* unix sockets created, to unlink */
	size_t nunix;
	/* Bound addresses not announced yet: "listening" is logged only once
	 * every bind has succeeded (server_announce). */
	struct {
		const char *what;
		char addr[FRONT_ADDR_MAX];
	} bound[CONFIG_MAX_LISTENERS + 1];
	size_t nbound;
	/* Every listener open, as /config shows it: the app's (bound from
	 * `listen` or passed by socket activation) and the admin one. They
	 * stay for the process's life: a reload does not rebind. */
	struct {
		enum http_listener_kind kind;
		char addr[FRONT_ADDR_MAX];
	} open[CONFIG_MAX_LISTENERS + 1];
	size_t nopen;
	int socket_activated;     /* the app listeners came from LISTEN_FDS */
	struct config *bound_cfg; /* the configuration whose listeners are open (one reference) */
	int draining;
};

/* Creates the front for cfg (takes a reference) on base with the backend
 * up (borrowed). Binds nothing yet. NULL on failure. */
struct server *server_new(struct event_base *base, struct config *cfg, struct upstream *up);

/* Binds ls (a unix path: a stale socket is replaced, any other file
 * refused; mode 0660) with backlog, and keeps the bound address, as a
 * listener of kind, for server_announce() and /config.
 * Returns the listening descriptor (the caller owns it) or a negative errno,
 * after logging why. A unix path created is added to srv's list to unlink. */
int front_bind(struct server *srv, const struct listener_setting *ls, int backlog,
	       enum http_listener_kind kind);

/* Binds every listener of the configuration; logs each bound address.
 * Returns 0 or a negative errno after logging what failed. */
int server_listen(struct server *srv);

/* Logs "listening" (or the admin's line) for every address bound so far:
 * called once start-up knows every bind succeeded, so no address is
 * announced before a later bind fails. */
void server_announce(struct server *srv);

/* The open listeners of kind as "ADDR, ADDR" in buf (len bytes, cut to
 * fit); "none" when there is none. */
void server_open_text(const struct server *srv, enum http_listener_kind kind, char *buf,
		      size_t len);

/* Makes cfg the configuration for new requests (takes a reference);
 * requests in flight keep theirs. Returns 0 or -ENOMEM. */
int server_set_config(struct server *srv, struct config *cfg);

/* Stops accepting new connections (drain); requests in flight go on. */
void server_stop_listening(struct server *srv);

/* Replies still being written to apps that have not read them yet. */
unsigned server_writing(const struct server *srv);

/* Cancels every request in flight (each still gets its one reply), then
 * frees the HTTP server and the front; NULL is a no-op. */
void server_free(struct server *srv);

#endif

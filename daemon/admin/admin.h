/* The admin API on its own listener kind of the HTTP server (SPEC 6):
 * /healthz, /readyz, /metrics, /status and /config (secrets shown as
 * "<redacted>"). */
#ifndef BRACED_ADMIN_H
#define BRACED_ADMIN_H

#include "config.h"
#include "metrics.h"

struct server;
struct admin;
struct http_request;
struct sockaddr;

/* What an admin listener serves, by the address it is bound to (SPEC 6). */
enum admin_scope {
	ADMIN_SCOPE_ALL,    /* loopback (127.0.0.0/8, ::1) or a unix socket: every endpoint */
	ADMIN_SCOPE_PROBES, /* any other address: /healthz, /readyz and /metrics only */
};

/* The scope of a listener bound to sa (borrowed). Only the bound address
 * counts, never a peer's: on 0.0.0.0 a connection from 127.0.0.1 is still
 * probes only, since a proxy in the pod (a service mesh sidecar, kubectl
 * port-forward) makes remote clients arrive from loopback. */
enum admin_scope admin_scope_of(const struct sockaddr *sa);

/* Binds the admin listener ls and hands it to srv's HTTP server as an
 * admin listener (both borrowed; srv must outlive the admin), serving the
 * endpoints of its scope. Logs the bound address, and that it serves
 * probes only when it does. NULL after logging on failure. */
struct admin *admin_new(struct server *srv, const struct listener_setting *ls,
			struct metrics_global *global);
/* Answers req, an admin request, at once: 404 for a path outside the
 * listener's scope (or for any when a is NULL), then 405 for a method
 * other than GET and HEAD. */
void admin_handle(struct admin *a, struct http_request *req);

/* Frees the admin; its listener belongs to the HTTP server, which closes it.
 * NULL is a no-op. */
void admin_free(struct admin *a);

#endif

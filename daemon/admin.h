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

/* Binds the admin listener ls and hands it to srv's HTTP server as an
 * admin listener (both borrowed; srv must outlive the admin). Logs the
 * bound address. NULL after logging on failure. */
struct admin *admin_new(struct server *srv, const struct listener_setting *ls,
			struct metrics_global *global);
/* Answers req, an admin request, at once (a NULL a answers 404). */
void admin_handle(struct admin *a, struct http_request *req);

/* Frees the admin; its listener belongs to the HTTP server, which closes it.
 * NULL is a no-op. */
void admin_free(struct admin *a);

#endif

/* The admin API on its own listener (SPEC 6): /healthz, /readyz, /metrics,
 * /status and /config (secrets shown as "<redacted>"). */
#ifndef BRACED_ADMIN_H
#define BRACED_ADMIN_H

#include "config.h"
#include "metrics.h"

struct server;
struct admin;

/* Binds the admin listener ls for srv (both borrowed; srv must outlive the
 * admin). Logs the bound address. NULL after logging on failure. */
struct admin *admin_new(struct server *srv, const struct listener_setting *ls,
			struct metrics_global *global);
/* Stops listening and frees; NULL is a no-op. */
void admin_free(struct admin *a);

#endif

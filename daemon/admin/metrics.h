/* Prometheus text rendering of the counters braced keeps per profile
 * (struct guard) with their request duration histograms. Pure: writes into a
 * strbuf. */
#ifndef BRACED_METRICS_H
#define BRACED_METRICS_H

#include <stdint.h>

#include "fleetproto.h"
#include "strbuf.h"

struct guard;
struct http_counters;

/* Process-wide counters that belong to no profile. */
struct metrics_global {
	uint64_t reloads_ok;
	uint64_t reloads_error;
	struct fleet_counters fleet;
};

/* Renders every metric of SPEC 6 for the guards of list (borrowed), at
 * now_ms on the monotonic clock. */
void metrics_render(struct strbuf *out, struct guard *list, const struct metrics_global *g,
		    uint64_t now_ms);

/* Renders the HTTP server's counters (borrowed): connections by kind,
 * requests the front answered itself by status, accept pauses. */
void metrics_render_front(struct strbuf *out, const struct http_counters *k);

#endif

/* Prometheus text rendering of the counters braced keeps per profile
 * (struct guard) with their request duration histograms. Pure: renders
 * snapshots its caller took into a strbuf. */
#ifndef BRACED_METRICS_H
#define BRACED_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "fleetproto.h"
#include "guard.h"
#include "strbuf.h"

struct http_counters;

/* Process-wide counters that belong to no profile. */
struct metrics_global {
	uint64_t reloads_ok;
	uint64_t reloads_error;
	struct fleet_counters fleet;
	/* the memory budget of what is held whole (limits.max_buffered) */
	uint64_t held_bytes, held_max;
	unsigned hold_waiting;
	/* the cache's store (SPEC 4.13) */
	uint64_t cache_bytes, cache_entries, cache_max_bytes;
};

/* Renders every metric of SPEC 6 from n per-profile snapshots (borrowed,
 * built by the caller with guard_snapshot() at one moment) and the global
 * counters. */
void metrics_render(struct strbuf *out, const struct guard_snapshot *snaps, size_t n,
		    const struct metrics_global *g);

/* Renders the HTTP server's counters (borrowed): connections by kind,
 * requests the front answered itself by status, accept pauses. */
void metrics_render_front(struct strbuf *out, const struct http_counters *k);

#endif

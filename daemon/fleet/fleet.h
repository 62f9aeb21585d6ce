/* Fleet mode (SPEC 4.9): the profiles' guards share cool-downs, breaker
 * state and the retry budget with the other instances through Redis, on
 * braced's event loop (hiredis's libevent adapter). Nothing here is ever
 * in a request's way: the guards decide alone while Redis is away, slow
 * or wrong, and calls slower than fleet.timeout are abandoned. */
#ifndef BRACED_FLEET_H
#define BRACED_FLEET_H

#include <event2/event.h>

#include "config.h"
#include "fleetproto.h"

struct fleet;
struct guard;

/* A fleet on base, off until configured; its gauge and error counters go
 * to *counters (borrowed, outlives the fleet). NULL on OOM. */
struct fleet *fleet_new(struct event_base *base, struct fleet_counters *counters);

/* Applies cfg (borrowed for the call): hooks the guards of cfg's profiles
 * (by_profile, by profile index), unhooks every other guard of all, and
 * connects, reconnects (cfg->fleet changed) or disconnects (off). Guards
 * must outlive the fleet. Returns 0 or -ENOMEM. */
int fleet_configure(struct fleet *f, const struct config *cfg, struct guard *all,
		    struct guard **by_profile);

/* Disconnects and frees; NULL is a no-op. */
void fleet_free(struct fleet *f);

#endif

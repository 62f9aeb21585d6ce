/* Each profile's endpoints (SPEC 4.11): the addresses the configuration
 * gives, or the upstream URL's name looked up on the loop (upstream/resolve)
 * at start, at each reload and every endpoints.resolve_every. A failed
 * look-up keeps the last set and is logged once, until one works again. */
#ifndef BRACED_DISCOVERY_H
#define BRACED_DISCOVERY_H

#include <event2/event.h>

#include "config.h"

struct discovery;
struct guard;

/* A discovery on base (borrowed). NULL on OOM. */
struct discovery *discovery_new(struct event_base *base);

/* Follows cfg (borrowed until the next call): each profile's endpoints go
 * to its guard in guards_by_profile (borrowed, by profile index). Profiles
 * with addresses, or a numeric host, get theirs at once; names are looked
 * up at once and then every resolve_every. A change of `dns` builds a new
 * resolver. Returns 0, or -EINVAL with the reason logged (a nameserver
 * the resolver refuses), -ENOMEM. */
int discovery_configure(struct discovery *d, const struct config *cfg,
			struct guard *const *guards_by_profile);

/* Cancels every look-up and timer, then frees; NULL is a no-op. Run the
 * loop once more before freeing base (resolver_free()). */
void discovery_free(struct discovery *d);

#endif

/* One memory budget for everything braced holds whole at once (SPEC 3.1,
 * limits.max_buffered): request bodies kept so a retry can send them
 * again, and answers a schema checks. A holder reserves its worst case
 * before it reads a byte and gives back what it did not use, so partial
 * holds never deadlock. Holders that do not fit wait in line, first come
 * first served: a large holder is never starved by small ones. The line
 * itself (who waits) is the caller's; this counts bytes and places. Pure. */
#ifndef BRACED_HOLD_H
#define BRACED_HOLD_H

#include <stdint.h>

struct hold {
	uint64_t max;     /* limits.max_buffered */
	uint64_t held;    /* reserved now */
	uint64_t peak;    /* the most reserved at once */
	unsigned waiting; /* holders in line */
};

void hold_init(struct hold *h, uint64_t max);
/* A reload: the new budget applies to the next reservations; what is held
 * stays held (it may exceed a lowered max until given back). */
void hold_set_max(struct hold *h, uint64_t max);

/* Reserves n bytes for a newcomer: 0, or -ENOSPC when it does not fit or
 * others wait in line (it must wait behind them: hold_wait()), or -E2BIG
 * when n is more than the whole budget (it never fits). */
int hold_take(struct hold *h, uint64_t n);
/* One more holder waits in line. */
void hold_wait(struct hold *h);
/* The first in line reserves n bytes: 0 (it leaves the line), or -ENOSPC
 * while it does not fit yet. */
int hold_take_first(struct hold *h, uint64_t n);
/* A holder leaves the line without reserving (its request ended). */
void hold_leave(struct hold *h);
/* Gives n reserved bytes back. */
void hold_give(struct hold *h, uint64_t n);

#endif

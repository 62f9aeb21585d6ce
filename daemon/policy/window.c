/* The time-bucketed ring behind every sliding window of the policies: a
 * ring slot is reused once the slot of time it held falls out. */
#include "window.h"

#include <string.h>

void window_init(struct window *w, unsigned nslots, uint64_t slot_us)
{
	if (nslots < 1)
		nslots = 1;
	if (nslots > WINDOW_SLOTS_MAX)
		nslots = WINDOW_SLOTS_MAX;
	w->nslots = nslots;
	w->slot_us = slot_us ? slot_us : 1;
	window_clear(w);
}

void window_clear(struct window *w)
{
	memset(w->epoch, 0, sizeof(w->epoch));
}

unsigned window_slot(struct window *w, uint64_t now_us, int *ret_reused)
{
	uint64_t epoch = window_epoch(w, now_us);
	unsigned i = (unsigned)(epoch % w->nslots);

	*ret_reused = w->epoch[i] != epoch;
	w->epoch[i] = epoch;
	return i;
}

int window_find(const struct window *w, uint64_t then_us)
{
	uint64_t epoch = window_epoch(w, then_us);
	unsigned i = (unsigned)(epoch % w->nslots);

	return w->epoch[i] == epoch ? (int)i : -1;
}

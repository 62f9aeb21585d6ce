/* A sliding window of time as a ring of slots, each covering slot_us: the
 * window of the retry budget, the breaker, the latency estimate and the
 * pool's peak tracker. The window says which slot of time each ring slot
 * holds; its owner keeps the counts, in arrays indexed like the ring, and
 * empties a slot's counts when window_slot() says it was reused. Pure:
 * the caller passes "now" (µs, monotonic). */
#ifndef BRACED_WINDOW_H
#define BRACED_WINDOW_H

#include <stdint.h>

/* The largest ring any owner uses. */
#define WINDOW_SLOTS_MAX 10

struct window {
	unsigned nslots;  /* ring size, 1..WINDOW_SLOTS_MAX */
	uint64_t slot_us; /* time one slot covers, at least 1 */
	/* 1 + the number (now_us / slot_us) of the slot of time each ring slot
	 * holds; 0 for a slot never filled since the last clear. */
	uint64_t epoch[WINDOW_SLOTS_MAX];
};

/* Sets the shape (nslots clamped to 1..WINDOW_SLOTS_MAX, slot_us to at
 * least 1) and empties the window. */
void window_init(struct window *w, unsigned nslots, uint64_t slot_us);
/* Empties the window, keeping its shape: every slot reads as reused. */
void window_clear(struct window *w);

/* The number the window gives the slot of time holding now_us. */
static inline uint64_t window_epoch(const struct window *w, uint64_t now_us)
{
	return now_us / w->slot_us + 1; /* +1: epoch 0 marks an unused slot */
}

/* 1 when ring slot i holds one of the nslots slots of time that end with
 * epoch (none later: a clock read late never counts in an earlier one). */
static inline int window_live(const struct window *w, unsigned i, uint64_t epoch)
{
	return w->epoch[i] && w->epoch[i] + w->nslots > epoch && w->epoch[i] <= epoch;
}

/* Makes the ring slot for now_us hold it and returns its index. When it
 * held another slot of time, *ret_reused is 1 and the owner must empty its
 * counts at that index; else 0. */
unsigned window_slot(struct window *w, uint64_t now_us, int *ret_reused);

/* The index of the ring slot that still holds then_us, or -1 when it was
 * reused since (or never filled). */
int window_find(const struct window *w, uint64_t then_us);

#endif

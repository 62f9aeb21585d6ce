/* A profile's attempt latency over the last half minute, in constant
 * memory: log-bucketed counts (4 buckets per doubling) in rotating
 * sub-windows. Pure: the time is passed in. Feeds hedge.delay: pNN. */
#ifndef BRACED_LATENCY_H
#define BRACED_LATENCY_H

#include <stdint.h>

#include "window.h"

/* Sub-windows of LATENCY_SUBWINDOW_MS each; the estimate covers the
 * current one and the ones before it, so between 20 and 30 s. */
#define LATENCY_SUBWINDOWS 3
_Static_assert(LATENCY_SUBWINDOWS <= WINDOW_SLOTS_MAX, "the sub-windows fit the window ring");
#define LATENCY_SUBWINDOW_MS 10000
/* Bucket 0 holds samples under 64 µs; then 4 per doubling, so the last
 * bucket begins near 470 s and holds everything longer. */
#define LATENCY_BUCKETS 93
/* Fewer samples than this in the window: no estimate. */
#define LATENCY_MIN_SAMPLES 20

struct latency_window {
	uint32_t total;
	uint32_t count[LATENCY_BUCKETS];
};

/* Embedded in its owner (the guard). */
struct latency {
	struct window window; /* which sub-window each of win holds */
	struct latency_window win[LATENCY_SUBWINDOWS];
};

/* Makes l an empty estimate; needed before any other call. */
void latency_init(struct latency *l);
/* Counts one attempt that took sample_us, ending at now_us (monotonic). */
void latency_observe(struct latency *l, uint64_t now_us, uint64_t sample_us);
/* Samples in the window at now_us. */
uint32_t latency_count(const struct latency *l, uint64_t now_us);
/* The pct% quantile (1..99) at now_us, as the upper bound of the bucket
 * that holds it (at most 25% above the true value, never below it).
 * Returns 0 with *ret_us set, or -EAGAIN with fewer than
 * LATENCY_MIN_SAMPLES samples (*ret_us untouched); -EINVAL for pct
 * outside 1..99. */
int latency_quantile(const struct latency *l, uint64_t now_us, unsigned pct, uint64_t *ret_us);

/* The bucket of a sample and a bucket's upper bound in µs (for tests). */
unsigned latency_bucket(uint64_t us);
uint64_t latency_bucket_upper(unsigned bucket);

#endif

/* A latency histogram with fixed buckets (seconds, Prometheus's defaults
 * and 30 s): counts per bucket, the count and the sum. Pure data; the
 * guard fills it, the metrics renderer reads it. */
#ifndef BRACED_HISTOGRAM_H
#define BRACED_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_BUCKETS 12

struct histogram {
	uint64_t buckets[HISTOGRAM_BUCKETS]; /* not cumulative: the renderer sums them */
	uint64_t count;
	double sum;
};

/* The upper bound of bucket i (0 <= i < HISTOGRAM_BUCKETS), in seconds. */
double histogram_bound(int i);

/* Counts one observation of seconds (beyond the last bound: count and sum only). */
void histogram_observe(struct histogram *h, double seconds);

#endif

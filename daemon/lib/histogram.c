/* Fixed-bucket histogram (see histogram.h). */
#include "histogram.h"

static const double bounds[HISTOGRAM_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

double histogram_bound(int i)
{
	return bounds[i];
}

void histogram_observe(struct histogram *h, double seconds)
{
	for (int i = 0; i < HISTOGRAM_BUCKETS; i++) {
		if (seconds <= bounds[i]) {
			h->buckets[i]++;
			break;
		}
	}
	h->count++;
	h->sum += seconds;
}

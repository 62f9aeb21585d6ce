/* Log-bucketed latency counts in rotating sub-windows: a bucket is one
 * quarter of a doubling (the two bits after the leading one), so the
 * relative error of a quantile stays under 25% at every scale, with 93
 * counters per sub-window whatever the traffic. */
#include "latency.h"

#include <errno.h>
#include <string.h>

/* Samples below 2^LATENCY_SHIFT µs share bucket 0. */
#define LATENCY_SHIFT 6

void latency_init(struct latency *l)
{
	memset(l, 0, sizeof(*l));
	window_init(&l->window, LATENCY_SUBWINDOWS, (uint64_t)LATENCY_SUBWINDOW_MS * 1000);
}

unsigned latency_bucket(uint64_t us)
{
	unsigned top, octave, sub, b;

	if (us < (1u << LATENCY_SHIFT))
		return 0;
	top = 63u - (unsigned)__builtin_clzll(us);
	octave = top - LATENCY_SHIFT;
	sub = (unsigned)(us >> (top - 2)) & 3u;
	b = 1 + octave * 4 + sub;
	return b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1;
}

uint64_t latency_bucket_upper(unsigned b)
{
	uint64_t base;

	if (b == 0)
		return 1u << LATENCY_SHIFT;
	base = (uint64_t)1 << ((b - 1) / 4 + LATENCY_SHIFT);
	return base + base * ((b - 1) % 4 + 1) / 4;
}

void latency_observe(struct latency *l, uint64_t now_us, uint64_t sample_us)
{
	int reused;
	struct latency_window *w = &l->win[window_slot(&l->window, now_us, &reused)];

	if (reused)
		memset(w, 0, sizeof(*w));
	if (w->total == UINT32_MAX)
		return;
	w->total++;
	w->count[latency_bucket(sample_us)]++;
}

uint32_t latency_count(const struct latency *l, uint64_t now_us)
{
	uint64_t now = window_epoch(&l->window, now_us), n = 0;

	for (unsigned i = 0; i < LATENCY_SUBWINDOWS; i++)
		if (window_live(&l->window, i, now))
			n += l->win[i].total;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int latency_quantile(const struct latency *l, uint64_t now_us, unsigned pct, uint64_t *ret_us)
{
	uint64_t now = window_epoch(&l->window, now_us), n, rank, seen = 0;

	if (pct < 1 || pct > 99)
		return -EINVAL;
	n = latency_count(l, now_us);
	if (n < LATENCY_MIN_SAMPLES)
		return -EAGAIN;
	/* The smallest value with at least pct% of the samples at or below it. */
	rank = (n * pct + 99) / 100;
	for (unsigned b = 0; b < LATENCY_BUCKETS; b++) {
		for (unsigned i = 0; i < LATENCY_SUBWINDOWS; i++)
			if (window_live(&l->window, i, now))
				seen += l->win[i].count[b];
		if (seen >= rank) {
			*ret_us = latency_bucket_upper(b);
			return 0;
		}
	}
	*ret_us = latency_bucket_upper(LATENCY_BUCKETS - 1);
	return 0;
}

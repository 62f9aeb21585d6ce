/* Envoy's gradient controller over an injected clock. Chosen over Netflix's
 * Gradient2 because it anchors on a measured minimum RTT that it measures
 * again on a schedule (Gradient2 follows a long-term average, which drifts
 * up along with a slowly degrading upstream), and because its two phases
 * are plain to test: measure, then follow the gradient. */
#include "limiter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t clamp(const struct limiter *l, double v)
{
	if (v < l->min)
		return l->min;
	if (v > l->max)
		return l->max;
	return (uint32_t)v;
}

void limiter_init(struct limiter *l, uint32_t min, uint32_t max, uint64_t now_us)
{
	memset(l, 0, sizeof(*l));
	l->min = min ? min : 1;
	l->max = max >= l->min ? max : l->min;
	l->limit = l->min;
	l->limit_before = l->min;
	l->measuring = 1;
	l->window_start_us = now_us;
}

void limiter_configure(struct limiter *l, uint32_t min, uint32_t max)
{
	l->min = min ? min : 1;
	l->max = max >= l->min ? max : l->min;
	l->limit = l->measuring ? l->min : clamp(l, l->limit);
	l->limit_before = clamp(l, l->limit_before);
}

uint32_t limiter_limit(const struct limiter *l)
{
	return l->limit;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(struct limiter *l)
{
	qsort(l->samples, l->n, sizeof(l->samples[0]), cmp_u64);
	return l->samples[(l->n - 1) / 2];
}

static void next_window(struct limiter *l, uint64_t now_us)
{
	l->n = 0;
	l->window_start_us = now_us;
}

/* The measurement has its samples: the new minimum, the old limit back. */
static void end_measurement(struct limiter *l, uint64_t now_us)
{
	l->min_rtt_us = median(l);
	if (l->min_rtt_us == 0)
		l->min_rtt_us = 1;
	l->measuring = 0;
	l->limit = clamp(l, l->limit_before);
	l->next_measure_us = now_us + (uint64_t)LIMITER_MIN_RTT_EVERY_MS * 1000;
	next_window(l, now_us);
}

/* One interval's gradient step. */
static void follow_gradient(struct limiter *l, uint64_t now_us)
{
	double gradient, next;

	l->sample_rtt_us = median(l);
	gradient = (double)l->min_rtt_us * (1.0 + LIMITER_BUFFER) /
		   (double)(l->sample_rtt_us ? l->sample_rtt_us : 1);
	if (gradient < 0.5)
		gradient = 0.5;
	if (gradient > 2.0)
		gradient = 2.0;
	next = gradient * l->limit;
	l->limit = clamp(l, next + sqrt(next));
	next_window(l, now_us);
	if (now_us >= l->next_measure_us) {
		l->limit_before = l->limit;
		l->limit = l->min;
		l->measuring = 1;
	}
}

void limiter_sample(struct limiter *l, uint64_t now_us, uint64_t rtt_us)
{
	if (l->n < LIMITER_MAX_SAMPLES)
		l->samples[l->n++] = rtt_us;
	if (l->measuring) {
		if (l->n >= LIMITER_MIN_RTT_SAMPLES)
			end_measurement(l, now_us);
		return;
	}
	if (now_us - l->window_start_us >= (uint64_t)LIMITER_INTERVAL_MS * 1000)
		follow_gradient(l, now_us);
}

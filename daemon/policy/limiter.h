/* The adaptive concurrency limit of one profile: Envoy's gradient
 * controller. Every LIMITER_INTERVAL_MS the median RTT of the attempts
 * sampled meanwhile is compared with the minimum RTT:
 *   gradient = clamp(minRTT × (1 + LIMITER_BUFFER) / sampleRTT, 0.5, 2)
 *   limit    = clamp(gradient × limit + √(gradient × limit), min, max)
 * The minimum RTT is measured at first and again every
 * LIMITER_MIN_RTT_EVERY_MS: the limit drops to min until
 * LIMITER_MIN_RTT_SAMPLES attempts have answered, their median is the new
 * minimum, and the limit before goes back. Pure: time is passed in. */
#ifndef BRACED_LIMITER_H
#define BRACED_LIMITER_H

#include <stdint.h>

/* The sampling interval. */
#define LIMITER_INTERVAL_MS 100
/* How often the minimum RTT is measured again. */
#define LIMITER_MIN_RTT_EVERY_MS 30000
/* Samples a minimum-RTT measurement takes. */
#define LIMITER_MIN_RTT_SAMPLES 25
/* Samples kept per interval; more in one interval are left out. */
#define LIMITER_MAX_SAMPLES 256
/* Tolerance over the minimum RTT before the limit shrinks (Envoy's
 * min_rtt_buffer). */
#define LIMITER_BUFFER 0.25

/* Embedded in its owner (the guard). */
struct limiter {
	uint32_t min, max;
	uint32_t limit;
	uint32_t limit_before;  /* restored after a minimum-RTT measurement */
	int measuring;          /* measuring the minimum RTT, limit held at min */
	uint64_t min_rtt_us;    /* 0 until first measured */
	uint64_t sample_rtt_us; /* the median of the last interval */
	uint64_t window_start_us;
	uint64_t next_measure_us;
	uint32_t n;
	uint64_t samples[LIMITER_MAX_SAMPLES];
};

/* Starts measuring the minimum RTT at now_us with the limit at min. */
void limiter_init(struct limiter *l, uint32_t min, uint32_t max, uint64_t now_us);
/* New bounds (a reload); the limit is clamped into them, state kept. */
void limiter_configure(struct limiter *l, uint32_t min, uint32_t max);
/* One attempt answered after rtt_us (its pool wait left out) at now_us;
 * may change the limit. */
void limiter_sample(struct limiter *l, uint64_t now_us, uint64_t rtt_us);
/* The limit in effect. */
uint32_t limiter_limit(const struct limiter *l);

#endif

/* Circuit breaker state machine over a sliding window of attempt results. */
#include "breaker.h"

#include <string.h>

static void clear_window(struct breaker *b)
{
	window_clear(&b->window);
	memset(b->requests, 0, sizeof(b->requests));
	memset(b->failures, 0, sizeof(b->failures));
}

void breaker_configure(struct breaker *b, const struct breaker_policy *policy)
{
	if (b->policy.window_ms != policy->window_ms || !b->window.nslots) {
		uint64_t slot_ms = policy->window_ms / BREAKER_SLOTS;

		window_init(&b->window, BREAKER_SLOTS, (slot_ms ? slot_ms : 1) * 1000);
		clear_window(b);
	}
	b->policy = *policy;
	if (!policy->enabled) {
		b->state = BREAKER_CLOSED;
		b->probes = 0;
	}
}

static void open_until(struct breaker *b, uint64_t until_us)
{
	b->state = BREAKER_OPEN;
	b->open_until_us = until_us;
	b->probes = 0;
	clear_window(b);
}

/* Opens for the configured open_for from now_us. */
static void trip(struct breaker *b, uint64_t now_us)
{
	open_until(b, now_us + (uint64_t)b->policy.open_for_ms * 1000);
}

enum breaker_state breaker_state(struct breaker *b, uint64_t now_us)
{
	if (b->state == BREAKER_OPEN && now_us >= b->open_until_us) {
		b->state = BREAKER_HALF_OPEN;
		b->probes = 0;
	}
	return b->state;
}

enum breaker_admit breaker_admit(struct breaker *b, uint64_t now_us)
{
	if (!b->policy.enabled)
		return BREAKER_ALLOW;
	switch (breaker_state(b, now_us)) {
	case BREAKER_CLOSED:
		return BREAKER_ALLOW;
	case BREAKER_HALF_OPEN:
		if (b->probes < b->policy.half_open_probes) {
			b->probes++;
			return BREAKER_ALLOW_PROBE;
		}
		return BREAKER_REJECT;
	case BREAKER_OPEN:
	default:
		return BREAKER_REJECT;
	}
}

void breaker_record(struct breaker *b, uint64_t now_us, int failure, int probe)
{
	uint64_t epoch;
	uint32_t requests = 0, failures = 0;
	unsigned i;
	int reused;

	if (!b->policy.enabled)
		return;
	switch (breaker_state(b, now_us)) {
	case BREAKER_HALF_OPEN:
		/* Only a probe's answer decides; stragglers from before do not. */
		if (!probe)
			return;
		if (failure) {
			trip(b, now_us);
		} else {
			b->state = BREAKER_CLOSED;
			b->probes = 0;
			clear_window(b);
		}
		return;
	case BREAKER_OPEN:
		return;
	case BREAKER_CLOSED:
	default:
		break;
	}
	i = window_slot(&b->window, now_us, &reused);
	if (reused) {
		b->requests[i] = 0;
		b->failures[i] = 0;
	}
	b->requests[i]++;
	b->failures[i] += failure ? 1 : 0;
	if (!failure)
		return;
	epoch = window_epoch(&b->window, now_us);
	for (unsigned j = 0; j < BREAKER_SLOTS; j++) {
		if (window_live(&b->window, j, epoch)) {
			requests += b->requests[j];
			failures += b->failures[j];
		}
	}
	/* The tolerance keeps 7 of 100 at a ratio of 0.07 from missing by 1e-15. */
	if (requests >= b->policy.min_requests &&
	    (double)failures + 1e-9 >= b->policy.failure_ratio * (double)requests)
		trip(b, now_us);
}

void breaker_probe_abandoned(struct breaker *b)
{
	if (b->state == BREAKER_HALF_OPEN && b->probes > 0)
		b->probes--;
}

void breaker_force_open(struct breaker *b, uint64_t now_us, uint64_t until_us)
{
	if (!b->policy.enabled || until_us <= now_us)
		return;
	if (breaker_state(b, now_us) == BREAKER_OPEN && b->open_until_us >= until_us)
		return;
	open_until(b, until_us);
}

void breaker_force_close(struct breaker *b)
{
	b->state = BREAKER_CLOSED;
	b->probes = 0;
	clear_window(b);
}

uint64_t breaker_retry_after_ms(struct breaker *b, uint64_t now_us)
{
	if (breaker_state(b, now_us) != BREAKER_OPEN)
		return 0;
	/* In whole ms of the clock, as the answer's Retry-After counts them;
	 * at least 1, since 0 would read as "not open" (and become a default)
	 * in the last fraction of a millisecond. */
	{
		uint64_t ms = b->open_until_us / 1000 - now_us / 1000;

		return ms ? ms : 1;
	}
}

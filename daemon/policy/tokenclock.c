/* Token times: a refresh point and an expiry fixed when the token arrives,
 * compared with the "now" the caller passes; the fetch's backoff is the
 * daemon's one backoff (retry_backoff_wait) with a floor. */
#include "tokenclock.h"

#define US_PER_S 1000000ULL

void tokenclock_start(struct tokenclock *c, uint64_t requested_us, uint64_t obtained_us,
		      uint32_t lifetime_s, uint64_t refresh_before_us)
{
	uint64_t life = (uint64_t)(lifetime_s ? lifetime_s : 1) * US_PER_S;
	uint64_t lead = life / 100 * (100 - TOKENCLOCK_REFRESH_PERCENT);

	if (refresh_before_us < lead)
		lead = refresh_before_us;
	c->requested_us = requested_us;
	c->obtained_us = obtained_us < requested_us ? requested_us : obtained_us;
	c->expires_us = requested_us > UINT64_MAX - life ? UINT64_MAX : requested_us + life;
	c->refresh_us = c->expires_us - lead;
}

int tokenclock_refresh_due(const struct tokenclock *c, uint64_t now_us)
{
	return now_us >= c->refresh_us;
}

int tokenclock_expired(const struct tokenclock *c, uint64_t now_us)
{
	return now_us >= c->expires_us;
}

int tokenclock_401_refreshes(const struct tokenclock *c, uint64_t attempt_us)
{
	return attempt_us > c->obtained_us &&
	       attempt_us - c->obtained_us > TOKENCLOCK_401_MIN_AGE_US;
}

uint64_t tokenclock_age_us(const struct tokenclock *c, uint64_t now_us)
{
	return now_us > c->obtained_us ? now_us - c->obtained_us : 0;
}

uint64_t tokenclock_remaining_us(const struct tokenclock *c, uint64_t now_us)
{
	return now_us < c->expires_us ? c->expires_us - now_us : 0;
}

uint32_t tokenclock_retry_wait_ms(const struct retry_policy *p, uint32_t failures, uint32_t prev_ms,
				  struct rng *rng)
{
	const struct retry_backoff b = {
		.base_ms = p->backoff_base_ms,
		.max_ms = p->backoff_max_ms,
		.min_ms = TOKENCLOCK_RETRY_MIN_MS,
		.jitter = p->jitter,
	};

	return retry_backoff_wait(&b, failures, prev_ms, rng);
}

/* The life of an access token over injected time (µs, one monotonic
 * clock): when to refresh it in the background, when it has expired,
 * whether an upstream 401 justifies a refresh, and the wait before the
 * token endpoint is tried again after a failure (SPEC 4.14). Pure. */
#ifndef BRACED_TOKENCLOCK_H
#define BRACED_TOKENCLOCK_H

#include <stdint.h>

#include "retry.h"
#include "rng.h"

/* The background refresh starts at this share of the lifetime at the
 * latest, when refresh_before would leave less of it (SPEC 4.14). */
#define TOKENCLOCK_REFRESH_PERCENT 80
/* A 401 to an attempt made with a token obtained more than this before it
 * justifies a refresh (SPEC 4.14). */
#define TOKENCLOCK_401_MIN_AGE_US 1000000ULL
/* The shortest wait before the token endpoint is asked again after a
 * failure, whatever the backoff (a base of 0 or a full jitter drawing 0
 * would otherwise hammer it). */
#define TOKENCLOCK_RETRY_MIN_MS 100

/* When a token was asked for and arrived, and the times derived from its
 * lifetime. Embedded by the token's holder. */
struct tokenclock {
	uint64_t requested_us; /* the token request was sent: its lifetime counts from here */
	uint64_t obtained_us;  /* its answer arrived: its age counts from here */
	uint64_t refresh_us;   /* the background refresh is due from here */
	uint64_t expires_us;   /* not used from here on */
};

/* Starts the clock of a token asked for at requested_us, whose answer
 * arrived at obtained_us (not before requested_us; raised to it if so),
 * living lifetime_s seconds (>= 1; 0 reads as 1) and to be refreshed
 * refresh_before_us before it expires. The lifetime counts from the
 * request, not the answer: the server started it no earlier, and the
 * token must not be used past the server's idea of its expiry.
 * The refresh is due at expires - min(refresh_before, 20% of the lifetime):
 * refresh_before before expiry, or at 80% of a lifetime too short for it
 * (shorter than 5 × refresh_before). A refresh_before of 0 refreshes when
 * the token expires. */
void tokenclock_start(struct tokenclock *c, uint64_t requested_us, uint64_t obtained_us,
		      uint32_t lifetime_s, uint64_t refresh_before_us);

/* 1 when the background refresh is due at now_us (now >= refresh_us). */
int tokenclock_refresh_due(const struct tokenclock *c, uint64_t now_us);

/* 1 when the token must not be used at now_us (now >= expires_us). */
int tokenclock_expired(const struct tokenclock *c, uint64_t now_us);

/* 1 when a 401 to an attempt started at attempt_us with this token
 * justifies one refresh: the token had been obtained more than
 * TOKENCLOCK_401_MIN_AGE_US before the attempt. A token younger than that
 * was just issued; a 401 to it says the credentials or the upstream are
 * wrong, and asking again would only repeat the request to the token
 * endpoint. */
int tokenclock_401_refreshes(const struct tokenclock *c, uint64_t attempt_us);

/* The token's age at now_us (0 before obtained_us) and what remains of its
 * life (0 once expired): /status and the remaining-lifetime gauge. */
uint64_t tokenclock_age_us(const struct tokenclock *c, uint64_t now_us);
uint64_t tokenclock_remaining_us(const struct tokenclock *c, uint64_t now_us);

/* The wait before the token endpoint is asked again after failures
 * consecutive failed fetches (>= 1): the profile's backoff p (base, max,
 * jitter, as retry_backoff()), never below TOKENCLOCK_RETRY_MIN_MS.
 * prev_ms is the previous wait (0 after the first failure), for
 * decorrelated jitter. */
uint32_t tokenclock_retry_wait_ms(const struct retry_policy *p, uint32_t failures, uint32_t prev_ms,
				  struct rng *rng);

#endif

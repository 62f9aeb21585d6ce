/* A fast seeded random source (xoshiro256**) and UUIDv4 text. State is
 * explicit so tests can seed it; the daemon seeds one from getrandom(2). */
#ifndef BRACED_RNG_H
#define BRACED_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
};

#define RNG_UUID_LEN 36

/* Seeds from the kernel. Returns 0 or a negative errno. */
int rng_seed_os(struct rng *r);
/* Seeds deterministically from one number (tests). */
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform integer in [0, n), without modulo bias; n = 0 gives 0. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Writes a random (version 4) UUID as 36 lowercase characters plus NUL. */
void rng_uuid4(struct rng *r, char out[RNG_UUID_LEN + 1]);

#endif

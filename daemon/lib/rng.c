/* xoshiro256** (Blackman and Vigna) with Lemire's unbiased bounded draw:
 * a few nanoseconds a call, so ids and jitter cost nothing per request. */
#include "rng.h"
#include "hash.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* splitmix64 spreads one seed over the four state words. */
static uint64_t splitmix(uint64_t *x)
{
	return hash_mix64(*x += 0x9e3779b97f4a7c15ULL);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

int rng_seed_os(struct rng *r)
{
	uint64_t seed[4];
	size_t got = 0;

	while (got < sizeof(seed)) {
		ssize_t n = getrandom((char *)seed + got, sizeof(seed) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	memcpy(r->s, seed, sizeof(seed));
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
		r->s[0] = 1; /* the all-zero state is a fixed point */
	return 0;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	__uint128_t m;
	uint64_t l;

	if (n == 0)
		return 0;
	m = (__uint128_t)rng_next(r) * n;
	l = (uint64_t)m;
	if (l < n) {
		uint64_t t = -n % n;

		while (l < t) {
			m = (__uint128_t)rng_next(r) * n;
			l = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

void rng_uuid4(struct rng *r, char out[RNG_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	uint64_t a = rng_next(r), c = rng_next(r);
	int o = 0;

	memcpy(b, &a, 8);
	memcpy(b + 8, &c, 8);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

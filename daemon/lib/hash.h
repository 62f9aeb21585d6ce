/* Non-cryptographic hashing: FNV-1a 64 over bytes, and the splitmix64
 * finalizer that spreads the bits of one word. For hash tables and stable
 * identifiers; never for anything an attacker must not forge. */
#ifndef BRACED_HASH_H
#define BRACED_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a 64 of the len bytes at p (borrowed); "" hashes to the offset
 * basis 0xcbf29ce484222325. Stable across builds: fleet identifiers that
 * other instances compare are made from it. */
uint64_t hash_fnv1a64(const void *p, size_t len);

/* splitmix64's finalizer: a bijection on 64-bit words with full avalanche.
 * Inline because the schema validator calls it per value. */
static inline uint64_t hash_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

#endif

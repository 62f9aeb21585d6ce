/* Hashing for tables and identifiers: FNV-1a 64 over bytes, the splitmix64
 * finalizer that spreads the bits of one word, and keyed SipHash-2-4 for
 * tables whose keys a client chooses. None of them for anything an
 * attacker must not forge (no MACs). */
#ifndef BRACED_HASH_H
#define BRACED_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a 64 of the len bytes at p (borrowed); "" hashes to the offset
 * basis 0xcbf29ce484222325. Stable across builds: fleet identifiers that
 * other instances compare are made from it. */
uint64_t hash_fnv1a64(const void *p, size_t len);

/* SipHash-2-4 (Aumasson and Bernstein, 2012) of the len bytes at p
 * (borrowed) under the 128-bit key k0, k1 (k0 from the key's first eight
 * bytes, little-endian). For a table whose keys come from clients: without
 * the key, colliding inputs cannot be chosen, which FNV-1a's cannot
 * promise even with a secret basis (its low n bits depend on the low n
 * bits of the input bytes only). */
uint64_t hash_siphash24(uint64_t k0, uint64_t k1, const void *p, size_t len);

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

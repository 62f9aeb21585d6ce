/* FNV-1a 64: the one byte-string hash of the daemon (schema value maps,
 * fleet profile identifiers). */
#include "hash.h"

uint64_t hash_fnv1a64(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Durations and sizes as written in the configuration: "250ms", "2s", "1m",
 * "16KiB", "1MiB". Pure parsing, no I/O. */
#ifndef BRACED_UNITS_H
#define BRACED_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Longest duration the configuration accepts: one day. */
#define UNITS_MAX_DURATION_MS (24ULL * 3600 * 1000)
/* Largest size the configuration accepts: 1 GiB. */
#define UNITS_MAX_SIZE (1ULL << 30)

/* Parse a duration ("0", "250ms", "2s", "1m", "1h", "1.5s") into
 * milliseconds. Returns 0 and sets *ret_ms, or -EINVAL (not a duration) or
 * -ERANGE (over UNITS_MAX_DURATION_MS); *ret_ms is untouched on failure. */
int units_parse_duration(const char *s, uint64_t *ret_ms);

/* Parse a size (bytes "1024", or "16KiB", "1MiB", "1GiB", "512B") into bytes.
 * Returns 0, -EINVAL or -ERANGE (over UNITS_MAX_SIZE). */
int units_parse_size(const char *s, uint64_t *ret_bytes);

/* Most attempts a rate may name per period. */
#define UNITS_MAX_RATE_COUNT 1000000000ULL

/* Parse a rate: "0" (off: count 0), or COUNT/PERIOD with COUNT from 1 to
 * UNITS_MAX_RATE_COUNT and PERIOD one of s, m, h, d or a duration over 0
 * ("100/s", "6000/m", "50000/h", "100/10s"). Returns 0 with *ret_count and
 * *ret_per_ms, -EINVAL (not a rate) or -ERANGE (COUNT too large). */
int units_parse_rate(const char *s, uint64_t *ret_count, uint64_t *ret_per_ms);

#endif

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

#endif

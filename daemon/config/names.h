/* The words the configuration file uses for each enum it reads, in the
 * enum's order (or, for bit sets, bit by bit from the lowest): the one
 * table the loader parses with and the admin API writes back in /config.
 * Each list ends with NULL. */
#ifndef BRACED_NAMES_H
#define BRACED_NAMES_H

extern const char *const jitter_names[];            /* enum jitter (retry.h) */
extern const char *const unsafe_retry_names[];      /* enum unsafe_retry (retry.h) */
extern const char *const transport_kind_names[];    /* enum transport_kind bits (retry.h) */
extern const char *const upstream_errors_names[];   /* enum upstream_errors (policy.h) */
extern const char *const schema_formats_names[];    /* enum schema_formats (policy.h) */
extern const char *const trace_mode_names[];        /* enum trace_mode (trace.h) */
extern const char *const log_format_names[];        /* enum log_format (log.h) */
extern const char *const log_level_names[];         /* enum log_level (log.h) */
extern const char *const schema_mode_names[];       /* enum schema_mode (config.h) */
extern const char *const fleet_share_names[];       /* enum fleet_share bits (config.h) */
extern const char *const match_case_names[];        /* profile.fold_case: 0 or 1 */
extern const char *const endpoint_balance_names[];  /* enum endpoint_balance (endpoints.h) */
extern const char *const rate_share_names[];        /* enum rate_share (policy.h) */
extern const char *const ratelimit_headers_names[]; /* enum ratelimit_headers (policy.h) */

#endif

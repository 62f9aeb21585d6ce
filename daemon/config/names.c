/* The enum name tables of names.h. The order is the enum's: a new value
 * goes in both places at once. */
#include "names.h"

#include <stddef.h>

const char *const jitter_names[] = { "full", "equal", "decorrelated", "none", NULL };
const char *const unsafe_retry_names[] = { "with_key", "never", "always", NULL };
const char *const transport_kind_names[] = { "connect", "reset", "timeout", NULL };
const char *const upstream_errors_names[] = { "envelope", "passthrough", NULL };
const char *const schema_formats_names[] = { "assert", "annotate", NULL };
const char *const trace_mode_names[] = { "off", "propagate", "generate", NULL };
const char *const log_format_names[] = { "json", "text", NULL };
const char *const log_level_names[] = { "error", "warn", "info", "debug", NULL };
const char *const schema_mode_names[] = { "off", "report", "enforce", NULL };
const char *const fleet_share_names[] = { "cooldown", "breaker", "budget", "ejections", NULL };
const char *const match_case_names[] = { "sensitive", "insensitive", NULL };
const char *const endpoint_balance_names[] = { "peak_ewma", "round_robin", NULL };
const char *const rate_share_names[] = { "local", "fleet", NULL };
const char *const ratelimit_headers_names[] = { "pace", "ignore", NULL };

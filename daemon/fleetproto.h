/* The fleet protocol (SPEC 4.9), without any I/O: how a profile is named
 * across instances, the Redis keys and channel, the messages instances
 * publish (encoded here, and decoded strictly: anything read from Redis is
 * hostile input), the fleet's per-second budget buckets (the formula is
 * budget.c's budget_allows), and the reconnect backoff. fleet.c does the talking. */
#ifndef BRACED_FLEETPROTO_H
#define BRACED_FLEETPROTO_H

#include <stddef.h>
#include <stdint.h>

/* A profile's fleet identity: "NAME:HASH" with HASH the 16 hex digits of
 * FNV-1a 64 over the upstream URL. NAME is at most 63 bytes. */
#define FLEET_ID_MAX 84
/* Longest key: prefix, braces, identity and the longest suffix. */
#define FLEET_KEY_MAX 192
/* Longest message accepted from the channel. */
#define FLEET_MSG_MAX 256
/* Most per-second buckets a budget window spans in Redis: a longer window
 * is summed over its last FLEET_MAX_BUCKETS seconds. */
#define FLEET_MAX_BUCKETS 600
/* Seconds a bucket outlives its window in Redis. */
#define FLEET_BUCKET_SLACK_S 5

/* Operations counted in braced_fleet_errors_total{op}. */
enum fleet_op {
	FLEET_OP_CONNECT,   /* connecting, AUTH, SELECT, or the connection dropped */
	FLEET_OP_TIMEOUT,   /* a call slower than fleet.timeout, abandoned */
	FLEET_OP_COOLDOWN,  /* extending a cool-down window */
	FLEET_OP_BREAKER,   /* publishing a breaker change */
	FLEET_OP_PROBE,     /* the half-open probe lock */
	FLEET_OP_BUDGET,    /* the budget sync */
	FLEET_OP_RESYNC,    /* reading the windows after (re)connecting */
	FLEET_OP_SUBSCRIBE, /* the subscriber connection */
	FLEET_OP_MESSAGE,   /* a message on the channel that does not parse */
	FLEET_OP_OVERFLOW,  /* a call dropped: too many calls waiting */
	FLEET_OP__COUNT
};

/* The label of op ("connect"), for metrics. */
const char *fleet_op_name(enum fleet_op op);

/* FNV-1a 64 of the len bytes at s. */
uint64_t fleet_hash(const char *s, size_t len);

/* Writes the identity of profile name with upstream url into out (at least
 * FLEET_ID_MAX bytes). Returns 0, or -EINVAL for a name longer than 63
 * bytes. */
int fleet_profile_id(char *out, size_t outlen, const char *name, const char *url);

/* Writes PREFIX{ID}:SUFFIX into out. Returns 0 or -ENOSPC. */
int fleet_key(char *out, size_t outlen, const char *prefix, const char *id, const char *suffix);

/* Writes PREFIXevents, the channel every instance of a prefix shares. */
int fleet_channel(char *out, size_t outlen, const char *prefix);

enum fleet_msg_kind {
	FLEET_MSG_COOLDOWN, /* the profile cools down until until_ms */
	FLEET_MSG_OPEN,     /* the breaker is open until until_ms */
	FLEET_MSG_CLOSE,    /* a probe succeeded: the breaker is closed */
	FLEET_MSG__COUNT
};

struct fleet_msg {
	enum fleet_msg_kind kind;
	uint64_t instance;     /* the sender, so that it can ignore its own */
	char id[FLEET_ID_MAX]; /* the profile's identity */
	uint64_t until_ms;     /* wall-clock ms since the epoch; 0 for close */
};

/* Encodes m as "braced1 KIND INSTANCE ID UNTIL". Returns the length or
 * -ENOSPC. */
int fleet_msg_encode(const struct fleet_msg *m, char *out, size_t outlen);

/* Decodes len bytes at s (not NUL-terminated) strictly: the exact form
 * fleet_msg_encode writes and nothing else. Returns 0 or -EINVAL. */
int fleet_msg_decode(const char *s, size_t len, struct fleet_msg *ret);

/* Parses len bytes of decimal digits (no sign, no spaces, at most 19
 * digits) into *ret. Returns 0 or -EINVAL. */
int fleet_parse_uint(const char *s, size_t len, uint64_t *ret);

/* The buckets a budget window of window_ms covers at wall-clock now_ms:
 * *ret_first is the first second, *ret_count the number of seconds (1 to
 * FLEET_MAX_BUCKETS), ending with the current second. */
void fleet_buckets(uint64_t now_ms, uint32_t window_ms, uint64_t *ret_first, uint32_t *ret_count);

/* The wait before reconnect attempt n (0 first): full jitter over an
 * exponential from 100 ms to 5 s; r is uniform in [0, 1). */
uint32_t fleet_backoff_ms(unsigned n, double r);

/* Converts a wall-clock instant to the monotonic clock given both clocks
 * now (all ms); instants already past map to mono_now. */
uint64_t fleet_wall_to_mono(uint64_t wall_ms, uint64_t wall_now, uint64_t mono_now);

#endif

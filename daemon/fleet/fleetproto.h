/* The fleet protocol (SPEC 4.9), without any I/O: how a profile is named
 * across instances, the Redis keys and channel, the messages instances
 * publish (encoded here, and decoded strictly: anything read from Redis is
 * hostile input), their signatures (fleet.secret: HMAC-SHA256 over the
 * content, the profile identity and a timestamp), the fleet's per-second
 * budget buckets (the formula is budget.c's budget_allows), and the
 * reconnect backoff. fleet.c does the talking. */
#ifndef BRACED_FLEETPROTO_H
#define BRACED_FLEETPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "endpoints.h"

struct rng;

/* A profile's fleet identity: "NAME:HASH" with HASH the 16 hex digits of
 * FNV-1a 64 over the upstream URL. NAME is at most 63 bytes. */
#define FLEET_ID_MAX 84
/* Longest key: prefix (CONFIG_FLEET_PREFIX_MAX), braces, identity and the
 * longest suffix ("eject:" and an endpoint). */
#define FLEET_KEY_MAX 224
/* Longest message accepted from the channel: a signed eject message of the
 * longest identity and endpoint fits (fleetproto.c checks). */
#define FLEET_MSG_MAX 288
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
	FLEET_OP_EJECT,     /* extending an endpoint's ejection */
	FLEET_OP_RATE,      /* leasing slots of a shared rate limit */
	FLEET_OP__COUNT
};

/* Why a message or a value read from Redis was ignored under fleet.secret,
 * counted in braced_fleet_rejected_total{reason}. */
enum fleet_reject {
	FLEET_REJECT_UNSIGNED,      /* no signature at all */
	FLEET_REJECT_BAD_SIGNATURE, /* a signature that does not verify */
	FLEET_REJECT_STALE,         /* signed outside the accepted time window */
	FLEET_REJECT__COUNT
};

/* The fleet's counters: kept by fleet.c, rendered by the metrics. */
struct fleet_counters {
	int enabled;                            /* fleet.redis is set */
	int up;                                 /* both connections to Redis work */
	uint64_t errors[FLEET_OP__COUNT];       /* by enum fleet_op */
	uint64_t rejected[FLEET_REJECT__COUNT]; /* by enum fleet_reject */
};

/* The label of why ("bad_signature"), for metrics. */
const char *fleet_reject_name(enum fleet_reject why);

/* The label of op ("connect"), for metrics. */
const char *fleet_op_name(enum fleet_op op);

/* Writes the identity of profile name with upstream url into out (at least
 * FLEET_ID_MAX bytes). Returns 0, or -EINVAL for a name longer than 63
 * bytes. */
int fleet_profile_id(char *out, size_t outlen, const char *name, const char *url);

/* Writes PREFIX{ID}:SUFFIX into out. Returns 0 or -ENOSPC. */
int fleet_key(char *out, size_t outlen, const char *prefix, const char *id, const char *suffix);

/* Writes PREFIXevents, the channel every instance of a prefix shares. */
int fleet_channel(char *out, size_t outlen, const char *prefix);

/* 1 when the len bytes at s are an endpoint as instances share it: 1 to
 * ENDPOINT_NAME_MAX-1 bytes of "ADDR:PORT" text as braced writes it
 * (digits, lowercase hex letters, '.', ':', '[', ']'); else 0. */
int fleet_endpoint_valid(const char *s, size_t len);

/* Writes PREFIX{ID}:eject:ENDPOINT, the key of one endpoint's ejection,
 * into out. Returns 0, -EINVAL for an endpoint fleet_endpoint_valid()
 * refuses, or -ENOSPC. */
int fleet_eject_key(char *out, size_t outlen, const char *prefix, const char *id,
		    const char *endpoint);

enum fleet_msg_kind {
	FLEET_MSG_COOLDOWN, /* the profile cools down until until_ms */
	FLEET_MSG_OPEN,     /* the breaker is open until until_ms */
	FLEET_MSG_CLOSE,    /* a probe succeeded: the breaker is closed */
	FLEET_MSG_EJECT,    /* endpoint `endpoint` is ejected until until_ms */
	FLEET_MSG__COUNT
};

struct fleet_msg {
	enum fleet_msg_kind kind;
	uint64_t instance;                /* the sender, so that it can ignore its own */
	char id[FLEET_ID_MAX];            /* the profile's identity */
	uint64_t until_ms;                /* wall-clock ms since the epoch; 0 for close */
	char endpoint[ENDPOINT_NAME_MAX]; /* eject: "ADDR:PORT"; "" for the others */
};

/* Encodes m as "braced1 KIND INSTANCE ID UNTIL", followed by " ENDPOINT"
 * for eject. Returns the length, -ENOSPC, or -EINVAL (an unknown kind, an
 * eject whose endpoint fleet_endpoint_valid() refuses). */
int fleet_msg_encode(const struct fleet_msg *m, char *out, size_t outlen);

/* Decodes len bytes at s (not NUL-terminated) strictly: the exact form
 * fleet_msg_encode writes and nothing else. Returns 0 or -EINVAL. */
int fleet_msg_decode(const char *s, size_t len, struct fleet_msg *ret);

/* ---- signatures (fleet.secret) ----
 * A signed message or value is its unsigned form followed by " TS MAC":
 * TS the signer's wall clock in ms since the epoch, MAC 64 lowercase hex
 * digits of HMAC-SHA256(secret, "braced-fleet1\n" ID "\n" TS "\n" CONTENT),
 * ID the profile identity (fleet_profile_id) the message or key is about. */

/* Hex digits of a MAC. */
#define FLEET_MAC_HEX 64
/* What a signature adds to its content at most: " TS MAC". */
#define FLEET_SEAL_MAX (1 + 20 + 1 + FLEET_MAC_HEX)
/* Longest content signed (a message or a stored value, unsigned). */
#define FLEET_CONTENT_MAX (FLEET_MSG_MAX - FLEET_SEAL_MAX)
/* Longest fleet.secret: more adds nothing to HMAC-SHA256 but hashing. */
#define FLEET_SECRET_MAX 1024
/* How far a signer's clock may run ahead of the reader's. */
#define FLEET_SKEW_MS 1000
/* The shortest window a signed message is accepted in. */
#define FLEET_MIN_AGE_MS 2000
/* The window in sync intervals. */
#define FLEET_AGE_INTERVALS 5

/* How old a signed message may be when read: FLEET_AGE_INTERVALS ×
 * sync_interval_ms, at least FLEET_MIN_AGE_MS. */
uint64_t fleet_max_age_ms(uint32_t sync_interval_ms);

/* Appends " TS MAC" to the len bytes of content at buf (size bytes in
 * all), signing them for identity id with secret (NUL-terminated,
 * non-empty) at wall-clock ts_ms. Returns the new length, or -ENOSPC
 * (buf untouched past len) or -EINVAL (content longer than
 * FLEET_CONTENT_MAX or no secret). */
int fleet_seal(const char *secret, const char *id, uint64_t ts_ms, char *buf, size_t len,
	       size_t size);

/* Checks the signature of the len bytes at s (hostile input) for identity
 * id at wall-clock now_ms: signed by secret, at most max_age_ms old and at
 * most FLEET_SKEW_MS ahead. Returns 0 with *ret_len the length of the
 * content before the signature, or -EBADMSG with *ret_why set. */
int fleet_unseal(const char *secret, const char *id, const char *s, size_t len, uint64_t now_ms,
		 uint64_t max_age_ms, size_t *ret_len, enum fleet_reject *ret_why);

/* A signed message (fleet_msg_encode, then fleet_seal with m->id). Returns
 * the length, -ENOSPC or -EINVAL. */
int fleet_msg_encode_signed(const struct fleet_msg *m, const char *secret, uint64_t ts_ms,
			    char *out, size_t outlen);

/* Decodes a signed message: its content must decode (else -EINVAL) and
 * its signature verify for the identity it names within max_age_ms of
 * now_ms (else -EBADMSG with *ret_why set). Returns 0 and fills *ret. */
int fleet_msg_decode_signed(const char *s, size_t len, const char *secret, uint64_t now_ms,
			    uint64_t max_age_ms, struct fleet_msg *ret, enum fleet_reject *ret_why);

/* What a key holds under fleet.secret, signed: "cooldown UNTIL", "breaker
 * UNTIL" (decimal) or "probe INSTANCE" (16 hex digits); an ejection's key
 * holds "eject UNTIL ENDPOINT" (fleet_eject_value_*). */
enum fleet_value_kind {
	FLEET_VALUE_COOLDOWN, /* the cool-down key: until, wall-clock ms */
	FLEET_VALUE_BREAKER,  /* the breaker key: open until, wall-clock ms */
	FLEET_VALUE_PROBE,    /* the probe lock: the holder's instance */
	FLEET_VALUE__COUNT
};

/* Writes the signed value kind v for identity id into out. Returns the
 * length, -ENOSPC or -EINVAL. */
int fleet_value_encode_signed(enum fleet_value_kind kind, uint64_t v, const char *secret,
			      const char *id, uint64_t ts_ms, char *out, size_t outlen);

/* Reads a value of kind for identity id (hostile input): the signature
 * must verify within max_age_ms of now_ms, and the content be of kind
 * (another kind, however signed, is a bad signature). Returns 0 and *ret_v,
 * or -EBADMSG with *ret_why set. */
int fleet_value_decode_signed(enum fleet_value_kind kind, const char *s, size_t len,
			      const char *secret, const char *id, uint64_t now_ms,
			      uint64_t max_age_ms, uint64_t *ret_v, enum fleet_reject *ret_why);

/* Writes the signed value of an ejection of endpoint until until_ms
 * (wall clock) for identity id into out: "eject UNTIL ENDPOINT", sealed.
 * Returns the length, -ENOSPC or -EINVAL (an endpoint
 * fleet_endpoint_valid() refuses). */
int fleet_eject_value_encode_signed(uint64_t until_ms, const char *endpoint, const char *secret,
				    const char *id, uint64_t ts_ms, char *out, size_t outlen);

/* Reads the value of the ejection key of endpoint for identity id
 * (hostile input): the signature must verify within max_age_ms of now_ms
 * and the content name this endpoint (another endpoint's or another kind,
 * however signed, is a bad signature). Returns 0 and *ret_until_ms, or
 * -EBADMSG with *ret_why set. */
int fleet_eject_value_decode_signed(const char *s, size_t len, const char *secret, const char *id,
				    const char *endpoint, uint64_t now_ms, uint64_t max_age_ms,
				    uint64_t *ret_until_ms, enum fleet_reject *ret_why);

/* Parses len bytes of decimal digits (no sign, no spaces, at most 19
 * digits) into *ret. Returns 0 or -EINVAL. */
int fleet_parse_uint(const char *s, size_t len, uint64_t *ret);

/* The buckets a budget window of window_ms covers at wall-clock now_ms:
 * *ret_first is the first second, *ret_count the number of seconds (1 to
 * FLEET_MAX_BUCKETS), ending with the current second. */
void fleet_buckets(uint64_t now_ms, uint32_t window_ms, uint64_t *ret_first, uint32_t *ret_count);

/* The wait before reconnect attempt n (0 first): full jitter over an
 * exponential from 100 ms to 5 s, at least 10 ms, drawn from rng. */
uint32_t fleet_backoff_ms(unsigned n, struct rng *rng);

/* Converts a wall-clock instant to the monotonic clock given both clocks
 * now (all ms); instants already past map to mono_now. */
uint64_t fleet_wall_to_mono(uint64_t wall_ms, uint64_t wall_now, uint64_t mono_now);

/* The Lua scripts fleet.c EVALs, on the keys above; fleetproto.c says what
 * each takes, does and returns. */
extern const char fleet_script_extend[];
extern const char fleet_script_extend_signed[];
extern const char fleet_script_probe_signed[];
extern const char fleet_script_replace[];
extern const char fleet_script_budget[];
/* The slice of a shared rate limit one instance keeps (SPEC 4.12): KEYS[1]
 * holds each instance's last demand (a hash, instance -> "DEMAND:MS"),
 * KEYS[2] the instances seen (a sorted set, the last minute's kept). ARGV:
 * now (wall ms), instance, its demand and the rate (both attempts per
 * 1000 s), how old a demand may be (ms). The rate is split max-min fairly
 * over the demands not older than that (each gets its demand, or an equal
 * part of what is left), and what nobody asked for evenly; a demand counts
 * as at least a quarter of an equal part, so that an instance quiet for one
 * interval is not left without a slice when its next request comes. Returns
 * {this instance's slice, instances seen, instances with a demand}. */
extern const char fleet_script_rate[];

#endif

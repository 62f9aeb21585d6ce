/* The quota an upstream announces in its answer's headers (SPEC 4.12): the
 * IETF draft's RateLimit and RateLimit-Policy structured fields, the older
 * RateLimit-Limit/-Remaining/-Reset, and X-RateLimit-Limit/-Remaining/-Reset,
 * read strictly into one quota: how many attempts remain, for how long.
 * Pure: the caller passes the answer's fields and "now" in. */
#ifndef BRACED_RATELIMIT_H
#define BRACED_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Most digits in a number (RFC 8941's Integer): more is malformed. */
#define RATELIMIT_DIGITS_MAX 15
/* A reset farther than this many seconds counts as this far (one day). */
#define RATELIMIT_RESET_MAX_S 86400
/* An X-RateLimit-Reset above this is an epoch time in seconds. */
#define RATELIMIT_EPOCH_MIN 1000000000
/* Longest field line read: a longer one is malformed. */
#define RATELIMIT_VALUE_MAX 1024
/* Most list members (policies) in all the RateLimit, or all the
 * RateLimit-Policy, lines of one answer: more is malformed. */
#define RATELIMIT_ITEMS_MAX 16

enum ratelimit_family {
	RATELIMIT_IETF = 0, /* RateLimit (r, t) with RateLimit-Policy (q, w) */
	RATELIMIT_DRAFT,    /* RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset */
	RATELIMIT_X,        /* X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset */
};
#define RATELIMIT_FAMILY_BIT(f) (1u << (f))

/* One header field as the upstream sent it: the name in any case, the value
 * with or without surrounding spaces; neither NUL-terminated. Borrowed. */
struct ratelimit_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* An announced quota: at most remaining more attempts before reset_s. */
struct ratelimit_quota {
	uint64_t remaining;
	uint64_t reset_s;  /* seconds from now, at most RATELIMIT_RESET_MAX_S; 0: resets now */
	int reset_clamped; /* the upstream named a reset beyond RATELIMIT_RESET_MAX_S */
	int has_limit;     /* limit is the quota of the window (optional in every family) */
	uint64_t limit;
	uint64_t window_s; /* the window's length when announced (RateLimit-Policy w), else 0 */
	enum ratelimit_family family; /* the family the quota was taken from */
	unsigned families;            /* RATELIMIT_FAMILY_BIT of each family that gave a quota */
};

/* Reads the quota of an answer from its n fields (others are skipped).
 * Each family is read on its own and ignored whole when any of its fields
 * is malformed: a number that is not 1-15 digits (a sign, a fraction, a
 * space inside, empty), a singleton field repeated with another value, a
 * structured-field syntax error, a RateLimit member without an Integer r or
 * with a non-Integer t, a RateLimit-Policy member without an Integer q, a
 * line longer than RATELIMIT_VALUE_MAX, more than RATELIMIT_ITEMS_MAX members.
 * A family needs a remaining and a reset to give a quota: the older families
 * their -Remaining and -Reset fields (-Limit is optional and may carry the
 * older draft's policy list after its number); a RateLimit member its r and
 * its t, or the w of the RateLimit-Policy member of the same name. Several
 * RateLimit members (policies), or several families: the most conservative
 * quota wins, the fewest remaining per second (a reset of 0 constrains
 * nothing), on a tie the longer reset; families says which gave one.
 * X-RateLimit-Reset above RATELIMIT_EPOCH_MIN is an epoch time, read against
 * now_epoch (seconds since the epoch; a time past is a reset of 0); every
 * other reset is seconds from now. Unknown parameters are skipped.
 * Returns 0 and *ret, or -ENOENT (no quota; *ret untouched). */
int ratelimit_read(const struct ratelimit_field *fields, size_t n, int64_t now_epoch,
		   struct ratelimit_quota *ret);

#endif

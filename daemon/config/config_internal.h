/* Private to config/: one load in progress, its error report, and the key
 * table its readers walk. A key table names each key of a mapping with the
 * kind of value it takes, the limits of that value and where in the struct
 * being filled it goes; keys_apply_map() walks one for any mapping. */
#ifndef BRACED_CONFIG_INTERNAL_H
#define BRACED_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ytree.h"

/* One load in progress: the file's path (in messages and to find files
 * named next to it), the errors found so far, and the config being built. */
struct loader {
	const char *path;
	struct config_errors *errs;
	struct config *cfg;
};

/* Records "PATH:LINE:COL: message" at n (line 1, column 1 when n is NULL);
 * beyond CONFIG_MAX_ERRORS only counted. */
void err_at(struct loader *L, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records "PATH:LINE:COL: warning: msg"; beyond CONFIG_MAX_WARNINGS, dropped. */
void warn_at(struct loader *L, const struct ynode *n, const char *msg);
/* Orders the errors by position (stable), so they read top to bottom. */
void config_errors_sort(struct config_errors *e);

/* 0 when n is of kind (a null is no scalar), else reports "WHAT must be
 * ..." and returns -EINVAL. */
int expect_kind(struct loader *L, const struct ynode *n, enum ynode_kind kind, const char *what);

/* A scalar with ${NAME} and ${file:PATH} expanded, into *ret (a string it
 * held is freed; the new one is the caller's); *ret_secret (may be NULL)
 * says whether anything was substituted. 0 or -EINVAL, reported. */
int get_string(struct loader *L, const struct ynode *n, const char *what, char **ret,
	       int *ret_secret);
/* The readers of one value, named what in messages: each returns 0 and
 * sets *ret (out) or reports why not and returns a negative errno, *ret
 * untouched. A duration in ms; an enum as the index of its name in names
 * (NULL-ended); a header name of 1 to outlen - 1 token characters; a list
 * of statuses from lo to hi as statuses[code] = 1. */
int get_duration(struct loader *L, const struct ynode *n, const char *what, uint32_t *ret);
int get_enum(struct loader *L, const struct ynode *n, const char *what, const char *const *names,
	     int *ret);
int get_header_name(struct loader *L, const struct ynode *n, const char *what, char *out,
		    size_t outlen);
int get_statuses(struct loader *L, const struct ynode *n, const char *what, int lo, int hi,
		 uint8_t statuses[600]);

enum key_kind {
	KEY_BOOL,        /* int: true or false */
	KEY_UINT,        /* uint32_t from min to max */
	KEY_RATIO,       /* double from lo to hi */
	KEY_DURATION,    /* uint32_t ms; at least min ms; over 0 with KEY_POSITIVE */
	KEY_SIZE,        /* uint64_t bytes, at least min */
	KEY_ENUM,        /* an enum: the index of the value in names */
	KEY_ENUM_BITS,   /* uint32_t: a list of names, bit i for names[i] */
	KEY_METHODS,     /* uint32_t: a list of methods, METHOD_BIT() each */
	KEY_STATUSES,    /* uint8_t[600]: a list of statuses from min to max */
	KEY_HEADER_NAME, /* char[size]: a header field name */
	KEY_MAP,         /* a mapping of the keys in sub, offsets from this one */
	KEY_CUSTOM,      /* parse() reads it */
};

/* flags */
#define KEY_POSITIVE 1u /* a duration must be greater than 0 */

struct key {
	const char *name; /* NULL ends a table */
	enum key_kind kind;
	size_t offset;            /* of the destination in the struct the table fills */
	long long min, max;       /* UINT, STATUSES: the range; DURATION: the least;
				   * SIZE: the least and, when not 0, the most */
	double lo, hi;            /* RATIO: the range */
	const char *const *names; /* ENUM, ENUM_BITS (names.h) */
	const struct key *sub;    /* MAP */
	/* CUSTOM: reads v into dst, the struct the table fills (offset 0). */
	void (*parse)(struct loader *L, const struct ynode *v, void *dst);
	/* How a bad value is named ("a timeout", "transport kind" for an item
	 * of the list); NULL: by its dotted path ("retry.backoff.base"). */
	const char *noun;
	size_t size;    /* HEADER_NAME: of the destination array */
	unsigned flags; /* KEY_POSITIVE */
};

/* The rows of a key table, one a line: the name, where the value goes
 * (offsetof the struct the table fills) and the limits of its kind. */
/* clang-format off */
#define K_BOOL(n, off) { .name = (n), .kind = KEY_BOOL, .offset = (off) }
#define K_UINT(n, off, lo_, hi_) { .name = (n), .kind = KEY_UINT, .offset = (off), .min = (lo_), .max = (hi_) }
#define K_RATIO(n, off, lo_, hi_) { .name = (n), .kind = KEY_RATIO, .offset = (off), .lo = (lo_), .hi = (hi_) }
#define K_DURATION(n, off, min_, flags_) { .name = (n), .kind = KEY_DURATION, .offset = (off), .min = (min_), .flags = (flags_) }
#define K_SIZE(n, off, min_) { .name = (n), .kind = KEY_SIZE, .offset = (off), .min = (min_) }
#define K_SIZE_IN(n, off, min_, max_) { .name = (n), .kind = KEY_SIZE, .offset = (off), .min = (min_), .max = (max_) }
#define K_ENUM(n, off, names_) { .name = (n), .kind = KEY_ENUM, .offset = (off), .names = (names_) }
#define K_BITS(n, off, names_, noun_) { .name = (n), .kind = KEY_ENUM_BITS, .offset = (off), .names = (names_), .noun = (noun_) }
#define K_METHODS(n, off) { .name = (n), .kind = KEY_METHODS, .offset = (off) }
#define K_STATUSES(n, off, lo_, hi_) { .name = (n), .kind = KEY_STATUSES, .offset = (off), .min = (lo_), .max = (hi_) }
#define K_HEADER(n, off, size_) { .name = (n), .kind = KEY_HEADER_NAME, .offset = (off), .size = (size_) }
#define K_MAP(n, off, sub_) { .name = (n), .kind = KEY_MAP, .offset = (off), .sub = (sub_) }
/* parse_ gets the struct the table fills; NULL: a key read by hand. */
#define K_CUSTOM(n, parse_) { .name = (n), .kind = KEY_CUSTOM, .parse = (parse_) }
#define K_END { .name = NULL }
/* clang-format on */

/* The keys of a policy, valid in defaults, a profile and a route. */
extern const struct key policy_keys[];

/* Reports key (its node keynode) as unknown in where, with the nearest key
 * of the tables (a NULL-ended list) when one is a near miss. */
void unknown_key(struct loader *L, const struct ynode *keynode, const char *where,
		 const struct key *const *tables);
/* Reports every key of map that table does not name. */
void check_keys(struct loader *L, const struct ynode *map, const char *where,
		const struct key *table);
/* The entry of table named name, or NULL. */
const struct key *keys_find(const struct key *table, const char *name);
/* Reads v, the value of the key named name, into base per table; prefix is
 * the dotted path of the mapping ("" at a policy's top). Returns 1 when
 * table names the key (errors reported), 0 when it does not. */
int keys_apply(struct loader *L, const struct key *table, const char *prefix, const char *name,
	       const struct ynode *v, void *base);
/* Reads the mapping map, named where, into base per table: an unknown key
 * or a bad value is reported and skipped. */
void keys_apply_map(struct loader *L, const struct key *table, const char *where,
		    const struct ynode *map, void *base);

/* Iterates over a mapping's entries with index i, key text k and value v. */
#define FOREACH_ENTRY(map, i, k, v)                                                                \
	for (size_t i = 0;                                                                         \
	     i < (map)->n && ((k) = (map)->keys[i]->value, (v) = (map)->items[i], 1); i++)

/* Cross-key checks on a merged policy; n is where to report, where names
 * it in the message. */
void check_policy(struct loader *L, const struct policy *p, const struct ynode *n,
		  const char *where);

/* Listeners (config_address.c). */
int parse_listen(struct loader *L, const struct ynode *n, struct listener_setting *ls);
/* listen and admin, into the struct config at cfg. */
void parse_listeners(struct loader *L, const struct ynode *v, void *cfg);
void parse_admin(struct loader *L, const struct ynode *v, void *cfg);
void listener_release(struct listener_setting *ls);
/* The upstream URL of a profile (config_address.c). */
void parse_upstream(struct loader *L, const struct ynode *n, void *profile);
/* A profile's addresses (numeric ADDR:PORT, normalized). */
void parse_addresses(struct loader *L, const struct ynode *v, void *profile);
/* The top-level dns map, and what it owns. */
void parse_dns(struct loader *L, const struct ynode *map, void *cfg);
void dns_release(struct dns_setting *d);
/* The fleet mapping, into the struct config at cfg (config_fleet.c). */
void parse_fleet(struct loader *L, const struct ynode *map, void *cfg);
/* rate_limit.share: fleet needs fleet.redis, and a rate of at most one
 * attempt per µs (SPEC 4.12); reported at `at`. */
void check_shared_rate(struct loader *L, const struct ynode *at);

/* Profiles (config_profile.c). */
void parse_profile(struct loader *L, const struct ynode *key, const struct ynode *map,
		   struct profile *p);
void profile_release(struct profile *p);

#endif

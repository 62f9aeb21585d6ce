/* What an answer says about its own caching (SPEC 4.13): Cache-Control
 * (RFC 9111 5.2, with RFC 5861's stale-while-revalidate and stale-if-error)
 * of an answer or of the app's request, Vary, and the freshness lifetime and
 * age of an answer (RFC 9111 4.2). Pure and bounded: fixed-size results, the
 * caller passes the field lines and "now" in.
 *
 * braced is a private cache for its app, not a shared one: s-maxage and
 * proxy-revalidate are read and reported but change nothing, private does not
 * stop storing, and public adds nothing. */
#ifndef BRACED_CACHECONTROL_H
#define BRACED_CACHECONTROL_H

#include <stddef.h>
#include <stdint.h>

/* Longest field line read (Cache-Control or Vary). */
#define CACHECONTROL_LINE_MAX 2048
/* Most directives (non-empty list members) read over all the Cache-Control
 * lines of one message. */
#define CACHECONTROL_DIRECTIVES_MAX 32
/* delta-seconds beyond this read as this (RFC 9111 1.2.2): 2^31. */
#define CACHECONTROL_DELTA_MAX 2147483648U
/* Most distinct field names a Vary may list: more reads as "*". */
#define CACHECONTROL_VARY_MAX 16
/* Longest field name kept from a Vary: a longer one reads as "*". */
#define CACHECONTROL_VARY_NAME_MAX 64

/* One field line's value as sent, with or without surrounding spaces, not
 * NUL-terminated (it may hold any byte). Borrowed. */
struct cachecontrol_line {
	const char *p;
	size_t len;
};

/* Which message the Cache-Control lines come from: the directives of the
 * other direction are unknown ones (skipped). */
enum cachecontrol_from {
	CACHECONTROL_RESPONSE, /* the upstream's answer */
	CACHECONTROL_REQUEST,  /* the app's request */
};

/* A directive with a delta-seconds argument. */
struct cachecontrol_seconds {
	int present;   /* the directive appeared */
	int invalid;   /* present with a missing or malformed argument, or repeated with another
			value: secs is then 0 */
	uint32_t secs; /* at most CACHECONTROL_DELTA_MAX */
};

/* The Cache-Control of one message. Answers: max_age, s_maxage, no_store,
 * no_cache, private, public, must_revalidate, proxy_revalidate,
 * stale_while_revalidate, stale_if_error. Requests: max_age, max_stale,
 * min_fresh, no_cache, no_store, only_if_cached, stale_if_error. The rest
 * stays 0. */
struct cachecontrol {
	struct cachecontrol_seconds max_age;
	struct cachecontrol_seconds s_maxage;
	struct cachecontrol_seconds stale_while_revalidate;
	struct cachecontrol_seconds stale_if_error;
	struct cachecontrol_seconds max_stale; /* request; without argument see max_stale_any */
	struct cachecontrol_seconds min_fresh; /* request */
	int max_stale_any;                     /* request: max-stale without argument */
	int no_store;
	int no_cache; /* with or without a field-name list: the same here */
	int private;  /* with or without a field-name list */
	int public;
	int must_revalidate;
	int proxy_revalidate;
	int only_if_cached; /* request */
	/* A line over CACHECONTROL_LINE_MAX or a directive beyond
	 * CACHECONTROL_DIRECTIVES_MAX stopped the reading there: what came
	 * before is kept, nothing after is read, and no_store and no_cache are
	 * set, so the message is neither stored nor answered from memory. */
	int overflow;
};

/* Reads the n Cache-Control field lines of one message (lines borrowed, n 0:
 * none) into *ret, all of it written. Lines combine as one list (RFC 9110
 * 5.3); empty list members are skipped. A directive is a case-insensitive
 * token, optionally "=" and a token or quoted-string argument; spaces and
 * tabs around members and commas are allowed, not around "=". Unknown
 * directives, and those of the other direction, are skipped, their
 * arguments too (a quoted-string may hold commas).
 * delta-seconds: digits, as a token or quoted ("60"), saturated at
 * CACHECONTROL_DELTA_MAX. A missing or malformed argument, or a repeat with
 * a different value, makes a delta-seconds directive invalid (secs 0): an
 * invalid max-age is max-age=0 (stale), an invalid stale-while-revalidate or
 * stale-if-error extends nothing. An argument given to a directive that
 * takes none is ignored (the directive counts). A malformed member (a
 * character that is neither a token's, "=", a comma nor space where one is
 * expected, an unterminated quoted-string, a control byte) ends at the next
 * comma outside a quoted-string; if it named a delta-seconds directive, that
 * directive is invalid, if a flag, the flag counts (each restricts or changes
 * nothing here). Bounds: see overflow. */
void cachecontrol_parse(enum cachecontrol_from from, const struct cachecontrol_line *lines,
			size_t n, struct cachecontrol *ret);

/* The field names an answer's Vary lists. */
struct cachecontrol_vary {
	/* "*", or a Vary braced does not key on: a member that is not a token,
	 * a name longer than CACHECONTROL_VARY_NAME_MAX, more than
	 * CACHECONTROL_VARY_MAX names, a line over CACHECONTROL_LINE_MAX.
	 * Such an answer is never kept; n is then 0. */
	int star;
	size_t n;
	/* lowercased, NUL-terminated, each once, in the order first listed */
	char names[CACHECONTROL_VARY_MAX][CACHECONTROL_VARY_NAME_MAX + 1];
};

/* Reads the n Vary field lines of an answer (borrowed) into *ret, all of it
 * written: comma-separated field names over the lines, spaces and tabs
 * around them, empty members skipped; names compare case-insensitively, a
 * repeat is kept once. No line (n 0) or only empty members: n 0, not star. */
void cachecontrol_vary_parse(const struct cachecontrol_line *lines, size_t n,
			     struct cachecontrol_vary *ret);

/* An answer as the freshness computation sees it. Borrowed. */
struct cachecontrol_answer {
	const struct cachecontrol *cc; /* its Cache-Control, from cachecontrol_parse */
	const char *date;              /* the Date value, NULL when absent */
	size_t date_len;
	const char *expires; /* the Expires value, NULL when absent */
	size_t expires_len;
	const char *age; /* the Age value, NULL when absent */
	size_t age_len;
};

/* Where a freshness lifetime came from (RFC 9111 4.2.1's order). */
enum cachecontrol_source {
	CACHECONTROL_FROM_MAX_AGE, /* max-age (invalid: 0) */
	CACHECONTROL_FROM_EXPIRES, /* Expires - Date (invalid Expires: 0) */
	CACHECONTROL_FROM_TTL,     /* the configured default */
};

struct cachecontrol_freshness {
	int storable; /* 0: no-store (or an overflowing Cache-Control) */
	enum cachecontrol_source source;
	uint32_t lifetime_s; /* at most CACHECONTROL_DELTA_MAX */
	uint32_t age_s;      /* the age on arrival, at most CACHECONTROL_DELTA_MAX */
	int fresh;           /* lifetime_s > age_s */
	/* no-cache: every use is validated with the upstream first, fresh or
	 * not */
	int revalidate;
	/* must-revalidate or no-cache: once stale, never answered without a
	 * successful validation (no stale-while-revalidate, no stale-if-error,
	 * the configured ones included) */
	int never_stale;
	uint32_t
	    stale_while_revalidate_s; /* the answer's own; 0 when absent, invalid or never_stale */
	uint32_t stale_if_error_s;    /* likewise */
};

/* The freshness of an answer received at now (seconds since the epoch),
 * with ttl_s the configured lifetime for answers that name none. Lifetime
 * (RFC 9111 4.2.1): max-age, else Expires - Date (the Date, when absent or
 * invalid, is now; an Expires before the Date is 0, an invalid one 0), else
 * ttl_s; s-maxage is ignored (a private cache). Age (4.2.3) on arrival:
 * the larger of now - Date and the Age value (its first member, digits
 * saturated at CACHECONTROL_DELTA_MAX; ignored when invalid); the request's
 * own delay is not added: braced asks the origin directly. The age an entry
 * has later is age_s plus the seconds it has been held. Writes *ret. */
void cachecontrol_freshness(const struct cachecontrol_answer *a, int64_t now, uint32_t ttl_s,
			    struct cachecontrol_freshness *ret);

#endif

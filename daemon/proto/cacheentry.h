/* A kept answer as the store holds it (SPEC 4.13): one byte blob with the
 * answer's status, header fields and body, and what the cache needs to
 * judge it later (when it was kept, its lifetime and age then, its stale
 * windows, its validators). Written once when kept, read in place on every
 * use: decoding borrows views into the blob and copies nothing. Pure. */
#ifndef BRACED_CACHEENTRY_H
#define BRACED_CACHEENTRY_H

#include <stddef.h>
#include <stdint.h>

/* Most header fields an entry keeps; an answer with more is not kept. */
#define CACHEENTRY_FIELDS_MAX 128
/* Longest field name kept. */
#define CACHEENTRY_NAME_MAX 256
/* Longest field value kept. */
#define CACHEENTRY_VALUE_MAX 65536

/* What the cache judges a kept answer by. */
struct cacheentry_meta {
	int status;
	int64_t stored_at;                 /* when it was kept, seconds since the epoch */
	uint32_t lifetime_s;               /* its freshness lifetime */
	uint32_t age_s;                    /* its age when kept */
	uint32_t stale_while_revalidate_s; /* the answer's own, 0 when none */
	uint32_t stale_if_error_s;         /* likewise */
	int never_stale;                   /* must-revalidate or no-cache */
	int revalidate;                    /* no-cache: validated before every use */
};

/* One header field; borrowed. */
struct cacheentry_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* The bytes encoding an entry of nfields fields and a body of body_len
 * bytes would take; 0 when it cannot be kept (too many fields, a name or
 * value too long). */
size_t cacheentry_size(const struct cacheentry_field *fields, size_t nfields, size_t body_len);

/* Writes the entry into out, which has room for cacheentry_size() bytes.
 * Returns the bytes written, or 0 as cacheentry_size() does. */
size_t cacheentry_encode(const struct cacheentry_meta *m, const struct cacheentry_field *fields,
			 size_t nfields, const void *body, size_t body_len, void *out,
			 size_t outlen);

/* An entry read in place: fields and body point into the blob. */
struct cacheentry_view {
	struct cacheentry_meta meta;
	size_t nfields;
	struct cacheentry_field fields[CACHEENTRY_FIELDS_MAX];
	const void *body;
	size_t body_len;
};

/* Reads the len bytes at blob, strictly: every length within the blob and
 * its limit, nothing left over. Returns 0 with *ret, or -EINVAL. */
int cacheentry_decode(const void *blob, size_t len, struct cacheentry_view *ret);

/* The age of an entry at now, seconds (its age when kept plus the time
 * since, never below it). */
uint32_t cacheentry_age(const struct cacheentry_meta *m, int64_t now);

#endif

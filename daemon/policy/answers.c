/* Keys are "E" + the key of cacheable_key() for an answer, "V" + the base
 * key (key_headers only) for the record of the Vary names last kept for
 * that request, the names NUL-separated. */
#include "answers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cacheable.h"
#include "strbuf.h"

/* Most header values in a key: key_headers and a Vary's names. */
#define ANSWERS_KEY_HEADERS (POLICY_CACHE_KEY_HEADERS + CACHECONTROL_VARY_MAX)

struct answers {
	struct lru *store;
};

struct answers *answers_new(size_t max_bytes, size_t max_entry, uint64_t seed)
{
	struct answers *a = calloc(1, sizeof(*a));

	if (!a || !(a->store = lru_new(max_bytes, max_entry, seed))) {
		free(a);
		return NULL;
	}
	return a;
}

void answers_free(struct answers *a)
{
	if (!a)
		return;
	lru_free(a->store);
	free(a);
}

struct lru *answers_store(struct answers *a)
{
	return a->store;
}

/* Writes prefix and r's key with the values of names (n of them, after
 * the key_headers) into out. 0 or -ENAMETOOLONG. */
static int key_of(struct strbuf *out, char prefix, const struct answers_request *r,
		  const char *const *names, size_t n)
{
	struct cache_header_value h[ANSWERS_KEY_HEADERS];
	size_t nh = 0;

	for (unsigned i = 0; i < r->cp->nkey_headers && nh < ANSWERS_KEY_HEADERS; i++, nh++) {
		h[nh].name = r->cp->key_headers[i];
		h[nh].value = r->header(r->arg, h[nh].name, &h[nh].len);
	}
	for (size_t i = 0; i < n && nh < ANSWERS_KEY_HEADERS; i++, nh++) {
		h[nh].name = names[i];
		h[nh].value = r->header(r->arg, h[nh].name, &h[nh].len);
	}
	strbuf_add(out, &prefix, 1);
	return cacheable_key(out, r->profile, r->method, r->path, r->path_len, r->query,
			     r->query_len, h, nh);
}

/* The names of a Vary record's value (NUL-separated), at most
 * CACHECONTROL_VARY_MAX, pointing into it. */
static size_t record_names(const char *v, size_t len, const char **names)
{
	size_t n = 0;

	for (size_t at = 0; at < len && n < CACHECONTROL_VARY_MAX;) {
		size_t l = strnlen(v + at, len - at);

		names[n++] = v + at;
		at += l + 1;
	}
	return n;
}

struct lru_entry *answers_find(struct answers *a, const struct answers_request *r)
{
	const char *names[CACHECONTROL_VARY_MAX];
	struct lru_entry *rec, *e = NULL;
	struct strbuf k;
	size_t n = 0, len;
	/* Each name of a record ends with its NUL: copied out of the store,
	 * since the lookup below may move what the record points at. */
	char copy[CACHECONTROL_VARY_MAX * (CACHECONTROL_VARY_NAME_MAX + 1)];

	strbuf_init(&k, CACHEABLE_KEY_MAX + 1);
	if (key_of(&k, 'V', r, NULL, 0) < 0)
		goto out;
	if ((rec = lru_get(a->store, k.data, k.len))) {
		const char *v = lru_entry_value(rec, &len);

		if (len > sizeof(copy))
			goto out;
		memcpy(copy, v, len);
		n = record_names(copy, len, names);
	}
	strbuf_truncate(&k, 0);
	if (key_of(&k, 'E', r, names, n) == 0)
		e = lru_get(a->store, k.data, k.len);
out:
	strbuf_release(&k);
	return e;
}

int answers_base_key(const struct answers_request *r, struct strbuf *out)
{
	return key_of(out, 'F', r, NULL, 0);
}

int answers_keep(struct answers *a, const struct answers_request *r,
		 const struct cachecontrol_vary *vary, const void *blob, size_t len)
{
	const char *names[CACHECONTROL_VARY_MAX];
	char record[CACHECONTROL_VARY_MAX * (CACHECONTROL_VARY_NAME_MAX + 1)];
	size_t n = vary ? vary->n : 0, rlen = 0;
	struct strbuf k;
	int rc;

	if (vary && vary->star)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(vary->names[i]);

		names[i] = vary->names[i];
		memcpy(record + rlen, vary->names[i], l + 1);
		rlen += l + 1;
	}
	strbuf_init(&k, CACHEABLE_KEY_MAX + 1);
	rc = key_of(&k, 'V', r, NULL, 0);
	if (rc == 0) {
		/* The record says how to find what is kept now; none without Vary. */
		if (n)
			rc = lru_put(a->store, k.data, k.len, record, rlen, r->group);
		else
			lru_remove(a->store, k.data, k.len);
	}
	if (rc == 0 && n) {
		/* An answer kept before without Vary is out of reach now. */
		strbuf_truncate(&k, 0);
		if (key_of(&k, 'E', r, NULL, 0) == 0)
			lru_remove(a->store, k.data, k.len);
	}
	if (rc == 0) {
		strbuf_truncate(&k, 0);
		rc = key_of(&k, 'E', r, names, n);
	}
	if (rc == 0)
		rc = lru_put(a->store, k.data, k.len, blob, len, r->group);
	strbuf_release(&k);
	return rc;
}

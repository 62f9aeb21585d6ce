/* The cache's decisions as a few tables and one key writer. */
#include "cacheable.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "method.h"

static const char *const use_names[CACHE_USE__COUNT] = {
	[CACHE_USE] = "use",
	[CACHE_USE_REVALIDATE] = "revalidate",
	[CACHE_BYPASS_OFF] = "off",
	[CACHE_BYPASS_METHOD] = "method",
	[CACHE_BYPASS_CREDENTIALS] = "credentials",
	[CACHE_BYPASS_NO_STORE] = "no_store",
	[CACHE_BYPASS_CONDITIONAL] = "conditional",
};

static const char *const keep_names[CACHE_KEEP__COUNT] = {
	[CACHE_KEEP] = "keep",
	[CACHE_NOT_STATUS] = "status",
	[CACHE_NOT_NO_STORE] = "no_store",
	[CACHE_NOT_SET_COOKIE] = "set_cookie",
	[CACHE_NOT_VARY_STAR] = "vary",
	[CACHE_NOT_LIFETIME] = "lifetime",
	[CACHE_NOT_SCHEMA] = "schema",
	[CACHE_NOT_TOO_LARGE] = "too_large",
};

const char *cacheable_use_name(enum cache_use u)
{
	return (unsigned)u < CACHE_USE__COUNT ? use_names[u] : "unknown";
}

const char *cacheable_keep_name(enum cache_keep k)
{
	return (unsigned)k < CACHE_KEEP__COUNT ? keep_names[k] : "unknown";
}

/* 1 when name is one of cp's key_headers. */
static int keyed(const struct cache_policy *cp, const char *name)
{
	for (unsigned i = 0; i < cp->nkey_headers; i++)
		if (!strcasecmp(cp->key_headers[i], name))
			return 1;
	return 0;
}

enum cache_use cacheable_request(const struct cache_policy *cp, int store_on,
				 const struct cache_request *r)
{
	if (!store_on || !cp->enabled)
		return CACHE_BYPASS_OFF;
	if (r->method != METHOD_GET && r->method != METHOD_HEAD)
		return CACHE_BYPASS_METHOD;
	/* An answer to one user's credentials is served to another only when
	 * the credentials are part of the key. */
	if ((r->has_authorization && !keyed(cp, "authorization")) ||
	    (r->has_cookie && !keyed(cp, "cookie")))
		return CACHE_BYPASS_CREDENTIALS;
	if (r->cc && r->cc->no_store)
		return CACHE_BYPASS_NO_STORE;
	if (r->cc && (r->cc->no_cache || (r->cc->max_age.present && r->cc->max_age.secs == 0)))
		return CACHE_USE_REVALIDATE;
	return CACHE_USE;
}

/* RFC 9111 3 with SPEC 4.13's list: the statuses a cache keeps. */
static int kept_status(int status)
{
	switch (status) {
	case 200:
	case 203:
	case 204:
	case 300:
	case 301:
	case 404:
	case 410:
		return 1;
	default:
		return 0;
	}
}

enum cache_keep cacheable_answer(const struct cache_answer *a)
{
	if (!kept_status(a->status))
		return CACHE_NOT_STATUS;
	if (!a->f->storable)
		return CACHE_NOT_NO_STORE;
	if (a->set_cookie)
		return CACHE_NOT_SET_COOKIE;
	if (a->vary && a->vary->star)
		return CACHE_NOT_VARY_STAR;
	if (a->f->source == CACHECONTROL_FROM_TTL && a->f->lifetime_s == 0)
		return CACHE_NOT_LIFETIME;
	if (a->schema_failed)
		return CACHE_NOT_SCHEMA;
	if (a->size > a->max_entry)
		return CACHE_NOT_TOO_LARGE;
	return CACHE_KEEP;
}

/* One part of a key: its length, ':', its bytes; an absent part '-'. */
static void part(struct strbuf *out, const char *p, size_t len)
{
	if (!p) {
		strbuf_add(out, "-", 1);
		return;
	}
	strbuf_addf(out, "%zu:", len);
	strbuf_add(out, p, len);
}

int cacheable_key(struct strbuf *out, const char *profile, const char *method, const char *path,
		  size_t path_len, const char *query, size_t query_len,
		  const struct cache_header_value *headers, size_t nheaders)
{
	size_t start = out->len;

	part(out, profile, strlen(profile));
	part(out, method, strlen(method));
	part(out, path, path_len);
	part(out, query ? query : "", query ? query_len : 0);
	strbuf_addf(out, "%zu", nheaders);
	for (size_t i = 0; i < nheaders; i++) {
		char lower[POLICY_HEADER_NAME_MAX + 1];
		size_t n = strnlen(headers[i].name, POLICY_HEADER_NAME_MAX);

		/* Names compare without case: written lowercased. */
		for (size_t k = 0; k < n; k++)
			lower[k] = (char)(headers[i].name[k] >= 'A' && headers[i].name[k] <= 'Z'
					      ? headers[i].name[k] + 32
					      : headers[i].name[k]);
		part(out, lower, n);
		part(out, headers[i].value, headers[i].len);
	}
	if (out->failed || out->len - start > CACHEABLE_KEY_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* How long past its lifetime an entry is at now; 0 while fresh. */
static uint64_t staleness(const struct cacheentry_meta *m, int64_t now)
{
	uint32_t age = cacheentry_age(m, now);

	return age > m->lifetime_s ? age - m->lifetime_s : 0;
}

static int fresh(const struct cacheentry_meta *m, int64_t now)
{
	return cacheentry_age(m, now) < m->lifetime_s;
}

static uint64_t larger_s(uint32_t answer_s, uint32_t configured_ms)
{
	uint64_t c = configured_ms / 1000;

	return answer_s > c ? answer_s : c;
}

enum cache_state cacheable_state(const struct cacheentry_meta *meta, const struct cache_policy *cp,
				 enum cache_use use, int64_t now)
{
	if (meta->revalidate || use == CACHE_USE_REVALIDATE)
		return CACHE_REVALIDATE;
	if (fresh(meta, now))
		return CACHE_FRESH;
	if (!meta->never_stale && staleness(meta, now) < larger_s(meta->stale_while_revalidate_s,
								  cp->stale_while_revalidate_ms))
		return CACHE_STALE_SERVE;
	return CACHE_REVALIDATE;
}

int cacheable_stands_in(const struct cacheentry_meta *meta, const struct cache_policy *cp,
			int64_t now)
{
	if (fresh(meta, now))
		return 1;
	return !meta->never_stale &&
	       staleness(meta, now) < larger_s(meta->stale_if_error_s, cp->stale_if_error_ms);
}

static const char *const header_names[CACHE_R__COUNT] = {
	[CACHE_R_NONE] = NULL,
	[CACHE_R_HIT] = "hit",
	[CACHE_R_STALE] = "stale",
	[CACHE_R_STALE_IF_ERROR] = "stale-if-error",
	[CACHE_R_REVALIDATED] = "revalidated",
	[CACHE_R_MISS] = "miss",
	[CACHE_R_COALESCED] = "coalesced",
	[CACHE_R_BYPASS] = "bypass",
};

static const char *const label_names[CACHE_R__COUNT] = {
	[CACHE_R_NONE] = "none",
	[CACHE_R_HIT] = "hit",
	[CACHE_R_STALE] = "stale",
	[CACHE_R_STALE_IF_ERROR] = "stale_if_error",
	[CACHE_R_REVALIDATED] = "revalidated",
	[CACHE_R_MISS] = "miss",
	[CACHE_R_COALESCED] = "coalesced",
	[CACHE_R_BYPASS] = "bypass",
};

const char *cacheable_result_header(enum cache_result r)
{
	return (unsigned)r < CACHE_R__COUNT ? header_names[r] : NULL;
}

const char *cacheable_result_label(enum cache_result r)
{
	return (unsigned)r < CACHE_R__COUNT ? label_names[r] : "none";
}

/* The cache on the request path (cache.h). A request on a route with
 * cache.enabled gets a struct cache_req: its key's parts, the entry it
 * holds while it revalidates, the exchange it leads or waits for, and the
 * copy of a streamed body. Exchanges in flight are found by the request's
 * base key (key_headers, not Vary) in a small hash table; an answer with a
 * Vary goes only to the waiters whose values of its headers match. */
#include "cache.h"
#include "answers.h"
#include "cacheable.h"
#include "cachecontrol.h"
#include "cacheentry.h"
#include "exchange.h"
#include "guard.h"
#include "hash.h"
#include "headers.h"
#include "log.h"
#include "memory.h"
#include "reply.h"
#include "strbuf.h"
#include "upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>

/* Buckets of the table of exchanges in flight (a power of two). */
#define CACHE_FLIGHT_BUCKETS 1024
/* Header values joined from several lines for one key, at most. */
#define CACHE_JOINED_MAX 24

struct cache_req;
TAILQ_HEAD(cache_waiters, cache_req);

/* An exchange identical requests wait for. */
struct flight {
	struct flight *next;
	uint64_t hash;
	char *key;
	size_t key_len;
	struct cache_req *leader;
	struct cache_waiters waiters;
	unsigned nwaiters;
};

struct cache_store {
	struct answers *answers;
	uint64_t max_bytes, max_entry;
	uint64_t seed;
	uint64_t purges; /* purges and reloads that removed entries, so far */
	struct flight *flights[CACHE_FLIGHT_BUCKETS];
};

struct cache_req {
	struct request *req;
	enum cache_result result;
	enum cache_use use;
	int counted;
	struct answers_request ar;
	char *path;              /* as sent, then the query: ar points into it */
	struct lru_entry *entry; /* held (lru_ref) while it is revalidated */
	struct lru *entry_store; /* the store it was held in */
	int validators;          /* If-None-Match or If-Modified-Since went up */
	struct flight *flight;
	int leads;
	TAILQ_ENTRY(cache_req) wait_link;
	int silent;                     /* answered already: goes on for the store or the waiters */
	char *joined[CACHE_JOINED_MAX]; /* header values joined from several lines */
	char *joined_name[CACHE_JOINED_MAX];
	unsigned njoined;
	int key_bad;     /* a header value of the key could not be read */
	uint64_t purges; /* the store's purges when it began: one since, and nothing is kept */
	char *upstream;  /* the profile's upstream when it began (a reload may change it) */
};

/* ==== the store ======================================================== */

static uint64_t group_of(const char *profile)
{
	return hash_fnv1a64(profile, strlen(profile));
}

/* 1 when profile p of cfg keeps its entries across a reload from old. */
static int profile_kept(const struct config *old, const struct profile *p)
{
	const struct profile *o = config_find_profile(old, p->name, strlen(p->name));

	return o && strcmp(o->upstream, p->upstream) == 0;
}

int cache_env_configure(struct request_env *env, const struct config *old, const struct config *cfg)
{
	struct cache_store *s = env->cache;

	if (!cfg->cache.max_bytes) {
		cache_env_free(env);
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->seed = rng_next(&env->rng);
		s->answers = answers_new(cfg->cache.max_bytes, cfg->cache.max_entry, s->seed);
		if (!s->answers) {
			free(s);
			return -ENOMEM;
		}
		env->cache = s;
	} else {
		lru_resize(answers_store(s->answers), cfg->cache.max_bytes, cfg->cache.max_entry);
		if (old) {
			/* A profile gone, or one whose upstream changed: its answers
			 * are another server's now. */
			for (size_t i = 0; i < old->nprofiles; i++) {
				const struct profile *o = &old->profiles[i];
				const struct profile *p =
				    config_find_profile(cfg, o->name, strlen(o->name));

				if (!p || !profile_kept(old, p)) {
					lru_purge_group(answers_store(s->answers),
							group_of(o->name));
					s->purges++;
				}
			}
		}
	}
	s->max_bytes = cfg->cache.max_bytes;
	s->max_entry = cfg->cache.max_entry;
	return 0;
}

void cache_env_free(struct request_env *env)
{
	struct cache_store *s = env->cache;

	if (!s)
		return;
	/* Requests still holding entries hold the store with them (lru.h). */
	answers_free(s->answers);
	free(s);
	env->cache = NULL;
}

size_t cache_purge(struct request_env *env, const char *profile)
{
	struct lru *lru;

	if (!env->cache)
		return 0;
	lru = answers_store(env->cache->answers);
	/* An exchange still running keeps nothing: what it would keep may be
	 * what was purged. */
	env->cache->purges++;
	return profile ? lru_purge_group(lru, group_of(profile)) : lru_purge_all(lru);
}

void cache_stats(const struct request_env *env, struct cache_stats *ret)
{
	struct lru_stats st;

	memset(ret, 0, sizeof(*ret));
	if (!env->cache)
		return;
	lru_stats(answers_store(env->cache->answers), &st);
	ret->max_bytes = env->cache->max_bytes;
	ret->bytes = st.bytes;
	ret->entries = st.entries;
}

/* ==== a request's key ================================================== */

/* Walks the lines of header name ("Name: value", "Name;" when empty) in
 * l: returns how many there are, the first value in *ret_first (NULL when
 * none) and the length of all of them joined with ", " in *ret_total; with
 * out (room for *ret_total + 1 bytes), writes them joined there. */
static size_t join_lines(const struct header_list *l, const char *name, char *out,
			 const char **ret_first, size_t *ret_total)
{
	size_t nlen = strlen(name), found = 0, total = 0;

	*ret_first = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const char *line = l->lines[i], *v;
		size_t vl;

		if (strncasecmp(line, name, nlen) != 0 || (line[nlen] != ':' && line[nlen] != ';'))
			continue;
		v = line[nlen] == ';' ? line + nlen + 1 : line + nlen + 2;
		vl = strlen(v);
		if (!found)
			*ret_first = v;
		if (out && found) {
			memcpy(out + total, ", ", 2);
			total += 2;
		} else if (found) {
			total += 2;
		}
		if (out)
			memcpy(out + total, v, vl);
		total += vl;
		found++;
	}
	if (out)
		out[total] = '\0';
	*ret_total = total;
	return found;
}

/* The value of name among the upstream request's header lines, several
 * lines joined with ", ": the values the upstream sees are the ones the key
 * reads. NULL when absent. A joined value is made once per name and kept
 * with the request; one that cannot be made (out of memory, more names
 * joined than CACHE_JOINED_MAX) marks the key bad: the request then
 * neither finds, keeps nor shares. */
static const char *list_value(void *arg, const char *name, size_t *ret_len)
{
	struct cache_req *c = arg;
	const char *first;
	size_t total;
	char *j = NULL;

	if (join_lines(&c->req->headers, name, NULL, &first, &total) <= 1) {
		*ret_len = total;
		return first;
	}
	for (unsigned i = 0; i < c->njoined; i++)
		if (strcasecmp(c->joined_name[i], name) == 0) {
			*ret_len = strlen(c->joined[i]);
			return c->joined[i];
		}
	*ret_len = strlen(first);
	if (c->njoined >= CACHE_JOINED_MAX || !(j = malloc(total + 1)) ||
	    !(c->joined_name[c->njoined] = strdup(name))) {
		free(j);
		c->key_bad = 1;
		return first;
	}
	join_lines(&c->req->headers, name, j, &first, &total);
	c->joined[c->njoined++] = j;
	*ret_len = total;
	return j;
}

/* Sets c->ar from req: the path and the query as sent, which is what the
 * upstream receives. Not the routing's normalized path: that drops
 * ";parameters" and empty segments, and folds case under match_case:
 * insensitive, so two requests the upstream tells apart would share one
 * answer. -1 out of memory. */
static int set_key_parts(struct cache_req *c)
{
	struct request *req = c->req;
	const char *rest = req->path + 1 + strlen(req->profile->name);
	size_t rest_len = req->path_len - (size_t)(rest - req->path);
	const char *q = req->path[req->path_len] == '?' ? req->path + req->path_len + 1 : NULL;
	size_t qlen = q ? strlen(q) : 0, plen = rest_len;

	c->path = malloc(rest_len + qlen + 2);
	if (!c->path)
		return -1;
	memcpy(c->path, rest, rest_len);
	c->path[rest_len] = '\0';
	if (q)
		memcpy(c->path + plen + 1, q, qlen + 1);
	c->ar = (struct answers_request){
		.profile = req->profile->name,
		.method = req->method_name,
		.path = c->path,
		.path_len = plen,
		.query = q ? c->path + plen + 1 : NULL,
		.query_len = qlen,
		.cp = &req->policy->cache,
		.header = list_value,
		.arg = c,
		.group = group_of(req->profile->name),
	};
	return 0;
}

static void set_result(struct cache_req *c, enum cache_result r)
{
	c->result = r;
	c->req->cache_said = cacheable_result_header(r);
}

/* ==== exchanges in flight ============================================== */

static struct flight **bucket(struct cache_store *s, uint64_t h)
{
	return &s->flights[h & (CACHE_FLIGHT_BUCKETS - 1)];
}

static struct flight *flight_find(struct cache_store *s, const struct strbuf *k, uint64_t h)
{
	for (struct flight *f = *bucket(s, h); f; f = f->next)
		if (f->hash == h && f->key_len == k->len && memcmp(f->key, k->data, k->len) == 0)
			return f;
	return NULL;
}

static void flight_unlink(struct cache_store *s, struct flight *f)
{
	for (struct flight **pp = bucket(s, f->hash); *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
}

/* Takes the waiters out of c's exchange (which ends): returned in *ret. */
static void flight_end(struct cache_req *c, struct cache_waiters *ret)
{
	struct flight *f = c->flight;
	struct cache_req *w;

	TAILQ_INIT(ret);
	if (!f || !c->leads)
		return;
	while ((w = TAILQ_FIRST(&f->waiters))) {
		TAILQ_REMOVE(&f->waiters, w, wait_link);
		w->flight = NULL;
		TAILQ_INSERT_TAIL(ret, w, wait_link);
	}
	if (c->req->env->cache)
		flight_unlink(c->req->env->cache, f);
	free(f->key);
	free(f);
	c->flight = NULL;
	c->leads = 0;
}

/* A waiter goes on alone: its own exchange, not coalesced again; while
 * braced shuts down it is answered 503 instead. */
static void start_alone(struct cache_req *w)
{
	if (w->req->env->draining) {
		reply_error(w->req, PROBLEM_OVERLOADED, "braced is shutting down");
		return;
	}
	set_result(w, CACHE_R_MISS);
	w->req->env->start(w->req);
}

/* Waiters whose exchange ended with nothing to share go alone. */
static void release_waiters(struct cache_waiters *ws)
{
	struct cache_req *w;

	while ((w = TAILQ_FIRST(ws))) {
		TAILQ_REMOVE(ws, w, wait_link);
		start_alone(w);
	}
}

/* ==== counting and headers ============================================= */

static void count(struct cache_req *c)
{
	if (c->counted || c->result == CACHE_R_NONE || !c->req->guard)
		return;
	c->counted = 1;
	guard_count_cache(c->req->guard, c->result);
}

uint64_t cache_holds_whole(const struct request *req)
{
	/* Beyond max_entry it could be neither kept nor shared. */
	return req->cache && req->cache->silent && req->env->cache ? req->env->cache->max_entry : 0;
}

int cache_silent(const struct request *req)
{
	return req->cache && req->cache->silent;
}

/* ==== answering from memory =========================================== */

/* An answer's bytes shared by several replies without a copy: the replies
 * reference them (evbuffer_add_reference) and the last one written frees
 * them. */
struct shared {
	unsigned refs;
	char *p;
	size_t len;
};

/* What holds the bytes of a reply: an entry of a store (held with lru_ref
 * until the reply is written) or a shared blob. */
struct owner {
	struct lru *lru;
	struct lru_entry *e;
	struct shared *sh;
};

static void shared_put(struct shared *sh)
{
	if (sh && --sh->refs == 0) {
		free(sh->p);
		free(sh);
	}
}

static void owner_release(const void *data, size_t len, void *arg)
{
	struct owner *o = arg;

	(void)data;
	(void)len;
	if (o->e)
		lru_unref(o->lru, o->e);
	shared_put(o->sh);
	free(o);
}

/* Adds the len bytes at p, held by own, to body without copying them
 * (copied when that fails). Returns 0 or -ENOMEM. */
static int add_body(struct evbuffer *body, const void *p, size_t len, const struct owner *own)
{
	struct owner *o;

	if (!len)
		return 0;
	o = malloc(sizeof(*o));
	if (o) {
		*o = *own;
		if (o->e)
			lru_ref(o->lru, o->e);
		if (o->sh)
			o->sh->refs++;
		if (evbuffer_add_reference(body, p, len, owner_release, o) == 0)
			return 0;
		owner_release(p, len, o);
	}
	return evbuffer_add(body, p, len) < 0 ? -ENOMEM : 0;
}

/* Answers req with the entry read as v (its bytes held by own) as result
 * says. Returns 0, or -1 when req was answered otherwise (out of memory)
 * and freed. */
static int answer_view(struct request *req, const struct cacheentry_view *v,
		       const struct owner *own, enum cache_result r,
		       const enum problem_code *avoided, int early)
{
	struct evbuffer *body = evbuffer_new();
	int64_t age = -1;
	int rc = -1;

	if (!body || add_body(body, v->body, v->body_len, own) < 0) {
		reply_internal(req, "out of memory for a kept answer");
		goto out;
	}
	set_result(req->cache, r);
	if (r == CACHE_R_HIT || r == CACHE_R_STALE || r == CACHE_R_STALE_IF_ERROR)
		age = cacheentry_age(&v->meta, time(NULL));
	rc = reply_cached(req, v, age, avoided, body, early);
out:
	if (body)
		evbuffer_free(body); /* emptied by the reply; else its references go */
	return rc;
}

/* answer_view() of entry blob (len bytes, held by own). */
static int answer_blob(struct request *req, const void *blob, size_t len, const struct owner *own,
		       enum cache_result r, const enum problem_code *avoided, int early)
{
	struct cacheentry_view *v = malloc(sizeof(*v));
	int rc = -1;

	if (!v || cacheentry_decode(blob, len, v) < 0)
		reply_internal(req, "a kept answer could not be read");
	else
		rc = answer_view(req, v, own, r, avoided, early);
	free(v);
	return rc;
}

/* Answers req with entry e of store lru. */
static int answer_entry(struct request *req, struct lru *lru, struct lru_entry *e,
			enum cache_result r, const enum problem_code *avoided, int early)
{
	size_t len;
	const void *blob = lru_entry_value(e, &len);
	const struct owner own = { lru, e, NULL };

	return answer_blob(req, blob, len, &own, r, avoided, early);
}

/* The store of the server, for answer_entry(). */
static struct lru *store_of(const struct request *req)
{
	return answers_store(req->env->cache->answers);
}

void cache_bypass(struct request *req)
{
	struct cache_req *c;

	if (!req->env->cache || !req->policy->cache.enabled || req->cache ||
	    !(c = calloc(1, sizeof(*c))))
		return;
	c->req = req;
	req->cache = c;
	c->use = CACHE_BYPASS_METHOD;
	set_result(c, CACHE_R_BYPASS);
}

/* ==== the request's beginning ========================================= */

static const struct http_header *app_header(const struct request *req, const char *name)
{
	return req->hreq ? http_request_header(req->hreq, name) : NULL;
}

/* How req uses the cache: cacheable_request's answer, and a bypass for a
 * conditional or partial request (the app validates or picks a range
 * itself) or one with a body. */
static enum cache_use use_of(struct request *req, const struct cache_policy *cp)
{
	static const char *const conditional[] = { "If-None-Match", "If-Modified-Since",
						   "If-Match",      "If-Unmodified-Since",
						   "If-Range",      "Range" };
	struct cachecontrol_line lines[8];
	struct cachecontrol cc;
	struct cache_request r = {
		.method = req->method,
		.has_authorization = app_header(req, "Authorization") != NULL,
		.has_cookie = app_header(req, "Cookie") != NULL,
		.cc = &cc,
	};
	size_t n = 0;
	enum cache_use u;

	for (size_t i = 0; req->hreq && i < req->hreq->nheaders; i++) {
		const struct http_header *h = &req->hreq->headers[i];

		if (strcasecmp(h->name, "Cache-Control") != 0)
			continue;
		if (n == sizeof(lines) / sizeof(lines[0])) {
			/* More lines than read: as an overflowing line, no-store. */
			lines[n - 1] = (struct cachecontrol_line){ "no-store", 8 };
			break;
		}
		lines[n++] = (struct cachecontrol_line){ h->value, h->value_len };
	}
	cachecontrol_parse(CACHECONTROL_REQUEST, lines, n, &cc);
	u = cacheable_request(cp, 1, &r);
	if (u != CACHE_USE && u != CACHE_USE_REVALIDATE)
		return u;
	for (size_t i = 0; i < sizeof(conditional) / sizeof(conditional[0]); i++)
		if (app_header(req, conditional[i]))
			return CACHE_BYPASS_CONDITIONAL;
	if (req->body_len > 0)
		return CACHE_BYPASS_METHOD;
	return u;
}

/* The value of an entry's field name, or NULL. */
static const struct cacheentry_field *view_field(const struct cacheentry_view *v, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < v->nfields; i++)
		if (v->fields[i].name_len == n && strncasecmp(v->fields[i].name, name, n) == 0)
			return &v->fields[i];
	return NULL;
}

/* Adds the validators of entry e to req's upstream headers. */
static void add_validators(struct cache_req *c, struct lru_entry *e)
{
	struct cacheentry_view *v = malloc(sizeof(*v));
	size_t len;
	const void *blob = lru_entry_value(e, &len);
	static const struct {
		const char *field, *header;
	} pairs[] = { { "ETag", "If-None-Match" }, { "Last-Modified", "If-Modified-Since" } };

	if (!v || cacheentry_decode(blob, len, v) < 0) {
		free(v);
		return;
	}
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const struct cacheentry_field *f = view_field(v, pairs[i].field);
		char *val;

		if (!f || header_list_has(&c->req->headers, pairs[i].header))
			continue;
		val = strndup(f->value, f->value_len);
		if (val && header_list_add(&c->req->headers, pairs[i].header, val) == 0)
			c->validators = 1;
		free(val);
	}
	free(v);
}

/* c holds entry e while it is revalidated, and asks with its validators. */
static void hold_entry(struct cache_store *s, struct cache_req *c, struct lru_entry *e)
{
	c->entry_store = answers_store(s->answers);
	lru_ref(c->entry_store, e);
	c->entry = e;
	add_validators(c, e);
}

/* Makes c lead a new exchange for key k (hash h). */
static void lead(struct cache_store *s, struct cache_req *c, const struct strbuf *k, uint64_t h)
{
	struct flight *f = calloc(1, sizeof(*f));

	if (!f || !(f->key = malloc(k->len ? k->len : 1))) {
		free(f);
		return; /* not coalesced: identical requests make their own */
	}
	memcpy(f->key, k->data, k->len);
	f->key_len = k->len;
	f->hash = h;
	f->leader = c;
	TAILQ_INIT(&f->waiters);
	f->next = *bucket(s, h);
	*bucket(s, h) = f;
	c->flight = f;
	c->leads = 1;
}

enum cache_next cache_begin(struct request *req)
{
	struct cache_store *s = req->env->cache;
	const struct cache_policy *cp = &req->policy->cache;
	struct cache_req *c;
	struct lru_entry *e;
	struct cacheentry_view *v = NULL;
	struct owner own = { NULL, NULL, NULL };
	enum cache_state st = CACHE_REVALIDATE;
	struct strbuf k;
	struct flight *f = NULL;
	uint64_t h = 0;
	int keyed = 0;
	enum cache_next rc = CACHE_GO;

	if (!s || !cp->enabled)
		return CACHE_GO;
	c = calloc(1, sizeof(*c));
	if (!c)
		return CACHE_GO; /* out of memory: as if the cache were off */
	c->req = req;
	req->cache = c;
	c->use = use_of(req, cp);
	c->purges = s->purges;
	if ((c->use != CACHE_USE && c->use != CACHE_USE_REVALIDATE) || set_key_parts(c) < 0) {
		set_result(c, CACHE_R_BYPASS);
		return CACHE_GO;
	}
	e = answers_find(s->answers, &c->ar);
	if (c->key_bad) {
		/* A header value of the key could not be read. */
		set_result(c, CACHE_R_BYPASS);
		return CACHE_GO;
	}
	if (e) {
		size_t len;
		const void *blob = lru_entry_value(e, &len);

		v = malloc(sizeof(*v));
		if (v && cacheentry_decode(blob, len, v) == 0)
			st = cacheable_state(&v->meta, cp, c->use, time(NULL));
		else
			e = NULL; /* unreadable: as if none were kept */
		own = (struct owner){ store_of(req), e, NULL };
	}
	if (e && st == CACHE_FRESH) {
		/* A hit: nothing more is looked at. */
		answer_view(req, v, &own, CACHE_R_HIT, NULL, 0);
		free(v);
		return CACHE_ANSWERED;
	}
	/* The exchange's key has the upstream too: after a reload that moves
	 * the profile, a new request never waits for the old upstream. */
	c->upstream = strdup(req->profile->upstream);
	strbuf_init(&k, CACHEABLE_KEY_MAX + 2 + strlen(req->profile->upstream));
	if (c->upstream && answers_base_key(&c->ar, &k) == 0 && !c->key_bad) {
		strbuf_add(&k, c->upstream, strlen(c->upstream));
		keyed = !k.failed;
	}
	if (keyed) {
		h = hash_siphash24(s->seed, s->seed ^ 0x9e3779b97f4a7c15ULL, k.data, k.len);
		f = flight_find(s, &k, h);
	} else if (!e) {
		/* A key too long to keep: never kept, never found. */
		set_result(c, CACHE_R_BYPASS);
		goto out;
	}
	if (e && st == CACHE_STALE_SERVE) {
		if (f || !keyed || req->controlled) {
			/* A refresh is on its way already, or this request may
			 * not lead one (its own limits would be the refresh's). */
			answer_view(req, v, &own, CACHE_R_STALE, NULL, 0);
			rc = CACHE_ANSWERED;
			goto out;
		}
		/* Answered now; the request goes on to refresh the entry. */
		hold_entry(s, c, e);
		if (answer_view(req, v, &own, CACHE_R_STALE, NULL, 1) < 0) {
			rc = CACHE_ANSWERED; /* answered 500 and freed */
			goto out;
		}
		c->silent = 1;
		lead(s, c, &k, h);
		goto out;
	}
	if (e) {
		hold_entry(s, c, e);
		/* An entry that may stand in for a failure answers at the first
		 * one: the app gets it at once, as from nginx's
		 * proxy_cache_use_stale, and a failing upstream is not asked
		 * again for it. */
		if (cacheable_stands_in(&v->meta, cp, time(NULL)))
			req->max_attempts = 1;
	}
	set_result(c, CACHE_R_MISS);
	if (cp->coalesce && keyed) {
		/* A request that shortens its own budget or attempts may wait
		 * (its own deadline ends its wait) but never leads: its limits
		 * would become the answer of those waiting for it. */
		if (f && f->nwaiters < CACHE_WAITERS_MAX) {
			TAILQ_INSERT_TAIL(&f->waiters, c, wait_link);
			f->nwaiters++;
			c->flight = f;
			set_result(c, CACHE_R_COALESCED);
			rc = CACHE_WAIT;
		} else if (!f && !req->controlled) {
			lead(s, c, &k, h);
		}
	}
out:
	free(v);
	strbuf_release(&k);
	return rc;
}

/* ==== keeping an answer =============================================== */

/* The fields of an answer as read: those a relay carries, less the
 * exchange's own Server-Timing. (Its Age is read, then dropped: braced
 * says its own, drop_age().) */
static int kept_field(const struct request *req, const char *name, const char *connection)
{
	if (req->method == METHOD_HEAD && strcasecmp(name, "Content-Length") == 0)
		return 1;
	return !headers_response_dropped(name, connection) &&
	       strcasecmp(name, req->correlation_header) != 0 &&
	       !(req->idempotency_key[0] && strcasecmp(name, req->idempotency_header) == 0) &&
	       strcasecmp(name, "Retry-After") != 0 && strcasecmp(name, "Server-Timing") != 0;
}

/* Drops the Age fields of n fields (read already: the age on arrival is in
 * the entry's meta, and braced says an entry's age itself). Returns the
 * fields left. */
static size_t drop_age(struct cacheentry_field *f, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (!(f[i].name_len == 3 && strncasecmp(f[i].name, "Age", 3) == 0))
			f[k++] = f[i];
	return k;
}

/* An answer as the cache reads it, from its fields. */
struct reading {
	struct cachecontrol cc;
	struct cachecontrol_vary vary;
	struct cachecontrol_freshness f;
	int set_cookie;
};

#define READ_LINES 16

static void read_answer(const struct cacheentry_field *fields, size_t n, uint32_t ttl_s,
			struct reading *r)
{
	struct cachecontrol_line cc[READ_LINES] = { { 0 } }, vary[READ_LINES] = { { 0 } };
	size_t ncc = 0, nvary = 0;
	struct cachecontrol_answer a = { .cc = &r->cc };
	int cc_over = 0, vary_over = 0;

	r->set_cookie = 0;
	for (size_t i = 0; i < n; i++) {
		const struct cacheentry_field *fl = &fields[i];
		struct cachecontrol_line line = { fl->value, fl->value_len };

#define IS(s) (fl->name_len == sizeof(s) - 1 && strncasecmp(fl->name, s, sizeof(s) - 1) == 0)
		if (IS("Cache-Control")) {
			if (ncc < READ_LINES)
				cc[ncc++] = line;
			else
				cc_over = 1;
		} else if (IS("Vary")) {
			if (nvary < READ_LINES)
				vary[nvary++] = line;
			else
				vary_over = 1;
		} else if (IS("Date") && !a.date) {
			a.date = fl->value;
			a.date_len = fl->value_len;
		} else if (IS("Expires") && !a.expires) {
			a.expires = fl->value;
			a.expires_len = fl->value_len;
		} else if (IS("Age") && !a.age) {
			a.age = fl->value;
			a.age_len = fl->value_len;
		} else if (IS("Set-Cookie")) {
			r->set_cookie = 1;
		}
#undef IS
	}
	cachecontrol_parse(CACHECONTROL_RESPONSE, cc, ncc, &r->cc);
	if (cc_over)
		r->cc.no_store = 1; /* more lines than read: not kept */
	cachecontrol_vary_parse(vary, nvary, &r->vary);
	if (vary_over)
		r->vary.star = 1;
	cachecontrol_freshness(&a, time(NULL), ttl_s, &r->f);
}

/* An entry in a buffer of its own. */
struct blob {
	char *p;
	size_t len;
};

static int encode(const struct reading *r, int status, const struct cacheentry_field *fields,
		  size_t n, const void *body, size_t body_len, struct blob *out)
{
	struct cacheentry_meta m = {
		.status = status,
		.stored_at = time(NULL),
		.lifetime_s = r->f.lifetime_s,
		.age_s = r->f.age_s,
		.stale_while_revalidate_s = r->f.stale_while_revalidate_s,
		.stale_if_error_s = r->f.stale_if_error_s,
		.never_stale = r->f.never_stale,
		.revalidate = r->f.revalidate,
	};
	size_t len = cacheentry_size(fields, n, body_len);

	out->p = NULL;
	out->len = 0;
	if (!len || !(out->p = malloc(len)))
		return -1;
	out->len = cacheentry_encode(&m, fields, n, body, body_len, out->p, len);
	if (!out->len) {
		free(out->p);
		out->p = NULL;
		return -1;
	}
	return 0;
}

/* The fields of call's answer as kept: at most CACHEENTRY_FIELDS_MAX
 * (-1 beyond: not kept, not shared). */
static int fields_of_call(const struct request *req, struct call *call,
			  struct cacheentry_field *out)
{
	const char *connection = NULL, *name, *value;
	size_t pos = 0;
	int n = 0;

	while (call_header_next(call, &pos, &name, &value))
		if (strcasecmp(name, "Connection") == 0)
			connection = value;
	for (pos = 0; call_header_next(call, &pos, &name, &value);) {
		if (!kept_field(req, name, connection))
			continue;
		if (n == CACHEENTRY_FIELDS_MAX)
			return -1;
		out[n++] = (struct cacheentry_field){ name, strlen(name), value, strlen(value) };
	}
	return n;
}

/* The Vary of a waiter's request matches the leader's: the values of every
 * header the answer's Vary names are the same. */
static int same_vary(struct cache_req *a, struct cache_req *b, const struct cachecontrol_vary *v)
{
	for (size_t i = 0; i < v->n; i++) {
		size_t la, lb;
		const char *va = list_value(a, v->names[i], &la);
		const char *vb = list_value(b, v->names[i], &lb);

		if ((va == NULL) != (vb == NULL) || (va && (la != lb || memcmp(va, vb, la) != 0)))
			return 0;
	}
	return 1;
}

/* The blob of an answer shared with its waiters, or NULL. */
static struct shared *shared_of(struct blob *b)
{
	struct shared *sh;

	if (!b->p || !(sh = malloc(sizeof(*sh))))
		return NULL;
	*sh = (struct shared){ 1, b->p, b->len };
	b->p = NULL; /* the shared blob owns it now */
	return sh;
}

/* 1 when the answer read as r (its blob len bytes) may go to the waiters
 * of an exchange: whole within max_entry, and setting no cookie (a session
 * is one client's, never handed to another). */
static int shareable(const struct cache_store *s, const struct reading *r, size_t len)
{
	return s && r && !r->set_cookie && !r->vary.star && len <= s->max_entry;
}

/* Answers each waiter of ws with sh (the answer of leader, read as r), or
 * starts it alone: when there is none, or its values of the headers the
 * answer's Vary names differ from the leader's. leader is still alive. */
static void share_blob(struct cache_req *leader, struct cache_waiters *ws, struct shared *sh,
		       const struct reading *r)
{
	struct cache_req *w;

	while ((w = TAILQ_FIRST(ws))) {
		const struct owner own = { NULL, NULL, sh };

		TAILQ_REMOVE(ws, w, wait_link);
		if (!sh || !same_vary(leader, w, &r->vary) || leader->key_bad || w->key_bad) {
			start_alone(w);
			continue;
		}
		answer_blob(w->req, sh->p, sh->len, &own, CACHE_R_COALESCED, NULL, 0);
	}
}

/* 1 when c's answers may be kept: a store, a request that uses it, and
 * the profile still pointing at the upstream it was asked of (a reload
 * may have moved it while the exchange ran). */
static int may_keep(const struct cache_req *c)
{
	const struct request_env *env = c->req->env;
	const struct profile *p;

	if (!env->cache || c->key_bad || !c->upstream || c->purges != env->cache->purges ||
	    (c->use != CACHE_USE && c->use != CACHE_USE_REVALIDATE))
		return 0;
	p = config_find_profile(env->cfg, c->req->profile->name, strlen(c->req->profile->name));
	return p && strcmp(p->upstream, c->upstream) == 0;
}

/* 1 when the answer read as r, of status and size bytes once kept, may be
 * kept for c's request. The values of the headers its Vary names are read
 * first: one that cannot be read (key_bad) keeps nothing. */
static int keepable(struct cache_req *c, const struct reading *r, int status, size_t size)
{
	struct cache_answer ans = {
		.status = status,
		.f = &r->f,
		.vary = &r->vary,
		.set_cookie = r->set_cookie,
		.schema_failed = c->req->schema_bad,
		.size = size,
	};
	size_t len;

	if (!may_keep(c))
		return 0;
	ans.max_entry = c->req->env->cache->max_entry;
	if (cacheable_answer(&ans) != CACHE_KEEP)
		return 0;
	for (size_t i = 0; i < r->vary.n; i++)
		list_value(c, r->vary.names[i], &len);
	return !c->key_bad;
}

/* Keeps blob b (the answer read as r) for c's request when it may be kept. */
static void keep(struct cache_req *c, const struct reading *r, const struct blob *b, int status)
{
	if (b->p && keepable(c, r, status, b->len))
		answers_keep(c->req->env->cache->answers, &c->ar, &r->vary, b->p, b->len);
}

/* Builds the entry of req's answer (status, call's fields, the bytes of
 * body), keeps it when it may be kept, and shares it with the waiters of
 * req's exchange; req itself is answered afterwards, by the caller. */
static void keep_and_share(struct request *req, struct call *call, int status,
			   struct evbuffer *body)
{
	size_t body_len = evbuffer_get_length(body);
	const void *bytes = NULL;
	struct cache_req *c = req->cache;
	struct cache_store *s = req->env->cache;
	struct cacheentry_field *fields = malloc(CACHEENTRY_FIELDS_MAX * sizeof(*fields));
	struct reading *r = malloc(sizeof(*r));
	struct cache_waiters ws;
	struct blob b = { NULL, 0 };
	struct shared *sh = NULL;
	int n = -1;

	flight_end(c, &ws);
	if (fields && r && (n = fields_of_call(req, call, fields)) >= 0) {
		read_answer(fields, (size_t)n, req->policy->cache.ttl_ms / 1000, r);
		n = (int)drop_age(fields, (size_t)n);
		/* Made only when it is kept or shared: a blob costs a copy
		 * (and the body made contiguous, another). */
		size_t size = cacheentry_size(fields, (size_t)n, body_len);

		if (size &&
		    (keepable(c, r, status, size) ||
		     (!TAILQ_EMPTY(&ws) && shareable(s, r, size))) &&
		    (bytes = body_len ? evbuffer_pullup(body, -1) : (const void *)""))
			encode(r, status, fields, (size_t)n, bytes, body_len, &b);
	}
	if (b.p && r) {
		keep(c, r, &b, status);
		if (shareable(s, r, b.len))
			sh = shared_of(&b);
	}
	share_blob(c, &ws, sh, r);
	shared_put(sh);
	free(b.p);
	free(fields);
	free(r);
}

/* ==== answers from the exchange ======================================= */

/* 1 when a is a failure an entry may stand in for. */
static int avoidable(const struct engine_answer *a)
{
	if (!a->has_code)
		return 0;
	switch (a->code) {
	case PROBLEM_UPSTREAM_UNAVAILABLE:
	case PROBLEM_UPSTREAM_TIMEOUT:
	case PROBLEM_CIRCUIT_OPEN:
	case PROBLEM_RATE_LIMITED:
	case PROBLEM_SCHEMA_VIOLATION:
		return 1;
	case PROBLEM_UPSTREAM_STATUS:
		return a->status >= 500 || a->upstream_status >= 500;
	default:
		return 0;
	}
}

/* The entry that may stand in for a failure of c's exchange, or NULL; its
 * store in *ret_lru. */
static struct lru_entry *stand_in(struct cache_req *c, struct lru **ret_lru)
{
	struct cache_store *s = c->req->env->cache;
	struct lru_entry *e;
	struct cacheentry_view *v;
	size_t len;
	const void *blob;
	int ok = 0;

	if (!s || !c->path || c->key_bad)
		return NULL;
	if (c->entry) {
		e = c->entry;
		*ret_lru = c->entry_store;
	} else {
		e = answers_find(s->answers, &c->ar);
		*ret_lru = answers_store(s->answers);
	}
	if (!e || c->key_bad)
		return NULL;
	blob = lru_entry_value(e, &len);
	v = malloc(sizeof(*v));
	if (v && cacheentry_decode(blob, len, v) == 0)
		ok = cacheable_stands_in(&v->meta, &c->req->policy->cache, time(NULL));
	free(v);
	return ok ? e : NULL;
}

/* Ends a request that answered its app already (silent). */
static void end_silent(struct request *req)
{
	req->env->finish(req, 0, NULL, 0, NULL, 0, NULL, NULL);
}

/* 1 when the failure a belongs to the exchange, so that every request
 * waiting for it would have met it too; 0 when it came from the leader's
 * own circumstances (an answer too large to hold whole for an app that
 * left, an internal fault). */
static int failure_shared(const struct engine_answer *a)
{
	return a->code != PROBLEM_RESPONSE_TOO_LARGE && a->code != PROBLEM_INTERNAL;
}

/* Waiters of a failed exchange: each gets the entry that stands in for
 * its request, else the same problem, or goes alone when the failure was
 * the leader's own. */
static void share_failure(struct cache_waiters *ws, const struct engine_answer *a)
{
	struct cache_req *w;

	while ((w = TAILQ_FIRST(ws))) {
		struct lru_entry *e;
		struct lru *lru = NULL;

		TAILQ_REMOVE(ws, w, wait_link);
		if (avoidable(a) && (e = stand_in(w, &lru))) {
			answer_entry(w->req, lru, e, CACHE_R_STALE_IF_ERROR, &a->code, 0);
			continue;
		}
		if (!failure_shared(a)) {
			start_alone(w);
			continue;
		}
		set_result(w, CACHE_R_COALESCED);
		reply_problem(w->req, a);
	}
}

/* A 304 to c's validators: the kept entry, its fields updated by the 304's,
 * is kept again as new and answers (req is freed). */
static void refresh(struct request *req)
{
	struct cache_req *c = req->cache;
	struct cache_store *s = req->env->cache;
	struct cacheentry_view *v = malloc(sizeof(*v));
	struct cacheentry_field *fields = malloc(2 * CACHEENTRY_FIELDS_MAX * sizeof(*fields));
	struct cacheentry_field *fresh = fields ? fields + CACHEENTRY_FIELDS_MAX : NULL;
	struct reading *r = malloc(sizeof(*r));
	struct cache_waiters ws;
	struct blob b = { NULL, 0 };
	struct shared *sh = NULL;
	size_t len, n = 0;
	int nfresh = -1;
	const void *old = lru_entry_value(c->entry, &len);
	const struct owner own = { c->entry_store, c->entry, NULL };

	flight_end(c, &ws);
	if (v && fields && r && cacheentry_decode(old, len, v) == 0 &&
	    (nfresh = fields_of_call(req, req->last, fresh)) >= 0) {
		/* RFC 9111 4.3.4: the 304's fields replace the kept ones of
		 * their names; framing stays the kept answer's. */
		for (size_t i = 0; i < v->nfields; i++) {
			int replaced = 0;

			for (int j = 0; j < nfresh && !replaced; j++)
				replaced = fresh[j].name_len == v->fields[i].name_len &&
					   strncasecmp(fresh[j].name, v->fields[i].name,
						       fresh[j].name_len) == 0;
			if (!replaced)
				fields[n++] = v->fields[i];
		}
		int over = 0;

		for (int j = 0; j < nfresh; j++) {
			if (fresh[j].name_len == 14 &&
			    strncasecmp(fresh[j].name, "Content-Length", 14) == 0)
				continue;
			if (n == CACHEENTRY_FIELDS_MAX) {
				/* A 304 field left out could be a no-store or
				 * a cookie: the merge fails whole. */
				over = 1;
				break;
			}
			fields[n++] = fresh[j];
		}
		if (!over) {
			read_answer(fields, n, req->policy->cache.ttl_ms / 1000, r);
			n = drop_age(fields, n);
			encode(r, v->meta.status, fields, n, v->body, v->body_len, &b);
		}
	}
	if (b.p) {
		/* Kept again only as a new answer would be: a 304 that sets a
		 * cookie or says no-store now leaves the entry as it was. */
		keep(c, r, &b, v->meta.status);
		if (shareable(s, r, b.len))
			sh = shared_of(&b);
		share_blob(c, &ws, sh, r);
	} else {
		release_waiters(&ws);
	}
	/* The leader last: answering it frees c. */
	if (c->silent) {
		end_silent(req);
	} else if (sh) {
		const struct owner shown = { NULL, NULL, sh };

		answer_blob(req, sh->p, sh->len, &shown, CACHE_R_REVALIDATED, NULL, 0);
	} else if (b.p) {
		struct shared *mine = shared_of(&b);
		const struct owner shown = { NULL, NULL, mine };

		if (mine)
			answer_blob(req, mine->p, mine->len, &shown, CACHE_R_REVALIDATED, NULL, 0);
		else
			answer_blob(req, old, len, &own, CACHE_R_REVALIDATED, NULL, 0);
		shared_put(mine);
	} else {
		/* The 304 could not be merged: the kept answer, as it is. */
		answer_blob(req, old, len, &own, CACHE_R_REVALIDATED, NULL, 0);
	}
	shared_put(sh);
	free(b.p);
	free(v);
	free(fields);
	free(r);
}

int cache_on_answer(struct request *req, const struct engine_answer *a)
{
	struct cache_req *c = req->cache;
	struct cache_waiters ws;
	struct lru_entry *e;
	struct lru *lru = NULL;

	if (!c || c->result == CACHE_R_BYPASS)
		return 0;
	if (a->kind == ENGINE_RELAY && a->status == 304 && c->entry && c->validators && req->last) {
		refresh(req);
		return 1;
	}
	if (avoidable(a) && (e = stand_in(c, &lru))) {
		enum problem_code avoided = a->code;

		/* Held while the waiters are answered, whatever they release. */
		lru_ref(lru, e);
		flight_end(c, &ws);
		share_failure(&ws, a);
		/* The leader last: answering it frees c. */
		if (c->silent)
			end_silent(req);
		else
			answer_entry(req, lru, e, CACHE_R_STALE_IF_ERROR, &avoided, 0);
		lru_unref(lru, e);
		return 1;
	}
	if (a->kind == ENGINE_RELAY && !a->stream && req->last) {
		keep_and_share(req, req->last, a->status, call_body(req->last));
		return 0;
	}
	if (a->kind != ENGINE_RELAY) {
		flight_end(c, &ws);
		share_failure(&ws, a);
	}
	return 0;
}

/* ==== a streamed answer =============================================== */

/* 1 when the head of call's answer allows keeping it (its body unseen):
 * what cacheable_answer() says of its status and fields. */
static int keepable_head(struct request *req, struct call *call)
{
	struct cacheentry_field *fields;
	struct reading *r;
	int n, ok = 0;

	if (!may_keep(req->cache))
		return 0;
	fields = malloc(CACHEENTRY_FIELDS_MAX * sizeof(*fields));
	r = malloc(sizeof(*r));
	if (fields && r && (n = fields_of_call(req, call, fields)) >= 0) {
		struct cache_answer ans = {
			.status = call_status(call),
			.f = &r->f,
			.vary = &r->vary,
			.max_entry = req->env->cache->max_entry,
		};

		read_answer(fields, (size_t)n, req->policy->cache.ttl_ms / 1000, r);
		ans.set_cookie = r->set_cookie;
		ok = cacheable_answer(&ans) == CACHE_KEEP;
	}
	free(fields);
	free(r);
	return ok;
}

void cache_stream_begin(struct request *req, struct call *call)
{
	struct cache_req *c = req->cache;
	struct cache_store *s = req->env->cache;
	struct cache_waiters ws;
	int64_t length;
	uint64_t room;
	int waiters;

	if (!c || !s || c->result == CACHE_R_BYPASS || req->tee)
		return;
	length = call_content_length(call);
	waiters = c->leads && c->flight && c->flight->nwaiters;
	/* The copy is held like an answer held whole (limits.max_buffered):
	 * its length, or max_entry when none is said, and only when the answer
	 * may be kept or shared; when there is no room, nothing is copied. */
	if ((length < 0 || (uint64_t)length <= s->max_entry) &&
	    (waiters || keepable_head(req, call))) {
		room = length >= 0 ? (uint64_t)length : s->max_entry;
		if (memory_try(req, room) == 0) {
			req->tee_room = room;
			req->tee = evbuffer_new();
			if (!req->tee)
				memory_give(req, room);
		}
	}
	/* Waiters get a streamed answer at its end when its length is said,
	 * fits in max_entry and it is copied; otherwise the exchange ends for
	 * them now, and they (and those who come later) go on their own
	 * rather than wait for a stream that may last. */
	if (!(req->tee && length >= 0)) {
		flight_end(c, &ws);
		release_waiters(&ws);
	}
}

void cache_stream_end(struct request *req, int complete)
{
	struct cache_req *c = req->cache;
	struct cache_waiters ws;

	if (!c)
		return;
	if (complete && req->tee && req->last && call_status(req->last) == req->stream_status) {
		keep_and_share(req, req->last, req->stream_status, req->tee);
		return;
	}
	flight_end(c, &ws);
	release_waiters(&ws);
}

/* ==== the app leaving, deadlines, shutdown ============================ */

static void leave_flight(struct cache_req *c)
{
	struct flight *f = c->flight;

	if (!f || c->leads)
		return;
	TAILQ_REMOVE(&f->waiters, c, wait_link);
	f->nwaiters--;
	c->flight = NULL;
}

int cache_client_gone(struct request *req)
{
	struct cache_req *c = req->cache;

	if (!c || !c->flight)
		return 0;
	if (!c->leads) {
		leave_flight(c);
		return 0;
	}
	if (c->flight->nwaiters == 0 || req->stream_begun)
		return 0;
	/* Others wait for this exchange: it goes on without its app. */
	c->silent = 1;
	return 1;
}

int cache_wait_over(struct request *req)
{
	struct cache_req *c = req->cache;
	struct lru_entry *e;
	struct lru *lru = NULL;

	if (!c || !c->flight || c->leads)
		return 0;
	leave_flight(c);
	if ((e = stand_in(c, &lru))) {
		answer_entry(req, lru, e, CACHE_R_STALE_IF_ERROR,
			     &(enum problem_code){ PROBLEM_UPSTREAM_TIMEOUT }, 0);
		return 1;
	}
	reply_waited_too_long(req);
	return 1;
}

void cache_abort(struct request *req)
{
	struct cache_req *c = req->cache;

	if (c && c->flight && !c->leads)
		leave_flight(c);
}

void cache_request_free(struct request *req)
{
	struct cache_req *c = req->cache;
	struct cache_waiters ws;

	if (!c)
		return;
	count(c);
	if (c->leads) {
		/* Ended without an answer to share: each waiter goes alone. */
		flight_end(c, &ws);
		release_waiters(&ws);
	} else {
		leave_flight(c);
	}
	req->cache = NULL;
	if (c->entry)
		lru_unref(c->entry_store, c->entry);
	for (unsigned i = 0; i < c->njoined; i++) {
		free(c->joined[i]);
		free(c->joined_name[i]);
	}
	free(c->upstream);
	free(c->path);
	free(c);
}

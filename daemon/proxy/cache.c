/* The cache on the request path (cache.h), its first half: the store, a
 * request's key and beginning, the exchanges in flight, answering from
 * memory, and a request's end; what an answer does is cache_keep.c's. A
 * request on a route with cache.enabled gets a struct cache_req
 * (cache_internal.h): its key's parts, the entry it holds while it
 * revalidates, the exchange it leads or waits for. Exchanges in flight are
 * found by the request's base key (key_headers, not Vary) in a small hash
 * table; an answer with a Vary goes only to the waiters whose values of its
 * headers match. */
#include "cache.h"
#include "cache_internal.h"
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
const char *cache_list_value(void *arg, const char *name, size_t *ret_len)
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
		.header = cache_list_value,
		.arg = c,
		.group = group_of(req->profile->name),
	};
	return 0;
}

void cache_set_result(struct cache_req *c, enum cache_result r)
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
void cache_flight_end(struct cache_req *c, struct cache_waiters *ret)
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
void cache_start_alone(struct cache_req *w)
{
	if (w->req->env->draining) {
		reply_error(w->req, PROBLEM_OVERLOADED, "braced is shutting down");
		return;
	}
	cache_set_result(w, CACHE_R_MISS);
	w->req->env->start(w->req);
}

/* Waiters whose exchange ended with nothing to share go alone. */
void cache_release_waiters(struct cache_waiters *ws)
{
	struct cache_req *w;

	while ((w = TAILQ_FIRST(ws))) {
		TAILQ_REMOVE(ws, w, wait_link);
		cache_start_alone(w);
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

void cache_shared_put(struct shared *sh)
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
	cache_shared_put(o->sh);
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
	cache_set_result(req->cache, r);
	if (r == CACHE_R_HIT || r == CACHE_R_STALE || r == CACHE_R_STALE_IF_ERROR)
		age = cacheentry_age(&v->meta, time(NULL));
	rc = reply_cached(req, v, age, avoided, body, early);
out:
	if (body)
		evbuffer_free(body); /* emptied by the reply; else its references go */
	return rc;
}

/* answer_view() of entry blob (len bytes, held by own). */
int cache_answer_blob(struct request *req, const void *blob, size_t len, const struct owner *own,
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
int cache_answer_entry(struct request *req, struct lru *lru, struct lru_entry *e,
		       enum cache_result r, const enum problem_code *avoided, int early)
{
	size_t len;
	const void *blob = lru_entry_value(e, &len);
	const struct owner own = { lru, e, NULL };

	return cache_answer_blob(req, blob, len, &own, r, avoided, early);
}

/* The store of the server, for cache_answer_entry(). */
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
	cache_set_result(c, CACHE_R_BYPASS);
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
		cache_set_result(c, CACHE_R_BYPASS);
		return CACHE_GO;
	}
	e = answers_find(s->answers, &c->ar);
	if (c->key_bad) {
		/* A header value of the key could not be read. */
		cache_set_result(c, CACHE_R_BYPASS);
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
		cache_set_result(c, CACHE_R_BYPASS);
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
	cache_set_result(c, CACHE_R_MISS);
	if (cp->coalesce && keyed) {
		/* A request that shortens its own budget or attempts may wait
		 * (its own deadline ends its wait) but never leads: its limits
		 * would become the answer of those waiting for it. */
		if (f && f->nwaiters < CACHE_WAITERS_MAX) {
			TAILQ_INSERT_TAIL(&f->waiters, c, wait_link);
			f->nwaiters++;
			c->flight = f;
			cache_set_result(c, CACHE_R_COALESCED);
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
	if ((e = cache_stand_in(c, &lru))) {
		cache_answer_entry(req, lru, e, CACHE_R_STALE_IF_ERROR,
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
		cache_flight_end(c, &ws);
		cache_release_waiters(&ws);
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

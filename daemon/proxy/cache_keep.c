/* What an exchange's answer does to the cache (cache_internal.h): kept
 * when it may be, shared with the requests waiting for it, standing in
 * for a failure with a kept entry, a 304 refreshing one, and a streamed
 * answer's copy. */
#include "cache.h"
#include "cache_internal.h"
#include "cachecontrol.h"
#include "exchange.h"
#include "headers.h"
#include "memory.h"
#include "reply.h"
#include "upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>

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
		const char *va = cache_list_value(a, v->names[i], &la);
		const char *vb = cache_list_value(b, v->names[i], &lb);

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
			cache_start_alone(w);
			continue;
		}
		cache_answer_blob(w->req, sh->p, sh->len, &own, CACHE_R_COALESCED, NULL, 0);
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
		cache_list_value(c, r->vary.names[i], &len);
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

	cache_flight_end(c, &ws);
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
	cache_shared_put(sh);
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
struct lru_entry *cache_stand_in(struct cache_req *c, struct lru **ret_lru)
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
		if (avoidable(a) && (e = cache_stand_in(w, &lru))) {
			cache_answer_entry(w->req, lru, e, CACHE_R_STALE_IF_ERROR, &a->code, 0);
			continue;
		}
		if (!failure_shared(a)) {
			cache_start_alone(w);
			continue;
		}
		cache_set_result(w, CACHE_R_COALESCED);
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

	cache_flight_end(c, &ws);
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
		cache_release_waiters(&ws);
	}
	/* The leader last: answering it frees c. */
	if (c->silent) {
		end_silent(req);
	} else if (sh) {
		const struct owner shown = { NULL, NULL, sh };

		cache_answer_blob(req, sh->p, sh->len, &shown, CACHE_R_REVALIDATED, NULL, 0);
	} else if (b.p) {
		struct shared *mine = shared_of(&b);
		const struct owner shown = { NULL, NULL, mine };

		if (mine)
			cache_answer_blob(req, mine->p, mine->len, &shown, CACHE_R_REVALIDATED,
					  NULL, 0);
		else
			cache_answer_blob(req, old, len, &own, CACHE_R_REVALIDATED, NULL, 0);
		cache_shared_put(mine);
	} else {
		/* The 304 could not be merged: the kept answer, as it is. */
		cache_answer_blob(req, old, len, &own, CACHE_R_REVALIDATED, NULL, 0);
	}
	cache_shared_put(sh);
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
	if (avoidable(a) && (e = cache_stand_in(c, &lru))) {
		enum problem_code avoided = a->code;

		/* Held while the waiters are answered, whatever they release. */
		lru_ref(lru, e);
		cache_flight_end(c, &ws);
		share_failure(&ws, a);
		/* The leader last: answering it frees c. */
		if (c->silent)
			end_silent(req);
		else
			cache_answer_entry(req, lru, e, CACHE_R_STALE_IF_ERROR, &avoided, 0);
		lru_unref(lru, e);
		return 1;
	}
	if (a->kind == ENGINE_RELAY && !a->stream && req->last) {
		keep_and_share(req, req->last, a->status, call_body(req->last));
		return 0;
	}
	if (a->kind != ENGINE_RELAY) {
		cache_flight_end(c, &ws);
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
		cache_flight_end(c, &ws);
		cache_release_waiters(&ws);
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
	cache_flight_end(c, &ws);
	cache_release_waiters(&ws);
}

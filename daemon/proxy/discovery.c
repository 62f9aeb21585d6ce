/* Each profile's endpoints (discovery.h): given addresses at once, a name
 * looked up now and every resolve_every on the loop, its answer handed to
 * the profile's guard as "ADDR:PORT" texts. */
#include "discovery.h"
#include "clock.h"
#include "guard.h"
#include "log.h"
#include "resolve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One DNS try waits this long (evdns tries each nameserver in turn). */
#define DISCOVERY_TRY_MS 2000

struct watch {
	struct discovery *d;
	struct guard *g;
	const struct profile *p; /* borrowed from d->cfg */
	struct event *timer;
	struct resolve_query *q;
	int failing; /* the last look-up failed, and that was logged */
};

struct discovery {
	struct event_base *base;
	struct config *cfg; /* one reference: the watches borrow its profiles */
	struct resolver *resolver;
	struct config *built;        /* one reference: the dns settings resolver was built from */
	struct timespec hosts_mtime; /* of dns.hosts_file when the resolver was built */
	struct watch *watches;
	size_t nwatches;
};

struct discovery *discovery_new(struct event_base *base)
{
	struct discovery *d = calloc(1, sizeof(*d));

	if (d)
		d->base = base;
	return d;
}

static struct timespec mtime_of(const char *path)
{
	struct stat st;

	if (!path || stat(path, &st) < 0)
		return (struct timespec){ 0 };
	return st.st_mtim;
}

/* A resolver for cfg's dns settings, or NULL with the reason logged. */
static struct resolver *new_resolver(struct discovery *d, const struct config *cfg)
{
	const struct dns_setting *dns = &cfg->dns;
	struct resolver_settings s = {
		.nameservers = (const char *const *)dns->nameservers,
		.n = dns->nnameservers,
		.hosts_file = dns->hosts_file,
		.timeout_ms = DISCOVERY_TRY_MS,
	};
	char err[256];
	struct resolver *r = resolver_new(d->base, &s, err, sizeof(err));

	if (!r)
		log_msgf(LOG_ERROR, "cannot look upstream names up: %s", err);
	return r;
}

/* Makes r (taken) the resolver, built from cfg's dns settings: the old
 * one is freed, its queries cancelled (the caller starts them again). */
static void adopt_resolver(struct discovery *d, struct resolver *r, const struct config *cfg)
{
	resolver_free(d->resolver);
	d->resolver = r;
	config_unref(d->built);
	d->built = config_ref((struct config *)cfg);
	d->hosts_mtime = mtime_of(cfg->dns.hosts_file);
	for (size_t i = 0; i < d->nwatches; i++)
		d->watches[i].q = NULL;
}

static void look_up(struct watch *w);

static void arm(struct watch *w)
{
	struct timeval tv;

	clock_ms_to_tv(w->p->policy.endpoints.resolve_every_ms, &tv);
	evtimer_add(w->timer, &tv);
}

static void on_answer(void *arg, int err, const char *const *addrs, size_t n, const char *why)
{
	struct watch *w = arg;
	const struct profile *p = w->p;
	char texts[RESOLVE_MAX_ADDRS][ENDPOINT_NAME_MAX];
	const char *names[RESOLVE_MAX_ADDRS];
	size_t k = 0;

	w->q = NULL;
	for (size_t i = 0; err == 0 && i < n && i < RESOLVE_MAX_ADDRS; i++)
		if (config_endpoint_text(addrs[i], strlen(addrs[i]), p->port, texts[k],
					 sizeof(texts[k])) == 0) {
			names[k] = texts[k];
			k++;
		}
	if (k == 0) {
		/* The last set stays: a DNS outage must not empty the profile. */
		if (!w->failing) {
			struct logline *l = log_begin(LOG_WARN, "upstream name look-up failed");

			log_str(l, "profile", p->name);
			log_str(l, "host", p->host);
			log_str(l, "error", err ? why : "no usable address");
			log_int(l, "endpoints_kept",
				(long long)endpoints_count(guard_endpoints(w->g)));
			log_end(l);
			w->failing = 1;
		}
	} else {
		guard_set_endpoints(w->g, names, k, clock_now_us());
		if (w->failing) {
			struct logline *l =
			    log_begin(LOG_INFO, "upstream name look-up works again");

			log_str(l, "profile", p->name);
			log_str(l, "host", p->host);
			log_int(l, "endpoints", (long long)k);
			log_end(l);
			w->failing = 0;
		}
	}
	arm(w);
}

static void look_up(struct watch *w)
{
	w->q = resolver_lookup(w->d->resolver, w->p->host, on_answer, w);
	if (!w->q)
		arm(w); /* out of memory: try again at the next round */
}

/* A changed hosts file is read again: the resolver reads it once. When
 * the new one cannot be built, the old one goes on. */
static void refresh_hosts(struct discovery *d)
{
	struct timespec now = mtime_of(d->built->dns.hosts_file);
	struct resolver *r;

	if (now.tv_sec == d->hosts_mtime.tv_sec && now.tv_nsec == d->hosts_mtime.tv_nsec)
		return;
	r = new_resolver(d, d->built);
	if (!r) {
		d->hosts_mtime = now; /* logged once, not at every round */
		return;
	}
	adopt_resolver(d, r, d->built);
	for (size_t i = 0; i < d->nwatches; i++) {
		struct watch *w = &d->watches[i];

		if (w->timer && !evtimer_pending(w->timer, NULL))
			look_up(w); /* its query was cancelled with the old resolver */
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;

	(void)fd;
	(void)what;
	refresh_hosts(w->d);
	if (!w->q && !evtimer_pending(w->timer, NULL))
		look_up(w);
}

static void free_watches(struct discovery *d)
{
	for (size_t i = 0; i < d->nwatches; i++) {
		resolve_cancel(d->watches[i].q);
		if (d->watches[i].timer)
			event_free(d->watches[i].timer);
	}
	free(d->watches);
	d->watches = NULL;
	d->nwatches = 0;
}

/* 1 when the profile's upstream name needs a look-up: no addresses, and
 * a host that is not a numeric address. */
static int needs_look_up(const struct profile *p)
{
	return !p->naddresses && !p->url_endpoint[0];
}

/* The endpoints of p that need no look-up, set at once; a profile whose
 * name changed loses the old name's set until the new one's answer. */
static void set_static(const struct profile *p, struct guard *g, const struct config *old)
{
	const struct profile *before =
	    old ? config_find_profile(old, p->name, strlen(p->name)) : NULL;
	uint64_t now = clock_now_us();

	if (p->naddresses) {
		guard_set_endpoints(g, (const char *const *)p->addresses, p->naddresses, now);
	} else if (!needs_look_up(p)) {
		const char *one = p->url_endpoint;

		guard_set_endpoints(g, &one, 1, now);
	} else if (before && (before->naddresses || strcmp(before->host, p->host) != 0 ||
			      before->port != p->port)) {
		guard_set_endpoints(g, NULL, 0, now);
	}
}

/* Watches for cfg's profiles that need a look-up (n of them), their
 * timers made; NULL on OOM. */
static struct watch *new_watches(struct discovery *d, const struct config *cfg,
				 struct guard *const *guards_by_profile, size_t n)
{
	struct watch *ws = calloc(n, sizeof(*ws));
	size_t k = 0;

	if (!ws)
		return NULL;
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		if (!needs_look_up(&cfg->profiles[i]))
			continue;
		ws[k] = (struct watch){ .d = d, .g = guards_by_profile[i], .p = &cfg->profiles[i] };
		ws[k].timer = evtimer_new(d->base, on_timer, &ws[k]);
		if (!ws[k++].timer)
			goto fail;
	}
	return ws;
fail:
	for (size_t i = 0; i < k; i++)
		if (ws[i].timer)
			event_free(ws[i].timer);
	free(ws);
	return NULL;
}

int discovery_configure(struct discovery *d, const struct config *cfg,
			struct guard *const *guards_by_profile)
{
	struct config *old = d->cfg;
	struct resolver *r = NULL;
	struct watch *ws = NULL;
	size_t n = 0;

	for (size_t i = 0; i < cfg->nprofiles; i++)
		n += needs_look_up(&cfg->profiles[i]);
	/* Everything that can fail comes first: a failed reload leaves the
	 * look-ups of the configuration before going on. */
	if (n && (!d->resolver || !config_dns_equal(&d->built->dns, &cfg->dns))) {
		r = new_resolver(d, cfg);
		if (!r)
			return -EINVAL;
	}
	if (n) {
		ws = new_watches(d, cfg, guards_by_profile, n);
		if (!ws) {
			resolver_free(r);
			return -ENOMEM;
		}
	}
	free_watches(d);
	if (r)
		adopt_resolver(d, r, cfg);
	for (size_t i = 0; i < cfg->nprofiles; i++)
		set_static(&cfg->profiles[i], guards_by_profile[i], old);
	d->cfg = config_ref((struct config *)cfg);
	config_unref(old);
	d->watches = ws;
	d->nwatches = n;
	for (size_t i = 0; i < n; i++)
		look_up(&ws[i]);
	return 0;
}

void discovery_free(struct discovery *d)
{
	if (!d)
		return;
	free_watches(d);
	resolver_free(d->resolver);
	config_unref(d->built);
	config_unref(d->cfg);
	free(d);
}

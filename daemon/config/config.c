/* The configuration as a whole: loading a file or a string into an
 * immutable struct config (every error collected with its position, so
 * that `braced -t` reports them all at once), the top-level keys, the
 * built-in values, reference counting and the lookup of a profile. The
 * keys themselves are read by config_keys.c's table walker. */
#include "config.h"
#include "config_internal.h"
#include "names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define L_(f) offsetof(struct config, f)

static const struct key log_keys[] = {
	K_ENUM("format", L_(log_format), log_format_names),
	K_ENUM("level", L_(log_level), log_level_names),
	K_BOOL("access", L_(log_access)),
	K_END,
};

static const struct key limits_keys[] = {
	K_SIZE("max_request_body", L_(max_request_body), 0),
	K_SIZE("max_response_body", L_(max_response_body), 0),
	K_SIZE("max_header_size", L_(max_header_size), 1024),
	K_UINT("max_connections", L_(max_connections), 1, 1000000),
	K_UINT("max_inflight", L_(max_inflight), 1, 1000000),
	K_SIZE("max_validated_body", L_(max_validated_body), 0),
	K_SIZE_IN("stream_buffer", L_(stream_buffer), CONFIG_STREAM_BUFFER_MIN,
		  CONFIG_STREAM_BUFFER_MAX),
	K_SIZE("retry_buffer", L_(retry_buffer), 0),
	K_SIZE("max_buffered", L_(max_buffered), 0),
	K_DURATION("header_timeout", L_(header_timeout_ms), 0, KEY_POSITIVE),
	K_DURATION("body_timeout", L_(body_timeout_ms), 0, KEY_POSITIVE),
	K_DURATION("idle_timeout", L_(idle_timeout_ms), 0, KEY_POSITIVE),
	K_END,
};

#define CS(f) (offsetof(struct config, cache) + offsetof(struct cache_setting, f))

static const struct key cache_store_keys[] = {
	K_SIZE("max_bytes", CS(max_bytes), 0),
	K_SIZE("max_entry", CS(max_entry), 1),
	K_END,
};

static int profile_cmp(const void *a, const void *b)
{
	return strcmp(((const struct profile *)a)->name, ((const struct profile *)b)->name);
}

static void parse_defaults(struct loader *L, const struct ynode *v, void *dst)
{
	struct config *cfg = dst;
	const char *k;
	const struct ynode *dv;

	if (expect_kind(L, v, YNODE_MAP, "defaults") < 0)
		return;
	FOREACH_ENTRY(v, i, k, dv)
	{
		if (!keys_apply(L, policy_keys, "", k, dv, &cfg->defaults))
			unknown_key(L, v->keys[i], "defaults",
				    (const struct key *const[]){ policy_keys, NULL });
	}
	check_policy(L, &cfg->defaults, v, "defaults");
}

/* An explicit empty map is a daemon that answers 404 unknown_profile
 * until one is added (the packaged template). */
static void parse_profiles(struct loader *L, const struct ynode *v, void *dst)
{
	struct config *cfg = dst;

	if (expect_kind(L, v, YNODE_MAP, "profiles") < 0 || v->n == 0)
		return;
	if (v->n > CONFIG_MAX_PROFILES) {
		err_at(L, v, "more than %d profiles", CONFIG_MAX_PROFILES);
		return;
	}
	cfg->profiles = calloc(v->n, sizeof(*cfg->profiles));
	if (!cfg->profiles)
		return;
	for (size_t i = 0; i < v->n; i++)
		parse_profile(L, v->keys[i], v->items[i], &cfg->profiles[cfg->nprofiles++]);
	qsort(cfg->profiles, cfg->nprofiles, sizeof(*cfg->profiles), profile_cmp);
	for (size_t i = 0; i < cfg->nprofiles; i++)
		cfg->profiles[i].index = (unsigned)i;
}

/* The top level, read in this order whatever the file's: admin is checked
 * against the listeners, and profiles start from the defaults. */
static const struct key root_keys[] = {
	K_CUSTOM("listen", parse_listeners),
	K_CUSTOM("admin", parse_admin),
	K_DURATION("shutdown_grace", L_(shutdown_grace_ms), 0, 0),
	K_MAP("log", 0, log_keys),
	K_MAP("limits", 0, limits_keys),
	K_CUSTOM("fleet", parse_fleet),
	K_CUSTOM("dns", parse_dns),
	K_MAP("cache", 0, cache_store_keys),
	K_CUSTOM("defaults", parse_defaults),
	K_CUSTOM("profiles", parse_profiles),
	K_END,
};

/* Nothing braced holds whole may be larger than the budget of all it
 * holds: it would wait for memory forever. */
static void check_buffered(struct loader *L, const struct ynode *root)
{
	const struct config *cfg = L->cfg;
	const struct ynode *limits = ynode_get(root, "limits");
	const struct ynode *at = limits ? ynode_get(limits, "max_buffered") : NULL;

	if (!at)
		at = limits ? limits : root;
	static const struct {
		size_t offset;
		int strict; /* the budget must be larger, not only as large */
		const char *name, *what;
	} held[] = {
		{ offsetof(struct config, retry_buffer), 0, "retry_buffer",
		  "a request body held for retries" },
		{ offsetof(struct config, max_validated_body), 1, "max_validated_body",
		  "a body held for its schema" },
		{ offsetof(struct config, max_response_body), 0, "max_response_body",
		  "an answer held for its schema" },
	};

	for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
		uint64_t v = *(const uint64_t *)((const char *)cfg + held[i].offset);

		if (v > cfg->max_buffered || (held[i].strict && v == cfg->max_buffered))
			err_at(
			    L, at,
			    "limits.max_buffered (%llu bytes) must be %s limits.%s (%llu bytes): "
			    "%s must fit in it",
			    (unsigned long long)cfg->max_buffered,
			    held[i].strict ? "larger than" : "at least", held[i].name,
			    (unsigned long long)v, held[i].what);
	}
}

static void parse_root(struct loader *L, const struct ynode *root)
{
	const struct ynode *v;

	if (expect_kind(L, root, YNODE_MAP, "the configuration") < 0)
		return;
	check_keys(L, root, "the configuration", root_keys);
	for (const struct key *k = root_keys; k->name; k++)
		if ((v = ynode_get(root, k->name)))
			keys_apply(L, root_keys, "", k->name, v, L->cfg);
	check_buffered(L, root);
	if (L->cfg->cache.max_bytes && L->cfg->cache.max_entry > L->cfg->cache.max_bytes)
		err_at(L, ynode_get(root, "cache") ? ynode_get(root, "cache") : root,
		       "cache.max_entry (%llu bytes) is larger than cache.max_bytes (%llu bytes)",
		       (unsigned long long)L->cfg->cache.max_entry,
		       (unsigned long long)L->cfg->cache.max_bytes);
	check_shared_rate(L, ynode_get(root, "profiles") ? ynode_get(root, "profiles") : root);
	/* An absent `profiles` is a mistake. */
	if (!ynode_get(root, "profiles"))
		err_at(L, root, "no profiles are configured (write 'profiles: {}' for none)");
}

static struct config *config_new(const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->refs = 1;
	cfg->path = strdup(path);
	cfg->admin_enabled = 1;
	parse_listen(
	    &(struct loader){ .path = path },
	    &(struct ynode){ .kind = YNODE_SCALAR, .value = (char *)"127.0.0.1:7071", .len = 14 },
	    &cfg->admin);
	cfg->shutdown_grace_ms = 10000;
	cfg->log_format = LOG_FORMAT_JSON;
	cfg->log_level = LOG_INFO;
	cfg->log_access = 1;
	cfg->max_request_body = 0; /* no limit: bodies stream (SPEC 3.1) */
	cfg->max_response_body = 8 * 1024 * 1024;
	cfg->max_header_size = 16 * 1024;
	cfg->max_validated_body = 2 * 1024 * 1024;
	cfg->stream_buffer = 256 * 1024;
	cfg->cache.max_entry = 1024 * 1024;
	cfg->retry_buffer = 1024 * 1024;
	cfg->max_buffered = 64 * 1024 * 1024;
	cfg->max_connections = 4096;
	cfg->max_inflight = 10000;
	cfg->header_timeout_ms = 10000;
	cfg->body_timeout_ms = 30000;
	cfg->idle_timeout_ms = 60000;
	cfg->fleet.key_prefix = strdup("braced:");
	if (!cfg->fleet.key_prefix) {
		free(cfg->path);
		free(cfg);
		return NULL;
	}
	cfg->fleet.share = FLEET_SHARE_COOLDOWN | FLEET_SHARE_BREAKER | FLEET_SHARE_BUDGET;
	cfg->fleet.timeout_ms = 50;
	cfg->fleet.sync_interval_ms = 100;
	/* Like the C library; a machine without the file looks up by DNS. */
	if (access("/etc/hosts", R_OK) == 0)
		cfg->dns.hosts_file = strdup("/etc/hosts");
	config_builtin_policy(&cfg->defaults);
	return cfg;
}

static void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	for (size_t i = 0; i < cfg->nlisteners; i++)
		listener_release(&cfg->listeners[i]);
	listener_release(&cfg->admin);
	dns_release(&cfg->dns);
	config_fleet_release(&cfg->fleet);
	for (size_t i = 0; i < cfg->nprofiles; i++)
		profile_release(&cfg->profiles[i]);
	free(cfg->profiles);
	free(cfg);
}

/* Every rate_limit of cfg carries its load's number: a limiter follows
 * the newest configuration, not the requests still running under an
 * older one (pace.c). Loads happen on the loop's thread, one at a time. */
static void stamp_generation(struct config *cfg)
{
	static uint64_t loads;
	uint64_t gen = ++loads;

	cfg->defaults.rate_limit.generation = gen;
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		struct profile *p = &cfg->profiles[i];

		p->policy.rate_limit.generation = gen;
		for (size_t r = 0; r < p->nroutes; r++)
			p->routes[r].policy.rate_limit.generation = gen;
	}
}

static struct config *finish(struct loader *L, struct ynode *root)
{
	struct config *cfg = L->cfg;

	if (root) {
		parse_root(L, root);
		ynode_free(root);
	}
	if (cfg->nlisteners == 0 && L->errs->count == 0) {
		if (parse_listen(L,
				 &(struct ynode){ .kind = YNODE_SCALAR,
						  .line = 1,
						  .col = 1,
						  .value = (char *)"127.0.0.1:7070",
						  .len = 14 },
				 &cfg->listeners[0]) == 0)
			cfg->nlisteners = 1;
	}
	if (L->errs->count > 0) {
		config_errors_sort(L->errs);
		config_free(cfg);
		return NULL;
	}
	stamp_generation(cfg);
	return cfg;
}

/* Loads text (len bytes), or the file at path when text is NULL. */
static struct config *load(const char *path, const char *text, size_t len,
			   struct config_errors *errs)
{
	struct loader L = { .path = path, .errs = errs };
	struct ynode *root = NULL;
	unsigned line, col;
	char msg[256];
	int r;

	L.cfg = config_new(path);
	if (!L.cfg)
		return NULL;
	if (text)
		r = ytree_load_string(text, len, &root, msg, sizeof(msg), &line, &col);
	else
		r = ytree_load_file(path, &root, msg, sizeof(msg), &line, &col);
	if (r < 0) {
		err_at(&L, &(struct ynode){ .line = line ? line : 1, .col = col ? col : 1 }, "%s",
		       msg);
		root = NULL;
	}
	return finish(&L, root);
}

struct config *config_load_string(const char *path, const char *text, size_t len,
				  struct config_errors *errs)
{
	return load(path, text, len, errs);
}

struct config *config_load(const char *path, struct config_errors *errs)
{
	return load(path, NULL, 0, errs);
}

struct config *config_ref(struct config *cfg)
{
	cfg->refs++;
	return cfg;
}

void config_unref(struct config *cfg)
{
	if (cfg && --cfg->refs == 0)
		config_free(cfg);
}

const struct profile *config_find_profile(const struct config *cfg, const char *name, size_t len)
{
	size_t lo = 0, hi = cfg->nprofiles;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *pn = cfg->profiles[mid].name;
		size_t plen = strlen(pn);
		int c = memcmp(pn, name, plen < len ? plen : len);

		if (c == 0)
			c = plen < len ? -1 : plen > len;
		if (c == 0)
			return &cfg->profiles[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* fleet (SPEC 4.9): the Redis that instances share state through, how
 * they sign it, and what they share; and the copy of these settings the
 * fleet client keeps across reloads, its secrets zeroed when released. */
#include "config_internal.h"
#include "ascii.h"
#include "names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

/* Parses fleet.redis: "off", redis://HOST[:PORT][/DB] with a numeric HOST
 * or localhost (no name is resolved on the event loop), or unix:/PATH. */
static void parse_fleet_redis(struct loader *L, const struct ynode *n, void *dst)
{
	struct fleet_setting *f = dst;
	const char *s, *host, *hend, *rest;
	char hostbuf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[sizeof(struct in6_addr)];
	size_t hlen;
	long port = 6379, db = 0;

	if (expect_kind(L, n, YNODE_SCALAR, "fleet.redis") < 0)
		return;
	s = n->value;
	if (strcmp(s, "off") == 0) {
		f->enabled = 0;
		return;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || strlen(s + 5) >= 108) {
			err_at(L, n,
			       "fleet.redis '%s': a unix socket needs an absolute path shorter "
			       "than 108 bytes",
			       s);
			return;
		}
		f->enabled = 1;
		f->unix_socket = 1;
		f->path = strdup(s + 5);
		f->redis = strdup(s);
		return;
	}
	if (strncmp(s, "redis://", 8) != 0) {
		err_at(L, n, "fleet.redis '%s' must be off, redis://HOST:PORT/DB or unix:/PATH", s);
		return;
	}
	host = s + 8;
	if (strchr(host, '@')) {
		err_at(L, n, "fleet.redis: write the password in fleet.password, not in the URL");
		return;
	}
	if (*host == '[') {
		host++;
		hend = strchr(host, ']');
		if (!hend) {
			err_at(L, n, "fleet.redis '%s': unclosed '['", s);
			return;
		}
		rest = hend + 1;
	} else {
		hend = host + strcspn(host, ":/");
		rest = hend;
	}
	hlen = (size_t)(hend - host);
	if (hlen == 0 || hlen >= sizeof(hostbuf)) {
		err_at(L, n, "fleet.redis '%s' has no host", s);
		return;
	}
	memcpy(hostbuf, host, hlen);
	hostbuf[hlen] = '\0';
	if (strcmp(hostbuf, "localhost") == 0)
		snprintf(hostbuf, sizeof(hostbuf), "127.0.0.1");
	if (inet_pton(AF_INET, hostbuf, addr) != 1 && inet_pton(AF_INET6, hostbuf, addr) != 1) {
		err_at(L, n,
		       "fleet.redis host '%s' must be a numeric address or localhost (no name is "
		       "resolved)",
		       hostbuf);
		return;
	}
	if (*rest == ':') {
		uint64_t v;
		size_t digits;

		if (ascii_parse_uint(rest + 1, 65535, &v, &digits) < 0 || v < 1) {
			err_at(L, n, "fleet.redis '%s': the port must be from 1 to 65535", s);
			return;
		}
		port = (long)v;
		rest += 1 + digits;
	}
	if (*rest == '/' && rest[1]) {
		uint64_t v;
		size_t digits;

		if (ascii_parse_uint(rest + 1, 65535, &v, &digits) < 0 || rest[1 + digits]) {
			err_at(L, n,
			       "fleet.redis '%s': the database must be a number from 0 to 65535",
			       s);
			return;
		}
		db = (long)v;
		rest += 1 + digits;
	} else if (*rest == '/') {
		rest++;
	}
	if (*rest) {
		err_at(L, n, "fleet.redis '%s' must be redis://HOST:PORT/DB", s);
		return;
	}
	f->enabled = 1;
	f->unix_socket = 0;
	f->host = strdup(hostbuf);
	f->port = (uint16_t)port;
	f->db = (uint32_t)db;
	f->redis = strdup(s);
}

static void parse_fleet_username(struct loader *L, const struct ynode *v, void *dst)
{
	struct fleet_setting *f = dst;

	if (get_string(L, v, "fleet.username", &f->username, NULL) == 0 &&
	    (!*f->username || strpbrk(f->username, " \t\r\n")))
		err_at(L, v, "fleet.username must be one word");
}

/* Always a secret, however it was written. */
static void parse_fleet_password(struct loader *L, const struct ynode *v, void *dst)
{
	struct fleet_setting *f = dst;

	if (get_string(L, v, "fleet.password", &f->password, NULL) == 0 &&
	    (!*f->password || strpbrk(f->password, "\r\n")))
		err_at(L, v, "fleet.password must be one non-empty line");
}

/* Always a secret, however it was written: say why, never what. */
static void parse_fleet_secret(struct loader *L, const struct ynode *v, void *dst)
{
	struct fleet_setting *f = dst;

	if (get_string(L, v, "fleet.secret", &f->secret, NULL) < 0)
		return;
	if (!*f->secret) {
		free(f->secret);
		f->secret = NULL;
	} else if (strlen(f->secret) < CONFIG_FLEET_SECRET_MIN ||
		   strlen(f->secret) > CONFIG_FLEET_SECRET_MAX) {
		err_at(L, v, "fleet.secret must be from %d to %d bytes (or \"\" for none)",
		       CONFIG_FLEET_SECRET_MIN, CONFIG_FLEET_SECRET_MAX);
	}
}

static void parse_fleet_prefix(struct loader *L, const struct ynode *v, void *dst)
{
	struct fleet_setting *f = dst;
	size_t len;
	int ok;

	if (get_string(L, v, "fleet.key_prefix", &f->key_prefix, NULL) < 0)
		return;
	len = strlen(f->key_prefix);
	ok = len <= CONFIG_FLEET_PREFIX_MAX;
	for (size_t j = 0; ok && j < len; j++) {
		unsigned char c = (unsigned char)f->key_prefix[j];

		ok = c > 0x20 && c < 0x7f && c != '{' && c != '}';
	}
	if (!ok)
		err_at(L, v,
		       "fleet.key_prefix must be at most %d printable characters without spaces "
		       "or braces",
		       CONFIG_FLEET_PREFIX_MAX);
}

#define F(f) offsetof(struct fleet_setting, f)

static const struct key fleet_keys[] = {
	K_CUSTOM("redis", parse_fleet_redis),
	K_CUSTOM("username", parse_fleet_username),
	K_CUSTOM("password", parse_fleet_password),
	K_CUSTOM("secret", parse_fleet_secret),
	K_CUSTOM("key_prefix", parse_fleet_prefix),
	K_BITS("share", F(share), fleet_share_names, NULL),
	K_DURATION("timeout", F(timeout_ms), 0, KEY_POSITIVE),
	K_DURATION("sync_interval", F(sync_interval_ms), 10, KEY_POSITIVE),
	K_END,
};

void parse_fleet(struct loader *L, const struct ynode *map, void *dst)
{
	struct fleet_setting *f = &((struct config *)dst)->fleet;

	keys_apply_map(L, fleet_keys, "fleet", map, f);
	if (map->kind != YNODE_MAP)
		return;
	if (f->timeout_ms > 10000)
		err_at(L, map, "fleet.timeout must be at most 10s");
	if (f->sync_interval_ms > 60000)
		err_at(L, map, "fleet.sync_interval must be at most 1m");
	if (f->username && !f->password)
		err_at(L, ynode_get(map, "username"), "fleet.username needs fleet.password");
	if (f->enabled && !f->secret)
		warn_at(L, ynode_get(map, "redis"),
			"fleet.redis is set without fleet.secret: any client of that Redis can "
			"publish breaker and cool-down changes every instance applies (see "
			"fleet.secret in braced.yaml(5))");
}

/* The policy of profile p's route r, or p's own for r == p->nroutes, and
 * the name to report it by. */
static const struct policy *policy_at(const struct profile *p, size_t r, const char **ret_where)
{
	if (r == p->nroutes) {
		*ret_where = p->name;
		return &p->policy;
	}
	*ret_where = p->routes[r].label ? p->routes[r].label : p->name;
	return &p->routes[r].policy;
}

/* The first policy of cfg (a profile's or a route's) whose rate_limit is
 * shared through the fleet, or NULL; *ret_where names it. */
static const struct policy *shared_rate(const struct config *cfg, const char **ret_where)
{
	for (size_t i = 0; i < cfg->nprofiles; i++)
		for (size_t r = 0; r <= cfg->profiles[i].nroutes; r++) {
			const struct policy *q = policy_at(&cfg->profiles[i], r, ret_where);

			if (q->rate_limit.share == RATE_SHARE_FLEET)
				return q;
		}
	return NULL;
}

int config_shares_rate(const struct config *cfg)
{
	const char *where;

	return shared_rate(cfg, &where) != NULL;
}

void check_shared_rate(struct loader *L, const struct ynode *at)
{
	const char *where = NULL;

	if (shared_rate(L->cfg, &where) && !L->cfg->fleet.enabled)
		err_at(L, at, "%s: rate_limit.share: fleet needs fleet.redis", where);
	for (size_t i = 0; i < L->cfg->nprofiles; i++)
		for (size_t r = 0; r <= L->cfg->profiles[i].nroutes; r++) {
			const struct policy *q = policy_at(&L->cfg->profiles[i], r, &where);

			/* The documented bound of a shared rate (docs/ratelimits.md). */
			if (q->rate_limit.share == RATE_SHARE_FLEET && q->rate_limit.count &&
			    q->rate_limit.per_us < q->rate_limit.count)
				err_at(L, at,
				       "%s: rate_limit.share: fleet takes rates up to one attempt "
				       "per microsecond",
				       where);
		}
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int config_fleet_equal(const struct fleet_setting *a, const struct fleet_setting *b)
{
	return a->enabled == b->enabled && same_str(a->redis, b->redis) &&
	       same_str(a->username, b->username) && same_str(a->password, b->password) &&
	       same_str(a->secret, b->secret) && same_str(a->key_prefix, b->key_prefix) &&
	       a->share == b->share && a->timeout_ms == b->timeout_ms &&
	       a->sync_interval_ms == b->sync_interval_ms;
}

/* The strings a fleet_setting owns; the secrets are zeroed when freed. */
static const struct {
	size_t offset;
	int secret;
} fleet_strings[] = {
	{ F(redis), 0 },    { F(host), 0 },   { F(path), 0 },       { F(username), 0 },
	{ F(password), 1 }, { F(secret), 1 }, { F(key_prefix), 0 },
};

#define FLEET_NSTRINGS (sizeof(fleet_strings) / sizeof(fleet_strings[0]))
#define FLEET_STRING(s, i) ((char **)((char *)(s) + fleet_strings[i].offset))

void config_fleet_release(struct fleet_setting *f)
{
	for (size_t i = 0; i < FLEET_NSTRINGS; i++) {
		if (fleet_strings[i].secret)
			config_secret_free(*FLEET_STRING(f, i));
		else
			free(*FLEET_STRING(f, i));
	}
	memset(f, 0, sizeof(*f));
}

int config_fleet_copy(struct fleet_setting *dst, const struct fleet_setting *src)
{
	int failed = 0;

	*dst = *src;
	/* Each pointer is replaced, by its copy or by NULL: none is shared. */
	for (size_t i = 0; i < FLEET_NSTRINGS; i++) {
		char **d = FLEET_STRING(dst, i);

		if (*d && !(*d = strdup(*d)))
			failed = 1;
	}
	if (failed) {
		config_fleet_release(dst);
		return -ENOMEM;
	}
	return 0;
}

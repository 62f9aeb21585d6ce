/* Addresses in the configuration: the listeners braced binds (HOST:PORT,
 * [IPV6]:PORT or unix:/PATH), how a reload compares them, the upstream URL
 * of a profile and its endpoints' addresses, and the nameservers of `dns`.
 * Ports are read strictly (ascii_parse_uint). */
#include "config_internal.h"
#include "ascii.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A unix listener's directory must exist and be writable by this user,
 * or binding fails at start: `braced -t` says so first. */
static void check_socket_dir(struct loader *L, const struct ynode *n, const char *path)
{
	char dir[108];
	const char *slash = strrchr(path, '/');
	size_t len = slash && slash != path ? (size_t)(slash - path) : 1;
	struct stat st;

	memcpy(dir, path, len);
	dir[len] = '\0';
	if (stat(dir, &st) != 0)
		err_at(L, n, "the socket directory '%s' cannot be used: %s", dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		err_at(L, n, "the socket directory '%s' is not a directory", dir);
	else if (access(dir, W_OK | X_OK) != 0)
		err_at(L, n, "the socket directory '%s' is not writable: %s", dir, strerror(errno));
}

/* 1 when a and b would bind the same address: the same unix path, or the
 * same host as written and the same port other than 0 (an ephemeral port
 * is never the same twice). */
static int same_listener(const struct listener_setting *a, const struct listener_setting *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->kind == LISTENER_UNIX)
		return a->path && b->path && strcmp(a->path, b->path) == 0;
	return a->port != 0 && a->port == b->port && a->host && b->host &&
	       strcmp(a->host, b->host) == 0;
}

/* The same address, port 0 included: what a reload compares. */
static int listener_equal(const struct listener_setting *a, const struct listener_setting *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->kind == LISTENER_UNIX)
		return a->path && b->path && strcmp(a->path, b->path) == 0;
	return a->port == b->port && a->host && b->host && strcmp(a->host, b->host) == 0;
}

int config_listen_equal(const struct config *a, const struct config *b)
{
	if (a->nlisteners != b->nlisteners)
		return 0;
	for (size_t i = 0; i < a->nlisteners; i++)
		if (!listener_equal(&a->listeners[i], &b->listeners[i]))
			return 0;
	return 1;
}

void config_listen_text(const struct config *cfg, char *buf, size_t len)
{
	size_t used = 0;

	snprintf(buf, len, "%s", cfg->nlisteners ? "" : "none");
	for (size_t i = 0; i < cfg->nlisteners && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
				 cfg->listeners[i].address);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int config_admin_equal(const struct config *a, const struct config *b)
{
	if (a->admin_enabled != b->admin_enabled)
		return 0;
	return !a->admin_enabled || listener_equal(&a->admin, &b->admin);
}

int parse_listen(struct loader *L, const struct ynode *n, struct listener_setting *ls)
{
	const char *s, *colon;
	char *host = NULL;
	uint64_t port;
	size_t digits;

	if (expect_kind(L, n, YNODE_SCALAR, "a listen address") < 0)
		return -EINVAL;
	s = n->value;
	memset(ls, 0, sizeof(*ls));
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || strlen(s + 5) >= 108) {
			err_at(
			    L, n,
			    "'%s': a unix listener needs an absolute path shorter than 108 bytes",
			    s);
			return -EINVAL;
		}
		ls->kind = LISTENER_UNIX;
		ls->address = strdup(s);
		ls->path = strdup(s + 5);
		check_socket_dir(L, n, s + 5);
		return 0;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			err_at(L, n, "'%s' is not HOST:PORT, [IPV6]:PORT or unix:/PATH", s);
			return -EINVAL;
		}
		host = strndup(s + 1, (size_t)(close - s - 1));
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || colon == s || memchr(s, ':', (size_t)(colon - s))) {
			err_at(L, n, "'%s' is not HOST:PORT, [IPV6]:PORT or unix:/PATH", s);
			return -EINVAL;
		}
		host = strndup(s, (size_t)(colon - s));
	}
	if (host[0] == '\0') {
		err_at(L, n, "'%s' has an empty host", s);
		free(host);
		return -EINVAL;
	}
	if (ascii_parse_uint(colon + 1, 65535, &port, &digits) < 0 || colon[1 + digits] != '\0') {
		err_at(L, n, "'%s': port must be a number from 0 to 65535", s);
		free(host);
		return -EINVAL;
	}
	ls->kind = LISTENER_TCP;
	ls->address = strdup(s);
	ls->host = host;
	ls->port = (uint16_t)port;
	return 0;
}

void listener_release(struct listener_setting *ls)
{
	free(ls->address);
	free(ls->host);
	free(ls->path);
	memset(ls, 0, sizeof(*ls));
}

void parse_listeners(struct loader *L, const struct ynode *v, void *dst)
{
	struct config *cfg = dst;

	if (v->kind == YNODE_SEQ) {
		if (v->n == 0)
			err_at(L, v, "listen must name at least one address");
		if (v->n > CONFIG_MAX_LISTENERS) {
			err_at(L, v, "more than %d listeners", CONFIG_MAX_LISTENERS);
			return;
		}
		for (size_t i = 0; i < v->n; i++) {
			struct listener_setting *ls = &cfg->listeners[cfg->nlisteners];

			if (parse_listen(L, v->items[i], ls) < 0)
				continue;
			cfg->nlisteners++;
			for (size_t j = 0; j + 1 < cfg->nlisteners; j++)
				if (same_listener(&cfg->listeners[j], ls))
					err_at(L, v->items[i], "'%s' is listed twice", ls->address);
		}
	} else if (parse_listen(L, v, &cfg->listeners[0]) == 0) {
		cfg->nlisteners = 1;
	}
}

void parse_admin(struct loader *L, const struct ynode *v, void *dst)
{
	struct config *cfg = dst;

	listener_release(&cfg->admin);
	if (v->kind == YNODE_SCALAR && strcmp(v->value, "off") == 0) {
		cfg->admin_enabled = 0;
	} else if (parse_listen(L, v, &cfg->admin) == 0) {
		cfg->admin_enabled = 1;
		for (size_t j = 0; j < cfg->nlisteners; j++)
			if (same_listener(&cfg->listeners[j], &cfg->admin))
				err_at(L, v, "admin '%s' is also an app listener",
				       cfg->admin.address);
	}
}

/* The URL's host (without brackets) and port (dflt when none is written)
 * from rest up to hostend, into p. Returns 0 or -ENOMEM. */
static int split_host_port(const char *rest, const char *hostend, unsigned dflt, struct profile *p)
{
	const char *h = rest, *e = hostend, *colon;
	uint64_t port = dflt;
	size_t digits;

	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(hostend - h));

		colon = close + 1 < hostend ? close + 1 : NULL;
		h++;
		e = close;
	} else {
		colon = memchr(h, ':', (size_t)(hostend - h));
		if (colon)
			e = colon;
	}
	if (colon)
		ascii_parse_uint(colon + 1, 65535, &port, &digits);
	free(p->host);
	p->host = strndup(h, (size_t)(e - h));
	p->port = (uint16_t)port;
	if (!p->host)
		return -ENOMEM;
	if (config_endpoint_text(p->host, strlen(p->host), p->port, p->url_endpoint,
				 sizeof(p->url_endpoint)) < 0)
		p->url_endpoint[0] = '\0';
	return 0;
}

/* Checks an upstream URL and stores it without a trailing slash. */
void parse_upstream(struct loader *L, const struct ynode *n, void *profile)
{
	struct profile *p = profile;
	char *url = NULL;
	const char *rest, *hostend;
	int secret;
	size_t len;

	if (get_string(L, n, "upstream", &url, &secret) < 0)
		return;
	if (strncmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		rest = url + 8;
	else {
		err_at(L, n, "upstream must start with http:// or https://");
		goto fail;
	}
	hostend = rest + strcspn(rest, "/?#");
	if (hostend == rest) {
		err_at(L, n, "upstream has no host");
		goto fail;
	}
	if (memchr(rest, '@', (size_t)(hostend - rest))) {
		err_at(L, n, "upstream must not carry credentials; set them in headers");
		goto fail;
	}
	for (const char *c = rest; c < hostend; c++) {
		if (!(ascii_is_tchar((unsigned char)*c) || *c == ':' || *c == '[' || *c == ']')) {
			err_at(L, n, "upstream host has an invalid character");
			goto fail;
		}
	}
	{
		const char *colon = NULL;
		const char *c = rest;

		if (*c == '[') {
			c = memchr(rest, ']', (size_t)(hostend - rest));
			if (!c) {
				err_at(L, n, "upstream has an unterminated IPv6 address");
				goto fail;
			}
		}
		colon = memchr(c, ':', (size_t)(hostend - c));
		if (colon) {
			uint64_t port;
			size_t digits;

			if (ascii_parse_uint(colon + 1, 65535, &port, &digits) < 0 ||
			    colon + 1 + digits != hostend || port < 1) {
				err_at(L, n, "upstream port must be a number from 1 to 65535");
				goto fail;
			}
		}
	}
	if (strchr(hostend, '?') || strchr(hostend, '#')) {
		err_at(L, n, "upstream must not have a query or fragment");
		goto fail;
	}
	for (const char *c = hostend; *c; c++) {
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
			err_at(L, n, "upstream path has a space or a non-ASCII byte");
			goto fail;
		}
	}
	len = strlen(url);
	while (len > 0 && url[len - 1] == '/' && url + len - 1 >= hostend)
		url[--len] = '\0';
	if (split_host_port(rest, hostend, url[4] == 's' ? 443 : 80, p) < 0) {
		err_at(L, n, "out of memory");
		goto fail;
	}
	free(p->upstream);
	p->upstream = url;
	p->upstream_secret = secret;
	return;
fail:
	free(url);
}

/* "ADDR:PORT" of a numeric address text (IPv4, or IPv6 with or without
 * brackets) and a port, as inet_ntop writes it, in out (size bytes).
 * Returns 0, or -EINVAL when host is not a numeric address. */
int config_endpoint_text(const char *host, size_t host_len, unsigned port, char *out, size_t size)
{
	char addr[64], text[INET6_ADDRSTRLEN];
	unsigned char bin[16];
	int v6;

	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		host++;
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, host, host_len);
	addr[host_len] = '\0';
	v6 = inet_pton(AF_INET6, addr, bin) == 1;
	if (!v6 && inet_pton(AF_INET, addr, bin) != 1)
		return -EINVAL;
	if (!inet_ntop(v6 ? AF_INET6 : AF_INET, bin, text, sizeof(text)))
		return -EINVAL;
	if ((size_t)snprintf(out, size, v6 ? "[%s]:%u" : "%s:%u", text, port) >= size)
		return -EINVAL;
	return 0;
}

/* addresses: [ADDR:PORT, ...], numeric addresses only (a name would need
 * the look-up that addresses replaces). */
void parse_addresses(struct loader *L, const struct ynode *v, void *profile)
{
	struct profile *p = profile;

	if (expect_kind(L, v, YNODE_SEQ, "addresses") < 0)
		return;
	if (v->n == 0 || v->n > CONFIG_MAX_ADDRESSES) {
		err_at(L, v, "addresses takes from 1 to %d entries", CONFIG_MAX_ADDRESSES);
		return;
	}
	p->addresses = calloc(v->n, sizeof(*p->addresses));
	if (!p->addresses) {
		err_at(L, v, "out of memory");
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct ynode *n = v->items[i];
		const char *s, *colon;
		char text[ENDPOINT_NAME_MAX];
		uint64_t port;
		size_t digits;

		if (expect_kind(L, n, YNODE_SCALAR, "an address") < 0)
			continue;
		s = n->value;
		colon = strrchr(s, ':');
		if (!colon || ascii_parse_uint(colon + 1, 65535, &port, &digits) < 0 ||
		    colon[1 + digits] != '\0' || port < 1) {
			err_at(L, n, "address '%s' must be ADDR:PORT with a port from 1 to 65535",
			       s);
			continue;
		}
		if ((s[0] != '[' && memchr(s, ':', (size_t)(colon - s))) ||
		    config_endpoint_text(s, (size_t)(colon - s), (unsigned)port, text,
					 sizeof(text)) < 0) {
			err_at(L, n,
			       "address '%s' must be a numeric IPv4 or [IPv6] address with a port "
			       "(a name is looked up from the upstream URL instead)",
			       s);
			continue;
		}
		for (size_t j = 0; j < p->naddresses; j++) {
			if (strcmp(p->addresses[j], text) == 0) {
				err_at(L, n, "address '%s' is given twice", s);
				goto next;
			}
		}
		p->addresses[p->naddresses] = strdup(text);
		if (!p->addresses[p->naddresses]) {
			err_at(L, n, "out of memory");
			return;
		}
		p->naddresses++;
	next:;
	}
}

/* dns.nameservers: "IP" or "IP:PORT" ("[IPV6]:PORT"), numeric. */
static void parse_nameservers(struct loader *L, const struct ynode *v, void *dst)
{
	struct dns_setting *d = dst;

	if (expect_kind(L, v, YNODE_SEQ, "dns.nameservers") < 0)
		return;
	if (v->n > CONFIG_MAX_NAMESERVERS) {
		err_at(L, v, "dns.nameservers takes at most %d entries", CONFIG_MAX_NAMESERVERS);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct ynode *n = v->items[i];
		const char *s, *colon, *host_end;
		char text[ENDPOINT_NAME_MAX];
		uint64_t port = 53;
		size_t digits;

		if (expect_kind(L, n, YNODE_SCALAR, "a nameserver") < 0)
			continue;
		s = n->value;
		colon = strrchr(s, ':');
		/* A bare IPv6 address has colons but no port. */
		if (colon && (s[0] == '[' || !memchr(s, ':', (size_t)(colon - s)))) {
			host_end = colon;
			if (ascii_parse_uint(colon + 1, 65535, &port, &digits) < 0 ||
			    colon[1 + digits] != '\0' || port < 1) {
				err_at(L, n,
				       "nameserver '%s': port must be a number from 1 to 65535", s);
				continue;
			}
		} else {
			host_end = s + strlen(s);
		}
		if (config_endpoint_text(s, (size_t)(host_end - s), (unsigned)port, text,
					 sizeof(text)) < 0) {
			err_at(L, n,
			       "nameserver '%s' must be a numeric IP address, with a port or not",
			       s);
			continue;
		}
		d->nameservers[d->nnameservers] = strdup(text);
		if (!d->nameservers[d->nnameservers]) {
			err_at(L, n, "out of memory");
			return;
		}
		d->nnameservers++;
	}
}

static void parse_hosts_file(struct loader *L, const struct ynode *v, void *dst)
{
	struct dns_setting *d = dst;
	char *path = NULL;
	int secret = 0;

	if (get_string(L, v, "dns.hosts_file", &path, &secret) < 0)
		return;
	if (path[0]) {
		struct stat st;

		/* The resolver reads it on the loop: a FIFO would block it. */
		if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
			err_at(L, v, "dns.hosts_file '%s' cannot be read: %s", path,
			       strerror(errno));
			free(path);
			return;
		}
		if (!S_ISREG(st.st_mode)) {
			err_at(L, v, "dns.hosts_file '%s' is not a regular file", path);
			free(path);
			return;
		}
	}
	free(d->hosts_file);
	d->hosts_file = path[0] ? path : NULL;
	if (!path[0])
		free(path);
}

static const struct key dns_keys[] = {
	K_CUSTOM("nameservers", parse_nameservers),
	K_CUSTOM("hosts_file", parse_hosts_file),
	K_END,
};

void parse_dns(struct loader *L, const struct ynode *map, void *cfg)
{
	struct config *c = cfg;

	keys_apply_map(L, dns_keys, "dns", map, &c->dns);
}

void dns_release(struct dns_setting *d)
{
	for (size_t i = 0; i < d->nnameservers; i++)
		free(d->nameservers[i]);
	free(d->hosts_file);
	memset(d, 0, sizeof(*d));
}

static int str_equal(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int config_dns_equal(const struct dns_setting *a, const struct dns_setting *b)
{
	if (a->nnameservers != b->nnameservers || !str_equal(a->hosts_file, b->hosts_file))
		return 0;
	for (size_t i = 0; i < a->nnameservers; i++)
		if (strcmp(a->nameservers[i], b->nameservers[i]) != 0)
			return 0;
	return 1;
}

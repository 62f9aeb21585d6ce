/* Profiles (SPEC 2): the upstream, the headers set on every call, TLS,
 * the profile's policy over the defaults, and its routes: "METHOD /PATH"
 * patterns, each with a policy over the profile's and schema checks. */
#include "config_internal.h"
#include "pace.h"
#include "headers.h"
#include "names.h"
#include "path.h"
#include "schema.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Room for "profile 'NAME'" in an unknown-key message. */
#define CONFIG_NAME_WHERE_MAX 160

static const struct key request_keys[] = {
	K_CUSTOM("query", NULL),
	K_CUSTOM("body", NULL),
	K_CUSTOM("mode", NULL),
	K_END,
};
static const struct key response_keys[] = {
	K_CUSTOM("statuses", NULL),
	K_CUSTOM("body", NULL),
	K_CUSTOM("mode", NULL),
	K_END,
};
/* The keys of a route besides the policy keys. */
static const struct key route_keys[] = {
	K_CUSTOM("match", NULL),
	K_CUSTOM("request", NULL),
	K_CUSTOM("response", NULL),
	K_END,
};

/* Header names a profile may not set: braced or the transport own them. */
static int header_reserved(const char *name)
{
	return headers_is_hop_by_hop(name) || strcasecmp(name, "Host") == 0 ||
	       strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Expect") == 0 ||
	       strncasecmp(name, "Brace-", 6) == 0;
}

/* A zeroed array for the entries of n, of kind and named what (a plural),
 * each size bytes; NULL when n is not of kind or has more than max
 * entries (reported), or without memory. */
static void *entries_new(struct loader *L, const struct ynode *n, enum ynode_kind kind,
			 const char *what, size_t max, size_t size)
{
	if (expect_kind(L, n, kind, what) < 0)
		return NULL;
	if (n->n > max) {
		err_at(L, n, "more than %zu %s", max, what);
		return NULL;
	}
	return calloc(n->n ? n->n : 1, size);
}

static void parse_headers(struct loader *L, const struct ynode *map, void *profile)
{
	struct profile *p = profile;

	p->headers =
	    entries_new(L, map, YNODE_MAP, "headers", CONFIG_MAX_HEADERS, sizeof(*p->headers));
	if (!p->headers)
		return;
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->keys[i], *v = map->items[i];
		struct header_setting *h = &p->headers[p->nheaders];
		char name[CONFIG_HEADER_NAME_MAX + 1];
		char *value = NULL;
		int secret = 0;

		if (get_header_name(L, k, "header name", name, sizeof(name)) < 0)
			continue;
		if (header_reserved(name)) {
			err_at(L, k, "header '%s' cannot be set by a profile", name);
			continue;
		}
		for (size_t j = 0; j < p->nheaders; j++)
			if (strcasecmp(p->headers[j].name, name) == 0)
				err_at(L, k, "header '%s' is set twice", name);
		if (get_string(L, v, "a header value", &value, &secret) < 0)
			continue;
		if (!headers_value_ok(value)) {
			/* The value may be a secret: say where, never what. */
			err_at(L, v,
			       "header '%s' value contains CR, LF or another control character",
			       name);
			free(value);
			continue;
		}
		h->name = strdup(name);
		h->value = value;
		h->secret = secret;
		p->nheaders++;
	}
}

/* The node a JSON pointer ("/properties/city/maxLength", ~0 and ~1
 * escaped) names inside n, or the deepest node found on the way. */
static const struct ynode *node_at_pointer(const struct ynode *n, const char *ptr, size_t len)
{
	const char *p = ptr, *end = ptr + len;

	while (p < end && *p == '/') {
		const char *tok = p + 1, *stop = memchr(tok, '/', (size_t)(end - tok));
		char key[256];
		size_t k = 0;
		const struct ynode *next = NULL;

		if (!stop)
			stop = end;
		for (const char *c = tok; c < stop && k + 1 < sizeof(key); c++) {
			if (*c == '~' && c + 1 < stop && (c[1] == '0' || c[1] == '1')) {
				key[k++] = c[1] == '0' ? '~' : '/';
				c++;
			} else {
				key[k++] = *c;
			}
		}
		key[k] = '\0';
		if (n->kind == YNODE_MAP) {
			next = ynode_get(n, key);
		} else if (n->kind == YNODE_SEQ) {
			char *e;
			unsigned long i = strtoul(key, &e, 10);

			if (*e == '\0' && k > 0 && i < n->n)
				next = n->items[i];
		}
		if (!next)
			break;
		n = next;
		p = stop;
	}
	return n;
}

/* Converts a schema written in YAML and compiles it, with formats asserted
 * or not; the document is kept in *ret_doc (for /config), the compiled
 * schema in *ret. */
static void parse_schema_doc(struct loader *L, const struct ynode *n, enum schema_formats formats,
			     struct json_object **ret_doc, struct schema **ret)
{
	const struct ynode *bad = NULL;
	struct json_object *o;
	char err[512], dir[PATH_MAX];
	const char *slash;
	int failed;

	if (n->kind != YNODE_MAP && !(n->kind == YNODE_SCALAR && ynode_bool(n, &failed) == 0)) {
		err_at(L, n, "a schema must be a mapping or a boolean");
		return;
	}
	o = ytree_to_json(n, &failed, &bad);
	if (failed) {
		err_at(L, bad ? bad : n, "cannot convert schema to JSON");
		return;
	}
	/* "$ref": "file.json" names files next to the configuration. */
	slash = strrchr(L->path, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - L->path) : 1,
		 slash ? L->path : ".");
	if (slash == L->path)
		snprintf(dir, sizeof(dir), "/");
	json_object_put(*ret_doc);
	schema_free(*ret);
	*ret_doc = o;
	*ret = schema_compile_flags(
	    o, dir, formats == SCHEMA_FORMATS_ASSERT ? SCHEMA_ASSERT_FORMATS : 0, err, sizeof(err));
	if (!*ret) {
		/* "#/pointer: message": report at the keyword when it is in this file. */
		const struct ynode *at = n;

		if (err[0] == '#') {
			size_t plen = strcspn(err + 1, ":");

			at = node_at_pointer(n, err + 1, plen);
		}
		err_at(L, at, "invalid schema: %s", err);
	}
}

static void parse_schema_setting(struct loader *L, const struct ynode *map,
				 enum schema_formats formats, struct schema_setting *s,
				 int response)
{
	const char *k;
	const struct ynode *v;
	int e;

	if (expect_kind(L, map, YNODE_MAP, response ? "response" : "request") < 0)
		return;
	s->line = map->line;
	s->col = map->col;
	check_keys(L, map, response ? "response" : "request",
		   response ? response_keys : request_keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "mode")) {
			if (get_enum(L, v, "mode", schema_mode_names, &e) == 0)
				s->mode = (enum schema_mode)e;
		} else if (!strcmp(k, "statuses")) {
			get_statuses(L, v, "response.statuses", 100, 599, s->statuses);
		} else if (!strcmp(k, "query")) {
			parse_schema_doc(L, v, formats, &s->query, &s->query_schema);
		} else if (!strcmp(k, "body")) {
			parse_schema_doc(L, v, formats, &s->body, &s->body_schema);
		}
	}
}

static void schema_setting_release(struct schema_setting *s)
{
	json_object_put(s->query);
	json_object_put(s->body);
	schema_free(s->query_schema);
	schema_free(s->body_schema);
	s->query = s->body = NULL;
	s->query_schema = s->body_schema = NULL;
}

static void route_release(struct route *r)
{
	free(r->label);
	for (size_t i = 0; i < r->nsegments; i++)
		free(r->segments[i]);
	free(r->segments);
	schema_setting_release(&r->request);
	schema_setting_release(&r->response);
	memset(r, 0, sizeof(*r));
}

/* 1 when a match segment is ':' and a name, as other routers write a
 * placeholder that braced writes '{name}'. */
static int is_colon_placeholder(const char *seg, size_t len)
{
	if (len < 2 || seg[0] != ':' || !(isalpha((unsigned char)seg[1]) || seg[1] == '_'))
		return 0;
	for (size_t i = 2; i < len; i++)
		if (!isalnum((unsigned char)seg[i]) && seg[i] != '_')
			return 0;
	return 1;
}

/* Splits the normalized path of a match into r's segments. */
static int parse_match_path(struct loader *L, const struct ynode *n, const char *path,
			    struct route *r)
{
	const char *p;

	for (p = path; *p == '/';) {
		const char *start = p + 1, *end = start + strcspn(start, "/");
		size_t len = (size_t)(end - start);

		if (len == 2 && start[0] == '*' && start[1] == '*') {
			if (*end != '\0') {
				err_at(L, n, "'/**' may only end a match pattern");
				return -EINVAL;
			}
			r->rest = 1;
			break;
		}
		if (len > 0 && start[0] == '{' &&
		    (start[len - 1] != '}' || len < 3 || memchr(start + 1, '{', len - 1))) {
			err_at(L, n, "a '{name}' placeholder must fill a whole path segment");
			return -EINVAL;
		}
		if (memchr(start, ' ', len) || memchr(start, '?', len)) {
			err_at(L, n, "match path must not contain spaces or a query");
			return -EINVAL;
		}
		if (is_colon_placeholder(start, len)) {
			/* Express and OpenAPI-ish spellings: a literal ':id' would
			 * match only the path segment ":id", never an id. */
			err_at(L, n, "'%.*s' is not a placeholder: write '{%.*s}'", (int)len, start,
			       (int)len - 1, start + 1);
			return -EINVAL;
		}
		r->segments[r->nsegments] = strndup(start, len);
		if (!r->segments[r->nsegments])
			return -ENOMEM;
		r->nsegments++;
		p = end;
	}
	if (*p != '\0' && !r->rest) {
		err_at(L, n, "match path is malformed");
		return -EINVAL;
	}
	return 0;
}

/* Parses "METHOD /PATH" into r. The path is stored in the form requests are
 * matched in (path.h), so that a route written with a trailing slash or an
 * escaped letter means what a request spelled so would. */
static int parse_match(struct loader *L, const struct ynode *n, int fold_case, struct route *r)
{
	const char *s, *sp;
	char *norm;
	size_t nlen;
	int e;

	if (expect_kind(L, n, YNODE_SCALAR, "match") < 0)
		return -EINVAL;
	s = n->value;
	sp = strchr(s, ' ');
	if (!sp || sp[1] != '/') {
		err_at(L, n, "match '%s' must be 'METHOD /PATH' (METHOD may be *)", s);
		return -EINVAL;
	}
	if (sp - s == 1 && s[0] == '*') {
		r->any_method = 1;
	} else {
		char m[16];
		int method;

		if ((size_t)(sp - s) >= sizeof(m)) {
			err_at(L, n, "'%.*s' is not an HTTP method braced knows", (int)(sp - s), s);
			return -EINVAL;
		}
		memcpy(m, s, (size_t)(sp - s));
		m[sp - s] = '\0';
		method = method_parse(m);
		if (method < 0) {
			err_at(L, n, "'%s' is not an HTTP method braced knows", m);
			return -EINVAL;
		}
		r->method = (enum http_method)method;
	}
	r->label = strdup(s);
	r->segments = calloc(strlen(sp) + 1, sizeof(char *));
	norm = malloc(strlen(sp));
	if (!r->label || !r->segments || !norm) {
		free(norm);
		return -ENOMEM;
	}
	e = path_normalize(sp + 1, strlen(sp + 1), fold_case, norm, strlen(sp), &nlen);
	if (e < 0) {
		err_at(L, n,
		       "match path '%s' is refused: an encoded '/', '\\' or NUL, a raw '\\', "
		       "a '%%' without two hex digits, or a '.' or '..' segment",
		       sp + 1);
		free(norm);
		return e;
	}
	e = parse_match_path(L, n, norm, r);
	free(norm);
	return e;
}

static void parse_route(struct loader *L, const struct ynode *map, struct profile *p,
			struct route *r)
{
	const struct ynode *match;
	const char *k;
	const struct ynode *v;
	int touched = 0;

	r->policy = p->policy;
	memset(r->response.statuses + 200, 1, 100);
	r->request.mode = SCHEMA_MODE_ENFORCE;
	r->response.mode = SCHEMA_MODE_ENFORCE;
	if (expect_kind(L, map, YNODE_MAP, "a route") < 0)
		return;
	match = ynode_get(map, "match");
	if (!match)
		err_at(L, map, "route has no 'match'");
	else
		parse_match(L, match, p->fold_case, r);
	FOREACH_ENTRY(map, i, k, v)
	{
		int known = keys_find(route_keys, k) != NULL;

		if (!strcmp(k, "request") || !strcmp(k, "response"))
			continue; /* below, once the route's schema_formats is known */
		else if (!strcmp(k, "circuit_breaker") || !strcmp(k, "endpoints") ||
			 (!strcmp(k, "retry") && v->kind == YNODE_MAP && ynode_get(v, "budget")))
			/* Each is about the whole profile's traffic or its upstream:
			 * a route cannot have its own. */
			err_at(L, !strcmp(k, "retry") ? ynode_get(v, "budget") : map->keys[i],
			       "%s belongs to the profile; a route cannot set it",
			       !strcmp(k, "retry") ? "retry.budget" : k);
		else if (!known && keys_apply(L, policy_keys, "", k, v, &r->policy))
			touched = 1;
		else if (!known)
			unknown_key(L, map->keys[i], "route",
				    (const struct key *const[]){ route_keys, policy_keys, NULL });
	}
	if (touched)
		check_policy(L, &r->policy, map, r->label ? r->label : "route");
	/* A route that sets its own rate_limit has its own limiter (SPEC
	 * 4.12); the others share the profile's. */
	if ((v = ynode_get(map, "rate_limit")) && v->kind == YNODE_MAP) {
		if (ynode_get(v, "rate")) {
			r->policy.rate_limit.scope = r->label ? r->label : "route";
		} else if (ynode_get(v, "burst") || ynode_get(v, "share")) {
			/* Without a rate of its own the route spends the
			 * profile's limiter, whose burst and share are the
			 * profile's. */
			err_at(L,
			       ynode_get(v, "burst") ? ynode_get(v, "burst")
						     : ynode_get(v, "share"),
			       "rate_limit.%s on a route needs its own rate_limit.rate",
			       ynode_get(v, "burst") ? "burst" : "share");
		}
	}
	if ((v = ynode_get(map, "request")))
		parse_schema_setting(L, v, r->policy.schema_formats, &r->request, 0);
	if ((v = ynode_get(map, "response")))
		parse_schema_setting(L, v, r->policy.schema_formats, &r->response, 1);
}

static int valid_profile_name(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > 63 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (size_t i = 1; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

static void parse_ca_file(struct loader *L, const struct ynode *v, void *dst)
{
	struct tls_setting *t = dst;
	int secret = 0;

	if (get_string(L, v, "tls.ca_file", &t->ca_file, &secret) < 0)
		return;
	t->ca_file_secret = secret;
	if (access(t->ca_file, R_OK) != 0)
		err_at(L, v, "tls.ca_file '%s' cannot be read: %s",
		       secret ? "<redacted>" : t->ca_file, strerror(errno));
}

static void parse_routes(struct loader *L, const struct ynode *v, void *profile)
{
	struct profile *p = profile;
	unsigned own_rates = 0;

	p->routes = entries_new(L, v, YNODE_SEQ, "routes", CONFIG_MAX_ROUTES, sizeof(*p->routes));
	if (!p->routes)
		return;
	for (size_t j = 0; j < v->n; j++) {
		struct route *r = &p->routes[p->nroutes++];

		parse_route(L, v->items[j], p, r);
		/* Each has a limiter of its own, beside the profile's. */
		if (r->policy.rate_limit.scope && ++own_rates == PACE_LIMITERS_MAX)
			err_at(L, v->items[j],
			       "profile '%s': at most %d routes may set their own "
			       "rate_limit.rate",
			       p->name, PACE_LIMITERS_MAX - 1);
	}
}

static const struct key tls_keys[] = {
	K_BOOL("verify", offsetof(struct tls_setting, verify)),
	K_CUSTOM("ca_file", parse_ca_file),
	K_END,
};

/* The keys of a profile besides the policy keys. */
static const struct key profile_keys[] = {
	K_CUSTOM("upstream", parse_upstream),
	K_CUSTOM("addresses", parse_addresses),
	K_CUSTOM("headers", parse_headers),
	K_MAP("tls", offsetof(struct profile, tls), tls_keys),
	K_BOOL("routes_only", offsetof(struct profile, routes_only)),
	K_CUSTOM("routes", parse_routes),
	K_ENUM("match_case", offsetof(struct profile, fold_case), match_case_names),
	K_END,
};

void parse_profile(struct loader *L, const struct ynode *key, const struct ynode *map,
		   struct profile *p)
{
	const char *k;
	const struct ynode *v;
	int touched = 0;
	char where[CONFIG_NAME_WHERE_MAX];

	p->name = strdup(key->value);
	p->policy = L->cfg->defaults;
	p->tls.verify = 1;
	if (!valid_profile_name(key->value))
		err_at(L, key, "profile name '%s' must match [a-z0-9][a-z0-9_-]{0,62}", key->value);
	if (expect_kind(L, map, YNODE_MAP, "a profile") < 0)
		return;
	snprintf(where, sizeof(where), "profile '%.100s'", key->value);
	/* Policy keys first, so that routes inherit the whole profile policy. */
	FOREACH_ENTRY(map, i, k, v)
	{
		if (keys_find(profile_keys, k))
			continue;
		if (keys_apply(L, policy_keys, "", k, v, &p->policy))
			touched = 1;
		else
			unknown_key(L, map->keys[i], where,
				    (const struct key *const[]){ profile_keys, policy_keys, NULL });
	}
	/* Inherited values were checked where they were written. */
	if (touched)
		check_policy(L, &p->policy, key, p->name);
	/* Before the routes, whose paths are folded by it. */
	v = ynode_get(map, "match_case");
	if (v)
		keys_apply(L, profile_keys, "", "match_case", v, p);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (strcmp(k, "match_case") != 0)
			keys_apply(L, profile_keys, "", k, v, p);
	}
	if (!p->upstream && !ynode_get(map, "upstream"))
		err_at(L, key, "profile '%s' has no upstream", p->name);
}

void profile_release(struct profile *p)
{
	free(p->name);
	free(p->upstream);
	free(p->host);
	for (size_t i = 0; i < p->naddresses; i++)
		free(p->addresses[i]);
	free(p->addresses);
	for (size_t i = 0; i < p->nheaders; i++) {
		free(p->headers[i].name);
		if (p->headers[i].value)
			explicit_bzero(p->headers[i].value, strlen(p->headers[i].value));
		free(p->headers[i].value);
	}
	free(p->headers);
	free(p->tls.ca_file);
	for (size_t i = 0; i < p->nroutes; i++)
		route_release(&p->routes[i]);
	free(p->routes);
	memset(p, 0, sizeof(*p));
}

/* URI references for "$id" and "$ref" (RFC 3986 section 5: parsing,
 * dot-segment removal, resolution against a base) and the JSON pointers
 * (RFC 6901) their fragments hold. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "schema_internal.h"

void uri_parse(const char *s, struct uri *u)
{
	const char *p = s, *q;

	memset(u, 0, sizeof(*u));
	for (q = s; *q && *q != ':' && *q != '/' && *q != '?' && *q != '#'; q++)
		;
	if (*q == ':' && q > s && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) {
		u->has_scheme = 1;
		u->scheme = s;
		u->scheme_len = (size_t)(q - s);
		p = q + 1;
	}
	if (p[0] == '/' && p[1] == '/') {
		u->has_auth = 1;
		u->auth = p + 2;
		for (q = p + 2; *q && *q != '/' && *q != '?' && *q != '#'; q++)
			;
		u->auth_len = (size_t)(q - u->auth);
		p = q;
	}
	u->path = p;
	for (q = p; *q && *q != '?' && *q != '#'; q++)
		;
	u->path_len = (size_t)(q - p);
	p = q;
	if (*p == '?') {
		u->has_query = 1;
		u->query = p + 1;
		for (q = p + 1; *q && *q != '#'; q++)
			;
		u->query_len = (size_t)(q - u->query);
		p = q;
	}
	if (*p == '#') {
		u->has_frag = 1;
		u->frag = p + 1;
		u->frag_len = strlen(p + 1);
	}
}

/* RFC 3986 5.2.4 remove_dot_segments, appending the result to out; sets
 * *climbed when a ".." had nothing left to remove. */
static void remove_dots(struct strbuf *out, const char *in, size_t n, int *climbed)
{
	size_t start = out->len, i = 0, k;

	while (i < n) {
		if (n - i >= 3 && memcmp(in + i, "../", 3) == 0) {
			*climbed = 1;
			i += 3;
		} else if (n - i >= 2 && memcmp(in + i, "./", 2) == 0) {
			i += 2;
		} else if ((n - i >= 3 && memcmp(in + i, "/./", 3) == 0)) {
			i += 2;
		} else if (n - i == 2 && memcmp(in + i, "/.", 2) == 0) {
			strbuf_add(out, "/", 1);
			i += 2;
		} else if ((n - i >= 4 && memcmp(in + i, "/../", 4) == 0) ||
			   (n - i == 3 && memcmp(in + i, "/..", 3) == 0)) {
			k = out->len;
			if (k == start)
				*climbed = 1;
			while (k > start && out->data[k - 1] != '/')
				k--;
			strbuf_truncate(out, k > start ? k - 1 : start);
			if (n - i == 3) {
				strbuf_add(out, "/", 1);
				i += 3;
			} else {
				i += 3;
			}
		} else if ((n - i == 1 && in[i] == '.') ||
			   (n - i == 2 && memcmp(in + i, "..", 2) == 0)) {
			*climbed |= n - i == 2;
			i = n;
		} else {
			k = i + (in[i] == '/');
			while (k < n && in[k] != '/')
				k++;
			strbuf_add(out, in + i, k - i);
			i = k;
		}
	}
}

/* Resolves ref against the absolute URI base into a malloc'd absolute URI
 * (RFC 3986 5.2.2: pick the target's parts, then compose them once); sets
 * *ret_climbed when a ".." went above the root. NULL on OOM. */
char *uri_resolve(const char *base, const char *ref, int *ret_climbed)
{
	const struct uri *scheme, *auth, *query;
	struct strbuf out, path, merged;
	struct uri b, r;
	char *ret;
	int climbed = 0;
	size_t k;

	strbuf_init(&out, SIZE_MAX);
	strbuf_init(&path, SIZE_MAX);
	strbuf_init(&merged, SIZE_MAX);
	uri_parse(base, &b);
	uri_parse(ref, &r);
	scheme = r.has_scheme ? &r : &b;
	auth = r.has_scheme || r.has_auth ? &r : &b;
	query = &r;
	if (r.has_scheme || r.has_auth || (r.path_len > 0 && r.path[0] == '/')) {
		remove_dots(&path, r.path, r.path_len, &climbed);
	} else if (r.path_len == 0) {
		strbuf_add(&path, b.path, b.path_len);
		if (!r.has_query)
			query = &b;
	} else {
		/* A relative path replaces the base's last segment. */
		if (b.has_auth && b.path_len == 0) {
			strbuf_add(&merged, "/", 1);
		} else {
			for (k = b.path_len; k > 0 && b.path[k - 1] != '/'; k--)
				;
			strbuf_add(&merged, b.path, k);
		}
		strbuf_add(&merged, r.path, r.path_len);
		remove_dots(&path, strbuf_str(&merged), merged.len, &climbed);
	}
	if (scheme->has_scheme) {
		strbuf_add(&out, scheme->scheme, scheme->scheme_len);
		strbuf_add(&out, ":", 1);
	}
	if (auth->has_auth) {
		strbuf_add(&out, "//", 2);
		strbuf_add(&out, auth->auth, auth->auth_len);
	}
	strbuf_add(&out, strbuf_str(&path), path.len);
	if (query->has_query) {
		strbuf_add(&out, "?", 1);
		strbuf_add(&out, query->query, query->query_len);
	}
	if (r.has_frag) {
		strbuf_add(&out, "#", 1);
		strbuf_add(&out, r.frag, r.frag_len);
	}
	strbuf_add(&out, "", 0);
	if (path.failed || merged.failed)
		out.failed = 1;
	strbuf_release(&merged);
	strbuf_release(&path);
	ret = strbuf_steal(&out, NULL);
	if (ret && ret_climbed)
		*ret_climbed = climbed;
	return ret;
}

int uri_percent_decode(char *s)
{
	size_t n;

	return ascii_pct_decode(s, strlen(s), s, ASCII_PCT_REFUSE_NUL, &n);
}

/* Follows the JSON pointer ptr (already percent-decoded) from root. Returns
 * 0 and *ret, or -ENOENT. */
int schema_pointer_walk(struct json_object *root, const char *ptr, struct json_object **ret)
{
	struct json_object *cur = root, *next;
	struct strbuf tok;
	const char *p = ptr, *end;
	char *e;
	size_t i;
	unsigned long idx;
	int r = 0;

	strbuf_init(&tok, SIZE_MAX);
	while (*p == '/') {
		p++;
		for (end = p; *end && *end != '/'; end++)
			;
		strbuf_truncate(&tok, 0);
		strbuf_add(&tok, "", 0);
		for (i = 0; p + i < end; i++) {
			if (p[i] == '~' && p + i + 1 < end &&
			    (p[i + 1] == '0' || p[i + 1] == '1')) {
				strbuf_add(&tok, p[i + 1] == '0' ? "~" : "/", 1);
				i++;
			} else if (p[i] == '~') {
				r = -ENOENT;
				goto out;
			} else {
				strbuf_add(&tok, p + i, 1);
			}
		}
		if (tok.failed) {
			r = -ENOMEM;
			goto out;
		}
		if (json_object_is_type(cur, json_type_object)) {
			if (!json_object_object_get_ex(cur, strbuf_str(&tok), &next)) {
				r = -ENOENT;
				goto out;
			}
		} else if (json_object_is_type(cur, json_type_array)) {
			const char *t = strbuf_str(&tok);

			if (!t[0] || (t[0] == '0' && t[1]) || t[0] < '0' || t[0] > '9') {
				r = -ENOENT;
				goto out;
			}
			errno = 0;
			idx = strtoul(t, &e, 10);
			if (*e || errno || idx >= json_object_array_length(cur)) {
				r = -ENOENT;
				goto out;
			}
			next = json_object_array_get_idx(cur, idx);
		} else {
			r = -ENOENT;
			goto out;
		}
		cur = next;
		p = end;
	}
	if (*p)
		r = -ENOENT;
	else
		*ret = cur;
out:
	strbuf_release(&tok);
	return r;
}

/* Routing a request inside its profile: the first route whose method and
 * path pattern match the request's normalized path (path.h). Runs per
 * request on the routes the configuration built; no allocation. */
#include "route.h"
#include "path.h"

#include <errno.h>
#include <string.h>

/* The first route of p for method whose pattern matches the normalized
 * path (len bytes), or NULL. */
static const struct route *match_method(const struct profile *p, enum http_method method,
					const char *path, size_t len)
{
	for (size_t i = 0; i < p->nroutes; i++) {
		const struct route *r = &p->routes[i];
		const char *s = path, *end = path + len;
		size_t seg = 0;
		int ok = 1;

		if (!r->any_method && r->method != method)
			continue;
		while (ok && seg < r->nsegments) {
			const char *start, *stop;
			size_t slen;

			if (s >= end || *s != '/') {
				ok = 0;
				break;
			}
			start = s + 1;
			stop = memchr(start, '/', (size_t)(end - start));
			if (!stop)
				stop = end;
			slen = (size_t)(stop - start);
			if (r->segments[seg][0] == '{') {
				ok = slen > 0;
			} else {
				ok = strlen(r->segments[seg]) == slen &&
				     memcmp(r->segments[seg], start, slen) == 0;
			}
			s = stop;
			seg++;
		}
		if (ok && (r->rest ? (s == end || *s == '/') : s == end))
			return r;
	}
	return NULL;
}

int route_match(const struct profile *p, enum http_method method, const char *raw, size_t rawlen,
		const struct route **ret_route)
{
	char path[ROUTE_MAX_PATH];
	size_t len;
	int e;

	if (rawlen >= sizeof(path))
		return -ENOSPC;
	e = path_normalize(raw, rawlen, p->fold_case, path, sizeof(path), &len);
	if (e < 0)
		return e;
	/* "/profile" and "/profile/" reach the same upstream URL. */
	if (len == 0)
		path[len++] = '/';
	*ret_route = match_method(p, method, path, len);
	/* A GET route also answers HEAD (RFC 9110 9.3.2), after routes
	 * written for HEAD itself. */
	if (!*ret_route && method == METHOD_HEAD)
		*ret_route = match_method(p, METHOD_GET, path, len);
	return 0;
}

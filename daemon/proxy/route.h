/* Routing a request to one of its profile's routes (config.h's struct
 * route): "METHOD /PATH" patterns with {name} segments and a final / **,
 * matched on the normalized path. */
#ifndef BRACED_ROUTE_H
#define BRACED_ROUTE_H

#include <stddef.h>

#include "config.h"
#include "method.h"

/* Longest request path (before '?') that routing normalizes, on the stack;
 * the default limits.max_header_size keeps every path below it. */
#define ROUTE_MAX_PATH 16384

/* Finds the first route of the profile p (borrowed) matching method and the
 * path (len bytes relative to the profile, starting with '/' or empty,
 * without query). The path is matched in its path_normalize() form, folded
 * when the profile's match_case is insensitive; an empty path is the root.
 * A HEAD request no route names matches the first GET route that would
 * (RFC 9110 9.3.2). Returns 0 with *ret_route set to the route (borrowed)
 * or to NULL when none matches; -EINVAL for a path path_normalize refuses,
 * -ENOSPC for one longer than ROUTE_MAX_PATH. *ret_route is untouched on
 * failure. */
int route_match(const struct profile *p, enum http_method method, const char *path, size_t len,
		const struct route **ret_route);

#endif

/* Configuration loader: walks the YAML tree of ytree.c, checks every key
 * against the format of SPEC 2, expands ${ENV} and ${file:...} secrets and
 * builds an immutable struct config. Every error is collected with its
 * position so that `braced -t` can report them all at once. */
#include "config.h"
#include "ascii.h"
#include "ytree.h"
#include "units.h"
#include "headers.h"
#include "schema.h"
#include "path.h"
#include "readfile.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

struct loader {
	const char *path;
	struct config_errors *errs;
	struct config *cfg;
};

static void err_at(struct loader *L, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_at(struct loader *L, const struct ynode *n, const char *fmt, ...)
{
	struct config_errors *e = L->errs;
	char msg[512];
	va_list ap;
	char *line;

	if (e->count >= CONFIG_MAX_ERRORS) {
		e->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&line, "%s:%u:%u: %s", L->path, n ? n->line : 1, n ? n->col : 1, msg) < 0)
		return;
	e->line[e->count] = n ? n->line : 1;
	e->col[e->count] = n ? n->col : 1;
	e->lines[e->count++] = line;
}

/* A warning at n: the load goes on. Beyond CONFIG_MAX_WARNINGS, dropped. */
static void warn_at(struct loader *L, const struct ynode *n, const char *msg)
{
	struct config_errors *e = L->errs;
	char *line;

	if (e->nwarnings >= CONFIG_MAX_WARNINGS ||
	    asprintf(&line, "%s:%u:%u: warning: %s", L->path, n ? n->line : 1, n ? n->col : 1,
		     msg) < 0)
		return;
	e->warnings[e->nwarnings++] = line;
}

void config_errors_release(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++) {
		free(errs->lines[i]);
		errs->lines[i] = NULL;
	}
	for (size_t i = 0; i < errs->nwarnings; i++) {
		free(errs->warnings[i]);
		errs->warnings[i] = NULL;
	}
	errs->count = 0;
	errs->dropped = 0;
	errs->nwarnings = 0;
}

void config_builtin_policy(struct policy *p)
{
	static const int statuses[] = { 408, 425, 429, 500, 502, 503, 504 };

	memset(p, 0, sizeof(*p));
	p->timeouts = (struct timeouts){ .connect_ms = 2000,
					 .read_ms = 4000,
					 .write_ms = 2000,
					 .pool_ms = 2000,
					 .attempt_ms = 0,
					 .total_ms = 10000 };
	p->retry.attempts = 4;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		p->retry.statuses[statuses[i]] = 1;
	p->retry.transport = TRANSPORT_CONNECT | TRANSPORT_RESET | TRANSPORT_TIMEOUT;
	p->retry.methods = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD) |
			   METHOD_BIT(METHOD_OPTIONS) | METHOD_BIT(METHOD_PUT) |
			   METHOD_BIT(METHOD_DELETE);
	p->retry.unsafe = UNSAFE_WITH_KEY;
	p->retry.backoff_base_ms = 200;
	p->retry.backoff_max_ms = 3000;
	p->retry.jitter = JITTER_FULL;
	p->retry.retry_after_honor = 1;
	p->retry.retry_after_max_ms = 30000;
	p->retry.budget_ratio = 0.2;
	p->retry.budget_min_per_second = 10;
	p->retry.budget_window_ms = 10000;
	p->retry.on_schema_violation = 0;
	p->breaker = (struct breaker_policy){ .enabled = 1,
					      .window_ms = 10000,
					      .min_requests = 20,
					      .failure_ratio = 0.5,
					      .open_for_ms = 5000,
					      .half_open_probes = 1 };
	p->rate_limit_cooldown = 1;
	strcpy(p->idempotency_header, "Idempotency-Key");
	p->idempotency_methods = METHOD_BIT(METHOD_POST) | METHOD_BIT(METHOD_PATCH);
	strcpy(p->correlation_header, "X-Correlation-ID");
	p->pool_max_connections = 100;
	p->pool_max_idle = 20;
	/* Apps parse their API's own errors: relayed as sent (SPEC 5). */
	p->upstream_errors = UPSTREAM_ERRORS_PASSTHROUGH;
	p->trace_mode = TRACE_PROPAGATE;
	p->schema_formats = SCHEMA_FORMATS_ASSERT;
	p->hedge = (struct hedge_policy){ .delay_ms = 0, .quantile = 0, .max = 1 };
	p->concurrency = (struct concurrency_policy){ .adaptive = 0, .min = 4, .max = 512 };
}

/* ---- scalars ---------------------------------------------------------- */

static int expect_kind(struct loader *L, const struct ynode *n, enum ynode_kind kind,
		       const char *what)
{
	static const char *const kinds[] = { "a scalar", "a mapping", "a list" };

	if (n->kind == kind && !(kind == YNODE_SCALAR && ynode_is_null(n)))
		return 0;
	err_at(L, n, "%s must be %s, not %s", what, kinds[kind],
	       n->kind == YNODE_SCALAR && ynode_is_null(n) ? "null" : kinds[n->kind]);
	return -EINVAL;
}

/* Reads a file named by ${file:...} into *ret (owned by the caller), with
 * the trailing newline removed. Only a regular file (readfile_regular). */
static int read_secret_file(struct loader *L, const struct ynode *n, const char *name, char **ret)
{
	char path[PATH_MAX], why[128], *buf;
	size_t got;
	int r;

	if (name[0] != '/') {
		const char *slash = strrchr(L->path, '/');
		int dirlen = slash ? (int)(slash - L->path) : 1;

		snprintf(path, sizeof(path), "%.*s/%s", dirlen, slash ? L->path : ".", name);
	} else {
		snprintf(path, sizeof(path), "%s", name);
	}
	r = readfile_regular(path, CONFIG_MAX_SECRET_FILE, &buf, &got, why, sizeof(why));
	if (r < 0) {
		err_at(L, n, "secret file '%s': %s", path, why);
		return r;
	}
	if (got > 0 && buf[got - 1] == '\n')
		got--;
	if (got > 0 && buf[got - 1] == '\r')
		got--;
	buf[got] = '\0';
	*ret = buf;
	return 0;
}

/* Expands ${NAME} and ${file:PATH} in a scalar. Returns a new string and sets
 * *ret_secret when anything was substituted; NULL after an error. */
static char *expand(struct loader *L, const struct ynode *n, int *ret_secret)
{
	const char *s = n->value, *p;
	size_t cap = n->len + 1, len = 0;
	char *out;

	*ret_secret = 0;
	if (strlen(s) != n->len) {
		err_at(L, n, "string contains a NUL byte");
		return NULL;
	}
	out = malloc(cap);
	if (!out)
		return NULL;
	for (p = s; *p;) {
		const char *val = NULL;
		char *owned = NULL, name[256];
		const char *end;
		size_t vlen;

		if (p[0] != '$' || p[1] != '{') {
			out[len++] = *p++;
			continue;
		}
		end = strchr(p + 2, '}');
		if (!end || (size_t)(end - p - 2) >= sizeof(name) || end == p + 2) {
			err_at(L, n, "unterminated or empty '${' reference");
			goto fail;
		}
		memcpy(name, p + 2, (size_t)(end - p - 2));
		name[end - p - 2] = '\0';
		if (strncmp(name, "file:", 5) == 0) {
			if (read_secret_file(L, n, name + 5, &owned) < 0)
				goto fail;
			val = owned;
		} else {
			for (const char *c = name; *c; c++) {
				if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') ||
				      (*c >= 'a' && *c <= 'z') ||
				      (c > name && *c >= '0' && *c <= '9'))) {
					err_at(L, n,
					       "'%s' is not a valid environment variable name",
					       name);
					goto fail;
				}
			}
			val = getenv(name);
			if (!val) {
				err_at(L, n, "environment variable '%s' is not set", name);
				goto fail;
			}
		}
		vlen = strlen(val);
		if (len + vlen + strlen(end + 1) + 1 > cap) {
			char *grown;

			cap = len + vlen + strlen(end + 1) + 1;
			grown = realloc(out, cap);
			if (!grown) {
				free(owned);
				goto fail;
			}
			out = grown;
		}
		memcpy(out + len, val, vlen);
		len += vlen;
		free(owned);
		*ret_secret = 1;
		p = end + 1;
	}
	out[len] = '\0';
	if (len > CONFIG_MAX_STRING) {
		err_at(L, n, "string longer than %d bytes", CONFIG_MAX_STRING);
		goto fail;
	}
	return out;
fail:
	free(out);
	return NULL;
}

static int get_string(struct loader *L, const struct ynode *n, const char *what, char **ret,
		      int *ret_secret)
{
	int secret;
	char *s;

	if (expect_kind(L, n, YNODE_SCALAR, what) < 0)
		return -EINVAL;
	s = expand(L, n, &secret);
	if (!s)
		return -EINVAL;
	if (ret_secret)
		*ret_secret = secret;
	free(*ret);
	*ret = s;
	return 0;
}

static int get_bool(struct loader *L, const struct ynode *n, const char *what, int *ret)
{
	int v;

	if (ynode_bool(n, &v) < 0) {
		err_at(L, n, "%s must be true or false", what);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int get_uint(struct loader *L, const struct ynode *n, const char *what, long long min,
		    long long max, uint32_t *ret)
{
	long long v;

	if (ynode_int(n, &v) < 0 || v < min || v > max) {
		err_at(L, n, "%s must be an integer from %lld to %lld", what, min, max);
		return -EINVAL;
	}
	*ret = (uint32_t)v;
	return 0;
}

static int get_ratio(struct loader *L, const struct ynode *n, const char *what, double min,
		     double max, double *ret)
{
	double v;

	if (ynode_number(n, &v) < 0 || v < min || v > max) {
		err_at(L, n, "%s must be a number from %g to %g", what, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int get_duration(struct loader *L, const struct ynode *n, const char *what, uint32_t *ret)
{
	uint64_t ms;
	int r;

	if (expect_kind(L, n, YNODE_SCALAR, what) < 0)
		return -EINVAL;
	r = units_parse_duration(n->value, &ms);
	if (r == -ERANGE) {
		err_at(L, n, "%s '%s' is longer than 24h", what, n->value);
		return r;
	}
	if (r < 0) {
		err_at(L, n, "%s '%s' is not a duration (write e.g. 250ms, 2s, 1m)", what,
		       n->value);
		return r;
	}
	*ret = (uint32_t)ms;
	return 0;
}

/* A duration that must be more than 0 ms; *ret is untouched on error. */
static int get_positive_duration(struct loader *L, const struct ynode *n, const char *what,
				 uint32_t *ret)
{
	uint32_t ms;
	int r = get_duration(L, n, what, &ms);

	if (r < 0)
		return r;
	if (ms == 0) {
		err_at(L, n, "%s must be greater than 0", what);
		return -ERANGE;
	}
	*ret = ms;
	return 0;
}

static int get_size(struct loader *L, const struct ynode *n, const char *what, uint64_t min,
		    uint64_t *ret)
{
	uint64_t v;
	int r;

	if (expect_kind(L, n, YNODE_SCALAR, what) < 0)
		return -EINVAL;
	r = units_parse_size(n->value, &v);
	if (r == -ERANGE) {
		err_at(L, n, "%s '%s' is larger than 1GiB", what, n->value);
		return r;
	}
	if (r < 0) {
		err_at(L, n, "%s '%s' is not a size (write e.g. 65536, 16KiB, 1MiB)", what,
		       n->value);
		return r;
	}
	if (v < min) {
		err_at(L, n, "%s must be at least %llu bytes", what, (unsigned long long)min);
		return -ERANGE;
	}
	*ret = v;
	return 0;
}

static int get_enum(struct loader *L, const struct ynode *n, const char *what,
		    const char *const *names, int *ret)
{
	char list[256] = "";

	if (expect_kind(L, n, YNODE_SCALAR, what) < 0)
		return -EINVAL;
	for (int i = 0; names[i]; i++) {
		if (strcmp(n->value, names[i]) == 0) {
			*ret = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	}
	err_at(L, n, "%s '%s' is not one of: %s", what, n->value, list);
	return -EINVAL;
}

static int get_header_name(struct loader *L, const struct ynode *n, const char *what, char *out,
			   size_t outlen)
{
	if (expect_kind(L, n, YNODE_SCALAR, what) < 0)
		return -EINVAL;
	if (n->len == 0 || n->len >= outlen) {
		err_at(L, n, "%s must be 1 to %zu characters", what, outlen - 1);
		return -EINVAL;
	}
	if (!headers_name_ok(n->value, n->len)) {
		err_at(L, n, "%s '%s' is not a valid header name", what, n->value);
		return -EINVAL;
	}
	memcpy(out, n->value, n->len + 1);
	return 0;
}

static int get_methods(struct loader *L, const struct ynode *n, const char *what, uint32_t *ret)
{
	uint32_t set = 0;
	int bad = 0;

	if (expect_kind(L, n, YNODE_SEQ, what) < 0)
		return -EINVAL;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->items[i];
		int m;

		if (expect_kind(L, it, YNODE_SCALAR, "a method") < 0) {
			bad = 1;
			continue;
		}
		m = method_parse(it->value);
		if (m < 0) {
			err_at(L, it, "'%s' is not an HTTP method braced knows", it->value);
			bad = 1;
			continue;
		}
		set |= METHOD_BIT(m);
	}
	if (bad)
		return -EINVAL;
	*ret = set;
	return 0;
}

static int get_statuses(struct loader *L, const struct ynode *n, const char *what, int lo, int hi,
			uint8_t statuses[600])
{
	uint8_t set[600] = { 0 };
	int bad = 0;

	if (expect_kind(L, n, YNODE_SEQ, what) < 0)
		return -EINVAL;
	for (size_t i = 0; i < n->n; i++) {
		uint32_t code;

		if (get_uint(L, n->items[i], "a status", lo, hi, &code) < 0) {
			bad = 1;
			continue;
		}
		set[code] = 1;
	}
	if (bad)
		return -EINVAL;
	memcpy(statuses, set, sizeof(set));
	return 0;
}

/* ---- mappings with fixed keys ----------------------------------------- */

/* Room for "profile 'NAME'" in an unknown-key message. */
#define CONFIG_NAME_WHERE_MAX 160
/* Keys a near miss is looked for in: longer ones are no key's typo. */
#define NEAR_MISS_MAX_LEN 40
/* Most edits (insert, delete, change, swap of neighbours) a near miss is away. */
#define NEAR_MISS_MAX_EDITS 2

/* The keys of a policy, valid in defaults, a profile and a route. */
static const char *const policy_keys[] = {
	"timeouts",
	"retry",
	"circuit_breaker",
	"rate_limit_cooldown",
	"idempotency",
	"correlation",
	"pool",
	"upstream_errors",
	"tracing",
	"schema_formats",
	"hedge",
	"concurrency",
	NULL,
};

/* Optimal string alignment distance of a and b (both at most
 * NEAR_MISS_MAX_LEN bytes). */
static size_t edits(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[NEAR_MISS_MAX_LEN + 1][NEAR_MISS_MAX_LEN + 1];

	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* The key of lists (NULL-terminated lists, the set NULL-terminated) closest
 * to k within NEAR_MISS_MAX_EDITS, and nearer than half of k; NULL if none. */
static const char *near_miss(const char *k, const char *const *const *lists)
{
	const char *best = NULL;
	size_t best_d = NEAR_MISS_MAX_EDITS + 1;

	if (strlen(k) > NEAR_MISS_MAX_LEN)
		return NULL;
	for (; *lists; lists++) {
		for (const char *const *c = *lists; *c; c++) {
			size_t d;

			if (strlen(*c) > NEAR_MISS_MAX_LEN)
				continue;
			d = edits(k, *c);
			if (d < best_d && d * 2 < strlen(k)) {
				best_d = d;
				best = *c;
			}
		}
	}
	return best;
}

/* Reports key (its node in map) as unknown in where, with the nearest of
 * the known keys in lists when there is a near miss. */
static void unknown_key(struct loader *L, const struct ynode *keynode, const char *where,
			const char *const *const *lists)
{
	const char *k = keynode->value, *hint = near_miss(k, lists);

	if (hint)
		err_at(L, keynode, "unknown key '%s' in %s (did you mean '%s'?)", k, where, hint);
	else
		err_at(L, keynode, "unknown key '%s' in %s", k, where);
}

/* Reports every key of map that is not in allowed (NULL-terminated). */
static void check_keys(struct loader *L, const struct ynode *map, const char *where,
		       const char *const *allowed)
{
	const char *const *lists[] = { allowed, NULL };

	for (size_t i = 0; i < map->n; i++) {
		const char *k = map->keys[i]->value;
		int ok = 0;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				ok = 1;
		if (!ok)
			unknown_key(L, map->keys[i], where, lists);
	}
}

/* Iterates over a mapping's entries with index i, key text k and value v. */
#define FOREACH_ENTRY(map, i, k, v)                                                                \
	for (size_t i = 0;                                                                         \
	     i < (map)->n && ((k) = (map)->keys[i]->value, (v) = (map)->items[i], 1); i++)

static void apply_timeouts(struct loader *L, struct timeouts *t, const struct ynode *map)
{
	static const char *const keys[] = { "connect", "read",  "write", "pool",
					    "attempt", "total", NULL };
	const char *k;
	const struct ynode *v;

	if (expect_kind(L, map, YNODE_MAP, "timeouts") < 0)
		return;
	check_keys(L, map, "timeouts", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		uint32_t *dst = !strcmp(k, "connect")   ? &t->connect_ms
				: !strcmp(k, "read")    ? &t->read_ms
				: !strcmp(k, "write")   ? &t->write_ms
				: !strcmp(k, "pool")    ? &t->pool_ms
				: !strcmp(k, "attempt") ? &t->attempt_ms
				: !strcmp(k, "total")   ? &t->total_ms
							: NULL;
		uint32_t ms;

		if (!dst || get_duration(L, v, "a timeout", &ms) < 0)
			continue;
		if (ms == 0 && dst != &t->attempt_ms) {
			err_at(L, v, "timeouts.%s must be greater than 0", k);
			continue;
		}
		*dst = ms;
	}
}

static void apply_backoff(struct loader *L, struct retry_policy *r, const struct ynode *map)
{
	static const char *const keys[] = { "base", "max", "jitter", NULL };
	static const char *const jitters[] = { "full", "equal", "decorrelated", "none", NULL };
	const char *k;
	const struct ynode *v;
	int j;

	if (expect_kind(L, map, YNODE_MAP, "retry.backoff") < 0)
		return;
	check_keys(L, map, "retry.backoff", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "base"))
			get_duration(L, v, "retry.backoff.base", &r->backoff_base_ms);
		else if (!strcmp(k, "max"))
			get_duration(L, v, "retry.backoff.max", &r->backoff_max_ms);
		else if (!strcmp(k, "jitter") &&
			 get_enum(L, v, "retry.backoff.jitter", jitters, &j) == 0)
			r->jitter = (enum jitter)j;
	}
}

static void apply_retry(struct loader *L, struct retry_policy *r, const struct ynode *map)
{
	static const char *const keys[] = { "attempts",    "statuses", "transport",
					    "methods",     "unsafe",   "backoff",
					    "retry_after", "budget",   "on_schema_violation",
					    NULL };
	static const char *const unsafe[] = { "with_key", "never", "always", NULL };
	const char *k;
	const struct ynode *v;
	int e;

	if (expect_kind(L, map, YNODE_MAP, "retry") < 0)
		return;
	check_keys(L, map, "retry", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "attempts")) {
			get_uint(L, v, "retry.attempts", 1, 10, &r->attempts);
		} else if (!strcmp(k, "statuses")) {
			get_statuses(L, v, "retry.statuses", 400, 599, r->statuses);
		} else if (!strcmp(k, "transport")) {
			static const char *const kinds[] = { "connect", "reset", "timeout", NULL };
			uint32_t set = 0;
			int bad = 0;

			if (expect_kind(L, v, YNODE_SEQ, "retry.transport") < 0)
				continue;
			for (size_t j = 0; j < v->n; j++) {
				if (get_enum(L, v->items[j], "transport kind", kinds, &e) < 0)
					bad = 1;
				else
					set |= 1u << e;
			}
			if (!bad)
				r->transport = set;
		} else if (!strcmp(k, "methods")) {
			get_methods(L, v, "retry.methods", &r->methods);
		} else if (!strcmp(k, "unsafe")) {
			if (get_enum(L, v, "retry.unsafe", unsafe, &e) == 0)
				r->unsafe = (enum unsafe_retry)e;
		} else if (!strcmp(k, "backoff")) {
			apply_backoff(L, r, v);
		} else if (!strcmp(k, "retry_after")) {
			static const char *const rk[] = { "honor", "max", NULL };
			const char *k2;
			const struct ynode *v2;

			if (expect_kind(L, v, YNODE_MAP, "retry.retry_after") < 0)
				continue;
			check_keys(L, v, "retry.retry_after", rk);
			FOREACH_ENTRY(v, j, k2, v2)
			{
				if (!strcmp(k2, "honor"))
					get_bool(L, v2, "retry.retry_after.honor",
						 &r->retry_after_honor);
				else if (!strcmp(k2, "max"))
					get_duration(L, v2, "retry.retry_after.max",
						     &r->retry_after_max_ms);
			}
		} else if (!strcmp(k, "budget")) {
			static const char *const bk[] = { "ratio", "min_per_second", "window",
							  NULL };
			const char *k2;
			const struct ynode *v2;

			if (expect_kind(L, v, YNODE_MAP, "retry.budget") < 0)
				continue;
			check_keys(L, v, "retry.budget", bk);
			FOREACH_ENTRY(v, j, k2, v2)
			{
				if (!strcmp(k2, "ratio"))
					get_ratio(L, v2, "retry.budget.ratio", 0, 10,
						  &r->budget_ratio);
				else if (!strcmp(k2, "min_per_second"))
					get_uint(L, v2, "retry.budget.min_per_second", 0, 1000000,
						 &r->budget_min_per_second);
				else if (!strcmp(k2, "window")) {
					uint32_t ms;

					if (get_duration(L, v2, "retry.budget.window", &ms) == 0) {
						if (ms < 1000)
							err_at(L, v2,
							       "retry.budget.window must be at "
							       "least 1s");
						else
							r->budget_window_ms = ms;
					}
				}
			}
		} else if (!strcmp(k, "on_schema_violation")) {
			get_bool(L, v, "retry.on_schema_violation", &r->on_schema_violation);
		}
	}
}

static void apply_breaker(struct loader *L, struct breaker_policy *b, const struct ynode *map)
{
	static const char *const keys[] = {
		"enabled",          "window", "min_requests", "failure_ratio", "open_for",
		"half_open_probes", NULL
	};
	const char *k;
	const struct ynode *v;

	if (expect_kind(L, map, YNODE_MAP, "circuit_breaker") < 0)
		return;
	check_keys(L, map, "circuit_breaker", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "enabled"))
			get_bool(L, v, "circuit_breaker.enabled", &b->enabled);
		else if (!strcmp(k, "window"))
			get_duration(L, v, "circuit_breaker.window", &b->window_ms);
		else if (!strcmp(k, "min_requests"))
			get_uint(L, v, "circuit_breaker.min_requests", 1, 1000000,
				 &b->min_requests);
		else if (!strcmp(k, "failure_ratio"))
			get_ratio(L, v, "circuit_breaker.failure_ratio", 0.01, 1,
				  &b->failure_ratio);
		else if (!strcmp(k, "open_for"))
			get_duration(L, v, "circuit_breaker.open_for", &b->open_for_ms);
		else if (!strcmp(k, "half_open_probes"))
			get_uint(L, v, "circuit_breaker.half_open_probes", 1, 1000,
				 &b->half_open_probes);
	}
}

/* ---- latency defences: hedge and concurrency (SPEC 4.10) ---- */

/* hedge.delay: 0 (off), a duration, or pNN (1 <= NN <= 99). */
static void get_hedge_delay(struct loader *L, const struct ynode *n, struct hedge_policy *h)
{
	uint32_t ms;

	if (expect_kind(L, n, YNODE_SCALAR, "hedge.delay") < 0)
		return;
	if (n->value[0] == 'p') {
		const char *d = n->value + 1;
		unsigned q = 0;
		size_t len = strlen(d);

		if (len < 1 || len > 2 || strspn(d, "0123456789") != len ||
		    (q = (unsigned)atoi(d)) < 1 || q > 99) {
			err_at(L, n, "hedge.delay '%s' must be a duration or p1 to p99", n->value);
			return;
		}
		h->quantile = q;
		h->delay_ms = 0;
		return;
	}
	if (get_duration(L, n, "hedge.delay", &ms) < 0)
		return;
	h->delay_ms = ms;
	h->quantile = 0;
}

static void apply_hedge(struct loader *L, struct hedge_policy *h, const struct ynode *map)
{
	static const char *const keys[] = { "delay", "max", NULL };
	const char *k;
	const struct ynode *v;

	if (expect_kind(L, map, YNODE_MAP, "hedge") < 0)
		return;
	check_keys(L, map, "hedge", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "delay"))
			get_hedge_delay(L, v, h);
		else if (!strcmp(k, "max"))
			get_uint(L, v, "hedge.max", 1, POLICY_MAX_HEDGES, &h->max);
	}
}

static void apply_concurrency(struct loader *L, struct concurrency_policy *c,
			      const struct ynode *map)
{
	static const char *const keys[] = { "adaptive", "min", "max", NULL };
	const char *k;
	const struct ynode *v;

	if (expect_kind(L, map, YNODE_MAP, "concurrency") < 0)
		return;
	check_keys(L, map, "concurrency", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "adaptive"))
			get_bool(L, v, "concurrency.adaptive", &c->adaptive);
		else if (!strcmp(k, "min"))
			get_uint(L, v, "concurrency.min", 1, 100000, &c->min);
		else if (!strcmp(k, "max"))
			get_uint(L, v, "concurrency.max", 1, 100000, &c->max);
	}
}

/* Cross-key checks of hedge and concurrency on a merged policy. */
static void check_latency_policy(struct loader *L, const struct policy *p, const struct ynode *n,
				 const char *where)
{
	if (p->concurrency.min > p->concurrency.max)
		err_at(L, n, "%s: concurrency.min is larger than concurrency.max", where);
	/* The pool caps the limit: a floor above it could never hold. */
	if (p->concurrency.adaptive && p->concurrency.min > p->pool_max_connections)
		err_at(L, n, "%s: concurrency.min (%u) is larger than pool.max_connections (%u)",
		       where, p->concurrency.min, p->pool_max_connections);
}

/* Applies one key of the policy family. Returns 1 when key is a policy key
 * (handled, errors reported), 0 when it is not. */
static int apply_policy_key(struct loader *L, struct policy *p, const char *k,
			    const struct ynode *v)
{
	static const char *const upstream_errors[] = { "envelope", "passthrough", NULL };
	const char *k2;
	const struct ynode *v2;
	int e;

	if (!strcmp(k, "timeouts")) {
		apply_timeouts(L, &p->timeouts, v);
	} else if (!strcmp(k, "retry")) {
		apply_retry(L, &p->retry, v);
	} else if (!strcmp(k, "circuit_breaker")) {
		apply_breaker(L, &p->breaker, v);
	} else if (!strcmp(k, "rate_limit_cooldown")) {
		get_bool(L, v, "rate_limit_cooldown", &p->rate_limit_cooldown);
	} else if (!strcmp(k, "idempotency")) {
		static const char *const ik[] = { "header", "methods", "honored", NULL };

		if (expect_kind(L, v, YNODE_MAP, "idempotency") < 0)
			return 1;
		check_keys(L, v, "idempotency", ik);
		FOREACH_ENTRY(v, j, k2, v2)
		{
			if (!strcmp(k2, "header"))
				get_header_name(L, v2, "idempotency.header", p->idempotency_header,
						sizeof(p->idempotency_header));
			else if (!strcmp(k2, "methods"))
				get_methods(L, v2, "idempotency.methods", &p->idempotency_methods);
			else if (!strcmp(k2, "honored"))
				get_bool(L, v2, "idempotency.honored", &p->idempotency_honored);
		}
	} else if (!strcmp(k, "correlation")) {
		static const char *const ck[] = { "header", NULL };

		if (expect_kind(L, v, YNODE_MAP, "correlation") < 0)
			return 1;
		check_keys(L, v, "correlation", ck);
		FOREACH_ENTRY(v, j, k2, v2)
		{
			if (!strcmp(k2, "header"))
				get_header_name(L, v2, "correlation.header", p->correlation_header,
						sizeof(p->correlation_header));
		}
	} else if (!strcmp(k, "pool")) {
		static const char *const pk[] = { "max_connections", "max_idle", NULL };

		if (expect_kind(L, v, YNODE_MAP, "pool") < 0)
			return 1;
		check_keys(L, v, "pool", pk);
		FOREACH_ENTRY(v, j, k2, v2)
		{
			if (!strcmp(k2, "max_connections"))
				get_uint(L, v2, "pool.max_connections", 1, 100000,
					 &p->pool_max_connections);
			else if (!strcmp(k2, "max_idle"))
				get_uint(L, v2, "pool.max_idle", 0, 100000, &p->pool_max_idle);
		}
	} else if (!strcmp(k, "hedge")) {
		apply_hedge(L, &p->hedge, v);
	} else if (!strcmp(k, "concurrency")) {
		apply_concurrency(L, &p->concurrency, v);
	} else if (!strcmp(k, "schema_formats")) {
		/* In enum schema_formats' order. */
		static const char *const formats[] = { "assert", "annotate", NULL };

		if (get_enum(L, v, "schema_formats", formats, &e) == 0)
			p->schema_formats = (enum schema_formats)e;
	} else if (!strcmp(k, "upstream_errors")) {
		if (get_enum(L, v, "upstream_errors", upstream_errors, &e) == 0)
			p->upstream_errors = (enum upstream_errors)e;
	} else if (!strcmp(k, "tracing")) {
		/* In enum trace_mode's order. */
		static const char *const modes[] = { "off", "propagate", "generate", NULL };
		static const char *const tk[] = { "traceparent", NULL };
		const struct ynode *m;

		if (expect_kind(L, v, YNODE_MAP, "tracing") < 0)
			return 1;
		check_keys(L, v, "tracing", tk);
		if ((m = ynode_get(v, "traceparent")) &&
		    get_enum(L, m, "tracing.traceparent", modes, &e) == 0)
			p->trace_mode = (enum trace_mode)e;
	} else {
		return 0;
	}
	return 1;
}

/* Cross-key checks on a merged policy; n is where to report. */
static void check_policy(struct loader *L, const struct policy *p, const struct ynode *n,
			 const char *where)
{
	if (p->retry.backoff_base_ms > p->retry.backoff_max_ms)
		err_at(L, n, "%s: retry.backoff.base is larger than retry.backoff.max", where);
	if (p->timeouts.attempt_ms && p->timeouts.attempt_ms > p->timeouts.total_ms)
		err_at(L, n, "%s: timeouts.attempt is longer than timeouts.total", where);
	check_latency_policy(L, p, n, where);
}

/* ---- listeners, URLs, headers, schemas --------------------------------- */

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

static int parse_listen(struct loader *L, const struct ynode *n, struct listener_setting *ls)
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

static void listener_release(struct listener_setting *ls)
{
	free(ls->address);
	free(ls->host);
	free(ls->path);
	memset(ls, 0, sizeof(*ls));
}

/* Checks an upstream URL and stores it without a trailing slash. */
static int parse_upstream(struct loader *L, const struct ynode *n, struct profile *p)
{
	char *url = NULL;
	const char *rest, *hostend;
	int secret;
	size_t len;

	if (get_string(L, n, "upstream", &url, &secret) < 0)
		return -EINVAL;
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
	free(p->upstream);
	p->upstream = url;
	p->upstream_secret = secret;
	return 0;
fail:
	free(url);
	return -EINVAL;
}

/* Header names a profile may not set: braced or the transport own them. */
static int header_reserved(const char *name)
{
	return headers_is_hop_by_hop(name) || strcasecmp(name, "Host") == 0 ||
	       strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Expect") == 0 ||
	       strncasecmp(name, "Brace-", 6) == 0;
}

static void parse_headers(struct loader *L, const struct ynode *map, struct profile *p)
{
	if (expect_kind(L, map, YNODE_MAP, "headers") < 0)
		return;
	if (map->n > CONFIG_MAX_HEADERS) {
		err_at(L, map, "more than %d headers", CONFIG_MAX_HEADERS);
		return;
	}
	p->headers = calloc(map->n ? map->n : 1, sizeof(*p->headers));
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
	static const char *const req_keys[] = { "query", "body", "mode", NULL };
	static const char *const resp_keys[] = { "statuses", "body", "mode", NULL };
	static const char *const modes[] = { "off", "report", "enforce", NULL };
	const char *k;
	const struct ynode *v;
	int e;

	if (expect_kind(L, map, YNODE_MAP, response ? "response" : "request") < 0)
		return;
	s->line = map->line;
	s->col = map->col;
	check_keys(L, map, response ? "response" : "request", response ? resp_keys : req_keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "mode")) {
			if (get_enum(L, v, "mode", modes, &e) == 0)
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
		r->method = -1;
	} else {
		char m[16];

		if ((size_t)(sp - s) >= sizeof(m)) {
			err_at(L, n, "'%.*s' is not an HTTP method braced knows", (int)(sp - s), s);
			return -EINVAL;
		}
		memcpy(m, s, (size_t)(sp - s));
		m[sp - s] = '\0';
		r->method = method_parse(m);
		if (r->method < 0) {
			err_at(L, n, "'%s' is not an HTTP method braced knows", m);
			return -EINVAL;
		}
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
	static const char *const route_keys[] = { "match", "request", "response", NULL };
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
		int known = 0;

		for (const char *const *rk = route_keys; *rk; rk++)
			known |= !strcmp(*rk, k);
		if (!strcmp(k, "request") || !strcmp(k, "response"))
			continue; /* below, once the route's schema_formats is known */
		else if (!strcmp(k, "circuit_breaker") ||
			 (!strcmp(k, "retry") && v->kind == YNODE_MAP && ynode_get(v, "budget")))
			/* Both count a whole profile's traffic: a route cannot have its own. */
			err_at(L, !strcmp(k, "retry") ? ynode_get(v, "budget") : map->keys[i],
			       "%s belongs to the profile; a route cannot set it",
			       !strcmp(k, "retry") ? "retry.budget" : "circuit_breaker");
		else if (!known && apply_policy_key(L, &r->policy, k, v))
			touched = 1;
		else if (!known)
			unknown_key(L, map->keys[i], "route",
				    (const char *const *const[]){ route_keys, policy_keys, NULL });
	}
	if (touched)
		check_policy(L, &r->policy, map, r->label ? r->label : "route");
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

static void parse_profile(struct loader *L, const struct ynode *key, const struct ynode *map,
			  struct profile *p)
{
	static const char *const keys[] = { "upstream", "headers",    "tls", "routes_only",
					    "routes",   "match_case", NULL };
	static const char *const cases[] = { "sensitive", "insensitive", NULL };
	const char *k;
	const struct ynode *v;
	int secret = 0, touched = 0;
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
		int known = 0;

		for (const char *const *pk = keys; *pk; pk++)
			known |= !strcmp(*pk, k);
		if (known)
			continue;
		if (apply_policy_key(L, &p->policy, k, v))
			touched = 1;
		else
			unknown_key(L, map->keys[i], where,
				    (const char *const *const[]){ keys, policy_keys, NULL });
	}
	/* Inherited values were checked where they were written. */
	if (touched)
		check_policy(L, &p->policy, key, p->name);
	/* Before the routes, whose paths are folded by it. */
	v = ynode_get(map, "match_case");
	if (v)
		get_enum(L, v, "match_case", cases, &p->fold_case);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "upstream")) {
			parse_upstream(L, v, p);
		} else if (!strcmp(k, "headers")) {
			parse_headers(L, v, p);
		} else if (!strcmp(k, "routes_only")) {
			get_bool(L, v, "routes_only", &p->routes_only);
		} else if (!strcmp(k, "tls")) {
			static const char *const tk[] = { "verify", "ca_file", NULL };
			const char *k2;
			const struct ynode *v2;

			if (expect_kind(L, v, YNODE_MAP, "tls") < 0)
				continue;
			check_keys(L, v, "tls", tk);
			FOREACH_ENTRY(v, j, k2, v2)
			{
				if (!strcmp(k2, "verify"))
					get_bool(L, v2, "tls.verify", &p->tls.verify);
				else if (!strcmp(k2, "ca_file") &&
					 get_string(L, v2, "tls.ca_file", &p->tls.ca_file,
						    &secret) == 0) {
					p->tls.ca_file_secret = secret;
					if (access(p->tls.ca_file, R_OK) != 0)
						err_at(L, v2, "tls.ca_file '%s' cannot be read: %s",
						       secret ? "<redacted>" : p->tls.ca_file,
						       strerror(errno));
				}
			}
		} else if (!strcmp(k, "routes")) {
			if (expect_kind(L, v, YNODE_SEQ, "routes") < 0)
				continue;
			if (v->n > CONFIG_MAX_ROUTES) {
				err_at(L, v, "more than %d routes", CONFIG_MAX_ROUTES);
				continue;
			}
			p->routes = calloc(v->n ? v->n : 1, sizeof(*p->routes));
			if (!p->routes)
				continue;
			for (size_t j = 0; j < v->n; j++)
				parse_route(L, v->items[j], p, &p->routes[p->nroutes++]);
		}
	}
	if (!p->upstream && !ynode_get(map, "upstream"))
		err_at(L, key, "profile '%s' has no upstream", p->name);
}

static void profile_release(struct profile *p)
{
	free(p->name);
	free(p->upstream);
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

static int profile_cmp(const void *a, const void *b)
{
	return strcmp(((const struct profile *)a)->name, ((const struct profile *)b)->name);
}

/* ---- top level -------------------------------------------------------- */

static void parse_listeners(struct loader *L, const struct ynode *v)
{
	struct config *cfg = L->cfg;

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

static void parse_log(struct loader *L, const struct ynode *map)
{
	static const char *const keys[] = { "format", "level", "access", NULL };
	static const char *const formats[] = { "json", "text", NULL };
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	const char *k;
	const struct ynode *v;
	int e;

	if (expect_kind(L, map, YNODE_MAP, "log") < 0)
		return;
	check_keys(L, map, "log", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "format") && get_enum(L, v, "log.format", formats, &e) == 0)
			L->cfg->log_format = (enum log_format)e;
		else if (!strcmp(k, "level") && get_enum(L, v, "log.level", levels, &e) == 0)
			L->cfg->log_level = (enum log_level)e;
		else if (!strcmp(k, "access"))
			get_bool(L, v, "log.access", &L->cfg->log_access);
	}
}

static void parse_limits(struct loader *L, const struct ynode *map)
{
	static const char *const keys[] = { "max_request_body", "max_response_body",
					    "max_header_size",  "max_connections",
					    "max_inflight",     "max_validated_body",
					    "header_timeout",   "body_timeout",
					    "idle_timeout",     NULL };
	struct config *cfg = L->cfg;
	const char *k;
	const struct ynode *v;

	if (expect_kind(L, map, YNODE_MAP, "limits") < 0)
		return;
	check_keys(L, map, "limits", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "max_request_body"))
			get_size(L, v, "limits.max_request_body", 0, &cfg->max_request_body);
		else if (!strcmp(k, "max_response_body"))
			get_size(L, v, "limits.max_response_body", 0, &cfg->max_response_body);
		else if (!strcmp(k, "max_header_size"))
			get_size(L, v, "limits.max_header_size", 1024, &cfg->max_header_size);
		else if (!strcmp(k, "max_validated_body"))
			get_size(L, v, "limits.max_validated_body", 0, &cfg->max_validated_body);
		else if (!strcmp(k, "max_connections"))
			get_uint(L, v, "limits.max_connections", 1, 1000000, &cfg->max_connections);
		else if (!strcmp(k, "max_inflight"))
			get_uint(L, v, "limits.max_inflight", 1, 1000000, &cfg->max_inflight);
		else if (!strcmp(k, "header_timeout"))
			get_positive_duration(L, v, "limits.header_timeout",
					      &cfg->header_timeout_ms);
		else if (!strcmp(k, "body_timeout"))
			get_positive_duration(L, v, "limits.body_timeout", &cfg->body_timeout_ms);
		else if (!strcmp(k, "idle_timeout"))
			get_positive_duration(L, v, "limits.idle_timeout", &cfg->idle_timeout_ms);
	}
}

/* ---- fleet ------------------------------------------------------------- */

/* Parses fleet.redis: "off", redis://HOST[:PORT][/DB] with a numeric HOST
 * or localhost (no name is resolved on the event loop), or unix:/PATH. */
static void parse_fleet_redis(struct loader *L, const struct ynode *n, struct fleet_setting *f)
{
	const char *s = n->value, *host, *hend, *rest;
	char hostbuf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[sizeof(struct in6_addr)];
	size_t hlen;
	long port = 6379, db = 0;

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

static void parse_fleet(struct loader *L, const struct ynode *map)
{
	static const char *const keys[] = { "redis",   "username",      "password",
					    "secret",  "key_prefix",    "share",
					    "timeout", "sync_interval", NULL };
	static const char *const shares[] = { "cooldown", "breaker", "budget", NULL };
	struct fleet_setting *f = &L->cfg->fleet;
	const struct ynode *v, *redis = NULL, *username = NULL;
	const char *k;
	int e;

	if (expect_kind(L, map, YNODE_MAP, "fleet") < 0)
		return;
	check_keys(L, map, "fleet", keys);
	FOREACH_ENTRY(map, i, k, v)
	{
		if (!strcmp(k, "redis")) {
			redis = v;
			if (expect_kind(L, v, YNODE_SCALAR, "fleet.redis") == 0)
				parse_fleet_redis(L, v, f);
		} else if (!strcmp(k, "username")) {
			username = v;
			if (get_string(L, v, "fleet.username", &f->username, NULL) == 0 &&
			    (!*f->username || strpbrk(f->username, " \t\r\n"))) {
				err_at(L, v, "fleet.username must be one word");
			}
		} else if (!strcmp(k, "password")) {
			/* Always a secret, however it was written. */
			if (get_string(L, v, "fleet.password", &f->password, NULL) == 0 &&
			    (!*f->password || strpbrk(f->password, "\r\n"))) {
				err_at(L, v, "fleet.password must be one non-empty line");
			}
		} else if (!strcmp(k, "secret")) {
			/* Always a secret, however it was written: say why, never what. */
			if (get_string(L, v, "fleet.secret", &f->secret, NULL) < 0)
				continue;
			if (!*f->secret) {
				free(f->secret);
				f->secret = NULL;
			} else if (strlen(f->secret) < CONFIG_FLEET_SECRET_MIN ||
				   strlen(f->secret) > CONFIG_FLEET_SECRET_MAX) {
				err_at(
				    L, v,
				    "fleet.secret must be from %d to %d bytes (or \"\" for none)",
				    CONFIG_FLEET_SECRET_MIN, CONFIG_FLEET_SECRET_MAX);
			}
		} else if (!strcmp(k, "key_prefix")) {
			if (get_string(L, v, "fleet.key_prefix", &f->key_prefix, NULL) == 0) {
				size_t len = strlen(f->key_prefix);
				int ok = len <= CONFIG_FLEET_PREFIX_MAX;

				for (size_t j = 0; ok && j < len; j++) {
					unsigned char c = (unsigned char)f->key_prefix[j];

					ok = c > 0x20 && c < 0x7f && c != '{' && c != '}';
				}
				if (!ok)
					err_at(L, v,
					       "fleet.key_prefix must be at most %d printable "
					       "characters "
					       "without spaces or braces",
					       CONFIG_FLEET_PREFIX_MAX);
			}
		} else if (!strcmp(k, "share")) {
			if (expect_kind(L, v, YNODE_SEQ, "fleet.share") < 0)
				continue;
			f->share = 0;
			for (size_t j = 0; j < v->n; j++)
				if (get_enum(L, v->items[j], "fleet.share", shares, &e) == 0)
					f->share |= 1u << e;
		} else if (!strcmp(k, "timeout")) {
			get_positive_duration(L, v, "fleet.timeout", &f->timeout_ms);
		} else if (!strcmp(k, "sync_interval")) {
			if (get_positive_duration(L, v, "fleet.sync_interval",
						  &f->sync_interval_ms) == 0 &&
			    f->sync_interval_ms < 10) {
				err_at(L, v, "fleet.sync_interval must be at least 10ms");
			}
		}
	}
	if (f->timeout_ms > 10000)
		err_at(L, map, "fleet.timeout must be at most 10s");
	if (f->sync_interval_ms > 60000)
		err_at(L, map, "fleet.sync_interval must be at most 1m");
	if (f->username && !f->password)
		err_at(L, username, "fleet.username needs fleet.password");
	if (f->enabled && !f->secret)
		warn_at(L, redis,
			"fleet.redis is set without fleet.secret: any client of that Redis can "
			"publish breaker and cool-down changes every instance applies (see "
			"fleet.secret in braced.yaml(5))");
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

/* Zeroes and frees a secret string; NULL is a no-op. */
void config_secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void config_fleet_release(struct fleet_setting *f)
{
	free(f->redis);
	free(f->host);
	free(f->path);
	free(f->username);
	config_secret_free(f->password);
	config_secret_free(f->secret);
	free(f->key_prefix);
	memset(f, 0, sizeof(*f));
}

static char *dup_or_null(const char *s, int *failed)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*failed = 1;
	return d;
}

int config_fleet_copy(struct fleet_setting *dst, const struct fleet_setting *src)
{
	int failed = 0;

	*dst = *src;
	dst->redis = dup_or_null(src->redis, &failed);
	dst->host = dup_or_null(src->host, &failed);
	dst->path = dup_or_null(src->path, &failed);
	dst->username = dup_or_null(src->username, &failed);
	dst->password = dup_or_null(src->password, &failed);
	dst->secret = dup_or_null(src->secret, &failed);
	dst->key_prefix = dup_or_null(src->key_prefix, &failed);
	if (failed) {
		config_fleet_release(dst);
		return -ENOMEM;
	}
	return 0;
}

static void parse_root(struct loader *L, const struct ynode *root)
{
	static const char *const keys[] = { "listen", "admin",    "shutdown_grace", "log", "limits",
					    "fleet",  "defaults", "profiles",       NULL };
	struct config *cfg = L->cfg;
	const struct ynode *v;

	if (expect_kind(L, root, YNODE_MAP, "the configuration") < 0)
		return;
	check_keys(L, root, "the configuration", keys);
	if ((v = ynode_get(root, "listen")))
		parse_listeners(L, v);
	if ((v = ynode_get(root, "admin"))) {
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
	if ((v = ynode_get(root, "shutdown_grace")))
		get_duration(L, v, "shutdown_grace", &cfg->shutdown_grace_ms);
	if ((v = ynode_get(root, "log")))
		parse_log(L, v);
	if ((v = ynode_get(root, "limits")))
		parse_limits(L, v);
	if ((v = ynode_get(root, "fleet")))
		parse_fleet(L, v);
	if ((v = ynode_get(root, "defaults"))) {
		const char *k;
		const struct ynode *dv;

		if (expect_kind(L, v, YNODE_MAP, "defaults") == 0) {
			FOREACH_ENTRY(v, i, k, dv)
			{
				if (!apply_policy_key(L, &cfg->defaults, k, dv))
					unknown_key(
					    L, v->keys[i], "defaults",
					    (const char *const *const[]){ policy_keys, NULL });
			}
			check_policy(L, &cfg->defaults, v, "defaults");
		}
	}
	/* An absent `profiles` is a mistake; an explicit empty map is a
	 * daemon that answers 404 unknown_profile until one is added (the
	 * packaged template). */
	v = ynode_get(root, "profiles");
	if (!v) {
		err_at(L, root, "no profiles are configured (write 'profiles: {}' for none)");
		return;
	}
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
	cfg->max_request_body = 1024 * 1024;
	cfg->max_response_body = 8 * 1024 * 1024;
	cfg->max_header_size = 16 * 1024;
	cfg->max_validated_body = 2 * 1024 * 1024;
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
	config_fleet_release(&cfg->fleet);
	for (size_t i = 0; i < cfg->nprofiles; i++)
		profile_release(&cfg->profiles[i]);
	free(cfg->profiles);
	free(cfg);
}

/* Orders errors by position (stable), so they read top to bottom. */
static void sort_errors(struct config_errors *e)
{
	for (size_t i = 1; i < e->count; i++) {
		char *line = e->lines[i];
		unsigned l = e->line[i], c = e->col[i];
		size_t j = i;

		while (j > 0 &&
		       (e->line[j - 1] > l || (e->line[j - 1] == l && e->col[j - 1] > c))) {
			e->lines[j] = e->lines[j - 1];
			e->line[j] = e->line[j - 1];
			e->col[j] = e->col[j - 1];
			j--;
		}
		e->lines[j] = line;
		e->line[j] = l;
		e->col[j] = c;
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
		sort_errors(L->errs);
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct config *config_load_string(const char *path, const char *text, size_t len,
				  struct config_errors *errs)
{
	struct loader L = { .path = path, .errs = errs };
	struct ynode *root = NULL;
	unsigned line, col;
	char msg[256];

	L.cfg = config_new(path);
	if (!L.cfg)
		return NULL;
	if (ytree_load_string(text, len, &root, msg, sizeof(msg), &line, &col) < 0) {
		err_at(&L, &(struct ynode){ .line = line ? line : 1, .col = col ? col : 1 }, "%s",
		       msg);
		root = NULL;
	}
	return finish(&L, root);
}

struct config *config_load(const char *path, struct config_errors *errs)
{
	struct loader L = { .path = path, .errs = errs };
	struct ynode *root = NULL;
	unsigned line, col;
	char msg[256];

	L.cfg = config_new(path);
	if (!L.cfg)
		return NULL;
	if (ytree_load_file(path, &root, msg, sizeof(msg), &line, &col) < 0) {
		err_at(&L, &(struct ynode){ .line = line ? line : 1, .col = col ? col : 1 }, "%s",
		       msg);
		root = NULL;
	}
	return finish(&L, root);
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

/* The first route of p for method whose pattern matches the normalized
 * path (len bytes), or NULL. */
static const struct route *match_method(const struct profile *p, int method, const char *path,
					size_t len)
{
	for (size_t i = 0; i < p->nroutes; i++) {
		const struct route *r = &p->routes[i];
		const char *s = path, *end = path + len;
		size_t seg = 0;
		int ok = 1;

		if (r->method >= 0 && r->method != method)
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

int config_match_route(const struct profile *p, int method, const char *raw, size_t rawlen,
		       const struct route **ret_route)
{
	char path[CONFIG_MAX_MATCH_PATH];
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

/* Reading a configuration's values: the error report with positions, the
 * scalar kinds (booleans, integers, ratios, durations, sizes, enums, method
 * and status lists, header names) and the one walker of key tables that
 * reads a mapping with them, unknown keys reported with their near miss. */
#include "config_internal.h"
#include "headers.h"
#include "units.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest dotted path of a key ("retry.retry_after.honor"). */
#define KEY_PATH_MAX 64
/* Keys a near miss is looked for in: longer ones are no key's typo. */
#define NEAR_MISS_MAX_LEN 40
/* Most edits (insert, delete, change, swap of neighbours) a near miss is away. */
#define NEAR_MISS_MAX_EDITS 2

/* ---- the report -------------------------------------------------------- */

void err_at(struct loader *L, const struct ynode *n, const char *fmt, ...)
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

void warn_at(struct loader *L, const struct ynode *n, const char *msg)
{
	struct config_errors *e = L->errs;
	char *line;

	if (e->nwarnings >= CONFIG_MAX_WARNINGS ||
	    asprintf(&line, "%s:%u:%u: warning: %s", L->path, n ? n->line : 1, n ? n->col : 1,
		     msg) < 0)
		return;
	e->warnings[e->nwarnings++] = line;
}

void config_errors_sort(struct config_errors *e)
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

/* ---- scalars ----------------------------------------------------------- */

int expect_kind(struct loader *L, const struct ynode *n, enum ynode_kind kind, const char *what)
{
	static const char *const kinds[] = { "a scalar", "a mapping", "a list" };

	if (n->kind == kind && !(kind == YNODE_SCALAR && ynode_is_null(n)))
		return 0;
	err_at(L, n, "%s must be %s, not %s", what, kinds[kind],
	       n->kind == YNODE_SCALAR && ynode_is_null(n) ? "null" : kinds[n->kind]);
	return -EINVAL;
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

/* A scalar parsed by units.h's parse (a duration or a size) into *ret;
 * the messages name what the value is and how to write one. */
static int get_unit(struct loader *L, const struct ynode *n, const char *what,
		    int (*parse)(const char *, uint64_t *), const char *too_large,
		    const char *example, uint64_t *ret)
{
	int r;

	if (expect_kind(L, n, YNODE_SCALAR, what) < 0)
		return -EINVAL;
	r = parse(n->value, ret);
	if (r == -ERANGE)
		err_at(L, n, "%s '%s' is %s", what, n->value, too_large);
	else if (r < 0)
		err_at(L, n, "%s '%s' is not %s", what, n->value, example);
	return r;
}

int get_duration(struct loader *L, const struct ynode *n, const char *what, uint32_t *ret)
{
	uint64_t ms;

	if (get_unit(L, n, what, units_parse_duration, "longer than 24h",
		     "a duration (write e.g. 250ms, 2s, 1m)", &ms) < 0)
		return -EINVAL;
	*ret = (uint32_t)ms;
	return 0;
}

int get_enum(struct loader *L, const struct ynode *n, const char *what, const char *const *names,
	     int *ret)
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

int get_header_name(struct loader *L, const struct ynode *n, const char *what, char *out,
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

/* A list whose items item() turns into bits; *ret only when all are good. */
static int get_bits(struct loader *L, const struct ynode *n, const char *what,
		    int (*item)(struct loader *, const struct ynode *, const struct key *,
				uint32_t *),
		    const struct key *k, uint32_t *ret)
{
	uint32_t set = 0;
	int bad = 0;

	if (expect_kind(L, n, YNODE_SEQ, what) < 0)
		return -EINVAL;
	for (size_t i = 0; i < n->n; i++)
		if (item(L, n->items[i], k, &set) < 0)
			bad = 1;
	if (bad)
		return -EINVAL;
	*ret = set;
	return 0;
}

static int method_item(struct loader *L, const struct ynode *it, const struct key *k, uint32_t *set)
{
	int m;

	(void)k;
	if (expect_kind(L, it, YNODE_SCALAR, "a method") < 0)
		return -EINVAL;
	m = method_parse(it->value);
	if (m < 0) {
		err_at(L, it, "'%s' is not an HTTP method braced knows", it->value);
		return -EINVAL;
	}
	*set |= METHOD_BIT(m);
	return 0;
}

static int enum_item(struct loader *L, const struct ynode *it, const struct key *k, uint32_t *set)
{
	int e;

	if (get_enum(L, it, k->noun, k->names, &e) < 0)
		return -EINVAL;
	*set |= 1u << e;
	return 0;
}

int get_statuses(struct loader *L, const struct ynode *n, const char *what, int lo, int hi,
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

/* A duration key: at least k->min ms, and over 0 with KEY_POSITIVE. */
static void get_key_duration(struct loader *L, const struct ynode *n, const struct key *k,
			     const char *path, uint32_t *ret)
{
	uint32_t ms;

	if (get_duration(L, n, k->noun ? k->noun : path, &ms) < 0)
		return;
	if (ms == 0 && (k->flags & KEY_POSITIVE))
		err_at(L, n, "%s must be greater than 0", path);
	else if (ms < k->min && k->min % 1000 == 0)
		err_at(L, n, "%s must be at least %llds", path, k->min / 1000);
	else if (ms < k->min)
		err_at(L, n, "%s must be at least %lldms", path, k->min);
	else
		*ret = ms;
}

static void get_key_size(struct loader *L, const struct ynode *n, const char *what, uint64_t min,
			 uint64_t max, uint64_t *ret)
{
	uint64_t v;

	if (get_unit(L, n, what, units_parse_size, "larger than 1GiB",
		     "a size (write e.g. 65536, 16KiB, 1MiB)", &v) < 0)
		return;
	if (v < min)
		err_at(L, n, "%s must be at least %llu bytes", what, (unsigned long long)min);
	else if (max && v > max)
		err_at(L, n, "%s must be at most %llu bytes", what, (unsigned long long)max);
	else
		*ret = v;
}

/* ---- key tables --------------------------------------------------------- */

/* KEY_ENUM stores the index through an int: the enums it fills are int-sized
 * (GCC and Clang without -fshort-enums). */
_Static_assert(sizeof(enum key_kind) == sizeof(int), "an enum is stored as an int");

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

/* The key of tables closest to k within NEAR_MISS_MAX_EDITS, and nearer
 * than half of k; NULL if none. */
static const char *near_miss(const char *k, const struct key *const *tables)
{
	const char *best = NULL;
	size_t best_d = NEAR_MISS_MAX_EDITS + 1;

	if (strlen(k) > NEAR_MISS_MAX_LEN)
		return NULL;
	for (; *tables; tables++) {
		for (const struct key *c = *tables; c->name; c++) {
			size_t d;

			if (strlen(c->name) > NEAR_MISS_MAX_LEN)
				continue;
			d = edits(k, c->name);
			if (d < best_d && d * 2 < strlen(k)) {
				best_d = d;
				best = c->name;
			}
		}
	}
	return best;
}

void unknown_key(struct loader *L, const struct ynode *keynode, const char *where,
		 const struct key *const *tables)
{
	const char *k = keynode->value, *hint = near_miss(k, tables);

	if (hint)
		err_at(L, keynode, "unknown key '%s' in %s (did you mean '%s'?)", k, where, hint);
	else
		err_at(L, keynode, "unknown key '%s' in %s", k, where);
}

const struct key *keys_find(const struct key *table, const char *name)
{
	for (; table->name; table++)
		if (strcmp(table->name, name) == 0)
			return table;
	return NULL;
}

void check_keys(struct loader *L, const struct ynode *map, const char *where,
		const struct key *table)
{
	const struct key *const tables[] = { table, NULL };

	for (size_t i = 0; i < map->n; i++)
		if (!keys_find(table, map->keys[i]->value))
			unknown_key(L, map->keys[i], where, tables);
}

int keys_apply(struct loader *L, const struct key *table, const char *prefix, const char *name,
	       const struct ynode *v, void *base)
{
	const struct key *k = keys_find(table, name);
	char path[KEY_PATH_MAX];
	void *dst;

	if (!k)
		return 0;
	dst = (char *)base + k->offset;
	snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k->name);
	switch (k->kind) {
	case KEY_BOOL:
		get_bool(L, v, path, dst);
		break;
	case KEY_UINT:
		get_uint(L, v, path, k->min, k->max, dst);
		break;
	case KEY_RATIO:
		get_ratio(L, v, path, k->lo, k->hi, dst);
		break;
	case KEY_DURATION:
		get_key_duration(L, v, k, path, dst);
		break;
	case KEY_SIZE:
		get_key_size(L, v, path, (uint64_t)k->min, (uint64_t)k->max, dst);
		break;
	case KEY_ENUM:
		get_enum(L, v, path, k->names, dst);
		break;
	case KEY_ENUM_BITS: {
		struct key item = *k;

		item.noun = k->noun ? k->noun : path;
		get_bits(L, v, path, enum_item, &item, dst);
		break;
	}
	case KEY_METHODS:
		get_bits(L, v, path, method_item, k, dst);
		break;
	case KEY_STATUSES:
		get_statuses(L, v, path, (int)k->min, (int)k->max, dst);
		break;
	case KEY_HEADER_NAME:
		get_header_name(L, v, path, dst, k->size);
		break;
	case KEY_MAP:
		keys_apply_map(L, k->sub, path, v, dst);
		break;
	case KEY_CUSTOM:
		k->parse(L, v, dst);
		break;
	}
	return 1;
}

void keys_apply_map(struct loader *L, const struct key *table, const char *where,
		    const struct ynode *map, void *base)
{
	const char *k;
	const struct ynode *v;

	if (expect_kind(L, map, YNODE_MAP, where) < 0)
		return;
	check_keys(L, map, where, table);
	FOREACH_ENTRY(map, i, k, v)
	{
		keys_apply(L, table, where, k, v, base);
	}
}

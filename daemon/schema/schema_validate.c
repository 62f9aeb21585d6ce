/* Validation of instances against a compiled schema: one recursive walk
 * over the node graph with bounded depth, bounded steps and memoised shared
 * nodes, violations recorded with their JSON pointer. The whole per-request
 * loop lives here, static, so the compiler may inline across it. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_format.h"
#include "schema_internal.h"

/* Most nested eval() calls per validation (instance depth times schemas
 * applied per location); past it a "depth" violation ends the branch. */
#define MAX_FRAMES 1024
/* Arrays up to this size are checked for uniqueItems pair by pair. */
#define UNIQUE_PAIRWISE_MAX 16

struct seg {
	const char *key; /* NULL: an array index */
	size_t idx;
};

enum memo_state { MEMO_VALID = 1, MEMO_INVALID_QUIET, MEMO_INVALID_REPORTED };

struct mslot {
	const struct snode *n;
	struct json_object *inst;
	unsigned char state;
	unsigned char used;
};

struct vctx {
	const struct schema *s;
	struct schema_result *res;
	struct seg path[SCHEMA_MAX_DEPTH + 1];
	unsigned depth; /* segments in path */
	unsigned quiet; /* >0: a branch whose failures are summarised: record nothing, stop early */
	unsigned tmp;   /* >0: evaluating a temporary value (a property name): no memo */
	unsigned frames; /* nesting of eval() */
	unsigned long steps;
	int stop; /* a limit ended the validation */
	int hard; /* invalid whatever the keywords say (a limit was hit) */
	int oom;
	struct mslot *memo;
	size_t memo_cap, memo_used;
	pcre2_match_data *md;
};

/* Writes the current instance location as a JSON pointer. */
static void write_pointer(const struct vctx *c, char *out, size_t outlen)
{
	struct strbuf d;
	char num[24];
	unsigned i;

	strbuf_init(&d, SIZE_MAX);
	strbuf_add(&d, "", 0);
	for (i = 0; i < c->depth; i++) {
		if (c->path[i].key) {
			strbuf_add_pointer_token(&d, c->path[i].key, strlen(c->path[i].key));
		} else {
			snprintf(num, sizeof(num), "%zu", c->path[i].idx);
			strbuf_add_pointer_token(&d, num, strlen(num));
		}
	}
	if (d.failed)
		schema_copy_cut(out, outlen, "...", 3);
	else
		schema_copy_cut(out, outlen, strbuf_str(&d), d.len);
	strbuf_release(&d);
}

static void add_violation(struct vctx *c, const char *kw, const char *fmt, va_list ap)
{
	struct schema_violation *v;

	c->res->total++;
	if (c->res->count >= SCHEMA_MAX_VIOLATIONS)
		return;
	v = &c->res->v[c->res->count++];
	write_pointer(c, v->pointer, sizeof(v->pointer));
	schema_copy_cut(v->keyword, sizeof(v->keyword), kw, strlen(kw));
	vsnprintf(v->message, sizeof(v->message), fmt, ap);
	/* vsnprintf may cut inside a UTF-8 sequence. */
	v->message[utf8_cut(v->message, strlen(v->message), sizeof(v->message) - 1)] = '\0';
}

static void fail(struct vctx *c, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A violation of kw at the current location, unless inside a summarised
 * branch. */
static void fail(struct vctx *c, const char *kw, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet)
		return;
	va_start(ap, fmt);
	add_violation(c, kw, fmt, ap);
	va_end(ap);
}

static void hard_fail(struct vctx *c, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A violation that makes the instance invalid whatever branch it is in. */
static void hard_fail(struct vctx *c, const char *kw, const char *fmt, ...)
{
	va_list ap;

	c->hard = 1;
	va_start(ap, fmt);
	add_violation(c, kw, fmt, ap);
	va_end(ap);
}

static struct mslot *memo_find(struct vctx *c, const struct snode *n, struct json_object *inst)
{
	size_t i;

	if (!c->memo_cap)
		return NULL;
	for (i = hash_ptr2(n, inst) & (c->memo_cap - 1); c->memo[i].used;
	     i = (i + 1) & (c->memo_cap - 1))
		if (c->memo[i].n == n && c->memo[i].inst == inst)
			return &c->memo[i];
	return NULL;
}

static void memo_store(struct vctx *c, const struct snode *n, struct json_object *inst,
		       enum memo_state state)
{
	struct mslot *slot = memo_find(c, n, inst), *slots;
	size_t i, j, cap;

	if (slot) {
		slot->state = (unsigned char)state;
		return;
	}
	if ((c->memo_used + 1) * 2 > c->memo_cap) {
		cap = c->memo_cap ? c->memo_cap * 2 : 256;
		slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return; /* only slower */
		for (i = 0; i < c->memo_cap; i++) {
			if (!c->memo[i].used)
				continue;
			for (j = hash_ptr2(c->memo[i].n, c->memo[i].inst) & (cap - 1);
			     slots[j].used; j = (j + 1) & (cap - 1))
				;
			slots[j] = c->memo[i];
		}
		free(c->memo);
		c->memo = slots;
		c->memo_cap = cap;
	}
	for (i = hash_ptr2(n, inst) & (c->memo_cap - 1); c->memo[i].used;
	     i = (i + 1) & (c->memo_cap - 1))
		;
	c->memo[i].n = n;
	c->memo[i].inst = inst;
	c->memo[i].state = (unsigned char)state;
	c->memo[i].used = 1;
	c->memo_used++;
}

static int eval(struct vctx *c, const struct snode *n, struct json_object *inst, unsigned hops);

/* Evaluates n against a value inside inst (key or index idx), one level
 * deeper. */
static int eval_child(struct vctx *c, const struct snode *n, struct json_object *child,
		      const char *key, size_t idx)
{
	int ok;

	if (n->boolean == 1)
		return 1;
	c->path[c->depth].key = key;
	c->path[c->depth].idx = idx;
	c->depth++;
	if (c->depth > SCHEMA_MAX_DEPTH) {
		hard_fail(c, "depth", "nested deeper than %d levels", SCHEMA_MAX_DEPTH);
		ok = 0;
	} else {
		ok = eval(c, n, child, 0);
	}
	c->depth--;
	return ok;
}

/* Evaluates n in a summarised branch: violations are not recorded, the
 * evaluation stops at the first failure. */
static int eval_quiet(struct vctx *c, const struct snode *n, struct json_object *inst,
		      unsigned hops)
{
	int ok;

	c->quiet++;
	ok = eval(c, n, inst, hops);
	c->quiet--;
	return ok;
}

#define CHECK(cond, kw, ...)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fail(c, kw, __VA_ARGS__);                                                  \
			if (c->quiet)                                                              \
				return 0;                                                          \
			ok = 0;                                                                    \
		}                                                                                  \
	} while (0)

/* cond holds, or what it checked (a subschema, a group of keywords) has
 * reported its own violations: as CHECK, without one of its own. */
#define CHECK_SUB(cond)                                                                            \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			if (c->quiet)                                                              \
				return 0;                                                          \
			ok = 0;                                                                    \
		}                                                                                  \
	} while (0)

/* Matches re against s (unanchored, as ECMA-262's RegExp.test). Returns 1
 * on a match, 0 on none (also for a subject that is not UTF-8), -1 when a
 * PCRE2 limit stopped it: then the validation is over. */
static int regex_match(struct vctx *c, const struct spattern *re, const char *s, size_t len,
		       const char *kw)
{
	char q[QUOTE_MAX + 4];
	int rc;

	if (!c->md) {
		c->md = pcre2_match_data_create(1, NULL);
		if (!c->md) {
			c->oom = c->stop = 1;
			hard_fail(c, "limit", "out of memory");
			return -1;
		}
	}
	rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, c->md, c->s->mctx);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH ||
	    (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21))
		return 0;
	c->stop = 1;
	hard_fail(c, kw, "regular expression '%s' exceeded its match limits",
		  schema_quote(q, sizeof(q), re->source, strlen(re->source)));
	return -1;
}

static int is_multiple(struct json_object *inst, long double x, const struct snode *n)
{
	double q, r;
	uint64_t mag;
	int64_t v;

	if (n->multiple_of_int > 0 && json_object_is_type(inst, json_type_int)) {
		v = json_object_get_int64(inst);
		if (v == INT64_MAX)
			mag = json_object_get_uint64(inst);
		else
			mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
		return mag % (uint64_t)n->multiple_of_int == 0;
	}
	/* x/m is off by a few ulps when both are decimal fractions (0.0075 /
	 * 0.0001 = 75.00000000000001); an infinite quotient is not a multiple. */
	q = (double)x / (double)n->bound[B_MULTIPLE_OF].v;
	if (!isfinite(q))
		return 0;
	r = nearbyint(q);
	return fabs(q - r) <= 4 * DBL_EPSILON * fabs(q);
}

static int eval_generic(struct vctx *c, const struct snode *n, struct json_object *inst)
{
	size_t i, len;
	int ok = 1;

	if (n->types && !(type_bits(inst) & n->types)) {
		char want[96] = "";
		unsigned k, cnt = 0, total = 0, bit;

		if (c->quiet)
			return 0;
		for (k = 0; k < NTYPES; k++) {
			bit = 1u << k;
			if ((n->types & bit) && !(bit == T_INTEGER && (n->types & T_NUMBER)))
				total++;
		}
		for (k = 0; k < NTYPES; k++) {
			bit = 1u << k;
			if (!(n->types & bit) || (bit == T_INTEGER && (n->types & T_NUMBER)))
				continue;
			cnt++;
			strcat(want, cnt == 1 ? "" : cnt == total ? " or " : ", ");
			strcat(want, schema_type_names[k]);
		}
		fail(c, "type", "expected %s, got %s", want, schema_type_name(inst));
		ok = 0;
	}
	if (n->enum_values) {
		len = json_object_array_length(n->enum_values);
		for (i = 0; i < len; i++)
			if (schema_value_equal(inst, json_object_array_get_idx(n->enum_values, i),
					       0))
				break;
		CHECK(i < len, "enum", "expected one of %s", n->enum_text);
	}
	if (n->has_const)
		CHECK(schema_value_equal(inst, n->const_value, 0), "const", "expected %s",
		      n->const_text);
	return ok;
}

static int eval_number(struct vctx *c, const struct snode *n, struct json_object *inst)
{
	long double x = num_value(inst);
	const struct bound *b = n->bound;
	int ok = 1;

	if (n->has_bound[B_MULTIPLE_OF])
		CHECK(is_multiple(inst, x, n), "multipleOf", "expected a multiple of %s",
		      b[B_MULTIPLE_OF].text);
	if (n->has_bound[B_MAXIMUM])
		CHECK(x <= b[B_MAXIMUM].v, "maximum", "expected at most %s", b[B_MAXIMUM].text);
	if (n->has_bound[B_XMAX])
		CHECK(x < b[B_XMAX].v, "exclusiveMaximum", "expected less than %s", b[B_XMAX].text);
	if (n->has_bound[B_MINIMUM])
		CHECK(x >= b[B_MINIMUM].v, "minimum", "expected at least %s", b[B_MINIMUM].text);
	if (n->has_bound[B_XMIN])
		CHECK(x > b[B_XMIN].v, "exclusiveMinimum", "expected more than %s", b[B_XMIN].text);
	return ok;
}

/* contentEncoding base64 and contentMediaType application/json: the string
 * decodes, and what it decodes to parses as JSON. Allocates only for the
 * decoded text and the parsed document. */
static int eval_content(struct vctx *c, const struct snode *n, const char *s, size_t len)
{
	struct json_object *doc = NULL;
	unsigned char *text = NULL;
	char err[128];
	size_t tlen = len;
	int ok = 1, r;

	if (n->content_base64) {
		CHECK(schema_base64_check(s, len, &tlen), "contentEncoding", "not valid base64");
		if (!ok || !n->content_json)
			return ok;
		text = malloc(tlen + 1);
		if (!text) {
			c->oom = c->stop = 1;
			hard_fail(c, "limit", "out of memory");
			return 0;
		}
		tlen = schema_base64_decode(s, len, text);
		s = (const char *)text;
	}
	r = schema_parse_json(s, tlen, &doc, err, sizeof(err));
	json_object_put(doc);
	free(text);
	if (r == -ENOMEM) {
		c->oom = c->stop = 1;
		hard_fail(c, "limit", "out of memory");
		return 0;
	}
	CHECK(r == 0, "contentMediaType", "%s is not application/json: %s",
	      n->content_base64 ? "the decoded text" : "the text", err);
	return ok;
}

static int eval_string(struct vctx *c, const struct snode *n, struct json_object *inst)
{
	const char *s = json_object_get_string(inst);
	size_t len = (size_t)json_object_get_string_len(inst), cp;
	char q[QUOTE_MAX + 4];
	int ok = 1, m;

	if (n->max_length != SIZE_MAX || n->min_length) {
		cp = utf8_count(s, len);
		CHECK(cp <= n->max_length, "maxLength", "expected at most %zu characters, got %zu",
		      n->max_length, cp);
		CHECK(cp >= n->min_length, "minLength", "expected at least %zu characters, got %zu",
		      n->min_length, cp);
	}
	if (n->pattern.code) {
		m = regex_match(c, &n->pattern, s, len, "pattern");
		if (m < 0)
			return 0;
		CHECK(m, "pattern", "does not match pattern '%s'",
		      schema_quote(q, sizeof(q), n->pattern.source, strlen(n->pattern.source)));
	}
	if (n->format) {
		m = schema_format_check((enum schema_format)n->format, s, len);
		if (m < 0) {
			c->oom = c->stop = 1;
			hard_fail(c, "limit", "out of memory");
			return 0;
		}
		CHECK(m, "format", "'%s' is not a valid %s", schema_quote(q, sizeof(q), s, len),
		      schema_format_name((enum schema_format)n->format));
	}
	if (n->content_base64 || n->content_json)
		ok &= eval_content(c, n, s, len);
	return ok;
}

struct uent {
	uint64_t h;
	struct json_object *o;
	size_t idx;
};

static int uent_cmp(const void *pa, const void *pb, void *arg)
{
	const struct uent *a = pa, *b = pb;
	int r = CMP(a->h, b->h);

	if (!r)
		r = schema_value_cmp(a->o, b->o, 0, arg);
	return r ? r : CMP(a->idx, b->idx);
}

/* Finds two equal items: pair by pair for short arrays, else by sorting on
 * (hash, total order), so a large array costs O(n log n), not O(n^2).
 * Returns 1 when all differ, 0 with *ret_i < *ret_j equal, -ENOMEM. */
static int find_duplicate(struct json_object *arr, size_t len, size_t *ret_i, size_t *ret_j)
{
	struct uent *e;
	size_t i, j;
	int oom = 0, r = 1;

	if (len <= UNIQUE_PAIRWISE_MAX) {
		for (i = 0; i < len; i++)
			for (j = i + 1; j < len; j++)
				if (schema_value_equal(json_object_array_get_idx(arr, i),
						       json_object_array_get_idx(arr, j), 0)) {
					*ret_i = i;
					*ret_j = j;
					return 0;
				}
		return 1;
	}
	e = malloc(len * sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		e[i].o = json_object_array_get_idx(arr, i);
		e[i].h = schema_value_hash(e[i].o, 0);
		e[i].idx = i;
	}
	qsort_r(e, len, sizeof(*e), uent_cmp, &oom);
	for (i = 1; i < len && r == 1 && !oom; i++) {
		if (e[i].h == e[i - 1].h && schema_value_cmp(e[i].o, e[i - 1].o, 0, &oom) == 0) {
			*ret_i = e[i - 1].idx;
			*ret_j = e[i].idx;
			r = 0;
		}
	}
	free(e);
	return oom ? -ENOMEM : r;
}

static int eval_array(struct vctx *c, const struct snode *n, struct json_object *inst)
{
	size_t len = json_object_array_length(inst), i, di = 0, dj = 0;
	int ok = 1, found, r;

	CHECK(len <= n->max_items, "maxItems", "expected at most %zu items, got %zu", n->max_items,
	      len);
	CHECK(len >= n->min_items, "minItems", "expected at least %zu items, got %zu", n->min_items,
	      len);
	if (n->unique_items && len > 1) {
		r = find_duplicate(inst, len, &di, &dj);
		if (r < 0) {
			c->oom = c->stop = 1;
			hard_fail(c, "limit", "out of memory");
			return 0;
		}
		CHECK(r, "uniqueItems", "items %zu and %zu are equal", di, dj);
	}
	if (n->has_tuple) {
		for (i = 0; i < len && i < n->ntuple && !c->stop; i++)
			CHECK_SUB(eval_child(c, n->tuple[i], json_object_array_get_idx(inst, i),
					     NULL, i));
		if (n->additional_items && n->additional_items->boolean == 0) {
			CHECK(len <= n->ntuple, n->prefix_items ? "items" : "additionalItems",
			      "expected at most %zu items, got %zu", n->ntuple, len);
		} else if (n->additional_items) {
			for (i = n->ntuple; i < len && !c->stop; i++)
				CHECK_SUB(eval_child(c, n->additional_items,
						     json_object_array_get_idx(inst, i), NULL, i));
		}
	} else if (n->items) {
		for (i = 0; i < len && !c->stop; i++)
			CHECK_SUB(
			    eval_child(c, n->items, json_object_array_get_idx(inst, i), NULL, i));
	}
	if (n->contains) {
		found = 0;
		c->quiet++;
		for (i = 0; i < len && !found && !c->stop; i++)
			found =
			    eval_child(c, n->contains, json_object_array_get_idx(inst, i), NULL, i);
		c->quiet--;
		CHECK(found, "contains", "no item matches the 'contains' schema");
	}
	return ok;
}

static const struct sprop *find_prop(const struct snode *n, const char *key)
{
	size_t lo = 0, hi = n->nprops, mid;
	int r;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		r = strcmp(key, n->sorted_props[mid].key);
		if (r == 0)
			return &n->sorted_props[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* properties, patternProperties and additionalProperties. */
static int eval_members(struct vctx *c, const struct snode *n, struct json_object *inst)
{
	char q[QUOTE_MAX + 4];
	struct json_object *v;
	const struct sprop *sp;
	size_t i;
	int ok = 1, matched, m;

	if (!n->npatprops && !n->additional_props) {
		for (i = 0; i < n->nprops && !c->stop; i++) {
			if (!json_object_object_get_ex(inst, n->props[i].key, &v))
				continue;
			CHECK_SUB(eval_child(c, n->props[i].schema, v, n->props[i].key, 0));
		}
		return ok;
	}
	json_object_object_foreach(inst, key, val)
	{
		if (c->stop)
			return 0;
		matched = 0;
		sp = find_prop(n, key);
		if (sp) {
			matched = 1;
			CHECK_SUB(eval_child(c, sp->schema, val, key, 0));
		}
		for (i = 0; i < n->npatprops; i++) {
			m = regex_match(c, &n->patprops[i].re, key, strlen(key),
					"patternProperties");
			if (m < 0)
				return 0;
			if (!m)
				continue;
			matched = 1;
			CHECK_SUB(eval_child(c, n->patprops[i].schema, val, key, 0));
		}
		if (matched || !n->additional_props)
			continue;
		if (n->additional_props->boolean == 0) {
			if (c->quiet)
				return 0;
			c->path[c->depth].key = key;
			c->depth++;
			fail(c, "additionalProperties", "property '%s' is not allowed",
			     schema_quote(q, sizeof(q), key, strlen(key)));
			c->depth--;
			ok = 0;
		} else {
			CHECK_SUB(eval_child(c, n->additional_props, val, key, 0));
		}
	}
	return ok;
}

static int eval_property_names(struct vctx *c, const struct snode *n, struct json_object *inst)
{
	char q[QUOTE_MAX + 4];
	struct json_object *name;
	int ok = 1, good;

	json_object_object_foreach(inst, key, val)
	{
		(void)val;
		if (c->stop)
			return 0;
		name = json_object_new_string(key);
		if (!name) {
			c->oom = c->stop = 1;
			hard_fail(c, "limit", "out of memory");
			return 0;
		}
		c->tmp++;
		c->quiet++;
		good = eval(c, n->property_names, name, 0);
		c->quiet--;
		c->tmp--;
		json_object_put(name);
		CHECK(good, "propertyNames", "invalid property name '%s'",
		      schema_quote(q, sizeof(q), key, strlen(key)));
	}
	return ok;
}

static int eval_object(struct vctx *c, const struct snode *n, struct json_object *inst,
		       unsigned hops)
{
	size_t cnt = (size_t)json_object_object_length(inst), i, k;
	char q[QUOTE_MAX + 4], q2[QUOTE_MAX + 4];
	const struct sdep *d;
	int ok = 1;

	CHECK(cnt <= n->max_props, "maxProperties", "expected at most %zu properties, got %zu",
	      n->max_props, cnt);
	CHECK(cnt >= n->min_props, "minProperties", "expected at least %zu properties, got %zu",
	      n->min_props, cnt);
	for (i = 0; i < n->nrequired; i++)
		CHECK(json_object_object_get_ex(inst, n->required[i], NULL), "required",
		      "missing required property '%s'",
		      schema_quote(q, sizeof(q), n->required[i], strlen(n->required[i])));
	if (n->nprops || n->npatprops || n->additional_props)
		CHECK_SUB(eval_members(c, n, inst));
	for (i = 0; i < n->ndeps && !c->stop; i++) {
		d = &n->deps[i];
		if (!json_object_object_get_ex(inst, d->key, NULL))
			continue;
		if (d->schema) {
			CHECK_SUB(eval(c, d->schema, inst, hops + 1));
			continue;
		}
		for (k = 0; k < d->nrequired; k++)
			CHECK(json_object_object_get_ex(inst, d->required[k], NULL), "dependencies",
			      "property '%s' requires property '%s'",
			      schema_quote(q, sizeof(q), d->key, strlen(d->key)),
			      schema_quote(q2, sizeof(q2), d->required[k], strlen(d->required[k])));
	}
	if (n->property_names && n->property_names->boolean != 1 && cnt)
		CHECK_SUB(eval_property_names(c, n, inst));
	return ok;
}

static int eval_logic(struct vctx *c, const struct snode *n, struct json_object *inst,
		      unsigned hops)
{
	size_t i, matches = 0, first = 0, second = 0;
	int ok = 1;

	for (i = 0; i < n->nall; i++)
		CHECK_SUB(eval(c, n->all_of[i], inst, hops + 1));
	if (n->nany) {
		for (i = 0; i < n->nany && !matches; i++)
			matches = (size_t)eval_quiet(c, n->any_of[i], inst, hops + 1);
		CHECK(matches, "anyOf",
		      "expected to match at least one of the %zu schemas in 'anyOf'", n->nany);
	}
	if (n->none) {
		matches = 0;
		for (i = 0; i < n->none && matches < 2; i++) {
			if (!eval_quiet(c, n->one_of[i], inst, hops + 1))
				continue;
			if (matches++ == 0)
				first = i;
			else
				second = i;
		}
		CHECK(matches > 0, "oneOf",
		      "expected to match exactly one of the %zu schemas in 'oneOf'", n->none);
		CHECK(matches < 2, "oneOf",
		      "expected to match exactly one schema in 'oneOf', matched %zu and %zu", first,
		      second);
	}
	if (n->not_)
		CHECK(!eval_quiet(c, n->not_, inst, hops + 1), "not",
		      "expected not to match the schema in 'not'");
	if (n->if_ && (n->then_ || n->else_)) {
		const struct snode *branch =
		    eval_quiet(c, n->if_, inst, hops + 1) ? n->then_ : n->else_;

		if (branch)
			CHECK_SUB(eval(c, branch, inst, hops + 1));
	}
	return ok;
}

static int eval_keywords(struct vctx *c, const struct snode *n, struct json_object *inst,
			 unsigned hops)
{
	int ok = eval_generic(c, n, inst);

	if (!ok && c->quiet)
		return 0;
	switch (json_object_get_type(inst)) {
	case json_type_int:
	case json_type_double:
		ok &= eval_number(c, n, inst);
		break;
	case json_type_string:
		ok &= eval_string(c, n, inst);
		break;
	case json_type_array:
		ok &= eval_array(c, n, inst);
		break;
	case json_type_object:
		ok &= eval_object(c, n, inst, hops);
		break;
	default:
		break;
	}
	if (!ok && c->quiet)
		return 0;
	return eval_logic(c, n, inst, hops) && ok;
}

static int eval(struct vctx *c, const struct snode *n, struct json_object *inst, unsigned hops)
{
	struct mslot *m;
	int ok, memo;

	if (n->boolean >= 0) {
		if (n->boolean == 0)
			fail(c, "false", "no value is allowed here");
		return n->boolean;
	}
	if (c->stop)
		return 0;
	if (++c->steps > SCHEMA_MAX_STEPS) {
		c->stop = 1;
		hard_fail(c, "limit", "validation needs more than %lu steps", SCHEMA_MAX_STEPS);
		return 0;
	}
	if (hops > SCHEMA_MAX_DEPTH || c->frames >= MAX_FRAMES) {
		hard_fail(c, "depth", "schemas nested deeper than %d levels",
			  hops > SCHEMA_MAX_DEPTH ? SCHEMA_MAX_DEPTH : MAX_FRAMES);
		return 0;
	}
	memo = n->shared && !c->tmp;
	if (memo && (m = memo_find(c, n, inst)) != NULL) {
		if (m->state == MEMO_VALID)
			return 1;
		if (m->state == MEMO_INVALID_REPORTED || c->quiet)
			return 0;
	}
	c->frames++;
	ok = n->ref ? eval(c, n->ref, inst, hops + 1) : eval_keywords(c, n, inst, hops);
	c->frames--;
	if (memo && !c->stop && !c->hard)
		memo_store(c, n, inst,
			   ok         ? MEMO_VALID
			   : c->quiet ? MEMO_INVALID_QUIET
				      : MEMO_INVALID_REPORTED);
	return ok;
}

int schema_validate(const struct schema *s, struct json_object *instance, struct schema_result *res)
{
	struct vctx c;
	int ok;

	memset(&c, 0, sizeof(c));
	c.s = s;
	c.res = res;
	res->count = 0;
	res->total = 0;
	ok = eval(&c, s->root, instance, 0);
	if (c.hard)
		ok = 0;
	if (!ok && res->total == 0) {
		c.quiet = 0;
		fail(&c, "schema", "invalid");
	}
	free(c.memo);
	pcre2_match_data_free(c.md);
	if (c.oom)
		return -ENOMEM;
	return ok ? 0 : 1;
}

void schema_result_set_json_error(struct schema_result *res, const char *msg)
{
	struct schema_violation *v = &res->v[0];

	res->count = 1;
	res->total = 1;
	v->pointer[0] = '\0';
	snprintf(v->keyword, sizeof(v->keyword), "json");
	schema_copy_cut(v->message, sizeof(v->message), msg, strlen(msg));
}

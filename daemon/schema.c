/* JSON Schema draft-07 over json-c: compiles a schema document into a graph
 * of immutable nodes ($ref edges resolved once, regexes compiled with PCRE2,
 * loops that consume no instance depth rejected) and validates instances
 * against it with bounded recursion, bounded steps and memoised branches.
 * Formats are checked in schema_format.c, regexes translated in
 * schema_regex.c, JSON parsed strictly in schema_json.c. */
#include "schema.h"
#include "path.h"
#include "readfile.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema_format.h"
#include "schema_regex.h"

/* Most nested eval() calls per validation (instance depth times schemas
 * applied per location); past it a "depth" violation ends the branch. */
#define MAX_FRAMES 1024
/* Arrays up to this size are checked for uniqueItems pair by pair. */
#define UNIQUE_PAIRWISE_MAX 16
/* Bytes of a user string quoted in a message. */
#define QUOTE_MAX 48

#define META_URI "http://json-schema.org/draft-07/schema"
/* Base URI of a document without "$id": relative references resolve
 * under it and name files in base_dir ("braced:/sub/x.json"). */
#define FILE_BASE "braced:/"

/* The draft-07 meta-schema, as published at META_URI. */
static const char meta_schema_text[] =
    "{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
    "\"$id\":\"http://json-schema.org/draft-07/schema#\","
    "\"title\":\"Core schema meta-schema\","
    "\"definitions\":{"
    "\"schemaArray\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"$ref\":\"#\"}},"
    "\"nonNegativeInteger\":{\"type\":\"integer\",\"minimum\":0},"
    "\"nonNegativeIntegerDefault0\":{\"allOf\":[{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
    "{\"default\":0}]},"
    "\"simpleTypes\":{\"enum\":[\"array\",\"boolean\",\"integer\",\"null\",\"number\","
    "\"object\",\"string\"]},"
    "\"stringArray\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"uniqueItems\":true,"
    "\"default\":[]}},"
    "\"type\":[\"object\",\"boolean\"],"
    "\"properties\":{"
    "\"$id\":{\"type\":\"string\",\"format\":\"uri-reference\"},"
    "\"$schema\":{\"type\":\"string\",\"format\":\"uri\"},"
    "\"$ref\":{\"type\":\"string\",\"format\":\"uri-reference\"},"
    "\"$comment\":{\"type\":\"string\"},"
    "\"title\":{\"type\":\"string\"},"
    "\"description\":{\"type\":\"string\"},"
    "\"default\":true,"
    "\"readOnly\":{\"type\":\"boolean\",\"default\":false},"
    "\"writeOnly\":{\"type\":\"boolean\",\"default\":false},"
    "\"examples\":{\"type\":\"array\",\"items\":true},"
    "\"multipleOf\":{\"type\":\"number\",\"exclusiveMinimum\":0},"
    "\"maximum\":{\"type\":\"number\"},"
    "\"exclusiveMaximum\":{\"type\":\"number\"},"
    "\"minimum\":{\"type\":\"number\"},"
    "\"exclusiveMinimum\":{\"type\":\"number\"},"
    "\"maxLength\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
    "\"minLength\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
    "\"pattern\":{\"type\":\"string\",\"format\":\"regex\"},"
    "\"additionalItems\":{\"$ref\":\"#\"},"
    "\"items\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#/definitions/schemaArray\"}],"
    "\"default\":true},"
    "\"maxItems\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
    "\"minItems\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
    "\"uniqueItems\":{\"type\":\"boolean\",\"default\":false},"
    "\"contains\":{\"$ref\":\"#\"},"
    "\"maxProperties\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
    "\"minProperties\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
    "\"required\":{\"$ref\":\"#/definitions/stringArray\"},"
    "\"additionalProperties\":{\"$ref\":\"#\"},"
    "\"definitions\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
    "\"default\":{}},"
    "\"properties\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
    "\"default\":{}},"
    "\"patternProperties\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
    "\"propertyNames\":{\"format\":\"regex\"},\"default\":{}},"
    "\"dependencies\":{\"type\":\"object\",\"additionalProperties\":{\"anyOf\":["
    "{\"$ref\":\"#\"},{\"$ref\":\"#/definitions/stringArray\"}]}},"
    "\"propertyNames\":{\"$ref\":\"#\"},"
    "\"const\":true,"
    "\"enum\":{\"type\":\"array\",\"items\":true},"
    "\"type\":{\"anyOf\":[{\"$ref\":\"#/definitions/simpleTypes\"},{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/definitions/simpleTypes\"},\"minItems\":1,\"uniqueItems\":true}]},"
    "\"format\":{\"type\":\"string\"},"
    "\"contentMediaType\":{\"type\":\"string\"},"
    "\"contentEncoding\":{\"type\":\"string\"},"
    "\"if\":{\"$ref\":\"#\"},"
    "\"then\":{\"$ref\":\"#\"},"
    "\"else\":{\"$ref\":\"#\"},"
    "\"allOf\":{\"$ref\":\"#/definitions/schemaArray\"},"
    "\"anyOf\":{\"$ref\":\"#/definitions/schemaArray\"},"
    "\"oneOf\":{\"$ref\":\"#/definitions/schemaArray\"},"
    "\"not\":{\"$ref\":\"#\"}},"
    "\"default\":true}";

/* ---- small helpers ---------------------------------------------------- */

enum {
	T_NULL = 1u << 0,
	T_BOOLEAN = 1u << 1,
	T_OBJECT = 1u << 2,
	T_ARRAY = 1u << 3,
	T_NUMBER = 1u << 4,
	T_STRING = 1u << 5,
	T_INTEGER = 1u << 6,
};

static const char *const type_names[] = { "null",   "boolean", "object", "array",
					  "number", "string",  "integer" };
#define NTYPES 7

/* A growable string; on OOM it keeps failing and says so in oom. */
struct dstr {
	char *p;
	size_t len, cap;
	int oom;
};

static void dstr_add(struct dstr *d, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (d->oom)
		return;
	if (d->len + n + 1 > d->cap) {
		cap = d->cap ? d->cap : 64;
		while (cap < d->len + n + 1)
			cap *= 2;
		p = realloc(d->p, cap);
		if (!p) {
			d->oom = 1;
			return;
		}
		d->p = p;
		d->cap = cap;
	}
	memcpy(d->p + d->len, s, n);
	d->len += n;
	d->p[d->len] = '\0';
}

static void dstr_adds(struct dstr *d, const char *s)
{
	dstr_add(d, s, strlen(s));
}

static void dstr_truncate(struct dstr *d, size_t len)
{
	if (d->p && len <= d->len) {
		d->len = len;
		d->p[len] = '\0';
	}
}

static const char *dstr_str(const struct dstr *d)
{
	return d->p ? d->p : "";
}

/* Appends a JSON pointer reference token, escaping '~' and '/'. */
static void dstr_add_token(struct dstr *d, const char *s, size_t n)
{
	size_t i, start = 0;

	dstr_add(d, "/", 1);
	for (i = 0; i < n; i++) {
		if (s[i] != '~' && s[i] != '/')
			continue;
		dstr_add(d, s + start, i - start);
		dstr_add(d, s[i] == '~' ? "~0" : "~1", 2);
		start = i + 1;
	}
	dstr_add(d, s + start, n - start);
}

/* Length of the longest prefix of s[0..n) of at most max bytes that ends on
 * a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* Copies s into dst (size dstlen), cut at a character boundary and ended by
 * "..." when it does not fit. */
static void copy_cut(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t k;

	if (dstlen == 0)
		return;
	if (n < dstlen) {
		memcpy(dst, s, n);
		dst[n] = '\0';
		return;
	}
	k = dstlen > 4 ? utf8_cut(s, n, dstlen - 4) : 0;
	memcpy(dst, s, k);
	memcpy(dst + k, "...", dstlen > 4 ? 4 : 0);
	if (dstlen <= 4)
		dst[0] = '\0';
}

/* A user string made safe for a message: control bytes become '?', long
 * strings are cut. Returns buf. */
static const char *quote(char *buf, size_t buflen, const char *s, size_t n)
{
	size_t i;

	copy_cut(buf, buflen, s, n);
	for (i = 0; buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	return buf;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ n);
}

static uint64_t hash_ptr2(const void *a, const void *b)
{
	return mix64((uint64_t)(uintptr_t)a * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)b);
}

/* ---- numbers ---------------------------------------------------------- */

static int is_number(struct json_object *o)
{
	enum json_type t = json_object_get_type(o);

	return t == json_type_int || t == json_type_double;
}

/* The exact value of a json-c number: int64, uint64 and double all fit a
 * long double (64-bit mantissa on x86-64, wider elsewhere or equal to
 * double where long double is double, which loses only int64 precision). */
static long double num_value(struct json_object *o)
{
	int64_t v;

	if (json_object_is_type(o, json_type_double))
		return json_object_get_double(o);
	v = json_object_get_int64(o);
	if (v == INT64_MAX)
		return (long double)json_object_get_uint64(o);
	return (long double)v;
}

static unsigned type_bits(struct json_object *o)
{
	double d;

	switch (json_object_get_type(o)) {
	case json_type_null:
		return T_NULL;
	case json_type_boolean:
		return T_BOOLEAN;
	case json_type_int:
		return T_NUMBER | T_INTEGER;
	case json_type_double:
		d = json_object_get_double(o);
		return T_NUMBER | (isfinite(d) && floor(d) == d ? T_INTEGER : 0);
	case json_type_string:
		return T_STRING;
	case json_type_object:
		return T_OBJECT;
	case json_type_array:
		return T_ARRAY;
	}
	return 0;
}

static const char *type_name(struct json_object *o)
{
	unsigned b = type_bits(o);

	if (b & T_INTEGER)
		return "integer";
	if (b & T_NUMBER)
		return "number";
	return json_type_to_name(json_object_get_type(o));
}

/* Writes a schema number as its shortest exact text. */
static void number_text(struct json_object *o, char *buf, size_t len)
{
	double d;

	if (json_object_is_type(o, json_type_int)) {
		if (json_object_get_int64(o) == INT64_MAX)
			snprintf(buf, len, "%llu", (unsigned long long)json_object_get_uint64(o));
		else
			snprintf(buf, len, "%lld", (long long)json_object_get_int64(o));
		return;
	}
	d = json_object_get_double(o);
	snprintf(buf, len, "%.15g", d);
	if (strtod(buf, NULL) != d)
		snprintf(buf, len, "%.17g", d);
}

/* ---- equality, hashing and ordering of JSON values -------------------- */

/* Deeper than this, values compare by identity (only hand-built instances
 * get there: parsed ones stop at SCHEMA_MAX_DEPTH). */
#define VALUE_DEPTH_MAX (2 * SCHEMA_MAX_DEPTH)

static int json_equal(struct json_object *a, struct json_object *b, unsigned depth)
{
	enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
	size_t i, n;

	if (is_number(a) && is_number(b))
		return num_value(a) == num_value(b);
	if (ta != tb)
		return 0;
	switch (ta) {
	case json_type_null:
		return 1;
	case json_type_boolean:
		return json_object_get_boolean(a) == json_object_get_boolean(b);
	case json_type_string:
		n = (size_t)json_object_get_string_len(a);
		return n == (size_t)json_object_get_string_len(b) &&
		       memcmp(json_object_get_string(a), json_object_get_string(b), n) == 0;
	case json_type_array:
		if (depth >= VALUE_DEPTH_MAX)
			return a == b;
		n = json_object_array_length(a);
		if (n != json_object_array_length(b))
			return 0;
		for (i = 0; i < n; i++)
			if (!json_equal(json_object_array_get_idx(a, i),
					json_object_array_get_idx(b, i), depth + 1))
				return 0;
		return 1;
	case json_type_object: {
		struct json_object *bv;

		if (depth >= VALUE_DEPTH_MAX)
			return a == b;
		if (json_object_object_length(a) != json_object_object_length(b))
			return 0;
		json_object_object_foreach(a, key, av)
		{
			if (!json_object_object_get_ex(b, key, &bv) ||
			    !json_equal(av, bv, depth + 1))
				return 0;
		}
		return 1;
	}
	default:
		return 0;
	}
}

static uint64_t hash_number(long double v)
{
	long double m;
	int e = 0;
	uint64_t mant;

	if (v == 0 || !isfinite(v))
		return mix64(v == 0 ? 3 : 4);
	m = frexpl(fabsl(v), &e);
	mant = (uint64_t)ldexpl(m, 64);
	return mix64(mant ^ mix64((uint64_t)(int64_t)e * 2 + (v < 0)));
}

/* A hash that equal values (json_equal) share: numbers by value, objects
 * independent of key order. */
static uint64_t json_hash(struct json_object *o, unsigned depth)
{
	uint64_t h, sum = 0;
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_null:
		return 1;
	case json_type_boolean:
		return json_object_get_boolean(o) ? 2 : 5;
	case json_type_int:
	case json_type_double:
		return hash_number(num_value(o));
	case json_type_string:
		return hash_bytes(json_object_get_string(o), (size_t)json_object_get_string_len(o));
	case json_type_array:
		if (depth >= VALUE_DEPTH_MAX)
			return 6;
		n = json_object_array_length(o);
		h = mix64(7 + n);
		for (i = 0; i < n; i++)
			h = mix64(h ^ json_hash(json_object_array_get_idx(o, i), depth + 1));
		return h;
	case json_type_object:
		if (depth >= VALUE_DEPTH_MAX)
			return 8;
		json_object_object_foreach(o, key, val)
		{
			h = hash_bytes(key, strlen(key));
			sum += mix64(h ^ (json_hash(val, depth + 1) * 0x9e3779b97f4a7c15ULL));
		}
		return mix64(sum ^ 9);
	}
	return 0;
}

static int type_rank(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		return 0;
	case json_type_boolean:
		return 1;
	case json_type_int:
	case json_type_double:
		return 2;
	case json_type_string:
		return 3;
	case json_type_array:
		return 4;
	case json_type_object:
		return 5;
	}
	return 6;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)

/* A total order whose equal elements are exactly the json_equal ones. Sets
 * *oom when it could not allocate (the order is then arbitrary). */
static int json_cmp(struct json_object *a, struct json_object *b, unsigned depth, int *oom);

static int object_cmp(struct json_object *a, struct json_object *b, unsigned depth, int *oom)
{
	size_t n = (size_t)json_object_object_length(a), i = 0, j = 0;
	const char **ka, **kb;
	int r;

	r = CMP(n, (size_t)json_object_object_length(b));
	if (r || n == 0)
		return r;
	ka = malloc(2 * n * sizeof(*ka));
	if (!ka) {
		*oom = 1;
		return CMP((uintptr_t)a, (uintptr_t)b);
	}
	kb = ka + n;
	json_object_object_foreach(a, key1, v1)
	{
		(void)v1;
		ka[i++] = key1;
	}
	json_object_object_foreach(b, key2, v2)
	{
		(void)v2;
		kb[j++] = key2;
	}
	qsort(ka, n, sizeof(*ka), cmp_cstr);
	qsort(kb, n, sizeof(*kb), cmp_cstr);
	for (i = 0; i < n && r == 0; i++)
		r = strcmp(ka[i], kb[i]);
	for (i = 0; i < n && r == 0; i++)
		r = json_cmp(json_object_object_get(a, ka[i]), json_object_object_get(b, ka[i]),
			     depth + 1, oom);
	free(ka);
	return r;
}

static int json_cmp(struct json_object *a, struct json_object *b, unsigned depth, int *oom)
{
	size_t na, nb, i;
	long double x, y;
	int r = CMP(type_rank(a), type_rank(b));

	if (r)
		return r;
	switch (json_object_get_type(a)) {
	case json_type_null:
		return 0;
	case json_type_boolean:
		return CMP(json_object_get_boolean(a), json_object_get_boolean(b));
	case json_type_int:
	case json_type_double:
		x = num_value(a);
		y = num_value(b);
		return CMP(x, y);
	case json_type_string:
		na = (size_t)json_object_get_string_len(a);
		nb = (size_t)json_object_get_string_len(b);
		r = memcmp(json_object_get_string(a), json_object_get_string(b), na < nb ? na : nb);
		return r ? r : CMP(na, nb);
	case json_type_array:
		if (depth >= VALUE_DEPTH_MAX)
			return CMP((uintptr_t)a, (uintptr_t)b);
		na = json_object_array_length(a);
		nb = json_object_array_length(b);
		if (na != nb)
			return CMP(na, nb);
		for (i = 0; i < na && r == 0; i++)
			r = json_cmp(json_object_array_get_idx(a, i),
				     json_object_array_get_idx(b, i), depth + 1, oom);
		return r;
	case json_type_object:
		if (depth >= VALUE_DEPTH_MAX)
			return CMP((uintptr_t)a, (uintptr_t)b);
		return object_cmp(a, b, depth, oom);
	}
	return 0;
}

/* ---- compiled schema -------------------------------------------------- */

struct bound {
	long double v;
	char text[32];
};

struct sprop {
	const char *key; /* borrowed from the schema document */
	struct snode *schema;
};

struct spattern {
	pcre2_code *code;
	const char *source; /* borrowed */
};

struct spatprop {
	struct spattern re;
	struct snode *schema;
};

struct sdep {
	const char *key;
	struct snode *schema;  /* schema form, or NULL */
	const char **required; /* array form */
	size_t nrequired;
};

enum { B_MULTIPLE_OF, B_MAXIMUM, B_MINIMUM, B_XMAX, B_XMIN, B__COUNT };

struct snode {
	signed char boolean;  /* 1 true, 0 false, -1 an object schema */
	unsigned char shared; /* evaluated from more than one place: memoised */
	unsigned char unique_items;
	unsigned char has_const;
	unsigned char has_bound[B__COUNT];
	unsigned char color; /* cycle detection */
	unsigned types;      /* T_* allowed; 0: no "type" */
	unsigned indegree;
	unsigned height;
	char *where; /* "doc#/pointer", for compile errors */
	struct snode *ref;

	struct json_object *enum_values; /* borrowed from a document the schema holds */
	char *enum_text;
	struct json_object *const_value;
	char *const_text;

	struct bound bound[B__COUNT];
	int64_t multiple_of_int; /* multipleOf as an integer, 0 when it is not one */
	size_t max_length, min_length, max_items, min_items, max_props, min_props;
	struct spattern pattern;
	unsigned char format;         /* enum schema_format; NONE when not asserted */
	unsigned char content_base64; /* contentEncoding: base64, asserted */
	unsigned char content_json;   /* contentMediaType: application/json, asserted */

	struct snode *items;
	struct snode **tuple;
	size_t ntuple;
	int has_tuple;
	unsigned char prefix_items; /* the tuple is prefixItems, additional_items "items" */
	struct snode *additional_items;
	struct snode *contains;

	const char **required;
	size_t nrequired;
	struct sprop *props;
	size_t nprops;
	struct sprop *sorted_props; /* props sorted by key, for lookups */
	struct spatprop *patprops;
	size_t npatprops;
	struct snode *additional_props;
	struct sdep *deps;
	size_t ndeps;
	struct snode *property_names;

	struct snode *if_, *then_, *else_, *not_;
	struct snode **all_of, **any_of, **one_of;
	size_t nall, nany, none;
};

/* Maps a json_object (a schema location) or a URI string to a pointer. */
struct hslot {
	const void *key; /* json_object *, or char * owned by the map when strkeys */
	void *val;
};

struct hmap {
	struct hslot *slots;
	size_t cap, used;
	int strkeys;
};

static uint64_t hmap_hash(const struct hmap *m, const void *key)
{
	return m->strkeys ? hash_bytes(key, strlen(key)) : hash_ptr2(key, NULL);
}

static int hmap_eq(const struct hmap *m, const void *a, const void *b)
{
	return m->strkeys ? strcmp(a, b) == 0 : a == b;
}

static void *hmap_get(const struct hmap *m, const void *key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = hmap_hash(m, key) & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
		if (hmap_eq(m, m->slots[i].key, key))
			return m->slots[i].val;
	return NULL;
}

/* Inserts key (copied for string maps) → val; the key must be absent.
 * Returns 0 or -ENOMEM. */
static int hmap_put(struct hmap *m, const void *key, void *val)
{
	size_t i, j, cap;
	struct hslot *slots;

	if ((m->used + 1) * 2 > m->cap) {
		cap = m->cap ? m->cap * 2 : 64;
		slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return -ENOMEM;
		for (i = 0; i < m->cap; i++) {
			if (!m->slots[i].key)
				continue;
			for (j = hmap_hash(m, m->slots[i].key) & (cap - 1); slots[j].key;
			     j = (j + 1) & (cap - 1))
				;
			slots[j] = m->slots[i];
		}
		free(m->slots);
		m->slots = slots;
		m->cap = cap;
	}
	if (m->strkeys) {
		key = strdup(key);
		if (!key)
			return -ENOMEM;
	}
	for (i = hmap_hash(m, key) & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
		;
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->used++;
	return 0;
}

static void hmap_release(struct hmap *m)
{
	size_t i;

	if (m->strkeys)
		for (i = 0; i < m->cap; i++)
			free((void *)m->slots[i].key);
	free(m->slots);
	m->slots = NULL;
	m->cap = m->used = 0;
}

/* A resource: a document or subschema that a URI (without fragment) names,
 * or with a plain-name fragment, a location-independent identifier. */
struct resource {
	struct json_object *obj;
	char *base; /* base URI of the resource */
};

struct schema {
	struct snode *root;
	struct snode **nodes;
	size_t nnodes, capnodes;
	struct json_object **docs; /* references held: the main document, files, meta */
	size_t ndocs;
	pcre2_match_context *mctx;
	pcre2_compile_context *cctx;
};

/* ---- URI references (RFC 3986 section 5) ------------------------------ */

struct uri {
	const char *scheme, *auth, *path, *query, *frag;
	size_t scheme_len, auth_len, path_len, query_len, frag_len;
	int has_scheme, has_auth, has_query, has_frag;
};

static void uri_parse(const char *s, struct uri *u)
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
static void remove_dots(struct dstr *out, const char *in, size_t n, int *climbed)
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
			dstr_add(out, "/", 1);
			i += 2;
		} else if ((n - i >= 4 && memcmp(in + i, "/../", 4) == 0) ||
			   (n - i == 3 && memcmp(in + i, "/..", 3) == 0)) {
			k = out->len;
			if (k == start)
				*climbed = 1;
			while (k > start && out->p[k - 1] != '/')
				k--;
			dstr_truncate(out, k > start ? k - 1 : start);
			if (n - i == 3) {
				dstr_add(out, "/", 1);
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
			dstr_add(out, in + i, k - i);
			i = k;
		}
	}
}

/* Resolves ref against the absolute URI base into a malloc'd absolute URI
 * (RFC 3986 5.2.2: pick the target's parts, then compose them once); sets
 * *ret_climbed when a ".." went above the root. NULL on OOM. */
static char *uri_resolve(const char *base, const char *ref, int *ret_climbed)
{
	const struct uri *scheme, *auth, *query;
	struct dstr out = { 0 }, path = { 0 }, merged = { 0 };
	struct uri b, r;
	int climbed = 0;
	size_t k;

	uri_parse(base, &b);
	uri_parse(ref, &r);
	scheme = r.has_scheme ? &r : &b;
	auth = r.has_scheme || r.has_auth ? &r : &b;
	query = &r;
	if (r.has_scheme || r.has_auth || (r.path_len > 0 && r.path[0] == '/')) {
		remove_dots(&path, r.path, r.path_len, &climbed);
	} else if (r.path_len == 0) {
		dstr_add(&path, b.path, b.path_len);
		if (!r.has_query)
			query = &b;
	} else {
		/* A relative path replaces the base's last segment. */
		if (b.has_auth && b.path_len == 0) {
			dstr_add(&merged, "/", 1);
		} else {
			for (k = b.path_len; k > 0 && b.path[k - 1] != '/'; k--)
				;
			dstr_add(&merged, b.path, k);
		}
		dstr_add(&merged, r.path, r.path_len);
		remove_dots(&path, dstr_str(&merged), merged.len, &climbed);
	}
	if (scheme->has_scheme) {
		dstr_add(&out, scheme->scheme, scheme->scheme_len);
		dstr_add(&out, ":", 1);
	}
	if (auth->has_auth) {
		dstr_add(&out, "//", 2);
		dstr_add(&out, auth->auth, auth->auth_len);
	}
	dstr_add(&out, dstr_str(&path), path.len);
	if (query->has_query) {
		dstr_add(&out, "?", 1);
		dstr_add(&out, query->query, query->query_len);
	}
	if (r.has_frag) {
		dstr_add(&out, "#", 1);
		dstr_add(&out, r.frag, r.frag_len);
	}
	dstr_add(&out, "", 0);
	free(merged.p);
	if (out.oom || path.oom || merged.oom) {
		free(out.p);
		free(path.p);
		return NULL;
	}
	free(path.p);
	if (ret_climbed)
		*ret_climbed = climbed;
	return out.p;
}

/* Percent-decodes s in place; returns -EINVAL on a bad escape or a NUL. */
static int percent_decode(char *s)
{
	char *w = s;
	int h, l;

	for (; *s; s++) {
		if (*s != '%') {
			*w++ = *s;
			continue;
		}
		h = path_hex_digit((unsigned char)s[1]);
		l = h < 0 ? -1 : path_hex_digit((unsigned char)s[2]);
		if (l < 0 || (h == 0 && l == 0))
			return -EINVAL;
		*w++ = (char)(h * 16 + l);
		s += 2;
	}
	*w = '\0';
	return 0;
}

/* Follows the JSON pointer ptr (already percent-decoded) from root. Returns
 * 0 and *ret, or -ENOENT. */
static int pointer_walk(struct json_object *root, const char *ptr, struct json_object **ret)
{
	struct json_object *cur = root, *next;
	struct dstr tok = { 0 };
	const char *p = ptr, *end;
	char *e;
	size_t i;
	unsigned long idx;
	int r = 0;

	while (*p == '/') {
		p++;
		for (end = p; *end && *end != '/'; end++)
			;
		dstr_truncate(&tok, 0);
		dstr_add(&tok, "", 0);
		for (i = 0; p + i < end; i++) {
			if (p[i] == '~' && p + i + 1 < end &&
			    (p[i + 1] == '0' || p[i + 1] == '1')) {
				dstr_add(&tok, p[i + 1] == '0' ? "~" : "/", 1);
				i++;
			} else if (p[i] == '~') {
				r = -ENOENT;
				goto out;
			} else {
				dstr_add(&tok, p + i, 1);
			}
		}
		if (tok.oom) {
			r = -ENOMEM;
			goto out;
		}
		if (json_object_is_type(cur, json_type_object)) {
			if (!json_object_object_get_ex(cur, dstr_str(&tok), &next)) {
				r = -ENOENT;
				goto out;
			}
		} else if (json_object_is_type(cur, json_type_array)) {
			const char *t = dstr_str(&tok);

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
	free(tok.p);
	return r;
}

/* ---- the compiler ----------------------------------------------------- */

struct pending_ref {
	struct snode *from;
	char *uri;   /* absolute, with its fragment */
	char *ref;   /* as written */
	char *where; /* location of the "$ref" */
};

struct compiler {
	struct schema *s;
	char *err;
	size_t errlen;
	int failed;
	const char *base_dir;
	unsigned nfiles;
	struct hmap objs;      /* json_object * → struct snode * */
	struct hmap resources; /* URI → struct resource * */
	struct resource **res;
	size_t nres, capres;
	struct pending_ref *refs;
	size_t nrefs, caprefs, nextref;
	const char *main_base;
	struct dstr label; /* document of the location being compiled ("" the main one) */
	struct dstr ptr;   /* JSON pointer of that location */
	unsigned depth;
	unsigned flags; /* SCHEMA_* compile flags */
};

static void cfail(struct compiler *cc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the first error as "LABEL#POINTER: message". */
static void cfail(struct compiler *cc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (cc->failed)
		return;
	cc->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cc->errlen)
		snprintf(cc->err, cc->errlen, "%s#%s: %s", dstr_str(&cc->label), dstr_str(&cc->ptr),
			 msg);
}

static void coom(struct compiler *cc)
{
	if (cc->failed)
		return;
	cc->failed = 1;
	if (cc->errlen)
		snprintf(cc->err, cc->errlen, "out of memory");
}

/* Points the error at parent[key]. */
static void cfail_at(struct compiler *cc, const char *key, const char *what)
{
	size_t mark = cc->ptr.len;

	dstr_add_token(&cc->ptr, key, strlen(key));
	cfail(cc, "%s", what);
	dstr_truncate(&cc->ptr, mark);
}

static struct snode *node_new(struct compiler *cc)
{
	struct schema *s = cc->s;
	struct snode *n, **nodes;
	size_t cap;

	if (s->nnodes >= SCHEMA_MAX_NODES) {
		cfail(cc, "more than %d schemas", SCHEMA_MAX_NODES);
		return NULL;
	}
	if (s->nnodes == s->capnodes) {
		cap = s->capnodes ? s->capnodes * 2 : 32;
		nodes = realloc(s->nodes, cap * sizeof(*nodes));
		if (!nodes) {
			coom(cc);
			return NULL;
		}
		s->nodes = nodes;
		s->capnodes = cap;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		coom(cc);
		return NULL;
	}
	n->boolean = -1;
	n->max_length = n->max_items = n->max_props = SIZE_MAX;
	s->nodes[s->nnodes++] = n;
	n->where = malloc(cc->label.len + cc->ptr.len + 2);
	if (!n->where) {
		coom(cc);
		return NULL;
	}
	sprintf(n->where, "%s#%s", dstr_str(&cc->label), dstr_str(&cc->ptr));
	return n;
}

static void node_free(struct snode *n)
{
	size_t i;

	free(n->where);
	free(n->enum_text);
	free(n->const_text);
	pcre2_code_free(n->pattern.code);
	free(n->tuple);
	free(n->required);
	free(n->props);
	free(n->sorted_props);
	for (i = 0; i < n->npatprops; i++)
		pcre2_code_free(n->patprops[i].re.code);
	free(n->patprops);
	for (i = 0; i < n->ndeps; i++)
		free(n->deps[i].required);
	free(n->deps);
	free(n->all_of);
	free(n->any_of);
	free(n->one_of);
	free(n);
}

static struct resource *resource_find(struct compiler *cc, const char *uri)
{
	return hmap_get(&cc->resources, uri);
}

/* Registers uri → obj with base; an identical registration is a no-op. */
static int resource_add(struct compiler *cc, const char *uri, struct json_object *obj,
			const char *base)
{
	struct resource *r = resource_find(cc, uri), **res;
	size_t cap;

	if (r) {
		if (r->obj == obj)
			return 0;
		cfail(cc, "'$id' '%s' is already used elsewhere", uri);
		return -EINVAL;
	}
	if (cc->nres == cc->capres) {
		cap = cc->capres ? cc->capres * 2 : 8;
		res = realloc(cc->res, cap * sizeof(*res));
		if (!res)
			goto oom;
		cc->res = res;
		cc->capres = cap;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto oom;
	r->obj = obj;
	r->base = strdup(base);
	if (!r->base) {
		free(r);
		goto oom;
	}
	cc->res[cc->nres++] = r;
	if (hmap_put(&cc->resources, uri, r) < 0)
		goto oom;
	return 0;
oom:
	coom(cc);
	return -ENOMEM;
}

static int add_pending(struct compiler *cc, struct snode *from, const char *base, const char *ref)
{
	struct pending_ref *refs;
	size_t cap;
	char *uri;
	int climbed = 0;

	if (cc->nrefs == cc->caprefs) {
		cap = cc->caprefs ? cc->caprefs * 2 : 16;
		refs = realloc(cc->refs, cap * sizeof(*refs));
		if (!refs)
			goto oom;
		cc->refs = refs;
		cc->caprefs = cap;
	}
	uri = uri_resolve(base, ref, &climbed);
	if (!uri)
		goto oom;
	if (climbed && strncmp(uri, FILE_BASE, strlen(FILE_BASE)) == 0) {
		free(uri);
		cfail_at(cc, "$ref", "'$ref' leaves the schema directory");
		return -EINVAL;
	}
	cc->refs[cc->nrefs].from = from;
	cc->refs[cc->nrefs].uri = uri;
	cc->refs[cc->nrefs].ref = strdup(ref);
	cc->refs[cc->nrefs].where = strdup(from->where);
	if (!cc->refs[cc->nrefs].where || !cc->refs[cc->nrefs].ref) {
		free(cc->refs[cc->nrefs].where);
		free(cc->refs[cc->nrefs].ref);
		free(uri);
		goto oom;
	}
	cc->nrefs++;
	return 0;
oom:
	coom(cc);
	return -ENOMEM;
}

static struct snode *compile_node(struct compiler *cc, struct json_object *obj, const char *base);

/* Compiles the schema at parent[key] (and [sub] below it when sub is not
 * NULL: an array index or a property name), tracking the pointer. */
static struct snode *compile_at(struct compiler *cc, struct json_object *obj, const char *base,
				const char *key, const char *sub, size_t idx)
{
	size_t mark = cc->ptr.len;
	char num[24];
	struct snode *n;

	dstr_add_token(&cc->ptr, key, strlen(key));
	if (sub)
		dstr_add_token(&cc->ptr, sub, strlen(sub));
	else if (idx != SIZE_MAX) {
		snprintf(num, sizeof(num), "%zu", idx);
		dstr_add_token(&cc->ptr, num, strlen(num));
	}
	n = compile_node(cc, obj, base);
	dstr_truncate(&cc->ptr, mark);
	return n;
}

/* Reads a non-negative integer keyword (1.0 counts). Returns 1 when present
 * and valid, 0 when absent, -1 on error. */
static int get_size(struct compiler *cc, struct json_object *obj, const char *key, size_t *ret)
{
	struct json_object *v;
	char msg[96];
	long double x;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!(type_bits(v) & T_INTEGER) || (x = num_value(v)) < 0) {
		snprintf(msg, sizeof(msg), "'%s' must be a non-negative integer", key);
		cfail_at(cc, key, msg);
		return -1;
	}
	*ret = x >= (long double)SIZE_MAX ? SIZE_MAX : (size_t)x;
	return 1;
}

static int get_bound(struct compiler *cc, struct json_object *obj, const char *key, struct bound *b)
{
	struct json_object *v;
	char msg[96];

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!is_number(v) || !isfinite((double)num_value(v))) {
		snprintf(msg, sizeof(msg), "'%s' must be a number%s", key,
			 json_object_is_type(v, json_type_boolean)
			     ? " (draft-04's boolean form is not draft-07)"
			     : "");
		cfail_at(cc, key, msg);
		return -1;
	}
	b->v = num_value(v);
	number_text(v, b->text, sizeof(b->text));
	return 1;
}

static int compile_type(struct compiler *cc, struct snode *n, struct json_object *obj)
{
	struct json_object *v, *t;
	size_t i, len;
	unsigned k;

	if (!json_object_object_get_ex(obj, "type", &v))
		return 0;
	len = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 1;
	if (!json_object_is_type(v, json_type_array) && !json_object_is_type(v, json_type_string))
		goto bad;
	for (i = 0; i < len; i++) {
		t = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, i) : v;
		if (!json_object_is_type(t, json_type_string))
			goto bad;
		for (k = 0; k < NTYPES; k++)
			if (strcmp(json_object_get_string(t), type_names[k]) == 0)
				break;
		if (k == NTYPES) {
			char msg[128], q[QUOTE_MAX + 4];

			snprintf(msg, sizeof(msg), "unknown type '%s'",
				 quote(q, sizeof(q), json_object_get_string(t),
				       (size_t)json_object_get_string_len(t)));
			cfail_at(cc, "type", msg);
			return -1;
		}
		n->types |= 1u << k;
	}
	if (n->types & T_NUMBER)
		n->types |= T_INTEGER;
	if (len == 0)
		goto bad;
	return 0;
bad:
	cfail_at(cc, "type", "'type' must be a type name or a non-empty array of them");
	return -1;
}

/* Renders a schema value for messages (compile time: json-c caches the
 * text inside the object, which must not happen during validation). */
static char *value_text(struct json_object *v)
{
	const char *t = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = malloc(72);

	if (out)
		copy_cut(out, 72, t ? t : "null", t ? strlen(t) : 4);
	return out;
}

static int compile_values(struct compiler *cc, struct snode *n, struct json_object *obj)
{
	struct json_object *v;

	if (json_object_object_get_ex(obj, "enum", &v)) {
		if (!json_object_is_type(v, json_type_array)) {
			cfail_at(cc, "enum", "'enum' must be an array");
			return -1;
		}
		n->enum_values = v;
		n->enum_text = value_text(v);
		if (!n->enum_text)
			goto oom;
	}
	if (json_object_object_get_ex(obj, "const", &v)) {
		n->has_const = 1;
		n->const_value = v;
		n->const_text = value_text(v);
		if (!n->const_text)
			goto oom;
	}
	return 0;
oom:
	coom(cc);
	return -1;
}

static int compile_numbers(struct compiler *cc, struct snode *n, struct json_object *obj)
{
	static const char *const keys[B__COUNT] = { "multipleOf", "maximum", "minimum",
						    "exclusiveMaximum", "exclusiveMinimum" };
	struct json_object *v;
	int i, r;

	for (i = 0; i < B__COUNT; i++) {
		r = get_bound(cc, obj, keys[i], &n->bound[i]);
		if (r < 0)
			return -1;
		n->has_bound[i] = (unsigned char)r;
	}
	if (n->has_bound[B_MULTIPLE_OF]) {
		if (!(n->bound[B_MULTIPLE_OF].v > 0)) {
			cfail_at(cc, "multipleOf", "'multipleOf' must be greater than 0");
			return -1;
		}
		json_object_object_get_ex(obj, "multipleOf", &v);
		if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) < INT64_MAX)
			n->multiple_of_int = json_object_get_int64(v);
	}
	return 0;
}

/* Compiles pattern src (a string value at parent[key][sub]) into re. */
static int compile_regex(struct compiler *cc, struct json_object *src, struct spattern *re,
			 const char *key, const char *sub)
{
	const char *pat = json_object_get_string(src);
	size_t len = (size_t)json_object_get_string_len(src), mark = cc->ptr.len;
	char msg[256], q[QUOTE_MAX + 4], *tr;
	const char *why;
	PCRE2_UCHAR pmsg[160];
	PCRE2_SIZE off;
	pcre2_code *code;
	int e;

	/* Compiling the pattern as written first reports errors at the offsets
	 * the user wrote. */
	code =
	    pcre2_compile((PCRE2_SPTR)pat, len, SCHEMA_REGEX_PCRE_OPTIONS, &e, &off, cc->s->cctx);
	if (!code) {
		pcre2_get_error_message(e, pmsg, sizeof(pmsg));
		snprintf(msg, sizeof(msg), "invalid regular expression '%s': %s at offset %zu",
			 quote(q, sizeof(q), pat, len), (const char *)pmsg, (size_t)off);
		dstr_add_token(&cc->ptr, key, strlen(key));
		if (sub)
			dstr_add_token(&cc->ptr, sub, strlen(sub));
		cfail(cc, "%s", msg);
		dstr_truncate(&cc->ptr, mark);
		return -1;
	}
	pcre2_code_free(code);
	tr = schema_regex_translate(pat, len, &why);
	if (!tr && why) {
		dstr_add_token(&cc->ptr, key, strlen(key));
		if (sub)
			dstr_add_token(&cc->ptr, sub, strlen(sub));
		cfail(cc, "regular expression '%s' uses %s", quote(q, sizeof(q), pat, len), why);
		dstr_truncate(&cc->ptr, mark);
		return -1;
	}
	if (!tr) {
		coom(cc);
		return -1;
	}
	re->code = pcre2_compile((PCRE2_SPTR)tr, strlen(tr), SCHEMA_REGEX_PCRE_OPTIONS, &e, &off,
				 cc->s->cctx);
	free(tr);
	re->source = pat;
	if (!re->code) {
		dstr_add_token(&cc->ptr, key, strlen(key));
		if (sub)
			dstr_add_token(&cc->ptr, sub, strlen(sub));
		cfail(cc, "regular expression '%s' has no ECMA-262 equivalent in PCRE2",
		      quote(q, sizeof(q), pat, len));
		dstr_truncate(&cc->ptr, mark);
		return -1;
	}
	return 0;
}

/* Under SCHEMA_ASSERT_FORMATS, "format" names a check, and "contentEncoding"
 * base64 and "contentMediaType" application/json (parameters allowed) are
 * asserted; any other value stays an annotation, as draft-07 allows. */
static void compile_assertions(struct compiler *cc, struct snode *n, struct json_object *obj)
{
	struct json_object *v;
	const char *t;
	size_t len;

	if (!(cc->flags & SCHEMA_ASSERT_FORMATS))
		return;
	if (json_object_object_get_ex(obj, "format", &v) &&
	    json_object_is_type(v, json_type_string))
		n->format = (unsigned char)schema_format_lookup(json_object_get_string(v));
	if (json_object_object_get_ex(obj, "contentEncoding", &v) &&
	    json_object_is_type(v, json_type_string))
		n->content_base64 = !strcasecmp(json_object_get_string(v), "base64");
	if (json_object_object_get_ex(obj, "contentMediaType", &v) &&
	    json_object_is_type(v, json_type_string)) {
		t = json_object_get_string(v);
		len = strcspn(t, "; \t");
		n->content_json = len == 16 && !strncasecmp(t, "application/json", len);
	}
}

static int compile_strings(struct compiler *cc, struct snode *n, struct json_object *obj)
{
	struct json_object *v;

	if (get_size(cc, obj, "maxLength", &n->max_length) < 0 ||
	    get_size(cc, obj, "minLength", &n->min_length) < 0)
		return -1;
	if (json_object_object_get_ex(obj, "pattern", &v)) {
		if (!json_object_is_type(v, json_type_string)) {
			cfail_at(cc, "pattern", "'pattern' must be a string");
			return -1;
		}
		if (compile_regex(cc, v, &n->pattern, "pattern", NULL) < 0)
			return -1;
	}
	compile_assertions(cc, n, obj);
	return 0;
}

/* Compiles a non-empty array of schemas at obj[key]. */
static int compile_list(struct compiler *cc, struct json_object *obj, const char *key,
			const char *base, struct snode ***ret, size_t *ret_n, int allow_empty)
{
	struct json_object *v;
	struct snode **list;
	size_t i, n;
	char msg[96];

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_array) ||
	    (!allow_empty && json_object_array_length(v) == 0)) {
		snprintf(msg, sizeof(msg), "'%s' must be a%s array of schemas", key,
			 allow_empty ? "n" : " non-empty");
		cfail_at(cc, key, msg);
		return -1;
	}
	n = json_object_array_length(v);
	list = calloc(n ? n : 1, sizeof(*list));
	if (!list) {
		coom(cc);
		return -1;
	}
	*ret = list;
	*ret_n = n;
	for (i = 0; i < n; i++) {
		list[i] = compile_at(cc, json_object_array_get_idx(v, i), base, key, NULL, i);
		if (!list[i])
			return -1;
	}
	return 0;
}

/* Compiles the single schema at obj[key] into *ret when present. */
static int compile_one(struct compiler *cc, struct json_object *obj, const char *key,
		       const char *base, struct snode **ret)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	*ret = compile_at(cc, v, base, key, NULL, SIZE_MAX);
	return *ret ? 0 : -1;
}

static int compile_arrays(struct compiler *cc, struct snode *n, struct json_object *obj,
			  const char *base)
{
	struct json_object *v;

	/* 2020-12's prefixItems (Pydantic's tuples): "items" then applies to
	 * the items after them and must be one schema; "additionalItems" has
	 * no meaning there, so it is refused rather than ignored. */
	if (json_object_object_get_ex(obj, "prefixItems", &v)) {
		if (json_object_object_get_ex(obj, "items", &v) &&
		    json_object_is_type(v, json_type_array)) {
			cfail_at(cc, "items", "'items' beside 'prefixItems' must be one schema");
			return -1;
		}
		if (json_object_object_get_ex(obj, "additionalItems", NULL)) {
			cfail_at(
			    cc, "additionalItems",
			    "'additionalItems' cannot be used beside 'prefixItems'; use 'items'");
			return -1;
		}
		n->has_tuple = 1;
		n->prefix_items = 1;
		if (compile_list(cc, obj, "prefixItems", base, &n->tuple, &n->ntuple, 0) < 0 ||
		    compile_one(cc, obj, "items", base, &n->additional_items) < 0)
			return -1;
	} else if (json_object_object_get_ex(obj, "items", &v) &&
		   json_object_is_type(v, json_type_array)) {
		n->has_tuple = 1;
		if (compile_list(cc, obj, "items", base, &n->tuple, &n->ntuple, 1) < 0)
			return -1;
	} else if (compile_one(cc, obj, "items", base, &n->items) < 0) {
		return -1;
	}
	if (compile_one(cc, obj, "additionalItems", base, &n->additional_items) < 0 ||
	    compile_one(cc, obj, "contains", base, &n->contains) < 0 ||
	    get_size(cc, obj, "maxItems", &n->max_items) < 0 ||
	    get_size(cc, obj, "minItems", &n->min_items) < 0)
		return -1;
	if (json_object_object_get_ex(obj, "uniqueItems", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			cfail_at(cc, "uniqueItems", "'uniqueItems' must be a boolean");
			return -1;
		}
		n->unique_items = (unsigned char)json_object_get_boolean(v);
	}
	return 0;
}

/* Reads an array of strings at obj[key] (borrowed pointers). */
static int string_array(struct compiler *cc, struct json_object *v, const char *key,
			const char *sub, const char ***ret, size_t *ret_n)
{
	size_t i, n, mark = cc->ptr.len;
	const char **list;
	char msg[128];

	if (!json_object_is_type(v, json_type_array))
		goto bad;
	n = json_object_array_length(v);
	list = calloc(n ? n : 1, sizeof(*list));
	if (!list) {
		coom(cc);
		return -1;
	}
	*ret = list;
	*ret_n = n;
	for (i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(v, i);

		if (!json_object_is_type(s, json_type_string))
			goto bad;
		list[i] = json_object_get_string(s);
	}
	return 0;
bad:
	snprintf(msg, sizeof(msg), "'%s' must be an array of strings", key);
	dstr_add_token(&cc->ptr, key, strlen(key));
	if (sub)
		dstr_add_token(&cc->ptr, sub, strlen(sub));
	cfail(cc, "%s", msg);
	dstr_truncate(&cc->ptr, mark);
	return -1;
}

static int cmp_prop(const void *a, const void *b)
{
	return strcmp(((const struct sprop *)a)->key, ((const struct sprop *)b)->key);
}

/* The value of keyword in obj when it must be an object: 1 with *ret,
 * 0 when absent, -1 after failing with "'keyword' must be an object<what>". */
static int object_keyword(struct compiler *cc, struct json_object *obj, const char *keyword,
			  const char *what, struct json_object **ret)
{
	char msg[96];

	if (!json_object_object_get_ex(obj, keyword, ret))
		return 0;
	if (json_object_is_type(*ret, json_type_object))
		return 1;
	snprintf(msg, sizeof(msg), "'%s' must be an object%s", keyword, what);
	cfail_at(cc, keyword, msg);
	return -1;
}

static int compile_properties(struct compiler *cc, struct snode *n, struct json_object *obj,
			      const char *base)
{
	struct json_object *v;
	int r;
	size_t i = 0, cnt;

	r = object_keyword(cc, obj, "properties", " of schemas", &v);
	if (r <= 0)
		return r;
	cnt = (size_t)json_object_object_length(v);
	n->props = calloc(cnt ? cnt : 1, sizeof(*n->props));
	n->sorted_props = calloc(cnt ? cnt : 1, sizeof(*n->sorted_props));
	if (!n->props || !n->sorted_props) {
		coom(cc);
		return -1;
	}
	json_object_object_foreach(v, key, sub)
	{
		n->props[i].key = key;
		n->props[i].schema = compile_at(cc, sub, base, "properties", key, SIZE_MAX);
		if (!n->props[i].schema)
			return -1;
		i++;
	}
	n->nprops = i;
	memcpy(n->sorted_props, n->props, i * sizeof(*n->props));
	qsort(n->sorted_props, i, sizeof(*n->sorted_props), cmp_prop);
	return 0;
}

static int compile_pattern_properties(struct compiler *cc, struct snode *n, struct json_object *obj,
				      const char *base)
{
	struct json_object *v, *keyobj;
	int r;
	size_t i = 0, cnt;

	r = object_keyword(cc, obj, "patternProperties", " of schemas", &v);
	if (r <= 0)
		return r;
	cnt = (size_t)json_object_object_length(v);
	n->patprops = calloc(cnt ? cnt : 1, sizeof(*n->patprops));
	if (!n->patprops) {
		coom(cc);
		return -1;
	}
	json_object_object_foreach(v, key, sub)
	{
		n->npatprops = i + 1;
		/* The key is the regex; a string object lets compile_regex share
		 * its code path (and the key text lives in the schema document). */
		keyobj = json_object_new_string(key);
		if (!keyobj) {
			coom(cc);
			return -1;
		}
		if (compile_regex(cc, keyobj, &n->patprops[i].re, "patternProperties", key) < 0) {
			json_object_put(keyobj);
			return -1;
		}
		json_object_put(keyobj);
		n->patprops[i].re.source = key;
		n->patprops[i].schema =
		    compile_at(cc, sub, base, "patternProperties", key, SIZE_MAX);
		if (!n->patprops[i].schema)
			return -1;
		i++;
	}
	return 0;
}

static int compile_dependencies(struct compiler *cc, struct snode *n, struct json_object *obj,
				const char *base)
{
	struct json_object *v;
	int r;
	size_t i = 0, cnt;

	r = object_keyword(cc, obj, "dependencies", "", &v);
	if (r <= 0)
		return r;
	cnt = (size_t)json_object_object_length(v);
	n->deps = calloc(cnt ? cnt : 1, sizeof(*n->deps));
	if (!n->deps) {
		coom(cc);
		return -1;
	}
	json_object_object_foreach(v, key, sub)
	{
		n->ndeps = i + 1;
		n->deps[i].key = key;
		if (json_object_is_type(sub, json_type_array)) {
			if (string_array(cc, sub, "dependencies", key, &n->deps[i].required,
					 &n->deps[i].nrequired) < 0)
				return -1;
		} else {
			n->deps[i].schema =
			    compile_at(cc, sub, base, "dependencies", key, SIZE_MAX);
			if (!n->deps[i].schema)
				return -1;
		}
		i++;
	}
	return 0;
}

static int compile_objects(struct compiler *cc, struct snode *n, struct json_object *obj,
			   const char *base)
{
	struct json_object *v;

	if (get_size(cc, obj, "maxProperties", &n->max_props) < 0 ||
	    get_size(cc, obj, "minProperties", &n->min_props) < 0)
		return -1;
	if (json_object_object_get_ex(obj, "required", &v) &&
	    string_array(cc, v, "required", NULL, &n->required, &n->nrequired) < 0)
		return -1;
	if (compile_properties(cc, n, obj, base) < 0 ||
	    compile_pattern_properties(cc, n, obj, base) < 0 ||
	    compile_one(cc, obj, "additionalProperties", base, &n->additional_props) < 0 ||
	    compile_dependencies(cc, n, obj, base) < 0 ||
	    compile_one(cc, obj, "propertyNames", base, &n->property_names) < 0)
		return -1;
	return 0;
}

static int compile_logic(struct compiler *cc, struct snode *n, struct json_object *obj,
			 const char *base)
{
	if (compile_list(cc, obj, "allOf", base, &n->all_of, &n->nall, 0) < 0 ||
	    compile_list(cc, obj, "anyOf", base, &n->any_of, &n->nany, 0) < 0 ||
	    compile_list(cc, obj, "oneOf", base, &n->one_of, &n->none, 0) < 0 ||
	    compile_one(cc, obj, "not", base, &n->not_) < 0 ||
	    compile_one(cc, obj, "if", base, &n->if_) < 0 ||
	    compile_one(cc, obj, "then", base, &n->then_) < 0 ||
	    compile_one(cc, obj, "else", base, &n->else_) < 0)
		return -1;
	return 0;
}

/* "definitions" are schemas too: compiled so that their "$id"s exist and
 * their errors show, evaluated only through "$ref". */
/* Compiles "definitions" and 2020-12's "$defs" (Pydantic's), places a
 * "$ref" may point into. */
static int compile_definitions(struct compiler *cc, struct json_object *obj, const char *base)
{
	static const char *const keys[] = { "definitions", "$defs" };
	struct json_object *v;
	size_t i;
	int r;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		r = object_keyword(cc, obj, keys[i], " of schemas", &v);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		json_object_object_foreach(v, key, sub)
		{
			if (!compile_at(cc, sub, base, keys[i], key, SIZE_MAX))
				return -1;
		}
	}
	return 0;
}

/* Handles "$id": registers the resource or the plain-name identifier and
 * returns the base URI for the schema's own keywords (malloc'd), or NULL
 * with the error set. */
static char *apply_id(struct compiler *cc, struct json_object *obj, const char *base)
{
	struct json_object *v;
	char *abs, *hash;

	if (!json_object_object_get_ex(obj, "$id", &v)) {
		abs = strdup(base);
		if (!abs)
			coom(cc);
		return abs;
	}
	if (!json_object_is_type(v, json_type_string)) {
		cfail_at(cc, "$id", "'$id' must be a string");
		return NULL;
	}
	abs = uri_resolve(base, json_object_get_string(v), NULL);
	if (!abs) {
		coom(cc);
		return NULL;
	}
	hash = strchr(abs, '#');
	if (hash && hash[1] && hash[1] != '/') {
		/* A location-independent identifier: "#name", relative to base. */
		if (resource_add(cc, abs, obj, base) < 0) {
			free(abs);
			return NULL;
		}
	}
	if (hash)
		*hash = '\0';
	if (strcmp(abs, base) != 0 && resource_add(cc, abs, obj, abs) < 0) {
		free(abs);
		return NULL;
	}
	return abs;
}

static struct snode *compile_node(struct compiler *cc, struct json_object *obj, const char *base)
{
	struct snode *n = hmap_get(&cc->objs, obj);
	struct json_object *ref;
	char *nbase = NULL;

	if (n || cc->failed)
		return n;
	if (!json_object_is_type(obj, json_type_object) &&
	    !json_object_is_type(obj, json_type_boolean)) {
		cfail(cc, "expected a schema (an object or a boolean), got %s", type_name(obj));
		return NULL;
	}
	if (cc->depth >= SCHEMA_MAX_DEPTH) {
		cfail(cc, "schemas nested deeper than %d levels", SCHEMA_MAX_DEPTH);
		return NULL;
	}
	n = node_new(cc);
	if (!n)
		return NULL;
	if (hmap_put(&cc->objs, obj, n) < 0) {
		coom(cc);
		return NULL;
	}
	if (json_object_is_type(obj, json_type_boolean)) {
		n->boolean = (signed char)json_object_get_boolean(obj);
		return n;
	}
	cc->depth++;
	if (json_object_object_get_ex(obj, "$ref", &ref)) {
		/* draft-07: "$ref" makes its siblings ("$id" included) ignored;
		 * "definitions" beside it are still compiled, as a place the
		 * reference may point into. */
		if (!json_object_is_type(ref, json_type_string))
			cfail_at(cc, "$ref", "'$ref' must be a string");
		else if (add_pending(cc, n, base, json_object_get_string(ref)) == 0)
			compile_definitions(cc, obj, base);
		goto out;
	}
	nbase = apply_id(cc, obj, base);
	if (!nbase)
		goto out;
	if (compile_type(cc, n, obj) < 0 || compile_values(cc, n, obj) < 0 ||
	    compile_numbers(cc, n, obj) < 0 || compile_strings(cc, n, obj) < 0 ||
	    compile_arrays(cc, n, obj, nbase) < 0 || compile_objects(cc, n, obj, nbase) < 0 ||
	    compile_logic(cc, n, obj, nbase) < 0)
		goto out;
	compile_definitions(cc, obj, nbase);
out:
	free(nbase);
	cc->depth--;
	return cc->failed ? NULL : n;
}

/* Compiles a whole document registered under uri (which is also its base
 * and its label in messages). The schema takes the reference to doc. */
static struct snode *compile_document(struct compiler *cc, struct json_object *doc, const char *uri,
				      const char *label)
{
	struct json_object **docs;
	struct snode *n;

	docs = realloc(cc->s->docs, (cc->s->ndocs + 1) * sizeof(*docs));
	if (!docs) {
		json_object_put(doc);
		coom(cc);
		return NULL;
	}
	cc->s->docs = docs;
	docs[cc->s->ndocs++] = doc;
	if (resource_add(cc, uri, doc, uri) < 0)
		return NULL;
	dstr_truncate(&cc->label, 0);
	dstr_adds(&cc->label, label);
	dstr_truncate(&cc->ptr, 0);
	dstr_add(&cc->ptr, "", 0);
	cc->depth = 0;
	n = compile_node(cc, doc, uri);
	if (cc->label.oom || cc->ptr.oom)
		coom(cc);
	return n;
}

static int has_dotdot_segment(const char *path)
{
	const char *p = path;

	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 1;
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Reads base_dir/name (a relative path without "..") as a JSON document,
 * refusing anything that resolves outside base_dir. Returns the document
 * or NULL with the error set. */
static struct json_object *load_file(struct compiler *cc, const char *encoded)
{
	char *path = NULL, *real = NULL, *realdir = NULL, *buf = NULL, *name;
	struct json_object *doc = NULL;
	char perr[128], rerr[128], q[QUOTE_MAX + 4];
	size_t n, dl;

	quote(q, sizeof(q), encoded, strlen(encoded));
	name = strdup(encoded);
	if (!name) {
		coom(cc);
		return NULL;
	}
	if (percent_decode(name) < 0) {
		cfail(cc, "invalid percent-encoding in '$ref' file '%s'", q);
		goto out;
	}
	if (!cc->base_dir) {
		cfail(cc, "'$ref' names file '%s' but schemas cannot read files here", q);
		goto out;
	}
	if (!name[0] || name[0] == '/' || has_dotdot_segment(name)) {
		cfail(cc, "'$ref' file '%s' must be a relative path without '..'", q);
		goto out;
	}
	if (ends_with(name, ".yaml") || ends_with(name, ".yml")) {
		cfail(cc, "'$ref' file '%s': only JSON files can be referenced", q);
		goto out;
	}
	if (++cc->nfiles > SCHEMA_MAX_FILES) {
		cfail(cc, "more than %d files referenced", SCHEMA_MAX_FILES);
		goto out;
	}
	if (asprintf(&path, "%s/%s", cc->base_dir, name) < 0) {
		path = NULL;
		coom(cc);
		goto out;
	}
	realdir = realpath(cc->base_dir, NULL);
	real = realpath(path, NULL);
	dl = realdir ? strlen(realdir) : 0;
	if (!realdir || !real) {
		cfail(cc, "cannot read '$ref' file '%s': %s", q, strerror(errno));
		goto out;
	}
	if (strncmp(real, realdir, dl) != 0 || (real[dl] != '/' && strcmp(realdir, "/") != 0)) {
		cfail(cc, "'$ref' file '%s' is outside the schema directory", q);
		goto out;
	}
	if (readfile_regular(real, SCHEMA_MAX_FILE_SIZE, &buf, &n, rerr, sizeof(rerr)) < 0) {
		cfail(cc, "cannot read '$ref' file '%s': %s", q, rerr);
		goto out;
	}
	if (schema_parse_json(buf, n, &doc, perr, sizeof(perr)) < 0) {
		cfail(cc, "'$ref' file '%s': %s", q, perr);
		doc = NULL;
	}
out:
	free(buf);
	free(real);
	free(realdir);
	free(path);
	free(name);
	return doc;
}

/* How messages name the document uri: "" for the main one, a file's path
 * relative to base_dir, else the URI. */
static const char *doc_label(const struct compiler *cc, const char *uri)
{
	if (strcmp(uri, cc->main_base) == 0)
		return "";
	if (strncmp(uri, FILE_BASE, strlen(FILE_BASE)) == 0)
		return uri + strlen(FILE_BASE);
	return uri;
}

/* Makes the resource named by uri (no fragment) exist: the built-in
 * meta-schema, or a file next to the schema. */
static struct resource *load_resource(struct compiler *cc, const char *uri)
{
	struct json_object *doc = NULL;
	struct uri u;
	char perr[128];

	uri_parse(uri, &u);
	if (strcmp(uri, META_URI) == 0) {
		if (schema_parse_json(meta_schema_text, sizeof(meta_schema_text) - 1, &doc, perr,
				      sizeof(perr)) < 0) {
			cfail(cc, "built-in meta-schema: %s", perr);
			return NULL;
		}
	} else if (strncmp(uri, FILE_BASE, strlen(FILE_BASE)) == 0 && !u.has_query) {
		doc = load_file(cc, uri + strlen(FILE_BASE));
		if (!doc)
			return NULL;
	} else {
		return NULL;
	}
	if (!compile_document(cc, doc, uri, doc_label(cc, uri)))
		return NULL;
	return resource_find(cc, uri);
}

/* Points messages at where ("LABEL#POINTER") followed by suffix. */
static void set_location(struct compiler *cc, const char *where, const char *suffix)
{
	const char *hash = strchr(where, '#');
	size_t n = hash ? (size_t)(hash - where) : strlen(where);

	dstr_truncate(&cc->label, 0);
	dstr_add(&cc->label, where, n);
	dstr_truncate(&cc->ptr, 0);
	dstr_adds(&cc->ptr, hash ? hash + 1 : "");
	dstr_adds(&cc->ptr, suffix);
}

static int resolve_one(struct compiler *cc, size_t i)
{
	/* A copy: compiling more documents may move cc->refs. */
	struct pending_ref copy = cc->refs[i], *pr = &copy;
	char *uri = strdup(pr->uri), *frag, q[2 * QUOTE_MAX];
	struct json_object *target = NULL;
	struct resource *res;
	struct snode *n;
	int r = -1;

	/* Errors about the reference point at the "$ref" keyword. */
	set_location(cc, pr->where, "/$ref");
	if (!uri) {
		coom(cc);
		return -1;
	}
	quote(q, sizeof(q), pr->ref, strlen(pr->ref));
	frag = strchr(uri, '#');
	if (frag)
		*frag++ = '\0';
	else
		frag = uri + strlen(uri);
	res = resource_find(cc, uri);
	if (!res && !cc->failed)
		res = load_resource(cc, uri);
	/* Loading a document moved the location. */
	set_location(cc, pr->where, "/$ref");
	if (!res) {
		cfail(cc, "unresolvable '$ref' '%s'", q);
		goto out;
	}
	if (percent_decode(frag) < 0) {
		cfail(cc, "invalid percent-encoding in '$ref' '%s'", q);
		goto out;
	}
	if (frag[0] == '\0') {
		target = res->obj;
	} else if (frag[0] == '/') {
		if (pointer_walk(res->obj, frag, &target) < 0) {
			cfail(cc, "unresolvable '$ref' '%s': no such location", q);
			goto out;
		}
	} else {
		char *full;
		struct resource *anchor;

		if (asprintf(&full, "%s#%s", uri, frag) < 0) {
			coom(cc);
			goto out;
		}
		anchor = resource_find(cc, full);
		free(full);
		if (!anchor) {
			cfail(cc, "unresolvable '$ref' '%s': no such '$id'", q);
			goto out;
		}
		target = anchor->obj;
	}
	n = hmap_get(&cc->objs, target);
	if (!n) {
		/* A location outside the schema keywords (an unknown keyword): it
		 * is compiled as a schema of its own on first use. */
		dstr_truncate(&cc->label, 0);
		dstr_adds(&cc->label, doc_label(cc, uri));
		dstr_truncate(&cc->ptr, 0);
		dstr_adds(&cc->ptr, frag);
		cc->depth = 0;
		n = compile_node(cc, target, res->base);
		if (!n)
			goto out;
	}
	pr->from->ref = n;
	r = 0;
out:
	free(uri);
	return r;
}

/* Every edge along which evaluation stays at the same instance location. */
static struct snode *same_location_edge(const struct snode *n, size_t k)
{
	struct snode *one[4];
	size_t i;

	if (n->ref)
		return k == 0 ? n->ref : NULL;
	if (k < n->nall)
		return n->all_of[k];
	k -= n->nall;
	if (k < n->nany)
		return n->any_of[k];
	k -= n->nany;
	if (k < n->none)
		return n->one_of[k];
	k -= n->none;
	one[0] = n->not_;
	one[1] = n->if_;
	one[2] = n->if_ ? n->then_ : NULL;
	one[3] = n->if_ ? n->else_ : NULL;
	for (i = 0; i < 4; i++) {
		if (!one[i])
			continue;
		if (k == 0)
			return one[i];
		k--;
	}
	for (i = 0; i < n->ndeps; i++) {
		if (!n->deps[i].schema)
			continue;
		if (k == 0)
			return n->deps[i].schema;
		k--;
	}
	return NULL;
}

/* Rejects cycles of same-location edges (they would never end) and chains
 * of them longer than SCHEMA_MAX_DEPTH, with an explicit stack. */
static int check_cycles(struct compiler *cc)
{
	struct schema *s = cc->s;
	struct frame {
		struct snode *n;
		size_t next;
	} * stack;
	size_t i, sp;
	struct snode *c;

	stack = malloc(s->nnodes * sizeof(*stack));
	if (!stack) {
		coom(cc);
		return -1;
	}
	for (i = 0; i < s->nnodes; i++) {
		if (s->nodes[i]->color)
			continue;
		sp = 0;
		stack[sp].n = s->nodes[i];
		stack[sp++].next = 0;
		s->nodes[i]->color = 1;
		while (sp) {
			struct frame *f = &stack[sp - 1];

			c = same_location_edge(f->n, f->next++);
			if (!c) {
				f->n->color = 2;
				f->n->height++;
				if (f->n->height > SCHEMA_MAX_DEPTH) {
					set_location(cc, f->n->where, "");
					cfail(
					    cc,
					    "more than %d schemas apply in a chain to one location",
					    SCHEMA_MAX_DEPTH);
					goto fail;
				}
				sp--;
				if (sp && stack[sp - 1].n->height < f->n->height)
					stack[sp - 1].n->height = f->n->height;
				continue;
			}
			if (c->color == 1) {
				set_location(cc, c->where, "");
				cfail(cc, "'$ref' loop that never descends into the instance");
				goto fail;
			}
			if (c->color == 2) {
				if (f->n->height < c->height)
					f->n->height = c->height;
				continue;
			}
			c->color = 1;
			stack[sp].n = c;
			stack[sp++].next = 0;
		}
	}
	free(stack);
	return 0;
fail:
	free(stack);
	return -1;
}

static void bump(struct snode *n)
{
	if (n)
		n->indegree++;
}

/* Counts how many places evaluate each node; those with more than one get
 * memoised during validation, which keeps anyOf/oneOf over recursive
 * schemas polynomial. */
static void count_indegrees(struct schema *s)
{
	size_t i, k;
	struct snode *n;

	bump(s->root);
	for (i = 0; i < s->nnodes; i++) {
		n = s->nodes[i];
		bump(n->ref);
		if (n->ref)
			continue;
		bump(n->items);
		for (k = 0; k < n->ntuple; k++)
			bump(n->tuple[k]);
		bump(n->additional_items);
		bump(n->contains);
		for (k = 0; k < n->nprops; k++)
			bump(n->props[k].schema);
		for (k = 0; k < n->npatprops; k++)
			bump(n->patprops[k].schema);
		bump(n->additional_props);
		for (k = 0; k < n->ndeps; k++)
			bump(n->deps[k].schema);
		bump(n->property_names);
		bump(n->if_);
		bump(n->then_);
		bump(n->else_);
		bump(n->not_);
		for (k = 0; k < n->nall; k++)
			bump(n->all_of[k]);
		for (k = 0; k < n->nany; k++)
			bump(n->any_of[k]);
		for (k = 0; k < n->none; k++)
			bump(n->one_of[k]);
	}
	for (i = 0; i < s->nnodes; i++)
		s->nodes[i]->shared = s->nodes[i]->indegree > 1;
}

static void compiler_release(struct compiler *cc)
{
	size_t i;

	for (i = 0; i < cc->nrefs; i++) {
		free(cc->refs[i].uri);
		free(cc->refs[i].ref);
		free(cc->refs[i].where);
	}
	free(cc->refs);
	for (i = 0; i < cc->nres; i++) {
		free(cc->res[i]->base);
		free(cc->res[i]);
	}
	free(cc->res);
	hmap_release(&cc->objs);
	hmap_release(&cc->resources);
	free(cc->label.p);
	free(cc->ptr.p);
}

struct schema *schema_compile(struct json_object *doc, const char *base_dir, char *err,
			      size_t errlen)
{
	return schema_compile_flags(doc, base_dir, SCHEMA_ASSERT_FORMATS, err, errlen);
}

struct schema *schema_compile_flags(struct json_object *doc, const char *base_dir, unsigned flags,
				    char *err, size_t errlen)
{
	struct compiler cc;
	struct schema *s;
	struct json_object *id;
	char *base = NULL, *hash;

	memset(&cc, 0, sizeof(cc));
	cc.flags = flags;
	cc.err = err;
	cc.errlen = errlen;
	cc.base_dir = base_dir;
	cc.resources.strkeys = 1;
	if (errlen)
		err[0] = '\0';
	s = calloc(1, sizeof(*s));
	if (!s)
		goto oom;
	cc.s = s;
	s->mctx = pcre2_match_context_create(NULL);
	s->cctx = pcre2_compile_context_create(NULL);
	if (!s->mctx || !s->cctx)
		goto oom;
	pcre2_set_match_limit(s->mctx, SCHEMA_REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(s->mctx, SCHEMA_REGEX_DEPTH_LIMIT);
	pcre2_set_heap_limit(s->mctx, SCHEMA_REGEX_HEAP_LIMIT_KIB);
	pcre2_set_compile_extra_options(s->cctx, SCHEMA_REGEX_PCRE_EXTRA);

	/* The document's own "$id" is its base URI; without one FILE_BASE,
	 * under which relative references name files. */
	if (json_object_is_type(doc, json_type_object) &&
	    json_object_object_get_ex(doc, "$id", &id) &&
	    json_object_is_type(id, json_type_string) &&
	    !json_object_object_get_ex(doc, "$ref", NULL))
		base = uri_resolve(FILE_BASE, json_object_get_string(id), NULL);
	else
		base = strdup(FILE_BASE);
	if (!base)
		goto oom;
	hash = strchr(base, '#');
	if (hash)
		*hash = '\0';
	cc.main_base = base;
	s->root = compile_document(&cc, json_object_get(doc), base, "");
	while (!cc.failed && cc.nextref < cc.nrefs)
		resolve_one(&cc, cc.nextref++);
	if (!cc.failed)
		check_cycles(&cc);
	if (cc.failed)
		goto fail;
	count_indegrees(s);
	free(base);
	compiler_release(&cc);
	return s;
oom:
	coom(&cc);
fail:
	free(base);
	compiler_release(&cc);
	schema_free(s);
	return NULL;
}

void schema_free(struct schema *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nnodes; i++)
		node_free(s->nodes[i]);
	free(s->nodes);
	for (i = 0; i < s->ndocs; i++)
		json_object_put(s->docs[i]);
	free(s->docs);
	pcre2_match_context_free(s->mctx);
	pcre2_compile_context_free(s->cctx);
	free(s);
}

/* ---- validation ------------------------------------------------------- */

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
	struct dstr d = { 0 };
	char num[24];
	unsigned i;

	dstr_add(&d, "", 0);
	for (i = 0; i < c->depth; i++) {
		if (c->path[i].key) {
			dstr_add_token(&d, c->path[i].key, strlen(c->path[i].key));
		} else {
			snprintf(num, sizeof(num), "%zu", c->path[i].idx);
			dstr_add_token(&d, num, strlen(num));
		}
	}
	if (d.oom)
		copy_cut(out, outlen, "...", 3);
	else
		copy_cut(out, outlen, dstr_str(&d), d.len);
	free(d.p);
}

static void add_violation(struct vctx *c, const char *kw, const char *fmt, va_list ap)
{
	struct schema_violation *v;

	c->res->total++;
	if (c->res->count >= SCHEMA_MAX_VIOLATIONS)
		return;
	v = &c->res->v[c->res->count++];
	write_pointer(c, v->pointer, sizeof(v->pointer));
	copy_cut(v->keyword, sizeof(v->keyword), kw, strlen(kw));
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
		  quote(q, sizeof(q), re->source, strlen(re->source)));
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
			strcat(want, type_names[k]);
		}
		fail(c, "type", "expected %s, got %s", want, type_name(inst));
		ok = 0;
	}
	if (n->enum_values) {
		len = json_object_array_length(n->enum_values);
		for (i = 0; i < len; i++)
			if (json_equal(inst, json_object_array_get_idx(n->enum_values, i), 0))
				break;
		CHECK(i < len, "enum", "expected one of %s", n->enum_text);
	}
	if (n->has_const)
		CHECK(json_equal(inst, n->const_value, 0), "const", "expected %s", n->const_text);
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

static size_t utf8_length(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
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
		cp = utf8_length(s, len);
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
		      quote(q, sizeof(q), n->pattern.source, strlen(n->pattern.source)));
	}
	if (n->format) {
		m = schema_format_check((enum schema_format)n->format, s, len);
		if (m < 0) {
			c->oom = c->stop = 1;
			hard_fail(c, "limit", "out of memory");
			return 0;
		}
		CHECK(m, "format", "'%s' is not a valid %s", quote(q, sizeof(q), s, len),
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
		r = json_cmp(a->o, b->o, 0, arg);
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
				if (json_equal(json_object_array_get_idx(arr, i),
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
		e[i].h = json_hash(e[i].o, 0);
		e[i].idx = i;
	}
	qsort_r(e, len, sizeof(*e), uent_cmp, &oom);
	for (i = 1; i < len && r == 1 && !oom; i++) {
		if (e[i].h == e[i - 1].h && json_cmp(e[i].o, e[i - 1].o, 0, &oom) == 0) {
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
			if (!eval_child(c, n->tuple[i], json_object_array_get_idx(inst, i), NULL,
					i)) {
				if (c->quiet)
					return 0;
				ok = 0;
			}
		if (n->additional_items && n->additional_items->boolean == 0) {
			CHECK(len <= n->ntuple, n->prefix_items ? "items" : "additionalItems",
			      "expected at most %zu items, got %zu", n->ntuple, len);
		} else if (n->additional_items) {
			for (i = n->ntuple; i < len && !c->stop; i++)
				if (!eval_child(c, n->additional_items,
						json_object_array_get_idx(inst, i), NULL, i)) {
					if (c->quiet)
						return 0;
					ok = 0;
				}
		}
	} else if (n->items) {
		for (i = 0; i < len && !c->stop; i++)
			if (!eval_child(c, n->items, json_object_array_get_idx(inst, i), NULL, i)) {
				if (c->quiet)
					return 0;
				ok = 0;
			}
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
			if (!eval_child(c, n->props[i].schema, v, n->props[i].key, 0)) {
				if (c->quiet)
					return 0;
				ok = 0;
			}
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
			if (!eval_child(c, sp->schema, val, key, 0)) {
				if (c->quiet)
					return 0;
				ok = 0;
			}
		}
		for (i = 0; i < n->npatprops; i++) {
			m = regex_match(c, &n->patprops[i].re, key, strlen(key),
					"patternProperties");
			if (m < 0)
				return 0;
			if (!m)
				continue;
			matched = 1;
			if (!eval_child(c, n->patprops[i].schema, val, key, 0)) {
				if (c->quiet)
					return 0;
				ok = 0;
			}
		}
		if (matched || !n->additional_props)
			continue;
		if (n->additional_props->boolean == 0) {
			if (c->quiet)
				return 0;
			c->path[c->depth].key = key;
			c->depth++;
			fail(c, "additionalProperties", "property '%s' is not allowed",
			     quote(q, sizeof(q), key, strlen(key)));
			c->depth--;
			ok = 0;
		} else if (!eval_child(c, n->additional_props, val, key, 0)) {
			if (c->quiet)
				return 0;
			ok = 0;
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
		      quote(q, sizeof(q), key, strlen(key)));
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
		      quote(q, sizeof(q), n->required[i], strlen(n->required[i])));
	if (n->nprops || n->npatprops || n->additional_props) {
		if (!eval_members(c, n, inst)) {
			if (c->quiet)
				return 0;
			ok = 0;
		}
	}
	for (i = 0; i < n->ndeps && !c->stop; i++) {
		d = &n->deps[i];
		if (!json_object_object_get_ex(inst, d->key, NULL))
			continue;
		if (d->schema) {
			if (!eval(c, d->schema, inst, hops + 1)) {
				if (c->quiet)
					return 0;
				ok = 0;
			}
			continue;
		}
		for (k = 0; k < d->nrequired; k++)
			CHECK(json_object_object_get_ex(inst, d->required[k], NULL), "dependencies",
			      "property '%s' requires property '%s'",
			      quote(q, sizeof(q), d->key, strlen(d->key)),
			      quote(q2, sizeof(q2), d->required[k], strlen(d->required[k])));
	}
	if (n->property_names && n->property_names->boolean != 1 && cnt) {
		if (!eval_property_names(c, n, inst)) {
			if (c->quiet)
				return 0;
			ok = 0;
		}
	}
	return ok;
}

static int eval_logic(struct vctx *c, const struct snode *n, struct json_object *inst,
		      unsigned hops)
{
	size_t i, matches = 0, first = 0, second = 0;
	int ok = 1;

	for (i = 0; i < n->nall; i++)
		if (!eval(c, n->all_of[i], inst, hops + 1)) {
			if (c->quiet)
				return 0;
			ok = 0;
		}
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

		if (branch && !eval(c, branch, inst, hops + 1)) {
			if (c->quiet)
				return 0;
			ok = 0;
		}
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
	copy_cut(v->message, sizeof(v->message), msg, strlen(msg));
}

/* The JSON value model the validator and the compiler share: message
 * quoting, equality, hashing and a total order of
 * json-c values (numbers by value, objects regardless of key order), and the
 * open-addressing map the compiler keys by node or by URI. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_internal.h"

const char *const schema_type_names[] = { "null",   "boolean", "object", "array",
					  "number", "string",  "integer" };

/* ---- message strings -------------------------------------------------- */

void *schema_grow(void *a, size_t n, size_t *cap, size_t size, size_t first)
{
	size_t want;

	if (n < *cap)
		return a;
	want = *cap ? *cap * 2 : first;
	if (want > SIZE_MAX / size)
		return NULL;
	a = realloc(a, want * size);
	if (a)
		*cap = want;
	return a;
}

void schema_copy_cut(char *dst, size_t dstlen, const char *s, size_t n)
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

const char *schema_quote(char *buf, size_t buflen, const char *s, size_t n)
{
	size_t i;

	schema_copy_cut(buf, buflen, s, n);
	for (i = 0; buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	return buf;
}

/* ---- hashing, equality and ordering of JSON values ------------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
	return hash_mix64(hash_fnv1a64(p, n) ^ n);
}

const char *schema_type_name(struct json_object *o)
{
	unsigned b = type_bits(o);

	if (b & T_INTEGER)
		return "integer";
	if (b & T_NUMBER)
		return "number";
	return json_type_to_name(json_object_get_type(o));
}

void schema_number_text(struct json_object *o, char *buf, size_t len)
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

/* Deeper than this, values compare by identity (only hand-built instances
 * get there: parsed ones stop at SCHEMA_MAX_DEPTH). */
#define VALUE_DEPTH_MAX (2 * SCHEMA_MAX_DEPTH)

int schema_value_equal(struct json_object *a, struct json_object *b, unsigned depth)
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
			if (!schema_value_equal(json_object_array_get_idx(a, i),
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
			    !schema_value_equal(av, bv, depth + 1))
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
		return hash_mix64(v == 0 ? 3 : 4);
	m = frexpl(fabsl(v), &e);
	mant = (uint64_t)ldexpl(m, 64);
	return hash_mix64(mant ^ hash_mix64((uint64_t)(int64_t)e * 2 + (v < 0)));
}

uint64_t schema_value_hash(struct json_object *o, unsigned depth)
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
		h = hash_mix64(7 + n);
		for (i = 0; i < n; i++)
			h = hash_mix64(
			    h ^ schema_value_hash(json_object_array_get_idx(o, i), depth + 1));
		return h;
	case json_type_object:
		if (depth >= VALUE_DEPTH_MAX)
			return 8;
		json_object_object_foreach(o, key, val)
		{
			h = hash_bytes(key, strlen(key));
			sum += hash_mix64(
			    h ^ (schema_value_hash(val, depth + 1) * 0x9e3779b97f4a7c15ULL));
		}
		return hash_mix64(sum ^ 9);
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
		r = schema_value_cmp(json_object_object_get(a, ka[i]),
				     json_object_object_get(b, ka[i]), depth + 1, oom);
	free(ka);
	return r;
}

int schema_value_cmp(struct json_object *a, struct json_object *b, unsigned depth, int *oom)
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
			r = schema_value_cmp(json_object_array_get_idx(a, i),
					     json_object_array_get_idx(b, i), depth + 1, oom);
		return r;
	case json_type_object:
		if (depth >= VALUE_DEPTH_MAX)
			return CMP((uintptr_t)a, (uintptr_t)b);
		return object_cmp(a, b, depth, oom);
	}
	return 0;
}

/* ---- maps ------------------------------------------------------------ */

static uint64_t hmap_hash(const struct hmap *m, const void *key)
{
	return m->strkeys ? hash_bytes(key, strlen(key)) : hash_ptr2(key, NULL);
}

static int hmap_eq(const struct hmap *m, const void *a, const void *b)
{
	return m->strkeys ? strcmp(a, b) == 0 : a == b;
}

void *hmap_get(const struct hmap *m, const void *key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = hmap_hash(m, key) & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
		if (hmap_eq(m, m->slots[i].key, key))
			return m->slots[i].val;
	return NULL;
}

int hmap_put(struct hmap *m, const void *key, void *val)
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

void hmap_release(struct hmap *m)
{
	size_t i;

	if (m->strkeys)
		for (i = 0; i < m->cap; i++)
			free((void *)m->slots[i].key);
	free(m->slots);
	m->slots = NULL;
	m->cap = m->used = 0;
}

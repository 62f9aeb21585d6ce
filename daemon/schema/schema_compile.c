/* The compiler's keyword pass: one schema object of a document becomes one
 * immutable node (types, bounds, regexes compiled with PCRE2, subschemas
 * compiled in turn, "$id"s registered, "$ref"s queued for schema_resolve.c).
 * Errors name the location as "LABEL#POINTER". */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema_format.h"
#include "schema_internal.h"
#include "schema_regex.h"

void cfail(struct compiler *cc, const char *fmt, ...)
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
		snprintf(cc->err, cc->errlen, "%s#%s: %s", strbuf_str(&cc->label),
			 strbuf_str(&cc->ptr), msg);
}

void coom(struct compiler *cc)
{
	if (cc->failed)
		return;
	cc->failed = 1;
	if (cc->errlen)
		snprintf(cc->err, cc->errlen, "out of memory");
}

/* A zeroed array of n size-byte elements (one when n is 0, so that it is
 * never NULL when it worked); NULL after coom. */
static void *carray(struct compiler *cc, size_t n, size_t size)
{
	void *a = calloc(n ? n : 1, size);

	if (!a)
		coom(cc);
	return a;
}

/* Fails with what, pointing the error at parent[key][sub] (sub may be
 * NULL). */
static void cfail_below(struct compiler *cc, const char *key, const char *sub, const char *what)
{
	size_t mark = cc->ptr.len;

	strbuf_add_pointer_token(&cc->ptr, key, strlen(key));
	if (sub)
		strbuf_add_pointer_token(&cc->ptr, sub, strlen(sub));
	cfail(cc, "%s", what);
	strbuf_truncate(&cc->ptr, mark);
}

/* Points the error at parent[key]. */
static void cfail_at(struct compiler *cc, const char *key, const char *what)
{
	cfail_below(cc, key, NULL, what);
}

/* The value of keyword in obj when it must be of type: 1 with *ret, 0 when
 * absent, -1 after failing with "'keyword' must be <what>". */
static int typed_keyword(struct compiler *cc, struct json_object *obj, const char *keyword,
			 enum json_type type, const char *what, struct json_object **ret)
{
	char msg[96];

	if (!json_object_object_get_ex(obj, keyword, ret))
		return 0;
	if (json_object_is_type(*ret, type))
		return 1;
	snprintf(msg, sizeof(msg), "'%s' must be %s", keyword, what);
	cfail_at(cc, keyword, msg);
	return -1;
}

static struct snode *node_new(struct compiler *cc)
{
	struct schema *s = cc->s;
	struct snode *n, **nodes;

	if (s->nnodes >= SCHEMA_MAX_NODES) {
		cfail(cc, "more than %d schemas", SCHEMA_MAX_NODES);
		return NULL;
	}
	nodes = schema_grow(s->nodes, s->nnodes, &s->capnodes, sizeof(*nodes), 32);
	if (!nodes) {
		coom(cc);
		return NULL;
	}
	s->nodes = nodes;
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
	sprintf(n->where, "%s#%s", strbuf_str(&cc->label), strbuf_str(&cc->ptr));
	return n;
}

static int add_pending(struct compiler *cc, struct snode *from, const char *base, const char *ref)
{
	struct pending_ref *refs;
	char *uri;
	int climbed = 0;

	refs = schema_grow(cc->refs, cc->nrefs, &cc->caprefs, sizeof(*refs), 16);
	if (!refs)
		goto oom;
	cc->refs = refs;
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

/* Compiles the schema at parent[key] (and [sub] below it when sub is not
 * NULL: an array index or a property name), tracking the pointer. */
static struct snode *compile_at(struct compiler *cc, struct json_object *obj, const char *base,
				const char *key, const char *sub, size_t idx)
{
	size_t mark = cc->ptr.len;
	char num[24];
	struct snode *n;

	strbuf_add_pointer_token(&cc->ptr, key, strlen(key));
	if (sub)
		strbuf_add_pointer_token(&cc->ptr, sub, strlen(sub));
	else if (idx != SIZE_MAX) {
		snprintf(num, sizeof(num), "%zu", idx);
		strbuf_add_pointer_token(&cc->ptr, num, strlen(num));
	}
	n = compile_node(cc, obj, base);
	strbuf_truncate(&cc->ptr, mark);
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
	schema_number_text(v, b->text, sizeof(b->text));
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
			if (strcmp(json_object_get_string(t), schema_type_names[k]) == 0)
				break;
		if (k == NTYPES) {
			char msg[128], q[QUOTE_MAX + 4];

			snprintf(msg, sizeof(msg), "unknown type '%s'",
				 schema_quote(q, sizeof(q), json_object_get_string(t),
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
		schema_copy_cut(out, 72, t ? t : "null", t ? strlen(t) : 4);
	return out;
}

static int compile_values(struct compiler *cc, struct snode *n, struct json_object *obj)
{
	struct json_object *v;
	int r;

	r = typed_keyword(cc, obj, "enum", json_type_array, "an array", &v);
	if (r < 0)
		return -1;
	if (r) {
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
	size_t len = (size_t)json_object_get_string_len(src);
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
			 schema_quote(q, sizeof(q), pat, len), (const char *)pmsg, (size_t)off);
		cfail_below(cc, key, sub, msg);
		return -1;
	}
	pcre2_code_free(code);
	tr = schema_regex_translate(pat, len, &why);
	if (!tr && why) {
		snprintf(msg, sizeof(msg), "regular expression '%s' uses %s",
			 schema_quote(q, sizeof(q), pat, len), why);
		cfail_below(cc, key, sub, msg);
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
		snprintf(msg, sizeof(msg),
			 "regular expression '%s' has no ECMA-262 equivalent in PCRE2",
			 schema_quote(q, sizeof(q), pat, len));
		cfail_below(cc, key, sub, msg);
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
	int r;

	if (get_size(cc, obj, "maxLength", &n->max_length) < 0 ||
	    get_size(cc, obj, "minLength", &n->min_length) < 0)
		return -1;
	r = typed_keyword(cc, obj, "pattern", json_type_string, "a string", &v);
	if (r < 0)
		return -1;
	if (r) {
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
	list = carray(cc, n, sizeof(*list));
	if (!list)
		return -1;
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
	int r;

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
	r = typed_keyword(cc, obj, "uniqueItems", json_type_boolean, "a boolean", &v);
	if (r < 0)
		return -1;
	if (r)
		n->unique_items = (unsigned char)json_object_get_boolean(v);
	return 0;
}

/* Reads an array of strings at obj[key] (borrowed pointers). */
static int string_array(struct compiler *cc, struct json_object *v, const char *key,
			const char *sub, const char ***ret, size_t *ret_n)
{
	size_t i, n;
	const char **list;
	char msg[128];

	if (!json_object_is_type(v, json_type_array))
		goto bad;
	n = json_object_array_length(v);
	list = carray(cc, n, sizeof(*list));
	if (!list)
		return -1;
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
	cfail_below(cc, key, sub, msg);
	return -1;
}

static int cmp_prop(const void *a, const void *b)
{
	return strcmp(((const struct sprop *)a)->key, ((const struct sprop *)b)->key);
}

/* One member (key, sub) of an object keyword, the i-th, compiled into n. */
typedef int (*member_fn)(struct compiler *cc, struct snode *n, size_t i, const char *key,
			 struct json_object *sub, const char *base);

/* Compiles the object keyword of obj (absent: nothing to do) member by
 * member into n: a zeroed array of one size-byte element per member is
 * stored at array (the address of the node's pointer to it, which owns it
 * from then on), *ret_n counts the members begun (so a failure leaves what
 * the node must free counted), and fn fills each element. */
static int each_member(struct compiler *cc, struct snode *n, struct json_object *obj,
		       const char *keyword, const char *what, const char *base, size_t size,
		       void *array, size_t *ret_n, member_fn fn)
{
	struct json_object *v;
	size_t cnt, i = 0;
	void *a;
	int r = typed_keyword(cc, obj, keyword, json_type_object, what, &v);

	if (r <= 0)
		return r;
	cnt = (size_t)json_object_object_length(v);
	a = carray(cc, cnt, size);
	if (!a)
		return -1;
	memcpy(array, &a, sizeof(a));
	json_object_object_foreach(v, key, sub)
	{
		*ret_n = i + 1;
		if (fn(cc, n, i, key, sub, base) < 0)
			return -1;
		i++;
	}
	return 0;
}

static int one_property(struct compiler *cc, struct snode *n, size_t i, const char *key,
			struct json_object *sub, const char *base)
{
	n->props[i].key = key;
	n->props[i].schema = compile_at(cc, sub, base, "properties", key, SIZE_MAX);
	return n->props[i].schema ? 0 : -1;
}

/* properties, and the same members sorted by key for lookups. */
static int compile_properties(struct compiler *cc, struct snode *n, struct json_object *obj,
			      const char *base)
{
	if (each_member(cc, n, obj, "properties", "an object of schemas", base, sizeof(*n->props),
			&n->props, &n->nprops, one_property) < 0)
		return -1;
	if (!n->props)
		return 0;
	n->sorted_props = carray(cc, n->nprops, sizeof(*n->sorted_props));
	if (!n->sorted_props)
		return -1;
	memcpy(n->sorted_props, n->props, n->nprops * sizeof(*n->props));
	qsort(n->sorted_props, n->nprops, sizeof(*n->sorted_props), cmp_prop);
	return 0;
}

static int one_pattern_property(struct compiler *cc, struct snode *n, size_t i, const char *key,
				struct json_object *sub, const char *base)
{
	/* The key is the regex; a string object lets compile_regex share its
	 * code path (and the key text lives in the schema document). */
	struct json_object *keyobj = json_object_new_string(key);
	int r;

	if (!keyobj) {
		coom(cc);
		return -1;
	}
	r = compile_regex(cc, keyobj, &n->patprops[i].re, "patternProperties", key);
	json_object_put(keyobj);
	if (r < 0)
		return -1;
	n->patprops[i].re.source = key;
	n->patprops[i].schema = compile_at(cc, sub, base, "patternProperties", key, SIZE_MAX);
	return n->patprops[i].schema ? 0 : -1;
}

static int one_dependency(struct compiler *cc, struct snode *n, size_t i, const char *key,
			  struct json_object *sub, const char *base)
{
	n->deps[i].key = key;
	if (json_object_is_type(sub, json_type_array))
		return string_array(cc, sub, "dependencies", key, &n->deps[i].required,
				    &n->deps[i].nrequired);
	n->deps[i].schema = compile_at(cc, sub, base, "dependencies", key, SIZE_MAX);
	return n->deps[i].schema ? 0 : -1;
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
	    each_member(cc, n, obj, "patternProperties", "an object of schemas", base,
			sizeof(*n->patprops), &n->patprops, &n->npatprops,
			one_pattern_property) < 0 ||
	    compile_one(cc, obj, "additionalProperties", base, &n->additional_props) < 0 ||
	    each_member(cc, n, obj, "dependencies", "an object", base, sizeof(*n->deps), &n->deps,
			&n->ndeps, one_dependency) < 0 ||
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
		r = typed_keyword(cc, obj, keys[i], json_type_object, "an object of schemas", &v);
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

struct snode *compile_node(struct compiler *cc, struct json_object *obj, const char *base)
{
	struct snode *n = hmap_get(&cc->objs, obj);
	struct json_object *ref;
	char *nbase = NULL;

	if (n || cc->failed)
		return n;
	if (!json_object_is_type(obj, json_type_object) &&
	    !json_object_is_type(obj, json_type_boolean)) {
		cfail(cc, "expected a schema (an object or a boolean), got %s",
		      schema_type_name(obj));
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

struct snode *compile_document(struct compiler *cc, struct json_object *doc, const char *uri,
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
	strbuf_truncate(&cc->label, 0);
	strbuf_adds(&cc->label, label);
	strbuf_truncate(&cc->ptr, 0);
	strbuf_add(&cc->ptr, "", 0);
	cc->depth = 0;
	n = compile_node(cc, doc, uri);
	if (cc->label.failed || cc->ptr.failed)
		coom(cc);
	return n;
}

/* Private to the schema modules: the compiled node graph, the compiler's
 * state and the helpers that schema.c (the entry points), schema_value.c,
 * schema_uri.c, schema_compile.c, schema_resolve.c and schema_validate.c
 * share. Nothing else includes it; the public API is schema.h. */
#ifndef BRACED_SCHEMA_INTERNAL_H
#define BRACED_SCHEMA_INTERNAL_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <math.h>
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "schema.h"
#include "strbuf.h"
#include "utf8.h"

/* Bytes of a user string quoted in a message. */
#define QUOTE_MAX 48

/* Base URI of a document without "$id": relative references resolve
 * under it and name files in base_dir ("braced:/sub/x.json"). */
#define FILE_BASE "braced:/"

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)

/* ---- values (schema_value.c) ------------------------------------------ */

enum {
	T_NULL = 1u << 0,
	T_BOOLEAN = 1u << 1,
	T_OBJECT = 1u << 2,
	T_ARRAY = 1u << 3,
	T_NUMBER = 1u << 4,
	T_STRING = 1u << 5,
	T_INTEGER = 1u << 6,
};

/* The names of the T_* bits, in bit order. */
extern const char *const schema_type_names[];
#define NTYPES 7

/* Room for one more element in the array a of *cap elements of size bytes
 * each, n of them used: a itself while n < *cap, else a moved to twice the
 * capacity (first the first time), with *cap updated. NULL on OOM, a and
 * *cap untouched. */
void *schema_grow(void *a, size_t n, size_t *cap, size_t size, size_t first);
/* Copies s into dst (size dstlen), cut at a character boundary and ended by
 * "..." when it does not fit. */
void schema_copy_cut(char *dst, size_t dstlen, const char *s, size_t n);
/* A user string made safe for a message: control bytes become '?', long
 * strings are cut. Returns buf. */
const char *schema_quote(char *buf, size_t buflen, const char *s, size_t n);

/* Inline, not extern: the validator's loop calls these per value, as it
 * called the static functions they were. */
static inline uint64_t hash_ptr2(const void *a, const void *b)
{
	return hash_mix64((uint64_t)(uintptr_t)a * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)b);
}

static inline int is_number(struct json_object *o)
{
	enum json_type t = json_object_get_type(o);

	return t == json_type_int || t == json_type_double;
}

/* The exact value of a json-c number: int64, uint64 and double all fit a
 * long double (64-bit mantissa on x86-64, wider elsewhere or equal to
 * double where long double is double, which loses only int64 precision). */
static inline long double num_value(struct json_object *o)
{
	int64_t v;

	if (json_object_is_type(o, json_type_double))
		return json_object_get_double(o);
	v = json_object_get_int64(o);
	if (v == INT64_MAX)
		return (long double)json_object_get_uint64(o);
	return (long double)v;
}

static inline unsigned type_bits(struct json_object *o)
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

/* The JSON type of o for messages: "integer" and "number" told apart. */
const char *schema_type_name(struct json_object *o);
/* Writes a schema number as its shortest exact text. */
void schema_number_text(struct json_object *o, char *buf, size_t len);

/* JSON equality: numbers by value (1 == 1.0), objects regardless of key
 * order; depth is 0 at the top. Past 2 * SCHEMA_MAX_DEPTH levels, values
 * compare by identity (only hand-built instances get there). */
int schema_value_equal(struct json_object *a, struct json_object *b, unsigned depth);
/* A hash that equal values (schema_value_equal) share: numbers by value,
 * objects independent of key order. */
uint64_t schema_value_hash(struct json_object *o, unsigned depth);
/* A total order whose equal elements are exactly the schema_value_equal
 * ones. Sets *oom when it could not allocate (the order is then
 * arbitrary). */
int schema_value_cmp(struct json_object *a, struct json_object *b, unsigned depth, int *oom);

/* ---- the compiled schema ---------------------------------------------- */

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

struct schema {
	struct snode *root;
	struct snode **nodes;
	size_t nnodes, capnodes;
	struct json_object **docs; /* references held: the main document, files, meta */
	size_t ndocs;
	pcre2_match_context *mctx;
	pcre2_compile_context *cctx;
};

/* ---- maps (schema_value.c) -------------------------------------------- */

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

/* The value of key, or NULL. */
void *hmap_get(const struct hmap *m, const void *key);
/* Inserts key (copied for string maps) -> val; the key must be absent.
 * Returns 0 or -ENOMEM. */
int hmap_put(struct hmap *m, const void *key, void *val);
/* Frees the slots (and the copied keys); the values are the caller's. */
void hmap_release(struct hmap *m);

/* ---- URI references, RFC 3986 section 5 (schema_uri.c) ---------------- */

struct uri {
	const char *scheme, *auth, *path, *query, *frag;
	size_t scheme_len, auth_len, path_len, query_len, frag_len;
	int has_scheme, has_auth, has_query, has_frag;
};

/* Splits s (borrowed; u points into it) into its parts. */
void uri_parse(const char *s, struct uri *u);
/* Resolves ref against the absolute URI base into a malloc'd absolute URI
 * (returned to the caller); sets *ret_climbed (may be NULL) when a ".."
 * went above the root. NULL on OOM. */
char *uri_resolve(const char *base, const char *ref, int *ret_climbed);
/* Percent-decodes s in place; returns -EINVAL on a bad escape or a NUL. */
int uri_percent_decode(char *s);
/* Follows the JSON pointer ptr (already percent-decoded) from root. Returns
 * 0 and *ret (borrowed from root), -ENOENT, or -ENOMEM. */
int schema_pointer_walk(struct json_object *root, const char *ptr, struct json_object **ret);

/* ---- the compiler (schema_compile.c, schema_resolve.c) ---------------- */

/* A resource: a document or subschema that a URI (without fragment) names,
 * or with a plain-name fragment, a location-independent identifier. */
struct resource {
	struct json_object *obj;
	char *base; /* base URI of the resource */
};

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
	struct strbuf label; /* document of the location being compiled ("" the main one) */
	struct strbuf ptr;   /* JSON pointer of that location */
	unsigned depth;
	unsigned flags; /* SCHEMA_* compile flags */
};

/* In schema_compile.c. Records the first error as "LABEL#POINTER: message". */
void cfail(struct compiler *cc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records "out of memory" unless an error is already recorded. */
void coom(struct compiler *cc);
/* Compiles the schema obj (borrowed from a document the schema holds) at
 * the location cc->label/cc->ptr with base URI base; a location compiled
 * before returns its node. NULL with the error set. */
struct snode *compile_node(struct compiler *cc, struct json_object *obj, const char *base);
/* Compiles a whole document registered under uri (which is also its base
 * and its label in messages). The schema takes the reference to doc. */
struct snode *compile_document(struct compiler *cc, struct json_object *doc, const char *uri,
			       const char *label);

/* In schema_resolve.c. Registers uri -> obj with base (copied); an
 * identical registration is a no-op, another one for uri an error. */
int resource_add(struct compiler *cc, const char *uri, struct json_object *obj, const char *base);
/* Resolves pending reference i, loading the document it names when needed.
 * Returns 0, or -1 with the error set. */
int resolve_one(struct compiler *cc, size_t i);
/* Rejects cycles of same-location edges (they would never end) and chains
 * of them longer than SCHEMA_MAX_DEPTH. Returns 0, or -1 with the error set. */
int check_cycles(struct compiler *cc);

#endif

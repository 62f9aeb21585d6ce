/* JSON Schema draft-07 over json-c: a schema is compiled once from a json-c
 * document (regexes, $ref graph, limits checked up front) into an immutable
 * object that validates many instances. Pure: no I/O except reading the files
 * a "$ref" names, at compile time. */
#ifndef BRACED_SCHEMA_H
#define BRACED_SCHEMA_H

#include <stddef.h>
#include <json-c/json.h>

/* Violations kept per validation; the result still counts all of them. */
#define SCHEMA_MAX_VIOLATIONS 10
/* Nesting of instances (segments of a JSON pointer, also the parser's limit
 * on nested containers) and of schemas applied at one instance location
 * ($ref, allOf, anyOf, oneOf, not, if/then/else, dependencies chains). */
#define SCHEMA_MAX_DEPTH 64
/* Evaluations of a schema against a value, per validation; a validation
 * that needs more stops with a "limit" violation. */
#define SCHEMA_MAX_STEPS 10000000UL
/* Compiled schema nodes per schema_compile(), files a schema may read
 * through "$ref", and the size of each such file. */
#define SCHEMA_MAX_NODES 65536
#define SCHEMA_MAX_FILES 64
#define SCHEMA_MAX_FILE_SIZE (1024 * 1024)
/* Per-match limits handed to PCRE2 for "pattern" and "patternProperties":
 * backtracking steps per start position, backtracking depth, and heap in
 * KiB. A match that hits one fails the whole validation ("pattern"). */
#define SCHEMA_REGEX_MATCH_LIMIT 100000u
#define SCHEMA_REGEX_DEPTH_LIMIT 100000u
#define SCHEMA_REGEX_HEAP_LIMIT_KIB 16384u

struct schema; /* compiled, immutable, shareable between threads */

struct schema_violation {
	char pointer[256]; /* RFC 6901 pointer to the instance location ("" = root);
			    * cut at a character boundary and ended by "..." when longer */
	char keyword[32];  /* failing keyword, "json" for a parse error, "depth" or
			    * "limit" when a limit stopped the validation */
	char message[160]; /* short, lower case, e.g. "expected number" */
};

struct schema_result {
	struct schema_violation v[SCHEMA_MAX_VIOLATIONS];
	size_t count; /* entries of v filled */
	size_t total; /* violations found, kept or not */
};

/* Compiles the draft-07 schema doc (borrowed: the schema takes its own
 * json-c reference, and doc must not be modified afterwards). A "$ref" is
 * resolved against the "$id" base URIs inside the document; "#..." is this
 * document's root; "http://json-schema.org/draft-07/schema#" is the built-in
 * meta-schema; a relative reference that matches no "$id", like
 * "common.json#/definitions/x", names a JSON file under base_dir (NULL: no
 * file may be read), resolved like a URI relative to the referring file and
 * refused when it climbs above base_dir with "..", leaves it through a
 * symlink, exceeds SCHEMA_MAX_FILE_SIZE or is YAML (.yaml/.yml: only JSON
 * files can be referenced). Every file is read here, never at validation.
 * Formats and content are asserted (see SCHEMA_ASSERT_FORMATS). Two
 * keywords of draft 2020-12 are read, as Pydantic emits them: "$defs" (like
 * "definitions") and "prefixItems" (then "items" applies to the items after
 * them and must be one schema, and "additionalItems" is refused).
 * Unknown keywords are ignored, as draft-07 allows; siblings of "$ref" are
 * ignored too; "$schema" is not read (every schema is draft-07). Rejects
 * what cannot be a schema: a non-schema where a schema is expected, an
 * unknown "type", a negative or fractional size limit, a non-positive
 * "multipleOf", an invalid regular expression or one using PCRE2-only
 * syntax (patterns are ECMA-262, mapped onto PCRE2: ASCII \d \w \b, Unicode
 * \s, "." stops at line terminators, "$" only at the end), an unresolvable
 * "$ref", a cycle of references that consumes no instance depth (like
 * {"$ref": "#"}) or a chain of them deeper than SCHEMA_MAX_DEPTH, and more
 * than SCHEMA_MAX_NODES schemas.
 * Returns the schema (free with schema_free), or NULL with a message in err:
 * "POINTER: what is wrong", POINTER being the location in the schema, like
 * "#/properties/city/maxLength", or "common.json#/definitions/x" in a file.
 * NULL with "out of memory" on OOM. */
struct schema *schema_compile(struct json_object *doc, const char *base_dir, char *err,
			      size_t errlen);

/* Compile flags. SCHEMA_ASSERT_FORMATS: "format" values schema_format.h
 * knows are assertions, as are "contentEncoding": "base64" and
 * "contentMediaType": "application/json"; without it they are annotations
 * (other values always are). */
#define SCHEMA_ASSERT_FORMATS 0x1u

/* schema_compile() with flags (SCHEMA_*); schema_compile() is this with
 * SCHEMA_ASSERT_FORMATS. */
struct schema *schema_compile_flags(struct json_object *doc, const char *base_dir, unsigned flags,
				    char *err, size_t errlen);

/* Frees a schema and drops its document references; NULL is a no-op. */
void schema_free(struct schema *s);

/* Validates instance (borrowed, NULL is JSON null) against s; s may be
 * used by several threads at once. Fills res (overwritten) with up to
 * SCHEMA_MAX_VIOLATIONS violations in the order found, and their total.
 * Violations inside anyOf, oneOf, not, if, contains and propertyNames
 * branches are summarised as one violation of that keyword. Numbers compare
 * by value (1 == 1.0; 1.0 is an integer), strings by bytes, lengths count
 * code points, uniqueItems sorts (O(n log n)). Never descends more than
 * SCHEMA_MAX_DEPTH instance levels nor nests more than 1024 evaluations
 * ("depth" violation), never runs more than SCHEMA_MAX_STEPS steps
 * ("limit"), never lets a regex run past the PCRE2 limits ("pattern" or
 * "patternProperties"); each of those makes the instance invalid, even
 * inside "not". Returns 0 when valid, 1 when not, -ENOMEM (res holds a
 * "limit" violation) when memory ran out. */
int schema_validate(const struct schema *s, struct json_object *instance,
		    struct schema_result *res);

/* In schema_json.c. Parses one JSON document of len bytes (RFC 8259, stricter than json-c's
 * own strict mode): rejects invalid UTF-8, NaN and Infinity, numbers that
 * overflow a double, single-quoted strings or keys, raw control characters
 * in strings, "1.", more than SCHEMA_MAX_DEPTH nested containers, and
 * anything after the document but whitespace. Integers beyond 64 bits are
 * accepted but clamped by json-c (only equality and multipleOf on them are
 * then inexact). Duplicate keys: the last one wins. Returns 0 and *ret
 * (returned to the caller, who frees it with json_object_put; NULL for the
 * document "null"), or -EINVAL with a short message in err and *ret
 * untouched; -ENOMEM on OOM. */
int schema_parse_json(const char *buf, size_t len, struct json_object **ret, char *err,
		      size_t errlen);

/* Options of schema_parse_json_ex(). */
enum {
	/* The document carries a secret: it is parsed by a tokener of its own
	 * whose buffer is sized for the whole document first (so it is never
	 * moved, which would leave a copy behind in freed memory) and wiped
	 * before it is freed. The caller wipes buf, and releases the document
	 * with schema_json_put_wiped(). */
	SCHEMA_JSON_SECRET = 1u << 0,
};

/* schema_parse_json() with at most max_depth nested containers (1 to
 * SCHEMA_MAX_DEPTH; others are -EINVAL) and the flags above. Same results
 * and ownership. */
int schema_parse_json_ex(const char *buf, size_t len, int max_depth, unsigned flags,
			 struct json_object **ret, char *err, size_t errlen);

/* Wipes every string value in o, at any depth, with explicit_bzero(), then
 * releases o (json_object_put; taken). For a document that carried a
 * secret; member names are left as they are. NULL is a no-op. */
void schema_json_put_wiped(struct json_object *o);

/* Fills res with the single violation of a body that is not JSON: pointer
 * "", keyword "json", message msg (borrowed, copied and cut to fit). */
void schema_result_set_json_error(struct schema_result *res, const char *msg);

#endif

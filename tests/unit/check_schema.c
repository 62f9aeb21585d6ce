/* JSON Schema validator (daemon/schema/) beyond the official suite: SPEC 2's
 * weather schemas and their violation pointers, keywords and messages;
 * limits (deep instances, hostile regexes, 100000-item uniqueItems,
 * violations capped at 10, exponential anyOf); pointer escaping; compile
 * errors with their schema pointer; $ref to files and to the meta-schema;
 * strict parsing (NaN, trailing garbage, invalid UTF-8, ...); formats and
 * content asserted or annotated; prefixItems and $defs; the schemas three
 * Pydantic v2 models emit, with valid and drifted instances. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema.h"
#include "schema_format.h"
#include "suites.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *schema_suite(void);

static const char weather_response[] =
    "{\"type\": \"object\","
    " \"required\": [\"city\", \"temperature\", \"condition\", \"source_latency_ms\"],"
    " \"properties\": {"
    "  \"city\": {\"type\": \"string\"},"
    "  \"temperature\": {\"type\": \"number\"},"
    "  \"condition\": {\"type\": \"string\"},"
    "  \"source_latency_ms\": {\"type\": \"integer\", \"minimum\": 0}}}";

static const char weather_query[] =
    "{\"type\": \"object\", \"required\": [\"city\"],"
    " \"properties\": {"
    "  \"city\": {\"type\": \"string\", \"minLength\": 2, \"maxLength\": 100},"
    "  \"unit\": {\"enum\": [\"metric\", \"imperial\"]}}}";

static struct json_object *parse(const char *text)
{
	struct json_object *o = NULL;
	char err[256];
	int r = schema_parse_json(text, strlen(text), &o, err, sizeof(err));

	ck_assert_msg(r == 0, "cannot parse '%s': %s", text, err);
	return o;
}

static struct schema *compile_with(const char *text, const char *base_dir)
{
	struct json_object *doc = parse(text);
	char err[512];
	struct schema *s = schema_compile(doc, base_dir, err, sizeof(err));

	ck_assert_msg(s != NULL, "schema does not compile: %s: %s", err, text);
	json_object_put(doc);
	return s;
}

static struct schema *compile(const char *text)
{
	return compile_with(text, NULL);
}

/* Validates the JSON text instance; returns schema_validate's result. */
static int check(const struct schema *s, const char *instance, struct schema_result *res)
{
	struct json_object *o = parse(instance);
	int r = schema_validate(s, o, res);

	json_object_put(o);
	ck_assert_msg(r == 0 || r == 1, "schema_validate returned %d", r);
	ck_assert_msg(r == 0 ? res->total == 0 : res->count > 0, "result %d with %zu violations", r,
		      res->count);
	return r;
}

static void assert_violation(const struct schema_result *res, size_t i, const char *pointer,
			     const char *keyword, const char *message_prefix)
{
	ck_assert_msg(res->count > i, "only %zu violations", res->count);
	ck_assert_str_eq(res->v[i].pointer, pointer);
	ck_assert_str_eq(res->v[i].keyword, keyword);
	ck_assert_msg(strncmp(res->v[i].message, message_prefix, strlen(message_prefix)) == 0,
		      "message '%s' does not start with '%s'", res->v[i].message, message_prefix);
}

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_weather_response)
{
	struct schema *s = compile(weather_response);
	struct schema_result res;

	ck_assert_int_eq(
	    check(s,
		  "{\"city\": \"Oslo\", \"temperature\": -3.5, \"condition\": \"snow\","
		  " \"source_latency_ms\": 12, \"extra\": [1, 2]}",
		  &res),
	    0);
	ck_assert_uint_eq(res.count, 0);

	ck_assert_int_eq(check(s,
			       "{\"city\": \"Oslo\", \"condition\": \"snow\","
			       " \"source_latency_ms\": 12}",
			       &res),
			 1);
	ck_assert_uint_eq(res.count, 1);
	ck_assert_uint_eq(res.total, 1);
	assert_violation(&res, 0, "", "required", "missing required property 'temperature'");

	ck_assert_int_eq(
	    check(s,
		  "{\"city\": \"Oslo\", \"temperature\": \"hot\", \"condition\": \"snow\","
		  " \"source_latency_ms\": 12}",
		  &res),
	    1);
	ck_assert_uint_eq(res.count, 1);
	assert_violation(&res, 0, "/temperature", "type", "expected number");
	ck_assert_str_eq(res.v[0].message, "expected number, got string");

	/* 1.0 is an integer; -1 is below the minimum; 1.5 is not an integer. */
	ck_assert_int_eq(check(s,
			       "{\"city\": \"Oslo\", \"temperature\": 1, \"condition\": \"snow\","
			       " \"source_latency_ms\": 1.0}",
			       &res),
			 0);
	ck_assert_int_eq(check(s,
			       "{\"city\": \"Oslo\", \"temperature\": 1, \"condition\": \"snow\","
			       " \"source_latency_ms\": -1}",
			       &res),
			 1);
	assert_violation(&res, 0, "/source_latency_ms", "minimum", "expected at least 0");
	ck_assert_int_eq(check(s,
			       "{\"city\": \"Oslo\", \"temperature\": 1, \"condition\": \"snow\","
			       " \"source_latency_ms\": 1.5}",
			       &res),
			 1);
	assert_violation(&res, 0, "/source_latency_ms", "type", "expected integer, got number");

	ck_assert_int_eq(check(s, "[]", &res), 1);
	assert_violation(&res, 0, "", "type", "expected object, got array");
	ck_assert_uint_eq(res.total, 1);
	schema_free(s);
}
END_TEST

START_TEST(test_weather_query)
{
	struct schema *s = compile(weather_query);
	struct schema_result res;

	ck_assert_int_eq(check(s, "{\"city\": \"Oslo\", \"unit\": \"metric\"}", &res), 0);
	ck_assert_int_eq(check(s, "{\"city\": \"O\"}", &res), 1);
	assert_violation(&res, 0, "/city", "minLength", "expected at least 2 characters, got 1");
	/* Two code points, four bytes each. */
	ck_assert_int_eq(check(s, "{\"city\": \"\\ud83d\\ude00\\ud83d\\ude00\"}", &res), 0);
	ck_assert_int_eq(check(s, "{\"city\": \"Oslo\", \"unit\": \"kelvin\"}", &res), 1);
	assert_violation(&res, 0, "/unit", "enum", "expected one of [\"metric\",\"imperial\"]");
	ck_assert_int_eq(check(s, "{\"unit\": 5}", &res), 1);
	ck_assert_uint_eq(res.total, 2);
	assert_violation(&res, 0, "", "required", "missing required property 'city'");
	assert_violation(&res, 1, "/unit", "enum", "expected one of");
	schema_free(s);
}
END_TEST

START_TEST(test_messages)
{
	static const struct {
		const char *schema, *instance, *pointer, *keyword, *message;
	} cases[] = {
		{ "{\"additionalProperties\": false, \"properties\": {\"a\": {}}}",
		  "{\"a\": 1, \"b\": 2}", "/b", "additionalProperties",
		  "property 'b' is not allowed" },
		{ "{\"dependencies\": {\"card\": [\"billing\"]}}", "{\"card\": 1}", "",
		  "dependencies", "property 'card' requires property 'billing'" },
		{ "{\"propertyNames\": {\"maxLength\": 3}}", "{\"abcd\": 1}", "", "propertyNames",
		  "invalid property name 'abcd'" },
		{ "{\"oneOf\": [{\"type\": \"integer\"}, {\"minimum\": 0}]}", "5", "", "oneOf",
		  "expected to match exactly one schema in 'oneOf', matched 0 and 1" },
		{ "{\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"null\"}]}", "5", "", "anyOf",
		  "expected to match at least one of the 2 schemas" },
		{ "{\"not\": {\"type\": \"integer\"}}", "5", "", "not", "expected not to match" },
		{ "{\"items\": [{}, {}], \"additionalItems\": false}", "[1, 2, 3]", "",
		  "additionalItems", "expected at most 2 items, got 3" },
		{ "{\"items\": {\"uniqueItems\": true}}", "[[1, 2], [3, 1.0, 1]]", "/1",
		  "uniqueItems", "items 1 and 2 are equal" },
		{ "{\"contains\": {\"const\": 3}}", "[1, 2]", "", "contains", "no item matches" },
		{ "{\"multipleOf\": 0.01}", "0.015", "", "multipleOf",
		  "expected a multiple of 0.01" },
		{ "{\"exclusiveMaximum\": 10}", "10", "", "exclusiveMaximum",
		  "expected less than 10" },
		{ "{\"type\": [\"string\", \"null\"]}", "true", "", "type",
		  "expected null or string, got boolean" },
		{ "{\"pattern\": \"^[a-z]+$\"}", "\"ABC\"", "", "pattern",
		  "does not match pattern '^[a-z]+$'" },
		{ "{\"properties\": {\"a\": false}}", "{\"a\": null}", "/a", "false",
		  "no value is allowed here" },
		{ "{\"if\": {\"minimum\": 10}, \"then\": {\"multipleOf\": 10}}", "15", "",
		  "multipleOf", "expected a multiple of 10" },
		{ "{\"const\": {\"a\": [1, 2]}}", "{\"a\": [1, 3]}", "", "const",
		  "expected {\"a\":[1,2]}" },
		{ "{\"additionalProperties\": false}", "{\"a\\nb\": 1}", "/a\nb",
		  "additionalProperties", "property 'a?b' is not allowed" },
	};
	struct schema_result res;
	struct schema *s;

	for (int i = 0; i < N(cases); i++) {
		s = compile(cases[i].schema);
		ck_assert_msg(check(s, cases[i].instance, &res) == 1, "case %d valid", i);
		assert_violation(&res, 0, cases[i].pointer, cases[i].keyword, cases[i].message);
		schema_free(s);
	}
}
END_TEST

START_TEST(test_equality)
{
	struct schema *s = compile("{\"const\": {\"a\": 1, \"b\": [1.0, {\"c\": null}]}}");
	struct schema_result res;

	ck_assert_int_eq(check(s, "{\"b\": [1, {\"c\": null}], \"a\": 1.0}", &res), 0);
	ck_assert_int_eq(check(s, "{\"b\": [1, {\"c\": false}], \"a\": 1.0}", &res), 1);
	ck_assert_int_eq(check(s, "{\"b\": [{\"c\": null}, 1], \"a\": 1}", &res), 1);
	schema_free(s);
	s = compile("{\"enum\": [1, \"1\", [true]]}");
	ck_assert_int_eq(check(s, "1.0", &res), 0);
	ck_assert_int_eq(check(s, "[true]", &res), 0);
	ck_assert_int_eq(check(s, "[1]", &res), 1);
	ck_assert_int_eq(check(s, "true", &res), 1);
	schema_free(s);
}
END_TEST

START_TEST(test_pointer_escaping)
{
	struct schema *s = compile("{\"properties\": {\"a/b\": {\"type\": \"string\"},"
				   " \"c~d\": {\"items\": {\"type\": \"string\"}}}}");
	struct schema_result res;

	ck_assert_int_eq(check(s, "{\"a/b\": 1, \"c~d\": [\"x\", 2]}", &res), 1);
	ck_assert_uint_eq(res.count, 2);
	ck_assert_str_eq(res.v[0].pointer, "/a~1b");
	ck_assert_str_eq(res.v[1].pointer, "/c~0d/1");
	schema_free(s);
}
END_TEST

START_TEST(test_violations_capped)
{
	struct schema *s = compile("{\"items\": {\"type\": \"string\"}}");
	struct schema_result res;
	char text[256] = "[";

	for (int i = 0; i < 25; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%d", i ? "," : "", i);
	strcat(text, "]");
	ck_assert_int_eq(check(s, text, &res), 1);
	ck_assert_uint_eq(res.count, SCHEMA_MAX_VIOLATIONS);
	ck_assert_uint_eq(res.total, 25);
	ck_assert_str_eq(res.v[0].pointer, "/0");
	ck_assert_str_eq(res.v[9].pointer, "/9");
	schema_free(s);
}
END_TEST

/* Builds [[[...]]] n levels deep. */
static struct json_object *nested_arrays(int n)
{
	struct json_object *o = json_object_new_array(), *outer;

	for (int i = 1; i < n; i++) {
		outer = json_object_new_array();
		json_object_array_add(outer, o);
		o = outer;
	}
	return o;
}

static char *nested_text(int n)
{
	char *t = malloc(2 * (size_t)n + 1);

	memset(t, '[', (size_t)n);
	memset(t + n, ']', (size_t)n);
	t[2 * n] = '\0';
	return t;
}

START_TEST(test_depth)
{
	struct schema *s = compile("{\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}");
	struct schema_result res;
	struct json_object *o = NULL;
	char err[128], *t;

	/* The parser allows SCHEMA_MAX_DEPTH nested containers, no more. */
	t = nested_text(SCHEMA_MAX_DEPTH);
	ck_assert_int_eq(schema_parse_json(t, strlen(t), &o, err, sizeof(err)), 0);
	ck_assert_int_eq(schema_validate(s, o, &res), 0);
	json_object_put(o);
	free(t);
	t = nested_text(1000);
	o = NULL;
	ck_assert_int_eq(schema_parse_json(t, strlen(t), &o, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(o);
	ck_assert_msg(strstr(err, "nested deeper than 64 levels") != NULL, "message: %s", err);
	free(t);

	/* A hand-built instance gets a "depth" violation, not a stack overflow. */
	o = nested_arrays(1000);
	ck_assert_int_eq(schema_validate(s, o, &res), 1);
	ck_assert_uint_eq(res.count, 1);
	ck_assert_str_eq(res.v[0].keyword, "depth");
	ck_assert_uint_eq(strlen(res.v[0].pointer), 2 * (SCHEMA_MAX_DEPTH + 1));
	schema_free(s);
	/* Inside "not" the limit still fails the instance. */
	s = compile("{\"not\": {\"items\": {\"$ref\": \"#/not\"}}}");
	ck_assert_int_eq(schema_validate(s, o, &res), 1);
	ck_assert_str_eq(res.v[0].keyword, "depth");
	schema_free(s);
	/* A schema that does not descend does not care. */
	s = compile("{\"type\": \"array\", \"uniqueItems\": true}");
	ck_assert_int_eq(schema_validate(s, o, &res), 0);
	schema_free(s);
	json_object_put(o);
}
END_TEST

START_TEST(test_hostile_regex)
{
	static const char *const schemas[] = {
		"{\"pattern\": \"(a+)+$\"}",
		"{\"not\": {\"pattern\": \"(a+)+$\"}}",
		"{\"patternProperties\": {\"(a+)+$\": true}, \"additionalProperties\": false}",
	};
	static const char *const instances[] = {
		"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"",
		"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"",
		"{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\": 1}",
	};
	struct schema_result res;
	struct schema *s;
	double t0;

	for (int i = 0; i < N(schemas); i++) {
		s = compile(schemas[i]);
		t0 = seconds();
		ck_assert_int_eq(check(s, instances[i], &res), 1);
		/* A guard against a hang, not a benchmark: the limit stops it in ms. */
		ck_assert_msg(seconds() - t0 < 2.0, "case %d took %.3f s", i, seconds() - t0);
		ck_assert_uint_eq(res.count, 1);
		ck_assert_msg(strstr(res.v[0].message, "exceeded its match limits") != NULL,
			      "case %d: %s", i, res.v[0].message);
		schema_free(s);
	}
}
END_TEST

START_TEST(test_unique_big)
{
	struct schema *s = compile("{\"uniqueItems\": true}");
	struct json_object *arr = json_object_new_array();
	struct schema_result res;
	double t0;
	int n = 100000;

	for (int i = 0; i < n; i++)
		json_object_array_add(arr, i % 2 ? json_object_new_int64((int64_t)i * 7919)
						 : json_object_new_double(i * 7919.0 + 0.5));
	t0 = seconds();
	ck_assert_int_eq(schema_validate(s, arr, &res), 0);
	json_object_array_add(arr, json_object_new_double(3 * 7919.0));
	ck_assert_int_eq(schema_validate(s, arr, &res), 1);
	ck_assert_str_eq(res.v[0].message, "items 3 and 100000 are equal");
	/* O(n log n): well under a second; a quadratic check takes minutes. */
	ck_assert_msg(seconds() - t0 < 5.0, "took %.3f s", seconds() - t0);
	json_object_put(arr);
	schema_free(s);
}
END_TEST

START_TEST(test_exponential_anyof)
{
	/* Each level tries the same child under two branches that both fail
	 * deep down: 2^60 evaluations without memoisation. */
	struct schema *s =
	    compile("{\"$ref\": \"#/definitions/n\", \"definitions\": {\"n\": "
		    "{\"anyOf\": [{\"type\": \"array\", \"maxItems\": 1,"
		    " \"items\": {\"$ref\": \"#/definitions/n\"}},"
		    " {\"type\": \"array\", \"items\": {\"$ref\": \"#/definitions/n\"}},"
		    " {\"type\": \"integer\", \"maximum\": 0}]}}}");
	struct schema_result res;
	char text[256];
	int i, d = 60;

	for (i = 0; i < d; i++)
		text[i] = '[';
	text[d] = '1';
	for (i = 0; i < d; i++)
		text[d + 1 + i] = ']';
	text[2 * d + 1] = '\0';
	ck_assert_int_eq(check(s, text, &res), 1);
	assert_violation(&res, 0, "", "anyOf", "expected to match at least one");
	text[d] = '0';
	ck_assert_int_eq(check(s, text, &res), 0);
	schema_free(s);
}
END_TEST

START_TEST(test_ecma_regex)
{
	/* ECMA-262 semantics on PCRE2: ASCII \d and \w, Unicode \s, "." stops at
	 * line terminators, "$" only at the very end, \u escapes, [^] and []. */
	static const struct {
		const char *pattern, *instance;
		int valid;
	} cases[] = {
		{ "^\\\\d$", "\"7\"", 1 },
		{ "^\\\\d$", "\"\\u0663\"", 0 },
		{ "^\\\\w$", "\"\\u00e9\"", 0 },
		{ "^\\\\s$", "\"\\u00a0\"", 1 },
		{ "^[\\\\s]$", "\"\\u3000\"", 1 },
		{ "^\\\\S$", "\"\\u2028\"", 0 },
		{ "^.$", "\"\\r\"", 0 },
		{ "^.$", "\"\\ud83d\\ude00\"", 1 },
		{ "^abc$", "\"abc\\n\"", 0 },
		{ "^\\\\u0041\\\\v$", "\"A\\u000b\"", 1 },
		{ "^[^]$", "\"\\n\"", 1 },
		{ "[]", "\"a\"", 0 },
		{ "b", "\"abc\"", 1 },
		{ "(?<year>\\\\d{4})-\\\\k<year>", "\"2024-2024\"", 1 },
		{ "(?<=a)b", "\"cb\"", 0 },
	};
	struct schema_result res;
	struct schema *s;
	char text[128];

	for (int i = 0; i < N(cases); i++) {
		snprintf(text, sizeof(text), "{\"pattern\": \"%s\"}", cases[i].pattern);
		s = compile(text);
		ck_assert_msg(check(s, cases[i].instance, &res) == !cases[i].valid,
			      "'%s' against %s", cases[i].pattern, cases[i].instance);
		schema_free(s);
	}
}
END_TEST

START_TEST(test_compile_errors)
{
	static const struct {
		const char *schema, *err;
	} cases[] = {
		{ "{\"type\": \"strng\"}", "#/type: unknown type 'strng'" },
		{ "{\"type\": []}", "#/type: " },
		{ "{\"properties\": {\"a\": {\"maxLength\": -1}}}",
		  "#/properties/a/maxLength: 'maxLength' must be a non-negative integer" },
		{ "{\"minItems\": 1.5}", "#/minItems: " },
		{ "{\"pattern\": \"(\"}", "#/pattern: invalid regular expression '(': " },
		{ "{\"patternProperties\": {\"a~/[\": {}}}",
		  "#/patternProperties/a~0~1[: invalid regular expression" },
		{ "{\"items\": [{}, 5]}", "#/items/1: expected a schema" },
		{ "{\"not\": \"x\"}",
		  "#/not: expected a schema (an object or a boolean), got string" },
		{ "{\"definitions\": {\"a\": []}}", "#/definitions/a: expected a schema" },
		{ "{\"properties\": {\"a\": {\"$ref\": \"#/definitions/nope\"}}}",
		  "#/properties/a/$ref: unresolvable '$ref' '#/definitions/nope'" },
		{ "{\"$ref\": \"http://example.com/x.json\"}", "#/$ref: unresolvable '$ref'" },
		{ "{\"$ref\": \"#\"}", "#: '$ref' loop that never descends into the instance" },
		{ "{\"definitions\": {\"a\": {\"$ref\": \"#/definitions/b\"},"
		  " \"b\": {\"allOf\": [{\"$ref\": \"#/definitions/a\"}]}},"
		  " \"anyOf\": [{\"$ref\": \"#/definitions/a\"}]}",
		  "'$ref' loop that never descends" },
		{ "{\"multipleOf\": 0}", "#/multipleOf: 'multipleOf' must be greater than 0" },
		{ "{\"exclusiveMaximum\": true}",
		  "#/exclusiveMaximum: 'exclusiveMaximum' must be a number" },
		{ "{\"required\": \"a\"}", "#/required: 'required' must be an array of strings" },
		{ "{\"dependencies\": {\"a\": [1]}}", "#/dependencies/a: " },
		{ "{\"enum\": 5}", "#/enum: " },
		{ "{\"allOf\": []}", "#/allOf: " },
		{ "{\"$ref\": 5}", "#/$ref: '$ref' must be a string" },
		{ "{\"$ref\": \"other.json\"}", "#/$ref: '$ref' names file 'other.json'" },
		{ "5", "#: expected a schema" },
		{ "{\"pattern\": \"^a\\\\Z\"}",
		  "#/pattern: regular expression '^a\\Z' uses an escape" },
		{ "{\"pattern\": \"(?i)a\"}", "uses a group syntax that ECMA-262 lacks" },
		{ "{\"pattern\": \"a++\"}", "uses a possessive quantifier" },
		{ "{\"pattern\": \"(*ACCEPT)a\"}", "uses a PCRE2 verb" },
	};
	struct json_object *doc;
	struct schema *s;
	char err[512];

	for (int i = 0; i < N(cases); i++) {
		doc = parse(cases[i].schema);
		s = schema_compile(doc, NULL, err, sizeof(err));
		ck_assert_msg(s == NULL, "case %d compiled: %s", i, cases[i].schema);
		ck_assert_msg(strstr(err, cases[i].err) != NULL, "case %d: '%s' lacks '%s'", i, err,
			      cases[i].err);
		json_object_put(doc);
	}
}
END_TEST

START_TEST(test_schema_shapes)
{
	struct schema_result res;
	struct schema *s;

	s = compile("true");
	ck_assert_int_eq(check(s, "{\"a\": 1}", &res), 0);
	schema_free(s);
	s = compile("false");
	ck_assert_int_eq(check(s, "null", &res), 1);
	assert_violation(&res, 0, "", "false", "no value");
	schema_free(s);
	/* Unknown keywords are ignored; "$ref" siblings too. */
	s = compile(
	    "{\"x-unknown\": {\"type\": 5}, \"format\": \"email\","
	    " \"properties\": {\"a\": {\"$ref\": \"#/definitions/s\", \"type\": \"array\"}},"
	    " \"definitions\": {\"s\": {\"type\": \"string\"}}}");
	ck_assert_int_eq(check(s, "{\"a\": \"x\"}", &res), 0);
	ck_assert_int_eq(check(s, "{\"a\": []}", &res), 1);
	schema_free(s);
	/* An unused chain that loops through "items" is fine: it descends. */
	s = compile("{\"properties\": {\"next\": {\"$ref\": \"#\"}}, \"required\": [\"v\"]}");
	ck_assert_int_eq(check(s, "{\"v\": 1, \"next\": {\"v\": 2, \"next\": {\"v\": 3}}}", &res),
			 0);
	ck_assert_int_eq(check(s, "{\"v\": 1, \"next\": {\"next\": {\"v\": 3}}}", &res), 1);
	assert_violation(&res, 0, "/next", "required", "missing required property 'v'");
	schema_free(s);
}
END_TEST

START_TEST(test_meta_schema)
{
	struct schema *s = compile("{\"$ref\": \"http://json-schema.org/draft-07/schema#\"}");
	struct schema_result res;

	ck_assert_int_eq(check(s, weather_response, &res), 0);
	ck_assert_int_eq(check(s, weather_query, &res), 0);
	ck_assert_int_eq(check(s, "{\"type\": \"strng\"}", &res), 1);
	ck_assert_int_eq(check(s, "{\"properties\": {\"a\": {\"minLength\": -1}}}", &res), 1);
	ck_assert_int_eq(check(s, "{\"required\": [\"a\", \"a\"]}", &res), 1);
	schema_free(s);
}
END_TEST

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void files_setup(void)
{
	char path[256];

	strcpy(tmpdir, "/tmp/check_schema.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/sub", tmpdir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	write_file("common.json", "{\"definitions\": {\"temp\": {\"type\": \"number\"},"
				  " \"city\": {\"$ref\": \"sub/city%20name.json\"}}}");
	write_file("sub/city name.json",
		   "{\"type\": \"string\", \"minLength\": 2,"
		   " \"not\": {\"$ref\": \"names.json#/definitions/banned\"}}");
	write_file("sub/names.json",
		   "{\"definitions\": {\"banned\": {\"enum\": [\"Mordor\"]},"
		   " \"back\": {\"$ref\": \"../common.json#/definitions/temp\"}}}");
	write_file("sub/up.json", "{\"$ref\": \"../../common.json\"}");
	write_file("bad.json", "{\"type\": \"strng\"}");
	write_file("broken.json", "{\"type\": ");
	write_file("schema.yaml", "type: string\n");
	snprintf(path, sizeof(path), "%s/escape.json", tmpdir);
	ck_assert_int_eq(symlink("/etc/passwd", path), 0);
}

static void files_teardown(void)
{
	static const char *const names[] = { "common.json", "sub/city name.json", "sub/names.json",
					     "sub/up.json", "bad.json",           "broken.json",
					     "schema.yaml", "escape.json" };
	char path[256];

	for (int i = 0; i < N(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/sub", tmpdir);
	rmdir(path);
	rmdir(tmpdir);
}

START_TEST(test_file_refs)
{
	static const struct {
		const char *ref, *err;
	} bad[] = {
		{ "../common.json", "#/properties/t/$ref: '$ref' leaves the schema directory" },
		{ "sub/up.json", "sub/up.json#/$ref: '$ref' leaves the schema directory" },
		{ "bad.json", "bad.json#/type: unknown type 'strng'" },
		{ "broken.json", "'$ref' file 'broken.json': invalid JSON" },
		{ "schema.yaml", "only JSON files" },
		{ "missing.json", "cannot read '$ref' file 'missing.json'" },
		{ "escape.json", "outside the schema directory" },
		{ "common.json#/definitions/none", "#/properties/t/$ref: unresolvable '$ref'" },
	};
	struct schema_result res;
	struct json_object *doc;
	struct schema *s;
	char text[256], err[512];

	s = compile_with("{\"properties\": {\"t\": {\"$ref\": \"common.json#/definitions/temp\"}}}",
			 tmpdir);
	ck_assert_int_eq(check(s, "{\"t\": 3.5}", &res), 0);
	ck_assert_int_eq(check(s, "{\"t\": \"3.5\"}", &res), 1);
	assert_violation(&res, 0, "/t", "type", "expected number");
	schema_free(s);
	s = compile_with("{\"$ref\": \"common.json#/definitions/city\"}", tmpdir);
	ck_assert_int_eq(check(s, "\"Oslo\"", &res), 0);
	ck_assert_int_eq(check(s, "\"Mordor\"", &res), 1);
	assert_violation(&res, 0, "", "not", "expected not to match");
	schema_free(s);
	for (int i = 0; i < N(bad); i++) {
		snprintf(text, sizeof(text), "{\"properties\": {\"t\": {\"$ref\": \"%s\"}}}",
			 bad[i].ref);
		doc = parse(text);
		s = schema_compile(doc, tmpdir, err, sizeof(err));
		ck_assert_msg(s == NULL, "'%s' compiled", bad[i].ref);
		ck_assert_msg(strstr(err, bad[i].err) != NULL, "'%s': '%s' lacks '%s'", bad[i].ref,
			      err, bad[i].err);
		json_object_put(doc);
	}
}
END_TEST

START_TEST(test_parse_rejects)
{
	static const struct {
		const char *text;
		size_t len;
		const char *err;
	} cases[] = {
		{ "NaN", 3, "NaN" },
		{ "[Infinity]", 10, "NaN" },
		{ "{\"a\": -Infinity}", 16, "NaN" },
		{ "{\"a\": 1} x", 10, "" },
		{ "[1] [2]", 7, "" },
		{ "{\"a\": 1}\0x", 10, "unexpected data after" },
		{ "\"\xff\"", 3, "utf-8" },
		{ "\"\xc3\"", 3, "utf-8" },
		{ "{'a': 1}", 8, "single quote" },
		{ "[1.]", 4, "digit expected" },
		{ "\"a\tb\"", 5, "control character" },
		{ "1e400", 5, "out of range" },
		{ "[-1e999]", 8, "out of range" },
		{ "", 0, "" },
		{ "   ", 3, "" },
		{ "{\"a\": 1,}", 9, "" },
		{ "[01]", 4, "" },
		{ "// c\n1", 6, "" },
		{ "{\"a\"}", 5, "" },
	};
	struct json_object *o;
	char err[256];

	for (int i = 0; i < N(cases); i++) {
		o = NULL;
		ck_assert_msg(
		    schema_parse_json(cases[i].text, cases[i].len, &o, err, sizeof(err)) == -EINVAL,
		    "case %d parsed", i);
		ck_assert_ptr_null(o);
		ck_assert_msg(err[0] && strstr(err, cases[i].err), "case %d: '%s' lacks '%s'", i,
			      err, cases[i].err);
	}
}
END_TEST

/* The parser keeps its tokener between documents: a document that failed
 * half-way, or nested too deep, leaves nothing behind for the next one. */
START_TEST(test_parse_after_failures)
{
	static const char *const seq[] = { "{\"a\": [1, 2", "[1]",      "{\"a\": tru",
					   "{\"b\": {}}",   "\"\xff\"", "2" };
	char *deep = nested_text(2 * SCHEMA_MAX_DEPTH), err[256];
	struct json_object *o;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N(seq); i++) {
			o = NULL;
			if (i % 2 == 0) {
				ck_assert_int_eq(
				    schema_parse_json(seq[i], strlen(seq[i]), &o, err, sizeof(err)),
				    -EINVAL);
				ck_assert_ptr_null(o);
				continue;
			}
			ck_assert_msg(
			    schema_parse_json(seq[i], strlen(seq[i]), &o, err, sizeof(err)) == 0,
			    "'%s' after a failure: %s", seq[i], err);
			ck_assert_ptr_nonnull(o);
			json_object_put(o);
		}
		ck_assert_int_eq(schema_parse_json(deep, strlen(deep), &o, err, sizeof(err)),
				 -EINVAL);
		ck_assert_msg(strstr(err, "nested deeper") != NULL, "%s", err);
		ck_assert_int_eq(schema_parse_json("[[1]]", 5, &o, err, sizeof(err)), 0);
		ck_assert_int_eq(json_object_array_length(o), 1);
		json_object_put(o);
	}
	free(deep);
}
END_TEST

START_TEST(test_parse_accepts)
{
	static const char *const ok[] = { "1",
					  "-0",
					  "1.5e3",
					  "\"a\\u0000b\"",
					  "true",
					  " {\"a\": [true, false, null, \"it's\"]} \n",
					  "\"\\ud83d\\ude00\"",
					  "{\"NaN\": \"Infinity\"}",
					  "18446744073709551615" };
	struct json_object *o;
	char err[256];

	for (int i = 0; i < N(ok); i++) {
		o = NULL;
		ck_assert_msg(schema_parse_json(ok[i], strlen(ok[i]), &o, err, sizeof(err)) == 0,
			      "'%s': %s", ok[i], err);
		json_object_put(o);
	}
	o = parse("\"a\\u0000b\"");
	ck_assert_int_eq(json_object_get_string_len(o), 3);
	json_object_put(o);
	o = (struct json_object *)1;
	ck_assert_int_eq(schema_parse_json("null", 4, &o, err, sizeof(err)), 0);
	ck_assert_ptr_null(o);
}
END_TEST

/* schema_parse_json_ex: its own depth limit, and a secret document whose
 * strings are wiped before it is freed; the shared tokener still works
 * after either. */
START_TEST(test_parse_ex)
{
	static const char doc[] = "{\"a\":[\"secret\",{\"b\":\"more\"}],\"n\":1}";
	struct json_object *o = NULL, *arr, *leaf;
	char err[128], *t;
	const char *kept;

	/* Three arrays around a value are within a limit of 3; [[[[1]]]] is not. */
	t = strdup("[[[[1]]]]");
	ck_assert_int_eq(schema_parse_json_ex(t + 1, strlen(t) - 2, 3, 0, &o, err, sizeof(err)), 0);
	json_object_put(o);
	ck_assert_int_eq(schema_parse_json_ex(t, strlen(t), 4, 0, &o, err, sizeof(err)), 0);
	json_object_put(o);
	o = NULL;
	ck_assert_int_eq(
	    schema_parse_json_ex(t, strlen(t), 3, SCHEMA_JSON_SECRET, &o, err, sizeof(err)),
	    -EINVAL);
	ck_assert_ptr_null(o);
	ck_assert_msg(strstr(err, "nested deeper than 3 levels") != NULL, "message: %s", err);
	ck_assert_int_eq(schema_parse_json_ex(t, strlen(t), 0, 0, &o, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(
	    schema_parse_json_ex(t, strlen(t), SCHEMA_MAX_DEPTH + 1, 0, &o, err, sizeof(err)),
	    -EINVAL);
	free(t);

	ck_assert_int_eq(
	    schema_parse_json_ex(doc, strlen(doc), 8, SCHEMA_JSON_SECRET, &o, err, sizeof(err)), 0);
	/* Hold one string past the wipe to see it happen. */
	ck_assert(json_object_object_get_ex(o, "a", &arr));
	leaf = json_object_get(json_object_array_get_idx(arr, 0));
	kept = json_object_get_string(leaf);
	ck_assert_str_eq(kept, "secret");
	schema_json_put_wiped(o);
	ck_assert_int_eq(memcmp(kept, "\0\0\0\0\0\0", 6), 0);
	json_object_put(leaf);
	schema_json_put_wiped(NULL);

	ck_assert_int_eq(schema_parse_json(doc, strlen(doc), &o, err, sizeof(err)), 0);
	json_object_put(o);
}
END_TEST

START_TEST(test_json_error_result)
{
	struct schema_result res;

	schema_result_set_json_error(&res, "invalid JSON at byte 3: unexpected character");
	ck_assert_uint_eq(res.count, 1);
	ck_assert_uint_eq(res.total, 1);
	ck_assert_str_eq(res.v[0].pointer, "");
	ck_assert_str_eq(res.v[0].keyword, "json");
	ck_assert_str_eq(res.v[0].message, "invalid JSON at byte 3: unexpected character");
}
END_TEST

/* ---- formats, content, Pydantic's output ------------------------------ */

START_TEST(test_formats)
{
	/* Beyond the official suite: the edges of each format. */
	static const struct {
		const char *format, *value;
		int valid;
	} cases[] = {
		{ "date-time", "2024-01-15T08:00:00Z", 1 },
		{ "date-time", "2024-01-15T08:00:00.123456+05:30", 1 },
		{ "date-time", "2024-01-15 08:00:00Z", 0 },
		{ "date-time", "2024-01-15T08:00:00", 0 },
		{ "date-time", "yesterday", 0 },
		{ "date-time", "2024-02-29T00:00:00Z", 1 },
		{ "date-time", "2023-02-29T00:00:00Z", 0 },
		{ "date-time", "1900-02-29T00:00:00Z", 0 },
		{ "date-time", "2016-12-31T23:59:60Z", 1 },
		{ "date-time", "2016-12-31T22:59:60Z", 0 },
		{ "date-time", "2016-12-31T15:59:60-08:00", 1 },
		{ "date-time", "2024-01-15T24:00:00Z", 0 },
		{ "date-time", "2024-01-15T08:00:00.Z", 0 },
		{ "date", "2024-13-01", 0 },
		{ "date", "2024-1-01", 0 },
		{ "time", "08:30:06Z", 1 },
		{ "time", "08:30:06", 0 },
		{ "duration", "P1Y2M3DT4H5M6S", 1 },
		{ "duration", "PT0.5S", 1 },
		{ "duration", "P2W", 1 },
		{ "duration", "P1D", 1 },
		{ "duration", "P", 0 },
		{ "duration", "PT", 0 },
		{ "duration", "P1DT", 0 },
		{ "duration", "P1M1Y", 0 },
		{ "duration", "P1W1D", 0 },
		{ "duration", "PT1.5H2M", 0 },
		{ "duration", "1D", 0 },
		{ "uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d16380", 1 },
		{ "uuid", "2EB8AA08-AA98-11EA-B4AA-73B441D16380", 1 },
		{ "uuid", "2eb8aa08aa9811eab4aa73b441d16380", 0 },
		{ "uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638", 0 },
		{ "uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638g", 0 },
		{ "email", "a.b+c@example.com", 1 },
		{ "email", "\\\"a b\\\"@example.com", 1 },
		{ "email", "a..b@example.com", 0 },
		{ "email", ".a@example.com", 0 },
		{ "email", "a@-example.com", 0 },
		{ "email", "a@[127.0.0.1]", 1 },
		{ "email", "a@[IPv6:::1]", 1 },
		{ "email", "a@", 0 },
		{ "email", "caf\\u00e9@example.com", 0 },
		{ "idn-email", "caf\\u00e9@example.com", 1 },
		{ "hostname", "a.b-c.example", 1 },
		{ "hostname", "a..b", 0 },
		{ "hostname", "a-.b", 0 },
		{ "hostname", "a_b", 0 },
		{ "idn-hostname", "b\\u00fccher.example", 1 },
		{ "idn-hostname", "B\\u00fccher.example", 1 },
		{ "idn-hostname", "b\\u00fccher_.example", 0 },
		{ "ipv4", "0.0.0.0", 1 },
		{ "ipv4", "01.2.3.4", 0 },
		{ "ipv4", "1.2.3.4 ", 0 },
		{ "ipv6", "::ffff:192.168.0.1", 1 },
		{ "ipv6", "fe80::1%eth0", 0 },
		{ "ipv6", "1:2:3:4:5:6:7:8", 1 },
		{ "ipv6", "1::2::3", 0 },
		{ "uri", "https://user:pw@example.com:8080/a/b?q=1#f", 1 },
		{ "uri", "https://example.com/a b", 0 },
		{ "uri", "https://example.com/%zz", 0 },
		{ "uri", "https://[v1.fe]/", 1 },
		{ "uri", "https://example.com:80a/", 0 },
		{ "uri", "https://ex\\u00e4mple.com/", 0 },
		{ "iri", "https://ex\\u00e4mple.com/", 1 },
		{ "uri-reference", "../a?b", 1 },
		{ "uri-reference", "a:b:c", 1 },
		{ "uri-reference", "1a:b", 0 },
		{ "uri-template", "/users/{id}{?fields*,limit:10}", 1 },
		{ "uri-template", "/users/{}", 0 },
		{ "uri-template", "/users/{a{b}}", 0 },
		{ "uri-template", "/users/{id:0}", 0 },
		{ "uri-template", "/users/}", 0 },
		{ "json-pointer", "/a~1b/0", 1 },
		{ "json-pointer", "/a~", 0 },
		{ "relative-json-pointer", "0#", 1 },
		{ "relative-json-pointer", "01/a", 0 },
		{ "relative-json-pointer", "1#/a", 0 },
		{ "regex", "^[a-z]+\\\\d$", 1 },
		{ "regex", "^\\\\S(|(.|\\\\n)*\\\\S)\\\\Z", 0 },
		{ "regex", "(?i)a", 0 },
		{ "regex", "a{2,1}", 0 },
		{ "unknown-format", "anything", 1 },
	};
	struct schema_result res;
	struct schema *s;
	char text[256];

	for (int i = 0; i < N(cases); i++) {
		snprintf(text, sizeof(text), "{\"format\": \"%s\"}", cases[i].format);
		s = compile(text);
		snprintf(text, sizeof(text), "\"%s\"", cases[i].value);
		ck_assert_msg(check(s, text, &res) == !cases[i].valid, "%s %s: expected %s",
			      cases[i].format, text, cases[i].valid ? "valid" : "invalid");
		if (!cases[i].valid)
			assert_violation(&res, 0, "", "format", "'");
		schema_free(s);
	}
}
END_TEST

/* A query value is percent-decoded before its format is checked, so it may
 * not be UTF-8: such bytes are not characters of an IRI or an IDN host. */
START_TEST(test_formats_refuse_bytes_that_are_not_utf8)
{
	static const struct {
		const char *format, *value;
	} cases[] = {
		{ "iri", "https://example.com/\xc2" "a" },
		{ "iri", "https://example.com/\xe4" },
		{ "iri-reference", "a\xc2" },
		{ "iri", "https://example.com/\xed\xa0\x80" },
	};

	for (int i = 0; i < N(cases); i++)
		ck_assert_msg(schema_format_check(schema_format_lookup(cases[i].format),
						  cases[i].value, strlen(cases[i].value)) == 0,
			      "%s accepted %s", cases[i].format, cases[i].value);
	{
		const char *ok = "https://ex\xc3\xa4mple.com/";

		ck_assert_int_eq(schema_format_check(schema_format_lookup("iri"), ok, strlen(ok)),
				 1);
	}
}
END_TEST

START_TEST(test_format_message_and_annotate)
{
	static const char schema[] =
	    "{\"properties\": {\"created\": {\"type\": \"string\", \"format\": \"date-time\"},"
	    " \"n\": {\"format\": \"date-time\"}}}";
	struct json_object *doc = parse(schema), *o = parse("{\"created\": \"yesterday\"}");
	struct schema_result res;
	struct schema *s;
	char err[256];

	s = compile(schema);
	ck_assert_int_eq(check(s, "{\"created\": \"yesterday\", \"n\": 5}", &res), 1);
	ck_assert_uint_eq(res.total, 1);
	assert_violation(&res, 0, "/created", "format", "'yesterday' is not a valid date-time");
	schema_free(s);

	/* annotate: the same schema lets it through. */
	s = schema_compile_flags(doc, NULL, 0, err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(schema_validate(s, o, &res), 0);
	schema_free(s);
	json_object_put(o);
	json_object_put(doc);
}
END_TEST

START_TEST(test_content)
{
	static const struct {
		const char *schema, *value;
		int valid;
		const char *keyword;
	} cases[] = {
		{ "{\"contentMediaType\": \"application/json\"}", "\"[1, 2]\"", 1, NULL },
		{ "{\"contentMediaType\": \"application/json; charset=utf-8\"}", "\"{:}\"", 0,
		  "contentMediaType" },
		{ "{\"contentMediaType\": \"application/json\"}", "\"NaN\"", 0,
		  "contentMediaType" },
		{ "{\"contentMediaType\": \"text/plain\"}", "\"{:}\"", 1, NULL },
		{ "{\"contentEncoding\": \"base64\"}", "\"aGVsbG8=\"", 1, NULL },
		{ "{\"contentEncoding\": \"base64\"}", "\"aGVsbG8\"", 0, "contentEncoding" },
		{ "{\"contentEncoding\": \"base64\"}", "\"aGVsbG9=\"", 0, "contentEncoding" },
		{ "{\"contentEncoding\": \"base64\"}", "\"aGVs bG8=\"", 0, "contentEncoding" },
		{ "{\"contentEncoding\": \"base64\"}", "\"\"", 1, NULL },
		{ "{\"contentEncoding\": \"7bit\"}", "\"%%%\"", 1, NULL },
		{ "{\"contentEncoding\": \"base64\", \"contentMediaType\": \"application/json\"}",
		  "\"eyJhIjogMX0=\"", 1, NULL },
		{ "{\"contentEncoding\": \"base64\", \"contentMediaType\": \"application/json\"}",
		  "\"eyJhIjogfQ==\"", 0, "contentMediaType" },
		{ "{\"contentEncoding\": \"base64\", \"contentMediaType\": \"application/json\"}",
		  "7", 1, NULL },
	};
	struct schema_result res;
	struct schema *s;

	for (int i = 0; i < N(cases); i++) {
		s = compile(cases[i].schema);
		ck_assert_msg(check(s, cases[i].value, &res) == !cases[i].valid, "case %d", i);
		if (cases[i].keyword)
			assert_violation(&res, 0, "", cases[i].keyword, "");
		schema_free(s);
	}
}
END_TEST

START_TEST(test_prefix_items)
{
	static const char tuple[] = "{\"type\": \"array\", \"prefixItems\": [{\"type\": "
				    "\"number\"}, {\"type\": \"string\"}],"
				    " \"items\": {\"type\": \"boolean\"}}";
	static const char closed[] =
	    "{\"prefixItems\": [{\"type\": \"number\"}], \"items\": false}";
	struct schema_result res;
	struct schema *s = compile(tuple);

	ck_assert_int_eq(check(s, "[1, \"a\", true, false]", &res), 0);
	ck_assert_int_eq(check(s, "[1]", &res), 0);
	ck_assert_int_eq(check(s, "[1, 2]", &res), 1);
	assert_violation(&res, 0, "/1", "type", "");
	ck_assert_int_eq(check(s, "[1, \"a\", 3]", &res), 1);
	assert_violation(&res, 0, "/2", "type", "");
	schema_free(s);

	s = compile(closed);
	ck_assert_int_eq(check(s, "[1]", &res), 0);
	ck_assert_int_eq(check(s, "[1, 2]", &res), 1);
	assert_violation(&res, 0, "", "items", "expected at most 1 items");
	schema_free(s);
}
END_TEST

START_TEST(test_load_errors_2020)
{
	static const struct {
		const char *schema, *err;
	} cases[] = {
		{ "{\"prefixItems\": [{}], \"items\": [{}]}",
		  "#/items: 'items' beside 'prefixItems' must be one schema" },
		{ "{\"prefixItems\": [{}], \"additionalItems\": false}",
		  "#/additionalItems: 'additionalItems' cannot be used beside 'prefixItems'" },
		{ "{\"prefixItems\": []}",
		  "#/prefixItems: 'prefixItems' must be a non-empty array" },
		{ "{\"$defs\": {\"a\": 5}}", "#/$defs/a: expected a schema" },
		{ "{\"properties\": {\"a\": {\"pattern\": \"^\\\\S+\\\\Z\"}}}",
		  "#/properties/a/pattern: regular expression '^\\S+\\Z' uses an escape" },
	};
	struct json_object *doc;
	struct schema *s;
	char err[512];

	for (int i = 0; i < N(cases); i++) {
		doc = parse(cases[i].schema);
		s = schema_compile(doc, NULL, err, sizeof(err));
		ck_assert_msg(s == NULL, "case %d compiled: %s", i, cases[i].schema);
		ck_assert_msg(strstr(err, cases[i].err) != NULL, "case %d: '%s' lacks '%s'", i, err,
			      cases[i].err);
		json_object_put(doc);
	}
}
END_TEST

/* model_json_schema() of three Pydantic v2 models, as Pydantic writes it:
 *
 *   class Wind(BaseModel):
 *       speed_ms: float
 *       direction_deg: int = Field(ge=0, lt=360)
 *   class Weather(BaseModel):
 *       city: str = Field(min_length=2, max_length=100)
 *       temperature: float
 *       condition: Literal["sunny", "cloudy", "rain", "snow"]
 *       observed_at: datetime
 *       wind: Wind | None = None
 *       source_latency_ms: int = Field(ge=0) */
static const char pydantic_weather[] =
    "{\"$defs\": {\"Wind\": {\"properties\": {"
    "\"speed_ms\": {\"title\": \"Speed Ms\", \"type\": \"number\"},"
    "\"direction_deg\": {\"exclusiveMaximum\": 360, \"minimum\": 0, \"title\": \"Direction Deg\","
    " \"type\": \"integer\"}},"
    " \"required\": [\"speed_ms\", \"direction_deg\"], \"title\": \"Wind\", \"type\": \"object\"}},"
    " \"properties\": {"
    "\"city\": {\"maxLength\": 100, \"minLength\": 2, \"title\": \"City\", \"type\": \"string\"},"
    "\"temperature\": {\"title\": \"Temperature\", \"type\": \"number\"},"
    "\"condition\": {\"enum\": [\"sunny\", \"cloudy\", \"rain\", \"snow\"],"
    " \"title\": \"Condition\", \"type\": \"string\"},"
    "\"observed_at\": {\"format\": \"date-time\", \"title\": \"Observed At\", \"type\": "
    "\"string\"},"
    "\"wind\": {\"anyOf\": [{\"$ref\": \"#/$defs/Wind\"}, {\"type\": \"null\"}], \"default\": "
    "null},"
    "\"source_latency_ms\": {\"minimum\": 0, \"title\": \"Source Latency Ms\", \"type\": "
    "\"integer\"}},"
    " \"required\": [\"city\", \"temperature\", \"condition\", \"observed_at\","
    " \"source_latency_ms\"], \"title\": \"Weather\", \"type\": \"object\"}";

/*   class Status(str, Enum): pending = "pending"; paid = "paid"; shipped = "shipped"
 *   class OrderLine(BaseModel):
 *       sku: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")
 *       quantity: int = Field(gt=0)
 *       unit_price: Decimal
 *   class Order(BaseModel):
 *       id: UUID
 *       kind: Literal["order"] = "order"
 *       status: Status
 *       customer_email: EmailStr
 *       lines: list[OrderLine] = Field(min_length=1)
 *       coupon: str | None = None
 *       note: Optional[str] = Field(default=None, max_length=500)
 *       shipped_at: datetime | None = None
 *       tracking_url: HttpUrl | None = None
 *       dimensions_cm: tuple[float, float, float] | None = None */
static const char pydantic_order[] =
    "{\"$defs\": {"
    "\"OrderLine\": {\"properties\": {"
    "\"sku\": {\"pattern\": \"^[A-Z]{3}-\\\\d{4}$\", \"title\": \"Sku\", \"type\": \"string\"},"
    "\"quantity\": {\"exclusiveMinimum\": 0, \"title\": \"Quantity\", \"type\": \"integer\"},"
    "\"unit_price\": {\"anyOf\": [{\"type\": \"number\"}, {\"type\": \"string\"}],"
    " \"title\": \"Unit Price\"}},"
    " \"required\": [\"sku\", \"quantity\", \"unit_price\"], \"title\": \"OrderLine\","
    " \"type\": \"object\"},"
    "\"Status\": {\"enum\": [\"pending\", \"paid\", \"shipped\"], \"title\": \"Status\","
    " \"type\": \"string\"}},"
    " \"properties\": {"
    "\"id\": {\"format\": \"uuid\", \"title\": \"Id\", \"type\": \"string\"},"
    "\"kind\": {\"const\": \"order\", \"default\": \"order\", \"title\": \"Kind\","
    " \"type\": \"string\"},"
    "\"status\": {\"$ref\": \"#/$defs/Status\"},"
    "\"customer_email\": {\"format\": \"email\", \"title\": \"Customer Email\","
    " \"type\": \"string\"},"
    "\"lines\": {\"items\": {\"$ref\": \"#/$defs/OrderLine\"}, \"minItems\": 1,"
    " \"title\": \"Lines\", \"type\": \"array\"},"
    "\"coupon\": {\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"null\"}], \"default\": null,"
    " \"title\": \"Coupon\"},"
    "\"note\": {\"anyOf\": [{\"maxLength\": 500, \"type\": \"string\"}, {\"type\": \"null\"}],"
    " \"default\": null, \"description\": \"shown on the invoice\", \"title\": \"Note\"},"
    "\"shipped_at\": {\"anyOf\": [{\"format\": \"date-time\", \"type\": \"string\"},"
    " {\"type\": \"null\"}], \"default\": null, \"title\": \"Shipped At\"},"
    "\"tracking_url\": {\"anyOf\": [{\"format\": \"uri\", \"maxLength\": 2083, \"minLength\": 1,"
    " \"type\": \"string\"}, {\"type\": \"null\"}], \"default\": null, \"title\": \"Tracking "
    "Url\"},"
    "\"dimensions_cm\": {\"anyOf\": [{\"maxItems\": 3, \"minItems\": 3, \"prefixItems\":"
    " [{\"type\": \"number\"}, {\"type\": \"number\"}, {\"type\": \"number\"}],"
    " \"type\": \"array\"}, {\"type\": \"null\"}], \"default\": null, \"title\": \"Dimensions "
    "Cm\"}},"
    " \"required\": [\"id\", \"status\", \"customer_email\", \"lines\"], \"title\": \"Order\","
    " \"type\": \"object\"}";

/*   class Item(BaseModel):
 *       id: int
 *       name: str
 *       tags: list[str] = []
 *       created: date
 *   class Page(BaseModel, Generic[T]):
 *       items: list[T]
 *       total: int = Field(ge=0)
 *       page: int = Field(ge=1)
 *       size: int = Field(ge=1, le=100)
 *       next: AnyUrl | None = None
 *   Page[Item].model_json_schema() */
static const char pydantic_page[] =
    "{\"$defs\": {\"Item\": {\"properties\": {"
    "\"id\": {\"title\": \"Id\", \"type\": \"integer\"},"
    "\"name\": {\"title\": \"Name\", \"type\": \"string\"},"
    "\"tags\": {\"default\": [], \"items\": {\"type\": \"string\"}, \"title\": \"Tags\","
    " \"type\": \"array\"},"
    "\"created\": {\"format\": \"date\", \"title\": \"Created\", \"type\": \"string\"}},"
    " \"required\": [\"id\", \"name\", \"created\"], \"title\": \"Item\", \"type\": \"object\"}},"
    " \"properties\": {"
    "\"items\": {\"items\": {\"$ref\": \"#/$defs/Item\"}, \"title\": \"Items\", \"type\": "
    "\"array\"},"
    "\"total\": {\"minimum\": 0, \"title\": \"Total\", \"type\": \"integer\"},"
    "\"page\": {\"minimum\": 1, \"title\": \"Page\", \"type\": \"integer\"},"
    "\"size\": {\"maximum\": 100, \"minimum\": 1, \"title\": \"Size\", \"type\": \"integer\"},"
    "\"next\": {\"anyOf\": [{\"format\": \"uri\", \"minLength\": 1, \"type\": \"string\"},"
    " {\"type\": \"null\"}], \"default\": null, \"title\": \"Next\"}},"
    " \"required\": [\"items\", \"total\", \"page\", \"size\"], \"title\": \"Page[Item]\","
    " \"type\": \"object\"}";

struct pydantic_case {
	const char *instance;
	const char *pointer, *keyword; /* NULL: valid */
};

static void run_pydantic(const char *schema, const struct pydantic_case *cases, int n)
{
	struct schema_result res;
	struct schema *s = compile(schema);

	for (int i = 0; i < n; i++) {
		int r = check(s, cases[i].instance, &res);

		ck_assert_msg(r == (cases[i].keyword != NULL), "case %d: %s: got %s (%s %s)", i,
			      cases[i].instance, r ? "invalid" : "valid",
			      res.count ? res.v[0].keyword : "", res.count ? res.v[0].message : "");
		if (cases[i].keyword)
			assert_violation(&res, 0, cases[i].pointer, cases[i].keyword, "");
	}
	schema_free(s);
}

START_TEST(test_pydantic_weather)
{
	static const struct pydantic_case cases[] = {
		{ "{\"city\": \"Oslo\", \"temperature\": -3.5, \"condition\": \"snow\","
		  " \"observed_at\": \"2024-01-15T08:00:00Z\", \"source_latency_ms\": 42}",
		  NULL, NULL },
		{ "{\"city\": \"Oslo\", \"temperature\": -3, \"condition\": \"snow\","
		  " \"observed_at\": \"2024-01-15T08:00:00.5+01:00\", \"source_latency_ms\": 0,"
		  " \"wind\": {\"speed_ms\": 5.2, \"direction_deg\": 359}}",
		  NULL, NULL },
		{ "{\"city\": \"Oslo\", \"temperature\": 1, \"condition\": \"snow\","
		  " \"observed_at\": \"2024-01-15T08:00:00Z\", \"source_latency_ms\": 1,"
		  " \"wind\": null}",
		  NULL, NULL },
		/* the drift the README tells of: a date-time that is not one */
		{ "{\"city\": \"Oslo\", \"temperature\": 1, \"condition\": \"snow\","
		  " \"observed_at\": \"yesterday\", \"source_latency_ms\": 1}",
		  "/observed_at", "format" },
		{ "{\"city\": \"Oslo\", \"temperature\": 1, \"condition\": \"snow\","
		  " \"observed_at\": 1705305600, \"source_latency_ms\": 1}",
		  "/observed_at", "type" },
		{ "{\"city\": \"Oslo\", \"temperature\": 1, \"condition\": \"hail\","
		  " \"observed_at\": \"2024-01-15T08:00:00Z\", \"source_latency_ms\": 1}",
		  "/condition", "enum" },
		{ "{\"city\": \"Oslo\", \"temperature\": 1, \"condition\": \"snow\","
		  " \"observed_at\": \"2024-01-15T08:00:00Z\", \"source_latency_ms\": 1,"
		  " \"wind\": {\"speed_ms\": 5.2, \"direction_deg\": 360}}",
		  "/wind", "anyOf" },
		{ "{\"city\": \"Oslo\", \"condition\": \"snow\","
		  " \"observed_at\": \"2024-01-15T08:00:00Z\", \"source_latency_ms\": 1}",
		  "", "required" },
		{ "{\"city\": \"O\", \"temperature\": 1, \"condition\": \"snow\","
		  " \"observed_at\": \"2024-01-15T08:00:00Z\", \"source_latency_ms\": 1}",
		  "/city", "minLength" },
	};

	run_pydantic(pydantic_weather, cases, N(cases));
}
END_TEST

START_TEST(test_pydantic_order)
{
	static const struct pydantic_case cases[] = {
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 2, \"unit_price\": "
		  "\"9.90\"}]}",
		  NULL, NULL },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"kind\": \"order\","
		  " \"status\": \"shipped\", \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 1, \"unit_price\": 9.9}],"
		  " \"coupon\": null, \"note\": \"leave at the door\","
		  " \"shipped_at\": \"2024-03-01T10:00:00Z\","
		  " \"tracking_url\": \"https://track.example.com/p?id=42\","
		  " \"dimensions_cm\": [30, 20.5, 10]}",
		  NULL, NULL },
		{ "{\"id\": \"42\", \"status\": \"paid\", \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 2, \"unit_price\": 1}]}",
		  "/id", "format" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"kind\": \"refund\","
		  " \"status\": \"paid\", \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 2, \"unit_price\": 1}]}",
		  "/kind", "const" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"lost\","
		  " \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 2, \"unit_price\": 1}]}",
		  "/status", "enum" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana at example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 2, \"unit_price\": 1}]}",
		  "/customer_email", "format" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana@example.com\", \"lines\": []}",
		  "/lines", "minItems" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 0, \"unit_price\": 1}]}",
		  "/lines/0/quantity", "exclusiveMinimum" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"abc-1234\", \"quantity\": 1, \"unit_price\": 1}]}",
		  "/lines/0/sku", "pattern" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 1, \"unit_price\": 1}],"
		  " \"shipped_at\": \"2024-03-01\"}",
		  "/shipped_at", "anyOf" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 1, \"unit_price\": 1}],"
		  " \"tracking_url\": \"track.example.com/p\"}",
		  "/tracking_url", "anyOf" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 1, \"unit_price\": 1}],"
		  " \"dimensions_cm\": [30, 20]}",
		  "/dimensions_cm", "anyOf" },
		{ "{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\", \"status\": \"paid\","
		  " \"customer_email\": \"ana@example.com\","
		  " \"lines\": [{\"sku\": \"ABC-1234\", \"quantity\": 1, \"unit_price\": 1}],"
		  " \"dimensions_cm\": [30, \"20\", 10]}",
		  "/dimensions_cm", "anyOf" },
	};

	run_pydantic(pydantic_order, cases, N(cases));
}
END_TEST

START_TEST(test_pydantic_page)
{
	static const struct pydantic_case cases[] = {
		{ "{\"items\": [], \"total\": 0, \"page\": 1, \"size\": 20}", NULL, NULL },
		{ "{\"items\": [{\"id\": 1, \"name\": \"a\", \"created\": \"2024-02-29\"},"
		  " {\"id\": 2, \"name\": \"b\", \"tags\": [\"x\"], \"created\": \"2024-03-01\"}],"
		  " \"total\": 2, \"page\": 1, \"size\": 20,"
		  " \"next\": \"https://api.example.com/items?page=2\"}",
		  NULL, NULL },
		{ "{\"items\": [{\"id\": 1, \"name\": \"a\", \"created\": \"2023-02-29\"}],"
		  " \"total\": 1, \"page\": 1, \"size\": 20}",
		  "/items/0/created", "format" },
		{ "{\"items\": [{\"id\": 1, \"name\": \"a\", \"created\": "
		  "\"2024-01-01T00:00:00Z\"}],"
		  " \"total\": 1, \"page\": 1, \"size\": 20}",
		  "/items/0/created", "format" },
		{ "{\"items\": [{\"id\": \"1\", \"name\": \"a\", \"created\": \"2024-01-01\"}],"
		  " \"total\": 1, \"page\": 1, \"size\": 20}",
		  "/items/0/id", "type" },
		{ "{\"items\": [], \"total\": 0, \"page\": 0, \"size\": 20}", "/page", "minimum" },
		{ "{\"items\": [], \"total\": 0, \"page\": 1, \"size\": 101}", "/size", "maximum" },
		{ "{\"items\": [], \"total\": 0, \"page\": 1, \"size\": 20, \"next\": \"\"}",
		  "/next", "anyOf" },
		{ "{\"items\": {}, \"total\": 0, \"page\": 1, \"size\": 20}", "/items", "type" },
	};

	run_pydantic(pydantic_page, cases, N(cases));
}
END_TEST

Suite *schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("validate");

	tcase_add_test(tc, test_weather_response);
	tcase_add_test(tc, test_weather_query);
	tcase_add_test(tc, test_messages);
	tcase_add_test(tc, test_equality);
	tcase_add_test(tc, test_pointer_escaping);
	tcase_add_test(tc, test_violations_capped);
	tcase_add_test(tc, test_schema_shapes);
	tcase_add_test(tc, test_meta_schema);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_hostile_regex);
	tcase_add_test(tc, test_unique_big);
	tcase_add_test(tc, test_exponential_anyof);
	suite_add_tcase(s, tc);

	tc = tcase_create("compile");
	tcase_add_test(tc, test_compile_errors);
	tcase_add_test(tc, test_ecma_regex);
	suite_add_tcase(s, tc);

	tc = tcase_create("formats");
	tcase_add_test(tc, test_formats);
	tcase_add_test(tc, test_formats_refuse_bytes_that_are_not_utf8);
	tcase_add_test(tc, test_format_message_and_annotate);
	tcase_add_test(tc, test_content);
	tcase_add_test(tc, test_prefix_items);
	tcase_add_test(tc, test_load_errors_2020);
	tcase_add_test(tc, test_pydantic_weather);
	tcase_add_test(tc, test_pydantic_order);
	tcase_add_test(tc, test_pydantic_page);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, files_setup, files_teardown);
	tcase_add_test(tc, test_file_refs);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_parse_accepts);
	tcase_add_test(tc, test_parse_after_failures);
	tcase_add_test(tc, test_json_error_result);
	tcase_add_test(tc, test_parse_ex);
	suite_add_tcase(s, tc);
	return s;
}

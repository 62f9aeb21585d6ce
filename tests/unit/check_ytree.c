/* Tests of daemon/config/ytree.c: the positioned YAML tree the configuration
 * and YAML schemas are read with. Nesting, the line and column of each
 * node, the limits (depth, entries, nodes, file size), what it refuses
 * (anchors, aliases, non-scalar and duplicate keys, a second document),
 * syntax errors with their place, scalar typing and the json-c conversion. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <json-c/json.h>

#include "strbuf.h"
#include "suites.h"
#include "ytree.h"

static char err[256];
static unsigned eline, ecol;

static struct ynode *load(const char *text)
{
	struct ynode *root = NULL;
	int r = ytree_load_string(text, strlen(text), &root, err, sizeof(err), &eline, &ecol);

	ck_assert_msg(r == 0, "'%s': %s (%u:%u)", text, err, eline, ecol);
	ck_assert_ptr_nonnull(root);
	return root;
}

/* Loads text that must be refused: returns the error, its place in
 * eline/ecol and the message in err. */
static int refuse(const char *text, size_t len)
{
	struct ynode *root = NULL;
	int r;

	eline = ecol = 999;
	r = ytree_load_string(text, len, &root, err, sizeof(err), &eline, &ecol);
	ck_assert_msg(r < 0, "accepted: '%.60s'", text);
	ck_assert_ptr_null(root);
	ck_assert_msg(err[0] != '\0', "no message");
	return r;
}

static void assert_at(const struct ynode *n, unsigned line, unsigned col)
{
	ck_assert_ptr_nonnull(n);
	ck_assert_msg(n->line == line && n->col == col, "at %u:%u, want %u:%u", n->line, n->col,
		      line, col);
}

START_TEST(test_nesting_and_positions)
{
	struct ynode *root = load("profiles:\n"
				  "  weather:\n"
				  "    upstream: http://a\n"
				  "    retry: {attempts: 3, statuses: [502, 503]}\n"
				  "  \"quoted\": 'x'\n"
				  "list:\n"
				  "  - a\n"
				  "  - [b, c]\n");
	struct ynode *profiles, *weather, *retry, *statuses, *list;

	ck_assert_int_eq(root->kind, YNODE_MAP);
	ck_assert_uint_eq(root->n, 2);
	profiles = ynode_get(root, "profiles");
	ck_assert_int_eq(profiles->kind, YNODE_MAP);
	assert_at(profiles, 2, 3);
	weather = ynode_get(profiles, "weather");
	assert_at(weather, 3, 5);
	assert_at(ynode_get(weather, "upstream"), 3, 15);
	ck_assert_str_eq(ynode_get(weather, "upstream")->value, "http://a");
	retry = ynode_get(weather, "retry");
	ck_assert_int_eq(retry->kind, YNODE_MAP);
	assert_at(retry, 4, 12);
	assert_at(ynode_get(retry, "attempts"), 4, 23);
	statuses = ynode_get(retry, "statuses");
	ck_assert_int_eq(statuses->kind, YNODE_SEQ);
	ck_assert_uint_eq(statuses->n, 2);
	assert_at(statuses->items[1], 4, 42);
	ck_assert_str_eq(statuses->items[1]->value, "503");
	/* keys keep their place too, and quoting is remembered */
	assert_at(profiles->keys[1], 5, 3);
	ck_assert_int_eq(profiles->keys[1]->quoted, 1);
	ck_assert_int_eq(ynode_get(profiles, "quoted")->quoted, 1);
	ck_assert_int_eq(weather->keys[0]->quoted, 0);
	list = ynode_get(root, "list");
	ck_assert_int_eq(list->kind, YNODE_SEQ);
	ck_assert_uint_eq(list->n, 2);
	ck_assert_int_eq(list->items[1]->kind, YNODE_SEQ);
	assert_at(list->items[1]->items[1], 8, 9);
	ck_assert_ptr_null(ynode_get(root, "absent"));
	ck_assert_ptr_null(ynode_get(list, "a")); /* not a map */
	ck_assert_ptr_null(ynode_get(NULL, "a"));
	ynode_free(root);
	ynode_free(NULL);
}
END_TEST

/* A scalar's bytes are kept, NUL included, with its length. */
START_TEST(test_scalar_bytes)
{
	struct ynode *root = load("a: \"x\\0y\"\nb: |\n  one\n  two\n");
	struct ynode *a = ynode_get(root, "a"), *b = ynode_get(root, "b");

	ck_assert_uint_eq(a->len, 3);
	ck_assert_int_eq(memcmp(a->value, "x\0y", 4), 0);
	ck_assert_str_eq(b->value, "one\ntwo\n");
	ck_assert_int_eq(b->quoted, 1); /* a block scalar is a string */
	ynode_free(root);
}
END_TEST

START_TEST(test_empty_documents)
{
	static const char *const empty[] = { "",      "\n\n", "# only a comment\n",
					     "---\n", "~\n",  "null" };

	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		struct ynode *root = load(empty[i]);

		ck_assert_int_eq(root->kind, YNODE_MAP);
		ck_assert_uint_eq(root->n, 0);
		ynode_free(root);
	}
}
END_TEST

/* Refused, each at the place the user must look. */
static const struct {
	const char *what, *text;
	unsigned line, col;
	const char *says;
} refused_cases[] = {
	{ "anchor on a scalar", "a: 1\nb: &x 2\n", 2, 4, "anchor" },
	{ "anchor on a map", "a: &m {x: 1}\n", 1, 4, "anchor" },
	{ "anchor on a sequence", "a:\n  - 1\nb: &s [1]\n", 3, 4, "anchor" },
	{ "alias", "a: 1\nb: *x\n", 2, 4, "alias" },
	{ "merge of an alias", "a: {x: 1}\nb:\n  <<: *a\n", 3, 7, "alias" },
	{ "duplicate key", "a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a'" },
	{ "duplicate nested key", "p:\n  x: 1\n  y: 2\n  x: 3\n", 4, 3, "duplicate key 'x'" },
	{ "duplicate key, one quoted", "a: 1\n'a': 2\n", 2, 1, "duplicate" },
	{ "sequence as a key", "? [a]\n: 1\n", 1, 3, "keys must be scalars" },
	{ "map as a key", "{x: 1, {y: 2}: 3}\n", 1, 8, "keys must be scalars" },
	{ "second document", "a: 1\n---\nb: 2\n", 2, 1, "one YAML document" },
	{ "unclosed flow", "a: [1, 2\nb: 3\n", 0, 0, "syntax" },
	{ "bad indentation", "a:\n  b: 1\n c: 2\n", 3, 0, "syntax" },
	{ "tab indentation", "a:\n\tb: 1\n", 2, 0, "syntax" },
	{ "unclosed quote", "a: \"x\n", 0, 0, "syntax" },
};

START_TEST(test_refused)
{
	const char *text = refused_cases[_i].text;
	int r = refuse(text, strlen(text));

	ck_assert_int_eq(r, -EINVAL);
	ck_assert_msg(strstr(err, refused_cases[_i].says) != NULL, "%s: '%s'",
		      refused_cases[_i].what, err);
	ck_assert_uint_ge(eline, 1);
	ck_assert_uint_ge(ecol, 1);
	if (refused_cases[_i].line)
		ck_assert_msg(eline == refused_cases[_i].line, "%s: line %u, want %u",
			      refused_cases[_i].what, eline, refused_cases[_i].line);
	if (refused_cases[_i].col)
		ck_assert_msg(ecol == refused_cases[_i].col, "%s: column %u, want %u",
			      refused_cases[_i].what, ecol, refused_cases[_i].col);
}
END_TEST

/* n nested flow sequences around a scalar. */
static char *nested(int n)
{
	char *s = malloc((size_t)n * 2 + 2);
	int k = 0;

	for (int i = 0; i < n; i++)
		s[k++] = '[';
	s[k++] = '1';
	for (int i = 0; i < n; i++)
		s[k++] = ']';
	s[k] = '\0';
	return s;
}

START_TEST(test_depth_limit)
{
	char *ok = nested(YTREE_MAX_DEPTH), *deep = nested(YTREE_MAX_DEPTH + 1);
	char *deeper = nested(100000); /* libyaml alone would recurse on it */
	struct ynode *root = load(ok), *n = root;
	int depth = 0;

	while (n->kind == YNODE_SEQ) {
		ck_assert_uint_eq(n->n, 1);
		n = n->items[0];
		depth++;
	}
	ck_assert_int_eq(depth, YTREE_MAX_DEPTH);
	ck_assert_str_eq(n->value, "1");
	ynode_free(root);
	refuse(deep, strlen(deep));
	ck_assert_msg(strstr(err, "nesting") != NULL, "%s", err);
	ck_assert_uint_eq(eline, 1);
	ck_assert_uint_eq(ecol, YTREE_MAX_DEPTH + 1);
	refuse(deeper, strlen(deeper));
	free(ok);
	free(deep);
	free(deeper);
}
END_TEST

/* A flow sequence of n zeros. */
static char *zeros(size_t n)
{
	struct strbuf b;

	strbuf_init(&b, SIZE_MAX);
	strbuf_adds(&b, "[");
	for (size_t i = 0; i < n; i++)
		strbuf_adds(&b, i ? ",0" : "0");
	strbuf_adds(&b, "]");
	return strbuf_steal(&b, NULL);
}

START_TEST(test_entries_limit)
{
	char *ok = zeros(YTREE_MAX_ENTRIES), *over = zeros(YTREE_MAX_ENTRIES + 1);
	struct ynode *root = load(ok);
	struct strbuf b;

	ck_assert_uint_eq(root->n, YTREE_MAX_ENTRIES);
	ynode_free(root);
	refuse(over, strlen(over));
	ck_assert_msg(strstr(err, "entries") != NULL, "%s", err);
	ck_assert_uint_eq(eline, 1);
	ck_assert_uint_eq(ecol, 2 + 2 * YTREE_MAX_ENTRIES); /* the item past the limit */
	free(ok);
	free(over);

	/* The same for the keys of one mapping. */
	strbuf_init(&b, SIZE_MAX);
	for (unsigned i = 0; i <= YTREE_MAX_ENTRIES; i++)
		strbuf_addf(&b, "k%u: 0\n", i);
	refuse(b.data, b.len);
	ck_assert_msg(strstr(err, "entries") != NULL, "%s", err);
	ck_assert_uint_eq(eline, YTREE_MAX_ENTRIES + 1);
	strbuf_release(&b);
}
END_TEST

/* Many small collections, none over the entries limit: the node count is
 * bounded for the whole document. Each group is a sequence of 1000
 * sequences of 9 zeros: 10,001 nodes. */
START_TEST(test_nodes_limit)
{
	struct strbuf b;
	size_t nodes = 1;

	strbuf_init(&b, SIZE_MAX);
	strbuf_adds(&b, "[");
	while (nodes <= YTREE_MAX_NODES) {
		strbuf_adds(&b, nodes > 1 ? ",[" : "[");
		for (int i = 0; i < 1000; i++)
			strbuf_adds(&b, i ? ",[0,0,0,0,0,0,0,0,0]" : "[0,0,0,0,0,0,0,0,0]");
		strbuf_adds(&b, "]");
		nodes += 10001;
	}
	strbuf_adds(&b, "]");
	refuse(b.data, b.len);
	ck_assert_msg(strstr(err, "nodes") != NULL, "%s", err);
	strbuf_release(&b);
}
END_TEST

START_TEST(test_scalars)
{
	struct ynode *root = load("t: true\nT: TRUE\nf: False\nqs: 'true'\nyes: yes\n"
				  "i: -42\np: +7\nbig: 9223372036854775808\nhex: 0x10\n"
				  "fl: 2.5e3\nd: .5\ninf: .inf\nnan: .nan\nhuge: 1e400\n"
				  "n1: ~\nn2: null\nn3:\nqn: 'null'\nus: 1_000\n");
	int b;
	long long i;
	double d;

	ck_assert_int_eq(ynode_bool(ynode_get(root, "t"), &b), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(ynode_bool(ynode_get(root, "T"), &b), 0);
	ck_assert_int_eq(ynode_bool(ynode_get(root, "f"), &b), 0);
	ck_assert_int_eq(b, 0);
	ck_assert_int_eq(ynode_bool(ynode_get(root, "qs"), &b), -EINVAL);  /* a string */
	ck_assert_int_eq(ynode_bool(ynode_get(root, "yes"), &b), -EINVAL); /* YAML 1.1 only */
	ck_assert_int_eq(ynode_int(ynode_get(root, "i"), &i), 0);
	ck_assert_int_eq(i, -42);
	ck_assert_int_eq(ynode_int(ynode_get(root, "p"), &i), 0);
	ck_assert_int_eq(i, 7);
	ck_assert_int_eq(ynode_int(ynode_get(root, "big"), &i), -ERANGE);
	ck_assert_int_eq(ynode_int(ynode_get(root, "hex"), &i), -EINVAL);
	ck_assert_int_eq(ynode_int(ynode_get(root, "us"), &i), -EINVAL);
	ck_assert_int_eq(ynode_int(ynode_get(root, "fl"), &i), -EINVAL);
	ck_assert_int_eq(ynode_int(root, &i), -EINVAL); /* a map */
	ck_assert_int_eq(ynode_number(ynode_get(root, "fl"), &d), 0);
	ck_assert(d == 2500.0);
	ck_assert_int_eq(ynode_number(ynode_get(root, "d"), &d), 0);
	ck_assert(d == 0.5);
	ck_assert_int_eq(ynode_number(ynode_get(root, "i"), &d), 0);
	ck_assert(d == -42.0);
	ck_assert_int_ne(ynode_number(ynode_get(root, "inf"), &d), 0);
	ck_assert_int_ne(ynode_number(ynode_get(root, "nan"), &d), 0);
	ck_assert_int_eq(ynode_number(ynode_get(root, "huge"), &d), -ERANGE);
	ck_assert_int_ne(ynode_number(ynode_get(root, "hex"), &d), 0);
	ck_assert(ynode_is_null(ynode_get(root, "n1")));
	ck_assert(ynode_is_null(ynode_get(root, "n2")));
	ck_assert(ynode_is_null(ynode_get(root, "n3")));
	ck_assert(!ynode_is_null(ynode_get(root, "qn")));
	ck_assert(!ynode_is_null(root));
	ynode_free(root);
}
END_TEST

/* A quoted or explicitly tagged !!str scalar is a string in JSON; plain
 * ones follow the core schema; a null member stays a JSON null. */
START_TEST(test_to_json)
{
	struct ynode *root = load("s: '12'\nt: !!str 13\nn: 12\nf: 1.5\nb: false\nz: ~\n"
				  "l: [x, 'y', 3]\nm: {k: v}\n");
	const struct ynode *bad = NULL;
	int failed = 1;
	struct json_object *o = ytree_to_json(root, &failed, &bad), *v;

	ck_assert_int_eq(failed, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_is_type(json_object_object_get(o, "s"), json_type_string));
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "s")), "12");
	ck_assert(json_object_is_type(json_object_object_get(o, "t"), json_type_string));
	ck_assert(json_object_is_type(json_object_object_get(o, "n"), json_type_int));
	ck_assert_int_eq(json_object_get_int64(json_object_object_get(o, "n")), 12);
	ck_assert(json_object_is_type(json_object_object_get(o, "f"), json_type_double));
	ck_assert(json_object_is_type(json_object_object_get(o, "b"), json_type_boolean));
	ck_assert(json_object_object_get_ex(o, "z", &v));
	ck_assert_ptr_null(v);
	v = json_object_object_get(o, "l");
	ck_assert_int_eq((int)json_object_array_length(v), 3);
	ck_assert(json_object_is_type(json_object_array_get_idx(v, 2), json_type_int));
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(json_object_object_get(o, "m"), "k")),
	    "v");
	json_object_put(o);
	ynode_free(root);
}
END_TEST

START_TEST(test_load_file)
{
	char path[] = "/tmp/braced-ytree-XXXXXX";
	int fd = mkstemp(path);
	struct ynode *root = NULL;
	FILE *f;
	int r;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs("a:\n  b: 1\n", f);
	fclose(f);
	r = ytree_load_file(path, &root, err, sizeof(err), &eline, &ecol);
	ck_assert_int_eq(r, 0);
	assert_at(ynode_get(ynode_get(root, "a"), "b"), 2, 6);
	ynode_free(root);
	root = NULL;

	/* An error in a file has its place; one about the file has none. */
	f = fopen(path, "w");
	fputs("a: 1\na: 2\n", f);
	fclose(f);
	ck_assert_int_eq(ytree_load_file(path, &root, err, sizeof(err), &eline, &ecol), -EINVAL);
	ck_assert_uint_eq(eline, 2);
	ck_assert_ptr_null(root);

	/* Over YTREE_MAX_FILE_SIZE: refused before parsing. */
	f = fopen(path, "w");
	for (size_t i = 0; i <= YTREE_MAX_FILE_SIZE / 8; i++)
		fputs("# 45678\n", f);
	fclose(f);
	eline = ecol = 9;
	r = ytree_load_file(path, &root, err, sizeof(err), &eline, &ecol);
	ck_assert_int_lt(r, 0);
	ck_assert_ptr_null(root);
	ck_assert_uint_eq(eline, 0);
	ck_assert_uint_eq(ecol, 0);
	ck_assert(err[0] != '\0');
	unlink(path);

	eline = ecol = 9;
	ck_assert_int_eq(ytree_load_file(path, &root, err, sizeof(err), &eline, &ecol), -ENOENT);
	ck_assert_uint_eq(eline, 0);
	ck_assert_int_lt(ytree_load_file("/tmp", &root, err, sizeof(err), &eline, &ecol), 0);
	ck_assert_ptr_null(root);
}
END_TEST

Suite *ytree_suite(void)
{
	Suite *s = suite_create("ytree");
	TCase *tc = tcase_create("ytree");

	tcase_add_test(tc, test_nesting_and_positions);
	tcase_add_test(tc, test_scalar_bytes);
	tcase_add_test(tc, test_empty_documents);
	tcase_add_loop_test(tc, test_refused, 0,
			    (int)(sizeof(refused_cases) / sizeof(refused_cases[0])));
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_entries_limit);
	tcase_add_test(tc, test_nodes_limit);
	tcase_add_test(tc, test_scalars);
	tcase_add_test(tc, test_to_json);
	tcase_add_test(tc, test_load_file);
	suite_add_tcase(s, tc);
	return s;
}

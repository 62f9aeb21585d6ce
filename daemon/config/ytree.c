/* YAML → positioned tree. libyaml 0.2.5 has no depth limit and no duplicate
 * key detection, and its document API expands aliases; this reader uses the
 * event API and enforces all three itself (see YTREE_MAX_*). */
#include "ytree.h"
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

struct builder {
	struct ynode *stack[YTREE_MAX_DEPTH + 1];
	int depth;
	size_t nodes;
	struct ynode *root;
	char *err;
	size_t errlen;
	unsigned line, col;
};

static void fail_at(struct builder *b, const yaml_mark_t *m, const char *fmt, const char *arg)
{
	snprintf(b->err, b->errlen, fmt, arg ? arg : "");
	b->line = m ? (unsigned)m->line + 1 : 0;
	b->col = m ? (unsigned)m->column + 1 : 0;
}

void ynode_free(struct ynode *node)
{
	if (!node)
		return;
	for (size_t i = 0; i < node->n; i++) {
		if (node->keys)
			ynode_free(node->keys[i]);
		ynode_free(node->items[i]);
	}
	free(node->keys);
	free(node->items);
	free(node->value);
	free(node);
}

static int push_child(struct builder *b, struct ynode *parent, struct ynode *child)
{
	size_t n = parent->n;

	if (parent->kind == YNODE_MAP) {
		/* Keys and values alternate; a pending key is stored with a NULL value. */
		if (n > 0 && parent->items[n - 1] == NULL) {
			parent->items[n - 1] = child;
			return 0;
		}
		if (child->kind != YNODE_SCALAR) {
			snprintf(b->err, b->errlen, "mapping keys must be scalars");
			b->line = child->line;
			b->col = child->col;
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			if (parent->keys[i]->len == child->len &&
			    memcmp(parent->keys[i]->value, child->value, child->len) == 0) {
				snprintf(b->err, b->errlen, "duplicate key '%.100s'", child->value);
				b->line = child->line;
				b->col = child->col;
				return -EINVAL;
			}
		}
	}
	if (n >= YTREE_MAX_ENTRIES) {
		snprintf(b->err, b->errlen, "more than %u entries in one mapping or sequence",
			 YTREE_MAX_ENTRIES);
		b->line = child->line;
		b->col = child->col;
		return -EINVAL;
	}
	if ((n & (n - 1)) == 0) { /* grow at powers of two */
		size_t cap = n ? n * 2 : 4;
		struct ynode **items = realloc(parent->items, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		parent->items = items;
		if (parent->kind == YNODE_MAP) {
			struct ynode **keys = realloc(parent->keys, cap * sizeof(*keys));

			if (!keys)
				return -ENOMEM;
			parent->keys = keys;
		}
	}
	if (parent->kind == YNODE_MAP) {
		parent->keys[n] = child;
		parent->items[n] = NULL;
	} else {
		parent->items[n] = child;
	}
	parent->n = n + 1;
	return 0;
}

/* Attaches a finished node to its parent, or makes it the root. Takes child. */
static int attach(struct builder *b, struct ynode *child)
{
	int r;

	if (b->depth == 0) {
		b->root = child;
		return 0;
	}
	r = push_child(b, b->stack[b->depth - 1], child);
	if (r < 0)
		ynode_free(child);
	return r;
}

static struct ynode *node_new(struct builder *b, enum ynode_kind kind, const yaml_mark_t *m)
{
	struct ynode *n;

	if (++b->nodes > YTREE_MAX_NODES) {
		fail_at(b, m, "document has more than %s nodes", "200000");
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		fail_at(b, m, "out of memory%s", NULL);
		return NULL;
	}
	n->kind = kind;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	return n;
}

static int on_event(struct builder *b, yaml_event_t *ev)
{
	struct ynode *n;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->root) {
			fail_at(b, &ev->start_mark, "only one YAML document is allowed%s", NULL);
			return -EINVAL;
		}
		return 0;
	case YAML_ALIAS_EVENT:
		fail_at(b, &ev->start_mark, "YAML aliases are not allowed%s", NULL);
		return -EINVAL;
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor) {
			fail_at(b, &ev->start_mark, "YAML anchors are not allowed%s", NULL);
			return -EINVAL;
		}
		n = node_new(b, YNODE_SCALAR, &ev->start_mark);
		if (!n)
			return -ENOMEM;
		n->len = ev->data.scalar.length;
		n->value = malloc(n->len + 1);
		if (!n->value) {
			ynode_free(n);
			return -ENOMEM;
		}
		memcpy(n->value, ev->data.scalar.value, n->len);
		n->value[n->len] = '\0';
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		/* An explicit tag other than !!str is not part of our format. */
		if (ev->data.scalar.tag && strcmp((char *)ev->data.scalar.tag, YAML_STR_TAG) == 0)
			n->quoted = 1;
		return attach(b, n);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		int is_map = ev->type == YAML_MAPPING_START_EVENT;
		const yaml_char_t *anchor =
		    is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;

		if (anchor) {
			fail_at(b, &ev->start_mark, "YAML anchors are not allowed%s", NULL);
			return -EINVAL;
		}
		if (b->depth >= YTREE_MAX_DEPTH) {
			fail_at(b, &ev->start_mark, "nesting deeper than %s levels", "64");
			return -EINVAL;
		}
		n = node_new(b, is_map ? YNODE_MAP : YNODE_SEQ, &ev->start_mark);
		if (!n)
			return -ENOMEM;
		b->stack[b->depth++] = n;
		return 0;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		n = b->stack[--b->depth];
		b->stack[b->depth] = NULL;
		return attach(b, n);
	default:
		return 0;
	}
}

int ytree_load_string(const char *text, size_t len, struct ynode **ret_root, char *err,
		      size_t errlen, unsigned *ret_line, unsigned *ret_col)
{
	struct builder b = { .err = err, .errlen = errlen };
	yaml_parser_t parser;
	yaml_event_t ev;
	int r = 0, done = 0;

	err[0] = '\0';
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			const yaml_mark_t *m = &parser.problem_mark;

			snprintf(err, errlen, "YAML syntax error: %s%s%s",
				 parser.problem ? parser.problem : "unknown",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			b.line = (unsigned)m->line + 1;
			b.col = (unsigned)m->column + 1;
			r = -EINVAL;
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = on_event(&b, &ev);
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	yaml_parser_delete(&parser);
	while (b.depth > 0) {
		ynode_free(b.stack[--b.depth]);
	}
	if (r < 0) {
		if (r == -ENOMEM && !err[0])
			snprintf(err, errlen, "out of memory");
		ynode_free(b.root);
		*ret_line = b.line;
		*ret_col = b.col;
		return r;
	}
	if (!b.root || (b.root->kind == YNODE_SCALAR && ynode_is_null(b.root))) {
		ynode_free(b.root);
		b.root = calloc(1, sizeof(*b.root));
		if (!b.root)
			return -ENOMEM;
		b.root->kind = YNODE_MAP;
		b.root->line = 1;
		b.root->col = 1;
	}
	*ret_root = b.root;
	return 0;
}

int ytree_load_file(const char *path, struct ynode **ret_root, char *err, size_t errlen,
		    unsigned *ret_line, unsigned *ret_col)
{
	char *text;
	size_t len;
	int r;

	*ret_line = *ret_col = 0;
	r = readfile_regular(path, YTREE_MAX_FILE_SIZE, &text, &len, err, errlen);
	if (r < 0)
		return r;
	r = ytree_load_string(text, len, ret_root, err, errlen, ret_line, ret_col);
	free(text);
	return r;
}

struct ynode *ynode_get(const struct ynode *map, const char *key)
{
	size_t klen = strlen(key);

	if (!map || map->kind != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (map->keys[i]->len == klen && memcmp(map->keys[i]->value, key, klen) == 0)
			return map->items[i];
	return NULL;
}

int ynode_is_null(const struct ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->kind != YNODE_SCALAR || n->quoted)
		return 0;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->value, nulls[i]) == 0)
			return 1;
	return 0;
}

int ynode_bool(const struct ynode *n, int *ret)
{
	if (n->kind != YNODE_SCALAR || n->quoted)
		return -EINVAL;
	if (!strcmp(n->value, "true") || !strcmp(n->value, "True") || !strcmp(n->value, "TRUE")) {
		*ret = 1;
		return 0;
	}
	if (!strcmp(n->value, "false") || !strcmp(n->value, "False") ||
	    !strcmp(n->value, "FALSE")) {
		*ret = 0;
		return 0;
	}
	return -EINVAL;
}

int ynode_int(const struct ynode *n, long long *ret)
{
	const char *p;
	char *end;
	long long v;

	if (n->kind != YNODE_SCALAR || n->quoted || n->len == 0 || strlen(n->value) != n->len)
		return -EINVAL;
	p = n->value;
	if (*p == '+' || *p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	v = strtoll(n->value, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* YAML 1.2 core float: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static int is_core_float(const char *s)
{
	const char *p = s;
	int digits = 0;

	if (*p == '+' || *p == '-')
		p++;
	while (*p >= '0' && *p <= '9') {
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			p++;
			digits++;
		}
	}
	if (!digits)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

int ynode_number(const struct ynode *n, double *ret)
{
	long long i;

	if (ynode_int(n, &i) == 0) {
		*ret = (double)i;
		return 0;
	}
	if (n->kind != YNODE_SCALAR || n->quoted || strlen(n->value) != n->len)
		return -EINVAL;
	if (!is_core_float(n->value))
		return -EINVAL;
	*ret = strtod(n->value, NULL);
	return isfinite(*ret) ? 0 : -ERANGE;
}

static struct json_object *scalar_to_json(const struct ynode *n)
{
	long long i;
	double d;
	int b;

	if (!n->quoted) {
		if (ynode_is_null(n))
			return NULL;
		if (ynode_bool(n, &b) == 0)
			return json_object_new_boolean(b);
		if (ynode_int(n, &i) == 0)
			return json_object_new_int64(i);
		if (ynode_number(n, &d) == 0)
			return json_object_new_double(d);
	}
	return json_object_new_string_len(n->value, (int)n->len);
}

struct json_object *ytree_to_json(const struct ynode *n, int *ret_failed,
				  const struct ynode **ret_err)
{
	struct json_object *o, *child;

	*ret_failed = 0;
	if (n->kind == YNODE_SCALAR) {
		o = scalar_to_json(n);
		if (!o && !ynode_is_null(n))
			goto fail;
		return o;
	}
	o = n->kind == YNODE_MAP ? json_object_new_object() : json_object_new_array();
	if (!o)
		goto fail;
	for (size_t i = 0; i < n->n; i++) {
		child = ytree_to_json(n->items[i], ret_failed, ret_err);
		if (*ret_failed) {
			json_object_put(o);
			return NULL;
		}
		if (n->kind == YNODE_MAP)
			json_object_object_add(o, n->keys[i]->value, child);
		else
			json_object_array_add(o, child);
	}
	return o;
fail:
	*ret_failed = 1;
	*ret_err = n;
	return NULL;
}

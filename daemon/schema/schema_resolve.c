/* "$ref" resolution: the registry of resources ("$id"s and documents), the
 * pending references resolved against it, the files next to the schema and
 * the built-in draft-07 meta-schema loaded on first use, and the check that
 * no loop of references evaluates forever at one instance location. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "readfile.h"
#include "schema_internal.h"

#define META_URI "http://json-schema.org/draft-07/schema"

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

static struct resource *resource_find(struct compiler *cc, const char *uri)
{
	return hmap_get(&cc->resources, uri);
}

int resource_add(struct compiler *cc, const char *uri, struct json_object *obj, const char *base)
{
	struct resource *r = resource_find(cc, uri), **res;

	if (r) {
		if (r->obj == obj)
			return 0;
		cfail(cc, "'$id' '%s' is already used elsewhere", uri);
		return -EINVAL;
	}
	res = schema_grow(cc->res, cc->nres, &cc->capres, sizeof(*res), 8);
	if (!res)
		goto oom;
	cc->res = res;
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

	schema_quote(q, sizeof(q), encoded, strlen(encoded));
	name = strdup(encoded);
	if (!name) {
		coom(cc);
		return NULL;
	}
	if (uri_percent_decode(name) < 0) {
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

	strbuf_truncate(&cc->label, 0);
	strbuf_add(&cc->label, where, n);
	strbuf_truncate(&cc->ptr, 0);
	strbuf_adds(&cc->ptr, hash ? hash + 1 : "");
	strbuf_adds(&cc->ptr, suffix);
}

int resolve_one(struct compiler *cc, size_t i)
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
	schema_quote(q, sizeof(q), pr->ref, strlen(pr->ref));
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
	if (uri_percent_decode(frag) < 0) {
		cfail(cc, "invalid percent-encoding in '$ref' '%s'", q);
		goto out;
	}
	if (frag[0] == '\0') {
		target = res->obj;
	} else if (frag[0] == '/') {
		if (schema_pointer_walk(res->obj, frag, &target) < 0) {
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
		strbuf_truncate(&cc->label, 0);
		strbuf_adds(&cc->label, doc_label(cc, uri));
		strbuf_truncate(&cc->ptr, 0);
		strbuf_adds(&cc->ptr, frag);
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

/* With an explicit stack. */
int check_cycles(struct compiler *cc)
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

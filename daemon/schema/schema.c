/* JSON Schema draft-07 over json-c: compiles a schema document into a graph
 * of immutable nodes and frees it. The work is in schema_compile.c (keywords),
 * schema_resolve.c ($ref), schema_validate.c (instances), schema_value.c and
 * schema_uri.c; formats in schema_format.c, ECMA-262 regexes in
 * schema_regex.c, strict JSON in schema_json.c. */
#include <stdlib.h>
#include <string.h>

#include "schema_internal.h"
#include "schema_regex.h"

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
	strbuf_release(&cc->label);
	strbuf_release(&cc->ptr);
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
	strbuf_init(&cc.label, SIZE_MAX);
	strbuf_init(&cc.ptr, SIZE_MAX);
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

/* Schema validation for one request (SPEC 2): the app's query and body
 * before anything is sent (request_validate), and an upstream answer that
 * would be relayed as a success, decoded for the check when it carries a
 * content coding. What fails is logged, counted and kept as violations. */
#include "validate.h"
#include "ascii.h"
#include "decode.h"
#include "exchange.h"
#include "guard.h"
#include "log.h"
#include "reply.h"
#include "schema.h"
#include "upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>

/* Most query parameters a validated request may carry; more is a violation. */
#define QUERY_MAX_PARAMS 1000

/* Form-decodes [s, s+len) ('+' is a space, %XX a byte, a malformed escape
 * kept as it is) into out (len + 1). */
static size_t form_decode(const char *s, size_t len, char *out)
{
	size_t o = 0;

	ascii_pct_decode(s, len, out, ASCII_PCT_PLUS_SPACE | ASCII_PCT_KEEP_MALFORMED, &o);
	return o;
}

struct query_param {
	char *key, *value;
	size_t vlen;
};

/* Splits and decodes the query string; returns the count, -E2BIG (more
 * than QUERY_MAX_PARAMS) or -ENOMEM. *ret is freed with free_params. */
static int parse_query(const char *q, struct query_param **ret)
{
	struct query_param *ps = NULL;
	int n = 0, cap = 0, err = -ENOMEM;

	while (*q) {
		size_t plen = strcspn(q, "&"), klen = strcspn(q, "=&");

		if (plen > 0) {
			if (n == QUERY_MAX_PARAMS) {
				err = -E2BIG;
				goto fail;
			}
			if (n == cap) {
				struct query_param *grown;

				cap = cap ? cap * 2 : 8;
				grown = realloc(ps, (size_t)cap * sizeof(*ps));
				if (!grown)
					goto fail;
				ps = grown;
			}
			ps[n].key = malloc(klen + 1);
			ps[n].value = malloc(plen + 1);
			if (!ps[n].key || !ps[n].value) {
				free(ps[n].key);
				free(ps[n].value);
				goto fail;
			}
			form_decode(q, klen, ps[n].key);
			ps[n].vlen = klen < plen
					 ? form_decode(q + klen + 1, plen - klen - 1, ps[n].value)
					 : 0;
			ps[n].value[ps[n].vlen] = '\0';
			n++;
		}
		q += plen;
		if (*q == '&')
			q++;
	}
	*ret = ps;
	return n;
fail:
	while (n > 0) {
		n--;
		free(ps[n].key);
		free(ps[n].value);
	}
	free(ps);
	return err;
}

static void free_params(struct query_param *ps, int n)
{
	for (int i = 0; i < n; i++) {
		free(ps[i].key);
		free(ps[i].value);
	}
	free(ps);
}

static void merge_result(struct schema_result *into, const struct schema_result *one)
{
	for (size_t i = 0; i < one->count && into->count < SCHEMA_MAX_VIOLATIONS; i++)
		into->v[into->count++] = one->v[i];
	into->total += one->total;
}

/* Adds one violation of the whole document (pointer "") to res; keyword and
 * msg are borrowed, copied and cut to fit. */
static void add_violation(struct schema_result *res, const char *keyword, const char *msg)
{
	struct schema_result one;

	memset(&one, 0, sizeof(one));
	snprintf(one.v[0].keyword, sizeof(one.v[0].keyword), "%s", keyword);
	snprintf(one.v[0].message, sizeof(one.v[0].message), "%s", msg);
	one.count = one.total = 1;
	merge_result(res, &one);
}

/* Validates instance against s, adding what fails to res. Returns 1 if invalid. */
static int validate_into(const struct schema *s, struct json_object *instance,
			 struct schema_result *res)
{
	struct schema_result one;

	memset(&one, 0, sizeof(one));
	if (schema_validate(s, instance, &one) == 0)
		return 0;
	merge_result(res, &one);
	return 1;
}

static struct json_object *param_value(const struct query_param *p)
{
	return json_object_new_string_len(p->value, (int)p->vlen);
}

/* Validates the query as an object of strings. A repeated parameter is
 * validated with each of its values, so no value the upstream may read
 * escapes the schema. Returns 1 when invalid, 0 when valid, -ENOMEM when it
 * could not be checked. */
static int check_query(const struct schema *s, const char *q, struct schema_result *res)
{
	struct query_param *ps = NULL;
	struct json_object *obj;
	int n = parse_query(q, &ps), bad;

	if (n == -ENOMEM)
		return -ENOMEM;
	if (n < 0) {
		char msg[64];

		snprintf(msg, sizeof(msg), "more than %d query parameters", QUERY_MAX_PARAMS);
		add_violation(res, "limit", msg);
		return 1;
	}
	obj = json_object_new_object();
	if (!obj) {
		free_params(ps, n);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		struct json_object *v;

		if (json_object_object_get_ex(obj, ps[i].key, NULL))
			continue;
		v = param_value(&ps[i]);
		if (!v || json_object_object_add(obj, ps[i].key, v) < 0) {
			json_object_put(v);
			json_object_put(obj);
			free_params(ps, n);
			return -ENOMEM;
		}
	}
	bad = validate_into(s, obj, res);
	for (int i = 0; i < n; i++) {
		struct json_object *first;

		/* Later values of a repeated name, each in place of the first. */
		if (!json_object_object_get_ex(obj, ps[i].key, &first) ||
		    (json_object_get_string_len(first) == (int)ps[i].vlen &&
		     memcmp(json_object_get_string(first), ps[i].value, ps[i].vlen) == 0))
			continue;
		json_object_get(first);
		json_object_object_add(obj, ps[i].key, param_value(&ps[i]));
		bad |= validate_into(s, obj, res);
		json_object_object_add(obj, ps[i].key, first);
	}
	json_object_put(obj);
	free_params(ps, n);
	return bad;
}

/* Logs and counts a violation found in report or enforce mode. */
static void note_violations(struct request *req, const char *direction, enum schema_mode mode,
			    const struct schema_result *res)
{
	const char *m = mode == SCHEMA_MODE_ENFORCE ? "enforce" : "report";
	struct logline *l;

	guard_count_violation(req->guard, req->route->label, direction, m);
	l = log_begin(LOG_WARN, "schema violation");
	log_str(l, "profile", req->profile->name);
	log_str(l, "route", req->route->label);
	log_str(l, "direction", direction);
	log_str(l, "mode", m);
	log_int(l, "violations", (long long)res->total);
	if (res->count > 0) {
		log_str(l, "pointer", res->v[0].pointer);
		log_str(l, "keyword", res->v[0].keyword);
		log_str(l, "message", res->v[0].message);
	}
	log_str(l, "correlation_id", req->correlation);
	log_end(l);
}

/* Adds a "size" violation for a body of len bytes (what: "body", "decoded
 * body", ...) over limits.max_validated_body (max). */
static void add_size_violation(struct schema_result *res, const char *what, size_t len,
			       uint64_t max)
{
	char msg[128];

	if (len > max)
		snprintf(msg, sizeof(msg),
			 "%s of %zu bytes is over limits.max_validated_body (%llu)", what, len,
			 (unsigned long long)max);
	else
		snprintf(msg, sizeof(msg), "%s is over limits.max_validated_body (%llu)", what,
			 (unsigned long long)max);
	add_violation(res, "size", msg);
}

/* Validates len bytes of JSON against s, adding to res. A body over max
 * bytes is a "size" violation, refused before json-c sees it: json-c's tree
 * costs many times the text. Returns 1 if invalid. */
static int check_json(const struct schema *s, const char *buf, size_t len, uint64_t max,
		      struct schema_result *res)
{
	struct json_object *doc = NULL;
	struct schema_result one;
	char err[160];
	int bad;

	if (len > max) {
		add_size_violation(res, "body", len, max);
		return 1;
	}
	memset(&one, 0, sizeof(one));
	if (schema_parse_json(buf ? buf : "", len, &doc, err, sizeof(err)) < 0) {
		schema_result_set_json_error(&one, err);
		bad = 1;
	} else {
		bad = schema_validate(s, doc, &one) != 0;
		json_object_put(doc);
	}
	if (bad && one.total == 0)
		one.total = 1;
	merge_result(res, &one);
	return bad;
}

/* A request schema could not be checked (out of memory). Enforce mode
 * fails closed: 500 internal, nothing sent (-1, the request answered);
 * report mode lets it go (0). */
static int unchecked(struct request *req, enum schema_mode mode)
{
	struct problem p;

	if (mode != SCHEMA_MODE_ENFORCE)
		return 0;
	problem_init(&p, PROBLEM_INTERNAL);
	p.detail = "out of memory while checking the request's schema; nothing was sent";
	reply_fail(req, &p);
	return -1;
}

int validate_request(struct request *req)
{
	const struct schema_setting *s;
	struct schema_result *res;
	int bad = 0;

	if (!req->route || req->route->request.mode == SCHEMA_MODE_OFF)
		return 0;
	s = &req->route->request;
	if (!s->query_schema && !s->body_schema)
		return 0;
	res = calloc(1, sizeof(*res));
	if (!res)
		return unchecked(req, s->mode);
	if (s->query_schema) {
		const char *q = memchr(req->path, '?', strlen(req->path));
		int r = check_query(s->query_schema, q ? q + 1 : "", res);

		if (r < 0) {
			free(res);
			return unchecked(req, s->mode);
		}
		bad |= r;
	}
	if (s->body_schema)
		bad |= check_json(s->body_schema, req->body, req->body_len,
				  req->cfg->max_validated_body, res);
	if (bad) {
		note_violations(req, "request", s->mode, res);
		if (s->mode == SCHEMA_MODE_ENFORCE) {
			struct problem p;
			char detail[128];

			problem_init(&p, PROBLEM_REQUEST_INVALID);
			snprintf(
			    detail, sizeof(detail),
			    "the request failed its schema (%zu violation%s); nothing was sent",
			    res->total, res->total == 1 ? "" : "s");
			p.detail = detail;
			p.violations = res->v;
			p.nviolations = res->count;
			reply_fail(req, &p);
			free(res);
			return -1;
		}
	}
	free(res);
	return 0;
}

/* 1 for answers that carry no whole document: 204 and 205 have no content,
 * 206 a part of one, 304 none. */
static int no_document(int status)
{
	return status == 204 || status == 205 || status == 206 || status == 304;
}

/* The Content-Encoding of an answer as one list: every such header's value
 * joined with commas into buf. Returns 0, or -E2BIG when it does not fit. */
static int response_codings(struct call *call, char *buf, size_t size)
{
	const char *name, *value;
	size_t pos = 0, used = 0;

	buf[0] = '\0';
	while (call_header_next(call, &pos, &name, &value)) {
		size_t vlen = strlen(value);

		if (strcasecmp(name, "Content-Encoding") != 0)
			continue;
		if (used + vlen + 2 > size)
			return -E2BIG;
		if (used > 0)
			buf[used++] = ',';
		memcpy(buf + used, value, vlen + 1);
		used += vlen;
	}
	return 0;
}

/* Validates an encoded body against s: undone with decode_body into a
 * buffer held to max bytes, for validation only (the encoded bytes are
 * what is relayed). Unknown codings and undecodable data are "encoding"
 * violations, a decoded body over max a "size" one. Returns 1 if invalid. */
static int check_encoded_json(const struct schema *s, const char *codings, const char *buf,
			      size_t len, uint64_t max, struct schema_result *res)
{
	size_t cap = max < SIZE_MAX - 1 ? (size_t)max : SIZE_MAX - 1;
	struct strbuf plain;
	char err[160];
	int r, bad;

	strbuf_init(&plain, cap);
	r = decode_body(codings, buf, len, cap, &plain, err, sizeof(err));
	if (r == -EFBIG) {
		add_size_violation(res, "decoded body", 0, max);
		bad = 1;
	} else if (r < 0) {
		add_violation(res, "encoding", err);
		bad = 1;
	} else {
		bad = check_json(s, plain.data, plain.len, max, res);
	}
	strbuf_release(&plain);
	return bad;
}

int validate_wants(const struct request *req, int status)
{
	const struct schema_setting *s;

	if (!req->route || status < 100 || status > 599)
		return 0;
	s = &req->route->response;
	return s->mode != SCHEMA_MODE_OFF && s->body_schema && s->statuses[status] &&
	       req->method != METHOD_HEAD && !no_document(status);
}

/* Validates a 2xx-class answer against the route's response schema. A body
 * with a content coding is decoded for the check (gzip, x-gzip, deflate);
 * any other coding is a violation, never a pass. Returns 1 when it failed
 * in enforce mode (kept in req->violations). */
int validate_response(struct request *req, struct call *call)
{
	const struct schema_setting *s;
	struct evbuffer *body = call_body(call);
	uint64_t max = req->cfg->max_validated_body;
	char codings[256];
	const char *buf;
	size_t len;
	struct schema_result res;
	int bad;

	if (!validate_wants(req, call_status(call)))
		return 0;
	s = &req->route->response;
	memset(&res, 0, sizeof(res));
	len = evbuffer_get_length(body);
	if (response_codings(call, codings, sizeof(codings)) < 0) {
		add_violation(&res, "encoding", "content-encoding list too long");
		bad = 1;
	} else if (len > max) {
		/* Checked before anything is pulled up, decoded or parsed. */
		add_size_violation(&res, decode_is_identity(codings) ? "body" : "encoded body", len,
				   max);
		bad = 1;
	} else {
		buf = len ? (const char *)evbuffer_pullup(body, -1) : "";
		if (decode_is_identity(codings))
			bad = check_json(s->body_schema, buf, len, max, &res);
		else
			bad = check_encoded_json(s->body_schema, codings, buf, len, max, &res);
	}
	req->schema_bad = bad;
	if (!bad)
		return 0;
	note_violations(req, "response", s->mode, &res);
	if (s->mode != SCHEMA_MODE_ENFORCE)
		return 0;
	free(req->violations);
	req->violations = malloc(sizeof(res));
	if (req->violations)
		*req->violations = res;
	return 1;
}

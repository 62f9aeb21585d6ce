/* Strict JSON parsing for schema validation (schema_parse_json() in
 * schema.h): json-c's tokener in strict mode, plus what it lets through
 * checked before (single quotes, NaN, control bytes, "1.") and after
 * (numbers that overflow a double, trailing data). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/printbuf.h>

#include "schema.h"

static int set_err(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* What json-c's strict mode lets through: single quotes, NaN/Infinity,
 * control bytes inside strings, "1.". Sets *ret_walk when a number might
 * overflow a double (an exponent or a very long mantissa). */
static int prescan(const char *b, size_t len, int *ret_walk, char *err, size_t errlen)
{
	size_t i, digits = 0;
	int in_str = 0;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)b[i];

		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = 0;
			else if (ch < 0x20)
				return set_err(err, errlen, -EINVAL,
					       "control character in a string at byte %zu", i);
			continue;
		}
		if (ch >= '0' && ch <= '9') {
			if (++digits > 300)
				*ret_walk = 1;
			continue;
		}
		digits = 0;
		switch (ch) {
		case '"':
			in_str = 1;
			break;
		case '\'':
			return set_err(err, errlen, -EINVAL, "single quote at byte %zu", i);
		case 'N':
		case 'I':
			return set_err(
			    err, errlen, -EINVAL,
			    "invalid literal at byte %zu (NaN and Infinity are not JSON)", i);
		case '.':
			if (i + 1 >= len || b[i + 1] < '0' || b[i + 1] > '9')
				return set_err(err, errlen, -EINVAL,
					       "digit expected after '.' at byte %zu", i + 1);
			break;
		case 'e':
		case 'E':
			if (i > 0 && b[i - 1] >= '0' && b[i - 1] <= '9')
				*ret_walk = 1;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Finds a number that overflowed to infinity. Depth is bounded by the
 * tokener's limit. */
static int all_finite(struct json_object *o)
{
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_double:
		return isfinite(json_object_get_double(o));
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (!all_finite(json_object_array_get_idx(o, i)))
				return 0;
		return 1;
	case json_type_object: {
		/* Braces: the macro declares variables, which C11 forbids right
		 * after a label (gcc accepts it, clang does not). */
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			if (!all_finite(val))
				return 0;
		}
		return 1;
	}
	default:
		return 1;
	}
}

/* One tokener kept between documents: json_tokener_new_ex() allocates and
 * clears its whole depth stack (SCHEMA_MAX_DEPTH entries), which cost more
 * than parsing a small answer. Taken while in use, so a parse that somehow
 * nests gets a fresh one. */
static struct json_tokener *spare_tokener;

static struct json_tokener *tokener_take(void)
{
	struct json_tokener *tok = spare_tokener;

	spare_tokener = NULL;
	if (tok)
		return tok;
	/* N allows N - 1 nested containers. */
	return json_tokener_new_ex(SCHEMA_MAX_DEPTH + 1);
}

static void tokener_give_back(struct json_tokener *tok)
{
	if (spare_tokener) {
		json_tokener_free(tok);
		return;
	}
	json_tokener_reset(tok);
	spare_tokener = tok;
}

/* A tokener for one secret document (SCHEMA_JSON_SECRET): its buffer
 * grown up front to hold any string of len bytes, so that json-c never
 * reallocates it and frees a copy of the secret unwiped. */
static struct json_tokener *tokener_for_secret(size_t len, int max_depth)
{
	struct json_tokener *tok = json_tokener_new_ex(max_depth + 1);

	if (!tok)
		return NULL;
	/* The fields are marked deprecated for reading, not removed: json-c
	 * 0.16 offers no other way to reach the buffer it copies strings to. */
	if (printbuf_memset(tok->pb, 0, 0, (int)len + 1) < 0) {
		json_tokener_free(tok);
		return NULL;
	}
	printbuf_reset(tok->pb);
	return tok;
}

static void tokener_drop_secret(struct json_tokener *tok)
{
	explicit_bzero(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
}

int schema_parse_json(const char *buf, size_t len, struct json_object **ret, char *err,
		      size_t errlen)
{
	return schema_parse_json_ex(buf, len, SCHEMA_MAX_DEPTH, 0, ret, err, errlen);
}

int schema_parse_json_ex(const char *buf, size_t len, int max_depth, unsigned flags,
			 struct json_object **ret, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error e;
	size_t end;
	int walk = 0, r, own = flags & SCHEMA_JSON_SECRET || max_depth != SCHEMA_MAX_DEPTH;

	if (errlen)
		err[0] = '\0';
	if (max_depth < 1 || max_depth > SCHEMA_MAX_DEPTH)
		return set_err(err, errlen, -EINVAL, "depth limit out of range");
	if (len > INT_MAX - 1)
		return set_err(err, errlen, -EINVAL, "document too large");
	r = prescan(buf, len, &walk, err, errlen);
	if (r < 0)
		return r;
	if (flags & SCHEMA_JSON_SECRET)
		tok = tokener_for_secret(len, max_depth);
	else if (own)
		tok = json_tokener_new_ex(max_depth + 1);
	else
		tok = tokener_take();
	if (!tok)
		return set_err(err, errlen, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (e == json_tokener_continue) {
		/* A number or literal at the very end needs the terminating NUL. */
		o = json_tokener_parse_ex(tok, "", 1);
		e = json_tokener_get_error(tok);
		end = len;
	}
	if (e == json_tokener_error_depth) {
		r = set_err(err, errlen, -EINVAL,
			    "invalid JSON at byte %zu: nested deeper than %d levels", end,
			    max_depth);
		goto out;
	}
	if (e != json_tokener_success) {
		r = set_err(err, errlen, -EINVAL, "invalid JSON at byte %zu: %s",
			    e == json_tokener_continue ? len : end, json_tokener_error_desc(e));
		goto out;
	}
	if (end != len) {
		json_object_put(o);
		r = set_err(err, errlen, -EINVAL,
			    "unexpected data after the JSON document at byte %zu", end);
		goto out;
	}
	if (walk && !all_finite(o)) {
		json_object_put(o);
		r = set_err(err, errlen, -EINVAL, "number out of range");
		goto out;
	}
	*ret = o;
	r = 0;
out:
	if (flags & SCHEMA_JSON_SECRET)
		tokener_drop_secret(tok);
	else if (own)
		json_tokener_free(tok);
	else
		tokener_give_back(tok);
	return r;
}

void schema_json_put_wiped(struct json_object *o)
{
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_string:
		/* json-c hands out its own copy as const; the document is the
		 * caller's and about to be freed. */
		explicit_bzero((char *)json_object_get_string(o),
			       (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			schema_json_put_wiped(json_object_get(json_object_array_get_idx(o, i)));
		break;
	case json_type_object: {
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			schema_json_put_wiped(json_object_get(val));
		}
		break;
	}
	default:
		break;
	}
	json_object_put(o);
}

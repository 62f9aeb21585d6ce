/* Token answers: the strict JSON parser of schema/ with a tokener of its
 * own (SCHEMA_JSON_SECRET), then one look at each member RFC 6749 5.1 and
 * 5.2 name; the document's strings are wiped before it is freed. */
#include "tokenanswer.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "ascii.h"
#include "schema.h"

static const char *const status_names[TOKENANSWER__COUNT] = {
	[TOKENANSWER_OK] = "ok",
	[TOKENANSWER_TOO_LARGE] = "too_large",
	[TOKENANSWER_NOT_JSON] = "not_json",
	[TOKENANSWER_NOT_OBJECT] = "not_object",
	[TOKENANSWER_ERROR] = "error_answer",
	[TOKENANSWER_NO_ACCESS_TOKEN] = "no_access_token",
	[TOKENANSWER_BAD_TOKEN] = "bad_token",
	[TOKENANSWER_TOKEN_TOO_LONG] = "token_too_long",
	[TOKENANSWER_BAD_TOKEN_TYPE] = "bad_token_type",
	[TOKENANSWER_BAD_EXPIRES_IN] = "bad_expires_in",
	[TOKENANSWER_NO_MEMORY] = "no_memory",
};

const char *tokenanswer_status_name(enum tokenanswer_status s)
{
	if ((unsigned)s >= TOKENANSWER__COUNT)
		return "unknown";
	return status_names[s];
}

void token_release(struct token *t)
{
	explicit_bzero(t, sizeof(*t));
}

void token_move(struct token *dst, struct token *src)
{
	if (dst == src)
		return;
	token_release(dst);
	memcpy(dst->value, src->value, src->len);
	dst->value[src->len] = '\0';
	dst->len = src->len;
	dst->lifetime_s = src->lifetime_s;
	token_release(src);
}

void tokenanswer_release(struct tokenanswer *a)
{
	explicit_bzero(a, sizeof(*a));
}

/* A member, or NULL when absent or null. */
static struct json_object *member(struct json_object *o, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v))
		return NULL;
	return json_object_get_type(v) == json_type_null ? NULL : v;
}

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
 * "+" / "/" ) *"=". */
static int is_b64token(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'))
			break;
		i++;
	}
	if (i == 0)
		return 0;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

/* Copies a string member as printable ASCII, cut to cap - 1 bytes. */
static void copy_printable(struct json_object *v, char *out, size_t cap)
{
	const char *s;
	size_t len, i;

	out[0] = '\0';
	if (!v || json_object_get_type(v) != json_type_string)
		return;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len > cap - 1)
		len = cap - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[len] = '\0';
}

static enum tokenanswer_status read_token(struct json_object *v, struct token *t)
{
	const char *s;
	size_t len;

	if (!v)
		return TOKENANSWER_NO_ACCESS_TOKEN;
	if (json_object_get_type(v) != json_type_string)
		return TOKENANSWER_BAD_TOKEN;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len > TOKENANSWER_TOKEN_MAX)
		return TOKENANSWER_TOKEN_TOO_LONG;
	if (!is_b64token(s, len))
		return TOKENANSWER_BAD_TOKEN;
	memcpy(t->value, s, len);
	t->value[len] = '\0';
	t->len = len;
	return TOKENANSWER_OK;
}

static enum tokenanswer_status read_token_type(struct json_object *v)
{
	if (!v)
		return TOKENANSWER_OK;
	if (json_object_get_type(v) != json_type_string ||
	    json_object_get_string_len(v) != (int)strlen("bearer") ||
	    strncasecmp(json_object_get_string(v), "bearer", strlen("bearer")) != 0)
		return TOKENANSWER_BAD_TOKEN_TYPE;
	return TOKENANSWER_OK;
}

/* expires_in as a count of seconds, saturating at UINT64_MAX. */
static int expires_value(struct json_object *v, uint64_t *ret)
{
	const char *s;
	size_t len, used;
	int64_t i;

	switch (json_object_get_type(v)) {
	case json_type_int:
		/* json-c clamps integers beyond 64 bits to INT64_MIN/MAX, which
		 * read as negative or as over the cap: right either way. */
		i = json_object_get_int64(v);
		if (i < 0)
			return -EINVAL;
		*ret = (uint64_t)i;
		return 0;
	case json_type_string:
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		/* A NUL inside stops the digits short of len. */
		if (ascii_parse_uint(s, UINT64_MAX, ret, &used) < 0 || used != len)
			return -EINVAL;
		return 0;
	default:
		return -EINVAL;
	}
}

static enum tokenanswer_status read_expires_in(struct json_object *v, struct tokenanswer *a)
{
	uint64_t s;

	if (!v) {
		a->token.lifetime_s = TOKENANSWER_LIFETIME_DEFAULT_S;
		a->lifetime_default = 1;
		return TOKENANSWER_OK;
	}
	if (expires_value(v, &s) < 0 || s == 0)
		return TOKENANSWER_BAD_EXPIRES_IN;
	if (s > TOKENANSWER_LIFETIME_MAX_S) {
		s = TOKENANSWER_LIFETIME_MAX_S;
		a->lifetime_capped = 1;
	}
	a->token.lifetime_s = (uint32_t)s;
	return TOKENANSWER_OK;
}

static enum tokenanswer_status read_object(struct json_object *o, struct tokenanswer *a)
{
	struct json_object *error = member(o, "error");
	enum tokenanswer_status st;

	if (error) {
		copy_printable(error, a->error, sizeof(a->error));
		copy_printable(member(o, "error_description"), a->error_description,
			       sizeof(a->error_description));
		return TOKENANSWER_ERROR;
	}
	st = read_token(member(o, "access_token"), &a->token);
	if (st == TOKENANSWER_OK)
		st = read_token_type(member(o, "token_type"));
	if (st == TOKENANSWER_OK)
		st = read_expires_in(member(o, "expires_in"), a);
	return st;
}

int tokenanswer_parse(const char *buf, size_t len, struct tokenanswer *ret)
{
	struct json_object *doc = NULL;
	char err[128];
	int r;

	tokenanswer_release(ret);
	if (len > TOKENANSWER_MAX) {
		ret->status = TOKENANSWER_TOO_LARGE;
		return -EINVAL;
	}
	r = schema_parse_json_ex(buf, len, TOKENANSWER_DEPTH_MAX, SCHEMA_JSON_SECRET, &doc, err,
				 sizeof(err));
	if (r == -ENOMEM) {
		ret->status = TOKENANSWER_NO_MEMORY;
		return r;
	}
	if (r < 0) {
		ret->status = TOKENANSWER_NOT_JSON;
		return -EINVAL;
	}
	if (json_object_get_type(doc) != json_type_object)
		ret->status = TOKENANSWER_NOT_OBJECT;
	else
		ret->status = read_object(doc, ret);
	schema_json_put_wiped(doc);
	if (ret->status != TOKENANSWER_OK) {
		/* Nothing of a refused answer is kept but why and its error. */
		token_release(&ret->token);
		ret->lifetime_default = 0;
		ret->lifetime_capped = 0;
		return -EINVAL;
	}
	return 0;
}

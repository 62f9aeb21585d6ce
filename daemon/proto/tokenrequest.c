/* Token requests: a form encoder and a base64 encoder that write into the
 * request's fixed buffers, so no copy of the secret is ever reallocated and
 * left behind. */
#include "tokenrequest.h"

#include <errno.h>
#include <string.h>

/* A bounded writer over a fixed buffer; failed once anything did not fit. */
struct out {
	char *p;
	size_t len, max; /* max bytes, the NUL aside */
	int failed;
};

static void put(struct out *o, const char *s, size_t len)
{
	if (o->failed || len > o->max - o->len) {
		o->failed = 1;
		return;
	}
	memcpy(o->p + o->len, s, len);
	o->len += len;
}

/* WHATWG URL's application/x-www-form-urlencoded byte serializer. */
static void put_urlencoded(struct out *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[3] = { '%', hex[c >> 4], hex[c & 15] };

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '*' || c == '-' || c == '.' || c == '_')
			put(o, (const char *)s, 1);
		else if (c == ' ')
			put(o, "+", 1);
		else
			put(o, esc, 3);
	}
}

static void put_field(struct out *o, const char *name, const char *value)
{
	if (o->len > 0)
		put(o, "&", 1);
	put_urlencoded(o, name);
	put(o, "=", 1);
	put_urlencoded(o, value);
}

/* RFC 4648 section 4 base64 of s[0..len), with padding. */
static void put_base64(struct out *o, const unsigned char *s, size_t len)
{
	static const char alphabet[64] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		char q[4] = { alphabet[s[i] >> 2], alphabet[(s[i] & 3) << 4 | s[i + 1] >> 4],
			      alphabet[(s[i + 1] & 15) << 2 | s[i + 2] >> 6],
			      alphabet[s[i + 2] & 63] };

		put(o, q, 4);
	}
	if (len - i == 1) {
		char q[4] = { alphabet[s[i] >> 2], alphabet[(s[i] & 3) << 4], '=', '=' };

		put(o, q, 4);
	} else if (len - i == 2) {
		char q[4] = { alphabet[s[i] >> 2], alphabet[(s[i] & 3) << 4 | s[i + 1] >> 4],
			      alphabet[(s[i + 1] & 15) << 2], '=' };

		put(o, q, 4);
	}
}

int tokenrequest_param_allowed(const char *name)
{
	static const char *const reserved[] = { "grant_type", "scope", "client_id",
						"client_secret" };

	if (!name || !name[0])
		return 0;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(name, reserved[i]) == 0)
			return 0;
	return 1;
}

/* The Authorization value of HTTP Basic. The user-pass is never longer
 * than its base64, so a buffer the size of the value holds any that fits. */
static int build_basic(const struct tokenrequest_params *p, struct tokenrequest *r)
{
	char userpass[TOKENREQUEST_AUTHORIZATION_MAX];
	struct out pass = { userpass, 0, sizeof(userpass), 0 };
	struct out auth = { r->authorization, 0, TOKENREQUEST_AUTHORIZATION_MAX, 0 };
	int ret = -E2BIG;

	put_urlencoded(&pass, p->client_id);
	put(&pass, ":", 1);
	put_urlencoded(&pass, p->client_secret);
	if (pass.failed)
		goto out;
	put(&auth, "Basic ", 6);
	put_base64(&auth, (const unsigned char *)pass.p, pass.len);
	if (auth.failed)
		goto out;
	r->authorization[auth.len] = '\0';
	r->authorization_len = auth.len;
	ret = 0;
out:
	explicit_bzero(userpass, sizeof(userpass));
	return ret;
}

int tokenrequest_build(const struct tokenrequest_params *p, struct tokenrequest *ret)
{
	struct out body = { ret->body, 0, TOKENREQUEST_BODY_MAX, 0 };
	int r = 0;

	tokenrequest_release(ret);
	if (!p->client_id || !p->client_secret)
		return -EINVAL;
	for (size_t i = 0; i < p->n_params; i++)
		if (!tokenrequest_param_allowed(p->params[i].name) || !p->params[i].value)
			return -EINVAL;
	put_field(&body, "grant_type", "client_credentials");
	if (p->scope && p->scope[0])
		put_field(&body, "scope", p->scope);
	for (size_t i = 0; i < p->n_params; i++)
		put_field(&body, p->params[i].name, p->params[i].value);
	if (p->client_auth == TOKENREQUEST_AUTH_POST) {
		put_field(&body, "client_id", p->client_id);
		put_field(&body, "client_secret", p->client_secret);
	}
	if (body.failed) {
		r = -E2BIG;
		goto out;
	}
	ret->body[body.len] = '\0';
	ret->body_len = body.len;
	if (p->client_auth == TOKENREQUEST_AUTH_BASIC)
		r = build_basic(p, ret);
out:
	if (r < 0)
		tokenrequest_release(ret);
	return r;
}

void tokenrequest_release(struct tokenrequest *r)
{
	explicit_bzero(r, sizeof(*r));
}

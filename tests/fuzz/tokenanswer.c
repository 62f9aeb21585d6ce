/* Fuzz target: tokenanswer_parse() over a token endpoint's answer (the
 * input, copied to a buffer of exactly its size). The result is the same
 * read twice; 0 comes with TOKENANSWER_OK and nothing else; a token is
 * 1 to TOKENANSWER_TOKEN_MAX b64token bytes (so a Bearer header made of it
 * is one clean line), its lifetime within 1 and the cap, and written back
 * as a plain answer it reads the same; a refusal keeps no byte of a token
 * and an error's texts are printable and bounded. Then the input's halves
 * as client id and secret build a token request whose body and Basic
 * credentials decode back to them. */
#include <errno.h>
#include <stdio.h>

#include "ascii.h"
#include "schema_format.h"
#include "tokenanswer.h"
#include "tokenrequest.h"
#include "fuzz.h"

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static int is_b64token_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

static void check_printable(const char *s, size_t cap)
{
	size_t len = strnlen(s, cap);

	if (len == cap)
		abort();
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			abort();
}

static void check_token(const struct tokenanswer *a)
{
	const struct token *t = &a->token;
	struct tokenanswer *again;
	char *plain;
	int n;

	if (t->len == 0 || t->len > TOKENANSWER_TOKEN_MAX || strlen(t->value) != t->len)
		abort();
	for (size_t i = 0; i < t->len; i++)
		if (!is_b64token_char((unsigned char)t->value[i]) ||
		    (i > 0 && t->value[i - 1] == '=' && t->value[i] != '='))
			abort();
	if (t->value[0] == '=' || t->lifetime_s == 0 || t->lifetime_s > TOKENANSWER_LIFETIME_MAX_S)
		abort();
	if (a->lifetime_default && t->lifetime_s != TOKENANSWER_LIFETIME_DEFAULT_S)
		abort();
	if (a->lifetime_capped && t->lifetime_s != TOKENANSWER_LIFETIME_MAX_S)
		abort();
	if (a->error[0] || a->error_description[0])
		abort();

	plain = malloc(t->len + 64);
	again = malloc(sizeof(*again));
	if (!plain || !again)
		goto out;
	n = sprintf(plain, "{\"access_token\":\"%s\",\"token_type\":\"bearer\",\"expires_in\":%u}",
		    t->value, t->lifetime_s);
	if (tokenanswer_parse(plain, (size_t)n, again) != 0 || again->token.len != t->len ||
	    strcmp(again->token.value, t->value) != 0 || again->token.lifetime_s != t->lifetime_s)
		abort();
	tokenanswer_release(again);
	explicit_bzero(plain, (size_t)n);
out:
	free(again);
	free(plain);
}

static void check_answer(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct tokenanswer *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	int r, r2;

	if (!buf || !a || !b)
		goto out;
	memcpy(buf, data, size);
	r = tokenanswer_parse(buf, size, a);
	r2 = tokenanswer_parse(buf, size, b);
	if (r != r2 || memcmp(a, b, sizeof(*a)) != 0)
		abort();
	if ((unsigned)a->status >= TOKENANSWER__COUNT ||
	    strcmp(tokenanswer_status_name(a->status), "unknown") == 0)
		abort();
	if ((r == 0) != (a->status == TOKENANSWER_OK))
		abort();
	if (r != 0 && r != -EINVAL && !(r == -ENOMEM && a->status == TOKENANSWER_NO_MEMORY))
		abort();
	if (size > TOKENANSWER_MAX && a->status != TOKENANSWER_TOO_LARGE)
		abort();
	check_printable(a->error, sizeof(a->error));
	check_printable(a->error_description, sizeof(a->error_description));
	if (a->status == TOKENANSWER_OK) {
		check_token(a);
	} else {
		if (!all_zero(&a->token, sizeof(a->token)) || a->lifetime_default ||
		    a->lifetime_capped)
			abort();
		if (a->status != TOKENANSWER_ERROR && (a->error[0] || a->error_description[0]))
			abort();
	}
	tokenanswer_release(a);
	if (!all_zero(a, sizeof(*a)))
		abort();
out:
	if (b)
		tokenanswer_release(b);
	free(b);
	free(a);
	free(buf);
}

/* Form-decodes s[0..len) into out (room for len + 1). */
static size_t form_decode(const char *s, size_t len, char *out)
{
	size_t got;

	if (ascii_pct_decode(s, len, out, ASCII_PCT_PLUS_SPACE, &got) < 0)
		abort();
	return got;
}

/* The body ends "&client_id=ID&client_secret=SECRET" (post), and the Basic
 * value decodes to "ID:SECRET" (basic), each form-encoded: decoding gives
 * the input back, and nothing but the encoder's bytes is in the body. */
static void check_request(const char *id, const char *secret)
{
	struct tokenrequest *req = malloc(sizeof(*req));
	struct tokenrequest_params p = { .client_id = id, .client_secret = secret };
	char *dec = malloc(TOKENREQUEST_AUTHORIZATION_MAX + 1);
	char *field = malloc(TOKENREQUEST_BODY_MAX + 1);
	const char *amp, *colon, *b64;
	size_t len, n;

	if (!req || !dec || !field)
		goto out;
	p.client_auth = TOKENREQUEST_AUTH_POST;
	if (tokenrequest_build(&p, req) == 0) {
		if (strlen(req->body) != req->body_len || req->authorization_len != 0)
			abort();
		for (size_t i = 0; i < req->body_len; i++) {
			unsigned char c = (unsigned char)req->body[i];

			if (!(ascii_is_tchar(c) || c == '=' || c == '&') || c == '!' || c == '#' ||
			    c == '$' || c == '\'' || c == '^' || c == '`' || c == '|' || c == '~')
				abort();
		}
		amp = strstr(req->body, "&client_secret=");
		if (!amp || strstr(amp + 1, "&"))
			abort();
		n = form_decode(amp + 15, strlen(amp + 15), field);
		if (n != strlen(secret) || memcmp(field, secret, n) != 0)
			abort();
	} else if (strlen(id) + strlen(secret) < TOKENREQUEST_BODY_MAX / 3 - 64) {
		abort();
	}
	p.client_auth = TOKENREQUEST_AUTH_BASIC;
	if (tokenrequest_build(&p, req) == 0) {
		if (strncmp(req->authorization, "Basic ", 6) != 0 ||
		    strcmp(req->body, "grant_type=client_credentials") != 0)
			abort();
		b64 = req->authorization + 6;
		if (!schema_base64_check(b64, strlen(b64), &len))
			abort();
		n = schema_base64_decode(b64, strlen(b64), (unsigned char *)dec);
		if (n != len)
			abort();
		colon = memchr(dec, ':', n);
		if (!colon || memchr(colon + 1, ':', n - (size_t)(colon + 1 - dec)))
			abort();
		len = form_decode(dec, (size_t)(colon - dec), field);
		if (len != strlen(id) || memcmp(field, id, len) != 0)
			abort();
		len = form_decode(colon + 1, n - (size_t)(colon + 1 - dec), field);
		if (len != strlen(secret) || memcmp(field, secret, len) != 0)
			abort();
	} else if (strlen(id) + strlen(secret) < TOKENREQUEST_AUTHORIZATION_MAX / 4 - 8) {
		abort();
	}
	tokenrequest_release(req);
out:
	free(field);
	free(dec);
	free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *id, *secret;
	size_t half = size / 2;

	check_answer(data, size);
	id = fuzz_cstring(data, half);
	secret = fuzz_cstring(data + half, size - half);
	if (id && secret)
		check_request(id, secret);
	free(secret);
	free(id);
	return 0;
}

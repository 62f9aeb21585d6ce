/* The client-credentials token request (RFC 6749 4.4.2): its
 * application/x-www-form-urlencoded body and, for HTTP Basic client
 * authentication (2.3.1), its Authorization value. Pure and bounded; what
 * it builds holds the client secret and is wiped on release. */
#ifndef BRACED_TOKENREQUEST_H
#define BRACED_TOKENREQUEST_H

#include <stddef.h>

/* Longest request body built, and longest Authorization value ("Basic "
 * and the base64 of "id:secret"); more is -E2BIG. */
#define TOKENREQUEST_BODY_MAX 8192
#define TOKENREQUEST_AUTHORIZATION_MAX 4096

/* How the client authenticates to the token endpoint (RFC 6749 2.3.1). */
enum tokenrequest_client_auth {
	TOKENREQUEST_AUTH_BASIC, /* Authorization: Basic (what servers must support) */
	TOKENREQUEST_AUTH_POST,  /* client_id and client_secret in the body */
};

/* One extra form field (params), NUL-terminated, borrowed. */
struct tokenrequest_param {
	const char *name;
	const char *value;
};

/* What the request is built from; every string NUL-terminated and
 * borrowed. */
struct tokenrequest_params {
	const char *client_id;
	const char *client_secret;
	const char *scope; /* NULL or "": no scope field */
	const struct tokenrequest_param *params;
	size_t n_params;
	enum tokenrequest_client_auth client_auth;
};

/* A built request; embedded by its caller and released with
 * tokenrequest_release(), which wipes it. */
struct tokenrequest {
	char body[TOKENREQUEST_BODY_MAX + 1]; /* NUL-terminated */
	size_t body_len;
	/* The Authorization value ("Basic ..."), NUL-terminated; "" with
	 * TOKENREQUEST_AUTH_POST. */
	char authorization[TOKENREQUEST_AUTHORIZATION_MAX + 1];
	size_t authorization_len;
};

/* 1 when an extra field may be called name: not empty and none of the
 * fields the request sets itself (grant_type, scope, client_id,
 * client_secret). The configuration checks its params with it. */
int tokenrequest_param_allowed(const char *name);

/* Builds the request into *ret (overwritten whatever the result). The body
 * is grant_type=client_credentials, then scope when set, then params in
 * their order, then, with TOKENREQUEST_AUTH_POST, client_id and
 * client_secret; each name and value form-urlencoded (WHATWG URL's
 * application/x-www-form-urlencoded serializer: ASCII letters, digits and
 * "*-._" as they are, space as "+", every other byte %XX in upper case).
 * With TOKENREQUEST_AUTH_BASIC the authorization value is "Basic " and the
 * base64 of urlencode(client_id) ":" urlencode(client_secret), as RFC
 * 6749 2.3.1 asks (so a ':' in the id cannot split it).
 * Returns 0, -EINVAL (a param that tokenrequest_param_allowed() refuses,
 * a NULL client_id or client_secret), or -E2BIG (over a bound); on failure
 * *ret is wiped. */
int tokenrequest_build(const struct tokenrequest_params *p, struct tokenrequest *ret);

/* Wipes all of r (explicit_bzero). */
void tokenrequest_release(struct tokenrequest *r);

#endif

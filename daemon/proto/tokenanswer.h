/* A token endpoint's answer to a client-credentials request (RFC 6749 5.1
 * success, 5.2 error), read strictly into an access token that can go into
 * an Authorization header as it is, its lifetime, or the endpoint's error
 * code. Pure; every copy of the token it makes is wiped on release. */
#ifndef BRACED_TOKENANSWER_H
#define BRACED_TOKENANSWER_H

#include <stddef.h>
#include <stdint.h>

/* Largest answer read: a longer one is TOKENANSWER_TOO_LARGE unparsed. */
#define TOKENANSWER_MAX (64 * 1024)
/* Most nested containers in an answer (unknown members may nest). */
#define TOKENANSWER_DEPTH_MAX 16
/* Longest access token kept (a JWT with many claims fits). */
#define TOKENANSWER_TOKEN_MAX 8192
/* The lifetime of a token whose answer has no expires_in (RFC 6749 5.1
 * leaves it to the server's documentation; SPEC 4.14 says one hour). */
#define TOKENANSWER_LIFETIME_DEFAULT_S 3600
/* A longer expires_in counts as this (a year). */
#define TOKENANSWER_LIFETIME_MAX_S (365u * 86400u)
/* Bytes kept of an error answer's "error" and "error_description". */
#define TOKENANSWER_ERROR_MAX 64
#define TOKENANSWER_DESCRIPTION_MAX 200

/* Why an answer gives no token (tokenanswer_status_name: metrics, the
 * detail of a problem). */
enum tokenanswer_status {
	TOKENANSWER_OK = 0,
	TOKENANSWER_TOO_LARGE,       /* over TOKENANSWER_MAX bytes */
	TOKENANSWER_NOT_JSON,        /* not one strict JSON document, or too deep */
	TOKENANSWER_NOT_OBJECT,      /* JSON, but not an object */
	TOKENANSWER_ERROR,           /* an error answer (5.2): error says which */
	TOKENANSWER_NO_ACCESS_TOKEN, /* no access_token member, or null */
	TOKENANSWER_BAD_TOKEN,       /* not a string, empty, or not an RFC 6750 b64token */
	TOKENANSWER_TOKEN_TOO_LONG,  /* over TOKENANSWER_TOKEN_MAX bytes */
	TOKENANSWER_BAD_TOKEN_TYPE,  /* token_type not a string, or not Bearer */
	TOKENANSWER_BAD_EXPIRES_IN,  /* not a positive integer, nor a string of digits */
	TOKENANSWER_NO_MEMORY,
	TOKENANSWER__COUNT
};

/* An access token and how long it lives from when it was asked for. Its
 * value is a secret: token_release() wipes it, token_move() wipes what it
 * replaces and what it moved. Embedded by its holder. */
struct token {
	char value[TOKENANSWER_TOKEN_MAX + 1]; /* NUL-terminated, b64token characters only */
	size_t len;                            /* 0: no token */
	uint32_t lifetime_s;                   /* 1 to TOKENANSWER_LIFETIME_MAX_S */
};

/* What tokenanswer_parse() read. */
struct tokenanswer {
	enum tokenanswer_status status;
	struct token token;   /* TOKENANSWER_OK only; else empty */
	int lifetime_default; /* no expires_in: lifetime is TOKENANSWER_LIFETIME_DEFAULT_S */
	int lifetime_capped;  /* expires_in was over TOKENANSWER_LIFETIME_MAX_S */
	/* TOKENANSWER_ERROR only: the "error" code and "error_description",
	 * printable ASCII (other bytes become '?'), cut to their bounds, ""
	 * when absent or not strings. */
	char error[TOKENANSWER_ERROR_MAX + 1];
	char error_description[TOKENANSWER_DESCRIPTION_MAX + 1];
};

/* Reads the answer buf (len bytes, borrowed; the caller wipes it: it holds
 * the token) into *ret, which is overwritten whatever the result and
 * released with tokenanswer_release().
 *
 * The answer is one JSON object (strict RFC 8259, at most
 * TOKENANSWER_DEPTH_MAX nested containers, only whitespace after it). An
 * "error" member that is not null makes it an error answer, even beside an
 * access_token. Otherwise:
 * - access_token: a string of 1 to TOKENANSWER_TOKEN_MAX bytes matching
 *   RFC 6750's b64token (letters, digits, "-._~+/", then "=" only at the
 *   end), so it never brings a space, CR, LF or NUL into a header;
 * - token_type: "Bearer" in any case; absent or null reads as Bearer (RFC
 *   6749 requires it, some servers leave it out, and Bearer is the only
 *   kind braced can send);
 * - expires_in: a JSON integer or a string of ASCII digits (some servers
 *   quote it), at least 1; over TOKENANSWER_LIFETIME_MAX_S it is capped;
 *   absent or null means TOKENANSWER_LIFETIME_DEFAULT_S; 0, negative, a
 *   fraction, an exponent or anything else is an error.
 * Other members are ignored. Of a repeated member the last one counts
 * (json-c's rule). The document's strings are wiped before it is freed,
 * but json-c frees two things itself, unwiped: the earlier value of a
 * repeated member, and what it had built of an answer it then finds
 * malformed.
 * Only the status of a 2xx answer should be trusted for a token: the
 * caller judges the HTTP status; this reads the body alone.
 * Returns 0 (TOKENANSWER_OK), -EINVAL (ret->status says why), or -ENOMEM
 * (TOKENANSWER_NO_MEMORY). */
int tokenanswer_parse(const char *buf, size_t len, struct tokenanswer *ret);

/* Wipes all of a (the token and the error texts); a is empty afterwards. */
void tokenanswer_release(struct tokenanswer *a);

/* "ok", "too_large", "not_json", "not_object", "error_answer",
 * "no_access_token", "bad_token", "token_too_long", "bad_token_type",
 * "bad_expires_in", "no_memory"; "unknown" out of range. Static. */
const char *tokenanswer_status_name(enum tokenanswer_status s);

/* Wipes t's value (explicit_bzero); t is empty afterwards. */
void token_release(struct token *t);

/* Replaces dst with src: dst's old value is wiped, then src is copied and
 * wiped (src is empty afterwards). dst == src is a no-op. */
void token_move(struct token *dst, struct token *src);

#endif

/* Cache-Control and Vary read member by member with one cursor per line and
 * a table of the directives; freshness and age as RFC 9111 4.2 computes
 * them, over saturating arithmetic. */
#include "cachecontrol.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "httpdate.h"

enum kind {
	KIND_FLAG,      /* no argument; one given is ignored */
	KIND_SECONDS,   /* delta-seconds, required */
	KIND_MAX_STALE, /* delta-seconds, optional */
};

#define FROM_RESPONSE (1u << CACHECONTROL_RESPONSE)
#define FROM_REQUEST (1u << CACHECONTROL_REQUEST)
#define FROM_BOTH (FROM_RESPONSE | FROM_REQUEST)

struct directive {
	const char *name;
	unsigned from; /* FROM_* of the messages it is defined for */
	enum kind kind;
	size_t off; /* of its int (a flag) or its struct cachecontrol_seconds */
};

#define FLAG(n, f, field)                                                                          \
	{                                                                                          \
		n, f, KIND_FLAG, offsetof(struct cachecontrol, field)                              \
	}
#define SECS(n, f, field)                                                                          \
	{                                                                                          \
		n, f, KIND_SECONDS, offsetof(struct cachecontrol, field)                           \
	}

static const struct directive directives[] = {
	SECS("max-age", FROM_BOTH, max_age),
	SECS("s-maxage", FROM_RESPONSE, s_maxage),
	SECS("stale-while-revalidate", FROM_RESPONSE, stale_while_revalidate),
	SECS("stale-if-error", FROM_BOTH, stale_if_error),
	{ "max-stale", FROM_REQUEST, KIND_MAX_STALE, offsetof(struct cachecontrol, max_stale) },
	SECS("min-fresh", FROM_REQUEST, min_fresh),
	FLAG("no-store", FROM_BOTH, no_store),
	FLAG("no-cache", FROM_BOTH, no_cache),
	FLAG("private", FROM_RESPONSE, private),
	FLAG("public", FROM_RESPONSE, public),
	FLAG("must-revalidate", FROM_RESPONSE, must_revalidate),
	FLAG("proxy-revalidate", FROM_RESPONSE, proxy_revalidate),
	FLAG("only-if-cached", FROM_REQUEST, only_if_cached),
};

/* A member's argument: a token as sent, or a quoted-string's inside (its
 * quoted-pairs still escaped). */
struct arg {
	int given;
	int quoted;
	const char *p;
	size_t len;
};

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void skip_ows(const char **p, const char *end)
{
	while (*p < end && is_ows(**p))
		(*p)++;
}

static const char *skip_token(const char *p, const char *end)
{
	while (p < end && ascii_is_tchar((unsigned char)*p))
		p++;
	return p;
}

/* Moves *p past spaces, tabs and empty list members (RFC 9110 5.6.1).
 * Returns 1 when a member starts at *p, 0 at end. */
static int next_member(const char **p, const char *end)
{
	for (;;) {
		skip_ows(p, end);
		if (*p == end)
			return 0;
		if (**p != ',')
			return 1;
		(*p)++;
	}
}

/* The bytes of a line in [*p, *end) (both NULL for a NULL line); -1 when
 * it is longer than CACHECONTROL_LINE_MAX. */
static int line_span(const struct cachecontrol_line *l, const char **p, const char **end)
{
	if (l->len > CACHECONTROL_LINE_MAX)
		return -1;
	*p = l->p;
	*end = l->p ? l->p + l->len : NULL;
	return 0;
}

/* qdtext and the byte after a backslash (RFC 9110 5.6.4): HTAB, SP, VCHAR,
 * obs-text. */
static int is_qbyte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* From the opening quote at *p, moves *p past the closing one (or to end
 * when there is none). Returns 0 for a well-formed quoted-string, -1 for an
 * unterminated one or one with a byte it may not hold. */
static int skip_quoted(const char **p, const char *end)
{
	const char *q = *p + 1;
	int ok = 1;

	for (; q < end; q++) {
		unsigned char c = (unsigned char)*q;

		if (c == '"') {
			*p = q + 1;
			return ok ? 0 : -1;
		}
		if (c == '\\') {
			if (++q == end)
				break;
			c = (unsigned char)*q;
		}
		if (!is_qbyte(c))
			ok = 0;
	}
	*p = end;
	return -1;
}

/* Past the rest of a malformed member: to the next comma outside a
 * quoted-string (any '"' opens one), or the end. */
static void skip_member(const char **p, const char *end)
{
	while (*p < end && **p != ',') {
		if (**p == '"')
			skip_quoted(p, end);
		else
			(*p)++;
	}
}

/* delta-seconds (RFC 9111 1.2.2): one digit or more, saturated at
 * CACHECONTROL_DELTA_MAX; in a quoted-string, each may be a quoted-pair. */
static int delta_seconds(const char *p, size_t len, int quoted, uint32_t *ret)
{
	uint64_t v = 0;
	size_t digits = 0;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (quoted && c == '\\' && i + 1 < len)
			c = p[++i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (uint64_t)(c - '0');
		if (v > CACHECONTROL_DELTA_MAX)
			v = CACHECONTROL_DELTA_MAX;
		digits++;
	}
	if (digits == 0)
		return -1;
	*ret = (uint32_t)v;
	return 0;
}

static const struct directive *directive_named(enum cachecontrol_from from, const char *name,
					       size_t len)
{
	for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++) {
		const struct directive *d = &directives[i];

		if ((d->from & (1u << from)) && strlen(d->name) == len &&
		    strncasecmp(d->name, name, len) == 0)
			return d;
	}
	return NULL;
}

/* Records one occurrence: a first one as it is, a repeat with another value
 * (or an invalid one) makes the directive invalid for good. */
static void record_seconds(struct cachecontrol_seconds *s, int valid, uint32_t v)
{
	if (!s->present) {
		s->present = 1;
		s->invalid = !valid;
		s->secs = valid ? v : 0;
	} else if (!s->invalid && (!valid || s->secs != v)) {
		s->invalid = 1;
		s->secs = 0;
	}
}

static void apply(const struct directive *d, int malformed, const struct arg *a,
		  struct cachecontrol *cc)
{
	char *field = (char *)cc + d->off;
	uint32_t v = 0;
	int valid;

	if (d->kind == KIND_FLAG) {
		/* Every flag restricts or changes nothing here: counting a
		 * malformed one is the careful reading. */
		*(int *)(void *)field = 1;
		return;
	}
	if (d->kind == KIND_MAX_STALE && !malformed && !a->given) {
		cc->max_stale_any = 1;
		return;
	}
	valid = !malformed && a->given && delta_seconds(a->p, a->len, a->quoted, &v) == 0;
	record_seconds((struct cachecontrol_seconds *)(void *)field, valid, v);
}

/* Reads one member starting at *p (not OWS, not a comma) and moves *p to
 * the comma or end after it. */
static void read_member(enum cachecontrol_from from, const char **p, const char *end,
			struct cachecontrol *cc)
{
	const char *name = *p;
	const struct directive *d;
	struct arg a = { 0 };
	int malformed = 0;

	*p = skip_token(*p, end);
	d = directive_named(from, name, (size_t)(*p - name));
	if (*p == name)
		malformed = 1;
	else if (*p < end && **p == '=') {
		a.given = 1;
		(*p)++;
		a.p = *p;
		if (*p < end && **p == '"') {
			a.quoted = 1;
			a.p++;
			malformed = skip_quoted(p, end) < 0;
			a.len = malformed ? 0 : (size_t)(*p - a.p - 1);
		} else {
			*p = skip_token(*p, end);
			a.len = (size_t)(*p - a.p);
		}
	}
	skip_ows(p, end);
	if (*p < end && **p != ',') {
		malformed = 1;
		skip_member(p, end);
	}
	if (d)
		apply(d, malformed, &a, cc);
}

/* One line into cc; -1 when a bound stopped it (*count: members so far). */
static int read_line(enum cachecontrol_from from, const struct cachecontrol_line *l,
		     unsigned *count, struct cachecontrol *cc)
{
	const char *p, *end;

	if (line_span(l, &p, &end) < 0)
		return -1;
	while (next_member(&p, end)) {
		if (++*count > CACHECONTROL_DIRECTIVES_MAX)
			return -1;
		read_member(from, &p, end, cc);
	}
	return 0;
}

void cachecontrol_parse(enum cachecontrol_from from, const struct cachecontrol_line *lines,
			size_t n, struct cachecontrol *ret)
{
	unsigned count = 0;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n; i++) {
		if (read_line(from, &lines[i], &count, ret) < 0) {
			ret->overflow = 1;
			ret->no_store = 1;
			ret->no_cache = 1;
			break;
		}
	}
	if (ret->max_stale.present)
		ret->max_stale_any = 0;
}

/* ==== Vary =============================================================== */

/* Adds the name [p, p+len) (a token), lowercased, unless listed; -1 when
 * it cannot be kept. */
static int vary_add(struct cachecontrol_vary *v, const char *p, size_t len)
{
	char name[CACHECONTROL_VARY_NAME_MAX + 1];

	if (len > CACHECONTROL_VARY_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		name[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] | 0x20) : p[i];
	name[len] = '\0';
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->names[i], name) == 0)
			return 0;
	if (v->n == CACHECONTROL_VARY_MAX)
		return -1;
	memcpy(v->names[v->n++], name, len + 1);
	return 0;
}

static int vary_line(const struct cachecontrol_line *l, struct cachecontrol_vary *v)
{
	const char *p, *end, *name;

	if (line_span(l, &p, &end) < 0)
		return -1;
	while (next_member(&p, end)) {
		name = p;
		p = skip_token(p, end);
		if (p == name || (p - name == 1 && *name == '*'))
			return -1;
		if (vary_add(v, name, (size_t)(p - name)) < 0)
			return -1;
		skip_ows(&p, end);
		if (p < end && *p != ',')
			return -1;
	}
	return 0;
}

void cachecontrol_vary_parse(const struct cachecontrol_line *lines, size_t n,
			     struct cachecontrol_vary *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n; i++) {
		if (vary_line(&lines[i], ret) < 0) {
			memset(ret, 0, sizeof(*ret));
			ret->star = 1;
			return;
		}
	}
}

/* ==== freshness ========================================================== */

/* b - a in seconds, 0 when b is not later, at most CACHECONTROL_DELTA_MAX. */
static uint32_t seconds_after(int64_t a, int64_t b)
{
	uint64_t d;

	if (b <= a)
		return 0;
	d = (uint64_t)b - (uint64_t)a;
	return d > CACHECONTROL_DELTA_MAX ? CACHECONTROL_DELTA_MAX : (uint32_t)d;
}

/* The Age value: its first member (RFC 9111 5.1), 0 when absent or
 * invalid. */
static uint32_t age_value(const char *p, size_t len)
{
	const char *end, *comma;
	uint32_t v;

	if (!p)
		return 0;
	comma = memchr(p, ',', len);
	end = comma ? comma : p + len;
	skip_ows(&p, end);
	while (end > p && is_ows(end[-1]))
		end--;
	return delta_seconds(p, (size_t)(end - p), 0, &v) == 0 ? v : 0;
}

static uint32_t usable_stale(const struct cachecontrol_seconds *s)
{
	return s->present && !s->invalid ? s->secs : 0;
}

void cachecontrol_freshness(const struct cachecontrol_answer *a, int64_t now, uint32_t ttl_s,
			    struct cachecontrol_freshness *ret)
{
	static const struct cachecontrol none;
	const struct cachecontrol *cc = a->cc ? a->cc : &none;
	int64_t date = now, expires;
	uint32_t age;

	memset(ret, 0, sizeof(*ret));
	if (a->date && httpdate_parse(a->date, a->date_len, &date) < 0)
		date = now;
	ret->storable = !cc->no_store;
	if (cc->max_age.present) {
		ret->source = CACHECONTROL_FROM_MAX_AGE;
		ret->lifetime_s = cc->max_age.secs; /* 0 when invalid */
	} else if (a->expires) {
		/* An invalid Expires is a time in the past (RFC 9111 5.3). */
		ret->source = CACHECONTROL_FROM_EXPIRES;
		if (httpdate_parse(a->expires, a->expires_len, &expires) == 0)
			ret->lifetime_s = seconds_after(date, expires);
	} else {
		ret->source = CACHECONTROL_FROM_TTL;
		ret->lifetime_s = ttl_s > CACHECONTROL_DELTA_MAX ? CACHECONTROL_DELTA_MAX : ttl_s;
	}
	ret->age_s = seconds_after(date, now);
	age = age_value(a->age, a->age_len);
	if (age > ret->age_s)
		ret->age_s = age;
	ret->fresh = ret->lifetime_s > ret->age_s;
	ret->revalidate = cc->no_cache;
	ret->never_stale = cc->must_revalidate || cc->no_cache;
	if (!ret->never_stale) {
		ret->stale_while_revalidate_s = usable_stale(&cc->stale_while_revalidate);
		ret->stale_if_error_s = usable_stale(&cc->stale_if_error);
	}
}

/* Quota headers: a small RFC 8941 list parser for the IETF fields, strict
 * numbers for the older ones, and the most conservative of what was read. */
#include "ratelimit.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Remaining counts above this compare as equal (their products with a reset
 * of at most a day stay within 64 bits). */
#define REMAINING_CMP_CAP 10000000000000ULL

struct span {
	const char *p;
	size_t len;
};

struct num {
	int set;
	uint64_t v;
};

/* One member of a RateLimit or RateLimit-Policy list. */
struct member {
	struct span name;
	struct num a; /* r (RateLimit) or q (RateLimit-Policy) */
	struct num b; /* t (RateLimit) or w (RateLimit-Policy) */
};

struct ietf {
	int bad;
	size_t nrl, npol;
	struct member rl[RATELIMIT_ITEMS_MAX];
	struct member pol[RATELIMIT_ITEMS_MAX];
};

/* The three singleton fields of an older family, as sent. */
struct legacy {
	int bad;
	struct span f[3]; /* limit, remaining, reset; p NULL when absent */
};

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_lcalpha(int c)
{
	return c >= 'a' && c <= 'z';
}

static int name_is(const struct ratelimit_field *f, const char *name)
{
	size_t len = strlen(name);

	return f->name_len == len && strncasecmp(f->name, name, len) == 0;
}

static struct span trim(const char *p, size_t len)
{
	struct span s = { p, len };

	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.len--;
	}
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

/* 1-15 digits, nothing else. */
static int parse_digits(const char *p, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0 || len > RATELIMIT_DIGITS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit((unsigned char)p[i]))
			return -EINVAL;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*ret = v;
	return 0;
}

/* ==== RFC 8941 lists ===================================================== */

enum sf_type { SF_INTEGER, SF_DECIMAL, SF_STRING, SF_TOKEN, SF_BYTES, SF_BOOLEAN };

struct sf {
	const char *p, *end;
};

static int sf_peek(const struct sf *c)
{
	return c->p < c->end ? (unsigned char)*c->p : -1;
}

static void sf_skip_sp(struct sf *c)
{
	while (c->p < c->end && *c->p == ' ')
		c->p++;
}

static void sf_skip_ows(struct sf *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* An Integer or Decimal (RFC 8941 4.2.4): *ret_neg and *ret_v for an
 * Integer. */
static int sf_number(struct sf *c, enum sf_type *ret_type, int *ret_neg, uint64_t *ret_v)
{
	const char *start;
	size_t ndigits;
	int neg = 0;

	if (sf_peek(c) == '-') {
		neg = 1;
		c->p++;
	}
	start = c->p;
	while (c->p < c->end && is_digit((unsigned char)*c->p))
		c->p++;
	ndigits = (size_t)(c->p - start);
	if (ndigits == 0)
		return -EINVAL;
	if (sf_peek(c) == '.') {
		const char *frac = ++c->p;

		if (ndigits > 12)
			return -EINVAL;
		while (c->p < c->end && is_digit((unsigned char)*c->p))
			c->p++;
		if (c->p == frac || c->p - frac > 3)
			return -EINVAL;
		*ret_type = SF_DECIMAL;
		return 0;
	}
	if (parse_digits(start, ndigits, ret_v) < 0)
		return -EINVAL;
	*ret_neg = neg;
	*ret_type = SF_INTEGER;
	return 0;
}

/* A bare item; *ret_span covers a String's or Token's text as sent. */
static int sf_bare_item(struct sf *c, enum sf_type *ret_type, int *ret_neg, uint64_t *ret_v,
			struct span *ret_span)
{
	int ch = sf_peek(c);
	const char *start = c->p;

	if (ch == '-' || is_digit(ch))
		return sf_number(c, ret_type, ret_neg, ret_v);
	if (ch == '"') {
		for (c->p++; c->p < c->end; c->p++) {
			unsigned char b = (unsigned char)*c->p;

			if (b == '\\') {
				if (++c->p == c->end || (*c->p != '"' && *c->p != '\\'))
					return -EINVAL;
			} else if (b == '"') {
				c->p++;
				ret_span->p = start;
				ret_span->len = (size_t)(c->p - start);
				*ret_type = SF_STRING;
				return 0;
			} else if (b < 0x20 || b > 0x7e) {
				return -EINVAL;
			}
		}
		return -EINVAL;
	}
	if (ch == '*' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
		for (c->p++; c->p < c->end; c->p++) {
			unsigned char b = (unsigned char)*c->p;

			if (!(b >= 'a' && b <= 'z') && !(b >= 'A' && b <= 'Z') && !is_digit(b) &&
			    !(b && strchr("!#$%&'*+-.^_`|~:/", b)))
				break;
		}
		ret_span->p = start;
		ret_span->len = (size_t)(c->p - start);
		*ret_type = SF_TOKEN;
		return 0;
	}
	if (ch == ':') {
		for (c->p++; c->p < c->end && *c->p != ':'; c->p++) {
			unsigned char b = (unsigned char)*c->p;

			if (!(b >= 'a' && b <= 'z') && !(b >= 'A' && b <= 'Z') && !is_digit(b) &&
			    b != '+' && b != '/' && b != '=')
				return -EINVAL;
		}
		if (c->p == c->end)
			return -EINVAL;
		c->p++;
		*ret_type = SF_BYTES;
		return 0;
	}
	if (ch == '?') {
		c->p++;
		if (sf_peek(c) != '0' && sf_peek(c) != '1')
			return -EINVAL;
		c->p++;
		*ret_type = SF_BOOLEAN;
		return 0;
	}
	return -EINVAL;
}

/* A parameter value of ours: a non-negative Integer. */
static int sf_param_num(int present, enum sf_type type, int neg, uint64_t v, struct num *ret)
{
	if (!present || type != SF_INTEGER || neg)
		return -EINVAL;
	ret->set = 1;
	ret->v = v;
	return 0;
}

/* The parameters after a member's bare item: ka and kb are the names of
 * the two we read (r and t, or q and w); the last of a repeated key wins
 * (RFC 8941 4.2.3.2). */
static int sf_params(struct sf *c, char ka, char kb, struct member *m)
{
	while (sf_peek(c) == ';') {
		const char *key;
		size_t klen;
		enum sf_type type = SF_BOOLEAN;
		struct span span;
		uint64_t v = 0;
		int neg = 0, has_value = 0, r = 0;

		c->p++;
		sf_skip_sp(c);
		key = c->p;
		if (!is_lcalpha(sf_peek(c)) && sf_peek(c) != '*')
			return -EINVAL;
		while (c->p < c->end &&
		       (is_lcalpha((unsigned char)*c->p) || is_digit((unsigned char)*c->p) ||
			(*c->p && strchr("_-.*", *c->p))))
			c->p++;
		klen = (size_t)(c->p - key);
		if (sf_peek(c) == '=') {
			c->p++;
			if (sf_bare_item(c, &type, &neg, &v, &span) < 0)
				return -EINVAL;
			has_value = 1;
		}
		if (klen == 1 && key[0] == ka)
			r = sf_param_num(has_value, type, neg, v, &m->a);
		else if (klen == 1 && key[0] == kb)
			r = sf_param_num(has_value, type, neg, v, &m->b);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One line of a RateLimit (ka 'r', kb 't') or RateLimit-Policy ('q', 'w')
 * list, its members appended to m[*n..RATELIMIT_ITEMS_MAX). An empty line
 * is an empty list. */
static int sf_list(const char *p, size_t len, char ka, char kb, struct member *m, size_t *n)
{
	struct span s = trim(p, len);
	struct sf c = { s.p, s.p + s.len };

	if (len > RATELIMIT_VALUE_MAX)
		return -EINVAL;
	while (c.p < c.end) {
		struct member *cur;
		enum sf_type type;
		struct span name = { NULL, 0 };
		uint64_t v;
		int neg;

		if (*n == RATELIMIT_ITEMS_MAX)
			return -EINVAL;
		cur = &m[*n];
		memset(cur, 0, sizeof(*cur));
		if (sf_bare_item(&c, &type, &neg, &v, &name) < 0)
			return -EINVAL;
		if (type != SF_STRING && type != SF_TOKEN)
			return -EINVAL;
		cur->name = name;
		if (sf_params(&c, ka, kb, cur) < 0 || !cur->a.set)
			return -EINVAL;
		(*n)++;
		sf_skip_ows(&c);
		if (c.p == c.end)
			break;
		if (*c.p != ',')
			return -EINVAL;
		c.p++;
		sf_skip_ows(&c);
		if (c.p == c.end) /* a trailing comma */
			return -EINVAL;
	}
	return 0;
}

/* ==== choosing =========================================================== */

/* 1 when a is stricter than b: fewer remaining per second; a reset of 0
 * constrains nothing; on a tie the longer reset. */
static int stricter(const struct ratelimit_quota *a, const struct ratelimit_quota *b)
{
	uint64_t ra = a->remaining < REMAINING_CMP_CAP ? a->remaining : REMAINING_CMP_CAP;
	uint64_t rb = b->remaining < REMAINING_CMP_CAP ? b->remaining : REMAINING_CMP_CAP;

	if (a->reset_s == 0)
		return 0;
	if (b->reset_s == 0)
		return 1;
	/* ra / a->reset_s < rb / b->reset_s, both resets ≤ one day */
	if (ra * b->reset_s != rb * a->reset_s)
		return ra * b->reset_s < rb * a->reset_s;
	return a->reset_s > b->reset_s;
}

static void clamp_reset(struct ratelimit_quota *q, uint64_t secs)
{
	q->reset_clamped = secs > RATELIMIT_RESET_MAX_S;
	q->reset_s = q->reset_clamped ? RATELIMIT_RESET_MAX_S : secs;
}

/* Keeps cand in *best when it is the first or stricter. */
static void consider(struct ratelimit_quota *best, int *have, const struct ratelimit_quota *cand)
{
	if (!*have || stricter(cand, best)) {
		unsigned families = best->families;

		*best = *cand;
		best->families = families;
	}
	*have = 1;
	best->families |= RATELIMIT_FAMILY_BIT(cand->family);
}

static const struct member *policy_named(const struct ietf *in, struct span name)
{
	for (size_t i = 0; i < in->npol; i++)
		if (in->pol[i].name.len == name.len &&
		    memcmp(in->pol[i].name.p, name.p, name.len) == 0)
			return &in->pol[i];
	return NULL;
}

static void ietf_quota(const struct ietf *in, struct ratelimit_quota *best, int *have)
{
	for (size_t i = 0; i < in->nrl; i++) {
		const struct member *m = &in->rl[i], *pol = policy_named(in, m->name);
		struct ratelimit_quota q = { .family = RATELIMIT_IETF };

		if (!m->b.set && !(pol && pol->b.set))
			continue; /* no reset known: not a quota */
		q.remaining = m->a.v;
		clamp_reset(&q, m->b.set ? m->b.v : pol->b.v);
		if (pol) {
			q.has_limit = 1;
			q.limit = pol->a.v;
			if (pol->b.set)
				q.window_s = pol->b.v < RATELIMIT_RESET_MAX_S
						 ? pol->b.v
						 : RATELIMIT_RESET_MAX_S;
		}
		consider(best, have, &q);
	}
}

/* -Limit: a number, or (older drafts) a number then a policy list. */
static int legacy_limit(struct span s, uint64_t *ret)
{
	size_t n = 0;

	while (n < s.len && is_digit((unsigned char)s.p[n]))
		n++;
	if (n < s.len) {
		struct span rest = trim(s.p + n, s.len - n);

		if (rest.len == 0 || (rest.p[0] != ',' && rest.p[0] != ';'))
			return -EINVAL;
	}
	return parse_digits(s.p, n, ret);
}

static void legacy_quota(const struct legacy *in, enum ratelimit_family family, int64_t now_epoch,
			 struct ratelimit_quota *best, int *have)
{
	struct ratelimit_quota q = { .family = family };
	uint64_t reset;

	if (in->bad || !in->f[1].p || !in->f[2].p)
		return;
	if (parse_digits(in->f[1].p, in->f[1].len, &q.remaining) < 0 ||
	    parse_digits(in->f[2].p, in->f[2].len, &reset) < 0)
		return;
	if (in->f[0].p) {
		if (legacy_limit(in->f[0], &q.limit) < 0)
			return;
		q.has_limit = 1;
	}
	if (family == RATELIMIT_X && reset > RATELIMIT_EPOCH_MIN) {
		uint64_t now = now_epoch > 0 ? (uint64_t)now_epoch : 0;

		reset = reset > now ? reset - now : 0;
	}
	clamp_reset(&q, reset);
	consider(best, have, &q);
}

/* Records one field of an older family: a repeat must say the same. */
static void legacy_field(struct legacy *l, int which, const struct ratelimit_field *f)
{
	struct span v = trim(f->value, f->value_len);

	if (f->value_len > RATELIMIT_VALUE_MAX) {
		l->bad = 1;
		return;
	}
	if (l->f[which].p && (l->f[which].len != v.len || memcmp(l->f[which].p, v.p, v.len) != 0))
		l->bad = 1;
	/* An empty value is an empty span that is present. */
	l->f[which] = v.p ? v : (struct span){ "", 0 };
}

int ratelimit_read(const struct ratelimit_field *fields, size_t n, int64_t now_epoch,
		   struct ratelimit_quota *ret)
{
	static const char *const draft_names[3] = { "RateLimit-Limit", "RateLimit-Remaining",
						    "RateLimit-Reset" };
	static const char *const x_names[3] = { "X-RateLimit-Limit", "X-RateLimit-Remaining",
						"X-RateLimit-Reset" };
	struct ietf ietf;
	struct legacy draft, x;
	struct ratelimit_quota best;
	int have = 0;

	memset(&ietf, 0, sizeof(ietf));
	memset(&draft, 0, sizeof(draft));
	memset(&x, 0, sizeof(x));
	memset(&best, 0, sizeof(best));
	for (size_t i = 0; i < n; i++) {
		const struct ratelimit_field *f = &fields[i];

		/* Every answer comes here: most names are dismissed by their first
		 * letter. */
		if (!f->name || f->name_len == 0 || (!f->value && f->value_len) ||
		    ((f->name[0] | 0x20) != 'r' && (f->name[0] | 0x20) != 'x'))
			continue;
		if (name_is(f, "RateLimit")) {
			if (!ietf.bad &&
			    sf_list(f->value, f->value_len, 'r', 't', ietf.rl, &ietf.nrl) < 0)
				ietf.bad = 1;
			continue;
		}
		if (name_is(f, "RateLimit-Policy")) {
			if (!ietf.bad &&
			    sf_list(f->value, f->value_len, 'q', 'w', ietf.pol, &ietf.npol) < 0)
				ietf.bad = 1;
			continue;
		}
		for (int k = 0; k < 3; k++) {
			if (name_is(f, draft_names[k]))
				legacy_field(&draft, k, f);
			else if (name_is(f, x_names[k]))
				legacy_field(&x, k, f);
		}
	}
	if (!ietf.bad)
		ietf_quota(&ietf, &best, &have);
	legacy_quota(&draft, RATELIMIT_DRAFT, now_epoch, &best, &have);
	legacy_quota(&x, RATELIMIT_X, now_epoch, &best, &have);
	if (!have)
		return -ENOENT;
	*ret = best;
	return 0;
}

/* Fuzz target: cachecontrol_parse() over the input's lines (one field line
 * each, up to LINES_MAX), read as an answer's and as a request's, then the
 * freshness of an answer whose Date, Expires and Age are the second, third
 * and fourth lines. The result is the same read twice, keeps its bounds
 * (2^31, an invalid value 0, each direction's directives only), the first
 * two lines read as one joined with ", " (when no quoted-string spans the
 * cut) give the same, a "no-store" line added is never stored, and the
 * freshness agrees with the directives it came from. */
#include "cachecontrol.h"
#include "fuzz.h"

#define LINES_MAX 8
#define NOW 1785000000 /* 2026-07-25T17:20:00Z */

static void check_secs(const struct cachecontrol_seconds *s)
{
	if (s->secs > CACHECONTROL_DELTA_MAX || (s->invalid && (!s->present || s->secs)) ||
	    (!s->present && s->secs) || (unsigned)s->present > 1 || (unsigned)s->invalid > 1)
		abort();
}

static void check_bounds(enum cachecontrol_from from, const struct cachecontrol *cc)
{
	check_secs(&cc->max_age);
	check_secs(&cc->s_maxage);
	check_secs(&cc->stale_while_revalidate);
	check_secs(&cc->stale_if_error);
	check_secs(&cc->max_stale);
	check_secs(&cc->min_fresh);
	if (cc->overflow && !(cc->no_store && cc->no_cache))
		abort();
	if (cc->max_stale_any && cc->max_stale.present)
		abort();
	if (from == CACHECONTROL_RESPONSE && (cc->max_stale.present || cc->max_stale_any ||
					      cc->min_fresh.present || cc->only_if_cached))
		abort();
	if (from == CACHECONTROL_REQUEST &&
	    (cc->s_maxage.present || cc->stale_while_revalidate.present || cc->private ||
	     cc->public || cc->must_revalidate || cc->proxy_revalidate))
		abort();
}

static void parse(enum cachecontrol_from from, const struct cachecontrol_line *l, size_t n,
		  struct cachecontrol *ret)
{
	struct cachecontrol again;

	cachecontrol_parse(from, l, n, ret);
	cachecontrol_parse(from, l, n, &again);
	if (memcmp(ret, &again, sizeof(again)) != 0)
		abort();
	check_bounds(from, ret);
}

/* 1 when a quoted-string opened in [p, p+len) is still open at its end
 * (any '"' opens one, as in a malformed member). */
static int quote_open(const char *p, size_t len)
{
	int in = 0;

	for (size_t i = 0; i < len; i++) {
		if (in && p[i] == '\\')
			i++;
		else if (p[i] == '"')
			in = !in;
	}
	return in;
}

static void check_joined(enum cachecontrol_from from, const struct cachecontrol_line *l)
{
	size_t len = l[0].len + 2 + l[1].len;
	struct cachecontrol_line one;
	struct cachecontrol split, joined;
	char *buf;

	if (len > CACHECONTROL_LINE_MAX || quote_open(l[0].p, l[0].len))
		return;
	buf = malloc(len);
	if (!buf)
		return;
	memcpy(buf, l[0].p, l[0].len);
	memcpy(buf + l[0].len, ", ", 2);
	memcpy(buf + l[0].len + 2, l[1].p, l[1].len);
	one = (struct cachecontrol_line){ buf, len };
	parse(from, l, 2, &split);
	parse(from, &one, 1, &joined);
	if (memcmp(&split, &joined, sizeof(joined)) != 0)
		abort();
	free(buf);
}

static void check_freshness(const struct cachecontrol *cc, const struct cachecontrol_line *l,
			    size_t n)
{
	struct cachecontrol_answer a = { .cc = cc };
	struct cachecontrol_freshness f, again;

	if (n > 1) {
		a.date = l[1].p;
		a.date_len = l[1].len;
	}
	if (n > 2) {
		a.expires = l[2].p;
		a.expires_len = l[2].len;
	}
	if (n > 3) {
		a.age = l[3].p;
		a.age_len = l[3].len;
	}
	cachecontrol_freshness(&a, NOW, 300, &f);
	cachecontrol_freshness(&a, NOW, 300, &again);
	if (memcmp(&f, &again, sizeof(f)) != 0)
		abort();
	if (f.lifetime_s > CACHECONTROL_DELTA_MAX || f.age_s > CACHECONTROL_DELTA_MAX ||
	    f.fresh != (f.lifetime_s > f.age_s) || f.storable != !cc->no_store ||
	    f.revalidate != cc->no_cache ||
	    f.never_stale != (cc->no_cache || cc->must_revalidate) ||
	    (f.never_stale && (f.stale_while_revalidate_s || f.stale_if_error_s)) ||
	    f.stale_while_revalidate_s > cc->stale_while_revalidate.secs ||
	    f.stale_if_error_s > cc->stale_if_error.secs)
		abort();
	if ((f.source == CACHECONTROL_FROM_MAX_AGE) != cc->max_age.present ||
	    (f.source == CACHECONTROL_FROM_MAX_AGE && f.lifetime_s != cc->max_age.secs) ||
	    (f.source == CACHECONTROL_FROM_EXPIRES && !a.expires) ||
	    (f.source == CACHECONTROL_FROM_TTL && f.lifetime_s != 300))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cachecontrol_line l[LINES_MAX + 1];
	char *copy[LINES_MAX];
	size_t lens[LINES_MAX];
	struct cachecontrol cc, more;
	size_t n = fuzz_lines(data, size, copy, lens, LINES_MAX);

	for (size_t i = 0; i < n; i++)
		l[i] = (struct cachecontrol_line){ copy[i], lens[i] };
	for (int from = CACHECONTROL_RESPONSE; from <= CACHECONTROL_REQUEST; from++) {
		parse((enum cachecontrol_from)from, l, n, &cc);
		if (n >= 2)
			check_joined((enum cachecontrol_from)from, l);
	}
	parse(CACHECONTROL_RESPONSE, l, n, &cc);
	check_freshness(&cc, l, n);
	l[n] = (struct cachecontrol_line){ "no-store", 8 };
	parse(CACHECONTROL_RESPONSE, l, n + 1, &more);
	if (!more.no_store)
		abort();
	fuzz_free_lines(copy, n);
	return 0;
}

/* Fuzz target: ratelimit_read() over an answer's head. The input is split
 * into lines, each "Name: value" a field (a line without a colon is
 * skipped); the same input's first line is also read as a RateLimit and a
 * RateLimit-Policy value. A quota, when there is one, keeps the parser's
 * promises (at most 15 digits, a reset of at most a day, the day clamp
 * flagged, its family among the families read), and learning it makes a
 * limiter wait no longer than its reset. */
#include <errno.h>

#include "gcra.h"
#include "ratelimit.h"
#include "fuzz.h"

#define FIELDS_MAX 64
#define NOW_EPOCH 1785000000 /* 2026-07-25T17:20:00Z */
#define NOW_US 5000000000ULL
#define NUMBER_MAX 999999999999999ULL

static void check(const struct ratelimit_field *f, size_t n)
{
	struct ratelimit_quota q;
	struct gcra g;
	struct gcra_slot s;
	int r = ratelimit_read(f, n, NOW_EPOCH, &q);

	if (r == -ENOENT)
		return;
	if (r != 0)
		abort();
	if (q.remaining > NUMBER_MAX || q.reset_s > RATELIMIT_RESET_MAX_S ||
	    (q.reset_clamped && q.reset_s != RATELIMIT_RESET_MAX_S) ||
	    (q.has_limit && q.limit > NUMBER_MAX) || q.family > RATELIMIT_X ||
	    !(q.families & RATELIMIT_FAMILY_BIT(q.family)) ||
	    (q.families &
	     ~(RATELIMIT_FAMILY_BIT(RATELIMIT_IETF) | RATELIMIT_FAMILY_BIT(RATELIMIT_DRAFT) |
	       RATELIMIT_FAMILY_BIT(RATELIMIT_X))))
		abort();
	gcra_init(&g);
	r = gcra_learn(&g, q.remaining, NOW_US + q.reset_s * 1000000, NOW_US);
	if ((r != 0) != (q.reset_s == 0))
		abort();
	for (int k = 0; k < 3; k++) {
		gcra_reserve(&g, NOW_US, UINT64_MAX, &s);
		if (s.verdict == GCRA_REFUSED || s.at_us > NOW_US + q.reset_s * 1000000)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct ratelimit_field f[FIELDS_MAX];
	size_t n = 0, first_len;
	const char *first = p, *nl;

	while (p < end && n < FIELDS_MAX) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		const char *colon = memchr(p, ':', (size_t)(line_end - p));

		if (colon) {
			const char *v_end = line_end;

			if (v_end > colon + 1 && v_end[-1] == '\r')
				v_end--;
			f[n].name = p;
			f[n].name_len = (size_t)(colon - p);
			f[n].value = colon + 1;
			f[n].value_len = (size_t)(v_end - colon - 1);
			n++;
		}
		p = eol ? eol + 1 : end;
	}
	check(f, n);

	nl = memchr(first, '\n', size);
	first_len = nl ? (size_t)(nl - first) : size;
	f[0] = (struct ratelimit_field){ "RateLimit", 9, first, first_len };
	f[1] = (struct ratelimit_field){ "RateLimit-Policy", 16, first, first_len };
	check(f, 2);
	return 0;
}

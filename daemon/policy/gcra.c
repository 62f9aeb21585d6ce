/* GCRA over one theoretical arrival time, and the announced quota as a
 * second, unbursted GCRA that ends at its reset. All arithmetic saturates. */
#include "gcra.h"

#include <errno.h>
#include <string.h>

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* a / b rounded up, b > 0. */
static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

void gcra_init(struct gcra *g)
{
	memset(g, 0, sizeof(*g));
}

int gcra_configure(struct gcra *g, uint32_t count, uint64_t per_us, uint32_t burst)
{
	uint64_t t_ns;

	if (count == 0) {
		g->count = 0;
		g->per_us = 0;
		g->burst = 0;
		g->t_ns = 0;
		g->tau_ns = 0;
		g->gen++;
		return 0;
	}
	if (count > GCRA_COUNT_MAX || per_us == 0 || per_us > GCRA_PERIOD_MAX_US || burst == 0 ||
	    burst > GCRA_BURST_MAX)
		return -EINVAL;
	/* per_us ≤ one day: per_us × 1000 fits easily. Rounded up: never faster
	 * than configured. */
	if (per_us * 1000 < count)
		return -EINVAL;
	t_ns = div_up(per_us * 1000, count);
	g->count = count;
	g->per_us = per_us;
	g->burst = burst;
	g->t_ns = t_ns;
	g->tau_ns = sat_mul(t_ns, burst);
	g->gen++;
	return 0;
}

int gcra_reconfigure(struct gcra *g, uint32_t count, uint64_t per_us, uint32_t burst,
		     uint64_t now_us)
{
	uint64_t old_t = g->count ? g->t_ns : 0, now_ns = sat_mul(now_us, 1000);
	int r = gcra_configure(g, count, per_us, burst);

	if (r < 0 || !old_t || !g->count || g->tat_ns <= now_ns)
		return r;
	/* The slots granted ahead, at the new spacing (in long double: the
	 * product of two ns quantities overflows 64 bits). */
	g->tat_ns = sat_add(now_ns, (uint64_t)((long double)(g->tat_ns - now_ns) *
					       (long double)g->t_ns / (long double)old_t));
	return 0;
}

/* 1 while a learned limit holds at now_ns (it ends at its reset). */
static int learned_at(const struct gcra *g, uint64_t now_ns)
{
	return g->learned && now_ns < g->reset_ns;
}

/* 1 while the window after a learned limit's reset paces at the announced
 * quota (gcra_learn_next()). */
static int renewed_at(const struct gcra *g, uint64_t now_ns)
{
	return g->learned && g->nt_ns && now_ns >= g->reset_ns && now_ns < g->nend_ns;
}

/* The first slot from `from` on (at or after the reset) in the renewed
 * window: spaced when its quota is known, else `from`. */
static uint64_t renewal_slot(const struct gcra *g, uint64_t from)
{
	return g->nt_ns ? max_u64(g->ntat_ns, from) : from;
}

/* The earliest start at now_ns that both limits allow; *ret_by says which
 * set it. */
static uint64_t next_start(const struct gcra *g, uint64_t now_ns, enum gcra_by *ret_by)
{
	uint64_t start = now_ns;

	*ret_by = GCRA_BY_NONE;
	if (g->count) {
		uint64_t tat = sat_add(max_u64(g->tat_ns, now_ns), g->t_ns);
		uint64_t s = tat > g->tau_ns ? tat - g->tau_ns : 0;

		if (s > start) {
			start = s;
			*ret_by = GCRA_BY_CONFIGURED;
		}
	}
	if (learned_at(g, now_ns) || renewed_at(g, now_ns)) {
		uint64_t s =
		    learned_at(g, now_ns) && g->left ? max_u64(g->ltat_ns, now_ns) : now_ns;

		/* At the reset the learned limit is over: it never holds an
		 * attempt longer than that, and from then on the renewed
		 * window's quota spaces the attempts, when it is known (those
		 * that waited for the reset do not all go at once). */
		if (s >= g->reset_ns || (learned_at(g, now_ns) && g->left == 0))
			s = renewal_slot(g, max_u64(s, g->reset_ns));
		if (s > start) {
			start = s;
			*ret_by = GCRA_BY_LEARNED;
		}
	}
	return start;
}

enum gcra_verdict gcra_reserve(struct gcra *g, uint64_t now_us, uint64_t max_wait_us,
			       struct gcra_slot *ret)
{
	return gcra_reserve_after(g, now_us, now_us, max_wait_us, ret);
}

enum gcra_verdict gcra_reserve_after(struct gcra *g, uint64_t now_us, uint64_t after_us,
				     uint64_t max_wait_us, struct gcra_slot *ret)
{
	uint64_t now_ns = sat_mul(now_us, 1000), start, wait_us;
	enum gcra_by by;

	if (g->learned && !learned_at(g, now_ns) && !renewed_at(g, now_ns))
		g->learned = 0;
	start = next_start(g, now_ns, &by);
	if (after_us > now_us && sat_mul(after_us, 1000) > start) {
		start = sat_mul(after_us, 1000);
		by = GCRA_BY_CONFIGURED;
	}
	/* Rounded up: the caller never starts before its slot. */
	wait_us = div_up(start - now_ns, 1000);
	memset(ret, 0, sizeof(*ret));
	ret->by = by;
	ret->wait_us = wait_us;
	ret->at_us = sat_add(now_us, wait_us);
	if (wait_us > max_wait_us) {
		ret->verdict = GCRA_REFUSED;
		return ret->verdict;
	}
	g->undo_tat_ns = g->tat_ns;
	g->undo_ltat_ns = g->ltat_ns;
	g->undo_left = g->left;
	g->undo_ntat_ns = g->ntat_ns;
	/* The attempt arrives at start: it conforms to both limits there. */
	if (g->count)
		g->tat_ns = sat_add(max_u64(g->tat_ns, start), g->t_ns);
	if (g->learned && start < g->reset_ns && g->left > 0) {
		g->ltat_ns = sat_add(max_u64(g->ltat_ns, start), g->lt_ns);
		g->left--;
	} else if (g->learned && g->nt_ns && start >= g->reset_ns && start < g->nend_ns) {
		g->ntat_ns = sat_add(max_u64(g->ntat_ns, start), g->nt_ns);
	}
	ret->ticket = ++g->gen;
	ret->verdict = wait_us ? GCRA_WAIT : GCRA_GO;
	return ret->verdict;
}

int gcra_release(struct gcra *g, const struct gcra_slot *slot)
{
	if (slot->verdict == GCRA_REFUSED || slot->ticket == 0 || slot->ticket != g->gen)
		return 0;
	g->tat_ns = g->undo_tat_ns;
	g->ltat_ns = g->undo_ltat_ns;
	g->left = g->undo_left;
	g->ntat_ns = g->undo_ntat_ns;
	g->gen++;
	return 1;
}

int gcra_learn(struct gcra *g, uint64_t remaining, uint64_t reset_at_us, uint64_t now_us)
{
	uint64_t now_ns = sat_mul(now_us, 1000), reset_ns, first;

	if (reset_at_us <= now_us)
		return -EINVAL;
	if (reset_at_us - now_us > GCRA_LEARN_MAX_US)
		reset_at_us = now_us + GCRA_LEARN_MAX_US;
	reset_ns = sat_mul(reset_at_us, 1000);
	if (reset_ns <= now_ns)
		return -EINVAL;
	first = now_ns;
	if (learned_at(g, now_ns) && g->ltat_ns > first) {
		/* Never later than one new spacing from now: a newer, looser
		 * announcement is not held back by the older one's slots. */
		uint64_t bound =
		    remaining ? sat_add(now_ns, div_up(reset_ns - now_ns, remaining)) : g->ltat_ns;

		first = g->ltat_ns < bound ? g->ltat_ns : bound;
	}
	g->learned = 1;
	g->reset_ns = reset_ns;
	g->nt_ns = 0; /* gcra_learn_next() says what follows the reset */
	g->left = remaining;
	g->ltat_ns = first;
	/* Rounded up: the remaining-th attempt after first falls at or after
	 * the reset. */
	g->lt_ns = remaining && first < reset_ns ? div_up(reset_ns - first, remaining) : 0;
	g->gen++;
	return 0;
}

int gcra_learn_next(struct gcra *g, uint64_t count, uint64_t window_us)
{
	if (!g->learned || !count || !window_us)
		return -EINVAL;
	if (window_us > GCRA_LEARN_MAX_US)
		window_us = GCRA_LEARN_MAX_US;
	/* Rounded up: never faster than announced. */
	g->nt_ns = div_up(sat_mul(window_us, 1000), count);
	g->nend_ns = sat_add(g->reset_ns, sat_mul(window_us, 1000));
	g->ntat_ns = g->reset_ns;
	g->gen++;
	return 0;
}

void gcra_snapshot(const struct gcra *g, uint64_t now_us, struct gcra_snapshot *ret)
{
	uint64_t now_ns = sat_mul(now_us, 1000), start;

	memset(ret, 0, sizeof(*ret));
	ret->count = g->count;
	ret->per_us = g->per_us;
	ret->burst = g->burst;
	if (learned_at(g, now_ns)) {
		ret->learned = 1;
		ret->learned_remaining = g->left;
		ret->learned_reset_us = div_up(g->reset_ns, 1000);
	}
	start = next_start(g, now_ns, &ret->next_by);
	ret->next_free_us = sat_add(now_us, div_up(start - now_ns, 1000));
}

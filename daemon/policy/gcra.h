/* Outbound rate limit of one upstream (SPEC 4.12): a GCRA limiter (as in
 * redis-cell and Stripe's) in constant memory and without a timer per
 * request, plus the limit an upstream announced in its quota headers; the
 * stricter of the two applies to every reservation.
 * Pure: the caller passes "now" in µs on the monotonic clock; plain data. */
#ifndef BRACED_GCRA_H
#define BRACED_GCRA_H

#include <stdint.h>

/* Most attempts per period a configured rate may name (with at least 1 ns
 * between two attempts). */
#define GCRA_COUNT_MAX 1000000000u
/* Longest period a configured rate may name: one day. */
#define GCRA_PERIOD_MAX_US (86400ULL * 1000000)
/* Largest burst. */
#define GCRA_BURST_MAX 1000000u
/* A learned reset farther than this from now counts as this far (one day). */
#define GCRA_LEARN_MAX_US (86400ULL * 1000000)

enum gcra_verdict {
	GCRA_GO,      /* start now: the slot is taken */
	GCRA_WAIT,    /* start at at_us: the slot is taken, later reservations queue behind */
	GCRA_REFUSED, /* the wait exceeds max_wait: nothing taken; retry after wait_us */
};

/* Which limit set a reservation's time. */
enum gcra_by {
	GCRA_BY_NONE,       /* neither: the attempt starts now */
	GCRA_BY_CONFIGURED, /* the configured rate and burst */
	GCRA_BY_LEARNED,    /* the quota the upstream announced */
};

/* What gcra_reserve() decided. */
struct gcra_slot {
	enum gcra_verdict verdict;
	enum gcra_by by;
	uint64_t at_us; /* when the attempt may start (now for GO; for REFUSED the slot refused) */
	uint64_t wait_us; /* at_us - now: 0 for GO, the Retry-After for REFUSED */
	uint64_t ticket;  /* identifies the reservation for gcra_release() */
};

/* The limiter, for /status. */
struct gcra_snapshot {
	uint32_t count;  /* configured attempts per period; 0: no configured rate */
	uint64_t per_us; /* the period */
	uint32_t burst;
	int learned;                /* 1 while a learned limit is in force */
	uint64_t learned_remaining; /* attempts it still lets start before its reset */
	uint64_t learned_reset_us;  /* its reset, on the caller's clock */
	uint64_t next_free_us;      /* when an attempt reserved now would start */
	enum gcra_by next_by;       /* which limit sets next_free_us */
};

/* Plain data: gcra_init() before use; no heap, nothing to release. Times are
 * kept in ns (so that 10^6/s and 3/s space exactly enough), saturating. */
struct gcra {
	/* configured */
	uint32_t count;
	uint64_t per_us;
	uint32_t burst;
	uint64_t t_ns;   /* emission interval: per / count, rounded up */
	uint64_t tau_ns; /* tolerance: burst × t_ns, saturating */
	uint64_t tat_ns; /* theoretical arrival time of the next attempt */
	/* learned */
	int learned;
	uint64_t reset_ns;
	uint64_t left;    /* attempts still allowed to start before reset_ns */
	uint64_t lt_ns;   /* learned spacing */
	uint64_t ltat_ns; /* next learned slot */
	/* after the learned reset: the renewed window's spacing until nend */
	uint64_t nt_ns, nend_ns, ntat_ns;
	/* the undo of the last reservation (gcra_release) */
	uint64_t gen;
	uint64_t undo_tat_ns, undo_ltat_ns, undo_left, undo_ntat_ns;
};

/* An idle limiter with no configured rate and nothing learned: every
 * reservation goes at once. */
void gcra_init(struct gcra *g);

/* Sets the configured rate: count attempts per per_us, burst of them at once.
 * count 0 turns the configured rate off (per_us and burst unread). Rejects
 * (-EINVAL, g unchanged) count above GCRA_COUNT_MAX, per_us of 0 or above
 * GCRA_PERIOD_MAX_US, burst of 0 or above GCRA_BURST_MAX, and a rate whose
 * attempts would be less than 1 ns apart. Keeps the schedule (a reload
 * changes the rate, not the reservations already granted). Returns 0. */
int gcra_configure(struct gcra *g, uint32_t count, uint64_t per_us, uint32_t burst);

/* As gcra_configure(), and the schedule ahead of now_us rescaled to the
 * new spacing: the slots granted ahead keep their number, not their
 * length, so a rate raised (a reload, a fleet's slice) takes effect at
 * once instead of after the old rate's backlog. */
int gcra_reconfigure(struct gcra *g, uint32_t count, uint64_t per_us, uint32_t burst,
		     uint64_t now_us);

/* Reserves the next slot for one attempt at now_us, waiting at most
 * max_wait_us. GO and WAIT take the slot (a later reservation never starts
 * before an earlier one); REFUSED takes nothing and says how long until the
 * slot it would have had (the Retry-After). The slot is the later of the
 * configured one (TAT − tolerance) and the learned one (evenly spaced, at
 * the reset once the announced remaining is spent). Fills *ret, returns
 * ret->verdict. */
enum gcra_verdict gcra_reserve(struct gcra *g, uint64_t now_us, uint64_t max_wait_us,
			       struct gcra_slot *ret);

/* As gcra_reserve(), and never before after_us (a slot the fleet leased,
 * SPEC 4.12): a start set by after_us counts as GCRA_BY_CONFIGURED. */
enum gcra_verdict gcra_reserve_after(struct gcra *g, uint64_t now_us, uint64_t after_us,
				     uint64_t max_wait_us, struct gcra_slot *ret);

/* Gives back a GO or WAIT slot whose attempt was never sent (the app left
 * while it waited). Only the most recent reservation can be given back, and
 * only while nothing happened since (no other reserve, release, learn or
 * configure): an earlier slot stays taken, for the slots behind it are
 * fixed and one TAT cannot hold a hole; that only under-spends the rate.
 * Returns 1 when the slot was given back, 0 when it stays taken. */
int gcra_release(struct gcra *g, const struct gcra_slot *slot);

/* Learns the quota an upstream announced at now_us: at most remaining more
 * attempts start before reset_at_us, spread evenly over the time left
 * (remaining 0: none until the reset). A reset more than GCRA_LEARN_MAX_US
 * away counts as that far. The latest announcement replaces the previous
 * one, but its spacing begins at the previous one's next slot when that is
 * later than now (each answer of a paced run re-announces; restarting the
 * spacing at each would bunch the attempts), and no later than one new
 * spacing from now (a looser announcement takes effect at once). Reservations already granted
 * stand. The limit expires at its reset. Rejects (-EINVAL, nothing learned)
 * a reset at or before now. Returns 0. */
int gcra_learn(struct gcra *g, uint64_t remaining, uint64_t reset_at_us, uint64_t now_us);

/* After the reset of the limit gcra_learn() set, the quota renews:
 * count attempts per window_us (the announced policy), spaced evenly for
 * one window or until the next announcement, so that attempts that waited
 * for the reset do not all start at once. Without it the reset frees every
 * attempt. Rejects (-EINVAL) count or window 0, or nothing learned. */
int gcra_learn_next(struct gcra *g, uint64_t count, uint64_t window_us);

/* Fills *ret with the limiter's state at now_us; changes nothing. */
void gcra_snapshot(const struct gcra *g, uint64_t now_us, struct gcra_snapshot *ret);

#endif

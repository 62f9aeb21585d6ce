/* Retry budget per profile (SPEC 4.7, the Finagle/Linkerd algorithm): over a
 * sliding window, retries may not exceed ratio × original requests plus
 * min_per_second × window seconds. Pure: the caller passes "now" in µs on
 * the monotonic clock. */
#ifndef BRACED_BUDGET_H
#define BRACED_BUDGET_H

#include <stdint.h>

#include "window.h"

/* The window slides in this many slots (tower uses 10). */
#define BUDGET_SLOTS 10
_Static_assert(BUDGET_SLOTS <= WINDOW_SLOTS_MAX, "the budget's slots fit its window ring");

struct budget {
	double ratio;
	uint32_t min_per_second;
	uint32_t window_ms;
	struct window window; /* which slot of time each count below holds */
	uint32_t deposits[BUDGET_SLOTS];
	uint32_t withdrawals[BUDGET_SLOTS];
};

/* Sets the policy, keeping the counts (a reload changes the policy only). */
void budget_configure(struct budget *b, double ratio, uint32_t min_per_second, uint32_t window_ms);
/* One original request. */
void budget_deposit(struct budget *b, uint64_t now_us);
/* 1 when one more retry fits. */
int budget_can_withdraw(struct budget *b, uint64_t now_us);
/* The formula behind it, for any totals (the fleet's too): 1 when one more
 * withdrawal fits, withdrawals + 1 ≤ ratio × deposits + min_per_second ×
 * window seconds. */
int budget_allows(double ratio, uint32_t min_per_second, uint32_t window_ms, uint64_t deposits,
		  uint64_t withdrawals);
/* One retry. */
void budget_withdraw(struct budget *b, uint64_t now_us);
/* Undoes one withdrawal made at taken_us (a retry that never started);
 * nothing when that slot has expired since. */
void budget_give_back(struct budget *b, uint64_t taken_us);
/* Counts in the window (for /status and tests). */
void budget_totals(struct budget *b, uint64_t now_us, uint32_t *ret_deposits,
		   uint32_t *ret_withdrawals);

#endif

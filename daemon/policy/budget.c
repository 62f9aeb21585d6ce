/* Retry budget over a window of BUDGET_SLOTS slots (window.h): deposits
 * and withdrawals expire slot by slot. */
#include "budget.h"

#include <string.h>

void budget_configure(struct budget *b, double ratio, uint32_t min_per_second, uint32_t window_ms)
{
	if (b->window_ms != window_ms || !b->window.nslots) {
		uint64_t slot_ms = window_ms / BUDGET_SLOTS;

		/* Slots of another width cannot be compared: start afresh. */
		memset(b, 0, sizeof(*b));
		window_init(&b->window, BUDGET_SLOTS, (slot_ms ? slot_ms : 1) * 1000);
	}
	b->ratio = ratio;
	b->min_per_second = min_per_second;
	b->window_ms = window_ms;
}

/* The slot for now, emptied when it last counted an expired one. */
static unsigned current(struct budget *b, uint64_t now_us)
{
	int reused;
	unsigned i = window_slot(&b->window, now_us, &reused);

	if (reused) {
		b->deposits[i] = 0;
		b->withdrawals[i] = 0;
	}
	return i;
}

void budget_totals(struct budget *b, uint64_t now_us, uint32_t *ret_deposits,
		   uint32_t *ret_withdrawals)
{
	uint64_t epoch = window_epoch(&b->window, now_us);
	uint32_t d = 0, w = 0;

	for (unsigned i = 0; i < BUDGET_SLOTS; i++) {
		if (window_live(&b->window, i, epoch)) {
			d += b->deposits[i];
			w += b->withdrawals[i];
		}
	}
	*ret_deposits = d;
	*ret_withdrawals = w;
}

void budget_deposit(struct budget *b, uint64_t now_us)
{
	b->deposits[current(b, now_us)]++;
}

int budget_allows(double ratio, uint32_t min_per_second, uint32_t window_ms, uint64_t deposits,
		  uint64_t withdrawals)
{
	double allowance = ratio * (double)deposits + (double)min_per_second * window_ms / 1000.0;

	/* The tolerance keeps 0.7 × 90 from counting as 62.99999999999999. */
	return (double)withdrawals + 1 <= allowance + 1e-9;
}

int budget_can_withdraw(struct budget *b, uint64_t now_us)
{
	uint32_t d, w;

	budget_totals(b, now_us, &d, &w);
	return budget_allows(b->ratio, b->min_per_second, b->window_ms, d, w);
}

void budget_withdraw(struct budget *b, uint64_t now_us)
{
	b->withdrawals[current(b, now_us)]++;
}

void budget_give_back(struct budget *b, uint64_t taken_us)
{
	int i = window_find(&b->window, taken_us);

	/* A slot reused since then no longer counts the withdrawal: nothing to undo. */
	if (i >= 0 && b->withdrawals[i] > 0)
		b->withdrawals[i]--;
}

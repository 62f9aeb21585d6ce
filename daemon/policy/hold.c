/* The memory budget of held bodies (hold.h). */
#include "hold.h"

#include <errno.h>

void hold_init(struct hold *h, uint64_t max)
{
	*h = (struct hold){ .max = max };
}

void hold_set_max(struct hold *h, uint64_t max)
{
	h->max = max;
}

static int fits(const struct hold *h, uint64_t n)
{
	return h->held <= h->max && n <= h->max - h->held;
}

static void reserve(struct hold *h, uint64_t n)
{
	h->held += n;
	if (h->held > h->peak)
		h->peak = h->held;
}

int hold_take(struct hold *h, uint64_t n)
{
	if (n > h->max)
		return -E2BIG;
	if (h->waiting > 0 || !fits(h, n))
		return -ENOSPC;
	reserve(h, n);
	return 0;
}

void hold_wait(struct hold *h)
{
	h->waiting++;
}

int hold_take_first(struct hold *h, uint64_t n)
{
	if (!fits(h, n))
		return -ENOSPC;
	reserve(h, n);
	if (h->waiting > 0)
		h->waiting--;
	return 0;
}

void hold_leave(struct hold *h)
{
	if (h->waiting > 0)
		h->waiting--;
}

void hold_give(struct hold *h, uint64_t n)
{
	h->held = n < h->held ? h->held - n : 0;
}

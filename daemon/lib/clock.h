/* The one clock of the daemon: CLOCK_MONOTONIC in microseconds. Read it
 * once per event at the boundary and pass `now` down; policy code takes
 * it as an argument. */
#ifndef BRACED_CLOCK_H
#define BRACED_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* Microseconds on the monotonic clock (arbitrary origin). */
uint64_t clock_now_us(void);
/* Milliseconds on the same clock as the kernel last ticked it (a few ms
 * behind, and no system call): for stamping progress many times per
 * transfer, where a tick's error does not matter. */
uint64_t clock_coarse_ms(void);

/* µs, and ms, as a struct timeval, for libevent's timers. */
void clock_us_to_tv(uint64_t us, struct timeval *tv);
void clock_ms_to_tv(uint64_t ms, struct timeval *tv);

#endif

/*
 * The real clock behind the injectable struct kt_replay_clock.  Pacing and
 * rate limiting only need "now" and "sleep"; putting both behind a pointer
 * lets the unit tests drive them with a fake clock and never sleep.
 */
#include "replay_units_priv.h"

#include <errno.h>
#include <time.h>

#include "kt_common.h"

/* A stoppable sleep wakes this often to look at the stop flag: short enough
 * that Ctrl-C feels immediate, long enough to cost nothing. */
#define STOP_POLL_NS (50 * 1000000LL)

static int64_t system_now_ns(void *opaque)
{
	(void)opaque;
	return kt_now_ns();
}

/* Sleeps the whole duration: a signal that interrupts nanosleep does not cut
 * the wait short here (the stoppable clock is the one that reacts to them). */
static void sleep_full(int64_t ns)
{
	struct timespec req, rem;

	if (ns <= 0)
		return;
	req.tv_sec = (time_t)(ns / 1000000000LL);
	req.tv_nsec = (long)(ns % 1000000000LL);
	while (nanosleep(&req, &rem) != 0 && errno == EINTR)
		req = rem;
}

static void system_sleep_ns(void *opaque, int64_t ns)
{
	(void)opaque;
	sleep_full(ns);
}

static void stoppable_sleep_ns(void *opaque, int64_t ns)
{
	volatile int *stop = opaque;
	int64_t end = kt_now_ns() + ns;

	while (!*stop) {
		int64_t left = end - kt_now_ns();
		if (left <= 0)
			break;
		sleep_full(left < STOP_POLL_NS ? left : STOP_POLL_NS);
	}
}

void kt_replay_clock_system(struct kt_replay_clock *clock)
{
	clock->now_ns = system_now_ns;
	clock->sleep_ns = system_sleep_ns;
	clock->opaque = NULL;
}

void kt_replay_clock_system_stoppable(struct kt_replay_clock *clock, volatile int *stop)
{
	clock->now_ns = system_now_ns;
	clock->sleep_ns = stoppable_sleep_ns;
	/* The flag is only read, but opaque is a plain void *. */
	clock->opaque = (void *)stop;
}

static int64_t manual_now_ns(void *opaque)
{
	const struct kt_replay_manual_time *manual = opaque;
	return manual->now_ns;
}

static void manual_sleep_ns(void *opaque, int64_t ns)
{
	struct kt_replay_manual_time *manual = opaque;

	if (ns <= 0)
		return;
	manual->now_ns += ns;
	manual->slept_ns += ns;
	manual->sleeps++;
	if (ns > manual->longest_sleep_ns)
		manual->longest_sleep_ns = ns;
}

void kt_replay_clock_manual(struct kt_replay_clock *clock, struct kt_replay_manual_time *manual)
{
	clock->now_ns = manual_now_ns;
	clock->sleep_ns = manual_sleep_ns;
	clock->opaque = manual;
}

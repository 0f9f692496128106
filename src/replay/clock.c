/*
 * The real clock behind the injectable struct kt_replay_clock.  Pacing and
 * rate limiting only need "now" and "sleep"; putting both behind a pointer
 * lets the unit tests drive them with a fake clock and never sleep.
 */
#include "replay_units_priv.h"

#include <errno.h>
#include <time.h>

#include "kt_common.h"

static int64_t system_now_ns(void *opaque)
{
	(void)opaque;
	return kt_now_ns();
}

/* Sleeps the whole duration: a signal that interrupts nanosleep does not cut
 * the wait short (a caller that must react to signals supplies its own
 * sleep, as the engine does, which also serves the producer meanwhile). */
static void system_sleep_ns(void *opaque, int64_t ns)
{
	struct timespec req, rem;

	(void)opaque;
	if (ns <= 0)
		return;
	req.tv_sec = (time_t)(ns / 1000000000LL);
	req.tv_nsec = (long)(ns % 1000000000LL);
	while (nanosleep(&req, &rem) != 0 && errno == EINTR)
		req = rem;
}

void kt_replay_clock_system(struct kt_replay_clock *clock)
{
	clock->now_ns = system_now_ns;
	clock->sleep_ns = system_sleep_ns;
	clock->opaque = NULL;
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

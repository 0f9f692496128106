/*
 * The pacer behind --pace original: records go out on the timeline they were
 * produced on, all selected partitions sharing one clock, compressed by a
 * speed factor, with long silences (nights, weekends) optionally capped.
 *
 * The timeline is anchored at the first record: its timestamp maps to the
 * moment it was seen.  Each later record's position is its timestamp minus
 * the first one, minus the silence removed so far by the gap cap, divided by
 * the speed.  Only forward movement of the highest timestamp seen can create
 * a gap; a record older than one already sent (partitions interleave, and
 * producers' clocks disagree) is due at once rather than pulling the
 * timeline back.
 *
 * If the sender falls behind (the broker is slower than the recorded
 * traffic) records are simply due at once until it catches up: the timeline
 * is never re-anchored, so a burst in the source stays a burst.
 */
#include "replay_units_priv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "kt_common.h"

struct kt_replay_pacer {
	double speed;
	int64_t max_gap_ms;
	struct kt_replay_clock clock;
	int started;
	int64_t start_ns;      /* clock time the first record was seen */
	int64_t first_ts;      /* timestamp of the first record */
	int64_t high_ts;       /* highest timestamp seen so far */
	int64_t gaps_removed;  /* ms of silence cut by the max_gap cap */
};

/* speed must be positive and finite (10 = ten times faster than recorded);
 * max_gap_ms <= 0 keeps every silence.  The clock is copied.  Returns 0,
 * KT_EUSAGE or -ENOMEM. */
int kt_replay_pacer_create(struct kt_replay_pacer **out, double speed, int64_t max_gap_ms,
			   const struct kt_replay_clock *clock)
{
	struct kt_replay_pacer *pacer;

	*out = NULL;
	if (!(speed > 0.0) || !isfinite(speed) || !clock || !clock->now_ns || !clock->sleep_ns)
		return KT_EUSAGE;
	pacer = calloc(1, sizeof(*pacer));
	if (!pacer)
		return -ENOMEM;
	pacer->speed = speed;
	pacer->max_gap_ms = max_gap_ms;
	pacer->clock = *clock;
	*out = pacer;
	return 0;
}

void kt_replay_pacer_wait(struct kt_replay_pacer *pacer, int64_t ts_ms)
{
	if (!pacer->started) {
		pacer->started = 1;
		pacer->start_ns = pacer->clock.now_ns(pacer->clock.opaque);
		pacer->first_ts = ts_ms;
		pacer->high_ts = ts_ms;
		pacer->gaps_removed = 0;
		return;
	}
	/* Not later than something already sent: its moment has passed. */
	if (ts_ms <= pacer->high_ts)
		return;

	int64_t gap = ts_ms - pacer->high_ts;
	if (pacer->max_gap_ms > 0 && gap > pacer->max_gap_ms)
		pacer->gaps_removed += gap - pacer->max_gap_ms;
	pacer->high_ts = ts_ms;

	double offset_ns = (double)(ts_ms - pacer->first_ts - pacer->gaps_removed) * 1e6 /
			   pacer->speed;
	/* A tiny speed over years of data must not overflow the conversion;
	 * a wait of a century is as good as forever. */
	if (offset_ns > (double)INT64_MAX / 4)
		offset_ns = (double)INT64_MAX / 4;
	int64_t due = pacer->start_ns + (int64_t)offset_ns;
	int64_t now = pacer->clock.now_ns(pacer->clock.opaque);
	if (due > now)
		pacer->clock.sleep_ns(pacer->clock.opaque, due - now);
}

void kt_replay_pacer_destroy(struct kt_replay_pacer *pacer)
{
	free(pacer);
}

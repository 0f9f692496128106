/*
 * A smooth token bucket for --max-rate and --max-bytes-rate: a restore into a
 * live cluster must not arrive as a wall of traffic, so the bucket holds only
 * a small burst and the sender waits for each deficit as it arises instead of
 * sending a second's worth and then idling.
 *
 * take() charges first and then sleeps off any debt: a request larger than
 * the burst (one big record under a byte-rate limit) is allowed and simply
 * waits longer, and over any window of length T at most burst + rate * T
 * tokens are granted.  Time that passes while the caller is busy refills the
 * bucket, but never beyond burst.
 */
#include "replay_units_priv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "kt_common.h"

struct kt_replay_bucket {
	double rate_per_s;
	double burst;
	double tokens;   /* may be negative while a debt is being slept off */
	int64_t last_ns; /* clock time at which tokens was last brought up to date */
	struct kt_replay_clock clock;
};

double kt_replay_bucket_default_burst(double rate_per_s)
{
	double burst = rate_per_s / 20.0;
	return burst < 1.0 ? 1.0 : burst;
}

/* Creates a bucket that starts full.  rate_per_s must be positive and finite;
 * burst <= 0 picks kt_replay_bucket_default_burst().  The clock is copied.
 * Returns 0, KT_EUSAGE for a bad rate, or -ENOMEM. */
int kt_replay_bucket_create(struct kt_replay_bucket **out, double rate_per_s, double burst,
			    const struct kt_replay_clock *clock)
{
	struct kt_replay_bucket *bucket;

	*out = NULL;
	if (!(rate_per_s > 0.0) || !isfinite(rate_per_s) || !isfinite(burst) || !clock ||
	    !clock->now_ns || !clock->sleep_ns)
		return KT_EUSAGE;
	bucket = calloc(1, sizeof(*bucket));
	if (!bucket)
		return -ENOMEM;
	bucket->rate_per_s = rate_per_s;
	bucket->burst = burst > 0.0 ? burst : kt_replay_bucket_default_burst(rate_per_s);
	bucket->tokens = bucket->burst;
	bucket->clock = *clock;
	bucket->last_ns = clock->now_ns(clock->opaque);
	*out = bucket;
	return 0;
}

static void bucket_refill(struct kt_replay_bucket *bucket)
{
	int64_t now = bucket->clock.now_ns(bucket->clock.opaque);
	int64_t elapsed = now - bucket->last_ns;

	if (elapsed <= 0)
		return;
	bucket->last_ns = now;
	bucket->tokens += (double)elapsed * bucket->rate_per_s / 1e9;
	if (bucket->tokens > bucket->burst)
		bucket->tokens = bucket->burst;
}

void kt_replay_bucket_take(struct kt_replay_bucket *bucket, double n)
{
	if (!(n > 0.0))
		return;
	bucket_refill(bucket);
	bucket->tokens -= n;
	if (bucket->tokens >= 0.0)
		return;
	/* Round the wait up: a wait a nanosecond short would let the long-run
	 * rate creep above the limit. */
	double wait_ns = ceil(-bucket->tokens * 1e9 / bucket->rate_per_s);
	if (wait_ns > (double)INT64_MAX / 2)
		wait_ns = (double)INT64_MAX / 2;
	bucket->clock.sleep_ns(bucket->clock.opaque, (int64_t)wait_ns);
	/* The debt is paid by the refill at the next take, which counts the
	 * time just slept.  A sleep cut short by a stop request leaves the
	 * bucket in debt, which is right: the caller is stopping. */
}

void kt_replay_bucket_destroy(struct kt_replay_bucket *bucket)
{
	free(bucket);
}

/*
 * replay_units_priv.h - small units the restore/replay engine is built from:
 * Kafka's key partitioner, an injectable clock, a smooth token bucket and the
 * pacer that puts records back on their original timeline.
 *
 * Private to src/replay.  The signatures below are a fixed interface between
 * the engine and these units (see the project brief); additions are allowed,
 * changes are not.
 *
 * None of these units allocate after create, so they are safe on the per
 * record hot path.  None of them are thread-safe: each is owned by the one
 * thread that sends records.
 */
#ifndef KT_REPLAY_UNITS_PRIV_H
#define KT_REPLAY_UNITS_PRIV_H

#include <stddef.h>
#include <stdint.h>

/* Java's default partitioner for keyed records: murmur2 (Kafka's variant,
 * seed 0x9747b28c) of the key bytes, toPositive (x & 0x7fffffff), mod n.
 * kt_replay_murmur2 returns the hash as the unsigned bit pattern of Java's
 * int result (cast to int32_t to compare with Java's signed value).
 * kt_replay_partition_for_key returns -1 when partition_count <= 0; a NULL
 * key with len 0 hashes like an empty key (callers spread key-less records
 * themselves, as Java does). */
uint32_t kt_replay_murmur2(const void *key, size_t len);
int32_t kt_replay_partition_for_key(const void *key, size_t len, int32_t partition_count);

/* An injectable clock so pacing and rate limits are unit-tested without
 * sleeping. */
struct kt_replay_clock {
	int64_t (*now_ns)(void *opaque);
	void (*sleep_ns)(void *opaque, int64_t ns);  /* may return early on a stop request */
	void *opaque;
};
void kt_replay_clock_system(struct kt_replay_clock *clock); /* CLOCK_MONOTONIC + nanosleep */

/* A manual clock: time stands still until the owner moves it or something
 * sleeps, and a sleep of ns moves it forward by exactly ns at once.  Unit
 * tests drive pacing and rate limits with it in simulated time; the counters
 * let them see how the waiting was done.  manual is owned by the caller and
 * must outlive the clock. */
struct kt_replay_manual_time {
	int64_t now_ns;
	int64_t slept_ns;         /* total of all sleeps */
	uint64_t sleeps;          /* number of sleeps with ns > 0 */
	int64_t longest_sleep_ns;
};
void kt_replay_clock_manual(struct kt_replay_clock *clock, struct kt_replay_manual_time *manual);

/* Token bucket: rate tokens per second, at most burst tokens banked.  Smooth: waits in small steps, never sends a second's worth at once. */
struct kt_replay_bucket;
int kt_replay_bucket_create(struct kt_replay_bucket **out, double rate_per_s, double burst,
			    const struct kt_replay_clock *clock);
/* Blocks (through clock->sleep_ns) until n tokens are available, then takes them.  n larger than burst is allowed (debt). */
void kt_replay_bucket_take(struct kt_replay_bucket *bucket, double n);
void kt_replay_bucket_destroy(struct kt_replay_bucket *bucket);

/* Default burst for a rate when the user gives none: a twentieth of a
 * second's worth (at least one token), small enough that the output looks
 * smooth at any time scale a broker or dashboard can see. */
double kt_replay_bucket_default_burst(double rate_per_s);

/* One timeline across all partitions for --pace original: the first record
 * seen starts the clock; a record with timestamp ts is due at
 * (ts - first_ts - gaps_removed) / speed after the start, where any silence
 * longer than max_gap_ms (<= 0: no cap) is shortened to max_gap_ms. Records
 * with timestamps earlier than one already sent are due at once. */
struct kt_replay_pacer;
int kt_replay_pacer_create(struct kt_replay_pacer **out, double speed, int64_t max_gap_ms,
			   const struct kt_replay_clock *clock);
void kt_replay_pacer_wait(struct kt_replay_pacer *pacer, int64_t ts_ms);
void kt_replay_pacer_destroy(struct kt_replay_pacer *pacer);

#endif /* KT_REPLAY_UNITS_PRIV_H */

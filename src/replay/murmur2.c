/*
 * Kafka's key partitioner: the 32-bit MurmurHash2 variant that the Java
 * client's org.apache.kafka.common.utils.Utils.murmur2 computes, followed by
 * Utils.toPositive and a modulo, which is what Java's default partitioner does
 * with a keyed record.  Restoring or replaying "by key" into a topic with a
 * different partition count must put each key exactly where a Java producer
 * would, or consumers that rely on key affinity see their keys move.
 *
 * Written from the algorithm's description: blocks of four bytes read
 * little-endian, multiplied by m and mixed, the 1-3 trailing bytes folded in,
 * then a final avalanche.  Java does all of this in signed 32-bit int with
 * wrap-around and unsigned shifts (>>>); uint32_t arithmetic gives the same
 * bit pattern without undefined behaviour.
 */
#include "replay_units_priv.h"

#define MURMUR2_SEED 0x9747b28cu
#define MURMUR2_M 0x5bd1e995u
#define MURMUR2_R 24

uint32_t kt_replay_murmur2(const void *key, size_t len)
{
	const unsigned char *data = key;
	/* Java seeds with seed ^ length where length is an int; keys are far
	 * below 2 GiB, so the truncation to 32 bits matches. */
	uint32_t h = MURMUR2_SEED ^ (uint32_t)len;
	size_t blocks = len / 4;

	for (size_t i = 0; i < blocks; i++) {
		const unsigned char *p = data + i * 4;
		uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			     (uint32_t)p[3] << 24;

		k *= MURMUR2_M;
		k ^= k >> MURMUR2_R;
		k *= MURMUR2_M;
		h *= MURMUR2_M;
		h ^= k;
	}

	const unsigned char *tail = data ? data + blocks * 4 : NULL;
	switch (len & 3) {
	case 3:
		h ^= (uint32_t)tail[2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)tail[1] << 8;
		/* fall through */
	case 1:
		h ^= (uint32_t)tail[0];
		h *= MURMUR2_M;
		break;
	default:
		break;
	}

	h ^= h >> 13;
	h *= MURMUR2_M;
	h ^= h >> 15;
	return h;
}

int32_t kt_replay_partition_for_key(const void *key, size_t len, int32_t partition_count)
{
	if (partition_count <= 0)
		return -1;
	/* toPositive clears the sign bit rather than taking an absolute value,
	 * so INT_MIN maps to 0 instead of staying negative. */
	uint32_t positive = kt_replay_murmur2(key, len) & 0x7fffffffu;
	return (int32_t)(positive % (uint32_t)partition_count);
}

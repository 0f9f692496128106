/* The per-partition plan: where a round starts, where it ends, and what
 * retention took before it could be captured. */
#include "capture_priv.h"

int cap_plan_partition(const struct kt_store_partition *prev, int64_t log_start, int64_t high,
		       struct cap_plan *plan, char *errstr, size_t errstr_size)
{
	if (log_start < 0 || high < log_start)
		return kt_seterr(errstr, errstr_size, KT_EKAFKA,
				 "the broker reported a log start offset %lld above the high watermark %lld",
				 (long long)log_start, (long long)high);
	plan->end = high;
	plan->gap_from = plan->gap_to = 0;
	if (!prev) {
		/* A first capture (or a partition added since) starts at the
		 * oldest record Kafka still holds; what retention removed
		 * earlier was never part of any backup, so it is no gap. */
		plan->chain_start = log_start;
		plan->fetch_from = log_start;
		return 0;
	}
	plan->chain_start = prev->start_offset;
	plan->fetch_from = prev->end_offset;
	if (high < prev->end_offset)
		return kt_seterr(errstr, errstr_size, KT_ERANGE,
				 "partition %d: Kafka's end offset %lld is below the %lld the previous snapshot "
				 "reached: the topic was recreated or its log truncated; capture it into a new "
				 "repository", (int)prev->partition, (long long)high,
				 (long long)prev->end_offset);
	if (log_start > prev->end_offset) {
		/* Retention deleted records the backup never saw. */
		plan->gap_from = prev->end_offset;
		plan->gap_to = log_start;
		plan->fetch_from = log_start;
	}
	return 0;
}

/*
 * bench_capture_bare: the ceiling for `ktape capture` in bench/capture.sh.
 * A minimal librdkafka consumer that assigns every partition of one topic
 * from the beginning, consumes in batches from one queue with the same
 * prefetch tuning ktape uses, and discards the records.  It prints
 * "records=N bytes=B seconds=S" (bytes: keys, values and headers).
 *
 * Usage: bench_capture_bare -b BROKERS -t TOPIC
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const char *const conf_pairs[][2] = {
		{ "group.id", "bench-capture-bare" },
		{ "enable.auto.commit", "false" },
		{ "enable.partition.eof", "true" },
		{ "queued.min.messages", "1000000" },
		{ "queued.max.messages.kbytes", "1048576" },
		{ "fetch.wait.max.ms", "100" },
	};
	const char *brokers = NULL, *topic = NULL;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_message_t *msgs[1024];
	unsigned long long records = 0, bytes = 0;
	rd_kafka_conf_t *conf;
	rd_kafka_queue_t *rkqu;
	rd_kafka_t *rk;
	char errstr[512];
	int c, remaining = 0;
	double start;

	while ((c = getopt(argc, argv, "b:t:")) != -1) {
		if (c == 'b')
			brokers = optarg;
		else if (c == 't')
			topic = optarg;
		else
			return 2;
	}
	if (!brokers || !topic) {
		fprintf(stderr, "usage: bench_capture_bare -b BROKERS -t TOPIC\n");
		return 2;
	}
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", brokers, NULL, 0);
	for (size_t i = 0; i < sizeof(conf_pairs) / sizeof(conf_pairs[0]); i++)
		if (rd_kafka_conf_set(conf, conf_pairs[i][0], conf_pairs[i][1], errstr, sizeof(errstr))) {
			fprintf(stderr, "%s\n", errstr);
			return 1;
		}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	start = now_s();
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 || md->topics[0].err) {
		fprintf(stderr, "no metadata for %s\n", topic);
		return 1;
	}
	parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	remaining = parts->cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_poll_set_consumer(rk);
	rkqu = rd_kafka_queue_get_consumer(rk);
	rd_kafka_assign(rk, parts);
	while (remaining > 0) {
		ssize_t n = rd_kafka_consume_batch_queue(rkqu, 100, msgs, 1024);

		for (ssize_t i = 0; i < n; i++) {
			rd_kafka_message_t *m = msgs[i];

			if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				remaining--;
			} else if (!m->err) {
				rd_kafka_headers_t *hdrs;

				records++;
				bytes += m->len + m->key_len;
				if (rd_kafka_message_headers(m, &hdrs) == 0) {
					const char *name;
					const void *value;
					size_t size;

					for (size_t h = 0; !rd_kafka_header_get_all(hdrs, h, &name, &value, &size); h++)
						bytes += strlen(name) + size;
				}
			}
			rd_kafka_message_destroy(m);
		}
	}
	printf("records=%llu bytes=%llu seconds=%.3f\n", records, bytes, now_s() - start);
	rd_kafka_queue_destroy(rkqu);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}

/*
 * bench_restore_bare: the ceiling for `ktape restore` in bench/restore.sh.
 *
 *   bench_restore_bare --export REPO TOPIC RECORDS.bin KCAT.txt
 *       reads every record of TOPIC in REPO's latest snapshot through the
 *       store and writes them twice: RECORDS.bin, a flat file of records
 *       (partition, timestamp, key, value, headers) for the bare producer,
 *       and KCAT.txt, "key<TAB>value" lines for `kcat -P -K '\t' -l`.
 *
 *   bench_restore_bare -b BROKERS -t TOPIC RECORDS.bin
 *       maps RECORDS.bin and produces every record to the same partition
 *       with its key, value, headers and timestamp, with the producer
 *       settings ktape restore uses (idempotence, acks=all, lz4, linger.ms=5,
 *       batch.num.messages=10000, a 64 MiB queue) and the same copy flag,
 *       then flushes.  Prints "records=N bytes=B seconds=S".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kt_store.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put(FILE *f, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, f) != n) {
		perror("write");
		exit(1);
	}
}

static void put_bytes(FILE *f, const void *p, size_t n)
{
	int32_t len = p ? (int32_t)n : -1;

	put(f, &len, sizeof(len));
	if (p)
		put(f, p, n);
}

/* One record into both files; nonzero when kcat's line format cannot
 * carry it. */
static int write_record(FILE *bin, FILE *txt, const char *topic, int32_t p,
			const struct kt_record *rec)
{
	uint32_t hc = (uint32_t)rec->header_count;

	put(bin, &p, sizeof(p));
	put(bin, &rec->timestamp, sizeof(rec->timestamp));
	put_bytes(bin, rec->key, rec->key_len);
	put_bytes(bin, rec->value, rec->value_len);
	put(bin, &hc, sizeof(hc));
	for (uint32_t h = 0; h < hc; h++) {
		put_bytes(bin, rec->headers[h].name, rec->headers[h].name_len);
		put_bytes(bin, rec->headers[h].value, rec->headers[h].value_len);
	}
	/* kcat -P splits on newlines and the first tab: such bytes would
	 * change the records, so refuse them. */
	if ((rec->key && (memchr(rec->key, '\n', rec->key_len) || memchr(rec->key, '\t', rec->key_len))) ||
	    (rec->value && memchr(rec->value, '\n', rec->value_len))) {
		fprintf(stderr, "record %s[%d]@%" PRId64 " holds a newline or tab\n", topic, p,
			rec->offset);
		return 1;
	}
	put(txt, rec->key ? rec->key : "", rec->key ? rec->key_len : 0);
	put(txt, "\t", 1);
	put(txt, rec->value ? rec->value : "", rec->value ? rec->value_len : 0);
	put(txt, "\n", 1);
	return 0;
}

static int export_topic(const char *repo_path, const char *topic, const char *bin_path,
			const char *kcat_path)
{
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap = NULL;
	const struct kt_store_topic *t;
	struct kt_store_scan **scans;
	char errstr[512];
	FILE *bin, *txt;
	uint64_t n = 0;

	if (kt_store_repo_open(&repo, repo_path, 0, 0, errstr, sizeof(errstr)) ||
	    kt_store_repo_load_snapshot(repo, NULL, &snap, errstr, sizeof(errstr))) {
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	t = kt_store_snapshot_find_topic(snap, topic);
	bin = fopen(bin_path, "wb");
	txt = fopen(kcat_path, "wb");
	if (!t || !bin || !txt) {
		fprintf(stderr, "no topic %s or cannot write the outputs\n", topic);
		return 1;
	}
	/* Partitions interleaved in chunks of 1024 records, the order ktape
	 * restore sends in: a file that held one partition after another would
	 * keep a single partition in flight and make the ceiling a floor. */
	scans = calloc(t->n_partitions, sizeof(*scans));
	if (!scans)
		return 1;
	for (size_t i = 0; i < t->n_partitions; i++) {
		if (kt_store_scan_create(&scans[i], repo, &t->partitions[i], NULL, errstr, sizeof(errstr))) {
			fprintf(stderr, "%s\n", errstr);
			return 1;
		}
	}
	for (size_t live = t->n_partitions; live;) {
		live = 0;
		for (size_t i = 0; i < t->n_partitions; i++) {
			const struct kt_record *rec;
			int r = 1;

			for (int k = 0; k < 1024 && scans[i] &&
				    (r = kt_store_scan_next(scans[i], &rec, errstr, sizeof(errstr))) == 1; k++) {
				if (write_record(bin, txt, topic, t->partitions[i].partition, rec))
					return 1;
				n++;
			}
			if (r < 0) {
				fprintf(stderr, "%s\n", errstr);
				return 1;
			}
			if (r == 0 && scans[i]) {
				kt_store_scan_destroy(scans[i]);
				scans[i] = NULL;
			}
			live += scans[i] != NULL;
		}
	}
	free(scans);
	if (fclose(bin) || fclose(txt)) {
		perror("close");
		return 1;
	}
	printf("exported=%" PRIu64 "\n", n);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
	return 0;
}

static int32_t get_i32(const uint8_t **p)
{
	int32_t v;

	memcpy(&v, *p, sizeof(v));
	*p += sizeof(v);
	return v;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	if (m->err) {
		fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
		exit(1);
	}
	(*(uint64_t *)opaque)++;
}

static int produce(const char *brokers, const char *topic, const char *path)
{
	static const char *const conf_pairs[][2] = {
		{ "enable.idempotence", "true" },
		{ "acks", "all" },
		{ "compression.type", "lz4" },
		{ "linger.ms", "5" },
		{ "batch.num.messages", "10000" },
		{ "queue.buffering.max.kbytes", "65536" },
		{ "queue.buffering.max.messages", "200000" },
	};
	uint64_t acked = 0, records = 0, bytes = 0;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const uint8_t *p, *end;
	rd_kafka_topic_t *rkt;
	struct stat st;
	char errstr[512];
	rd_kafka_t *rk;
	void *map;
	double start;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) || st.st_size == 0) {
		perror(path);
		return 1;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	rd_kafka_conf_set(conf, "bootstrap.servers", brokers, NULL, 0);
	for (size_t i = 0; i < sizeof(conf_pairs) / sizeof(conf_pairs[0]); i++)
		if (rd_kafka_conf_set(conf, conf_pairs[i][0], conf_pairs[i][1], errstr, sizeof(errstr))) {
			fprintf(stderr, "%s\n", errstr);
			return 1;
		}
	rd_kafka_conf_set_opaque(conf, &acked);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	start = now_s();
	p = map;
	end = p + st.st_size;
	while (p < end) {
		int32_t partition = get_i32(&p), klen, vlen;
		int64_t ts;
		const void *key, *value;
		rd_kafka_headers_t *hdrs = NULL;
		uint32_t hc;
		rd_kafka_resp_err_t e;

		memcpy(&ts, p, sizeof(ts));
		p += sizeof(ts);
		klen = get_i32(&p);
		key = klen < 0 ? NULL : p;
		p += klen < 0 ? 0 : klen;
		vlen = get_i32(&p);
		value = vlen < 0 ? NULL : p;
		p += vlen < 0 ? 0 : vlen;
		memcpy(&hc, p, sizeof(hc));
		p += sizeof(hc);
		bytes += (uint64_t)(klen > 0 ? klen : 0) + (uint64_t)(vlen > 0 ? vlen : 0);
		if (hc)
			hdrs = rd_kafka_headers_new(hc);
		for (uint32_t h = 0; h < hc; h++) {
			int32_t nl = get_i32(&p);
			const char *name = (const char *)p;
			int32_t hl;

			p += nl;
			hl = get_i32(&p);
			rd_kafka_header_add(hdrs, name, nl, hl < 0 ? NULL : p, hl < 0 ? 0 : hl);
			p += hl < 0 ? 0 : hl;
			bytes += (uint64_t)nl + (uint64_t)(hl > 0 ? hl : 0);
		}
		for (;;) {
			e = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
					      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_KEY(key, key ? (size_t)klen : 0),
					      RD_KAFKA_V_VALUE((void *)value, value ? (size_t)vlen : 0),
					      RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(hdrs),
					      RD_KAFKA_V_END);
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			rd_kafka_poll(rk, 10);
		}
		if (e) {
			fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
			return 1;
		}
		if (++records % 256 == 0)
			rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 600000);
	printf("records=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f\n", acked, bytes, now_s() - start);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	munmap(map, (size_t)st.st_size);
	close(fd);
	return acked == records ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--export"))
		return export_topic(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 6 && !strcmp(argv[1], "-b") && !strcmp(argv[3], "-t"))
		return produce(argv[2], argv[4], argv[5]);
	fprintf(stderr, "usage: bench_restore_bare --export REPO TOPIC RECORDS.bin KCAT.txt\n"
			"       bench_restore_bare -b BROKERS -t TOPIC RECORDS.bin\n");
	return 2;
}

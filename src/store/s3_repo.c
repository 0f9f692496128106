/*
 * s3_repo.c - a repository's files as S3 objects: object URLs, the client
 * pool, whole-object calls on URLs, and the sizing rules of uploads and
 * ranged reads (format/object-storage.md sections 3 and 5).
 */
#include "s3_repo_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Idle clients kept for reuse.  A client is one curl handle with its
 * connection; more threads than this at once still work, their extra
 * clients are simply freed when given back. */
#define POOL_MAX 32

struct pool_slot {
	char bucket[KT_S3_BUCKET_MAX + 1];
	struct kt_s3_client *s3;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_slot pool[POOL_MAX];
static size_t pool_count;

/* Which bucket each client handed out serves, so that put() can file it
 * under the right name: the client itself does not say. */
struct lent {
	struct kt_s3_client *s3;
	char bucket[KT_S3_BUCKET_MAX + 1];
};
static struct lent *lent;
static size_t lent_count, lent_cap;

static int split(const char *url, char bucket[KT_S3_BUCKET_MAX + 1], const char **key,
		 int allow_empty, char *errstr, size_t errstr_size);

int kt_s3_object_split(const char *url, char bucket[KT_S3_BUCKET_MAX + 1], const char **key,
		       char *errstr, size_t errstr_size)
{
	return split(url, bucket, key, 0, errstr, errstr_size);
}

/* allow_empty: "s3://bucket/" names the whole bucket (a listing of a
 * repository without prefix). */
static int split(const char *url, char bucket[KT_S3_BUCKET_MAX + 1], const char **key,
		 int allow_empty, char *errstr, size_t errstr_size)
{
	struct kt_s3_location loc;
	char head[KT_S3_BUCKET_MAX + 16];
	const char *slash;
	int err;

	if (!kt_s3_url_is_s3(url))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not an s3:// URL",
				 url ? url : "(null)");
	slash = strchr(url + 5, '/');
	if (!slash || (!slash[1] && !allow_empty))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' names a bucket but no object", url);
	if ((size_t)(slash - url) >= sizeof(head))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "'%s': bucket name longer than S3's limit of 63", url);
	memcpy(head, url, (size_t)(slash - url));
	head[slash - url] = '\0';
	/* The bucket's rules live in one place: kt_s3_url_parse(). */
	err = kt_s3_url_parse(head, &loc, errstr, errstr_size);
	if (err)
		return err;
	memcpy(bucket, loc.bucket, sizeof(loc.bucket));
	*key = slash + 1;
	return 0;
}

/* The client settings a repository uses: everything from the AWS
 * environment, which the client reads itself, plus path-style addressing,
 * which AWS's variables do not cover. */
static void config_for(const char *bucket, struct kt_s3_config *cfg)
{
	const char *ps = getenv("KTAPE_S3_PATH_STYLE");

	memset(cfg, 0, sizeof(*cfg));
	cfg->bucket = bucket;
	cfg->path_style = ps && (strcmp(ps, "1") == 0 || strcmp(ps, "true") == 0 || strcmp(ps, "yes") == 0);
}

static int lend(struct kt_s3_client *s3, const char *bucket)
{
	if (lent_count == lent_cap) {
		size_t ncap = lent_cap ? lent_cap * 2 : 16;
		struct lent *n = realloc(lent, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		lent = n;
		lent_cap = ncap;
	}
	lent[lent_count].s3 = s3;
	snprintf(lent[lent_count].bucket, sizeof(lent[lent_count].bucket), "%s", bucket);
	lent_count++;
	return 0;
}

int kt_s3_pool_get(const char *bucket, struct kt_s3_client **out, char *errstr, size_t errstr_size)
{
	struct kt_s3_client *s3 = NULL;
	struct kt_s3_config cfg;
	int err;

	*out = NULL;
	pthread_mutex_lock(&pool_lock);
	for (size_t i = pool_count; i-- > 0;) {
		if (strcmp(pool[i].bucket, bucket) == 0) {
			s3 = pool[i].s3;
			pool[i] = pool[--pool_count];
			break;
		}
	}
	if (s3 && lend(s3, bucket) < 0) {
		kt_s3_client_destroy(s3);
		pthread_mutex_unlock(&pool_lock);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory for an S3 client");
	}
	pthread_mutex_unlock(&pool_lock);
	if (s3) {
		*out = s3;
		return 0;
	}
	config_for(bucket, &cfg);
	err = kt_s3_client_create(&cfg, NULL, &s3, errstr, errstr_size);
	if (err)
		return err;
	pthread_mutex_lock(&pool_lock);
	err = lend(s3, bucket);
	pthread_mutex_unlock(&pool_lock);
	if (err) {
		kt_s3_client_destroy(s3);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory for an S3 client");
	}
	*out = s3;
	return 0;
}

void kt_s3_pool_put(struct kt_s3_client *s3)
{
	size_t i;

	if (!s3)
		return;
	pthread_mutex_lock(&pool_lock);
	for (i = 0; i < lent_count && lent[i].s3 != s3; i++)
		;
	if (i < lent_count && pool_count < POOL_MAX) {
		pool[pool_count].s3 = s3;
		memcpy(pool[pool_count].bucket, lent[i].bucket, sizeof(pool[pool_count].bucket));
		pool_count++;
		s3 = NULL;
	}
	if (i < lent_count)
		lent[i] = lent[--lent_count];
	pthread_mutex_unlock(&pool_lock);
	kt_s3_client_destroy(s3);
}

/* A pooled client for the bucket of url, and the key within it. */
static int client_for(const char *url, struct kt_s3_client **s3, const char **key,
		      char *errstr, size_t errstr_size)
{
	char bucket[KT_S3_BUCKET_MAX + 1];
	int err;

	*s3 = NULL;
	err = kt_s3_object_split(url, bucket, key, errstr, errstr_size);
	if (err)
		return err;
	return kt_s3_pool_get(bucket, s3, errstr, errstr_size);
}

int kt_s3_url_read(const char *url, size_t max, char **out, size_t *out_len,
		   char *errstr, size_t errstr_size)
{
	struct kt_s3_client *s3;
	const char *key;
	void *data = NULL;
	size_t len = 0;
	char *buf;
	int err;

	*out = NULL;
	*out_len = 0;
	err = client_for(url, &s3, &key, errstr, errstr_size);
	if (err)
		return err;
	err = kt_s3_get(s3, key, max, &data, &len, errstr, errstr_size);
	kt_s3_pool_put(s3);
	if (err)
		return err;
	/* Callers parse text: one more byte for the NUL. */
	buf = realloc(data, len + 1);
	if (!buf) {
		free(data);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "%s: out of memory", url);
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

int kt_s3_url_write(const char *url, const void *buf, size_t len, int if_absent,
		    char *errstr, size_t errstr_size)
{
	struct kt_s3_client *s3;
	const char *key;
	uint64_t size;
	int err;

	err = client_for(url, &s3, &key, errstr, errstr_size);
	if (err)
		return err;
	if (!if_absent) {
		err = kt_s3_put(s3, key, buf, len, errstr, errstr_size);
		goto out;
	}
	/* S3 honours If-None-Match on PUT; some compatible stores ignore it,
	 * and for them the HEAD is what refuses an existing object (with a
	 * race the writer lock closes, format/object-storage.md section 3). */
	err = kt_s3_head(s3, key, &size, errstr, errstr_size);
	if (err == 0) {
		err = kt_seterr(errstr, errstr_size, KT_EEXIST, "%s: already exists", url);
		goto out;
	}
	if (err != KT_ENOTFOUND)
		goto out;
	err = kt_s3_put_if_absent(s3, key, buf, len, errstr, errstr_size);
	if (err == KT_EEXIST)
		kt_seterr(errstr, errstr_size, err, "%s: already exists", url);
out:
	kt_s3_pool_put(s3);
	return err;
}

int kt_s3_url_remove(const char *url, char *errstr, size_t errstr_size)
{
	struct kt_s3_client *s3;
	const char *key;
	int err;

	err = client_for(url, &s3, &key, errstr, errstr_size);
	if (err)
		return err;
	err = kt_s3_delete(s3, key, errstr, errstr_size);
	kt_s3_pool_put(s3);
	return err == KT_ENOTFOUND ? 0 : err;
}

int kt_s3_url_head(const char *url, uint64_t *size, char *errstr, size_t errstr_size)
{
	struct kt_s3_client *s3;
	const char *key;
	int err;

	*size = 0;
	err = client_for(url, &s3, &key, errstr, errstr_size);
	if (err)
		return err;
	err = kt_s3_head(s3, key, size, errstr, errstr_size);
	kt_s3_pool_put(s3);
	return err;
}

struct list_ctx {
	size_t skip; /* bytes of the listed prefix */
	struct kt_s3_listed *v;
	size_t n, cap;
};

static int collect(void *opaque, const char *key, uint64_t size)
{
	struct list_ctx *ctx = opaque;

	if (strlen(key) <= ctx->skip)
		return 0;
	if (ctx->n == ctx->cap) {
		size_t ncap = ctx->cap ? ctx->cap * 2 : 64;
		struct kt_s3_listed *n = realloc(ctx->v, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		ctx->v = n;
		ctx->cap = ncap;
	}
	ctx->v[ctx->n].rel = strdup(key + ctx->skip);
	if (!ctx->v[ctx->n].rel)
		return -ENOMEM;
	ctx->v[ctx->n].size = size;
	ctx->n++;
	return 0;
}

int kt_s3_url_list(const char *url_prefix, struct kt_s3_listed **out, size_t *count,
		   char *errstr, size_t errstr_size)
{
	struct list_ctx ctx = { 0 };
	struct kt_s3_client *s3;
	const char *key;
	int err;

	char bucket[KT_S3_BUCKET_MAX + 1];

	*out = NULL;
	*count = 0;
	err = split(url_prefix, bucket, &key, 1, errstr, errstr_size);
	if (!err)
		err = kt_s3_pool_get(bucket, &s3, errstr, errstr_size);
	if (err)
		return err;
	ctx.skip = strlen(key);
	err = kt_s3_list(s3, key, collect, &ctx, errstr, errstr_size);
	kt_s3_pool_put(s3);
	if (err == -ENOMEM)
		kt_seterr(errstr, errstr_size, err, "%s: out of memory listing objects", url_prefix);
	if (err) {
		kt_s3_listed_free(ctx.v, ctx.n);
		return err;
	}
	*out = ctx.v;
	*count = ctx.n;
	return 0;
}

void kt_s3_listed_free(struct kt_s3_listed *v, size_t count)
{
	if (!v)
		return;
	for (size_t i = 0; i < count; i++)
		free(v[i].rel);
	free(v);
}

size_t kt_s3_part_size(size_t base, unsigned part)
{
	if (part == 0)
		part = 1;
	return base * (1 + (part - 1) / 1000);
}

size_t kt_s3_part_base(void)
{
	const char *env = getenv("KTAPE_S3_PART_SIZE");
	char *end = NULL;
	unsigned long long v;

	if (!env || !*env)
		return KT_S3_PART_BASE;
	v = strtoull(env, &end, 10);
	if (*end || v < 65536 || v > (1ull << 30))
		return KT_S3_PART_BASE;
	return (size_t)v;
}

size_t kt_s3_merge_blocks(const struct kt_store_block_info *blocks, size_t n, size_t first,
			  uint64_t table_offset, uint64_t budget, uint64_t *end)
{
	uint64_t start, limit;
	size_t j;

	if (first >= n) {
		*end = table_offset;
		return 0;
	}
	start = blocks[first].file_offset;
	if (budget > KT_S3_MERGE_MAX)
		budget = KT_S3_MERGE_MAX;
	limit = start + budget;
	for (j = first + 1; j < n; j++) {
		/* Block j - 1 ends where block j begins. */
		uint64_t next_end = j + 1 < n ? blocks[j + 1].file_offset : table_offset;

		if (next_end > limit)
			break;
	}
	*end = j < n ? blocks[j].file_offset : table_offset;
	return j - first;
}

uint64_t kt_s3_next_budget(uint64_t budget, size_t prev, size_t i, uint64_t block_span, uint64_t cap)
{
	if (cap > KT_S3_MERGE_MAX)
		cap = KT_S3_MERGE_MAX;
	/* A read that begins at the first block is most often the whole
	 * segment (a full restore, verify, cat): it reads ahead at once. */
	if (prev == SIZE_MAX && i == 0)
		return cap;
	if (prev == SIZE_MAX || i != prev + 1)
		return 0;
	budget = budget ? budget * 2 : block_span * 2;
	if (budget < block_span)
		budget = block_span;
	return budget > cap ? cap : budget;
}

static _Atomic long open_readers;

uint64_t kt_s3_readahead_cap(int delta)
{
	long n = atomic_fetch_add(&open_readers, delta) + delta;
	uint64_t cap = n > 0 ? KT_S3_READAHEAD_TOTAL / (2 * (uint64_t)n) : KT_S3_MERGE_MAX;

	if (cap > KT_S3_MERGE_MAX)
		cap = KT_S3_MERGE_MAX;
	return cap < (256u << 10) ? (256u << 10) : cap;
}

/* ---- background fetches ------------------------------------------------ */

/* Few threads: they only wait on the network, and each holds a pooled
 * client (a connection) while it works. */
#define FETCH_THREADS 4

static pthread_mutex_t fetch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fetch_queued = PTHREAD_COND_INITIALIZER;
static pthread_cond_t fetch_finished = PTHREAD_COND_INITIALIZER;
static struct kt_s3_fetch *fetch_head, *fetch_tail;
static int fetch_threads_started;

static void run_fetch(struct kt_s3_fetch *f)
{
	struct kt_s3_client *s3 = NULL;

	f->msg[0] = '\0';
	f->got = 0;
	f->err = kt_s3_pool_get(f->bucket, &s3, f->msg, sizeof(f->msg));
	if (!f->err)
		f->err = kt_s3_get_range(s3, f->key, f->off, f->len, f->buf, &f->got, f->msg, sizeof(f->msg));
	kt_s3_pool_put(s3);
}

/* The threads live as long as the process: there is nothing to release
 * at exit that the kernel does not. */
static void *fetch_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&fetch_lock);
	for (;;) {
		struct kt_s3_fetch *f;

		while (!fetch_head)
			pthread_cond_wait(&fetch_queued, &fetch_lock);
		f = fetch_head;
		fetch_head = f->next;
		if (!fetch_head)
			fetch_tail = NULL;
		pthread_mutex_unlock(&fetch_lock);
		run_fetch(f);
		pthread_mutex_lock(&fetch_lock);
		f->done = 1;
		pthread_cond_broadcast(&fetch_finished);
	}
	return NULL;
}

int kt_s3_fetch_start(struct kt_s3_fetch *f)
{
	int err = 0;

	pthread_mutex_lock(&fetch_lock);
	while (fetch_threads_started < FETCH_THREADS) {
		pthread_attr_t attr;
		pthread_t tid;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		err = -pthread_create(&tid, &attr, fetch_thread, NULL);
		pthread_attr_destroy(&attr);
		if (err)
			break;
		fetch_threads_started++;
	}
	if (fetch_threads_started == 0) {
		pthread_mutex_unlock(&fetch_lock);
		return err ? err : -EAGAIN;
	}
	f->done = 0;
	f->next = NULL;
	if (fetch_tail)
		fetch_tail->next = f;
	else
		fetch_head = f;
	fetch_tail = f;
	pthread_cond_signal(&fetch_queued);
	pthread_mutex_unlock(&fetch_lock);
	return 0;
}

int kt_s3_fetch_wait(struct kt_s3_fetch *f)
{
	pthread_mutex_lock(&fetch_lock);
	while (!f->done)
		pthread_cond_wait(&fetch_finished, &fetch_lock);
	pthread_mutex_unlock(&fetch_lock);
	return f->err;
}

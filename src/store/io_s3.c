/*
 * io_s3.c - the object-storage back end of the store's writer interface
 * (io_priv.h): a segment written to an s3:// URL is uploaded as it is
 * written (format/object-storage.md section 3).
 *
 * The writer submits its writes in file order (header, blocks, then seek
 * table and footer), so they are appended to one part buffer; a full part
 * (kt_s3_part_size()) is sent with UploadPart, the multipart upload being
 * created with the first one.  Closing is the seal: the rest goes out as
 * the last part and CompleteMultipartUpload makes the object appear whole,
 * or, for a segment smaller than one part, a single PUT does.  Until then
 * nothing is visible, and an abandoned upload is aborted.  Memory: one part
 * buffer, grown as it fills, so a small segment never holds 8 MiB.
 */
#include "io_backend_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_repo_priv.h"

struct kt_io_s3 {
	struct kt_s3_client *s3; /* pooled; given back at destroy */
	char *url;               /* for messages */
	const char *key;         /* points into url */
	struct kt_s3_upload *up; /* NULL until the first full part */
	uint8_t *part;
	size_t part_len, part_cap;
	uint64_t pos;            /* the offset the next write must start at */
	size_t part_base;        /* kt_s3_part_size()'s base */
	int finished;            /* the object exists */
	char msg[512];           /* why the last call failed */
};

int kt_io_s3_create(struct kt_io_s3 **out, const char *url, char *errstr, size_t errstr_size)
{
	char bucket[KT_S3_BUCKET_MAX + 1];
	struct kt_io_s3 *w;
	int err;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->url = strdup(url))) {
		free(w);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory opening %s", url);
	}
	w->part_base = kt_s3_part_base();
	err = kt_s3_object_split(w->url, bucket, &w->key, errstr, errstr_size);
	if (!err)
		err = kt_s3_pool_get(bucket, &w->s3, errstr, errstr_size);
	if (err) {
		kt_io_s3_destroy(w);
		return err;
	}
	*out = w;
	return 0;
}

/* Sends the first size bytes of the part buffer as the next part. */
static int send_part(struct kt_io_s3 *w, size_t size)
{
	int err;

	if (!w->up) {
		err = kt_s3_upload_create(w->s3, w->key, &w->up, w->msg, sizeof(w->msg));
		if (err)
			return err;
	}
	err = kt_s3_upload_part(w->up, w->part, size, w->msg, sizeof(w->msg));
	if (err)
		return err;
	memmove(w->part, w->part + size, w->part_len - size);
	w->part_len -= size;
	return 0;
}

int kt_io_s3_write(struct kt_io_s3 *w, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	if (w->finished)
		return kt_seterr(w->msg, sizeof(w->msg), -EBADF, "%s: written after it was sealed", w->url);
	if (off != w->pos)
		/* An object is uploaded front to back; the segment writer
		 * never writes out of order, so this is a bug, not an I/O
		 * error to retry. */
		return kt_seterr(w->msg, sizeof(w->msg), -EINVAL,
				 "%s: write at byte %llu while the upload is at byte %llu (object storage "
				 "takes writes in order only)", w->url, (unsigned long long)off,
				 (unsigned long long)w->pos);
	while (len > 0) {
		size_t psize = kt_s3_part_size(w->part_base, w->up ? kt_s3_upload_parts(w->up) + 1 : 1);
		size_t take = psize - w->part_len < len ? psize - w->part_len : len;

		if (w->part_cap < w->part_len + take) {
			size_t ncap = w->part_cap ? w->part_cap : 65536;
			uint8_t *n;

			while (ncap < w->part_len + take)
				ncap *= 2;
			if (ncap > psize)
				ncap = psize;
			n = realloc(w->part, ncap);
			if (!n)
				return kt_seterr(w->msg, sizeof(w->msg), -ENOMEM,
						 "%s: out of memory for a %zu-byte part", w->url, ncap);
			w->part = n;
			w->part_cap = ncap;
		}
		memcpy(w->part + w->part_len, p, take);
		w->part_len += take;
		w->pos += take;
		p += take;
		len -= take;
		if (w->part_len == psize) {
			int err = send_part(w, psize);

			if (err)
				return err;
		}
	}
	return 0;
}

int kt_io_s3_finish(struct kt_io_s3 *w)
{
	int err;

	if (w->finished)
		return 0;
	if (!w->up) {
		err = kt_s3_put(w->s3, w->key, w->part, w->part_len, w->msg, sizeof(w->msg));
	} else {
		err = w->part_len ? send_part(w, w->part_len) : 0;
		if (!err)
			err = kt_s3_upload_complete(w->up, w->msg, sizeof(w->msg));
	}
	if (err)
		return err;
	w->finished = 1;
	free(w->part);
	w->part = NULL;
	w->part_len = w->part_cap = 0;
	return 0;
}

const char *kt_io_s3_error(const struct kt_io_s3 *w)
{
	return w->msg;
}

void kt_io_s3_destroy(struct kt_io_s3 *w)
{
	if (!w)
		return;
	if (w->up && !w->finished) {
		char ignored[256];

		/* Stores without AbortMultipartUpload (and a crash before this
		 * point) leave the parts to a lifecycle rule; they never form
		 * an object either way. */
		(void)kt_s3_upload_abort(w->up, ignored, sizeof(ignored));
	}
	kt_s3_upload_destroy(w->up);
	kt_s3_pool_put(w->s3);
	free(w->part);
	free(w->url);
	free(w);
}
